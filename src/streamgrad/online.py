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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from streamgrad.errors import DivergenceError
from streamgrad.gradients.base import OnlineAlgorithm, influence_norm
from streamgrad.metrics import Accuracy, LogLoss, Mean
from streamgrad.model import ModelParams
from streamgrad.optim import lr_scale, scale_lr
from streamgrad.progress import progress_bar
from streamgrad.walk import Chunk, ChunkRecord, History, LrBackoff, Walk


class LearnerState(NamedTuple):
    params: ModelParams
    opt_state: optax.OptState
    hidden: jax.Array  # S_k, (N,)
    algo_state: Any
    step: jax.Array  # k, number of examples seen


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
        """Walk the in-memory stream inputs (T, d), targets (T,) in chunks (`fit_stream` over
        the arrays); `on_chunk(state, history)` is called after each. With `history` (of a run
        that stopped after len(history.losses) steps, at a chunk boundary) the walk continues
        from there, so a resumed run computes exactly the chunks the uninterrupted one would
        have. `scored_by` (T,): the labels the progress bar scores the outputs against (the
        evaluation labels, when the learner trains on delayed targets). Raises as `fit_stream`.
        """
        dtype = jax.tree_util.tree_leaves(state.params)[0].dtype
        inputs = np.asarray(inputs, dtype)
        targets = np.asarray(targets, np.int32 if self.classification else dtype)
        history = history or History(np.zeros(0, dtype), np.zeros((0, 0), dtype), [], 0.0)
        position = len(history.losses)
        labels = targets if scored_by is None else np.asarray(scored_by)
        walk = Walk(position, history.wall_seconds, list(history.backoffs))
        walk.running.update(history.losses)
        walk.shown = self._bar_loss()
        if position:
            self._show(walk.shown, history.outputs, history.losses, labels[:position])
        losses, outputs = [history.losses], [history.outputs] if position else []
        chunks = list(history.chunks)
        walked = self.fit_stream(
            state,
            [(inputs[position:], targets[position:], labels[position:])],
            chunk_size=chunk_size,
            walk=walk,
            total=len(inputs),
            progress=progress,
            description=description,
            backoff=backoff,
        )
        for state, chunk in walked:  # the last state is the result
            losses.append(chunk.losses)
            outputs.append(chunk.outputs)
            chunks.append(chunk.record)
            if on_chunk is not None:
                on_chunk(state, self._history(losses, outputs, chunks, walk))
        return state, self._history(losses, outputs, chunks, walk)

    def fit_stream(
        self,
        state: LearnerState,
        batches: Iterable[tuple[np.ndarray, ...]],
        *,
        chunk_size: int = 10_000,
        walk: Walk | None = None,
        total: int | None = None,
        progress: bool = False,
        description: str = "training",
        backoff: LrBackoff | None = None,
    ) -> Iterator[tuple[LearnerState, Chunk]]:
        """Walk a stream given as batches, for streams that do not fit in memory: a generator
        of (state after the chunk, `Chunk`), one per chunk of `chunk_size` steps.

        batches: (inputs (n, d), targets (n,)) or (inputs, targets, labels (n,)) of any sizes
            n; they are cut and joined into chunks of exactly `chunk_size` steps (the last one
            shorter), so the chunks, and therefore every number, do not depend on how the
            stream was batched. `labels` are what the progress bar scores the outputs
            against (default: the targets).
        walk: where the walk stands (steps done, time, back-offs, running losses), updated in
            place; give the one of a stopped run to continue it (see `Walk`).
        total: the stream length, for the progress bar, when known.
        The yielded state is the learner's own (its buffers are donated to the next chunk):
        use or copy it before asking for the next chunk. The progress bar shows the running
        loss the final metrics report: the mean loss for regression, the log-loss over
        labelled steps for classification.
        Raises DivergenceError at the first non-finite loss, or when the parameters or the
        algorithm's state (influence matrix, buffers) stop being finite, unless `backoff`
        allows another retry of the chunk with a lower learning rate.
        """
        walk = walk if walk is not None else Walk()
        dtype = jax.tree_util.tree_leaves(state.params)[0].dtype
        target_dtype = np.int32 if self.classification else dtype
        walk.shown = walk.shown or self._bar_loss()
        with progress_bar(progress) as bar:
            task = bar.add_task(description, total=total, completed=walk.step)
            for inputs, given, labels in _chunks(batches, chunk_size):
                targets = np.asarray(given, target_dtype)
                begin = end = walk.step
                state, losses, outputs, elapsed, spent = self._run_chunk(
                    state,
                    jnp.asarray(np.asarray(inputs, dtype)),
                    jnp.asarray(targets),
                    begin,
                    backoff,
                    walk.backoffs,
                )
                end = walk.step = begin + len(targets)
                walk.wall_seconds += spent
                outputs = np.asarray(outputs)
                self._show(walk.shown, outputs, losses, labels)
                record = self._record(state, walk, losses, outputs, targets, elapsed)
                bar.update(
                    task,
                    advance=end - begin,
                    description=f"{description} loss {walk.shown.get():.4g}",
                )
                yield state, Chunk(begin, given, losses, outputs, record)

    def _record(
        self,
        state: LearnerState,
        walk: Walk,
        losses: np.ndarray,
        outputs: np.ndarray,
        targets: np.ndarray,
        seconds: float,
    ) -> ChunkRecord:
        """The record of the chunk that just ended at step `walk.step` (its losses (C,),
        outputs (C, K) and targets (C,), run in `seconds`); adds it to the running loss."""
        walk.running.update(losses)
        accuracy = (
            Accuracy().update(outputs, targets).get() if self.classification else float("nan")
        )
        return ChunkRecord(
            walk.step,
            Mean().update(losses).get(),
            walk.running.get(),
            accuracy,
            len(losses) / seconds,
            float(influence_norm(self.algorithm, state.algo_state)),
            self.chosen_lr(state),
        )

    def chosen_lr(self, state: LearnerState) -> float:
        """The learning rate the learner chose most often in its last chunk: NaN for one
        learner, whose rate is fixed (`ensemble.LrEnsemble` chooses among several)."""
        return float("nan")

    def _bar_loss(self) -> Mean | LogLoss:
        """The progress bar's running loss: what the final metrics report."""
        return LogLoss() if self.classification else Mean()

    @staticmethod
    def _show(
        metric: Mean | LogLoss, outputs: np.ndarray, losses: np.ndarray, labels: np.ndarray
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
        losses: list[np.ndarray], outputs: list[np.ndarray], chunks: list[ChunkRecord], walk: Walk
    ) -> History:
        wall, backoffs = walk.wall_seconds, walk.backoffs
        return History(np.concatenate(losses), np.concatenate(outputs), chunks, wall, backoffs)


def _chunks(
    batches: Iterable[tuple[np.ndarray, ...]], size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(inputs, targets, labels) of `size` steps each (the last one shorter) from batches of
    (inputs, targets) or (inputs, targets, labels) of any sizes; slices of a batch that holds
    whole chunks are views, not copies."""
    pending: list[tuple[np.ndarray, ...]] = []
    count = 0
    for batch in batches:
        pending.append(tuple(batch) if len(batch) == 3 else (*batch, batch[1]))
        count += len(pending[-1][1])
        while count >= size:
            joined = pending[0] if len(pending) == 1 else _join(pending)
            yield joined[0][:size], joined[1][:size], joined[2][:size]
            count -= size
            pending = [tuple(part[size:] for part in joined)] if count else []
    if count:
        yield _join(pending)


def _join(batches: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (inputs, targets, labels) of consecutive batches, concatenated."""
    inputs, targets, labels = (np.concatenate(part) for part in zip(*batches, strict=True))
    return inputs, targets, labels


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
