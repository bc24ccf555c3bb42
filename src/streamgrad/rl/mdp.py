"""Finite Markov decision processes with exact tables.

A `FiniteMDP` holds the full model: transition probabilities p(x'|x, a) as an array (S, A, S),
the reward of each transition R(x, a, x') as (S, A, S), the initial law mu (S,) and the
discount gamma. Every state-action pair z = (x, a) has the flat index x * A + a.

Episodic tasks (a gymnasium table's `done` flag, the gridworld's goal) become discounted
continuing ones exactly: a `done` transition leads to one extra absorbing state whose actions
loop on it with reward 0, so Q(absorbing, .) = 0 and the value of every other pair is the
expected discounted return of the episode. The absorbing state is marked `terminal`: the
online agent bootstraps 0 from it and restarts the episode from mu instead of sitting in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streamgrad.errors import UserError

# gymnasium's transition-table format: P[x][a] = [(prob, next_state, reward, done), ...]
TransitionTable = Mapping[int, Mapping[int, Sequence[tuple[float, int, float, bool]]]]


@dataclass(frozen=True)
class FiniteMDP:
    """p (S, A, S) rows summing to 1; rewards (S, A, S); mu (S,); 0 <= gamma < 1;
    terminal (S,) marks absorbing zero-reward states (episode ends)."""

    p: np.ndarray
    rewards: np.ndarray
    mu: np.ndarray
    gamma: float
    name: str = "mdp"
    terminal: np.ndarray | None = None  # (S,) bool, absorbing zero-reward states; None: none

    def __post_init__(self) -> None:
        if self.terminal is None:
            object.__setattr__(self, "terminal", np.zeros(self.p.shape[0], bool))
        if self.p.ndim != 3 or self.p.shape[0] != self.p.shape[2]:
            raise UserError(
                f"{self.name}: transitions must have shape (S, A, S), got {self.p.shape}"
            )
        if self.rewards.shape != self.p.shape:
            raise UserError(f"{self.name}: rewards shape {self.rewards.shape} != {self.p.shape}")
        if self.mu.shape != (self.p.shape[0],):
            raise UserError(f"{self.name}: initial law shape {self.mu.shape} != ({self.n_states},)")
        if np.any(self.p < 0) or not np.allclose(self.p.sum(-1), 1.0, atol=1e-9):
            raise UserError(f"{self.name}: every row p(.|x, a) must be a probability vector")
        if np.any(self.mu < 0) or not np.isclose(self.mu.sum(), 1.0, atol=1e-9):
            raise UserError(f"{self.name}: the initial law must be a probability vector")
        if not 0.0 <= self.gamma < 1.0:
            raise UserError(f"{self.name}: discount gamma must be in [0, 1), got {self.gamma}")

    @property
    def n_states(self) -> int:
        return self.p.shape[0]

    @property
    def n_actions(self) -> int:
        return self.p.shape[1]

    @property
    def n_pairs(self) -> int:
        return self.n_states * self.n_actions

    @property
    def mean_reward(self) -> np.ndarray:
        """r(x, a) = sum_x' p(x'|x, a) R(x, a, x'), shape (S, A)."""
        return np.einsum("xay,xay->xa", self.p, self.rewards)


def random_mdp(
    n_states: int, n_actions: int, *, gamma: float = 0.9, seed: int = 0, branching: int = 3
) -> FiniteMDP:
    """Random MDP: each p(.|x, a) puts Dirichlet(1) weights on `branching` random next states;
    each pair has a reward r(x, a) ~ U(-1, 1) (the same for every next state); mu uniform."""
    if n_states < 1 or n_actions < 1 or not 1 <= branching <= n_states:
        raise UserError(
            f"random MDP: need n_states, n_actions >= 1 and 1 <= branching <= n_states, got "
            f"{n_states}, {n_actions}, {branching}"
        )
    rng = np.random.default_rng(seed)
    p = np.zeros((n_states, n_actions, n_states))
    for x in range(n_states):
        for a in range(n_actions):
            targets = rng.choice(n_states, size=branching, replace=False)
            p[x, a, targets] = rng.dirichlet(np.ones(branching))
    rewards = np.repeat(rng.uniform(-1.0, 1.0, (n_states, n_actions))[:, :, None], n_states, 2)
    mu = np.full(n_states, 1.0 / n_states)
    return FiniteMDP(p, rewards, mu, gamma, name=f"random-{n_states}x{n_actions}-seed{seed}")


def from_table(
    table: TransitionTable,
    n_states: int,
    n_actions: int,
    mu: np.ndarray,
    *,
    gamma: float,
    name: str,
) -> FiniteMDP:
    """MDP from a gymnasium-style table; `done` transitions go to an added absorbing state
    (index n_states, reward 0 forever), so the result has n_states + 1 states."""
    absorbing = n_states
    p = np.zeros((n_states + 1, n_actions, n_states + 1))
    rewards = np.zeros_like(p)
    for x in range(n_states):
        for a in range(n_actions):
            for prob, nxt, reward, done in table[x][a]:
                target = absorbing if done else int(nxt)
                # Several outcomes may share a target with different rewards: keep the mean.
                total = p[x, a, target] + prob
                if total > 0:
                    rewards[x, a, target] = (
                        rewards[x, a, target] * p[x, a, target] + reward * prob
                    ) / total
                p[x, a, target] = total
    p[absorbing, :, absorbing] = 1.0
    terminal = np.arange(n_states + 1) == absorbing
    mu = np.append(np.asarray(mu, np.float64), 0.0)
    return FiniteMDP(p, rewards, mu, gamma, name=name, terminal=terminal)


GRID_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left


def gridworld(
    rows: int = 4,
    cols: int = 4,
    *,
    slip: float = 0.1,
    goal_reward: float = 1.0,
    step_reward: float = -0.01,
    gamma: float = 0.95,
) -> FiniteMDP:
    """Open grid, start in the top-left corner, goal in the bottom-right one (episode ends with
    `goal_reward`). Actions up/right/down/left; with probability `slip` the move goes to one of
    the two perpendicular directions instead (half each); moves into a wall stay put. Every
    other step pays `step_reward`."""
    if rows * cols < 2 or not 0.0 <= slip <= 1.0:
        raise UserError(f"gridworld: need at least 2 cells and slip in [0, 1], got {rows}x{cols}")
    goal = rows * cols - 1

    def move(cell: int, direction: int) -> int:
        r, c = divmod(cell, cols)
        dr, dc = GRID_MOVES[direction]
        return min(max(r + dr, 0), rows - 1) * cols + min(max(c + dc, 0), cols - 1)

    table: dict[int, dict[int, list[tuple[float, int, float, bool]]]] = {}
    for cell in range(rows * cols):
        table[cell] = {}
        for a in range(4):
            outcomes = [(1.0 - slip, a), (slip / 2, (a + 1) % 4), (slip / 2, (a + 3) % 4)]
            table[cell][a] = [
                (prob, nxt, goal_reward if nxt == goal else step_reward, nxt == goal)
                for prob, d in outcomes
                if prob > 0
                for nxt in [move(cell, d)]
            ]
    mu = np.zeros(rows * cols)
    mu[0] = 1.0
    return from_table(table, rows * cols, 4, mu, gamma=gamma, name=f"gridworld-{rows}x{cols}")
