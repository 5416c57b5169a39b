"""Off-policy actor-critic with importance sampling (the lecture's eq. 30; Degris et al. 2012,
"Off-Policy Actor-Critic"; Precup et al. 2000 for per-decision weights):

    ∇θJ = E_{τ~b}[Σ_t ∇θ log πθ(a_t|s_t) · w_t · (G_t − V(s_t))],   w_t = min(c̄, Π_{t'≤t} π/b)

Episodes come from a behaviour policy b whose log b(a|s) was stored when it acted, and are replayed
after the target policy has moved on. The value baseline is fitted to the same weighted returns.
"""

from __future__ import annotations

import numpy as np
import torch

from robopg.algos.base import adam
from robopg.algos.gaussian import GaussianLearner, clipped_step
from robopg.buffers import Episode
from robopg.config import OffPACConfig
from robopg.losses import entropy_bonus, per_decision_weights
from robopg.nets import ValueNet
from robopg.returns import discounted_returns


class OffPAC(GaussianLearner):
    config: OffPACConfig

    def __init__(
        self, config: OffPACConfig, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray,
        generator: torch.Generator,
    ) -> None:
        super().__init__(config, obs_dim, action_low, action_high, generator)
        self.value = ValueNet(obs_dim, config.critic_hidden)
        self.critic_optimizer = adam(self.value.parameters(), config.critic_lr)

    def parts(self):
        return {**super().parts(), "value": self.value, "critic_optimizer": self.critic_optimizer}

    @torch.no_grad()
    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The behaviour policy b: the target policy's mean with a wider spread; returns a and log b(a|s)."""
        dist = self.pi.distribution(obs)
        wide = torch.distributions.Normal(dist.mean, dist.stddev * self.config.behaviour_std_scale)
        action = wide.mean + wide.stddev * torch.randn(wide.mean.shape, generator=self.generator)
        return action, wide.log_prob(action).sum(-1)

    def update(self, episodes: list[Episode]) -> dict[str, torch.Tensor]:
        c = self.config
        obs = torch.cat([e.obs for e in episodes])
        dist = self.pi.distribution(obs)
        log_pi = dist.log_prob(torch.cat([e.actions for e in episodes])).sum(-1)
        entropy = dist.entropy().sum(-1)
        lengths = [len(e.rewards) for e in episodes]
        weights = torch.cat([per_decision_weights(lp, e.behaviour_log_probs, c.rho_clip)
                             for lp, e in zip(log_pi.split(lengths), episodes, strict=True)])
        returns = torch.cat([discounted_returns(e.rewards, torch.zeros_like(e.rewards), c.gamma) for e in episodes])
        value = self.value(obs)
        advantage = (returns - value).detach()
        actor_loss = -(log_pi * weights * advantage).sum() / len(episodes) + entropy_bonus(entropy, c.entropy_coef)
        critic_loss = c.value_coef * (weights * (returns - value).square()).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        self.critic_optimizer.zero_grad(set_to_none=True)
        (actor_loss + critic_loss).backward()
        clipped_step(self.actor_optimizer, self.pi.parameters(), c.max_grad_norm)
        clipped_step(self.critic_optimizer, self.value.parameters(), c.max_grad_norm)
        return {"actor_loss": actor_loss.detach(), "critic_loss": critic_loss.detach(),
                "mean_weight": weights.mean(), "entropy": entropy.mean().detach()}
