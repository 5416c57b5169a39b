"""Deep Deterministic Policy Gradient (Lillicrap et al. 2015, "Continuous control with deep
reinforcement learning"), with TD3's fixes as options (Fujimoto et al. 2018, "Addressing Function
Approximation Error in Actor-Critic Methods"): twin critics, target policy smoothing and delayed
actor updates.

Critic:  y = r + γ(1 − d)·min_i Q'_i(s', μ'(s') [+ clipped noise]),  L(φ) = Σ_i E[(Q_i(s, a) − y)²]
Actor:   ∇θJ = E[∇θμθ(s)·∇aQ_1(s, a)|a=μθ(s)]
Targets: θ' ← τθ + (1 − τ)θ' after every actor update.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robopg.algos.base import SavesModules, adam, frozen_copy, make_normalizer, matmul_precision, optimizer_step
from robopg.buffers import Batch
from robopg.config import DDPGConfig
from robopg.losses import critic_loss, deterministic_actor_loss, polyak_update, smoothed_target_action
from robopg.nets import ActionScaler, Actor, Critic, DeployablePolicy
from robopg.returns import td_target


class DDPG(SavesModules):
    def __init__(
        self,
        config: DDPGConfig,
        obs_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
        generator: torch.Generator,
    ) -> None:
        self.config = config
        self.generator = generator
        act_dim = len(action_low)
        self.normalizer = make_normalizer(obs_dim, config.normalize_obs)
        self.scaler = ActionScaler(action_low, action_high)
        self.actor = Actor(obs_dim, act_dim, config.actor_hidden)
        self.critic = Critic(obs_dim, act_dim, config.critic_hidden, heads=2 if config.twin_critics else 1)
        self.actor_target = frozen_copy(self.actor)
        self.critic_target = frozen_copy(self.critic)
        self.actor_optimizer = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optimizer = adam(self.critic.parameters(), config.critic_lr)
        self.updates = 0

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.normalizer(obs))

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        obs, next_obs = self.normalizer(batch.obs), self.normalizer(batch.next_obs)
        with torch.no_grad(), matmul_precision(c.matmul_precision):
            next_action = smoothed_target_action(
                self.actor_target(next_obs), c.target_noise, c.target_noise_clip, self.generator
            )
            next_q = self.critic_target(next_obs, next_action).min(dim=0).values
        target = td_target(batch.reward, batch.terminated, next_q, c.gamma)
        with matmul_precision(c.matmul_precision):
            q = self.critic(obs, batch.action)
        loss_critic = critic_loss(q, target)
        optimizer_step(self.critic_optimizer, loss_critic)
        self.updates += 1
        metrics = {"critic_loss": loss_critic.detach()}
        if self.updates % c.policy_delay == 0:
            # The actor needs ∇a Q only: no gradients for the critic's weights saves a third of its backward.
            self.critic.requires_grad_(False)
            with matmul_precision(c.matmul_precision):
                q_of_policy = self.critic(obs, self.actor(obs))[0]
            loss_actor = deterministic_actor_loss(q_of_policy)
            optimizer_step(self.actor_optimizer, loss_actor)
            self.critic.requires_grad_(True)
            polyak_update(self.actor_target, self.actor, c.tau)
            polyak_update(self.critic_target, self.critic, c.tau)
            metrics["actor_loss"] = loss_actor.detach()
        return metrics

    def policy(self) -> DeployablePolicy:
        return DeployablePolicy(self.normalizer, self.actor, self.scaler)

    def parts(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return {"normalizer": self.normalizer, "actor": self.actor, "critic": self.critic,
                "actor_target": self.actor_target, "critic_target": self.critic_target,
                "actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}
