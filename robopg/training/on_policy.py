"""The on-policy loops: synchronous rollouts from several simulators (A2C, actor-critic, A2C+SIL) and
batches of whole episodes (REINFORCE, and off-policy actor-critic from a replay of episodes).

Checkpoints fall after an update. REINFORCE's updates end on episode boundaries; A2C's simulators are
mid-episode then, and the checkpoint holds their episodes in flight (``robopg.training.env_state``: physics,
time limits, random generators), so that a resumed run goes on exactly as an uninterrupted one. Only a
simulator whose state cannot be captured (one keeping it in a MuJoCo or Box2D world) restarts its episodes.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robopg.algos.a2c import A2CConfig
from robopg.algos.actor_critic import ActorCriticConfig
from robopg.algos.offpac import OffPACConfig
from robopg.algos.reinforce import ReinforceConfig
from robopg.algos.sil import A2CSIL, SILConfig
from robopg.config import OnPolicyConfig
from robopg.core.buffers import Episode, PrioritizedReturns
from robopg.core.returns import discounted_returns
from robopg.envs import drawn_dynamics, make_env
from robopg.training.loop import Advance, Trainer
from robopg.training.rollouts import RolloutCollector, absorb, normalize, sample_episodes


class OnPolicyTrainer(Trainer):
    config: OnPolicyConfig

    def loop_state(self) -> dict[str, Any]:
        return {}

    def load_loop_state(self, state: dict[str, Any]) -> None:
        """Nothing beyond the learner and generators: whole-episode updates start fresh episodes anyway."""


class RolloutTrainer(OnPolicyTrainer):
    """Synchronous n-step rollouts from ``num_envs`` simulators, one learner update per rollout."""

    config: A2CConfig | ActorCriticConfig

    def __init__(self, env_id: str, config: A2CConfig | ActorCriticConfig, run_dir: Path, *,
                 show_progress: bool = True) -> None:
        super().__init__(env_id, config, run_dir, show_progress=show_progress)
        self.collector = RolloutCollector(env_id, config.num_envs, config.gamma, config.env_options(),
                                          randomized=config.randomized_keys())
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
        return Advance(c.rollout_steps * c.num_envs, finished, stats, self.collector.take_draws())

    def loop_state(self) -> dict[str, Any]:
        # None (fresh episodes on resume) before the first rollout or for simulators that cannot be captured.
        return {"collector": self.collector.state_dict() if self.started else None}

    def load_loop_state(self, state: dict[str, Any]) -> None:
        if state.get("collector") is not None:  # absent from runs saved before the episodes in flight were
            self.collector.load_state_dict(state["collector"])
            self.started = True

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
        return {**super().loop_state(),
                "sil_replay": {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                               for k, v in self.replay.state_dict().items()},
                "sil_running": [{k: torch.from_numpy(np.asarray(v, np.float64 if k == "rewards" else None))
                                 for k, v in episode.items()} for episode in self.running]}

    def load_loop_state(self, state: dict[str, Any]) -> None:
        super().load_loop_state(state)
        self.replay.load_state_dict({k: v.numpy() if isinstance(v, torch.Tensor) else v
                                     for k, v in state["sil_replay"].items()})
        if self.started and "sil_running" in state:  # the episodes in flight continue: so do their records
            self.running = [{k: list(v.numpy()) if k != "rewards" else v.tolist() for k, v in episode.items()}
                            for episode in state["sil_running"]]


class EpisodeTrainer(OnPolicyTrainer):
    """Collects ``episodes_per_update`` whole episodes, ``num_envs`` at a time in lockstep, and learns
    from them (REINFORCE)."""

    config: ReinforceConfig | OffPACConfig

    def __init__(self, env_id: str, config: ReinforceConfig | OffPACConfig, run_dir: Path, *,
                 show_progress: bool = True) -> None:
        super().__init__(env_id, config, run_dir, show_progress=show_progress)
        self.envs = [make_env(env_id, **config.env_options()) for _ in range(config.num_envs)]
        self.randomized = config.randomized_keys()

    def training_episodes(self, new: list[Episode]) -> list[Episode]:
        """What the update learns from: the new episodes."""
        return new

    def advance(self) -> Advance:
        c = self.config
        episodes, totals, raw_obs, draws = [], [], [], []
        while len(episodes) < c.episodes_per_update:
            count = min(c.num_envs, c.episodes_per_update - len(episodes))
            batch, batch_totals, batch_obs = sample_episodes(self.envs[:count], self.learner,
                                                             c.seed + self.episodes + len(episodes))
            episodes += batch
            totals += batch_totals
            raw_obs += batch_obs
            draws += [drawn_dynamics(env, self.randomized) for env in self.envs[:count]] if self.randomized else []
        stats = self.learner.update(self.training_episodes(episodes))
        absorb(self.learner, raw_obs)
        return Advance(sum(len(e.rewards) for e in episodes), [(t, len(e.rewards)) for t, e in zip(totals, episodes,
                                                                                                strict=True)],
                       stats, draws)

    def close(self) -> None:
        super().close()
        for env in self.envs:
            env.close()


class EpisodeReplayTrainer(EpisodeTrainer):
    """Whole episodes into a replay of ``replay_episodes``; each update learns from ``replay_batch`` of them
    drawn at random (off-policy actor-critic: the importance weights correct for the policy having moved)."""

    config: OffPACConfig

    def __init__(self, env_id: str, config: OffPACConfig, run_dir: Path, *, show_progress: bool = True) -> None:
        super().__init__(env_id, config, run_dir, show_progress=show_progress)
        self.replay: deque[Episode] = deque(maxlen=config.replay_episodes)

    def training_episodes(self, new: list[Episode]) -> list[Episode]:
        self.replay.extend(new)
        count = min(self.config.replay_batch, len(self.replay))
        return [self.replay[i] for i in self.rng.choice(len(self.replay), size=count, replace=False)]

    def loop_state(self) -> dict[str, Any]:
        return {"replay": [list(episode) for episode in self.replay]}

    def load_loop_state(self, state: dict[str, Any]) -> None:
        self.replay.extend(Episode(*fields) for fields in state["replay"])
