"""The online learner: predict, then learn, on every step of one long stream.

At step k the learner (1) runs the cell on x_k and predicts o_k from S_{k+1} with the current
parameters theta_k, (2) scores l_k = loss(o_k, y_k) (the prequential loss: y_k was not used to
make o_k), (3) asks the gradient algorithm for its gradient and, when it is ready, applies one
optax update theta_{k+1} = theta_k + update.

`run` is a jitted `lax.scan` over a chunk of the stream (state buffers donated); `fit` walks
the stream chunk by chunk, updating a rich progress bar and calling `on_chunk` between chunks.
With an `LrBackoff`, a chunk that diverges is run again from the state before it with a lower
learning rate, a bounded number of times. `StreamLearner` offers river's `predict_one(x)` /
`learn_one(x, y)` for live streams; it jit-compiles the same step function, so it gives the
same numbers as the bulk path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from streamgrad.errors import DivergenceError
from streamgrad.gradients.base import OnlineAlgorithm
from streamgrad.metrics import Accuracy, LogLoss, Mean
from streamgrad.model import ModelParams
from streamgrad.optim import lr_scale, scale_lr
from streamgrad.progress import progress_bar


class LearnerState(NamedTuple):
    params: ModelParams
    opt_state: optax.OptState
    hidden: jax.Array  # S_k, (N,)
    algo_state: Any
    step: jax.Array  # k, number of examples seen


class ChunkRecord(NamedTuple):
    step: int  # examples seen after the chunk
    loss: float  # mean prequential loss over the chunk
    running_loss: float  # mean prequential loss since the start
    accuracy: float  # chunk accuracy (classification), NaN for regression
    steps_per_second: float


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


@dataclass(frozen=True)
class LrBackoff:
    """On divergence within a chunk: restore the state from before the chunk, multiply the
    learning rate by `factor` and run the chunk again; at most `max_times` times in a run.
    Needs an optimizer built with `optim.with_lr_scale`, which keeps the multiplier in its
    state (so checkpoints carry it)."""

    factor: float = 0.5
    max_times: int = 3


@dataclass(frozen=True)
class OnlineLearner:
    algorithm: OnlineAlgorithm
    optimizer: optax.GradientTransformation

    @property
    def classification(self) -> bool:
        return self.algorithm.model.loss == "xent"

    def init(self, params: ModelParams, dtype: Any = None) -> LearnerState:
        leaf = jax.tree_util.tree_leaves(params)[0]
        hidden = self.algorithm.model.cell.initial_hidden(dtype or leaf.dtype)
        return LearnerState(
            params,
            self.optimizer.init(params),
            hidden,
            self.algorithm.init(params, hidden),
            jnp.zeros((), jnp.int32),
        )

    def step(
        self, state: LearnerState, x: jax.Array, y: jax.Array
    ) -> tuple[LearnerState, tuple[jax.Array, jax.Array]]:
        """One prequential step; returns the new state and (loss l_k, output o_k)."""
        result = self.algorithm.step(state.params, state.hidden, state.algo_state, x, y)

        def update(params: ModelParams, opt_state: optax.OptState) -> tuple[Any, Any]:
            updates, opt_state = self.optimizer.update(result.grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        if self.algorithm.every_step:
            params, opt_state = update(state.params, state.opt_state)
        else:
            params, opt_state = jax.lax.cond(
                result.ready, update, lambda p, o: (p, o), state.params, state.opt_state
            )
        new_state = LearnerState(params, opt_state, result.hidden, result.state, state.step + 1)
        return new_state, (result.loss, result.output)

    @partial(jax.jit, static_argnums=0, donate_argnums=1)
    def run(
        self, state: LearnerState, inputs: jax.Array, targets: jax.Array
    ) -> tuple[LearnerState, tuple[jax.Array, jax.Array]]:
        """Scan `step` over a chunk: inputs (C, d), targets (C,) -> losses (C,), outputs (C, K)."""
        # unroll=2 lets XLA write the influence matrix without a copy per step (~10% faster)
        return jax.lax.scan(lambda s, xy: self.step(s, *xy), state, (inputs, targets), unroll=2)

    def predict(self, state: LearnerState, x: jax.Array) -> jax.Array:
        """o_k for input x_k without changing the state."""
        model = self.algorithm.model
        hidden = model.cell.apply(state.params["cell"], state.hidden, x)
        return model.readout.apply(state.params["readout"], hidden)

    def fit(
        self,
        state: LearnerState,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        chunk_size: int = 10_000,
        progress: bool = False,
        description: str = "training",
        on_chunk: Callable[[LearnerState, History], None] | None = None,
        history: History | None = None,
        backoff: LrBackoff | None = None,
        scored_by: np.ndarray | None = None,
    ) -> tuple[LearnerState, History]:
        """Walk the stream inputs (T, d), targets (T,) in chunks; `on_chunk(state, history)` is
        called after each. With `history` (of a run that stopped after len(history.losses)
        steps, at a chunk boundary) the walk continues from there, so a resumed run computes
        exactly the chunks the uninterrupted one would have.
        The progress bar shows the running loss the final metrics report: the mean loss for
        regression, the log-loss over labelled steps for classification, against `scored_by`
        (T,) when given (the evaluation labels, when the learner trains on delayed targets).
        Raises DivergenceError at the first non-finite loss, or when the parameters or the
        algorithm's state (influence matrix, buffers) stop being finite, unless `backoff`
        allows another retry of the chunk with a lower learning rate.
        Long because the chunk loop keeps the history, metrics and progress bar in step."""
        dtype = jax.tree_util.tree_leaves(state.params)[0].dtype
        inputs = np.asarray(inputs, dtype)
        targets = np.asarray(targets, np.int32 if self.classification else dtype)
        history = history or History(np.zeros(0, dtype), np.zeros((0, 0), dtype), [], 0.0)
        losses, outputs = [history.losses], [history.outputs] if len(history.losses) else []
        chunks, wall, backoffs = list(history.chunks), history.wall_seconds, list(history.backoffs)
        position, total = len(history.losses), len(inputs)
        running = Mean().update(history.losses)
        labels = targets if scored_by is None else np.asarray(scored_by)
        shown = LogLoss() if self.classification else Mean()  # the bar's loss
        if position:
            self._show(shown, history.outputs, history.losses, labels[:position])
        with progress_bar(progress) as bar:
            task = bar.add_task(description, total=total, completed=position)
            for begin in range(position, total, chunk_size):
                end = min(begin + chunk_size, total)
                chunk_x, chunk_y = jnp.asarray(inputs[begin:end]), jnp.asarray(targets[begin:end])
                state, chunk_losses, chunk_outputs, elapsed, spent = self._run_chunk(
                    state, chunk_x, chunk_y, begin, backoff, backoffs
                )
                wall += spent
                chunk_outputs = np.asarray(chunk_outputs)
                running.update(chunk_losses)
                self._show(shown, chunk_outputs, chunk_losses, labels[begin:end])
                accuracy = (
                    Accuracy().update(chunk_outputs, targets[begin:end]).get()
                    if self.classification
                    else float("nan")
                )
                chunk_loss = Mean().update(chunk_losses).get()
                chunks.append(
                    ChunkRecord(end, chunk_loss, running.get(), accuracy, (end - begin) / elapsed)
                )
                losses.append(chunk_losses)
                outputs.append(chunk_outputs)
                bar.update(
                    task,
                    advance=end - begin,
                    description=f"{description} loss {shown.get():.4g}",
                )
                if on_chunk is not None:
                    on_chunk(state, self._history(losses, outputs, chunks, wall, backoffs))
        return state, self._history(losses, outputs, chunks, wall, backoffs)

    def _show(
        self, metric: Mean | LogLoss, outputs: np.ndarray, losses: np.ndarray, labels: np.ndarray
    ) -> None:
        """Add a stretch of steps to the progress bar's running loss."""
        if isinstance(metric, LogLoss):
            metric.update(outputs, labels)
        else:
            metric.update(losses)

    def _run_chunk(
        self,
        state: LearnerState,
        inputs: jax.Array,
        targets: jax.Array,
        begin: int,
        backoff: LrBackoff | None,
        backoffs: list[tuple[int, float]],
    ) -> tuple[LearnerState, np.ndarray, jax.Array, float, float]:
        """Run one chunk that starts at step `begin`; on divergence, retry it from its start
        with a lower learning rate while `backoff` allows (appending to `backoffs`). Returns
        (state, losses, outputs, seconds of the last attempt, seconds of all attempts)."""
        # `run` donates its state, so keep a copy to go back to
        before = jax.tree_util.tree_map(jnp.copy, state) if backoff else None
        spent = 0.0
        while True:
            tic = time.perf_counter()
            state, (losses, outputs) = self.run(state, inputs, targets)
            losses = np.asarray(losses)
            elapsed = time.perf_counter() - tic
            spent += elapsed
            try:
                _check_finite(losses, state, begin)
                return state, losses, outputs, elapsed, spent
            except DivergenceError as error:
                if backoff is None or len(backoffs) >= backoff.max_times:
                    raise DivergenceError(error.step, error.what, len(backoffs)) from None
                state = before._replace(opt_state=scale_lr(before.opt_state, backoff.factor))
                before = jax.tree_util.tree_map(jnp.copy, state)
                backoffs.append((error.step, lr_scale(state.opt_state)))

    @staticmethod
    def _history(
        losses: list[np.ndarray],
        outputs: list[np.ndarray],
        chunks: list[ChunkRecord],
        wall: float,
        backoffs: list[tuple[int, float]],
    ) -> History:
        return History(np.concatenate(losses), np.concatenate(outputs), chunks, wall, backoffs)


def _check_finite(losses: np.ndarray, state: LearnerState, offset: int) -> None:
    """Raise DivergenceError naming the (1-based) step of the first non-finite loss, or the
    chunk's last step when the parameters or the algorithm's state went non-finite."""
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise DivergenceError(offset + int(bad[0]) + 1, "the loss")
    for what, tree in (
        ("a parameter", state.params),
        ("the gradient algorithm's state (influence matrix or buffers)", state.algo_state),
    ):
        leaves = [
            leaf
            for leaf in jax.tree_util.tree_leaves(tree)
            if jnp.issubdtype(leaf.dtype, jnp.inexact)
        ]
        if leaves and not all(bool(jnp.isfinite(leaf).all()) for leaf in leaves):
            raise DivergenceError(offset + len(losses), what)


class StreamLearner:
    """river-style stateful wrapper: `predict_one(x)` then `learn_one(x, y)` per example."""

    def __init__(self, learner: OnlineLearner, state: LearnerState) -> None:
        self.learner = learner
        self.state = state
        self._step = jax.jit(learner.step)
        self._predict = jax.jit(learner.predict)

    def predict_one(self, x: np.ndarray) -> np.ndarray:
        """Output o for input x (regression value (1,), or class logits (K,))."""
        return np.asarray(self._predict(self.state, jnp.asarray(x, self._dtype)))

    def learn_one(self, x: np.ndarray, y: float | int) -> float:
        """Predict, score and learn from one example; returns its prequential loss."""
        target = jnp.asarray(y, jnp.int32 if self.learner.classification else self._dtype)
        self.state, (loss, _) = self._step(self.state, jnp.asarray(x, self._dtype), target)
        return float(loss)

    @property
    def _dtype(self) -> Any:
        return jax.tree_util.tree_leaves(self.state.params)[0].dtype
