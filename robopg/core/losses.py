"""Losses and parameter updates as small pure functions, shared by every algorithm."""

from __future__ import annotations

import torch
from torch import nn


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared TD error summed over critic heads: q is ``(heads, batch)``, target ``(batch,)``."""
    if q.dim() != 2 or q.shape[1:] != target.shape:
        raise ValueError(f"critic_loss needs q (heads, batch) and target (batch,), got {tuple(q.shape)}, "
                         f"{tuple(target.shape)}")
    return (q - target).square().mean(dim=1).sum()


def deterministic_actor_loss(q_of_policy_action: torch.Tensor) -> torch.Tensor:
    """−E[Q(s, μθ(s))]: its gradient is the deterministic policy gradient (Silver et al. 2014, eq. 33
    of the lecture): ∇θμθ(s)·∇aQ(s, a)|a=μθ(s), averaged over the batch."""
    return -q_of_policy_action.mean()


def smoothed_target_action(
    action: torch.Tensor, noise_std: float, noise_clip: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """TD3's target policy smoothing: a' = clip(μ'(s') + clip(ε, −c, c), −1, 1), ε ~ N(0, σ²)."""
    if noise_std == 0:
        return action
    noise = torch.randn(action.shape, generator=generator) * noise_std
    return (action + noise.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Soft target update θ' ← τθ + (1 − τ)θ' (Lillicrap et al. 2015), fused over all tensors."""
    target_params = list(target.parameters())
    source_params = list(source.parameters())
    torch._foreach_lerp_(target_params, source_params, tau)


def policy_gradient_loss(log_prob: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """−E[log πθ(a|s)·ψ]: its gradient is the policy-gradient estimate for any ψ (eq. 26 of the lecture):
    the return (REINFORCE), the reward-to-go, Q(s, a), or an advantage estimate. ψ carries no gradient."""
    if log_prob.shape != psi.shape:
        raise ValueError(f"log_prob and psi must have equal shapes, got {tuple(log_prob.shape)}, {tuple(psi.shape)}")
    return -(log_prob * psi.detach()).mean()


def value_loss(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """E[(R − V(s))²] against a fixed target."""
    if value.shape != target.shape:
        raise ValueError(f"value and target must have equal shapes, got {tuple(value.shape)}, {tuple(target.shape)}")
    return (target.detach() - value).square().mean()


def entropy_bonus(entropy: torch.Tensor, coef: float) -> torch.Tensor:
    """−β·E[H(π(·|s))], added to the loss so that descending it raises the entropy (Mnih et al. 2016)."""
    return -coef * entropy.mean()


def per_decision_weights(log_pi: torch.Tensor, log_b: torch.Tensor, clip: float) -> torch.Tensor:
    """w_t = min(c̄, Π_{t'≤t} π(a_t'|s_t') / b(a_t'|s_t')) along time (dim 0) of one trajectory.

    The importance weight of eq. 30 of the lecture: the return after t depends only on the future, the
    weight only on the past. Products of ratios explode or vanish over long trajectories, so they are
    truncated at ``clip`` (Degris et al. 2012 truncate per step; Munos et al. 2016 discuss both). No gradient
    flows through the weights.
    """
    if log_pi.shape != log_b.shape:
        raise ValueError(f"log_pi and log_b must have equal shapes, got {tuple(log_pi.shape)}, {tuple(log_b.shape)}")
    return torch.exp(torch.cumsum(log_pi.detach() - log_b, dim=0)).clamp(max=clip)


def self_imitation_losses(
    log_prob: torch.Tensor, value: torch.Tensor, returns: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Self-imitation learning (Oh et al. 2018): imitate past actions whose return beat the value estimate.

        L_actor  = −E[w · log π(a|s) · (R − V(s))⁺]     L_critic = E[w · ((R − V(s))⁺)²]

    ``weights`` are the prioritized replay's importance weights. Returns both losses and (R − V(s))⁺,
    the new priorities.
    """
    clipped_advantage = (returns - value).clamp(min=0.0)
    actor = -(weights * log_prob * clipped_advantage.detach()).mean()
    critic = (weights * clipped_advantage.square()).mean()
    return actor, critic, clipped_advantage.detach()
