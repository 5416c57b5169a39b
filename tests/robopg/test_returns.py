"""Return estimators against values worked out by hand (γ = 0.5 keeps the arithmetic exact)."""

import pytest
import torch

from robopg.core.returns import discounted_returns, episode_returns, gae_advantages, n_step_returns

R = torch.tensor([1.0, 2.0, 3.0, 4.0])
NOT_DONE = torch.zeros(4)
V = torch.tensor([0.5, 1.0, 1.5, 2.0])
V_LAST = torch.tensor(8.0)


def test_reward_to_go():
    # R3 = 4; R2 = 3 + 2 = 5; R1 = 2 + 2.5 = 4.5; R0 = 1 + 2.25 = 3.25
    assert discounted_returns(R, NOT_DONE, 0.5).tolist() == [3.25, 4.5, 5.0, 4.0]


def test_reward_to_go_restarts_after_termination_and_bootstraps():
    done = torch.tensor([0.0, 1.0, 0.0, 0.0])
    # after the end at t=1: R3 = 4 + 0.5*8 = 8, R2 = 3 + 4 = 7; before: R1 = 2, R0 = 1 + 1 = 2
    assert discounted_returns(R, done, 0.5, bootstrap=V_LAST).tolist() == [2.0, 2.0, 7.0, 8.0]


def test_full_episode_return():
    # 1 + 0.5*2 + 0.25*3 + 0.125*4 = 3.25, the same as R_0
    assert episode_returns(R, 0.5).item() == 3.25
    batched = episode_returns(torch.stack([R, 2 * R], dim=1), 0.5)
    assert batched.tolist() == [3.25, 6.5]


def test_n_step_returns():
    # n=2: R0 = 1 + 0.5*2 + 0.25*V(s2)=1.5*0.25 -> 2.375; R1 = 2 + 1.5 + 0.25*2 = 4.0
    #      R2 = 3 + 2 + 0.25*8 = 7.0; R3 = 4 + 0.5*8 = 8.0 (horizon shrinks at the end)
    assert n_step_returns(R, NOT_DONE, V, V_LAST, 0.5, n=2).tolist() == [2.375, 4.0, 7.0, 8.0]


def test_n_step_of_one_is_td_and_of_horizon_is_monte_carlo():
    assert torch.allclose(n_step_returns(R, NOT_DONE, V, V_LAST, 0.5, n=1), R + 0.5 * torch.cat([V[1:], V_LAST[None]]))
    assert torch.allclose(n_step_returns(R, NOT_DONE, V, V_LAST, 0.5, n=4),
                          discounted_returns(R, NOT_DONE, 0.5, bootstrap=V_LAST))


def test_n_step_stops_at_termination():
    done = torch.tensor([0.0, 1.0, 0.0, 0.0])
    # R0 with n=3: 1 + 0.5*2 and nothing after the end at t=1
    assert n_step_returns(R, done, V, V_LAST, 0.5, n=3)[0].item() == 2.0


def test_gae_limits():
    td = R + 0.5 * torch.cat([V[1:], V_LAST[None]]) - V
    assert torch.allclose(gae_advantages(R, NOT_DONE, V, V_LAST, 0.5, lam=0.0), td)
    mc = discounted_returns(R, NOT_DONE, 0.5, bootstrap=V_LAST) - V
    assert torch.allclose(gae_advantages(R, NOT_DONE, V, V_LAST, 0.5, lam=1.0), mc)


def test_gae_by_hand():
    # δ = r + 0.5 V' - V: δ3 = 4 + 4 - 2 = 6; δ2 = 3 + 1 - 1.5 = 2.5; δ1 = 2 + 0.75 - 1 = 1.75; δ0 = 1 + 0.5 - 0.5 = 1
    # λ = 0.5, γλ = 0.25: A3 = 6; A2 = 2.5 + 1.5 = 4; A1 = 1.75 + 1 = 2.75; A0 = 1 + 0.6875 = 1.6875
    assert gae_advantages(R, NOT_DONE, V, V_LAST, 0.5, lam=0.5).tolist() == [1.6875, 2.75, 4.0, 6.0]


def test_shape_errors():
    with pytest.raises(ValueError, match="equal shapes"):
        gae_advantages(R, NOT_DONE[:3], V, V_LAST, 0.5, 0.9)
    with pytest.raises(ValueError, match="n must be >= 1"):
        n_step_returns(R, NOT_DONE, V, V_LAST, 0.5, n=0)
