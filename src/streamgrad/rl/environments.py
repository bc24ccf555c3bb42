"""Environments for the recurrent agents: the POMDP wrapper, environment specs, observations.

`HideObservation` turns a fully observed gymnasium task into a partially observed one by
dropping coordinates of its observation vector (CartPole without its two velocities must
infer them from successive positions, i.e. remember). `make_env` builds an environment from a
spec string:

    tmaze:L                  the T-maze of `rl.tmaze` with corridor L (`tmaze`: L = 10)
    pomdp:ID[:I,J,...]       gymnasium.make(ID) without coordinates I, J, ... (default for
                             CartPole-v1: 1,3, the velocities)
    ID                       gymnasium.make(ID), e.g. FrozenLake-v1, CartPole-v1

The agents need a Discrete action space, and a Discrete (one-hot encoded) or 1-D Box
observation space (`observation_size`, `encode`).
"""

from __future__ import annotations

import gymnasium
import numpy as np

from streamgrad.errors import UserError
from streamgrad.rl.tmaze import TMaze

HIDDEN_BY_DEFAULT = {"CartPole-v1": (1, 3), "CartPole-v0": (1, 3)}


class HideObservation(gymnasium.ObservationWrapper):
    """Drops the coordinates `hidden` of a 1-D Box observation: obs -> obs[kept]."""

    def __init__(self, env: gymnasium.Env, hidden: tuple[int, ...]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gymnasium.spaces.Box) or len(space.shape) != 1:
            raise UserError(f"pomdp: needs a 1-D Box observation space, got {space}")
        size = space.shape[0]
        if not hidden or any(not 0 <= i < size for i in hidden) or len(set(hidden)) == size:
            raise UserError(f"pomdp: hide some of the coordinates 0..{size - 1}, got {hidden}")
        self.kept = np.array([i for i in range(size) if i not in set(hidden)])
        self.observation_space = gymnasium.spaces.Box(
            space.low[self.kept], space.high[self.kept], dtype=space.dtype
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.asarray(observation)[self.kept]


def _gym(env_id: str) -> gymnasium.Env:
    try:
        return gymnasium.make(env_id)
    except gymnasium.error.Error as error:
        raise UserError(f"--env {env_id}: {error}") from None


def _indices(text: str, spec: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UserError(
            f"--env {spec!r}: hidden coordinates must be integers, got {text!r}"
        ) from None


def make_env(spec: str) -> gymnasium.Env:
    """The environment a spec string names (module docstring); one-line errors."""
    name, _, rest = spec.partition(":")
    if name == "tmaze":
        if rest and not rest.isdigit():
            raise UserError(f"--env {spec!r}: use tmaze:L with a corridor length L >= 1")
        env: gymnasium.Env = TMaze(int(rest or 10))
    elif name == "pomdp":
        env_id, _, hidden = rest.partition(":")
        if not env_id:
            raise UserError(f"--env {spec!r}: use pomdp:ENV_ID[:I,J,...]")
        if not hidden and env_id not in HIDDEN_BY_DEFAULT:
            raise UserError(f"--env {spec!r}: name the coordinates to hide, pomdp:{env_id}:I,J")
        chosen = _indices(hidden, spec) if hidden else HIDDEN_BY_DEFAULT[env_id]
        env = HideObservation(_gym(env_id), chosen)
    else:
        env = _gym(spec)
    if not isinstance(env.action_space, gymnasium.spaces.Discrete):
        raise UserError(f"--env {spec!r}: needs a Discrete action space, got {env.action_space}")
    observation_size(env.observation_space, spec)
    return env


def observation_size(space: gymnasium.Space, spec: str = "env") -> int:
    """Length of the encoded observation: n for Discrete(n), d for Box((d,))."""
    if isinstance(space, gymnasium.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gymnasium.spaces.Box) and len(space.shape) == 1:
        return int(space.shape[0])
    raise UserError(f"--env {spec!r}: needs a Discrete or 1-D Box observation space, got {space}")


def encode(space: gymnasium.Space, observation: object) -> np.ndarray:
    """The observation as a float32 vector: one-hot for Discrete, as is for a 1-D Box."""
    if isinstance(space, gymnasium.spaces.Discrete):
        vector = np.zeros(int(space.n), np.float32)
        vector[int(observation) - int(space.start)] = 1.0
        return vector
    return np.asarray(observation, np.float32)
