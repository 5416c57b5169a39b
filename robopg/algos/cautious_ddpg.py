"""Cautious off-policy fine-tuning of a DDPG or TD3 policy on the robot, from its simulation's actor and critic.

The way the strongest real-robot learners work (SERL and RLPD, Luo et al. 2024 and Ball et al. 2023; WSRL,
Zhou et al. 2024): keep every robot transition in a replay memory, start from the critic learned in
simulation and recalibrate it on the first robot episodes before the actor moves (so that the actor
follows the robot's Q, not the simulator's), then make several updates per robot transition. The update is
the checkpoint's own (DDPG, or TD3 with its twin critics, target smoothing and delayed actor), on robot
data only. Caution:

- exploration is Gaussian noise of small σ around the deployed actor's action, clipped to the limits;
- every episode the robot runs (exploring, baseline, evaluation) is data: nothing the robot did is wasted;
- the critic learns from the commands the robot was sent (after the safety layer), not from what the
  policy asked for;
- the fine-tuned actor stays within ``max_drift`` of the deployed one on the states seen (``drift.py``);
- which policy is kept is the session's decision (evaluations and a significance test, ``robopg/finetune``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robopg.algos.ddpg import DDPG
from robopg.algos.drift import DriftBound
from robopg.config import MAX_BATCH, MAX_EPISODES, MAX_SEED, learning_rate
from robopg.core.buffers import Batch, ReplayBuffer
from robopg.core.nets import torch_policy_fn
from robopg.errors import ConfigError
from robopg.runtime.episode import PolicyFn, RobotEpisode
from robopg.settings import Settings, setting

REPLAY_CAPACITY = 1_000_000  # robot transitions: every one is kept


@dataclass(frozen=True, kw_only=True)
class CautiousDDPGConfig(Settings):
    """How cautious off-policy fine-tuning explores and learns on the robot."""

    label = "finetune config"

    std: float = setting(0.1, "exploration σ, normalized action units ([-1, 1] spans the actuator range)", gt=0,
                         le=1)
    warmup_episodes: int = setting(2, "episodes on the robot before the first update", ge=1, most=MAX_EPISODES)
    calibration_updates: int = setting(2000, "critic-only updates on the warm-up episodes before the actor moves",
                                       ge=0, most=10**6)
    updates_per_step: int = setting(2, "updates per robot transition (the update-to-data ratio)", ge=1, most=100)
    batch_size: int = setting(256, "transitions per update", ge=1, most=MAX_BATCH)
    actor_lr: float = learning_rate(1e-4, "actor")
    critic_lr: float = learning_rate(3e-4, "critic")
    max_drift: float = setting(0.5, "largest |μθ(s) − μ₀(s)| on the states seen, normalized action units", gt=0, le=2)
    seed: int = setting(0, "seed of the exploration noise and the minibatches", ge=0, le=MAX_SEED)


class CautiousDDPG:
    """The checkpoint's DDPG/TD3 learner, trained in place on the robot's transitions."""

    def __init__(self, trained: Any, config: CautiousDDPGConfig) -> None:
        if not isinstance(trained, DDPG):
            raise ConfigError(f"cautious_ddpg fine-tunes a DDPG or TD3 checkpoint (actor and critic); this one holds "
                              f"a {type(trained).__name__} learner: use --method cautious_a2c")
        self.config, self.trained = config, trained
        for optimizer, lr in ((trained.actor_optimizer, config.actor_lr), (trained.critic_optimizer, config.critic_lr)):
            for group in optimizer.param_groups:
                group["lr"] = lr
        trained.generator.manual_seed(config.seed)
        self.scaler = trained.scaler
        self.buffer = ReplayBuffer(REPLAY_CAPACITY, trained.actor.net[0].in_features, trained.act_dim)
        self.bound = DriftBound(trained.actor, trained.normalizer, config.max_drift)
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.episodes = 0
        self.calibrated = config.calibration_updates == 0

    def exploring_policy(self) -> PolicyFn:
        """μ(s) + σε in unit space, clipped to the limits, in actuator units."""

        @torch.no_grad()
        def act(obs: np.ndarray) -> np.ndarray:
            mean = self.trained.act(torch.tensor(obs, dtype=torch.float32))
            noise = self.config.std * torch.randn(mean.shape, generator=self.generator)
            return self.scaler((mean + noise).clamp(-1.0, 1.0)).numpy()

        return act

    def deterministic_policy(self) -> PolicyFn:
        return torch_policy_fn(self.trained.policy())

    def frozen_policy(self) -> PolicyFn:
        """The noise-free policy as it is now: later updates do not change it."""
        return torch_policy_fn(copy.deepcopy(self.trained.policy()))

    def observe(self, episode: RobotEpisode, exploring: bool) -> tuple[float, float]:
        """Keep the episode's transitions; after the warm-up (and the critic's calibration, once), make
        ``updates_per_step`` updates per transition of it. Returns (NaN, drift): no KL here."""
        self.store(episode)
        self.bound.remember(episode.inputs)
        self.episodes += 1
        if self.episodes < self.config.warmup_episodes:
            return math.nan, math.nan
        if not self.calibrated:
            for _ in range(self.config.calibration_updates):
                self.trained.update(self.sample(), update_actor=False)
            self.calibrated = True
        for _ in range(len(episode) * self.config.updates_per_step):
            self.trained.update(self.sample())
        return math.nan, self.bound.enforce()

    def store(self, episode: RobotEpisode) -> None:
        """Each step as (s, the command sent in unit actions, r, s', terminated): the last step alone can end
        the task; an episode cut by its length or the safety layer bootstraps from its last state."""
        units = self.scaler.to_unit(torch.as_tensor(episode.commands, dtype=torch.float32)).numpy()
        for t in range(len(episode)):
            last = t == len(episode) - 1
            self.buffer.add(episode.inputs[t], units[t], float(episode.rewards[t]), episode.inputs[t + 1],
                            bool(last and episode.terminated), truncated=bool(last and not episode.terminated))

    def sample(self) -> Batch:
        """A minibatch with the critic targets the policy was trained with (its ``n_step``)."""
        trained = self.trained.config
        return self.buffer.sample(min(self.config.batch_size, len(self.buffer)), self.rng, trained.n_step,
                                  trained.gamma)

    def drift(self) -> float:
        return self.bound.drift()

    def policy_state(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.trained.policy().state_dict().items()}

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        """Back to an earlier policy (a rollback, or the best one at the end); the actor's target follows it."""
        self.trained.policy().load_state_dict(state)
        self.trained.actor_target.load_state_dict(self.trained.actor.state_dict())
