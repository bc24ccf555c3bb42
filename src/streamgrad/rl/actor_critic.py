"""The online actor-critic along one trajectory (no replay, no batches), jitted with lax.scan.

Critic Q^N and actor P^N are width-N networks of `networks` on the state-action pairs; the
policy is f(a|x) = (1 - eta) softmax_a P^N(x, .) + eta / A. One step k, from state x_k:

    a_k ~ f(.|x_k);  x' ~ p(.|x_k, a_k) with reward r_k = R(x_k, a_k, x');  a' ~ f(.|x')
    delta_k = r_k + gamma live(x') Q^N(x', a') - Q^N(x_k, a_k)      (live = 0 at terminal x')
    critic += (alpha / N) delta_k grad Q^N(x_k, a_k)
    actor  += (zeta_k / N) Q^N(x_k, a_k) grad log f(a_k|x_k),   zeta_k = zeta(k / N)
    x_{k+1} = x' with probability 1 - restart if x' is live, else a fresh x ~ mu
                                                                     (restart = 1 - gamma)

Both updates use the parameters before the step. Sampling x_{k+1} this way makes the
stationary law of the pairs the discounted occupancy measure (`exact.sampling_law`), so the
actor's mean step is (1 - gamma) times the kernel-weighted policy gradient (see docs/theory.md,
section 3). The time of the limit ODE is t = k / N.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from streamgrad.rl.exact import Tables, policy
from streamgrad.rl.limit_ode import Rates
from streamgrad.rl.networks import NetworkLaw, Params, add_gradients, init_network, outputs


class AgentState(NamedTuple):
    """critic, actor parameters; current state x (); step k (); PRNG key."""

    critic: Params
    actor: Params
    x: jax.Array
    k: jax.Array
    key: jax.Array


def init_agent(
    key: jax.Array, tables: Tables, width: int, law: NetworkLaw, dtype: jnp.dtype = jnp.float64
) -> AgentState:
    """Independent critic and actor of width N; first state drawn from mu."""
    k_critic, k_actor, k_start, k_run = jax.random.split(key, 4)
    n_pairs = tables.r.size
    return AgentState(
        critic=init_network(k_critic, n_pairs, width, law, dtype),
        actor=init_network(k_actor, n_pairs, width, law, dtype),
        x=jax.random.categorical(k_start, jnp.log(tables.mu)),
        k=jnp.zeros((), jnp.int32),
        key=k_run,
    )


def make_step(tables: Tables, width: int, rates: Rates):
    """One online step (the update in the module docstring) as a lax.scan body."""
    n_actions = tables.r.shape[1]
    actions = jnp.arange(n_actions)
    log_p, log_mu = jnp.log(tables.p), jnp.log(tables.mu)

    def step(state: AgentState, _: None) -> tuple[AgentState, None]:
        key, k_a, k_next, k_a2, k_coin, k_start = jax.random.split(state.key, 6)
        x = state.x
        logits = outputs(state.actor, x * n_actions + actions)
        a = jax.random.categorical(k_a, jnp.log(policy(logits, rates.eta)))
        x2 = jax.random.categorical(k_next, log_p[x, a])
        logits2 = outputs(state.actor, x2 * n_actions + actions)
        a2 = jax.random.categorical(k_a2, jnp.log(policy(logits2, rates.eta)))
        q_now, q_next = outputs(state.critic, jnp.stack([x * n_actions + a, x2 * n_actions + a2]))
        delta = tables.rewards[x, a, x2] + tables.gamma * tables.live[x2] * q_next - q_now
        score = jax.grad(lambda z: jnp.log(policy(z, rates.eta))[a])(logits)
        zeta = rates.zeta(state.k / width)
        critic = add_gradients(
            state.critic, (x * n_actions + a)[None], delta[None], rates.alpha / width
        )
        actor = add_gradients(state.actor, x * n_actions + actions, q_now * score, zeta / width)
        restart = (jax.random.uniform(k_coin) < rates.restart) | (tables.live[x2] == 0)
        x_next = jnp.where(restart, jax.random.categorical(k_start, log_mu), x2)
        return AgentState(critic, actor, x_next, state.k + 1, key), None

    return step


def make_runner(tables: Tables, width: int, rates: Rates):
    """Jitted `run(states, steps)` for a batch of agents (leading axis: seeds): `steps` online
    steps each, then the outputs of critic and actor on every pair, each (seeds, pairs)."""
    step = make_step(tables, width, rates)
    rows = jnp.arange(tables.r.size)

    def run_one(state: AgentState, steps: int) -> tuple[AgentState, jax.Array, jax.Array]:
        state, _ = jax.lax.scan(step, state, None, length=steps)
        return state, outputs(state.critic, rows), outputs(state.actor, rows)

    return jax.jit(jax.vmap(run_one, in_axes=(0, None)), static_argnums=1)
