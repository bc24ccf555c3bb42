"""`OnlineActorCritic`: the recurrent online actor-critic (`rl.recurrent`) behind the interface
users know from stable-baselines3.

    model = OnlineActorCritic("tmaze:10", hidden=16, cell="gru", algo="rtrl", seed=0)
    model.learn(30_000)                      # one step at a time along one trajectory
    action, hidden = model.predict(obs, state=hidden, episode_start=start, deterministic=True)
    model.save("agent/")
    model = OnlineActorCritic.load("agent/", env)   # continues exactly where it stopped

The environment is a gymnasium.Env or a spec string of `rl.environments.make_env`
("FrozenLake-v1", "tmaze:10", "pomdp:CartPole-v1"). The learning state is the agent's
parameters, optimizer and algorithm states, hidden states and PRNG key (a checkpoint of
`streamgrad.checkpoint`), plus, in its metadata, the environment's RNG state before the
current episode's reset and the actions taken since: `load` resets the environment from that
RNG state and replays those actions, which rebuilds the episode exactly for any environment
that draws its randomness from its `np_random` (all of gymnasium's). So learning 2n steps
equals learning n, saving, loading and learning n, bit for bit.

Metrics, per chunk of `log_every` steps (`history`): steps, episodes so far, mean return and
success rate of the episodes that ended in the chunk. An episode succeeds when its last
`info["success"]` says so (the T-maze) or, for environments that do not report it, when its
return is positive (FrozenLake: the goal was reached).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.checkpoint import load_checkpoint, save_checkpoint
from streamgrad.errors import UserError
from streamgrad.progress import progress_bar as make_progress_bar
from streamgrad.reporting import write_json
from streamgrad.rl.environments import encode, make_env, observation_size
from streamgrad.rl.recurrent import Transition, decide, init_agent, jitted, make_agent

AGENT_FILE = "agent.json"
HISTORY_COLUMNS = ("steps", "episodes", "mean_return", "success_rate")
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
Callback = Callable[["OnlineActorCritic"], bool | None]


def _np(value: Any) -> Any:
    """JSON-safe copy of an RNG state (numpy ints become Python ints)."""
    if isinstance(value, dict):
        return {key: _np(item) for key, item in value.items()}
    return value.item() if isinstance(value, np.generic) else value


class OnlineActorCritic:
    """Recurrent online actor-critic (see `rl.recurrent` for the update).

    hidden, cell: the engine cell of actor and critic; algo: an engine algorithm spec that
    updates every step (`rtrl`, `tbptt:1:TAU`, `uoro`, `snap1`, ...) or `memoryless`;
    optimizer, lr, critic_lr (default lr); gamma (discount); eta (exploration floor of the
    policy); seed (parameters, action draws and the environment's RNG); log_every (steps per
    row of `history`); dtype ("float32" or "float64")."""

    def __init__(
        self,
        env: gymnasium.Env | str,
        *,
        hidden: int = 16,
        cell: str = "gru",
        algo: str = "rtrl",
        optimizer: str = "adam",
        lr: float = 2e-3,
        critic_lr: float | None = None,
        gamma: float = 0.95,
        eta: float = 0.05,
        seed: int = 0,
        log_every: int = 1000,
        dtype: str = "float32",
    ) -> None:
        self.env = make_env(env) if isinstance(env, str) else env
        if log_every < 1 or dtype not in DTYPES:
            raise UserError(f"need log_every >= 1 and dtype in {list(DTYPES)}")
        self.config = {
            "env": env if isinstance(env, str) else str(self.env.spec.id if self.env.spec else env),
            "hidden": hidden, "cell": cell, "algo": algo, "optimizer": optimizer, "lr": lr,
            "critic_lr": critic_lr, "gamma": gamma, "eta": eta, "seed": seed,
            "log_every": log_every, "dtype": dtype,
        }  # fmt: skip
        space = self.env.observation_space
        self.obs_size = observation_size(space)
        self.n_actions = int(self.env.action_space.n)
        options = {k: self.config[k] for k in ("hidden", "cell", "algo", "optimizer", "lr")}
        self.spec = make_agent(
            self.obs_size, self.n_actions, critic_lr=critic_lr, gamma=gamma, eta=eta, **options
        )
        self._act, self._learn = jitted(self.spec)
        self._decide = jax.jit(
            lambda params, h, o, key, det: decide(self.spec, params, h, o, key, det),
            static_argnums=4,
        )
        self.state = init_agent(self.spec, jax.random.PRNGKey(seed), DTYPES[dtype])
        self._predict_key = jax.random.PRNGKey(seed + 1)
        self.num_timesteps, self.episodes = 0, 0
        self.history: list[dict[str, float]] = []
        self._chunk = {"episodes": 0, "return": 0.0, "successes": 0}
        self._episode_return = 0.0
        self.env.reset(seed=seed)  # seeds the environment's np_random
        self._start_episode()

    # -- the environment, episode by episode ----------------------------------------------
    def _start_episode(self) -> None:
        """Record the RNG state, reset, clear the action log."""
        self._rng_at_reset = _np(self.env.unwrapped.np_random.bit_generator.state)
        self._obs, _ = self.env.reset()
        self._actions: list[int] = []
        self._episode_return = 0.0

    def _replay(self, rng_state: dict[str, Any], actions: list[int]) -> None:
        """Rebuild the current episode: reset from `rng_state`, then take `actions`."""
        self.env.reset(seed=0)  # makes sure np_random exists; its state is replaced next
        self.env.unwrapped.np_random.bit_generator.state = rng_state
        self._start_episode()
        for action in actions:
            self._obs, reward, *_ = self.env.step(action)
            self._actions.append(action)
            self._episode_return += float(reward)

    # -- learning -------------------------------------------------------------------------
    def _one_step(self) -> None:
        space = self.env.observation_space
        obs = jnp.asarray(encode(space, self._obs))
        action, self.state = self._act(self.state, obs, False)
        action = int(action)
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        done = bool(terminated or truncated)
        transition = Transition(
            obs, jnp.asarray(action, jnp.int32), jnp.asarray(reward, jnp.float32),
            jnp.asarray(encode(space, next_obs)), jnp.asarray(bool(terminated)), jnp.asarray(done),
        )  # fmt: skip
        self.state, _ = self._learn(self.state, transition)
        self.num_timesteps += 1
        self._actions.append(action)
        self._obs = next_obs
        self._episode_return += float(reward)
        if done:
            self.episodes += 1
            self._chunk["episodes"] += 1
            self._chunk["return"] += self._episode_return
            self._chunk["successes"] += int(info.get("success", self._episode_return > 0))
            self._start_episode()
        if self.num_timesteps % self.config["log_every"] == 0:
            self._close_chunk()

    def _close_chunk(self) -> None:
        n = self._chunk["episodes"]
        self.history.append(
            {
                "steps": self.num_timesteps,
                "episodes": self.episodes,
                "mean_return": self._chunk["return"] / n if n else float("nan"),
                "success_rate": self._chunk["successes"] / n if n else float("nan"),
            }
        )
        self._chunk = {"episodes": 0, "return": 0.0, "successes": 0}

    def learn(
        self, total_steps: int, callback: Callback | None = None, progress_bar: bool = True
    ) -> OnlineActorCritic:
        """`total_steps` more online steps. `callback(self)` runs after every step; returning
        False stops learning early."""
        if total_steps < 0:
            raise UserError(f"learn: total_steps must be >= 0, got {total_steps}")
        with make_progress_bar(progress_bar) as bar:
            task = bar.add_task(f"{self.config['algo']} on {self.config['env']}", total=total_steps)
            for _ in range(total_steps):
                self._one_step()
                bar.advance(task)
                if callback is not None and callback(self) is False:
                    break
        return self

    # -- acting ---------------------------------------------------------------------------
    def predict(
        self,
        observation: Any,
        state: np.ndarray | None = None,
        episode_start: bool | None = None,
        deterministic: bool = False,
    ) -> tuple[int, np.ndarray]:
        """(action, next hidden state) for one observation, as in sb3-contrib's recurrent
        policies: pass the returned state back with the next observation; `state=None` or
        `episode_start=True` starts from S_0 = 0. Does not change what `learn` will do."""
        hidden = self.spec.actor.model.cell.initial_hidden(DTYPES[self.config["dtype"]])
        if state is not None and not episode_start:
            hidden = jnp.asarray(state, hidden.dtype)
        self._predict_key, key = jax.random.split(self._predict_key)
        obs = jnp.asarray(encode(self.env.observation_space, observation))
        action, after = self._decide(self.state.params["actor"], hidden, obs, key, deterministic)
        return int(action), np.asarray(after)

    # -- saving ---------------------------------------------------------------------------
    def _metadata(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "num_timesteps": self.num_timesteps,
            "episodes": self.episodes,
            "history": self.history,
            "chunk": self._chunk,
            "rng_at_reset": self._rng_at_reset,
            "actions": self._actions,
        }

    def save(self, path: str | Path) -> Path:
        """Write the learning state into the folder `path` (agent.json and a checkpoint)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / AGENT_FILE, self.config)
        state = (self.state, self._predict_key)
        return save_checkpoint(path, state, metadata=self._metadata(), step=self.num_timesteps)

    @classmethod
    def load(cls, path: str | Path, env: gymnasium.Env | str | None = None) -> OnlineActorCritic:
        """The agent saved in `path`, on `env` (default: the saved env spec), rebuilt to the
        exact state it was saved in (environment included)."""
        import json

        path = Path(path)
        if not (path / AGENT_FILE).is_file():
            raise UserError(f"{path}: no saved agent ({AGENT_FILE} missing)")
        config = json.loads((path / AGENT_FILE).read_text())
        options = {key: value for key, value in config.items() if key != "env"}
        agent = cls(config["env"] if env is None else env, **options)
        template = (agent.state, agent._predict_key)
        (agent.state, agent._predict_key), meta = load_checkpoint(path, template)
        agent.num_timesteps, agent.episodes = meta["num_timesteps"], meta["episodes"]
        agent.history = [{key: row[key] for key in HISTORY_COLUMNS} for row in meta["history"]]
        agent._chunk = meta["chunk"]
        agent._replay(meta["rng_at_reset"], meta["actions"])
        return agent
