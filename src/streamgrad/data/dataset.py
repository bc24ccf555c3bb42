"""The in-memory stream every data source produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Stream:
    """A validated stream of T examples.

    inputs:  (T, d) float array, x_k.
    targets: (T,) float array for regression, or (T,) int array of class labels in
             [0, n_classes) for classification.
    input_names / target_name: column names (for reports).
    n_classes: number of classes when `targets` are labels, else None.
    skipped_rows: 1-based row numbers of the source that were skipped as invalid
             (only when the reader was asked to skip invalid rows).
    """

    inputs: np.ndarray
    targets: np.ndarray
    input_names: tuple[str, ...]
    target_name: str
    n_classes: int | None = None
    source: str = ""
    skipped_rows: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.inputs.ndim != 2:
            raise ValueError(f"inputs must be (T, d), got shape {self.inputs.shape}")
        if self.targets.shape[0] != self.inputs.shape[0]:
            raise ValueError("inputs and targets differ in length")

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def input_dim(self) -> int:
        return int(self.inputs.shape[1])
