"""Recurrent online actor-critic: the engine's recurrent cells and online gradient algorithms
(exact RTRL, TBPTT, ... via `make_algorithm`) in a one-step actor-critic along one trajectory.

Actor and critic are two engine models (`streamgrad.model`): a recurrent cell with a linear
readout, the actor's readout giving logits P_t (A,) and the critic's a value V_t. Each has its
hidden state S_t, updated from the observation o_t: S_{t+1} = F(psi, S_t, o_t), and its
online algorithm, which carries the influence dS/dtheta (RTRL) or a window of inputs (TBPTT).
The policy is f(.|S) = (1 - eta) softmax(P) + eta / A, as in `rl.actor_critic`. One step t:

    a_t ~ f(.|S^a_{t+1})                                    (act)
    o_{t+1}, r_t from the environment
    y_t     = r_t + gamma (1 - terminated) V(S^c_{t+1}, o_{t+1})       TD(0) target, held fixed
    delta_t = y_t - V_t
    critic -= lr_c * d/dtheta (V_t - y_t)^2          = lr_c * (-2 delta_t dV_t/dtheta)
    actor  -= lr_a * delta_t w_t d/dtheta[-log softmax(P_t)_{a_t}]
            = lr_a * delta_t d/dtheta log f(a_t|.)   (policy gradient, TD error as advantage)

with w_t = (1 - eta) softmax(P_t)_{a_t} / f(a_t|.) (d log f = w d log softmax). Each gradient
is the engine's: the critic's model has the mse loss with target y_t, the actor's the
cross-entropy loss with label a_t, and `algorithm.step` emits d(loss_t)/dtheta through the
hidden state's whole past (RTRL) or its last tau steps (TBPTT(1, tau)); the actor's is then
scaled by its own delta_t w_t. Since each step's gradient has its own weight, the algorithm
must emit a gradient every step (RTRL, UORO, SnAp, RFLO, or TBPTT with every = 1: `tbptt:1:3`).
The optimizer (optax) applies the updates with the parameters that made the step.

Episodes. At an episode's end (terminated or truncated; truncation bootstraps) both hidden
states restart from S_0 = 0 and both algorithm states from `algorithm.init`: the influence
J = dS_0/dtheta = 0 (S_0 does not depend on theta) and TBPTT's buffers are emptied (with
every = 1 no gradient is pending), so no credit flows across episodes.

Memoryless agent (`memory=False`): the same cell, with its state and algorithm reset after
every step, so S_{t+1} = F(psi, 0, o_t) is a feed-forward function of the current observation
and RTRL gives its exact gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from streamgrad.errors import UserError
from streamgrad.gradients import OnlineAlgorithm, make_algorithm
from streamgrad.model import make_model
from streamgrad.optim import make_optimizer, make_schedule
from streamgrad.rl.exact import policy

MEMORYLESS = "memoryless"
NETS = ("actor", "critic")


@dataclass(frozen=True)
class AgentSpec:
    """What an agent is: the two algorithms (each holds its model), optimizers and rates."""

    actor: OnlineAlgorithm
    critic: OnlineAlgorithm
    actor_optimizer: optax.GradientTransformation
    critic_optimizer: optax.GradientTransformation
    gamma: float
    eta: float
    memory: bool = True

    def algorithm(self, net: str) -> OnlineAlgorithm:
        return self.actor if net == "actor" else self.critic

    def optimizer(self, net: str) -> optax.GradientTransformation:
        return self.actor_optimizer if net == "actor" else self.critic_optimizer


class AgentState(NamedTuple):
    """Per network ("actor", "critic"): parameters, optimizer state, hidden state S_t (N,),
    algorithm state; and the PRNG key of the action draws."""

    params: dict[str, Any]
    opt_state: dict[str, Any]
    hidden: dict[str, jax.Array]
    traces: dict[str, Any]
    key: jax.Array


def _algorithm(spec: str, model: Any) -> OnlineAlgorithm:
    """The engine's algorithm for `spec`; it must emit a gradient at every step."""
    try:
        algorithm = make_algorithm(spec, model)
    except ValueError as error:
        raise UserError(f"--algo {spec}: {error}") from None
    if not algorithm.every_step and algorithm.every != 1:
        raise UserError(
            f"--algo {spec}: the actor-critic weights each step's gradient by its own TD "
            f"error, so it needs a gradient every step; use tbptt:1:{algorithm.tau}"
        )
    return algorithm


def make_agent(
    obs_size: int,
    n_actions: int,
    *,
    hidden: int = 16,
    cell: str = "gru",
    algo: str = "rtrl",
    optimizer: str = "adam",
    lr: float = 2e-3,
    critic_lr: float | None = None,
    gamma: float = 0.95,
    eta: float = 0.05,
    schedule: str = "constant",
    k0: float = 10_000.0,
) -> AgentSpec:
    """Actor and critic on `cell` with `hidden` units, gradients by `algo` (any engine spec
    that updates every step, or "memoryless": RTRL on the cell with its state reset every
    step); `critic_lr` defaults to `lr`; `schedule` ("constant", "robbins-monro": lr / (1 +
    k / k0)^0.75, ...) applies to both."""
    if not 0.0 <= gamma < 1.0 or not 0.0 <= eta < 1.0 or lr <= 0:
        raise UserError(f"need 0 <= gamma < 1, 0 <= eta < 1, lr > 0; got {gamma}, {eta}, {lr}")
    if n_actions < 2:
        raise UserError(f"the policy needs at least 2 actions, got {n_actions}")
    try:
        actor_model = make_model(cell, hidden, obs_size, n_classes=n_actions)
        critic_model = make_model(cell, hidden, obs_size)
        optimizers = [
            make_optimizer(optimizer, make_schedule(schedule, rate, k0=k0))
            for rate in (lr, critic_lr or lr)
        ]
    except ValueError as error:
        raise UserError(f"agent options: {error}") from None
    memory = algo != MEMORYLESS
    spec = algo if memory else "rtrl"
    return AgentSpec(
        _algorithm(spec, actor_model),
        _algorithm(spec, critic_model),
        *optimizers,
        gamma=gamma,
        eta=eta,
        memory=memory,
    )


def _fresh(spec: AgentSpec, params: dict[str, Any], dtype: Any) -> tuple[dict, dict]:
    """Hidden states S_0 = 0 and fresh algorithm states of both networks."""
    hidden = {net: spec.algorithm(net).model.cell.initial_hidden(dtype) for net in NETS}
    traces = {net: spec.algorithm(net).init(params[net], hidden[net]) for net in NETS}
    return hidden, traces


def init_agent(
    spec: AgentSpec, key: jax.Array, dtype: Any = jnp.float32, *, zero_heads: bool = True
) -> AgentState:
    """Independent initial parameters of actor and critic, fresh states, the action key.

    With `zero_heads` (the default) both readouts start at zero: the first policy is uniform
    and the first value 0, so no TD error, hence no update, arises before the first reward.
    (With random heads, the random initial values give TD errors of random sign, which Adam
    scales up to full-size steps: the policy can collapse before it has seen any reward.)"""
    k_actor, k_critic, k_act = jax.random.split(key, 3)
    params = {
        "actor": spec.actor.model.init(k_actor, dtype),
        "critic": spec.critic.model.init(k_critic, dtype),
    }
    if zero_heads:
        for net in NETS:
            params[net]["readout"] = jax.tree_util.tree_map(jnp.zeros_like, params[net]["readout"])
    opt_state = {net: spec.optimizer(net).init(params[net]) for net in NETS}
    hidden, traces = _fresh(spec, params, dtype)
    return AgentState(params, opt_state, hidden, traces, k_act)


def decide(
    spec: AgentSpec,
    actor_params: Any,
    hidden: jax.Array,
    obs: jax.Array,
    key: jax.Array,
    deterministic: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """(a_t, S^a_{t+1}) from the actor's state S^a_t: a_t ~ f(.|S^a_{t+1}), or the most
    likely action when `deterministic`."""
    obs = obs.astype(hidden.dtype)
    after, logits, _ = spec.actor.model.forward(actor_params, hidden, obs, 0)
    sampled = jax.random.categorical(key, jnp.log(policy(logits, spec.eta)))
    action = jnp.argmax(logits) if deterministic else sampled
    return action.astype(jnp.int32), after


def act(
    spec: AgentSpec, state: AgentState, obs: jax.Array, deterministic: bool = False
) -> tuple[jax.Array, AgentState]:
    """a_t from `decide`; the state keeps S_t (the learning step recomputes S_{t+1} with the
    algorithm) and gets a new key."""
    key, draw = jax.random.split(state.key)
    params, hidden = state.params["actor"], state.hidden["actor"]
    action, _ = decide(spec, params, hidden, obs, draw, deterministic)
    return action, state._replace(key=key)


class Transition(NamedTuple):
    """o_t, a_t, r_t, o_{t+1}, terminated (no bootstrap), done (terminated or truncated)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    done: jax.Array


def step_gradients(
    spec: AgentSpec, state: AgentState, t: Transition
) -> tuple[dict[str, Any], dict[str, jax.Array], dict[str, Any], jax.Array]:
    """Descent directions of actor and critic for one transition (module docstring), the new
    hidden states S_{t+1}, algorithm states, and delta_t. Parameters are not changed."""
    dtype = state.hidden["critic"].dtype
    obs, next_obs = t.obs.astype(dtype), t.next_obs.astype(dtype)
    critic, p_critic = spec.critic.model, state.params["critic"]
    after, _, _ = critic.forward(p_critic, state.hidden["critic"], obs, 0.0)
    _, v_next, _ = critic.forward(p_critic, after, next_obs, 0.0)
    live = 1.0 - t.terminated.astype(dtype)
    target = t.reward.astype(dtype) + spec.gamma * live * v_next[0]
    c = spec.critic.step(p_critic, state.hidden["critic"], state.traces["critic"], obs, target)
    a = spec.actor.step(
        state.params["actor"], state.hidden["actor"], state.traces["actor"], obs, t.action
    )
    delta = target - c.output[0]
    soft = jax.nn.softmax(a.output)[t.action]
    weight = delta * (1.0 - spec.eta) * soft / policy(a.output, spec.eta)[t.action]
    grads = {"actor": _scale(a.grads, weight), "critic": c.grads}
    return (
        grads,
        {"actor": a.hidden, "critic": c.hidden},
        {"actor": a.state, "critic": c.state},
        delta,
    )


def _scale(tree: Any, weight: jax.Array) -> Any:
    return jax.tree_util.tree_map(lambda leaf: leaf * weight, tree)


def _select(flag: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(flag, a, b), new, old)


def learn(spec: AgentSpec, state: AgentState, t: Transition) -> tuple[AgentState, jax.Array]:
    """One learning step on transition `t`, then the reset at an episode's end (or every
    step for the memoryless agent); returns the new state and delta_t."""
    grads, hidden, traces, delta = step_gradients(spec, state, t)
    params, opt_state = {}, {}
    for net in NETS:
        updates, opt_state[net] = spec.optimizer(net).update(
            grads[net], state.opt_state[net], state.params[net]
        )
        params[net] = optax.apply_updates(state.params[net], updates)
    fresh_hidden, fresh_traces = _fresh(spec, params, state.hidden["actor"].dtype)
    reset = t.done | (not spec.memory)
    hidden = _select(reset, fresh_hidden, hidden)
    traces = _select(reset, fresh_traces, traces)
    return AgentState(params, opt_state, hidden, traces, state.key), delta


def jitted(spec: AgentSpec) -> tuple[Callable, Callable]:
    """(act(state, obs, deterministic), learn(state, transition)) compiled for `spec`."""
    act_fn = jax.jit(lambda s, o, d: act(spec, s, o, d), static_argnums=2)
    learn_fn = jax.jit(lambda s, t: learn(spec, s, t))
    return act_fn, learn_fn
