"""Advantage actor-critic, the synchronous form of A3C (Mnih et al. 2016, "Asynchronous Methods for
Deep Reinforcement Learning"), with a choice of advantage estimator:

    mc     A_t = R_t − V(s_t), the discounted return to the end of the rollout (λ = 1)
    td     A_t = r_t + γV(s_{t+1}) − V(s_t)                                    (λ = 0)
    nstep  A_t = Σ_{k<n} γ^k r_{t+k} + γ^n V(s_{t+n}) − V(s_t)
    gae    A_t = Σ_k (γλ)^k δ_{t+k} (Schulman et al. 2016)

Actor:  ∇θJ = E[∇θ log πθ(a|s)·A] + β∇θH(πθ(·|s))        Critic: min E[(R_t − V(s_t))²]
with R_t = A_t + V(s_t) as the critic's target, and the gradients' global norms clipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from robopg.algos.gaussian import GaussianLearner
from robopg.config import MAX_BATCH, MAX_STEPS, OnPolicyConfig
from robopg.core.buffers import Rollout
from robopg.core.losses import entropy_bonus, policy_gradient_loss, value_loss
from robopg.core.nets import ValueNet
from robopg.core.returns import gae_advantages, n_step_returns
from robopg.settings import setting

Advantage = Literal["mc", "td", "nstep", "gae"]


@dataclass(frozen=True, kw_only=True)
class A2CConfig(OnPolicyConfig):
    """Advantage actor-critic (Mnih et al. 2016, synchronous form) with a choice of advantage estimator."""

    rollout_steps: int = setting(16, "steps per simulator per update", ge=1, most=MAX_BATCH)
    advantage: Advantage = setting("gae", "advantage estimator: mc, td, nstep or gae")
    n_step: int = setting(5, "n of the nstep estimator", ge=1, most=MAX_STEPS)
    gae_lambda: float = setting(0.95, "λ of the gae estimator", ge=0, le=1)
    value_coef: float = setting(0.5, "weight of the critic's loss", gt=0, le=100)


def advantage_estimate(rollout: Rollout, config: A2CConfig) -> torch.Tensor:
    """The configured advantage estimator over a rollout, shape (steps, envs)."""
    r, d, v, last = rollout.rewards, rollout.dones, rollout.values, rollout.last_value
    if config.advantage == "nstep":
        return n_step_returns(r, d, v, last, config.gamma, config.n_step) - v
    lam = {"mc": 1.0, "td": 0.0, "gae": config.gae_lambda}[config.advantage]
    return gae_advantages(r, d, v, last, config.gamma, lam)


class A2C(GaussianLearner):
    config: A2CConfig
    critic_name = "value"

    def __init__(self, config: A2CConfig, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray,
                 generator: torch.Generator) -> None:
        super().__init__(config, obs_dim, action_low, action_high, generator)
        self.entropy_coef = config.entropy_coef  # an A3C worker may explore with its own β

    def make_critic(self, obs_dim: int, act_dim: int) -> nn.Module:
        return ValueNet(obs_dim, self.config.critic_hidden)

    @torch.no_grad()
    def values(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The critic's estimate for the rollout: V(s), whatever the action."""
        return self.critic(obs)

    @torch.no_grad()
    def state_value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs)

    def loss(self, rollout: Rollout) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Actor loss + value loss of one rollout (the two nets are disjoint: one backward serves both)."""
        c = self.config
        advantages = advantage_estimate(rollout, c)
        returns = advantages + rollout.values
        obs = rollout.obs.flatten(0, 1)
        dist = self.pi.distribution(obs)
        log_prob = dist.log_prob(rollout.actions.flatten(0, 1)).sum(-1)
        entropy = dist.entropy().sum(-1)
        actor_loss = policy_gradient_loss(log_prob, advantages.flatten()) + entropy_bonus(entropy, self.entropy_coef)
        critic_loss = c.value_coef * value_loss(self.critic(obs), returns.flatten())
        stats = {"actor_loss": actor_loss.detach(), "critic_loss": critic_loss.detach(),
                 "entropy": entropy.mean().detach(), "log_std": self.pi.log_std.mean().detach()}
        return actor_loss + critic_loss, stats

    def update(self, rollout: Rollout) -> dict[str, torch.Tensor]:
        loss, stats = self.loss(rollout)
        self.step(loss)
        return stats
