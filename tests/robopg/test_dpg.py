"""The compatible critic of COPDAC-Q against an explicitly built Jacobian."""

import numpy as np
import torch
from torch.func import functional_call, jacrev

from robopg.algos.dpg import DPG
from robopg.registry import make_config


def test_grad_a_q_equals_jacobian_times_w():
    torch.manual_seed(0)
    config = make_config("dpg", {"actor_hidden": [4], "value_hidden": [4], "normalize_obs": False})
    learner = DPG(config, obs_dim=3, action_low=np.array([-1.0, -1.0]), action_high=np.array([1.0, 1.0]),
                  generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for w in learner.w:
            w.normal_()
    obs = torch.randn(5, 3)
    mu, grad_a_q = learner.policy_gradient_direction(obs)

    params = {n: p.detach() for n, p in learner.actor.named_parameters()}
    for i in range(obs.shape[0]):
        jac = jacrev(lambda p, s=obs[i]: functional_call(learner.actor, p, (s,)))(params)
        expected = sum((jac[n].reshape(2, -1) @ w.detach().reshape(-1)) for n, w in zip(params, learner.w,
                                                                                            strict=True))
        assert torch.allclose(grad_a_q[i], expected, atol=1e-5)
    assert torch.allclose(mu, learner.actor(obs))


def test_advantage_vanishes_at_the_policy_action_and_w_learns():
    torch.manual_seed(0)
    config = make_config("dpg", {"actor_hidden": [8], "value_hidden": [8], "normalize_obs": False})
    learner = DPG(config, 2, np.array([-1.0]), np.array([1.0]), torch.Generator().manual_seed(0))
    from robopg.core.buffers import Batch

    obs = torch.randn(64, 2)
    with torch.no_grad():
        action = (learner.actor(obs) + 0.3 * torch.randn(64, 1)).clamp(-1, 1)
    # Reward prefers larger actions than the policy's: the critic's w must point the actor that way.
    reward = (action - learner.actor(obs).detach()).squeeze(-1)
    batch = Batch(obs, action, reward, obs, torch.ones(64))
    before = learner.actor(obs).mean().item()
    for _ in range(200):
        learner.update(batch)
    assert any(w.abs().sum() > 0 for w in learner.w)
    assert learner.actor(obs).mean().item() > before
