"""What a walk of the online learner over a stream records: per-chunk records, the history
of an in-memory run, one chunk of a streamed walk, where a walk stands (all a resumed walk
needs), and the learning-rate back-off policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from streamgrad.metrics import LogLoss, Mean


class ChunkRecord(NamedTuple):
    step: int  # examples seen after the chunk
    loss: float  # mean prequential loss over the chunk
    running_loss: float  # mean prequential loss since the start
    accuracy: float  # chunk accuracy (classification), NaN for regression
    steps_per_second: float
    influence_norm: float = float("nan")  # ||J||_F at the chunk's end (gradients.influence_norm)
    chosen_lr: float = float("nan")  # rate chosen most in the chunk (ensemble.LrEnsemble)


@dataclass
class History:
    """Per-step prequential losses (T,) and outputs (T, K), per-chunk records, and the
    learning-rate back-offs taken: (step at which the run diverged, new multiplier c)."""

    losses: np.ndarray
    outputs: np.ndarray
    chunks: list[ChunkRecord]
    wall_seconds: float
    backoffs: list[tuple[int, float]] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        return len(self.losses) / self.wall_seconds if self.wall_seconds > 0 else float("nan")


class Chunk(NamedTuple):
    """One chunk of a walk (`OnlineLearner.fit_stream`): it covers steps begin..begin+C-1."""

    begin: int
    targets: np.ndarray  # (C,) y_k, as given
    losses: np.ndarray  # (C,) prequential losses l_k
    outputs: np.ndarray  # (C, K) outputs o_k
    record: ChunkRecord


@dataclass
class Walk:
    """Where a walk over a stream stands, all a resumed walk needs besides the learner state
    (small, whatever the stream length): steps done, seconds spent running chunks, the
    learning-rate back-offs taken (step, multiplier), the running mean loss of the chunk
    records and the progress bar's running loss (None before the walk starts)."""

    step: int = 0
    wall_seconds: float = 0.0
    backoffs: list[tuple[int, float]] = field(default_factory=list)
    running: Mean = field(default_factory=Mean)
    shown: Mean | LogLoss | None = None


@dataclass(frozen=True)
class LrBackoff:
    """On divergence within a chunk: restore the state from before the chunk, multiply the
    learning rate by `factor` and run the chunk again; at most `max_times` times in a run.
    Needs an optimizer built with `optim.with_lr_scale`, which keeps the multiplier in its
    state (so checkpoints carry it)."""

    factor: float = 0.5
    max_times: int = 3
