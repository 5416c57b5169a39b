"""Off-policy deterministic actor-critic with a compatible critic: COPDAC-Q from Silver et al.
2014, "Deterministic Policy Gradient Algorithms", §4.3.

The critic is linear in compatible features φ(s, a) = ∇θμθ(s)·(a − μθ(s)) plus a state-value
baseline:
    Q^w(s, a) = (a − μθ(s))ᵀ ∇θμθ(s)ᵀ w + V^v(s)
so that ∇aQ^w(s, a) = ∇θμθ(s)ᵀ w exactly (Theorem 3) and the actor follows
    ∇θJ = E[∇θμθ(s) ∇θμθ(s)ᵀ w].
Critic updates minimize the Q-learning TD error δ = r + γ V^v'(s') − Q^w(s, a) (the advantage
term vanishes at a = μθ(s')). ∇θμθ(s)ᵀ w is a Jacobian-vector product, computed in forward mode,
so no per-sample Jacobian is ever built. Transitions come from a noisy behaviour policy,
optionally through replay and with a soft-updated target value network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jvp

from robopg.algos.base import DeterministicLearner, adam, frozen_copy, optimizer_step
from robopg.config import OffPolicyConfig, hidden_layers, learning_rate
from robopg.core.buffers import Batch
from robopg.core.losses import polyak_update
from robopg.core.nets import mlp
from robopg.core.returns import td_target
from robopg.settings import setting


@dataclass(frozen=True, kw_only=True)
class DPGConfig(OffPolicyConfig):
    """Off-policy deterministic actor-critic with a compatible critic (Silver et al. 2014, COPDAC-Q)."""

    actor_hidden: tuple[int, ...] = hidden_layers((64, 64), "actor")
    actor_lr: float = learning_rate(3e-4, "actor")
    value_hidden: tuple[int, ...] = hidden_layers((256, 256), "baseline V(s)")
    use_target_networks: bool = setting(True, "bootstrap from a soft-updated copy of V")


class DPG(DeterministicLearner):
    config: DPGConfig

    def __init__(self, config: DPGConfig, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray,
                 generator: torch.Generator) -> None:
        super().__init__(config, obs_dim, action_low, action_high, generator)
        self.value = mlp(obs_dim, 1, config.value_hidden)
        self.value_target = frozen_copy(self.value)
        # w has the shape of θ: one weight per compatible feature. Zero start: no actor step until it learns.
        self.w = nn.ParameterList(nn.Parameter(torch.zeros_like(p)) for p in self.actor.parameters())
        self.actor_optimizer = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optimizer = adam([*self.w, *self.value.parameters()], config.critic_lr)

    def policy_gradient_direction(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μθ(s) and ∇θμθ(s)ᵀ w = ∇aQ^w(s, a), differentiable in w."""
        names = [name for name, _ in self.actor.named_parameters()]
        primals = {name: p.detach() for name, p in self.actor.named_parameters()}
        tangents = dict(zip(names, self.w, strict=True))
        return jvp(lambda params: functional_call(self.actor, params, (obs,)), (primals,), (tangents,))

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        obs, next_obs = self.normalizer(batch.obs), self.normalizer(batch.next_obs)
        value_net = self.value_target if c.use_target_networks else self.value
        with torch.no_grad():
            target = td_target(batch.reward, batch.terminated, value_net(next_obs).squeeze(-1),
                               batch.bootstrap_discount(c.gamma))
        mu, grad_a_q = self.policy_gradient_direction(obs)
        advantage = ((batch.action - mu) * grad_a_q).sum(-1)
        q = advantage + self.value(obs).squeeze(-1)
        loss_critic = (q - target).square().mean()
        optimizer_step(self.critic_optimizer, loss_critic)

        # Surrogate whose gradient is E[∇θμθ(s) ∇aQ^w]: the direction is held fixed.
        loss_actor = -(self.actor(obs) * grad_a_q.detach()).sum(-1).mean()
        optimizer_step(self.actor_optimizer, loss_actor)
        if c.use_target_networks:
            polyak_update(self.value_target, self.value, c.tau)
        self.updates += 1
        return {"critic_loss": loss_critic.detach(), "actor_loss": loss_actor.detach()}

    def parts(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return {"normalizer": self.normalizer, "actor": self.actor, "value": self.value,
                "value_target": self.value_target, "w": self.w, "actor_optimizer": self.actor_optimizer,
                "critic_optimizer": self.critic_optimizer}
