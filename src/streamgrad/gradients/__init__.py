"""Gradient algorithms behind one interface (see base.py).

Exact: `rtrl` (forward sensitivities; dense, elementwise and memory paths), `bptt` (offline
reference). Truncated: `tbptt` (k1, k2). Approximate online: `uoro` (rank-one unbiased),
`snap1` (SnAp-1, O(P)), `snap` (SnAp-n on any cell), `rflo` (random-feedback local traces).
`every` gives any every-step algorithm an update interval (the sum of K gradients applied
once). `shadowed` runs any of them beside an exact RTRL shadow and reports gradient alignment.
`make_algorithm` builds one from a spec string such as 'tbptt:10', 'rflo:0.9' or
'rtrl:every=10'; the built algorithm's settings are typed fields (`tau`, `every`, `path`,
`order`, `seed`, `decay`, ...). `influence_norm` reads the size of an algorithm's
sensitivity state.
Shared parts: `base.effective_step` (the pullback through the effective weights and the
readout end of every every-step algorithm) and `traces` (the per-unit eligibility traces of
SnAp-1, RFLO and elementwise RTRL).
"""

from __future__ import annotations

from streamgrad.gradients.alignment import alignment_summary, shadowed
from streamgrad.gradients.base import (
    OnlineAlgorithm,
    StepResult,
    accumulate_gradient,
    influence_norm,
)
from streamgrad.gradients.bptt import bptt_gradient, sequence_loss
from streamgrad.gradients.every import every
from streamgrad.gradients.rflo import rflo
from streamgrad.gradients.rtrl import rtrl
from streamgrad.gradients.snap import snap, snap1
from streamgrad.gradients.tbptt import tbptt
from streamgrad.gradients.uoro import uoro
from streamgrad.model import Model

SPECS = "rtrl[:dense], tbptt:TAU, tbptt:EVERY:TAU, uoro[:SEED], snapN or rflo[:DECAY]"


def make_algorithm(spec: str, model: Model) -> OnlineAlgorithm:
    """Parse 'rtrl', 'rtrl:dense', 'tbptt:TAU', 'tbptt:EVERY:TAU', 'uoro', 'uoro:SEED',
    'snap1', 'snapN' (N >= 2), 'rflo' or 'rflo:DECAY' into an algorithm. A trailing
    ':every=K' on any spec but TBPTT's ('rtrl:every=10', 'rflo:0.9:every=10') applies the
    sum of K steps' gradients once every K steps (`every`); K = 1 is the plain algorithm."""
    base, marker, period = spec.rpartition(":every=")
    if marker:
        if not period.isdigit() or int(period) < 1:
            raise ValueError(f"bad update interval in {spec!r}; use SPEC:every=K with K >= 1")
        if base.partition(":")[0] == "tbptt":
            raise ValueError(
                f"{spec!r}: TBPTT has its own update interval; use tbptt:EVERY:TAU instead"
            )
        return every(make_algorithm(base, model), int(period))
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
    if name == "uoro":
        if rest and not rest.isdigit():
            raise ValueError(f"bad UORO spec {spec!r}; use uoro or uoro:SEED")
        return uoro(model, seed=int(rest or 0))
    if name == "snap1" and not rest:
        return snap1(model)
    if name.startswith("snap") and name[4:].isdigit() and int(name[4:]) >= 2 and not rest:
        return snap(model, int(name[4:]))
    if name == "rflo":
        try:
            decay = float(rest or 0.0)
        except ValueError:
            raise ValueError(f"bad RFLO spec {spec!r}; use rflo or rflo:DECAY") from None
        return rflo(model, decay=decay)
    raise ValueError(
        f"unknown algorithm {spec!r}; use {SPECS}, each but TBPTT's with an optional :every=K"
    )


__all__ = [
    "OnlineAlgorithm",
    "StepResult",
    "accumulate_gradient",
    "alignment_summary",
    "bptt_gradient",
    "every",
    "influence_norm",
    "make_algorithm",
    "rflo",
    "rtrl",
    "sequence_loss",
    "shadowed",
    "snap",
    "snap1",
    "tbptt",
    "uoro",
]
