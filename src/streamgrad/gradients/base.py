"""One interface for online gradient algorithms.

An algorithm walks the stream with the network, one step at a time:

    state  = algo.init(params, hidden)
    result = algo.step(params, hidden, state, x_k, y_k)
             -> S_{k+1}, new state, output o_k, loss l_k, gradient, ready
    grads, ready = algo.flush(params, state)       pending gradient at the end of a stream

`ready` says whether `grads` should be applied now: always for RTRL (a gradient of l_k every
step), every k1 steps for TBPTT, every K steps for an every-step algorithm wrapped by
`every.every` (the sum of its last K gradients). `every_step` is True when `ready` is always
True, so the learner can skip the conditional update. `influence_norm(algo, state)` reads the
size of the sensitivity state an algorithm carries (a blow-up shows there first). All functions
are pure and jit-compatible.

The every-step algorithms (RTRL, SnAp, UORO, RFLO) share one frame, `effective_step`: they
track sensitivities in the effective weights psi = psi(theta_cell) (cells/base.py), take the
readout end l_k, o_k, dl_k/dreadout and delta_k = dl_k/dS_{k+1} from the model, and pull
their gradient in psi back to theta_cell with one vjp through `effective`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from streamgrad.cells.base import Params, Structure
from streamgrad.model import Model, ModelParams

State = Any
Feedback = Literal["readout", "random"]  # RFLO's error signal (see rflo.py)


class StepResult(NamedTuple):
    hidden: jax.Array  # S_{k+1}, (N,)
    state: State  # the algorithm's state after step k
    output: jax.Array  # o_k, (K,)
    loss: jax.Array  # l_k, scalar
    grads: ModelParams  # gradient to apply now (zeros when not ready)
    ready: jax.Array | bool


Init = Callable[[ModelParams, jax.Array], State]
Step = Callable[[ModelParams, jax.Array, State, jax.Array, jax.Array], StepResult]


@dataclass(frozen=True)
class OnlineAlgorithm:
    """An online gradient algorithm: `init`, `step`, `flush` (see the module doc).

    The settings after `every_step` record how it was built, None where they do not apply.
    Like `Cell.options` they take no part in equality or hashing (the learner is a static jit
    argument): the functions, whose closures hold the settings, already do."""

    name: str
    model: Model
    init: Init
    step: Step
    flush: Callable[[ModelParams, State], tuple[ModelParams, jax.Array | bool]]
    every_step: bool
    # the influence matrix in the state, as factors J = f1 f2 ... (one for all but UORO's
    # s theta^T): pytrees whose Frobenius norms multiply to ||J||_F; None: it holds none
    influence: Callable[[State], tuple[Any, ...]] | None = field(default=None, compare=False)
    tau: int | None = field(default=None, compare=False)  # TBPTT: truncation length k2
    every: int | None = field(default=None, compare=False)  # update period (TBPTT: k1)
    path: Structure | None = field(default=None, compare=False)  # RTRL: the path taken
    order: int | None = field(default=None, compare=False)  # SnAp-n: n
    seed: int | None = field(default=None, compare=False)  # UORO signs, RFLO feedback matrix
    eps: float | None = field(default=None, compare=False)  # UORO: guard of the rho scalings
    decay: float | None = field(default=None, compare=False)  # RFLO: trace retention
    feedback: Feedback | None = field(default=None, compare=False)  # RFLO: error signal


def zeros_like_tree(tree: Any) -> Any:
    return jax.tree_util.tree_map(jnp.zeros_like, tree)


def frobenius(tree: Any) -> jax.Array:
    """sqrt(sum of squares) over all the leaves of a pytree, scaled by the largest |entry|
    first so that it does not overflow before the entries do (float32 squares overflow at
    |x| ~ 1.8e19); inf or NaN when an entry is; 0 for a tree without entries (a cell
    without parameters has no sensitivities)."""
    leaves = [jnp.ravel(leaf) for leaf in jax.tree_util.tree_leaves(tree)]
    if sum(leaf.size for leaf in leaves) == 0:
        return jnp.zeros(())
    flat = jnp.concatenate(leaves)
    scale = jnp.max(jnp.abs(flat))
    safe = jnp.where((scale > 0) & jnp.isfinite(scale), scale, 1.0)
    return jnp.where(jnp.isfinite(scale), safe * jnp.sqrt(jnp.sum(jnp.square(flat / safe))), scale)


def influence_norm(algorithm: OnlineAlgorithm, state: State) -> jax.Array:
    """||J||_F of the influence (sensitivity) matrix the algorithm carries, a scalar: RTRL's
    J = dS/dpsi on the dense path, its block-diagonal rows on the elementwise path and the
    memory's sensitivity du/dpsi on the memory path (J itself is never formed there); the
    traces of SnAp and RFLO; |s| |theta| = ||s theta^T||_F for UORO's rank-one estimate; the
    wrapped algorithm's for `every`. NaN for TBPTT and BPTT, which hold no sensitivities.
    A value that grows without bound means the recurrence stopped contracting."""
    if algorithm.influence is None:
        return jnp.asarray(jnp.nan)
    norm = jnp.ones(())
    for factor in algorithm.influence(state):
        norm = norm * frobenius(factor)
    return norm


def whole_state(state: State) -> tuple[State]:
    """The `influence` of an algorithm whose whole state is its influence matrix (or traces)."""
    return (state,)


def inner_influence(
    algorithm: OnlineAlgorithm, part: Callable[[State], State]
) -> Callable[[State], jax.Array] | None:
    """The `influence` of a wrapper whose state holds `algorithm`'s state at `part(state)`."""
    inner = algorithm.influence
    return None if inner is None else (lambda state: inner(part(state)))


def no_pending(params: ModelParams, state: State) -> tuple[ModelParams, bool]:
    """`flush` of an every-step algorithm: it never holds a pending gradient."""
    return zeros_like_tree(params), False


def loss_and_delta(
    model: Model, readout_params: Any, new_hidden: jax.Array, target: jax.Array
) -> tuple[jax.Array, jax.Array, Any, jax.Array]:
    """(loss l_k, output o_k, dl_k/dreadout, delta_k = dl_k/dS_{k+1} (N,)): the readout end
    that every online algorithm shares."""
    (loss, output), (g_readout, delta) = jax.value_and_grad(
        model.output_loss, argnums=(0, 1), has_aux=True
    )(readout_params, new_hidden, target)
    return loss, output, g_readout, delta


Finish = Callable[[jax.Array, jax.Array], tuple[Params, State]]
Advance = Callable[[Params, jax.Array, State, jax.Array, jax.Array], tuple[jax.Array, Finish]]


def effective_step(model: Model, advance: Advance) -> Step:
    """The `step` of an every-step algorithm from its sensitivity core `advance`.

    advance(psi, S_k, state, x_k, y_k) -> (S_{k+1} (N,), finish), and
    finish(delta_k (N,), o_k (K,)) -> (dl_k/dpsi shaped like psi, new state). Around them:

        psi, pullback = vjp(effective, theta_cell)
        l_k, o_k, dl_k/dreadout, delta_k = loss_and_delta(readout, S_{k+1}, y_k)
        dl_k/dtheta_cell = pullback(dl_k/dpsi) = (dpsi/dtheta_cell)^T dl_k/dpsi,

    and the gradient {"cell": dl_k/dtheta_cell, "readout": dl_k/dreadout} is ready every step.
    """

    def step(
        params: ModelParams, hidden: jax.Array, state: State, x: jax.Array, y: jax.Array
    ) -> StepResult:
        weights, pullback = jax.vjp(model.cell.effective, params["cell"])
        new_hidden, finish = advance(weights, hidden, state, x, y)
        loss, output, g_readout, delta = loss_and_delta(model, params["readout"], new_hidden, y)
        g_weights, state = finish(delta, output)
        (g_cell,) = pullback(g_weights)
        grads = {"cell": g_cell, "readout": g_readout}
        return StepResult(new_hidden, state, output, loss, grads, True)

    return step


def per_unit(vector: jax.Array, leaf: jax.Array) -> jax.Array:
    """Broadcast a per-unit vector (N,) against a leaf (N, ...) whose rows belong to units."""
    return vector.reshape(vector.shape + (1,) * (leaf.ndim - 1))


def tree_add(a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(jnp.add, a, b)


def tree_scale(tree: Any, scalar: jax.Array) -> Any:
    return jax.tree_util.tree_map(lambda leaf: leaf * scalar, tree)


def accumulate_gradient(
    algorithm: OnlineAlgorithm, params: ModelParams, inputs: jax.Array, targets: jax.Array
) -> tuple[ModelParams, jax.Array]:
    """Sum of every gradient the algorithm emits over the stream with parameters frozen
    (plus the pending gradient at the end), and the summed loss.

    For exact algorithms this equals the BPTT gradient of sum_k l_k (see `bptt_gradient`).
    inputs (T, d), targets (T,).
    """
    hidden0 = algorithm.model.cell.initial_hidden(inputs.dtype)

    def body(carry: Any, xy: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
        hidden, state, total, loss_sum = carry
        result = algorithm.step(params, hidden, state, *xy)
        total = tree_add(total, tree_scale(result.grads, jnp.asarray(result.ready, inputs.dtype)))
        return (result.hidden, result.state, total, loss_sum + result.loss), None

    carry0 = (
        hidden0,
        algorithm.init(params, hidden0),
        zeros_like_tree(params),
        jnp.zeros((), inputs.dtype),
    )
    (_, state, total, loss_sum), _ = jax.lax.scan(body, carry0, (inputs, targets))
    pending, ready = algorithm.flush(params, state)
    return tree_add(total, tree_scale(pending, jnp.asarray(ready, inputs.dtype))), loss_sum
