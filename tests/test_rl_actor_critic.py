"""The actor-critic experiment in quick mode: the qualitative results of the limit theory."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.experiments.actor_critic import run, table_text
from streamgrad.rl import exact
from streamgrad.rl.actor_critic import init_agent, make_runner
from streamgrad.rl.limit_ode import Rates
from streamgrad.rl.mdp import gridworld
from streamgrad.rl.networks import NetworkLaw


def test_quick_experiment_follows_the_limit_ode(tmp_path: Path) -> None:
    summary = run(tmp_path, env="random", seeds=(0, 1), quick=True, progress=False)
    written = json.loads((tmp_path / "summary.json").read_text())
    for key in ("ode_distance", "ode_distance_slope", "critic_error_last", "objective_last"):
        assert written[key] == summary[key]
    distance = summary["ode_distance"]
    assert distance["1000"] < 0.7 * distance["100"]  # shrinks with N (N^-1/2: factor 0.32)
    assert summary["ode_distance_slope"] < -0.2
    assert summary["critic_error_last"] < 0.5 * summary["critic_error_first"]
    assert summary["objective_last"] > summary["objective_first"] + 1.0
    assert summary["objective_last"] <= summary["optimal_objective"]
    for name in ("metrics.csv", "metrics.parquet", "ode_distance.png", "training.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "slope" in table_text(summary)


def test_episodes_restart_and_terminal_values_bootstrap_zero() -> None:
    # On a gridworld whose goal is one move away, the critic trained with the actor frozen
    # (zeta = 0) learns the exact Q of the uniform policy on the start state's pairs; the
    # absorbing state is never visited, so only bootstrapping 0 from it can give this value.
    grid = gridworld(1, 2, slip=0.0, step_reward=0.0, gamma=0.5)
    tables = exact.Tables.of(grid)
    rates = Rates(alpha=2.0, zeta0=0.0, t0=1.0, rho=0.0, eta=1.0, restart=0.5)
    width = 2000
    law = NetworkLaw()
    runner = make_runner(tables, width, rates)
    states = jax.vmap(lambda k: init_agent(k, tables, width, law))(jax.random.PRNGKey(0)[None])
    states, q, _ = runner(states, 40 * width)
    exact_q = exact.q_values(tables, jnp.full((3, 4), 0.25))
    np.testing.assert_allclose(np.asarray(q[0, :4]), np.asarray(exact_q[0]), atol=0.05)
    assert int(states.x[0]) in (0, 1)  # never left in the absorbing state 2
