"""Recurrent cells: pure functions `init(key, dtype)` and `step(weights, hidden, x)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamgrad.cells.base import Cell, Params
from streamgrad.cells.clipping import smooth_clip
from streamgrad.cells.diagonal import diagonal
from streamgrad.cells.elman import elman
from streamgrad.cells.gru import gru
from streamgrad.cells.meanfield import meanfield

CELLS: dict[str, Callable[..., Cell]] = {
    "elman": elman,
    "gru": gru,
    "diagonal": diagonal,
    "meanfield": meanfield,
}


def make_cell(name: str, hidden_size: int, input_size: int, **options: Any) -> Cell:
    """Build a cell by name; options go to the cell's constructor (e.g. coupling=...)."""
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; choose one of {', '.join(CELLS)}")
    if hidden_size < 1 or input_size < 1:
        raise ValueError(f"hidden and input sizes must be >= 1, got {hidden_size}, {input_size}")
    return CELLS[name](hidden_size, input_size, **options)


__all__ = [
    "CELLS",
    "Cell",
    "Params",
    "diagonal",
    "elman",
    "gru",
    "make_cell",
    "meanfield",
    "smooth_clip",
]
