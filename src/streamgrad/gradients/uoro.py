"""UORO, unbiased online recurrent optimisation (Tallec & Ollivier 2017).

UORO replaces the influence matrix J_k = dS_k/dpsi (N x P, see rtrl.py) by a rank-one
estimate J_k ~ s_k theta_k^T with s_k (N,) and theta_k shaped like psi, unbiased at every
step: E[s_k theta_k^T] = J_k. With random signs nu_k in {-1, +1}^N drawn afresh each step,

    s_{k+1}     = rho0 D_k s_k + rho1 nu_k,          D_k = dS_{k+1}/dS_k,
    theta_{k+1} = theta_k / rho0 + (nu_k^T I_k) / rho1,  I_k = dS_{k+1}/dpsi,

so that s_{k+1} theta_{k+1}^T = D_k s_k theta_k^T + nu_k nu_k^T I_k + (terms odd in nu_k),
whose mean over nu_k is D_k J_k + I_k. The variance-minimising scalings are

    rho0 = sqrt((|theta_k| + eps) / (|D_k s_k| + eps)),
    rho1 = sqrt((|nu_k^T I_k| + eps) / (|nu_k| + eps)),

(norms over all of psi; rho1 is even in nu_k, so any eps > 0 keeps the estimate unbiased).
The gradient of l_k = loss(G(S_{k+1}), y_k) is

    dl_k/dpsi   ~ (delta_k . s_{k+1}) theta_{k+1},      delta_k = dl_k/dS_{k+1},
    dl_k/dtheta = (dpsi/dtheta)^T dl_k/dpsi             (one vjp through `effective`).

D_k s_k is one jvp and nu_k^T I_k one vjp of the step: O(P) time per step (about three
forward passes) and O(N + P) memory; no N x P matrix is formed. The key is part of the
state: each step splits it and draws nu_k from the new subkey, starting from
PRNGKey(seed) (a traced `seed` works, so `jax.vmap` over seeds averages estimates).
The readout's gradient is exact.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from streamgrad.cells import Params
from streamgrad.gradients.base import (
    Finish,
    OnlineAlgorithm,
    effective_step,
    no_pending,
    tree_scale,
    zeros_like_tree,
)
from streamgrad.model import Model, ModelParams


class UOROState(NamedTuple):
    s: jax.Array  # (N,), the hidden-state factor
    theta: Params  # shaped like psi, the parameter factor
    key: jax.Array  # PRNG key for the next step's signs


def _norm(tree: Params | jax.Array) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(tree)))


def uoro(model: Model, *, seed: int = 0, eps: float = 1e-7) -> OnlineAlgorithm:
    """UORO with random signs drawn from PRNGKey(seed); `eps` guards the rho scalings."""
    cell = model.cell

    def init(params: ModelParams, hidden: jax.Array) -> UOROState:
        weights = cell.effective(params["cell"])
        return UOROState(jnp.zeros_like(hidden), zeros_like_tree(weights), jax.random.PRNGKey(seed))

    def advance(
        weights: Params, hidden: jax.Array, state: UOROState, x: jax.Array, y: jax.Array
    ) -> tuple[jax.Array, Finish]:
        key, subkey = jax.random.split(state.key)
        nu = jax.random.rademacher(subkey, hidden.shape, hidden.dtype)
        new_hidden, immediate_vjp = jax.vjp(lambda w: cell.step(w, hidden, x), weights)
        _, propagated = jax.jvp(lambda s: cell.step(weights, s, x), (hidden,), (state.s,))
        (projected,) = immediate_vjp(nu)
        rho0 = jnp.sqrt((_norm(state.theta) + eps) / (_norm(propagated) + eps))
        rho1 = jnp.sqrt((_norm(projected) + eps) / (_norm(nu) + eps))
        s = rho0 * propagated + rho1 * nu
        theta = jax.tree_util.tree_map(lambda t, v: t / rho0 + v / rho1, state.theta, projected)

        def finish(delta: jax.Array, output: jax.Array) -> tuple[Params, UOROState]:
            return tree_scale(theta, delta @ s), UOROState(s, theta, key)

        return new_hidden, finish

    step = effective_step(model, advance)
    return OnlineAlgorithm(
        "uoro",
        model,
        init,
        step,
        no_pending,
        every_step=True,
        influence=lambda state: (state.s, state.theta),  # J ~ s theta^T
        seed=seed,
        eps=eps,
    )
