"""Experience for the Gaussian-policy learners: n-step rollouts from simulators stepped in lockstep, and
batches of whole episodes. Shared by the synchronous trainers and each A3C worker.

Rollouts run ``num_envs`` simulator instances in a Gymnasium ``SyncVectorEnv`` that resets a finished
instance in the same step; a time-limit truncation bootstraps with γ·V(final observation).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robopg.core.buffers import Episode, Rollout
from robopg.envs import drawn_dynamics, make_env
from robopg.training.env_state import env_state, load_env_state


class RolloutCollector:
    """n-step rollouts from a ``SyncVectorEnv`` of simulators that resets a finished one in the same step.

    Used by the synchronous trainers and by each A3C worker. ``record`` sees every step (SIL keeps whole
    episodes); ``env_options`` make each simulator (the run's randomization),
    ``reset_options`` go to every reset (an A3C worker's own initial-state range); the values of ``randomized``
    that each episode drew at its start are kept in ``draws`` until taken.
    """

    def __init__(self, env_id: str, num_envs: int, gamma: float, env_options: dict[str, Any] | None = None,
                 reset_options: dict[str, Any] | None = None, randomized: tuple[str, ...] = ()) -> None:
        self.envs = gym.vector.SyncVectorEnv(
            [lambda: make_env(env_id, **(env_options or {})) for _ in range(num_envs)],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
        self.num_envs, self.gamma, self.reset_options = num_envs, gamma, reset_options
        self.obs: np.ndarray | None = None
        self.episode_returns = np.zeros(num_envs)
        self.episode_lengths = np.zeros(num_envs, dtype=int)
        self.randomized = randomized
        self.draws: list[dict[str, float]] = []

    def start(self, first_seed: int) -> None:
        self.obs, _ = self.envs.reset(seed=[first_seed + i for i in range(self.num_envs)],
                                      options=self.reset_options)
        self.episode_returns[:] = 0
        self.episode_lengths[:] = 0
        self.note_draws(range(self.num_envs))

    def note_draws(self, started: Iterable[int]) -> None:
        """Keep what the episodes just started on simulators ``started`` drew."""
        if self.randomized:
            self.draws += [drawn_dynamics(self.envs.envs[i], self.randomized) for i in started]

    def take_draws(self) -> list[dict[str, float]]:
        draws, self.draws = self.draws, []
        return draws

    def collect(self, learner, steps: int, record=None) -> tuple[Rollout, list[np.ndarray], list[tuple[float, int]]]:
        """A rollout, the raw observations it saw, and the episodes that finished in it."""
        assert self.obs is not None, "start() the collector first"
        columns: dict[str, list[torch.Tensor]] = {k: [] for k in Rollout._fields[:-1]}
        raw_obs, finished = [], []
        for _ in range(steps):
            obs = normalize(learner, self.obs)
            action, log_prob = learner.sample(obs)
            next_obs, env_reward, terminated, truncated, info = self.envs.step(env_action(learner, action))
            self.episode_returns += env_reward
            self.episode_lengths += 1
            reward = torch.as_tensor(env_reward, dtype=torch.float32)
            cut = truncated & ~terminated
            if cut.any():  # bootstrap through time limits with the value of the state the episode was cut at
                final = np.stack([info["final_obs"][i] for i in np.flatnonzero(cut)])
                reward[torch.from_numpy(cut)] += self.gamma * learner.state_value(normalize(learner, final))
            done = terminated | truncated
            for name, value in (("obs", obs), ("actions", action), ("log_probs", log_prob), ("rewards", reward),
                                ("dones", torch.as_tensor(done, dtype=torch.float32)),
                                ("values", learner.values(obs, action))):
                columns[name].append(value)
            if record is not None:
                record(self.obs, action, env_reward, done)
            for i in np.flatnonzero(done):
                finished.append((float(self.episode_returns[i]), int(self.episode_lengths[i])))
                self.episode_returns[i], self.episode_lengths[i] = 0.0, 0
            if done.any():
                self.note_draws(np.flatnonzero(done))  # reset in this same step
            raw_obs.append(self.obs)
            self.obs = next_obs
        rollout = Rollout(*(torch.stack(columns[name]) for name in Rollout._fields[:-1]),
                          last_value=learner.state_value(normalize(learner, self.obs)))
        return rollout, raw_obs, finished

    def state_dict(self) -> dict[str, Any] | None:
        """The simulators' episodes in flight (``robopg.training.env_state``) and the collector's own running
        figures, to continue exactly after :meth:`load_state_dict`; ``None`` if a simulator's state cannot be
        captured."""
        assert self.obs is not None, "start() the collector first"
        envs = [env_state(env) for env in self.envs.envs]
        if any(state is None for state in envs):
            return None
        return {"envs": envs, "obs": torch.from_numpy(self.obs.copy()),
                "episode_returns": torch.from_numpy(self.episode_returns.copy()),
                "episode_lengths": torch.from_numpy(self.episode_lengths.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the episodes :meth:`state_dict` saved, instead of :meth:`start`."""
        for env, saved in zip(self.envs.envs, state["envs"], strict=True):
            load_env_state(env, saved)
        self.obs = state["obs"].numpy().copy()
        self.episode_returns[:] = state["episode_returns"].numpy()
        self.episode_lengths[:] = state["episode_lengths"].numpy()

    def close(self) -> None:
        self.envs.close()


def normalize(learner, obs: np.ndarray) -> torch.Tensor:
    return learner.normalizer(torch.as_tensor(obs, dtype=torch.float32))


def env_action(learner, unit_action: torch.Tensor) -> np.ndarray:
    """Clip a sampled action to [-1, 1] and scale it to actuator units."""
    return learner.scaler(unit_action.clamp(-1.0, 1.0)).numpy()


def absorb(learner, raw_obs: list[np.ndarray]) -> None:
    """Fold the observations just learned from into the running normalizer."""
    if learner.config.normalize_obs and raw_obs:
        learner.normalizer.update(torch.as_tensor(np.concatenate(raw_obs), dtype=torch.float32))


def sample_episodes(envs: list[gym.Env], learner, first_seed: int) -> tuple[list[Episode], list[float],
                                                                          list[np.ndarray]]:
    """One whole episode on each simulator, stepped together until each has ended: the episodes, their
    returns and the raw observations seen."""
    obs = [np.asarray(env.reset(seed=first_seed + i)[0], dtype=np.float32) for i, env in enumerate(envs)]
    trajectories: list[dict[str, list]] = [{"obs": [], "actions": [], "rewards": [], "log_probs": []}
                                           for _ in envs]
    totals = [0.0] * len(envs)
    alive = list(range(len(envs)))
    raw_obs: list[np.ndarray] = []
    while alive:
        batch = normalize(learner, np.stack([obs[i] for i in alive]))
        actions, log_probs = learner.sample(batch)
        env_actions = env_action(learner, actions)
        still_alive = []
        for row, i in enumerate(alive):
            raw_obs.append(obs[i][None])
            next_obs, reward, terminated, truncated, _ = envs[i].step(env_actions[row])
            for name, value in (("obs", batch[row]), ("actions", actions[row]), ("log_probs", log_probs[row])):
                trajectories[i][name].append(value)
            trajectories[i]["rewards"].append(float(reward))
            totals[i] += float(reward)
            obs[i] = np.asarray(next_obs, dtype=np.float32)
            if not (terminated or truncated):
                still_alive.append(i)
        alive = still_alive
    episodes = [Episode(torch.stack(t["obs"]), torch.stack(t["actions"]), torch.tensor(t["rewards"]),
                        torch.stack(t["log_probs"])) for t in trajectories]
    return episodes, totals, raw_obs
