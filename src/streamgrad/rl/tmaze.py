"""The T-maze: a partially observed task that needs memory over the length of a corridor.

Positions 0..L along a corridor of length L (`corridor`), the junction at L, two arms above
and below it. An episode starts at position 0 with a cue c in {up, down}, drawn uniformly.
Observations are K + 2 bits (K = `symbols`, default 2): a one-hot symbol among K, then the
corridor and junction bits. The cues are symbols 0 (up) and 1 (down):

    first step (position 0, t = 0):  symbol c, no place bit    e.g. (1, 0, 0, 0), K = 2
    corridor (position < L, t > 0):  corridor bit only         (0, 0, 1, 0): the cue is gone
    junction (position L):           junction bit only         (0, 0, 0, 1)

With `distractors`, every corridor observation also shows a symbol drawn uniformly from all
K (the cues included), independently at every step: for K = 2, (1, 0, 1, 0) or (0, 1, 1, 0).
The agent must remember the symbol of the first step, the one without the corridor bit, and
ignore the later ones. With K > 2 the distractors span K directions of the input, so the
write of the cue that a random network makes at the first step is soon buried under theirs
(docs/theory.md section 3.6): the agent must learn to write the cue and keep the rest out.

Actions: 0 = forward (position + 1, blocked at the junction), 1 = up, 2 = down. Up or down in
the corridor bumps into its wall (the agent stays); at the junction they enter that arm and
end the episode: reward +1 if the arm is the cue's (a success), `wrong_reward` otherwise
(default 0; with -1 an agent can learn to avoid the arms altogether). Every step that does not
end the episode costs `step_cost` (default 0); after `max_steps` steps (default 4 (L + 1)) the
episode is truncated. The fastest episode takes L + 1 steps, and a policy without memory of
the cue succeeds at best half of the time.

`maze_reset` / `maze_step` are the dynamics as pure JAX functions (for `lax.scan` and `vmap`
in the experiments); `TMaze` is the same task as a `gymnasium.Env` (cue and distractors from
the env's own `np_random`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.errors import UserError

N_ACTIONS = 3
FORWARD, UP, DOWN = 0, 1, 2


@dataclass(frozen=True)
class MazeConfig:
    """corridor L >= 1; reward of the wrong arm; cost of every other step; time limit
    (None: 4 (L + 1)); distractors in the corridor; size K >= 2 of the symbol alphabet."""

    corridor: int = 10
    wrong_reward: float = 0.0
    step_cost: float = 0.0
    max_steps: int | None = None
    distractors: bool = False
    symbols: int = 2

    def __post_init__(self) -> None:
        if self.symbols < 2:
            raise UserError(f"T-maze symbols: need at least 2 (the cues), got {self.symbols}")
        if self.corridor < 1:
            raise UserError(f"T-maze corridor: need a length >= 1, got {self.corridor}")
        if self.max_steps is not None and self.max_steps <= self.corridor:
            raise UserError(
                f"T-maze max_steps: need more than the corridor ({self.corridor}), "
                f"got {self.max_steps}"
            )

    @property
    def obs_size(self) -> int:
        """K + 2: the symbol, corridor and junction bits."""
        return self.symbols + 2

    @property
    def limit(self) -> int:
        return 4 * (self.corridor + 1) if self.max_steps is None else self.max_steps


class MazeState(NamedTuple):
    position: jax.Array  # () int, 0..L
    cue: jax.Array  # () int, 0 = up, 1 = down
    t: jax.Array  # () int, steps taken in this episode
    distractor: jax.Array  # () int, the random symbol shown in the corridor at this step


class MazeStep(NamedTuple):
    state: MazeState
    obs: jax.Array  # (K + 2,)
    reward: jax.Array  # ()
    terminated: jax.Array  # () bool: an arm was entered
    truncated: jax.Array  # () bool: the time limit, without an arm
    success: jax.Array  # () bool: the cue's arm was entered


def observe(config: MazeConfig, state: MazeState) -> jax.Array:
    """The K + 2 bits of the module docstring, float32."""
    first = state.t == 0
    junction = state.position == config.corridor
    shown = jnp.where(first, state.cue, state.distractor)
    visible = first | (config.distractors & ~junction)
    cue_bits = jax.nn.one_hot(shown, config.symbols) * visible
    place = jnp.stack([~first & ~junction, junction]).astype(jnp.float32)
    return jnp.concatenate([cue_bits, place])


def draw_symbol(key: jax.Array, symbols: int) -> jax.Array:
    """A distractor symbol, uniform on 0..symbols-1: the number of thresholds j / symbols
    (j = 1..symbols-1) above u ~ U[0, 1). With 2 symbols this is `jax.random.bernoulli(key)`
    bit for bit, so runs of the two-symbol maze keep the draws they had before `symbols`."""
    thresholds = jnp.arange(1, symbols) / symbols
    return jnp.sum(jax.random.uniform(key) < thresholds).astype(jnp.int32)


def maze_reset(config: MazeConfig, cue: jax.Array) -> tuple[MazeState, jax.Array]:
    """Start of an episode with cue `cue` (0 = up, 1 = down): (state, first observation)."""
    zero = jnp.zeros((), jnp.int32)
    state = MazeState(zero, jnp.asarray(cue, jnp.int32), zero, zero)
    return state, observe(config, state)


def maze_step(
    config: MazeConfig, state: MazeState, action: jax.Array, distractor: jax.Array
) -> MazeStep:
    """One step of the dynamics in the module docstring; `distractor` (0..K-1, e.g. from
    `draw_symbol`) is the symbol the next corridor observation shows when `distractors`."""
    at_junction = state.position == config.corridor
    arm = at_junction & (action != FORWARD)
    success = arm & (action - UP == state.cue)
    forward = jnp.minimum(state.position + 1, config.corridor)
    position = jnp.where(action == FORWARD, forward, state.position)
    new = MazeState(position, state.cue, state.t + 1, jnp.asarray(distractor, jnp.int32))
    reward = jnp.where(arm, jnp.where(success, 1.0, config.wrong_reward), -config.step_cost)
    truncated = ~arm & (new.t >= config.limit)
    return MazeStep(new, observe(config, new), reward, arm, truncated, success)


class TMaze(gymnasium.Env):
    """The T-maze as a gymnasium environment: Box(0, 1, (K + 2,)) observations, Discrete(3)
    actions, `info["success"]` at the end of an episode."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        corridor: int = 10,
        *,
        wrong_reward: float = 0.0,
        step_cost: float = 0.0,
        max_steps: int | None = None,
        distractors: bool = False,
        symbols: int = 2,
    ) -> None:
        self.config = MazeConfig(corridor, wrong_reward, step_cost, max_steps, distractors, symbols)
        shape = (self.config.obs_size,)
        self.observation_space = gymnasium.spaces.Box(0.0, 1.0, shape, np.float32)
        self.action_space = gymnasium.spaces.Discrete(N_ACTIONS)
        self._step = jax.jit(lambda state, a, d: maze_step(self.config, state, a, d))
        self._state: MazeState | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        cue = int(self.np_random.integers(2))
        self._state, obs = maze_reset(self.config, jnp.asarray(cue))
        return np.asarray(obs), {"cue": cue}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("TMaze.step before reset")
        if not self.action_space.contains(int(action)):
            raise ValueError(f"TMaze action must be 0, 1 or 2, got {action!r}")
        symbols = self.config.symbols
        distractor = int(self.np_random.integers(symbols)) if self.config.distractors else 0
        result = self._step(self._state, jnp.asarray(action, jnp.int32), jnp.asarray(distractor))
        self._state = result.state
        terminated, truncated = bool(result.terminated), bool(result.truncated)
        info = {"success": bool(result.success)} if terminated or truncated else {}
        return np.asarray(result.obs), float(result.reward), terminated, truncated, info
