"""What every Gaussian-policy learner shares: the policy, its sampling, and the deployable mean."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robopg.algos.base import SavesModules, adam, make_normalizer
from robopg.config import OnPolicyConfig
from robopg.nets import ActionScaler, DeployablePolicy, GaussianPolicy


class GaussianLearner(SavesModules):
    """Normalizer, Gaussian policy and its optimizer; subclasses add critics and the update."""

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

    @torch.no_grad()
    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """An action in [-1, 1] units (unclipped) and its log-probability, for normalized ``obs``."""
        dist = self.pi.distribution(obs)
        action = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=self.generator)
        return action, dist.log_prob(action).sum(-1)

    def policy(self) -> DeployablePolicy:
        """The deterministic policy: the Gaussian's mean clipped to the bounds, with normalization and scaling."""
        return DeployablePolicy(self.normalizer, self.pi, self.scaler)

    def parts(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return {"normalizer": self.normalizer, "pi": self.pi, "actor_optimizer": self.actor_optimizer}


def clipped_step(optimizer: torch.optim.Optimizer, parameters, max_norm: float) -> torch.Tensor:
    """Clip the gradient's global norm, then step; returns the norm before clipping."""
    norm = nn.utils.clip_grad_norm_(parameters, max_norm)
    optimizer.step()
    return norm
