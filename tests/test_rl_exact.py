"""Exact answers on finite MDPs against simulation and finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from streamgrad.errors import UserError
from streamgrad.rl import exact
from streamgrad.rl.gym_adapter import from_gymnasium
from streamgrad.rl.mdp import gridworld, random_mdp


def _random_policy(n_states: int, n_actions: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(n_actions), size=n_states)


def test_policy_evaluation_matches_monte_carlo_returns() -> None:
    mdp = random_mdp(4, 2, gamma=0.8, seed=3)
    f = _random_policy(4, 2, seed=1)
    q = np.asarray(exact.q_values(exact.Tables.of(mdp), jnp.asarray(f)))
    rng = np.random.default_rng(0)
    runs, horizon = 20_000, 60  # gamma^60 ~ 1.5e-6: truncation far below the sampling error
    cdf_p, cdf_f = np.cumsum(mdp.p, -1), np.cumsum(f, -1)
    for x0 in range(4):
        for a0 in range(2):
            x, a = np.full(runs, x0), np.full(runs, a0)
            total = np.zeros(runs)
            for k in range(horizon):
                nxt = (rng.random(runs)[:, None] > cdf_p[x, a]).sum(-1)
                total += mdp.gamma**k * mdp.rewards[x, a, nxt]
                x = nxt
                a = (rng.random(runs)[:, None] > cdf_f[x]).sum(-1)
            error = total.std() / np.sqrt(runs)
            assert abs(total.mean() - q[x0, a0]) < 4 * error, (x0, a0, total.mean(), q[x0, a0])


@pytest.mark.parametrize("episodic", [False, True])
def test_sampling_law_matches_the_restarting_chain(episodic: bool) -> None:
    # Restart w.p. 0.1 per step, and (episodic) on entering the gridworld's terminal state.
    mdp = gridworld(2, 3, slip=0.2, gamma=0.9) if episodic else random_mdp(5, 3, seed=1)
    n_states, n_actions = mdp.n_states, mdp.n_actions
    f = _random_policy(n_states, n_actions, seed=2)
    nu = np.asarray(exact.sampling_law(exact.Tables.of(mdp), jnp.asarray(f), 0.1))
    rng = np.random.default_rng(0)
    counts = np.zeros((n_states, n_actions))
    x = 0
    steps = 200_000
    for u, v, w, s in rng.random((steps, 4)):
        a = int((v > np.cumsum(f[x])).sum())
        counts[x, a] += 1
        x = int((w > np.cumsum(mdp.p[x, a])).sum())
        if u < 0.1 or mdp.terminal[x]:
            x = int((s > np.cumsum(mdp.mu)).sum())
    assert nu.sum() == pytest.approx(1.0)
    assert np.abs(counts / steps - nu).max() < 0.01
    assert nu[mdp.terminal].sum() == 0.0


def test_policy_gradient_matches_finite_differences_and_the_optimum_dominates() -> None:
    mdp = random_mdp(4, 3, gamma=0.9, seed=5)
    tables = exact.Tables.of(mdp)
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)))
    grad = np.asarray(exact.policy_gradient(tables, logits, 0.1))
    eps = 1e-6
    for x, a in [(0, 0), (2, 1), (3, 2)]:
        bump = jnp.zeros((4, 3)).at[x, a].set(eps)
        up = exact.objective_of_logits(tables, logits + bump, 0.1)
        down = exact.objective_of_logits(tables, logits - bump, 0.1)
        assert float(up - down) / (2 * eps) == pytest.approx(grad[x, a], rel=1e-6, abs=1e-9)
    best = exact.optimal_objective(mdp)
    best_soft = exact.optimal_objective(mdp, 0.1)
    assert best >= best_soft >= float(exact.objective_of_logits(tables, logits, 0.1))
    # The optimum is a fixed point of the Bellman optimality operator.
    q_best = np.zeros((4, 3))
    for _ in range(500):
        q_best = mdp.mean_reward + mdp.gamma * mdp.p @ q_best.max(1)
    assert best == pytest.approx(float(mdp.mu @ q_best.max(1)), rel=1e-9)


def test_episodic_tables_get_an_absorbing_state() -> None:
    lake = from_gymnasium("FrozenLake-v1", gamma=0.95)
    assert (lake.n_states, lake.n_actions) == (17, 4)
    assert np.all(lake.p[16, :, 16] == 1.0) and np.all(lake.rewards[16] == 0.0)
    assert lake.mu[0] == 1.0 and lake.terminal.tolist() == [False] * 16 + [True]
    q = np.asarray(exact.q_values(exact.Tables.of(lake), jnp.full((17, 4), 0.25)))
    assert np.all(q[16] == 0.0) and 0.0 < q[14, 2] < 1.0  # right of cell 14 may reach the goal
    cliff = from_gymnasium("CliffWalking-v1", gamma=0.9)  # 13 moves of reward -1 round the cliff
    assert exact.optimal_objective(cliff) == pytest.approx(-(1 - 0.9**13) / (1 - 0.9))
    grid = gridworld(3, 3, slip=0.0, step_reward=0.0, gamma=0.5)
    assert exact.optimal_objective(grid) == pytest.approx(0.5**3)  # 4 moves, reward at the 4th
    with pytest.raises(UserError, match="NoSuchEnv"):
        from_gymnasium("NoSuchEnv-v0")
    with pytest.raises(UserError, match="transition table"):
        from_gymnasium("CartPole-v1")


def test_policy_is_a_softmax_mixed_with_uniform_exploration() -> None:
    f = exact.policy(jnp.array([[0.0, 50.0]]), 0.2)
    np.testing.assert_allclose(np.asarray(f), [[0.1, 0.9]], atol=1e-12)
    assert jax.numpy.allclose(exact.policy(jnp.zeros((3, 4)), 0.5), 0.25)
