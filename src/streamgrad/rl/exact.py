"""Exact answers on a finite MDP: policy evaluation, sampling law, objective, policy gradient.

Policies are tables f (S, A). The actor's policy is f = (1 - eta) softmax(P) + eta / A with
logits P (S, A) (`policy`). With P_f the state-action transition matrix
P_f[(x, a), (x', a')] = p(x'|x, a) f(a'|x') and r(x, a) the mean reward:
  - Q of f solves the Bellman system (I - gamma P_f) Q = r            (`q_values`);
  - the discounted objective is J(f) = sum_x mu(x) sum_a f(a|x) Q(x, a) (`objective`);
  - its exact gradient in the logits is autodiff through that linear solve (`policy_gradient`);
  - the online algorithm samples pairs from the chain that follows P_f and restarts from mu
    (x ~ mu, a ~ f) with probability `restart` per step and whenever it enters a terminal
    state. With L = P_f without the columns of terminal states, its stationary law is
    nu proportional to (mu f)^T (I - (1 - restart) L)^(-1)                (`sampling_law`);
    with restart = 1 - gamma this is the discounted occupancy measure of the live pairs,
    the weighting of the policy-gradient theorem: sum_z nu(z) Q(z) grad log f(z) = c grad J,
    c > 0 (c = 1 - gamma without terminal states).
All functions are pure jax (float64 under x64) and jit-compatible.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.rl.mdp import FiniteMDP


class Tables(NamedTuple):
    """The MDP as jax arrays: p (S, A, S), rewards R (S, A, S), r (S, A) mean reward, mu (S,),
    gamma (), live (S,) = 1 for non-terminal states, 0 for terminal ones."""

    p: jax.Array
    rewards: jax.Array
    r: jax.Array
    mu: jax.Array
    gamma: jax.Array
    live: jax.Array

    @classmethod
    def of(cls, mdp: FiniteMDP) -> Tables:
        return cls(
            jnp.asarray(mdp.p),
            jnp.asarray(mdp.rewards),
            jnp.asarray(mdp.mean_reward),
            jnp.asarray(mdp.mu),
            mdp.gamma,
            jnp.asarray(1.0 - mdp.terminal),
        )


def policy(logits: jax.Array, eta: float) -> jax.Array:
    """f(a|x) = (1 - eta) softmax_a logits(x, .) + eta / A; (S, A) -> (S, A)."""
    return (1.0 - eta) * jax.nn.softmax(logits, axis=-1) + eta / logits.shape[-1]


def pair_transitions(tables: Tables, f: jax.Array, *, live_only: bool = False) -> jax.Array:
    """P_f[(x, a), (x', a')] = p(x'|x, a) f(a'|x'), shape (S A, S A); `live_only` zeroes the
    columns of terminal states x'."""
    n = tables.r.size
    p = tables.p * tables.live if live_only else tables.p
    return jnp.einsum("xay,yb->xayb", p, f).reshape(n, n)


def q_values(tables: Tables, f: jax.Array) -> jax.Array:
    """Exact Q of policy f, (S, A): solves (I - gamma P_f) Q = r."""
    n = tables.r.size
    system = jnp.eye(n) - tables.gamma * pair_transitions(tables, f)
    return jnp.linalg.solve(system, tables.r.reshape(n)).reshape(tables.r.shape)


def sampling_law(tables: Tables, f: jax.Array, restart: float) -> jax.Array:
    """Stationary law nu (S, A) of the sampled pairs: follow P_f, restart from mu w.p. restart
    and on entering a terminal state."""
    n = tables.r.size
    start = (tables.mu[:, None] * f).reshape(n)
    system = jnp.eye(n) - (1.0 - restart) * pair_transitions(tables, f, live_only=True)
    visits = jnp.linalg.solve(system.T, start)
    return (visits / visits.sum()).reshape(tables.r.shape)


def objective(tables: Tables, f: jax.Array) -> jax.Array:
    """J(f) = E_{x ~ mu, a ~ f} Q_f(x, a), the expected discounted return."""
    return jnp.sum(tables.mu[:, None] * f * q_values(tables, f))


def objective_of_logits(tables: Tables, logits: jax.Array, eta: float) -> jax.Array:
    return objective(tables, policy(logits, eta))


policy_gradient = jax.grad(objective_of_logits, argnums=1)
policy_gradient.__doc__ = "Exact dJ/dlogits (S, A) of the actor's policy (autodiff of J)."


def optimal_objective(mdp: FiniteMDP, eta: float = 0.0, max_iter: int = 1000) -> float:
    """Best J over the eta-greedy policies (1 - eta) greedy + eta / A by policy iteration
    (eta = 0: the optimum of exact dynamic programming). The eta-greedy policy of the best
    eta-soft Q is its own improvement, so iteration stops at the optimum of that class."""
    tables = Tables.of(mdp)
    n_actions = mdp.n_actions
    f = jnp.full((mdp.n_states, n_actions), 1.0 / n_actions)
    for _ in range(max_iter):
        q = q_values(tables, f)
        greedy = jax.nn.one_hot(jnp.argmax(q, axis=1), n_actions)
        improved = (1.0 - eta) * greedy + eta / n_actions
        if np.array_equal(np.asarray(improved), np.asarray(f)):
            break
        f = improved
    return float(objective(tables, f))
