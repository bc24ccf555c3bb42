"""Real-time recurrent learning: exact forward sensitivities of the hidden state.

With weights psi = psi(theta_cell) (see cells/base.py), RTRL carries the influence matrix
J_k = dS_k/dpsi (N x P) along the stream,

    J_{k+1} = D_k J_k + I_k,     D_k = dS_{k+1}/dS_k (N x N),   I_k = dS_{k+1}/dpsi (N x P),

and emits at every step the gradient of l_k = loss(G(S_{k+1}), y_k):

    dl_k/dpsi   = delta_k^T J_{k+1},   delta_k = dl_k/dS_{k+1},
    dl_k/dtheta = (dpsi/dtheta)^T dl_k/dpsi.

With theta frozen the sum of these gradients over a stream equals the BPTT gradient exactly.
Three paths, chosen by the cell's declared structure (`path="auto"`):

* dense (any cell): D_k by forward mode (N jvps), one (N x N) @ (N x P) product, the
  block-diagonal immediate term of row-local leaves read off one vjp with cotangent 1 and
  scattered onto its diagonal blocks, forward mode (jacfwd) only for leaves that are not
  row-local. Cost O(N^2 P) per step, memory O(N P).
* elementwise (D_k diagonal, all leaves row-local): J is block diagonal; keep one row of
  sensitivities per unit, J_{k+1}[i] = D_k[i, i] J_k[i] + I_k[i]. O(P) time and memory.
* memory (S_{k+1} = f(psi, u_k, x_k), u_k = m(psi, S_k) of dimension r): keep only the
  memory's sensitivity M_k = du_k/dpsi (r x P). With p_k = df/du (N x r),
      dS_{k+1}/dpsi = df/dpsi + p_k M_k,
      dl_k/dpsi     = delta_k^T df/dpsi + (delta_k^T p_k) M_k,
      M_{k+1}       = dm/dpsi + w^T df/dpsi + (w^T p_k) M_k,   w = dm/dS at S_{k+1} (r x N),
  where every "v^T df/dpsi" is one vjp. O(r P) per step, never an N x P matrix.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from streamgrad.cells import Cell, Params
from streamgrad.gradients.base import OnlineAlgorithm, StepResult, zeros_like_tree
from streamgrad.model import Model, ModelParams

Path = Literal["auto", "dense", "elementwise", "memory"]


def _loss_and_delta(
    model: Model, readout_params: Params, new_hidden: jax.Array, target: jax.Array
) -> tuple[jax.Array, jax.Array, Params, jax.Array]:
    """(loss, output, dl/dreadout, delta = dl/dS_{k+1})."""
    (loss, output), (g_readout, delta) = jax.value_and_grad(
        model.output_loss, argnums=(0, 1), has_aux=True
    )(readout_params, new_hidden, target)
    return loss, output, g_readout, delta


def _dense_layout(cell: Cell, weights: Params) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scatter indices (rows, cols) of the row-local diagonal blocks in the flat influence
    matrix, and the names of the leaves that are not row-local (in ravel order)."""
    rows, cols, offset, others = [], [], 0, []
    n = cell.hidden_size
    for name in sorted(weights):  # ravel_pytree flattens dicts in sorted-key order
        size = int(np.prod(weights[name].shape))
        if name in cell.row_local:
            per_unit = size // n
            rows.append(np.repeat(np.arange(n), per_unit))
            cols.append(offset + np.arange(size))
        else:
            others.append(name)
        offset += size
    concat = (lambda parts: np.concatenate(parts)) if rows else (lambda _: np.zeros(0, int))
    return concat(rows), concat(cols), others


def _rtrl_dense(model: Model) -> tuple[Any, Any]:
    cell = model.cell

    def init(params: ModelParams, hidden: jax.Array) -> jax.Array:
        flat, _ = ravel_pytree(cell.effective(params["cell"]))
        return jnp.zeros((cell.hidden_size, flat.size), flat.dtype)

    def step(
        params: ModelParams, hidden: jax.Array, influence: jax.Array, x: jax.Array, y: jax.Array
    ) -> StepResult:
        weights, pullback = jax.vjp(cell.effective, params["cell"])
        _, unravel = ravel_pytree(weights)
        rows, cols, others = _dense_layout(cell, weights)
        new_hidden = cell.step(weights, hidden, x)
        recurrence = jax.jacfwd(cell.step, argnums=1)(weights, hidden, x)
        influence = recurrence @ influence

        local = {name: weights[name] for name in cell.row_local}
        _, local_vjp = jax.vjp(lambda lw: cell.step({**weights, **lw}, hidden, x), local)
        (diagonal,) = local_vjp(jnp.ones_like(new_hidden))
        values = jnp.concatenate([diagonal[name].ravel() for name in sorted(local)])
        influence = influence.at[rows, cols].add(values)
        if others:
            rest = {name: weights[name] for name in others}
            dense = jax.jacfwd(lambda rw: cell.step({**weights, **rw}, hidden, x))(rest)
            offsets = np.cumsum([0] + [int(np.prod(weights[k].shape)) for k in sorted(weights)])
            start = dict(zip(sorted(weights), offsets[:-1], strict=True))
            for name in others:
                block = dense[name].reshape(cell.hidden_size, -1)
                influence = influence.at[:, start[name] : start[name] + block.shape[1]].add(block)

        loss, output, g_readout, delta = _loss_and_delta(model, params["readout"], new_hidden, y)
        (g_cell,) = pullback(unravel(delta @ influence))
        grads = {"cell": g_cell, "readout": g_readout}
        return StepResult(new_hidden, influence, output, loss, grads, True)

    return init, step


def _expand(vector: jax.Array, leaf: jax.Array) -> jax.Array:
    """Broadcast a per-unit vector (N,) against a leaf (N, ...)."""
    return vector.reshape(vector.shape + (1,) * (leaf.ndim - 1))


def _rtrl_elementwise(model: Model) -> tuple[Any, Any]:
    cell = model.cell

    def init(params: ModelParams, hidden: jax.Array) -> Params:
        return zeros_like_tree(cell.effective(params["cell"]))

    def step(
        params: ModelParams, hidden: jax.Array, influence: Params, x: jax.Array, y: jax.Array
    ) -> StepResult:
        weights, pullback = jax.vjp(cell.effective, params["cell"])
        ones = jnp.ones_like(hidden)
        new_hidden, immediate_vjp = jax.vjp(lambda w: cell.step(w, hidden, x), weights)
        (immediate,) = immediate_vjp(ones)
        _, recurrence = jax.jvp(lambda s: cell.step(weights, s, x), (hidden,), (ones,))
        influence = {
            name: _expand(recurrence, j) * j + immediate[name] for name, j in influence.items()
        }
        loss, output, g_readout, delta = _loss_and_delta(model, params["readout"], new_hidden, y)
        (g_cell,) = pullback({name: _expand(delta, j) * j for name, j in influence.items()})
        grads = {"cell": g_cell, "readout": g_readout}
        return StepResult(new_hidden, influence, output, loss, grads, True)

    return init, step


def _rtrl_memory(model: Model) -> tuple[Any, Any]:
    cell = model.cell
    memory, step_from_memory = cell.memory, cell.step_from_memory
    assert memory is not None and step_from_memory is not None

    def memory_sensitivity(
        weights: Params, hidden: jax.Array, f_vjp: Any, p: jax.Array | None, previous: Params | None
    ) -> Params:
        """M = dm/dpsi + w^T df/dpsi + (w^T p) M_prev at S = hidden, one row per memory dim."""
        u, m_vjp = jax.vjp(memory, weights, hidden)

        def row(e: jax.Array) -> Params:
            dm_dpsi, w = m_vjp(e)
            if f_vjp is None:  # S_0 does not depend on psi
                return dm_dpsi
            (through_f,) = f_vjp(w)
            return jax.tree_util.tree_map(
                lambda a, b, m: a + b + jnp.tensordot(w @ p, m, axes=1),
                dm_dpsi,
                through_f,
                previous,
            )

        return jax.vmap(row)(jnp.eye(u.shape[0], dtype=hidden.dtype))

    def init(params: ModelParams, hidden: jax.Array) -> Params:
        return memory_sensitivity(cell.effective(params["cell"]), hidden, None, None, None)

    def step(
        params: ModelParams, hidden: jax.Array, sensitivity: Params, x: jax.Array, y: jax.Array
    ) -> StepResult:
        weights, pullback = jax.vjp(cell.effective, params["cell"])
        u = memory(weights, hidden)
        new_hidden, f_vjp_full = jax.vjp(lambda w, m: step_from_memory(w, m, x), weights, u)

        def f_vjp(cotangent: jax.Array) -> tuple[Params]:
            return (f_vjp_full(cotangent)[0],)

        p = jax.jacfwd(lambda m: step_from_memory(weights, m, x))(u)  # (N, r)
        loss, output, g_readout, delta = _loss_and_delta(model, params["readout"], new_hidden, y)
        (direct,) = f_vjp(delta)
        coeff = delta @ p  # (r,)
        g_weights = jax.tree_util.tree_map(
            lambda a, m: a + jnp.tensordot(coeff, m, axes=1), direct, sensitivity
        )
        (g_cell,) = pullback(g_weights)
        sensitivity = memory_sensitivity(weights, new_hidden, f_vjp, p, sensitivity)
        grads = {"cell": g_cell, "readout": g_readout}
        return StepResult(new_hidden, sensitivity, output, loss, grads, True)

    return init, step


_PATHS = {"dense": _rtrl_dense, "elementwise": _rtrl_elementwise, "memory": _rtrl_memory}


def rtrl(model: Model, *, path: Path = "auto") -> OnlineAlgorithm:
    """Exact RTRL. `path="auto"` uses the cheapest exact path the cell's structure allows;
    `path="dense"` forces the general O(N^2 P) path (any cell)."""
    if path not in ("auto", *_PATHS):
        raise ValueError(f"unknown RTRL path {path!r}; use auto, {', '.join(_PATHS)}")
    chosen = model.cell.structure if path == "auto" else path
    if chosen != "dense" and chosen != model.cell.structure:
        raise ValueError(
            f"path {chosen!r} needs a cell with {chosen} structure; "
            f"{model.cell.name} is {model.cell.structure}"
        )
    init, step = _PATHS[chosen](model)

    def flush(params: ModelParams, state: Any) -> tuple[ModelParams, bool]:
        return zeros_like_tree(params), False

    return OnlineAlgorithm(
        f"rtrl-{chosen}", model, init, step, flush, every_step=True, options={"path": chosen}
    )
