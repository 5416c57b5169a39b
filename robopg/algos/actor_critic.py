"""Actor-critic in the form of the policy gradient theorem (Sutton et al. 2000):

    ∇θJ = E[∇θ log πθ(a|s)·Q_φ(s, a)]       Critic: min E[(r + γQ_φ(s', a') − Q_φ(s, a))²]

Q_φ is learned on-policy by TD (SARSA: a' is the action the policy took next). No baseline: this is
the lecture's ψ = Q form, the step between REINFORCE and the advantage methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robopg.algos.gaussian import GaussianLearner
from robopg.config import MAX_BATCH, OnPolicyConfig
from robopg.core.buffers import Rollout
from robopg.core.losses import entropy_bonus, policy_gradient_loss, value_loss
from robopg.core.nets import Critic
from robopg.core.returns import gae_advantages
from robopg.settings import setting


@dataclass(frozen=True, kw_only=True)
class ActorCriticConfig(OnPolicyConfig):
    """ψ = Q_φ(s, a), Q learned by on-policy TD."""

    rollout_steps: int = setting(16, "steps per simulator per update", ge=1, most=MAX_BATCH)
    value_coef: float = setting(0.5, "weight of the critic's loss", gt=0, le=100)


class QActorCritic(GaussianLearner):
    config: ActorCriticConfig
    critic_name = "q"

    def make_critic(self, obs_dim: int, act_dim: int) -> nn.Module:
        return Critic(obs_dim, act_dim, self.config.critic_hidden)

    def q_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.critic(obs, action.clamp(-1.0, 1.0))[0]  # the env saw the clipped action

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
        self.step(actor_loss + critic_loss)  # ψ is detached inside the policy-gradient loss
        return {"actor_loss": actor_loss.detach(), "critic_loss": critic_loss.detach(),
                "entropy": entropy.mean().detach()}
