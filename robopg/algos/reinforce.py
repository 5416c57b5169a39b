"""REINFORCE (Williams 1992, "Simple statistical gradient-following algorithms for connectionist
reinforcement learning"), on N whole episodes per update:

    ∇θJ ≈ 1/N Σ_i Σ_t ∇θ log πθ(a_t|s_t) ψ_t   with ψ_t =
        return        R(τ_i) = Σ_t γ^t r_t                      (eq. 14 of the lecture)
        baseline      R(τ_i) − 1/N Σ_j R(τ_j)                   (reward scaling, eq. 16)
        reward_to_go  Σ_{k≥t} γ^(k−t) r_k                        (causality, eq. 17)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from robopg.algos.gaussian import GaussianLearner
from robopg.config import MAX_EPISODES, OnPolicyConfig
from robopg.core.buffers import Episode
from robopg.core.losses import entropy_bonus
from robopg.core.returns import discounted_returns, episode_returns
from robopg.settings import setting

ReinforceVariant = Literal["return", "baseline", "reward_to_go"]


@dataclass(frozen=True, kw_only=True)
class ReinforceConfig(OnPolicyConfig):
    """REINFORCE on whole episodes: ψ_t = R(τ), R(τ) − mean R, or the reward-to-go."""

    variant: ReinforceVariant = setting("reward_to_go", "ψ: return, baseline or reward_to_go")
    episodes_per_update: int = setting(8, "whole episodes per update", ge=1, most=MAX_EPISODES)


def reinforce_psi(episodes: list[Episode], variant: str, gamma: float) -> list[torch.Tensor]:
    """ψ_t for every step of every episode, as the variant defines it."""
    if variant == "reward_to_go":
        return [discounted_returns(e.rewards, torch.zeros_like(e.rewards), gamma) for e in episodes]
    totals = torch.stack([episode_returns(e.rewards, gamma) for e in episodes])
    if variant == "baseline":
        totals = totals - totals.mean()
    return [torch.full_like(e.rewards, float(total)) for e, total in zip(episodes, totals, strict=True)]


class Reinforce(GaussianLearner):
    config: ReinforceConfig

    def update(self, episodes: list[Episode]) -> dict[str, torch.Tensor]:
        c = self.config
        psi = torch.cat(reinforce_psi(episodes, c.variant, c.gamma))
        obs = torch.cat([e.obs for e in episodes])
        dist = self.pi.distribution(obs)
        log_prob = dist.log_prob(torch.cat([e.actions for e in episodes])).sum(-1)
        entropy = dist.entropy().sum(-1)
        # Sum over time, mean over episodes: the lecture's 1/N Σ_i Σ_t.
        loss = -(log_prob * psi).sum() / len(episodes) + entropy_bonus(entropy, c.entropy_coef)
        self.step(loss)
        return {"actor_loss": loss.detach(), "entropy": entropy.mean().detach(),
                "log_std": self.pi.log_std.mean().detach()}
