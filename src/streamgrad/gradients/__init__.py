"""Gradient algorithms behind one interface (see base.py): exact RTRL, TBPTT, and BPTT."""

from __future__ import annotations

from streamgrad.gradients.base import OnlineAlgorithm, StepResult, accumulate_gradient
from streamgrad.gradients.bptt import bptt_gradient, sequence_loss
from streamgrad.gradients.rtrl import rtrl
from streamgrad.gradients.tbptt import tbptt
from streamgrad.model import Model


def make_algorithm(spec: str, model: Model) -> OnlineAlgorithm:
    """Parse 'rtrl', 'rtrl:dense', 'tbptt:TAU' or 'tbptt:EVERY:TAU' into an algorithm."""
    name, _, rest = spec.partition(":")
    if name == "rtrl":
        return rtrl(model, path=rest or "auto")  # type: ignore[arg-type]
    if name == "tbptt":
        numbers = rest.split(":") if rest else []
        if not numbers or len(numbers) > 2 or not all(n.isdigit() for n in numbers):
            raise ValueError(f"bad TBPTT spec {spec!r}; use tbptt:TAU or tbptt:EVERY:TAU")
        if len(numbers) == 1:
            return tbptt(model, int(numbers[0]))
        return tbptt(model, int(numbers[1]), every=int(numbers[0]))
    raise ValueError(f"unknown algorithm {spec!r}; use rtrl or tbptt:TAU")


__all__ = [
    "OnlineAlgorithm",
    "StepResult",
    "accumulate_gradient",
    "bptt_gradient",
    "make_algorithm",
    "rtrl",
    "sequence_loss",
    "tbptt",
]
