"""Real-time recurrent learning: exact forward sensitivities of the hidden state.

With weights psi = psi(theta_cell) (see cells/base.py), RTRL carries the influence matrix
J_k = dS_k/dpsi (N x P) along the stream,

    J_{k+1} = D_k J_k + I_k,     D_k = dS_{k+1}/dS_k (N x N),   I_k = dS_{k+1}/dpsi (N x P),

and emits at every step the gradient of l_k = loss(G(S_{k+1}), y_k):

    dl_k/dpsi   = delta_k^T J_{k+1},   delta_k = dl_k/dS_{k+1},
    dl_k/dtheta = (dpsi/dtheta)^T dl_k/dpsi.

With theta frozen the sum of these gradients over a stream equals the BPTT gradient exactly.
Three paths, chosen by the cell's declared structure (`path="auto"`):

* dense (any cell): one product per step. D_k by forward mode (N jvps); the block-diagonal
  immediate term of row-local leaves read off one vjp with cotangent 1; reverse mode (N vjps,
  jacrev) only for the columns of leaves that are not row-local. The state is J stored
  transposed, J^T (P x N), so the product is J_k^T D_k^T, a (P x N) @ (N x N) GEMM (the same
  2 N^2 P flops as D_k J_k; the tall-skinny layout runs faster on CPU), a row-local leaf's
  diagonal block is one scatter of N windows of one column, and dl_k/dpsi = J_{k+1}^T delta_k.
  Cost O(N^2 P) per step, memory O(N P).
* elementwise (D_k diagonal, all leaves row-local): J is block diagonal; keep one row of
  sensitivities per unit, J_{k+1}[i] = D_k[i, i] J_k[i] + I_k[i]: the per-unit traces of
  traces.py with retention diag(D_k), exact here. O(P) time and memory.
* memory (S_{k+1} = f(psi, u_k, x_k), u_k = m(psi, S_k) of dimension r): keep only the
  memory's sensitivity M_k = du_k/dpsi (r x P). With p_k = df/du (N x r),
      dS_{k+1}/dpsi = df/dpsi + p_k M_k,
      dl_k/dpsi     = delta_k^T df/dpsi + (delta_k^T p_k) M_k,
      M_{k+1}       = dm/dpsi + w^T df/dpsi + (w^T p_k) M_k,   w = dm/dS at S_{k+1} (r x N),
  where every "v^T df/dpsi" is one vjp. O(r P) per step, never an N x P matrix.

Each path is an (init, advance) pair; `base.effective_step` adds the pullback through
`effective` and the readout end.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from streamgrad.cells import Cell, Params
from streamgrad.gradients.base import (
    Advance,
    Finish,
    Init,
    OnlineAlgorithm,
    effective_step,
    no_pending,
    whole_state,
)
from streamgrad.gradients.traces import diagonal_traces
from streamgrad.model import Model, ModelParams

Path = Literal["auto", "dense", "elementwise", "memory"]


class _Block(NamedTuple):
    """One weight leaf's rows [start, start + size) in the transposed influence matrix."""

    name: str
    start: int
    size: int
    row_local: bool


def _dense_layout(cell: Cell, weights: Params) -> list[_Block]:
    """The leaves in ravel order (ravel_pytree flattens dicts in sorted-key order)."""
    blocks, start = [], 0
    for name in sorted(weights):
        size = int(np.prod(weights[name].shape))
        blocks.append(_Block(name, start, size, name in cell.row_local))
        start += size
    return blocks


def _add_diagonal_blocks(transposed: jax.Array, block: _Block, values: jax.Array) -> jax.Array:
    """J^T[start + i q + j, i] += values[i, j] for a row-local leaf: row i of the leaf
    (q = size / N entries) sits in column i of J^T. One scatter of N windows (q, 1)."""
    n = transposed.shape[1]
    per_unit = block.size // n
    units = jnp.arange(n)
    corners = jnp.stack([block.start + units * per_unit, units], axis=1)  # (N, 2)
    numbers = jax.lax.ScatterDimensionNumbers(
        update_window_dims=(1, 2), inserted_window_dims=(), scatter_dims_to_operand_dims=(0, 1)
    )
    return jax.lax.scatter_add(
        transposed,
        corners,
        values.reshape(n, per_unit, 1),
        numbers,
        indices_are_sorted=True,
        unique_indices=True,
    )


def dense_influence(model: Model, keep: np.ndarray | None = None) -> tuple[Init, Advance]:
    """(init, advance) of the dense path; the state is J^T (P, N). With `keep` ((P, N) bool,
    the transposed layout), the influence matrix is cut to that pattern after every update
    (SnAp-n, see snap.py)."""
    cell = model.cell

    def init(params: ModelParams, hidden: jax.Array) -> jax.Array:
        flat, _ = ravel_pytree(cell.effective(params["cell"]))
        return jnp.zeros((flat.size, cell.hidden_size), flat.dtype)

    def advance(
        weights: Params, hidden: jax.Array, transposed: jax.Array, x: jax.Array, y: jax.Array
    ) -> tuple[jax.Array, Finish]:
        _, unravel = ravel_pytree(weights)
        blocks = _dense_layout(cell, weights)
        local = {name: weights[name] for name in cell.row_local}
        new_hidden, local_vjp = jax.vjp(lambda lw: cell.step({**weights, **lw}, hidden, x), local)
        (diagonal,) = local_vjp(jnp.ones_like(new_hidden))
        recurrence = jax.jacfwd(cell.step, argnums=1)(weights, hidden, x)
        transposed = transposed @ recurrence.T  # (D J)^T = J^T D^T: the one GEMM, (P, N) @ (N, N)

        rest = {block.name: weights[block.name] for block in blocks if not block.row_local}
        dense = jax.jacrev(lambda rw: cell.step({**weights, **rw}, hidden, x))(rest) if rest else {}
        for block in blocks:
            if block.row_local:
                transposed = _add_diagonal_blocks(transposed, block, diagonal[block.name])
            else:
                column_block = dense[block.name].reshape(cell.hidden_size, block.size)
                rows = slice(block.start, block.start + block.size)
                transposed = transposed.at[rows].add(column_block.T)
        if keep is not None:
            transposed = jnp.where(keep, transposed, 0)

        def finish(delta: jax.Array, output: jax.Array) -> tuple[Params, jax.Array]:
            return unravel(transposed @ delta), transposed  # dl_k/dpsi = J_{k+1}^T delta_k

        return new_hidden, finish

    return init, advance


def _rtrl_memory(model: Model) -> tuple[Init, Advance]:
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

    def advance(
        weights: Params, hidden: jax.Array, sensitivity: Params, x: jax.Array, y: jax.Array
    ) -> tuple[jax.Array, Finish]:
        u = memory(weights, hidden)
        new_hidden, f_vjp_full = jax.vjp(lambda w, m: step_from_memory(w, m, x), weights, u)

        def f_vjp(cotangent: jax.Array) -> tuple[Params]:
            return (f_vjp_full(cotangent)[0],)

        p = jax.jacfwd(lambda m: step_from_memory(weights, m, x))(u)  # (N, r)

        def finish(delta: jax.Array, output: jax.Array) -> tuple[Params, Params]:
            (direct,) = f_vjp(delta)
            coeff = delta @ p  # (r,)
            g_weights = jax.tree_util.tree_map(
                lambda a, m: a + jnp.tensordot(coeff, m, axes=1), direct, sensitivity
            )
            return g_weights, memory_sensitivity(weights, new_hidden, f_vjp, p, sensitivity)

        return new_hidden, finish

    return init, advance


_PATHS = {"dense": dense_influence, "elementwise": diagonal_traces, "memory": _rtrl_memory}


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
    init, advance = _PATHS[chosen](model)
    step = effective_step(model, advance)
    return OnlineAlgorithm(
        f"rtrl-{chosen}",
        model,
        init,
        step,
        no_pending,
        every_step=True,
        influence=whole_state,  # J^T, J's diagonal blocks, or the memory's du/dpsi
        path=chosen,
    )
