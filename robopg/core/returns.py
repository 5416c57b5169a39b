"""Return targets as pure batched functions.

Terminations and time-limit truncations are different things: a terminated transition has no
future (its bootstrap value is zero), a truncated one still does, so callers pass only the
``terminated`` flag here and keep bootstrapping on truncation (Pardo et al. 2018).
"""

from __future__ import annotations

import torch


def td_target(reward: torch.Tensor, terminated: torch.Tensor, next_value: torch.Tensor,
              gamma: float | torch.Tensor) -> torch.Tensor:
    """Target y = r + γ(1 − terminated)·V(s'), elementwise over a batch; for m-step transitions r is the
    discounted m-step reward and ``gamma`` holds each transition's γ^m."""
    if not (reward.shape == terminated.shape == next_value.shape):
        raise ValueError(
            f"td_target needs equal shapes, got reward {tuple(reward.shape)}, terminated "
            f"{tuple(terminated.shape)}, next_value {tuple(next_value.shape)}"
        )
    return reward + gamma * (1.0 - terminated) * next_value


def _check_rollout(rewards: torch.Tensor, dones: torch.Tensor, values: torch.Tensor | None = None) -> None:
    if rewards.shape != dones.shape or (values is not None and values.shape != rewards.shape):
        raise ValueError(
            f"rollout tensors must have equal shapes (time, ...), got rewards {tuple(rewards.shape)}, dones "
            f"{tuple(dones.shape)}" + ("" if values is None else f", values {tuple(values.shape)}")
        )


def discounted_returns(
    rewards: torch.Tensor, terminated: torch.Tensor, gamma: float, bootstrap: torch.Tensor | None = None
) -> torch.Tensor:
    """Reward-to-go R_t = Σ_k γ^(k−t) r_k along time (dim 0), restarting after each termination.

    ``bootstrap`` is V(s_T) for the state after the last step (zero if omitted): the value of a rollout
    cut by a time limit or a rollout length rather than ended.
    """
    _check_rollout(rewards, terminated)
    running = torch.zeros_like(rewards[0]) if bootstrap is None else bootstrap
    returns = torch.empty_like(rewards)
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * (1.0 - terminated[t]) * running
        returns[t] = running
    return returns


def episode_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """R(τ) = Σ_t γ^t r_t of whole episodes, along time (dim 0): REINFORCE's full-trajectory return."""
    discounts = gamma ** torch.arange(rewards.shape[0], dtype=rewards.dtype)
    return (discounts.reshape(-1, *([1] * (rewards.dim() - 1))) * rewards).sum(0)


def n_step_returns(
    rewards: torch.Tensor, terminated: torch.Tensor, values: torch.Tensor, next_value: torch.Tensor, gamma: float,
    n: int,
) -> torch.Tensor:
    """R_t = Σ_{k<n} γ^k r_{t+k} + γ^n V(s_{t+n}), truncated at terminations and at the rollout's end.

    ``values[t]`` is V(s_t) and ``next_value`` is V(s_T) after the last step; near the end of the rollout
    the horizon shrinks, as in A3C's backward pass (Mnih et al. 2016).
    """
    _check_rollout(rewards, terminated, values)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    horizon = rewards.shape[0]
    all_values = torch.cat([values, next_value.unsqueeze(0)])  # V(s_0) ... V(s_T)
    returns = torch.empty_like(rewards)
    for t in range(horizon):
        total = torch.zeros_like(rewards[0])
        alive = torch.ones_like(rewards[0])
        end = min(t + n, horizon)
        for k in range(t, end):
            total = total + alive * gamma ** (k - t) * rewards[k]
            alive = alive * (1.0 - terminated[k])
        returns[t] = total + alive * gamma ** (end - t) * all_values[end]
    return returns


def gae_advantages(
    rewards: torch.Tensor, terminated: torch.Tensor, values: torch.Tensor, next_value: torch.Tensor, gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalized advantage estimation (Schulman et al. 2016): A_t = Σ_k (γλ)^k δ_{t+k},
    δ_t = r_t + γ(1 − d_t)V(s_{t+1}) − V(s_t). λ = 0 is the TD(0) advantage, λ = 1 the Monte Carlo one."""
    _check_rollout(rewards, terminated, values)
    next_values = torch.cat([values[1:], next_value.unsqueeze(0)])
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    advantages = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = deltas[t] + gamma * lam * (1.0 - terminated[t]) * running
        advantages[t] = running
    return advantages
