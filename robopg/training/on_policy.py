"""The on-policy loops: synchronous rollouts from several simulators (A2C) and batches of whole
episodes (REINFORCE).

Rollouts run ``num_envs`` simulator instances in a Gymnasium ``SyncVectorEnv`` that resets a finished
instance in the same step; a time-limit truncation bootstraps with γ·V(final observation). A
checkpoint after an update resumes with fresh episodes (REINFORCE's updates end on episode
boundaries, so its resumption is exact; A2C's simulators are mid-episode and restart).
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robopg.algos.a2c import A2C
from robopg.algos.actor_critic import QActorCritic
from robopg.algos.offpac import OffPAC
from robopg.algos.reinforce import Reinforce
from robopg.algos.sil import A2CSIL
from robopg.buffers import Episode, PrioritizedReturns, Rollout
from robopg.config import (
    A2CConfig,
    A3CConfig,
    ActorCriticConfig,
    OffPACConfig,
    OnPolicyConfig,
    ReinforceConfig,
    SILConfig,
)
from robopg.envs import make_env
from robopg.returns import discounted_returns
from robopg.trainer import Advance, Trainer


class OnPolicyTrainer(Trainer):
    config: OnPolicyConfig

    def loop_state(self) -> dict[str, Any]:
        return {}

    def load_loop_state(self, state: dict[str, Any]) -> None:
        """Nothing beyond the learner and generators: episodes restart on resume."""


class RolloutCollector:
    """n-step rollouts from a ``SyncVectorEnv`` of simulators that resets a finished one in the same step.

    Used by the synchronous trainers and by each A3C worker. ``record`` sees every step (SIL keeps whole
    episodes); ``reset_options`` go to every reset (an A3C worker's own initial-state range).
    """

    def __init__(self, env_id: str, num_envs: int, gamma: float, reset_options: dict[str, Any] | None = None) -> None:
        self.envs = gym.vector.SyncVectorEnv(
            [lambda: make_env(env_id) for _ in range(num_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        )
        self.num_envs, self.gamma, self.reset_options = num_envs, gamma, reset_options
        self.obs: np.ndarray | None = None
        self.episode_returns = np.zeros(num_envs)
        self.episode_lengths = np.zeros(num_envs, dtype=int)

    def start(self, first_seed: int) -> None:
        self.obs, _ = self.envs.reset(seed=[first_seed + i for i in range(self.num_envs)],
                                      options=self.reset_options)
        self.episode_returns[:] = 0
        self.episode_lengths[:] = 0

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
            raw_obs.append(self.obs)
            self.obs = next_obs
        rollout = Rollout(*(torch.stack(columns[name]) for name in Rollout._fields[:-1]),
                          last_value=learner.state_value(normalize(learner, self.obs)))
        return rollout, raw_obs, finished

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


class RolloutTrainer(OnPolicyTrainer):
    """Synchronous n-step rollouts from ``num_envs`` simulators, one learner update per rollout."""

    config: A2CConfig | ActorCriticConfig
    learner: A2C | QActorCritic

    def __init__(self, env_id: str, config: A2CConfig | ActorCriticConfig, run_dir: Path, *,
                 show_progress: bool = True) -> None:
        super().__init__(env_id, config, run_dir, show_progress=show_progress)
        self.collector = RolloutCollector(env_id, config.num_envs, config.gamma)
        self.started = False


    def advance(self) -> Advance:
        c = self.config
        if not self.started:
            self.collector.start(c.seed + self.episodes * c.num_envs)
            self.started = True
        rollout, raw_obs, finished = self.collector.collect(self.learner, c.rollout_steps, self.record)
        stats = self.learner.update(rollout)
        stats.update(self.after_update())
        absorb(self.learner, raw_obs)
        return Advance(c.rollout_steps * c.num_envs, finished, stats)

    def record(self, raw_obs: np.ndarray, action: torch.Tensor, reward: np.ndarray, done: np.ndarray) -> None:
        """See every step of every simulator (SIL keeps whole episodes)."""

    def after_update(self) -> dict[str, torch.Tensor]:
        """Extra learning after each rollout's update (SIL's self-imitation)."""
        return {}

    def close(self) -> None:
        super().close()
        self.collector.close()


class SILTrainer(RolloutTrainer):
    """A2C rollouts; every finished episode's (s, a, R) goes to a prioritized replay for self-imitation."""

    config: SILConfig
    learner: A2CSIL

    def __init__(self, env_id: str, config: SILConfig, run_dir: Path, *, show_progress: bool = True) -> None:
        super().__init__(env_id, config, run_dir, show_progress=show_progress)
        self.replay = PrioritizedReturns(config.sil_buffer_size, self.obs_dim, self.act_dim, config.sil_alpha,
                                         config.sil_beta)
        self.running: list[dict[str, list]] = [{"obs": [], "actions": [], "rewards": []}
                                               for _ in range(config.num_envs)]


    def record(self, raw_obs: np.ndarray, action: torch.Tensor, reward: np.ndarray, done: np.ndarray) -> None:
        for i, episode in enumerate(self.running):
            episode["obs"].append(raw_obs[i])
            episode["actions"].append(action[i].numpy())
            episode["rewards"].append(float(reward[i]))
            if done[i]:
                rewards = torch.tensor(episode["rewards"])
                returns = discounted_returns(rewards, torch.zeros_like(rewards), self.config.gamma)
                self.replay.add(np.stack(episode["obs"]), np.stack(episode["actions"]), returns.numpy())
                self.running[i] = {"obs": [], "actions": [], "rewards": []}

    def after_update(self) -> dict[str, torch.Tensor]:
        if len(self.replay) < self.config.sil_batch_size:
            return {}
        stats: dict[str, torch.Tensor] = {}
        for _ in range(self.config.sil_updates):
            idx, obs, actions, returns, weights = self.replay.sample(self.config.sil_batch_size, self.rng)
            stats, priorities = self.learner.imitate(normalize(self.learner, obs.numpy()), actions, returns, weights)
            self.replay.update_priorities(idx, priorities.numpy())
        return stats

    def loop_state(self) -> dict[str, Any]:
        return {"sil_replay": {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                               for k, v in self.replay.state_dict().items()}}

    def load_loop_state(self, state: dict[str, Any]) -> None:
        self.replay.load_state_dict({k: v.numpy() if isinstance(v, torch.Tensor) else v
                                     for k, v in state["sil_replay"].items()})


class EpisodeTrainer(OnPolicyTrainer):
    """Collects ``episodes_per_update`` whole episodes, ``num_envs`` at a time in lockstep, and learns
    from them (REINFORCE), or from a replay of recent episodes (off-policy actor-critic)."""

    config: ReinforceConfig | OffPACConfig
    learner: Reinforce | OffPAC

    def __init__(self, env_id: str, config: ReinforceConfig | OffPACConfig, run_dir: Path, *,
                 show_progress: bool = True) -> None:
        super().__init__(env_id, config, run_dir, show_progress=show_progress)
        self.envs = [make_env(env_id) for _ in range(config.num_envs)]
        capacity = config.replay_episodes if isinstance(config, OffPACConfig) else config.episodes_per_update
        self.replay: deque[Episode] = deque(maxlen=capacity)


    def training_episodes(self, new: list[Episode]) -> list[Episode]:
        """REINFORCE learns from the new episodes only; Off-PAC from a sample of its replay."""
        if isinstance(self.config, ReinforceConfig):
            return new
        self.replay.extend(new)
        count = min(self.config.replay_batch, len(self.replay))
        return [self.replay[i] for i in self.rng.choice(len(self.replay), size=count, replace=False)]

    def advance(self) -> Advance:
        c = self.config
        episodes, totals, raw_obs = [], [], []
        while len(episodes) < c.episodes_per_update:
            count = min(c.num_envs, c.episodes_per_update - len(episodes))
            batch, batch_totals, batch_obs = sample_episodes(self.envs[:count], self.learner,
                                                             c.seed + self.episodes + len(episodes))
            episodes += batch
            totals += batch_totals
            raw_obs += batch_obs
        stats = self.learner.update(self.training_episodes(episodes))
        absorb(self.learner, raw_obs)
        return Advance(sum(len(e.rewards) for e in episodes), [(t, len(e.rewards)) for t, e in zip(totals, episodes,
                                                                                                strict=True)], stats)

    def loop_state(self) -> dict[str, Any]:
        return {"replay": [list(episode) for episode in self.replay]}

    def load_loop_state(self, state: dict[str, Any]) -> None:
        self.replay.extend(Episode(*fields) for fields in state["replay"])

    def close(self) -> None:
        super().close()
        for env in self.envs:
            env.close()


def make_on_policy_trainer(env_id: str, config: OnPolicyConfig, run_dir: Path, *, show_progress: bool) -> Trainer:
    if isinstance(config, A3CConfig):
        from robopg.parallel.a3c import A3CTrainer

        return A3CTrainer(env_id, config, run_dir, show_progress=show_progress)
    if isinstance(config, SILConfig):
        return SILTrainer(env_id, config, run_dir, show_progress=show_progress)
    if isinstance(config, A2CConfig | ActorCriticConfig):
        return RolloutTrainer(env_id, config, run_dir, show_progress=show_progress)
    if isinstance(config, ReinforceConfig | OffPACConfig):
        return EpisodeTrainer(env_id, config, run_dir, show_progress=show_progress)
    raise TypeError(f"no on-policy trainer for {type(config).__name__}")
