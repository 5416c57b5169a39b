"""Returns and losses against hand-computed values."""

import pytest
import torch
from torch import nn

from robopg.core.losses import critic_loss, deterministic_actor_loss, polyak_update, smoothed_target_action
from robopg.core.returns import td_target


def test_td_target_bootstraps_unless_terminated():
    reward = torch.tensor([1.0, 2.0, -1.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    next_value = torch.tensor([10.0, 10.0, 4.0])
    # 1 + 0.9*10 = 10;  2 + 0 = 2;  -1 + 0.9*4 = 2.6
    assert torch.allclose(td_target(reward, terminated, next_value, 0.9), torch.tensor([10.0, 2.0, 2.6]))


def test_td_target_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="equal shapes"):
        td_target(torch.zeros(3), torch.zeros(3, 1), torch.zeros(3), 0.9)


def test_critic_loss_sums_heads_of_mean_squared_errors():
    q = torch.tensor([[1.0, 2.0], [0.0, 4.0]])
    target = torch.tensor([2.0, 2.0])
    # head 1: ((1-2)^2 + 0)/2 = 0.5; head 2: (4 + 4)/2 = 4
    assert critic_loss(q, target).item() == pytest.approx(4.5)


def test_deterministic_actor_loss_gradient_is_the_chain_rule():
    # μθ(s) = θ·s, Q(s, a) = -(a - 2)^2  =>  ∇θJ = mean(s · (-2)(θs - 2))
    theta = torch.tensor(0.5, requires_grad=True)
    s = torch.tensor([1.0, 2.0])
    a = theta * s
    deterministic_actor_loss(-(a - 2.0) ** 2).backward()
    expected_ascent = ((-2.0) * (0.5 * s - 2.0) * s).mean()  # = (3 + 4)/2 = 3.5
    assert theta.grad.item() == pytest.approx(-expected_ascent.item())


def test_polyak_update_moves_a_fraction_tau():
    source, target = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        source.weight.fill_(1.0), source.bias.fill_(1.0), target.weight.fill_(0.0), target.bias.fill_(-1.0)
    polyak_update(target, source, tau=0.1)
    assert torch.allclose(target.weight, torch.full((1, 2), 0.1))  # 0.1*1 + 0.9*0
    assert torch.allclose(target.bias, torch.tensor([-0.8]))  # 0.1*1 + 0.9*(-1)


def test_target_smoothing_noise_is_clipped_and_actions_stay_in_bounds():
    action = torch.full((1000, 2), 0.9)
    generator = torch.Generator().manual_seed(0)
    smoothed = smoothed_target_action(action, noise_std=1.0, noise_clip=0.05, generator=generator)
    assert smoothed.max() <= 0.95 + 1e-6 and smoothed.min() >= 0.85 - 1e-6
    assert smoothed_target_action(action, 0.0, 0.5) is action
