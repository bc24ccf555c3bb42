"""SnAp-n, the sparse n-step approximations of RTRL (Menick et al. 2020).

SnAp-n keeps only the entries of the influence matrix J_k = dS_k/dpsi (N x P, see rtrl.py)
that n steps of the recurrence can make nonzero, and drops the others after every step:

    J_{k+1} = (D_k J_k + I_k) ⊙ M,    D_k = dS_{k+1}/dS_k,  I_k = dS_{k+1}/dpsi,

with M the sparsity pattern of I_k for n = 1. For a row-local leaf (cells/base.py) I_k is
nonzero only on the diagonal blocks I_k[i, (i, q)], q running over row i of the leaf, and
((D J) ⊙ M)[i, (i, q)] = D[i, i] J[i, (i, q)]. So SnAp-1 keeps one row of sensitivities per
unit, E[i, q] = J[i, (i, q)], stored in the leaf's own layout, and computes

    E_{k+1}[i, q]    = D_k[i, i] E_k[i, q] + I_k[i, (i, q)]     (immediate term: one vjp of 1)
    dl_k/dpsi[i, q]  = delta_k[i] E_{k+1}[i, q],                 delta_k = dl_k/dS_{k+1},
    dl_k/dtheta      = (dpsi/dtheta)^T dl_k/dpsi                 (one vjp through `effective`).

Leaves that are not row-local (the GRU reset gate, the shared meanfield B) have dense columns
in I_k, so their SnAp-1 pattern is the full column block and keeping it would be dense RTRL on
those leaves (O(N^2) work per parameter). They are truncated to the immediate term instead,
J_{k+1}[:, c] = I_k[:, c], so their gradient is delta_k^T I_k[:, c]: one vjp, nothing stored.
These traces, and diag(D_k) by the cell's structure, live in traces.py. On an elementwise cell
D_k is diagonal, so SnAp-1 keeps every nonzero entry of J and equals exact RTRL.

Per step: memory O(P); time O(P) for elementwise cells, O(r P) for memory cells and
O(N cost(F)) for dense cells (O(N P) for Elman), against O(N^2 P) for dense RTRL.

SnAp-n for n >= 2 (`snap`): the pattern M_n grows with the recurrence graph (the units that
can feel a weight within n steps). For every cell here with dense recurrence (Elman, GRU,
meanfield dense and shared) D_k has no structural zeros, so M_2 is full and SnAp-2 is exact
RTRL. It differs where the recurrence is sparse: `elman(..., density=0.1)`. `snap` applies
M_n to dense RTRL's update, so it costs what dense RTRL costs (a sparse kernel would cost
O(nnz(M_n)) but XLA on CPU has no fast sparse-times-dense product for this); it serves to
measure how well SnAp-n follows the exact gradient, not to save time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.gradients.base import OnlineAlgorithm, effective_step, no_pending, whole_state
from streamgrad.gradients.rtrl import dense_influence
from streamgrad.gradients.traces import diagonal_traces
from streamgrad.model import Model


def snap1(model: Model) -> OnlineAlgorithm:
    """SnAp-1 for any cell: per-unit traces for row-local leaves, immediate-only otherwise."""
    init, advance = diagonal_traces(model)
    step = effective_step(model, advance)
    return OnlineAlgorithm(
        "snap1", model, init, step, no_pending, every_step=True, influence=whole_state
    )


def snap_pattern(model: Model, order: int) -> np.ndarray:
    """The SnAp-n pattern M_n in the transposed layout of dense RTRL: (P, N) bool, entry
    (p, u) true when unit u can depend on weight p within `order` steps.

    M_1 is the nonzero pattern of I_k (the units a weight acts on directly) and
    M_{m+1} = M_m | (M_m D^T != 0), D's pattern being the recurrence graph. Both patterns are
    read off the Jacobians at one random point (parameters, S, x), where structural nonzeros
    are nonzero with probability one."""
    if order < 1:
        raise ValueError(f"SnAp order must be >= 1, got {order}")
    cell = model.cell
    key_params, key_hidden, key_x = jax.random.split(jax.random.PRNGKey(0), 3)
    weights = cell.effective(model.init(key_params, jnp.float32)["cell"])
    hidden = jax.random.normal(key_hidden, (cell.hidden_size,))
    x = jax.random.normal(key_x, (cell.input_size,))
    graph = np.asarray(jax.jacfwd(cell.step, argnums=1)(weights, hidden, x)) != 0  # (N, N)
    immediate = jax.jacrev(lambda w: cell.step(w, hidden, x))(weights)
    pattern = np.concatenate(  # ravel_pytree order: sorted leaf names
        [
            np.asarray(immediate[name]).reshape(cell.hidden_size, -1).T != 0
            for name in sorted(weights)
        ]
    )
    reach = graph.T.astype(np.int64)
    for _ in range(order - 1):
        pattern = pattern | ((pattern.astype(np.int64) @ reach) > 0)
    return pattern


def snap(model: Model, order: int) -> OnlineAlgorithm:
    """SnAp-n for any cell: dense RTRL's update with the influence matrix cut to the pattern
    M_n after every step, J_{k+1}^T = (J_k^T D_k^T + I_k^T) ⊙ M_n (see `snap_pattern`).

    Where M_n is full (every cell here with dense recurrence, for n >= 2) this is exact RTRL,
    and the mask is skipped. The masked product costs what dense RTRL costs: this is the
    reference implementation of SnAp-n (exact to its definition), not a sparse kernel, so it
    saves memory traffic only in what the optimizer and gradient see. Order 1 gives the same
    gradients as the O(P) `snap1` on cells whose leaves are all row-local (tested)."""
    pattern = snap_pattern(model, order)
    init, advance = dense_influence(model, keep=None if pattern.all() else pattern)
    step = effective_step(model, advance)
    return OnlineAlgorithm(
        f"snap{order}",
        model,
        init,
        step,
        no_pending,
        every_step=True,
        influence=whole_state,
        order=order,
    )
