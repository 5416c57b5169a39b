"""Cautious online A2C: the learner that fine-tunes a deployed deterministic policy on the robot.

The exploring policy is a Gaussian N(μθ(s), σ²) in normalized action units whose mean μθ is the deployed
actor (same normalizer and scaling) and whose σ is small and bounded. Caution comes from:

- a critic warm-up: the value function V(s) is fitted on the robot's returns before any actor update;
- A2C updates (Mnih et al. 2016) with GAE advantages (Schulman et al. 2016) and gradient clipping, each on
  the ``replay_episodes`` most recent exploring episodes (with two, the gradient's direction is mostly noise:
  the cosine between gradients of disjoint batches was 0.1), a few steps per update. An episode is reused by
  several updates after the policy that collected it has moved, so each step is weighted by its importance
  ratio π(a|s)/b(a|s) truncated at ``rho_clip`` (the off-policy actor-critic of Degris et al. 2012, truncated
  as in ACER, Wang et al. 2017): with an update every ``episodes_per_update`` episodes instead of every
  ``replay_episodes``, a session of tens of episodes makes tens of updates, not three;
- by default only the actor's output layer changes: a correction of the deployed behaviour (such as a
  lower gain while balancing, for a robot whose actuation lags) lives there, and updates of the whole
  network moved the noise-free policy in directions that did not help;
- a trust region per update: KL(π_old ‖ π_new) on the batch's states at most ``max_kl``, by backtracking
  the step (the idea of TRPO, Schulman et al. 2015, as a line search on the parameter change);
- a bound on the total drift from the deployed policy: max over the states seen of |μθ(s) − μ₀(s)|, in
  normalized action units, at most ``max_drift``, by pulling the parameters back towards the deployed ones.

Which policy is kept (evaluations, significance test, rollback, saving) is the fine-tuning session's
decision (``robopg/finetune/``), not the learner's.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from robopg.algos.drift import DriftBound, interpolate
from robopg.config import MAX_EPISODES, MAX_SEED, hidden_layers, learning_rate, require_fits_in_memory
from robopg.core.losses import policy_gradient_loss, value_loss
from robopg.core.nets import DeployablePolicy, ValueNet, torch_policy_fn
from robopg.core.returns import discounted_returns, gae_advantages
from robopg.runtime.episode import PolicyFn, RobotEpisode
from robopg.settings import Settings, require, setting


@dataclass(frozen=True, kw_only=True)
class CautiousA2CConfig(Settings):
    """How cautious online A2C explores and learns on the robot."""

    label = "finetune config"

    warmup_episodes: int = setting(6, "first exploring episodes that fit the critic only", ge=0, most=MAX_EPISODES)
    episodes_per_update: int = setting(1, "exploring episodes between actor updates", ge=1, most=MAX_EPISODES)
    replay_episodes: int = setting(8, "each update learns from this many most recent exploring episodes (with "
                                      "fewer, the gradient is mostly noise)", ge=1, most=1000)
    rho_clip: float = setting(2.0, "truncation of the importance weights of replayed episodes", gt=0, le=100)
    std: float = setting(0.2, "exploration σ, normalized action units ([-1, 1] spans the actuator range)", gt=0,
                         le=1)
    max_std: float = setting(0.2, "largest σ allowed", gt=0, le=1)
    actor_lr: float = learning_rate(1e-2, "actor")
    actor_steps: int = setting(5, "A2C steps per batch, each backtracked into the trust region", ge=1, most=1000)
    train_output_layer_only: bool = setting(True, "fine-tune only the actor's last linear layer")
    critic_lr: float = learning_rate(1e-3, "critic")
    critic_epochs: int = setting(20, "critic passes over the recent episodes after each episode", ge=1, most=1000)
    critic_episodes: int = setting(8, "the critic fits the returns of this many most recent episodes", ge=1,
                                   most=MAX_EPISODES)
    critic_hidden: tuple[int, ...] = hidden_layers((64, 64), "critic")
    value_scale: float = setting(50.0, "the critic predicts returns / value_scale", gt=0, le=1e6)
    gamma: float = setting(0.99, "discount factor", gt=0, le=1)
    gae_lambda: float = setting(0.95, "λ of the GAE advantages", ge=0, le=1)
    max_grad_norm: float = setting(0.5, "gradients' global norm is clipped to this", gt=0, le=1e6)
    max_kl: float = setting(0.02, "trust region: largest KL(π_old ‖ π_new) per update", gt=0, le=10)
    max_drift: float = setting(0.5, "largest |μθ(s) − μ₀(s)| on the states seen, normalized action units", gt=0, le=2)
    seed: int = setting(0, "seed of the exploration noise and the critic's initial weights", ge=0, le=MAX_SEED)

    def check(self) -> None:
        require(self.std <= self.max_std, f"0 < std <= max_std <= 1 is required, got std {self.std}, "
                                          f"max_std {self.max_std}")
        require_fits_in_memory(self)


class CautiousA2C:
    """The deployed actor as a Gaussian's mean, a fresh critic, and the safeguards of the update.

    ``trained`` is the learner of the deployed policy's checkpoint (any algorithm): its deterministic policy's
    actor is trained in place, its normalizer and action scaling stay as deployed."""

    def __init__(self, trained: Any, config: CautiousA2CConfig) -> None:
        self.config = config
        self.policy: DeployablePolicy = trained.policy()
        self.normalizer, self.actor, self.scaler = self.policy.normalizer, self.policy.actor, self.policy.scaler
        for p in self.normalizer.parameters():
            p.requires_grad_(False)
        self.bound = DriftBound(self.actor, self.normalizer, config.max_drift)
        obs_dim = self.normalizer.mean.numel()
        torch.manual_seed(config.seed)
        self.critic = ValueNet(obs_dim, config.critic_hidden)
        trained = {id(p) for p in self.trained_parameters()}
        for p in self.actor.parameters():
            p.requires_grad_(id(p) in trained)
        self.actor_optimizer = torch.optim.Adam(self.trained_parameters(), lr=config.actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.recent: deque[RobotEpisode] = deque(maxlen=config.critic_episodes)
        # Exploring episodes and log b(a|s) of their actions under the policy that took them.
        self.replay: deque[tuple[RobotEpisode, torch.Tensor]] = deque(maxlen=config.replay_episodes)
        self.episodes = 0

    # ----- acting --------------------------------------------------------------------------------------

    def unit_mean(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.normalizer(obs))

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.unit_mean(obs), self.config.std)  # std <= max_std, checked

    def exploring_policy(self) -> PolicyFn:
        """μ(s) + σε in unit space, in actuator units and not clipped: the episode records the sample itself
        (its log-probability is the one the update needs) and the safety layer clips what is sent."""

        @torch.no_grad()
        def act(obs: np.ndarray) -> np.ndarray:
            mean = self.unit_mean(torch.tensor(obs, dtype=torch.float32))
            return self.scaler(mean + self.config.std * torch.randn(mean.shape, generator=self.generator)).numpy()

        return act

    def deterministic_policy(self) -> PolicyFn:
        return torch_policy_fn(self.policy)

    def frozen_policy(self) -> PolicyFn:
        """The noise-free policy as it is now: later updates do not change it."""
        return torch_policy_fn(copy.deepcopy(self.policy))

    # ----- learning ------------------------------------------------------------------------------------

    def observe(self, episode: RobotEpisode, exploring: bool) -> tuple[float, float]:
        """Learn from an episode: from an exploring one, the critic from the recent ones and, after the warm-up,
        every ``episodes_per_update`` episodes, the actor from the replay (noise-free episodes are not samples of
        the Gaussian policy: they teach nothing here). Returns the update's (KL, drift), NaN when the actor did
        not change."""
        if not exploring:
            return math.nan, math.nan
        self.episodes += 1
        self.recent.append(episode)
        self.replay.append((episode, self.log_prob(episode).detach()))  # the actor is still the one that acted
        self.fit_critic(list(self.recent))  # the actor changes little per update: recent returns stay relevant
        past_warmup = self.episodes - self.config.warmup_episodes
        if past_warmup <= 0 or past_warmup % self.config.episodes_per_update:
            return math.nan, math.nan
        episodes, behaviour = zip(*self.replay, strict=True)
        return self.actor_update(list(episodes), list(behaviour))

    def log_prob(self, episode: RobotEpisode) -> torch.Tensor:
        """log π(a|s) of each step's action under the current policy."""
        states = torch.as_tensor(episode.inputs[:-1], dtype=torch.float32)
        actions = self.scaler.to_unit(torch.as_tensor(episode.actions, dtype=torch.float32))
        return self.distribution(states).log_prob(actions).sum(-1)

    def fit_critic(self, episodes: list[RobotEpisode]) -> float:
        """Regress V(s) on discounted Monte Carlo returns of ``episodes``; the final loss."""
        obs, targets = [], []
        for ep in episodes:
            states, rewards, terminated = episode_tensors(ep)
            bootstrap = self.value(ep.inputs[-1:])[0] * (1.0 - terminated[-1])
            targets.append(discounted_returns(rewards, terminated, self.config.gamma, bootstrap))
            obs.append(states)
        x, y = self.normalizer(torch.cat(obs)), torch.cat(targets) / self.config.value_scale
        for _ in range(self.config.critic_epochs):
            loss = value_loss(self.critic(x), y)
            self.critic_optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.critic.parameters(), self.config.max_grad_norm)
            self.critic_optimizer.step()
        return loss.item()

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> torch.Tensor:
        return self.critic(self.normalizer(torch.tensor(obs, dtype=torch.float32))) * self.config.value_scale

    def actor_update(self, episodes: list[RobotEpisode],
                     behaviour_log_probs: list[torch.Tensor] | None = None) -> tuple[float, float]:
        """``actor_steps`` A2C steps on ``episodes``, each backtracked into the trust region around the policy
        before the update, then the drift bound; returns (KL, drift). Steps are weighted by min(π/b, rho_clip),
        π the policy before the update and b the one that acted (``behaviour_log_probs``; None: π itself)."""
        c = self.config
        obs, actions, advantages = [], [], []
        for ep in episodes:
            states, rewards, terminated = episode_tensors(ep)
            values = self.value(ep.inputs)
            advantages.append(gae_advantages(rewards, terminated, values[:-1], values[-1], c.gamma, c.gae_lambda))
            obs.append(states)
            actions.append(self.scaler.to_unit(torch.as_tensor(ep.actions, dtype=torch.float32)))
        x, a, adv = torch.cat(obs), torch.cat(actions), torch.cat(advantages)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        with torch.no_grad():
            old = self.distribution(x)
            if behaviour_log_probs is not None:
                weights = (old.log_prob(a).sum(-1) - torch.cat(behaviour_log_probs)).exp().clamp(max=c.rho_clip)
                adv = adv * weights
        kl = 0.0
        for _ in range(c.actor_steps):
            before = [p.detach().clone() for p in self.actor.parameters()]
            loss = policy_gradient_loss(self.distribution(x).log_prob(a).sum(-1), adv)
            self.actor_optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.trained_parameters(), c.max_grad_norm)
            self.actor_optimizer.step()
            kl = self._backtrack_to_trust_region(x, old, before)
        for ep in episodes:
            self.bound.remember(ep.inputs)
        return kl, self.bound.enforce()

    def _kl(self, x: torch.Tensor, old: torch.distributions.Normal) -> float:
        with torch.no_grad():
            return float(torch.distributions.kl_divergence(old, self.distribution(x)).sum(-1).mean())

    def _backtrack_to_trust_region(self, x: torch.Tensor, old: torch.distributions.Normal,
                                   before: list[torch.Tensor]) -> float:
        after = [p.detach().clone() for p in self.actor.parameters()]
        scale = 1.0
        kl = self._kl(x, old)
        for _ in range(10):
            if kl <= self.config.max_kl:
                return kl
            scale /= 2
            interpolate(self.actor, before, after, scale)
            kl = self._kl(x, old)
        interpolate(self.actor, before, after, 0.0)  # no step is small enough: back to where this step started
        return self._kl(x, old)

    def drift(self) -> float:
        return self.bound.drift()

    def trained_parameters(self) -> list[nn.Parameter]:
        """The actor parameters fine-tuning changes: all of them, or only the output layer's."""
        params = list(self.actor.parameters())
        return params[-2:] if self.config.train_output_layer_only else params

    def policy_state(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.policy.state_dict().items()}

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.policy.load_state_dict(state)
        self.actor_optimizer = torch.optim.Adam(self.trained_parameters(), lr=self.config.actor_lr)


def episode_tensors(ep: RobotEpisode) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An episode's states s_0..s_{T-1}, rewards and termination flags (only the last step can terminate)."""
    rewards = torch.as_tensor(ep.rewards, dtype=torch.float32)
    terminated = torch.zeros_like(rewards)
    terminated[-1] = float(ep.terminated)
    return torch.as_tensor(ep.inputs[:-1], dtype=torch.float32), rewards, terminated
