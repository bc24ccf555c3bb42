"""Per-unit eligibility traces: the O(P) core shared by SnAp-1, RFLO and elementwise RTRL.

For a row-local leaf (cells/base.py) the immediate term I_k = dS_{k+1}/dpsi is nonzero only
on the diagonal blocks I_k[i, (i, q)], q running over row i of the leaf. A trace keeps one
row of sensitivities per unit, E[i, q] ~ J[i, (i, q)] of the influence matrix J = dS/dpsi
(see rtrl.py), stored in the leaf's own layout (N, ...), with a per-unit retention r_k (N,):

    E_{k+1}[i, q]   = r_k[i] E_k[i, q] + I_k[i, (i, q)]     (immediate term: one vjp of 1),
    dl_k/dpsi[i, q] = g_k[i] E_{k+1}[i, q]                   (g_k (N,) the error signal).

Leaves that are not row-local (the GRU reset gate, the shared meanfield B) have dense columns
in I_k; they are kept immediate-only, dl_k/dpsi = g_k^T I_k (one vjp, nothing stored).

* r_k = diag(D_k), D_k = dS_{k+1}/dS_k, g_k = delta_k = dl_k/dS_{k+1}: SnAp-1 (snap.py); on
  an elementwise cell D_k is diagonal and every leaf row-local, so this is exact RTRL.
* r_k = a constant `decay`, g_k = delta_k or a random feedback: RFLO (rflo.py).

diag(D_k) by the cell's structure (`recurrence_diagonal`):
* elementwise: D_k is diagonal, so diag(D_k) = D_k 1, one jvp.
* memory: D_k = p w with p = df/du (N x r), w = dm/dS (r x N); diag(D_k)_i = sum_r p_ir w_ri,
  r jvps and r vjps.
* dense: a Jacobian's diagonal costs as much as the Jacobian in general (there is no
  one-pass trick for a black-box step), so D_k is formed by N jvps (one batched forward pass
  of width N) and its diagonal kept. A cell-provided per-unit derivative would remove this.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from streamgrad.cells import Cell, Params
from streamgrad.gradients.base import Advance, Finish, Init, per_unit
from streamgrad.model import Model, ModelParams

ImmediateVjp = Callable[[jax.Array], tuple[Params]]


def recurrence_diagonal(cell: Cell, weights: Params, hidden: jax.Array, x: jax.Array) -> jax.Array:
    """diag(dS_{k+1}/dS_k), shape (N,): exact for every structure (cost in the module doc)."""
    if cell.structure == "elementwise":
        _, row_sums = jax.jvp(
            lambda s: cell.step(weights, s, x), (hidden,), (jnp.ones_like(hidden),)
        )
        return row_sums  # D 1, the diagonal when D is diagonal
    if cell.structure == "memory":
        memory, step_from_memory = cell.memory, cell.step_from_memory
        assert memory is not None and step_from_memory is not None
        u, memory_vjp = jax.vjp(lambda s: memory(weights, s), hidden)
        p = jax.jacfwd(lambda m: step_from_memory(weights, m, x))(u)  # (N, r)
        (w,) = jax.vmap(memory_vjp)(jnp.eye(u.shape[0], dtype=u.dtype))  # (r, N)
        return jnp.einsum("ir,ri->i", p, w)
    return jnp.diagonal(jax.jacfwd(lambda s: cell.step(weights, s, x))(hidden))


def initial_traces(cell: Cell, params: ModelParams) -> Params:
    """E_0 = 0 for the row-local leaves (S_0 does not depend on psi)."""
    weights = cell.effective(params["cell"])
    return {name: jnp.zeros_like(weights[name]) for name in cell.row_local}


def trace_step(
    cell: Cell,
    weights: Params,
    hidden: jax.Array,
    x: jax.Array,
    traces: Params,
    retention: jax.Array,
) -> tuple[jax.Array, Params, ImmediateVjp]:
    """S_{k+1} and the per-unit traces E_{k+1}[i] = retention_i E_k[i] + I_k[i, block i] of the
    row-local leaves, plus the vjp of the step in psi (for the leaves kept immediate-only)."""
    new_hidden, immediate_vjp = jax.vjp(lambda w: cell.step(w, hidden, x), weights)
    (immediate,) = immediate_vjp(jnp.ones_like(new_hidden))
    traces = {name: per_unit(retention, e) * e + immediate[name] for name, e in traces.items()}
    return new_hidden, traces, immediate_vjp


def trace_gradient(
    weights: Params, traces: Params, immediate_vjp: ImmediateVjp, signal: jax.Array
) -> Params:
    """Gradient in psi: signal_i E[i] on the traced (row-local) leaves and signal^T I_k on the
    other leaves (immediate term only)."""
    grads = {name: per_unit(signal, e) * e for name, e in traces.items()}
    if len(traces) < len(weights):
        (direct,) = immediate_vjp(signal)
        grads.update({name: g for name, g in direct.items() if name not in traces})
    return grads


def diagonal_traces(model: Model) -> tuple[Init, Advance]:
    """(init, advance) of the traces with retention diag(D_k) and signal delta_k (SnAp-1, and
    exact RTRL on elementwise cells); `base.effective_step` makes the step. State: the traces."""
    cell = model.cell

    def init(params: ModelParams, hidden: jax.Array) -> Params:
        return initial_traces(cell, params)

    def advance(
        weights: Params, hidden: jax.Array, traces: Params, x: jax.Array, y: jax.Array
    ) -> tuple[jax.Array, Finish]:
        retention = recurrence_diagonal(cell, weights, hidden, x)
        new_hidden, traces, immediate_vjp = trace_step(cell, weights, hidden, x, traces, retention)

        def finish(delta: jax.Array, output: jax.Array) -> tuple[Params, Params]:
            return trace_gradient(weights, traces, immediate_vjp, delta), traces

        return new_hidden, finish

    return init, advance
