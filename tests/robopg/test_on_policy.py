import math

import numpy as np
import pytest
import torch

from robopg.algos.a2c import advantage_estimate
from robopg.algos.reinforce import reinforce_psi
from robopg.core.buffers import Episode, PrioritizedReturns, Rollout
from robopg.core.losses import (
    entropy_bonus,
    per_decision_weights,
    policy_gradient_loss,
    self_imitation_losses,
    value_loss,
)
from robopg.core.nets import GaussianPolicy
from robopg.core.returns import gae_advantages, n_step_returns
from robopg.registry import make_config
from robopg.training.run import train


def test_gaussian_log_prob_and_entropy_by_hand():
    policy = GaussianPolicy(obs_dim=2, act_dim=2, hidden=[4], init_log_std=math.log(0.5))
    obs = torch.zeros(1, 2)
    mean = policy.mean(obs)
    action = mean + torch.tensor([[0.5, -1.0]])  # one and two standard deviations away
    # log N(x; μ, σ) = −(x−μ)²/(2σ²) − log σ − ½ log 2π, summed over the two dimensions
    expected = -(0.5 + 2.0) - 2 * math.log(0.5) - math.log(2 * math.pi)
    assert policy.log_prob(obs, action).item() == pytest.approx(expected, abs=1e-5)
    entropy = policy.distribution(obs).entropy().sum(-1)  # ½ log(2πeσ²) per dimension
    assert entropy.item() == pytest.approx(2 * (0.5 * math.log(2 * math.pi * math.e) + math.log(0.5)), abs=1e-5)
    assert torch.equal(policy(obs), mean)  # the deterministic policy is the mean


def test_gaussian_mean_is_unbounded_and_the_deterministic_policy_clips_it():
    policy = GaussianPolicy(obs_dim=2, act_dim=2, hidden=[4], init_log_std=0.0)
    with torch.no_grad():
        policy.mean[-1].bias.copy_(torch.tensor([3.0, -0.25]))
        policy.mean[-1].weight.zero_()
    obs = torch.zeros(1, 2)
    assert torch.allclose(policy.distribution(obs).mean, torch.tensor([[3.0, -0.25]]))
    assert torch.allclose(policy(obs), torch.tensor([[1.0, -0.25]]))
    # Beyond the bound the mean still gets the full score-function gradient (a tanh would pass 1 % at 3).
    policy.log_prob(obs, torch.tensor([[2.0, -0.25]])).backward()
    assert policy.mean[-1].bias.grad[0].item() == pytest.approx(-1.0)  # d/dμ log N(2; μ, 1) at μ = 3


def test_policy_gradient_loss_raises_the_probability_of_good_actions():
    mean = torch.zeros(1, requires_grad=True)
    dist = torch.distributions.Normal(mean, torch.ones(1))
    policy_gradient_loss(dist.log_prob(torch.tensor([1.0])), torch.tensor([2.0])).backward()
    assert mean.grad.item() == pytest.approx(-2.0)  # d/dμ of −log N(1; μ, 1)·2 = −(1 − μ)·2
    with pytest.raises(ValueError, match="equal shapes"):
        policy_gradient_loss(torch.zeros(3), torch.zeros(2))
    assert value_loss(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])).item() == 1.0
    assert entropy_bonus(torch.tensor([2.0, 4.0]), 0.1).item() == pytest.approx(-0.3)


def test_per_decision_weights_by_hand():
    ratios = torch.tensor([2.0, 0.5, 4.0, 1.0])  # π/b at each step
    log_b = torch.zeros(4)
    weights = per_decision_weights(torch.log(ratios), log_b, clip=3.0)
    # running products 2, 1, 4, 4 -> truncated at 3
    assert torch.allclose(weights, torch.tensor([2.0, 1.0, 3.0, 3.0]))
    log_pi = torch.log(ratios).requires_grad_()
    assert not per_decision_weights(log_pi, log_b, 10.0).requires_grad


def test_self_imitation_learns_only_from_returns_above_the_value():
    log_prob = torch.tensor([-1.0, -2.0], requires_grad=True)
    value = torch.tensor([1.0, 3.0], requires_grad=True)
    returns = torch.tensor([2.0, 1.0])
    actor, critic, priorities = self_imitation_losses(log_prob, value, returns, torch.ones(2))
    assert priorities.tolist() == [1.0, 0.0]  # (R − V)⁺
    assert actor.item() == pytest.approx(0.5)  # −mean(log π · (R − V)⁺) = −(−1·1 + 0)/2
    assert critic.item() == pytest.approx(0.5)  # mean(((R − V)⁺)²) = (1 + 0)/2
    (actor + critic).backward()
    assert log_prob.grad.tolist() == [-0.5, 0.0] and value.grad.tolist() == [-1.0, 0.0]


def test_prioritized_returns_sample_by_priority():
    replay = PrioritizedReturns(8, obs_dim=1, act_dim=1, alpha=1.0, beta=1.0)
    replay.add(np.zeros((4, 1)), np.zeros((4, 1)), np.arange(4.0))
    replay.update_priorities(np.arange(4), np.array([0.0, 0.0, 1.0, 3.0]))
    idx, _, _, returns, weights = replay.sample(4000, np.random.default_rng(0))
    share = np.bincount(idx, minlength=4) / 4000
    assert share[:2].sum() == 0 and share[3] == pytest.approx(0.75, abs=0.03)
    assert torch.allclose(returns, torch.as_tensor(idx, dtype=torch.float32))
    assert weights.max() == 1.0 and weights[idx == 3].max() < 1.0  # frequent samples weigh less


def test_reinforce_psi_variants_by_hand():
    def episode(rewards):
        n = len(rewards)
        return Episode(torch.zeros(n, 1), torch.zeros(n, 1), torch.tensor(rewards), torch.zeros(n))

    episodes = [episode([1.0, 1.0]), episode([0.0, 2.0, 0.0])]
    # γ = 0.5: R(τ1) = 1 + 0.5 = 1.5, R(τ2) = 0 + 1 + 0 = 1.0; mean 1.25
    full = reinforce_psi(episodes, "return", 0.5)
    assert [p.tolist() for p in full] == [[1.5, 1.5], [1.0, 1.0, 1.0]]
    baseline = reinforce_psi(episodes, "baseline", 0.5)
    assert [p.tolist() for p in baseline] == [[0.25, 0.25], [-0.25, -0.25, -0.25]]
    to_go = reinforce_psi(episodes, "reward_to_go", 0.5)
    assert [p.tolist() for p in to_go] == [[1.5, 1.0], [1.0, 2.0, 0.0]]


def test_advantage_estimators_dispatch():
    torch.manual_seed(0)
    r, d, v, last = torch.randn(6, 2), torch.zeros(6, 2), torch.randn(6, 2), torch.randn(2)
    rollout = Rollout(torch.zeros(6, 2, 1), torch.zeros(6, 2, 1), torch.zeros(6, 2), r, d, v, last)
    base = {"gamma": 0.9, "gae_lambda": 0.8, "n_step": 3}
    expected = {
        "td": gae_advantages(r, d, v, last, 0.9, 0.0),
        "mc": gae_advantages(r, d, v, last, 0.9, 1.0),
        "gae": gae_advantages(r, d, v, last, 0.9, 0.8),
        "nstep": n_step_returns(r, d, v, last, 0.9, 3) - v,
    }
    for name, value in expected.items():
        config = make_config("a2c", {**base, "advantage": name})
        assert torch.allclose(advantage_estimate(rollout, config), value), name


@pytest.mark.parametrize(
    ("algo", "overrides"),
    [
        ("a2c", {"advantage": "gae", "rollout_steps": 8}),
        ("a2c", {"advantage": "nstep", "rollout_steps": 8}),
        ("a2c_sil", {"rollout_steps": 8, "sil_batch_size": 32}),
        ("ac", {"rollout_steps": 8, "total_steps": 50_000}),  # ψ = Q has no baseline: slower
        ("offpac", {"episodes_per_update": 4, "actor_lr": 1e-2, "total_steps": 16_000}),
        ("reinforce", {"variant": "reward_to_go", "episodes_per_update": 8, "actor_lr": 1e-2, "total_steps": 16_000}),
        ("reinforce", {"variant": "baseline", "episodes_per_update": 8, "actor_lr": 1e-2, "total_steps": 16_000}),
    ],
)
def test_on_policy_learners_learn_a_toy_task(tmp_path, algo, overrides):
    config = make_config(algo, {
        "total_steps": 12_000, "num_envs": 4, "actor_lr": 3e-3, "critic_lr": 3e-3, "actor_hidden": [16],
        "critic_hidden": [16], "eval_every": 12_000, "eval_episodes": 10, "log_every": 4_000,
        "checkpoint_every": 50_000, "gamma": 0.9, **overrides,
    })
    result = train("PointToOrigin-v0", config, tmp_path / "run", show_progress=False)
    # Doing nothing from x ~ U(−1, 1) costs about 20·0.5 = 10; heading to 0 at full speed about 2.5.
    assert result.final_eval.mean > -5.0, result.final_eval
