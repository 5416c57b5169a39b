"""What every Gaussian-policy learner shares: the policy, its sampling, the deployable mean, an optional
critic and the clipped optimizer step of both."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from robopg.algos.base import SavesModules, adam, make_normalizer
from robopg.config import OnPolicyConfig
from robopg.core.nets import ActionScaler, DeployablePolicy, GaussianPolicy


class GaussianLearner(SavesModules):
    """Normalizer, Gaussian policy and its optimizer, and the critic a subclass makes in ``make_critic``
    (saved under ``critic_name``); subclasses add the update."""

    critic_name: ClassVar[str] = "critic"

    def __init__(
        self, config: OnPolicyConfig, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray,
        generator: torch.Generator,
    ) -> None:
        self.config = config
        self.generator = generator
        self.normalizer = make_normalizer(obs_dim, config.normalize_obs)
        self.scaler = ActionScaler(action_low, action_high)
        self.pi = GaussianPolicy(obs_dim, len(action_low), config.actor_hidden, config.init_log_std)
        self.actor_optimizer = adam(self.pi.parameters(), config.actor_lr)
        self.critic = self.make_critic(obs_dim, len(action_low))
        self.critic_optimizer = None if self.critic is None else adam(self.critic.parameters(), config.critic_lr)

    def make_critic(self, obs_dim: int, act_dim: int) -> nn.Module | None:
        """The critic this learner fits, if any."""
        return None

    @torch.no_grad()
    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """An action in [-1, 1] units (unclipped) and its log-probability, for normalized ``obs``."""
        dist = self.pi.distribution(obs)
        action = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=self.generator)
        return action, dist.log_prob(action).sum(-1)

    def step(self, loss: torch.Tensor) -> None:
        """One optimizer step of the policy and the critic on ``loss`` (their parameters are disjoint, so one
        backward serves both), each with its gradient's global norm clipped to ``max_grad_norm``."""
        self.actor_optimizer.zero_grad(set_to_none=True)
        if self.critic_optimizer is not None:
            self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clipped_step(self.actor_optimizer, self.pi.parameters(), self.config.max_grad_norm)
        if self.critic_optimizer is not None:
            clipped_step(self.critic_optimizer, self.critic.parameters(), self.config.max_grad_norm)

    def policy(self) -> DeployablePolicy:
        """The deterministic policy: the Gaussian's mean clipped to the bounds, with normalization and scaling."""
        return DeployablePolicy(self.normalizer, self.pi, self.scaler)

    def parts(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        parts: dict[str, nn.Module | torch.optim.Optimizer] = {
            "normalizer": self.normalizer, "pi": self.pi, "actor_optimizer": self.actor_optimizer}
        if self.critic is not None and self.critic_optimizer is not None:
            parts |= {self.critic_name: self.critic, "critic_optimizer": self.critic_optimizer}
        return parts


def clipped_step(optimizer: torch.optim.Optimizer, parameters, max_norm: float) -> torch.Tensor:
    """Clip the gradient's global norm, then step; returns the norm before clipping."""
    norm = nn.utils.clip_grad_norm_(parameters, max_norm)
    optimizer.step()
    return norm
