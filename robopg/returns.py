"""Return targets as pure batched functions.

Terminations and time-limit truncations are different things: a terminated transition has no
future (its bootstrap value is zero), a truncated one still does, so callers pass only the
``terminated`` flag here and keep bootstrapping on truncation (Pardo et al. 2018).
"""

from __future__ import annotations

import torch


def td_target(reward: torch.Tensor, terminated: torch.Tensor, next_value: torch.Tensor, gamma: float) -> torch.Tensor:
    """One-step target y = r + γ(1 − terminated)·V(s'), elementwise over a batch."""
    if not (reward.shape == terminated.shape == next_value.shape):
        raise ValueError(
            f"td_target needs equal shapes, got reward {tuple(reward.shape)}, terminated "
            f"{tuple(terminated.shape)}, next_value {tuple(next_value.shape)}"
        )
    return reward + gamma * (1.0 - terminated) * next_value
