"""Actor/critic networks: closed-form gradients and NTK against autodiff; the limit kernel
against the empirical NTK of a wide network; the limit ODE's fixed point."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from streamgrad.rl import exact
from streamgrad.rl.limit_ode import Rates, kernel, vector_field
from streamgrad.rl.mdp import random_mdp
from streamgrad.rl.networks import NetworkLaw, add_gradients, empirical_ntk, init_network, outputs

LAW = NetworkLaw(w_scale=1.0, bias_scale=0.8, out_scale=1.3)


def test_updates_and_ntk_match_autodiff() -> None:
    params = init_network(jax.random.PRNGKey(0), 6, 7, LAW)
    rows, weights, step = jnp.array([4, 1, 2]), jnp.array([0.3, -1.2, 0.7]), 0.05
    moved = add_gradients(params, rows, weights, step)
    grads = jax.grad(lambda p: outputs(p, rows) @ weights)(params)
    for name in params:
        np.testing.assert_allclose(moved[name] - params[name], step * grads[name], atol=1e-14)
    jacobian = jax.jacrev(lambda p: outputs(p, jnp.arange(6)))(params)
    flat = jnp.concatenate([j.reshape(6, -1) for j in jax.tree_util.tree_leaves(jacobian)], 1)
    np.testing.assert_allclose(empirical_ntk(params), flat @ flat.T, atol=1e-12)


def test_limit_kernel_matches_the_empirical_ntk_of_a_wide_network() -> None:
    limit = kernel(5, LAW)
    wide = np.asarray(empirical_ntk(init_network(jax.random.PRNGKey(1), 5, 400_000, LAW)))
    assert np.abs(wide - limit).max() < 0.01
    off = limit[~np.eye(5, dtype=bool)]
    assert off.min() > 0.1  # the shared bias couples pairs: the kernel is not diagonal
    assert np.linalg.eigvalsh(limit).min() > 0
    monte_carlo = kernel(5, LAW, method="monte_carlo", samples=400_000, seed=2)
    assert np.abs(monte_carlo - limit).max() < 0.01


def test_exact_q_is_a_fixed_point_of_the_critic_ode() -> None:
    mdp = random_mdp(4, 2, gamma=0.9, seed=0)
    tables = exact.Tables.of(mdp)
    rates = Rates(alpha=3.0, zeta0=0.0, t0=1.0, rho=0.0, eta=0.2, restart=0.1)
    field = vector_field(tables, kernel(8, LAW), kernel(8, LAW), rates)
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(4, 2)))
    q = exact.q_values(tables, exact.policy(logits, 0.2))
    y = jnp.concatenate([q.ravel(), logits.ravel()])
    np.testing.assert_allclose(field(0.0, y), 0.0, atol=1e-12)
    assert np.abs(np.asarray(field(0.0, y + 0.1 * jnp.arange(16.0)))).max() > 1e-2


def test_actor_ode_ascends_the_objective_along_the_kernel() -> None:
    mdp = random_mdp(4, 3, gamma=0.9, seed=2)
    tables = exact.Tables.of(mdp)
    rates = Rates(alpha=0.0, zeta0=1.0, t0=1.0, rho=0.0, eta=0.1, restart=0.1)
    b = kernel(12, LAW)
    field = vector_field(tables, b, b, rates)
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)))
    q = exact.q_values(tables, exact.policy(logits, 0.1))
    d_p = field(0.0, jnp.concatenate([q.ravel(), logits.ravel()]))[12:]
    grad = exact.policy_gradient(tables, logits, 0.1).ravel()
    # With the exact critic and restart = 1 - gamma the actor's field is (1-gamma) B grad J.
    np.testing.assert_allclose(d_p, 0.1 * b @ grad, rtol=1e-9, atol=1e-12)
    assert float(grad @ d_p) > 0


@pytest.mark.parametrize("law", ["normal", "uniform"])
def test_initial_laws_have_the_stated_variance(law: str) -> None:
    params = init_network(jax.random.PRNGKey(3), 2, 200_000, NetworkLaw(out_scale=2.0, law=law))
    assert float(jnp.var(params["C"])) == pytest.approx(4.0, rel=0.02)
