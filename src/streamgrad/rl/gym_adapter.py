"""Finite MDPs from gymnasium environments that publish their transition table.

Toy-text environments (FrozenLake-v1, CliffWalking-v1, Taxi-v4, ...) expose the whole model as
`env.unwrapped.P[x][a] = [(prob, next_state, reward, done), ...]` and the initial law as
`env.unwrapped.initial_state_distrib`; `from_gymnasium` turns them into a `FiniteMDP` (with
the absorbing state of `mdp.from_table` for `done`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streamgrad.errors import UserError
from streamgrad.rl.mdp import FiniteMDP, from_table


def from_gymnasium(env_id: str, *, gamma: float = 0.95, **make_kwargs: Any) -> FiniteMDP:
    """`gymnasium.make(env_id, **make_kwargs)` as a FiniteMDP; one-line error for an unknown id
    or an environment without a finite transition table."""
    import gymnasium

    try:
        env = gymnasium.make(env_id, **make_kwargs)
    except gymnasium.error.Error as error:
        raise UserError(f"--env {env_id}: {error}") from None
    unwrapped = env.unwrapped
    table = getattr(unwrapped, "P", None)
    spaces = (env.observation_space, env.action_space)
    if not isinstance(table, dict) or not all(
        isinstance(s, gymnasium.spaces.Discrete) for s in spaces
    ):
        raise UserError(
            f"--env {env_id}: needs discrete spaces and a transition table env.unwrapped.P"
        )
    n_states, n_actions = int(spaces[0].n), int(spaces[1].n)
    mu = getattr(unwrapped, "initial_state_distrib", None)
    if mu is None:
        raise UserError(f"--env {env_id}: no initial_state_distrib to start episodes from")
    mu = np.asarray(mu, np.float64)
    return from_table(table, n_states, n_actions, mu / mu.sum(), gamma=gamma, name=env_id)
