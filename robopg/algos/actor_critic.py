"""Actor-critic in the form of the policy gradient theorem (Sutton et al. 2000):

    ∇θJ = E[∇θ log πθ(a|s)·Q_φ(s, a)]       Critic: min E[(r + γQ_φ(s', a') − Q_φ(s, a))²]

Q_φ is learned on-policy by TD (SARSA: a' is the action the policy took next). No baseline: this is
the lecture's ψ = Q form, the step between REINFORCE and the advantage methods.
"""

from __future__ import annotations

import numpy as np
import torch

from robopg.algos.base import adam
from robopg.algos.gaussian import GaussianLearner, clipped_step
from robopg.buffers import Rollout
from robopg.config import ActorCriticConfig
from robopg.losses import entropy_bonus, policy_gradient_loss, value_loss
from robopg.nets import Critic
from robopg.returns import gae_advantages


class QActorCritic(GaussianLearner):
    config: ActorCriticConfig

    def __init__(
        self, config: ActorCriticConfig, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray,
        generator: torch.Generator,
    ) -> None:
        super().__init__(config, obs_dim, action_low, action_high, generator)
        self.q = Critic(obs_dim, len(action_low), config.critic_hidden)
        self.critic_optimizer = adam(self.q.parameters(), config.critic_lr)

    def parts(self):
        return {**super().parts(), "q": self.q, "critic_optimizer": self.critic_optimizer}

    def q_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.q(obs, action.clamp(-1.0, 1.0))[0]  # the env saw the clipped action

    @torch.no_grad()
    def values(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.q_value(obs, action)

    @torch.no_grad()
    def state_value(self, obs: torch.Tensor) -> torch.Tensor:
        """Q(s, a') for a' drawn from the policy: a one-sample estimate of V(s) for bootstrapping."""
        return self.q_value(obs, self.sample(obs)[0])

    def update(self, rollout: Rollout) -> dict[str, torch.Tensor]:
        c = self.config
        # SARSA target r + γ(1 − d)Q(s', a'): the TD(0) advantage plus Q(s, a).
        target = gae_advantages(rollout.rewards, rollout.dones, rollout.values, rollout.last_value, c.gamma, 0.0)
        target = (target + rollout.values).flatten()
        obs, actions = rollout.obs.flatten(0, 1), rollout.actions.flatten(0, 1)
        dist = self.pi.distribution(obs)
        log_prob = dist.log_prob(actions).sum(-1)
        entropy = dist.entropy().sum(-1)
        q = self.q_value(obs, actions)
        actor_loss = policy_gradient_loss(log_prob, q) + entropy_bonus(entropy, c.entropy_coef)
        critic_loss = c.value_coef * value_loss(q, target)
        self.actor_optimizer.zero_grad(set_to_none=True)
        self.critic_optimizer.zero_grad(set_to_none=True)
        (actor_loss + critic_loss).backward()  # ψ is detached inside the policy-gradient loss
        clipped_step(self.actor_optimizer, self.pi.parameters(), c.max_grad_norm)
        clipped_step(self.critic_optimizer, self.q.parameters(), c.max_grad_norm)
        return {"actor_loss": actor_loss.detach(), "critic_loss": critic_loss.detach(),
                "entropy": entropy.mean().detach()}
