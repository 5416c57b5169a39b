"""Deep Deterministic Policy Gradient (Lillicrap et al. 2015, "Continuous control with deep
reinforcement learning"), with TD3's fixes as options (Fujimoto et al. 2018, "Addressing Function
Approximation Error in Actor-Critic Methods"): twin critics, target policy smoothing and delayed
actor updates.

Critic:  y = r + γ(1 − d)·min_i Q'_i(s', μ'(s') [+ clipped noise]),  L(φ) = Σ_i E[(Q_i(s, a) − y)²]
Actor:   ∇θJ = E[∇θμθ(s)·∇aQ_1(s, a)|a=μθ(s)]
Targets: θ' ← τθ + (1 − τ)θ' after every actor update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from robopg.algos.base import DeterministicLearner, adam, frozen_copy, matmul_precision, optimizer_step
from robopg.config import OffPolicyConfig, hidden_layers
from robopg.core.buffers import Batch
from robopg.core.losses import critic_loss, deterministic_actor_loss, polyak_update, smoothed_target_action
from robopg.core.nets import Critic
from robopg.core.returns import td_target
from robopg.settings import require, setting

MatmulPrecision = Literal["float32", "bfloat16"]


@dataclass(frozen=True, kw_only=True)
class DDPGConfig(OffPolicyConfig):
    """DDPG (Lillicrap et al. 2015); the TD3 fixes (Fujimoto et al. 2018) are options."""

    critic_hidden: tuple[int, ...] = hidden_layers((256, 256), "critic")
    twin_critics: bool = setting(False, "two critics, the smaller target (TD3's clipped double Q)")
    policy_delay: int = setting(1, "critic updates per actor update (TD3: 2)", ge=1, most=1000)
    target_noise: float = setting(0.0, "target policy smoothing noise, normalized action units (TD3: 0.2)", ge=0, le=10)
    target_noise_clip: float = setting(0.5, "clip of the target policy smoothing noise", ge=0, le=10)
    n_step: int = setting(3, "steps of reward in each critic target before bootstrapping (n-step returns; "
                             "Barth-Maron et al. 2018)", ge=1, most=1000)
    critic_layer_norm: bool = setting(True, "layer normalization before each hidden activation of the critic "
                                            "(Ball et al. 2023)")
    matmul_precision: MatmulPrecision = setting(
        "float32", "bfloat16: the update's hidden-layer products on the CPU's bf16 units (weights, outputs, losses "
                   "and the optimizer stay float32); acting and export are float32")

    def check(self) -> None:
        super().check()
        require(self.matmul_precision == "float32" or _cpu_has_bf16(),
                "matmul_precision 'bfloat16' needs a CPU with bf16 instructions (AVX512-BF16 or AMX); "
                "this one has none")


@dataclass(frozen=True, kw_only=True)
class TD3Config(DDPGConfig):
    """TD3 (Fujimoto et al. 2018): DDPG with twin critics, target smoothing and delayed actor."""

    twin_critics: bool = setting(True, "two critics, the smaller target (clipped double Q)")
    policy_delay: int = setting(2, "critic updates per actor update", ge=1, most=1000)
    target_noise: float = setting(0.2, "target policy smoothing noise, normalized action units", ge=0, le=10)
    # Not measured on TD3 yet: its default stays as it was.
    critic_layer_norm: bool = setting(False, "layer normalization before each hidden activation of the critic "
                                             "(Ball et al. 2023)")


def _cpu_has_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class DDPG(DeterministicLearner):
    config: DDPGConfig

    def __init__(self, config: DDPGConfig, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray,
                 generator: torch.Generator) -> None:
        super().__init__(config, obs_dim, action_low, action_high, generator)
        self.critic = Critic(obs_dim, self.act_dim, config.critic_hidden, heads=2 if config.twin_critics else 1,
                             layer_norm=config.critic_layer_norm)
        self.actor_target = frozen_copy(self.actor)
        self.critic_target = frozen_copy(self.critic)
        self.actor_optimizer = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optimizer = adam(self.critic.parameters(), config.critic_lr)
    def update(self, batch: Batch, *, update_actor: bool = True) -> dict[str, torch.Tensor]:
        """One critic step and, every ``policy_delay`` of them, an actor step and the soft target updates;
        ``update_actor=False`` leaves the actor (and its target) as it is, as fine-tuning's critic calibration
        needs."""
        c = self.config
        obs, next_obs = self.normalizer(batch.obs), self.normalizer(batch.next_obs)
        with torch.no_grad(), matmul_precision(c.matmul_precision):
            next_action = smoothed_target_action(
                self.actor_target(next_obs), c.target_noise, c.target_noise_clip, self.generator
            )
            next_q = self.critic_target(next_obs, next_action).min(dim=0).values
        target = td_target(batch.reward, batch.terminated, next_q, batch.bootstrap_discount(c.gamma))
        with matmul_precision(c.matmul_precision):
            q = self.critic(obs, batch.action)
        loss_critic = critic_loss(q, target)
        optimizer_step(self.critic_optimizer, loss_critic)
        self.updates += 1
        metrics = {"critic_loss": loss_critic.detach()}
        if self.updates % c.policy_delay == 0:
            if update_actor:
                # The actor needs ∇a Q only: no gradients for the critic's weights saves a third of its backward.
                self.critic.requires_grad_(False)
                with matmul_precision(c.matmul_precision):
                    q_of_policy = self.critic.first(obs, self.actor(obs))
                loss_actor = deterministic_actor_loss(q_of_policy)
                optimizer_step(self.actor_optimizer, loss_actor)
                self.critic.requires_grad_(True)
                polyak_update(self.actor_target, self.actor, c.tau)
                metrics["actor_loss"] = loss_actor.detach()
            polyak_update(self.critic_target, self.critic, c.tau)
        return metrics

    def parts(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return {"normalizer": self.normalizer, "actor": self.actor, "critic": self.critic,
                "actor_target": self.actor_target, "critic_target": self.critic_target,
                "actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}
