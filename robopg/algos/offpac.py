"""Off-policy actor-critic with importance sampling (the lecture's eq. 30; Degris et al. 2012,
"Off-Policy Actor-Critic"; Precup et al. 2000 for per-decision weights):

    ∇θJ = E_{τ~b}[Σ_t ∇θ log πθ(a_t|s_t) · w_t · (G_t − V(s_t))],   w_t = min(c̄, Π_{t'≤t} π/b)

Episodes come from a behaviour policy b whose log b(a|s) was stored when it acted, and are replayed
after the target policy has moved on. The value baseline is fitted to the same weighted returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robopg.algos.gaussian import GaussianLearner
from robopg.config import MAX_EPISODES, OnPolicyConfig
from robopg.core.buffers import Episode
from robopg.core.losses import entropy_bonus, per_decision_weights
from robopg.core.nets import ValueNet
from robopg.core.returns import discounted_returns
from robopg.settings import require, setting


@dataclass(frozen=True, kw_only=True)
class OffPACConfig(OnPolicyConfig):
    """Episodes from a behaviour policy b (the policy with its standard deviation times ``behaviour_std_scale``)
    with b(a|s) stored, replayed with per-decision importance weights truncated at ``rho_clip``, and a value
    baseline."""

    episodes_per_update: int = setting(4, "new episodes collected per update", ge=1, most=MAX_EPISODES)
    replay_episodes: int = setting(32, "capacity of the episode replay", ge=1, most=10**6)
    replay_batch: int = setting(8, "episodes replayed per update", ge=1, most=MAX_EPISODES)
    behaviour_std_scale: float = setting(1.5, "b's standard deviation over π's (b must cover π)", ge=1, le=100)
    rho_clip: float = setting(2.0, "truncation c̄ of the importance weights", gt=0, le=100)
    value_coef: float = setting(0.5, "weight of the critic's loss", gt=0, le=100)

    def check(self) -> None:
        super().check()
        require(self.replay_batch <= self.replay_episodes,
                f"replay_batch ({self.replay_batch}) must not exceed replay_episodes ({self.replay_episodes})")


class OffPAC(GaussianLearner):
    config: OffPACConfig
    critic_name = "value"

    def make_critic(self, obs_dim: int, act_dim: int) -> nn.Module:
        return ValueNet(obs_dim, self.config.critic_hidden)

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
        value = self.critic(obs)
        advantage = (returns - value).detach()
        actor_loss = -(log_pi * weights * advantage).sum() / len(episodes) + entropy_bonus(entropy, c.entropy_coef)
        critic_loss = c.value_coef * (weights * (returns - value).square()).mean()
        self.step(actor_loss + critic_loss)
        return {"actor_loss": actor_loss.detach(), "critic_loss": critic_loss.detach(),
                "mean_weight": weights.mean(), "entropy": entropy.mean().detach()}
