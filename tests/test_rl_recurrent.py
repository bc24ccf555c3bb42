"""Recurrent online actor-critic: the T-maze, the POMDP wrapper, the gradients against BPTT,
and the quick T-maze study (RTRL must beat the memoryless agent)."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cli_runner import run_cli  # tests/ is on sys.path under pytest
from streamgrad.errors import UserError
from streamgrad.rl.environments import HideObservation, make_env
from streamgrad.rl.exact import policy
from streamgrad.rl.recurrent import Transition, init_agent, learn, make_agent, step_gradients
from streamgrad.rl.tmaze import (
    DOWN,
    FORWARD,
    UP,
    MazeConfig,
    TMaze,
    draw_symbol,
    maze_reset,
    maze_step,
)


def _walk(config: MazeConfig, cue: int, actions: list[int], distractor: int = 0) -> list:
    state, obs = maze_reset(config, jnp.asarray(cue))
    seen = [(np.asarray(obs), None)]
    for action in actions:
        out = maze_step(config, state, jnp.asarray(action), jnp.asarray(distractor))
        state = out.state
        seen.append((np.asarray(out.obs), out))
    return seen


@pytest.mark.parametrize("cue", [0, 1])
def test_tmaze_shows_the_cue_only_at_the_first_step_and_rewards_the_cue_arm(cue: int) -> None:
    config = MazeConfig(corridor=3, wrong_reward=-1.0, step_cost=0.01)
    seen = _walk(config, cue, [UP, FORWARD, FORWARD, FORWARD, FORWARD, UP + cue])
    observations = [obs for obs, _ in seen]
    np.testing.assert_array_equal(observations[0], np.eye(4)[cue])
    for obs in observations[1:4]:  # bumping up in the corridor, then moving: no cue
        np.testing.assert_array_equal(obs, [0, 0, 1, 0])
    np.testing.assert_array_equal(observations[4], [0, 0, 0, 1])  # the junction
    np.testing.assert_array_equal(observations[5], [0, 0, 0, 1])  # forward is blocked there
    steps = [out for _, out in seen[1:]]
    assert all(float(o.reward) == -0.01 and not bool(o.terminated) for o in steps[:-1])
    last = steps[-1]
    assert bool(last.terminated) and bool(last.success) and float(last.reward) == 1.0
    wrong = _walk(config, cue, [FORWARD] * 3 + [DOWN - cue])[-1][1]
    assert bool(wrong.terminated) and not bool(wrong.success) and float(wrong.reward) == -1.0


def test_tmaze_truncates_at_its_limit_and_distractors_never_reach_the_junction() -> None:
    config = MazeConfig(corridor=2, max_steps=5, distractors=True)
    seen = _walk(config, 0, [UP, FORWARD, FORWARD, FORWARD, FORWARD], distractor=1)
    np.testing.assert_array_equal(seen[1][0], [0, 1, 1, 0])  # a distractor in the corridor
    np.testing.assert_array_equal(seen[3][0], [0, 0, 0, 1])  # none at the junction
    outs = [out for _, out in seen[1:]]
    assert [bool(o.truncated) for o in outs] == [False, False, False, False, True]
    with pytest.raises(UserError, match="corridor"):
        MazeConfig(corridor=0)


def test_tmaze_with_more_symbols_shows_the_cue_among_them_and_draws_every_distractor() -> None:
    config = MazeConfig(corridor=2, distractors=True, symbols=5)
    seen = _walk(config, 1, [FORWARD, FORWARD], distractor=4)
    np.testing.assert_array_equal(seen[0][0], np.eye(7)[1])  # cue "down": symbol 1 of 5
    np.testing.assert_array_equal(seen[1][0], [0, 0, 0, 0, 1, 1, 0])  # symbol 4, corridor
    np.testing.assert_array_equal(seen[2][0], [0, 0, 0, 0, 0, 0, 1])  # the junction
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    drawn = np.asarray(jax.vmap(lambda k: draw_symbol(k, 5))(keys))
    np.testing.assert_allclose(np.bincount(drawn, minlength=5) / drawn.size, 0.2, atol=0.015)
    two = jax.vmap(lambda k: draw_symbol(k, 2))(keys[:500])
    coins = jax.vmap(jax.random.bernoulli)(keys[:500])  # the earlier two-symbol draws
    np.testing.assert_array_equal(np.asarray(two), np.asarray(coins).astype(np.int32))
    env = TMaze(10, distractors=True, symbols=5)
    assert env.observation_space.shape == (7,)
    env.reset(seed=0)
    symbols = {int(np.argmax(env.step(UP)[0][:5])) for _ in range(40)}  # bump: stay, redraw
    assert symbols == set(range(5))
    with pytest.raises(UserError, match="symbols"):
        MazeConfig(symbols=1)


def test_tmaze_gymnasium_env_is_seeded_and_reports_success() -> None:
    env = TMaze(2)
    cues = []
    for seed in range(8):
        obs, info = env.reset(seed=seed)
        cues.append(info["cue"])
        np.testing.assert_array_equal(obs, np.eye(4)[info["cue"]])
    assert cues == [TMaze(2).reset(seed=s)[1]["cue"] for s in range(8)] and len(set(cues)) == 2
    obs, info = env.reset(seed=0)
    for _ in range(2):
        obs, _, terminated, _, info = env.step(FORWARD)
    assert obs.tolist() == [0, 0, 0, 1] and not terminated
    _, reward, terminated, _, info = env.step(UP + env._state.cue.item())
    assert terminated and reward == 1.0 and info["success"]


def test_pomdp_wrapper_hides_cartpole_velocities() -> None:
    env = make_env("pomdp:CartPole-v1")
    full = gymnasium.make("CartPole-v1")
    assert isinstance(env, HideObservation) and env.observation_space.shape == (2,)
    obs, _ = env.reset(seed=3)
    reference, _ = full.reset(seed=3)
    np.testing.assert_array_equal(obs, reference[[0, 2]])
    obs, *_ = env.step(1)
    reference, *_ = full.step(1)
    np.testing.assert_array_equal(obs, reference[[0, 2]])
    assert make_env("pomdp:CartPole-v1:0").observation_space.shape == (3,)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("NoSuchEnv-v0", "--env NoSuchEnv-v0"),
        ("tmaze:x", "tmaze:L"),
        ("pomdp:CartPole-v1:0,1,2,3", "hide some"),
        ("pomdp:FrozenLake-v1:0", "Box"),
        ("pomdp:FrozenLake-v1", "name the coordinates"),
        ("Pendulum-v1", "Discrete action"),
    ],
)
def test_make_env_errors_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as error:
        make_env(spec)
    assert "\n" not in str(error.value)


def test_algorithms_that_do_not_update_every_step_are_refused() -> None:
    with pytest.raises(UserError, match="tbptt:1:3"):
        make_agent(4, 3, algo="tbptt:3")
    with pytest.raises(UserError, match="--algo nope"):
        make_agent(4, 3, algo="nope")


def _episode(seed: int) -> tuple[list[Transition], MazeConfig]:
    """One T-maze episode of random actions (float64 observations)."""
    config = MazeConfig(corridor=3, max_steps=9, distractors=True)
    rng = np.random.default_rng(seed)
    state, obs = maze_reset(config, jnp.asarray(1))
    transitions = []
    for _ in range(config.limit):
        action = jnp.asarray(rng.choice([0, 0, 1, 2]), jnp.int32)
        out = maze_step(config, state, action, jnp.asarray(rng.integers(2)))
        done = out.terminated | out.truncated
        transitions.append(Transition(obs, action, out.reward, out.obs, out.terminated, done))
        state, obs = out.state, out.obs
        if bool(done):
            break
    return transitions, config


def _online_sum(spec, transitions) -> dict:
    """Sum of the descent directions emitted along the episode, parameters frozen at those
    of init_agent(key 0) (the same for every algorithm)."""
    state = init_agent(spec, jax.random.PRNGKey(0), jnp.float64, zero_heads=False)
    total = jax.tree_util.tree_map(jnp.zeros_like, state.params)
    step = jax.jit(lambda s, t: step_gradients(spec, s, t))
    for t in transitions:
        grads, hidden, traces, _ = step(state, t)
        total = jax.tree_util.tree_map(jnp.add, total, grads)
        state = state._replace(hidden=hidden, traces=traces)
    return total


def _bptt_reference(spec, params, transitions) -> dict:
    """Autodiff through the whole episode of the surrogate losses whose gradients the online
    algorithm emits: sum_t c_t xent_t(actor) + sum_t (V_t - y_t)^2, with c_t = delta_t w_t and
    y_t computed from the frozen parameters."""
    xs = jnp.stack([t.obs for t in transitions])
    nexts = jnp.stack([t.next_obs for t in transitions])
    actions = jnp.stack([t.action for t in transitions])
    live = 1.0 - jnp.stack([t.terminated for t in transitions]).astype(xs.dtype)
    rewards = jnp.stack([t.reward for t in transitions]).astype(xs.dtype)

    def run(model, p):
        def body(h, x):
            h2, out, _ = model.forward(p, h, x, 0)
            return h2, (h2, out)

        _, (hs, outs) = jax.lax.scan(body, model.cell.initial_hidden(xs.dtype), xs)
        return hs, outs

    critic, actor = spec.critic.model, spec.actor.model
    hs, values = run(critic, params["critic"])
    v_next = jax.vmap(lambda h, x: critic.forward(params["critic"], h, x, 0.0)[1])(hs, nexts)
    targets = rewards + spec.gamma * live * v_next[:, 0]
    deltas = targets - values[:, 0]
    _, logits = run(actor, params["actor"])
    probs = jax.nn.softmax(logits)[jnp.arange(len(actions)), actions]
    f = jax.vmap(lambda z: policy(z, spec.eta))(logits)[jnp.arange(len(actions)), actions]
    weights = deltas * (1.0 - spec.eta) * probs / f

    def actor_loss(p):
        _, out = run(actor, p)
        return jnp.sum(weights * optax.softmax_cross_entropy_with_integer_labels(out, actions))

    def critic_loss(p):
        _, out = run(critic, p)
        return jnp.sum((out[:, 0] - targets) ** 2)

    return {
        "actor": jax.grad(actor_loss)(params["actor"]),
        "critic": jax.grad(critic_loss)(params["critic"]),
    }


def _max_difference(a, b) -> float:
    return max(
        jax.tree_util.tree_leaves(
            jax.tree_util.tree_map(lambda x, y: jnp.max(jnp.abs(x - y)), a, b)
        )
    )


@pytest.mark.parametrize("cell", ["gru", "elman"])
def test_rtrl_actor_critic_gradient_equals_bptt_of_the_episode(cell: str) -> None:
    transitions, _ = _episode(seed=1)
    assert len(transitions) >= 5
    spec = make_agent(4, 3, hidden=5, cell=cell, algo="rtrl")
    state = init_agent(spec, jax.random.PRNGKey(0), jnp.float64, zero_heads=False)
    reference = _bptt_reference(spec, state.params, transitions)
    online = _online_sum(spec, transitions)
    assert _max_difference(online, reference) < 1e-10
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(reference)) > 1e-3
    # TBPTT over a window as long as the episode is exact too; a window of 1 is not.
    long = make_agent(4, 3, hidden=5, cell=cell, algo=f"tbptt:1:{len(transitions)}")
    assert _max_difference(_online_sum(long, transitions), reference) < 1e-10
    short = make_agent(4, 3, hidden=5, cell=cell, algo="tbptt:1:1")
    assert _max_difference(_online_sum(short, transitions), reference) > 1e-4


def test_episode_end_and_memoryless_agent_reset_hidden_and_influence() -> None:
    transitions, _ = _episode(seed=2)
    for algo, memory in [("rtrl", True), ("memoryless", False)]:
        spec = make_agent(4, 3, hidden=4, algo=algo)
        state = init_agent(spec, jax.random.PRNGKey(1), jnp.float64)
        for t in transitions:
            state, _ = learn(spec, state, t)
            zero = not bool(t.done) and memory
            influence = jax.tree_util.tree_leaves(state.traces)
            assert all(bool(jnp.all(leaf == 0)) for leaf in influence) != zero
            assert bool(jnp.all(state.hidden["actor"] == 0)) != zero


def test_quick_tmaze_study_rtrl_beats_the_memoryless_agent(tmp_path: Path) -> None:
    from streamgrad.experiments import recurrent_actor_critic as study

    summary = study.run(tmp_path, quick=True, progress=False)
    assert (tmp_path / "success.png").exists() and (tmp_path / "curves.csv").exists()
    stored = json.loads((tmp_path / "summary.json").read_text())
    assert stored["algos"] == list(study.ALGOS) and len(stored["seeds"]) == 2
    last = summary["success_last"]
    assert last["rtrl"] > last["memoryless"] + 0.2, last
    assert min(summary["success_last_per_seed"]["rtrl"]) > 0.8, summary
    assert "rtrl" in study.table_text(summary)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algos", "rtrl,tbptt:3"], "tbptt:1:3"),
        (["--seeds", "0,x"], "--seeds"),
        (["--steps", "10"], "--steps"),
        (["--symbols", "1"], "--symbols"),
    ],
)
def test_recurrent_actor_critic_command_bad_options_give_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = str(tmp_path / "x")
    code, err = run_cli(["experiment", "recurrent-actor-critic", "--out", out, *args], capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_recurrent_actor_critic_command_passes_the_maze_and_agent_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    small = ["--corridor", "2", "--steps", "1000", "--seeds", "0", "--hidden", "2"]
    chosen = ["--algos", "memoryless", "--symbols", "3", "--lr", "0.01"]
    code, err = run_cli(
        ["experiment", "recurrent-actor-critic", "--out", str(out), *small, *chosen], capsys
    )
    assert code == 0, err
    config = json.loads((out / "summary.json").read_text())["config"]
    assert (config["symbols"], config["lr"], config["hidden"]) == (3, 0.01, 2)
