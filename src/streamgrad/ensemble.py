"""Learning rates chosen online: G copies of one online learner with different learning rates,
run side by side in one jitted program, predicting with the copy that has done best so far.

Copies. Copy g is the learner with its learning rate multiplied by lrs[g]: its optimizer is
`optim.with_lr_scale(learner.optimizer)` with the multiplier c_g = lrs[g] in its state (build
the learner at learning rate 1 and `lrs` are the rates themselves). All copies start from the
same parameters, see the same stream and learn at every step; `jax.vmap` runs their steps as
one batched step, so G copies cost one program, not G.

Selection (causal). Each copy keeps an exponentially weighted running prequential loss
    R_g(k) = lam R_g(k-1) + (1 - lam) l_g(k),   R_g(0) = 0,   lam = 2^(-1 / half_life).
At step k the ensemble predicts with the copy c_k = argmin_g R_g(k-1) among the copies whose
output o_g(k) is finite (among all copies when none is): it uses the losses up to step k-1
and the outputs of step k, which do not depend on y_k. Ties go to the first copy. Copy c_k's
output and loss are the ensemble's prequential output and loss at step k.

Non-finite copies. After each step, a copy whose loss, parameters or hidden state is not
finite (and at the end of each chunk, one whose optimizer or algorithm state is not: a pass
over every influence matrix costs too much to make at every step) is restarted from the
copy with the lowest running loss among the finite ones: it takes that copy's whole state
(parameters, optimizer moments, hidden state, influence matrix or buffers, running loss) and
keeps its own learning-rate multiplier; its restart count goes up by one. When every copy
fails at once nothing is restarted, and `OnlineLearner.fit` stops with a DivergenceError as it
does for one learner.
(`LrBackoff` does not apply: the multipliers are the copies' learning rates.)

Record. The state counts, per copy, the steps at which it was chosen and its restarts, and
holds the copy chosen at the last step and the copy chosen most often in the last chunk (one
call of `run` or `trace`), which `fit` writes into each chunk record (`chosen_lr`, a column of
metrics.csv). The record is part of the state, so checkpoints carry it and a resumed run
reports what an uninterrupted one does. `trace` also returns the copy chosen at every step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.batched import vmap_learners
from streamgrad.model import ModelParams
from streamgrad.online import LearnerState, OnlineLearner
from streamgrad.optim import scale_lr, with_lr_scale

DEFAULT_HALF_LIFE = 100.0  # docs/real-series.md: 1,000 kept the early leader on short streams


class EnsembleState(NamedTuple):
    """The G copies (every leaf of `copies` has a leading axis G) and the selection record.
    `params` and `algo_state` are the stacked copies', so `OnlineLearner.fit` checks them."""

    copies: LearnerState
    running: jax.Array  # (G,) R_g(k), running prequential loss of each copy
    chosen: jax.Array  # () int32, the copy chosen at the last step
    counts: jax.Array  # (G,) int32, steps at which each copy was chosen
    restarts: jax.Array  # (G,) int32, times each copy was restarted
    chunk_choice: jax.Array  # () int32, the copy chosen most often in the last chunk

    @property
    def params(self) -> ModelParams:
        return self.copies.params

    @property
    def algo_state(self) -> Any:
        return self.copies.algo_state


@dataclass(frozen=True, init=False)
class LrEnsemble(OnlineLearner):
    """`learner` run with each of the learning-rate multipliers `lrs` (see the module
    docstring); an `OnlineLearner` whose state is an `EnsembleState`, so `fit`, `run`,
    `StreamLearner` and checkpoints work unchanged. `half_life` (steps) sets the decay of the
    running losses."""

    member: OnlineLearner  # the learner each copy runs: the optimizer with a multiplier
    lrs: tuple[float, ...]
    half_life: float

    def __init__(
        self,
        learner: OnlineLearner,
        lrs: Sequence[float],
        *,
        half_life: float = DEFAULT_HALF_LIFE,
    ) -> None:
        rates = tuple(float(lr) for lr in lrs)
        if not rates or not all(math.isfinite(lr) and lr > 0 for lr in rates):
            raise ValueError(f"learning rates must be finite numbers > 0, got {list(lrs)}")
        if not half_life > 0:
            raise ValueError(f"the running losses' half-life must be > 0, got {half_life}")
        member = OnlineLearner(learner.algorithm, with_lr_scale(learner.optimizer))
        fields = {
            "algorithm": learner.algorithm,
            "optimizer": member.optimizer,
            "member": member,
            "lrs": rates,
            "half_life": float(half_life),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def decay(self) -> float:
        """lam = 2^(-1 / half_life), the running losses' decay per step."""
        return 0.5 ** (1.0 / self.half_life)

    def init(self, params: ModelParams, dtype: Any = None) -> EnsembleState:
        """G copies of `member.init(params)`, copy g with its multiplier set to lrs[g]."""
        one = self.member.init(params, dtype)
        size = len(self.lrs)
        copies = jax.tree_util.tree_map(lambda leaf: jnp.stack([leaf] * size), one)
        multiplier = copies.opt_state[-1].hyperparams["step_size"]
        copies = copies._replace(
            opt_state=scale_lr(copies.opt_state, jnp.asarray(self.lrs, multiplier.dtype))
        )
        loss_dtype = jax.tree_util.tree_leaves(one.params)[0].dtype
        return EnsembleState(
            copies,
            jnp.zeros(size, loss_dtype),
            jnp.zeros((), jnp.int32),
            jnp.zeros(size, jnp.int32),
            jnp.zeros(size, jnp.int32),
            jnp.zeros((), jnp.int32),
        )

    def step(
        self, state: EnsembleState, x: jax.Array, y: jax.Array
    ) -> tuple[EnsembleState, tuple[jax.Array, jax.Array]]:
        """One prequential step of every copy; returns the new state and the chosen copy's
        (loss l_k, output o_k)."""
        state, (loss, output, _) = self._step(state, x, y)
        return state, (loss, output)

    def _step(
        self, state: EnsembleState, x: jax.Array, y: jax.Array
    ) -> tuple[EnsembleState, tuple[jax.Array, jax.Array, jax.Array]]:
        """`step`, also returning the chosen copy c_k."""
        copies, (losses, outputs) = vmap_learners(
            self.member.step, state.copies, x, y, in_axes=(None, None)
        )
        chosen = _choose(state.running, jnp.isfinite(outputs).all(axis=1))
        running = self.decay * state.running + (1.0 - self.decay) * losses
        copies, running, restarted = _restart_failed(copies, running, losses)
        new_state = state._replace(
            copies=copies,
            running=running,
            chosen=chosen,
            counts=state.counts.at[chosen].add(1),
            restarts=state.restarts + restarted,
        )
        return new_state, (losses[chosen], outputs[chosen], chosen)

    @partial(jax.jit, static_argnums=0, donate_argnums=1)
    def run(
        self, state: EnsembleState, inputs: jax.Array, targets: jax.Array
    ) -> tuple[EnsembleState, tuple[jax.Array, jax.Array]]:
        """Scan `step` over a chunk: inputs (C, d), targets (C,) -> the ensemble's losses (C,)
        and outputs (C, K)."""
        state, (losses, outputs, _) = self._walk(state, inputs, targets)
        return state, (losses, outputs)

    @partial(jax.jit, static_argnums=0, donate_argnums=1)
    def trace(
        self, state: EnsembleState, inputs: jax.Array, targets: jax.Array
    ) -> tuple[EnsembleState, tuple[jax.Array, jax.Array, jax.Array]]:
        """`run`, also returning the copy chosen at every step, (C,) int32."""
        return self._walk(state, inputs, targets)

    def _walk(
        self, state: EnsembleState, inputs: jax.Array, targets: jax.Array
    ) -> tuple[EnsembleState, tuple[jax.Array, jax.Array, jax.Array]]:
        """The scan of `run` and `trace`; then the whole state's check and the chunk's choice."""
        # unroll=2 as in OnlineLearner.run
        state, (losses, outputs, chosen) = jax.lax.scan(
            lambda s, xy: self._step(s, *xy), state, (inputs, targets), unroll=2
        )
        # the whole state is checked once per chunk, the parameters at every step
        copies, running, restarted = _restart_failed(
            state.copies, state.running, jnp.zeros_like(state.running), whole=True
        )
        in_chunk = jnp.zeros(len(self.lrs), jnp.int32).at[chosen].add(1)
        state = state._replace(
            copies=copies,
            running=running,
            restarts=state.restarts + restarted,
            chunk_choice=jnp.argmax(in_chunk).astype(jnp.int32),
        )
        return state, (losses, outputs, chosen)

    def chosen_lr(self, state: EnsembleState) -> float:
        """The learning rate chosen most often in the last chunk."""
        return self.lrs[int(state.chunk_choice)]

    def predict(self, state: EnsembleState, x: jax.Array) -> jax.Array:
        """o_k of the copy `step` would choose for input x_k, without changing the state."""
        outputs = jax.vmap(self.member.predict, in_axes=(0, None))(state.copies, x)
        return outputs[_choose(state.running, jnp.isfinite(outputs).all(axis=1))]


def _choose(running: jax.Array, usable: jax.Array) -> jax.Array:
    """argmin of the running losses (G,) over the `usable` copies (over all when none is)."""
    among = jnp.where(usable, running, jnp.inf)
    return jnp.where(usable.any(), jnp.argmin(among), jnp.argmin(running)).astype(jnp.int32)


def _restart_failed(
    copies: LearnerState, running: jax.Array, losses: jax.Array, *, whole: bool = False
) -> tuple[LearnerState, jax.Array, jax.Array]:
    """Restart every copy whose loss, parameters or hidden state (with `whole`, also its
    optimizer and algorithm state) is not finite from the finite copy with the lowest running
    loss, keeping its own learning-rate multiplier (the last element of its optimizer state).
    Returns (copies, running losses (G,), restarted (G,) int32)."""
    parts = copies if whole else (copies.params, copies.hidden)
    healthy = jnp.isfinite(losses)
    for leaf in jax.tree_util.tree_leaves(parts):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            healthy &= jnp.isfinite(leaf).reshape(len(losses), -1).all(axis=1)
    restart = ~healthy & healthy.any()
    source = jnp.argmin(jnp.where(healthy, running, jnp.inf))

    def pick(leaf: jax.Array) -> jax.Array:
        return jnp.where(restart.reshape((-1,) + (1,) * (leaf.ndim - 1)), leaf[source], leaf)

    def restarted(copies: LearnerState, running: jax.Array) -> tuple[LearnerState, jax.Array]:
        fresh = jax.tree_util.tree_map(pick, copies)
        fresh = fresh._replace(opt_state=(*fresh.opt_state[:-1], copies.opt_state[-1]))
        return fresh, pick(running)

    # the copy is skipped (no pass over the influence matrices) unless a copy failed
    copies, running = jax.lax.cond(restart.any(), restarted, lambda *state: state, copies, running)
    return copies, running, restart.astype(jnp.int32)


def ensemble_summary(
    state: EnsembleState, lrs: Sequence[float], half_life: float
) -> dict[str, Any]:
    """What summary.json says of an ensemble run: the rates, the rate chosen at the last
    step, the share of steps each rate was chosen, each copy's final running loss (as a
    weighted mean: R_g / (1 - lam^T)) and its restarts."""
    counts = np.asarray(state.counts, np.int64)
    steps = int(counts.sum())
    weight = 1.0 - 0.5 ** (steps / half_life) if steps else float("nan")
    return {
        "lrs": list(lrs),
        "half_life": half_life,
        "final_chosen_lr": float(lrs[int(state.chosen)]),
        "chosen_fraction": (counts / max(steps, 1)).tolist(),
        "final_running_loss": (np.asarray(state.running, np.float64) / weight).tolist(),
        "restarts": np.asarray(state.restarts).tolist(),
    }


def base_lr(lr: float | tuple[float, ...]) -> float:
    """The learning rate to build the shared optimizer with for `lr` (one rate, or a tuple of
    several): 1 for several, so that each copy's multiplier is its rate; else `lr`."""
    return 1.0 if isinstance(lr, tuple) else lr


def with_lrs(
    learner: OnlineLearner, lr: float | tuple[float, ...], half_life: float = DEFAULT_HALF_LIFE
) -> OnlineLearner:
    """`learner` (built at `base_lr(lr)`) itself for one rate, its `LrEnsemble` for several."""
    return LrEnsemble(learner, lr, half_life=half_life) if isinstance(lr, tuple) else learner
