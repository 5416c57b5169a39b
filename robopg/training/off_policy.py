"""The off-policy loop of DDPG, TD3 and DPG.

Per environment step: act with the behaviour policy (uniform random during warm-up, then the
deterministic actor plus exploration noise), store the transition, and make ``updates_per_step``
learner updates on uniform minibatches from replay (or on the latest transition, without replay).
Checkpoints are taken at episode boundaries: the next episode is reset with the seed
``seed + episodes`` either way, so a resumed run goes on exactly as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robopg.algos.base import OffPolicyLearner
from robopg.config import OffPolicyConfig
from robopg.core.buffers import Batch, ReplayBuffer
from robopg.core.nets import PendingObservations
from robopg.core.noise import make_noise
from robopg.envs import drawn_dynamics, make_env
from robopg.memory import require_memory, transitions_bytes
from robopg.training.loop import Advance, Trainer


class OffPolicyTrainer(Trainer):
    config: OffPolicyConfig
    learner: OffPolicyLearner

    def __init__(self, env_id: str, config: OffPolicyConfig, run_dir, *, show_progress: bool = True) -> None:
        super().__init__(env_id, config, run_dir, show_progress=show_progress)
        self.env = make_env(env_id, **config.env_options())
        require_memory("buffer_size", transitions_bytes(config.buffer_size, self.obs_dim, self.act_dim))
        self.buffer = ReplayBuffer(config.buffer_size, self.obs_dim, self.act_dim)
        self.noise = make_noise(config.noise, (self.act_dim,), config.noise_std, self.rng, config.ou_theta)
        scaler = self.learner.scaler
        self.center, self.half_range = scaler.center.numpy(), scaler.half_range.numpy()
        self.obs: np.ndarray | None = None  # None between episodes: the next advance starts one
        self.episode_return, self.episode_length = 0.0, 0
        self.pending_obs = PendingObservations(self.learner.normalizer, config.normalize_obs)
        self.randomized = config.randomized_keys()
        self.draws: list[dict[str, float]] = []  # of the episode started in this advance


    def start_episode(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self.config.seed + self.episodes)
        if self.randomized:
            self.draws.append(drawn_dynamics(self.env, self.randomized))
        self.noise.reset()
        self.episode_return, self.episode_length = 0.0, 0
        obs = np.asarray(obs, dtype=np.float32)
        self.pending_obs.add(obs[None])
        return obs

    def behaviour_action(self, obs: np.ndarray) -> np.ndarray:
        """Uniform random before learning starts, then μ(s) + noise, in [-1, 1] units."""
        if self.step < self.config.learning_starts:
            return self.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
        action = self.learner.act(torch.from_numpy(obs)).numpy()
        return np.clip(action + self.noise(), -1.0, 1.0)

    def sample(self) -> Batch:
        c = self.config
        if not c.use_replay:
            return self.buffer.latest(1)
        return self.buffer.sample(c.batch_size, self.rng, c.n_step, c.gamma)

    def advance(self) -> Advance:
        c = self.config
        obs = self.obs if self.obs is not None else self.start_episode()
        unit_action = self.behaviour_action(obs)
        env_action = np.clip(self.center + self.half_range * unit_action, self.action_low, self.action_high)
        next_obs, reward, terminated, truncated, _ = self.env.step(env_action)
        next_obs = np.asarray(next_obs, dtype=np.float32)
        self.buffer.add(obs, unit_action, float(reward), next_obs, terminated, truncated)
        self.episode_return += float(reward)
        self.episode_length += 1
        self.pending_obs.add(next_obs[None])

        stats: dict[str, torch.Tensor] = {}
        if self.step + 1 >= c.learning_starts:
            for _ in range(c.updates_per_step):
                stats = self.learner.update(self.sample())

        finished = []
        if terminated or truncated:
            finished.append((self.episode_return, self.episode_length))
            self.obs = None
        else:
            self.obs = next_obs
        draws = self.draws
        if draws:  # handed over once; no new list on the steps that start no episode
            self.draws = []
        return Advance(1, finished, stats, draws)

    def safe_to_checkpoint(self) -> bool:
        return self.obs is None

    def loop_state(self) -> dict[str, Any]:
        return {
            "buffer": {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                       for k, v in self.buffer.state_dict().items()},
            "noise": torch.from_numpy(self.noise.get_state()),
            "pending_obs": torch.from_numpy(self.pending_obs.rows()),
        }

    def load_loop_state(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict({k: v.numpy() if isinstance(v, torch.Tensor) else v
                                     for k, v in state["buffer"].items()})
        self.noise.set_state(state["noise"].numpy())
        if "pending_obs" in state:
            self.pending_obs.load(state["pending_obs"].numpy())

    def close(self) -> None:
        super().close()
        self.env.close()
