from pathlib import Path

import numpy as np
import pytest
import torch

from robopg.core.buffers import ReplayBuffer
from robopg.core.noise import GaussianNoise, OrnsteinUhlenbeckNoise
from robopg.errors import ConfigError
from robopg.registry import config_from_dict, config_to_dict, load_config, make_config, name_of, names


def filled(capacity=4, n=6):
    buffer = ReplayBuffer(capacity, obs_dim=2, act_dim=1)
    for i in range(n):
        buffer.add(np.full(2, i), np.full(1, i), float(i), np.full(2, i + 1), terminated=(i == 2))
    return buffer


def test_ring_buffer_overwrites_oldest_and_keeps_terminations():
    buffer = filled()
    assert len(buffer) == 4 and buffer.full
    assert sorted(buffer.reward.tolist()) == [2.0, 3.0, 4.0, 5.0]
    assert buffer.terminated[buffer.reward == 2.0].tolist() == [1.0]
    latest = buffer.latest(2)
    assert latest.reward.tolist() == [5.0, 4.0]
    assert torch.equal(latest.next_obs[0], torch.tensor([6.0, 6.0]))


def test_sampling_is_seeded_and_typed():
    a = filled().sample(8, np.random.default_rng(0))
    b = filled().sample(8, np.random.default_rng(0))
    assert all(torch.equal(x, y) for x, y in zip(a[:5], b[:5], strict=True)) and a.discount is None
    assert a.obs.dtype == torch.float32 and a.obs.shape == (8, 2) and a.reward.shape == (8,)


def test_buffer_state_round_trip():
    buffer = filled(capacity=8, n=5)
    copy = ReplayBuffer(8, 2, 1)
    copy.load_state_dict(buffer.state_dict())
    assert len(copy) == 5 and copy.pos == 5
    assert np.array_equal(copy.obs[:5], buffer.obs[:5])
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(2, 2, 1).load_state_dict(buffer.state_dict())


def episodes_of_three(capacity=16):
    """Rewards 1, 2, 3 | 10, 20, 30 | 100, 200: the first episode terminated, the second cut by a time limit,
    the third still running; observation i is [i, i]."""
    buffer = ReplayBuffer(capacity, obs_dim=2, act_dim=1)
    rewards = [1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 100.0, 200.0]
    for i, r in enumerate(rewards):
        buffer.add(np.full(2, i), np.zeros(1), r, np.full(2, i + 1), terminated=(i == 2), truncated=(i == 5))
    return buffer


class StartAt:
    """A generator stand-in whose ``integers`` returns the given start transitions."""

    def __init__(self, starts):
        self.starts = np.array(starts)

    def integers(self, low, high, size):
        return self.starts


def test_n_step_returns_stop_at_episode_ends_and_at_the_newest_transition():
    batch = episodes_of_three().sample(5, StartAt([0, 1, 3, 6, 7]), n_step=3, gamma=0.5)
    # start 0: 1 + 0.5·2 + 0.25·3 = 2.75 over 3 steps, ending in the termination after observation 2
    # start 1: 2 + 0.5·3 = 3.5 over 2 steps (the episode ends); start 3: 10 + 10 + 7.5 = 27.5, truncated, not ended
    # start 6: 100 + 0.5·200 = 200 over 2 steps (nothing newer stored); start 7: 200 alone
    assert batch.reward.tolist() == [2.75, 3.5, 27.5, 200.0, 200.0]
    assert batch.discount.tolist() == [0.125, 0.25, 0.125, 0.25, 0.5]
    assert batch.terminated.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert batch.next_obs[:, 0].tolist() == [3.0, 3.0, 6.0, 8.0, 8.0]
    assert batch.obs[:, 0].tolist() == [0.0, 1.0, 3.0, 6.0, 7.0]


def test_n_step_returns_wrap_around_the_ring_and_one_step_sampling_bootstraps_with_gamma():
    buffer = episodes_of_three(capacity=4)  # holds transitions 4..7 at rows 0..3: rewards 20, 30, 100, 200
    wrapped = buffer.sample(2, StartAt([3, 1]), n_step=3, gamma=0.5)  # row 3 is transition 7: the newest
    assert wrapped.reward.tolist() == [200.0, 30.0] and wrapped.discount.tolist() == [0.5, 0.5]
    plain = buffer.sample(2, StartAt([3, 1]), gamma=0.5)
    assert plain.reward.tolist() == [200.0, 30.0] and plain.discount is None and plain.bootstrap_discount(0.9) == 0.9


def test_n_step_without_replay_is_refused_by_name():
    with pytest.raises(ConfigError, match="n_step"):
        make_config("ddpg", {"n_step": 3, "use_replay": False})


def test_empty_buffer_sampling_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, 2, 1).sample(1, np.random.default_rng(0))


def test_ou_noise_reverts_to_zero_and_restores_state():
    noise = OrnsteinUhlenbeckNoise((1,), std=0.0, rng=np.random.default_rng(0), theta=0.5, dt=0.1)
    noise.set_state(np.array([1.0]))
    assert noise()[0] == pytest.approx(0.95)  # x - θ·x·dt with no diffusion
    noise.reset()
    assert noise.get_state()[0] == 0.0


def test_gaussian_noise_std():
    samples = np.stack([GaussianNoise((2,), 0.3, np.random.default_rng(1))() for _ in range(1)])
    many = GaussianNoise((20000,), 0.3, np.random.default_rng(1))()
    assert samples.shape == (1, 2) and many.std() == pytest.approx(0.3, rel=0.03)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gamma": 1.5}, "gamma must be in"),
        ({"tau": 0}, "tau must be in"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": 512, "buffer_size": 100}, "must not exceed buffer_size"),
        ({"noise": "pink"}, "noise must be"),
        ({"actor_hidden": []}, "actor_hidden must be a non-empty list"),
        ({"actor_lr": -1.0}, r"actor_lr must be in \(0, 1\]"),
        ({"total_steps": 1.5}, "total_steps must be an integer"),
        ({"learning_rate": 1e-3}, "unknown ddpg config key"),
        ({"twin_critics": "yes"}, "twin_critics must be true or false"),
    ],
)
def test_invalid_configs_name_the_problem(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("ddpg", overrides)


def test_unknown_algorithm():
    with pytest.raises(ConfigError, match="unknown algorithm 'ppo'"):
        make_config("ppo")


def test_td3_defaults_switch_on_the_three_fixes():
    td3 = make_config("td3")
    assert td3.twin_critics and td3.policy_delay == 2 and td3.target_noise > 0
    assert not make_config("ddpg").twin_critics


def test_config_toml_round_trip(tmp_path):
    config = make_config("dpg", {"total_steps": 123, "value_hidden": [32]})
    assert config_from_dict(config_to_dict(config)) == config
    path = tmp_path / "c.toml"
    path.write_text('total_steps = 77\nactor_hidden = [16, 16]\n')
    loaded = load_config("ddpg", path, {"seed": 3})
    assert (loaded.total_steps, loaded.actor_hidden, loaded.seed) == (77, (16, 16), 3)
    path.write_text("total_steps = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config("ddpg", path)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config("ddpg", tmp_path / "missing.toml")


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "tools" / "configs").glob("*.toml")),
                         ids=lambda p: p.name)
def test_shipped_configs_are_valid_for_their_algorithm(path):
    # The longest algorithm name the file's name starts with: a2c_swingup -> a2c, a2c_sil_sparse -> a2c_sil.
    algo = max((name for name in names() if path.stem.startswith(f"{name}_")), key=len)
    config = load_config(algo, path)
    assert name_of(config) == algo


def test_annealing_decays_every_learning_rate_linearly_and_resumes_from_the_initial_rate():
    from robopg.algos.base import anneal_learning_rates

    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    anneal_learning_rates([optimizer], 0.25)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(7.5e-4)
    restored = torch.optim.Adam(params, lr=1e-3)
    restored.load_state_dict(optimizer.state_dict())  # a resumed run continues from lr₀, not from 7.5e-4
    anneal_learning_rates([restored], 0.5)
    assert restored.param_groups[0]["lr"] == pytest.approx(5e-4)
    anneal_learning_rates([restored], 1.2)
    assert restored.param_groups[0]["lr"] == 0.0
    with pytest.raises(ConfigError, match="anneal_lr must be true or false"):
        make_config("a2c", {"anneal_lr": 1})
    with pytest.raises(ConfigError, match="anneal_lr is not available for a3c"):
        make_config("a3c", {"anneal_lr": True})


def test_the_critics_layer_normalization_centres_and_scales_each_hidden_layer():
    from robopg.algos.ddpg import DDPG
    from robopg.core.nets import mlp

    net = mlp(3, 1, [8, 8], layer_norm=True)
    hidden = torch.nn.Sequential(*list(net)[:2])(torch.randn(5, 3))  # the first layer before its ReLU
    assert torch.allclose(hidden.mean(-1), torch.zeros(5), atol=1e-6)
    assert torch.allclose(hidden.var(-1, unbiased=False), torch.ones(5), atol=1e-3)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in mlp(3, 1, [8, 8])) == 0
    config = make_config("td3", {"critic_layer_norm": True, "actor_hidden": [8], "critic_hidden": [8, 8]})
    learner = DDPG(config, 3, np.array([-1.0]), np.array([1.0]), torch.Generator().manual_seed(0))
    assert [sum(isinstance(m, torch.nn.LayerNorm) for m in head) for head in learner.critic.heads] == [2, 2]
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in learner.actor.modules())  # the exported actor is plain


def test_the_first_critic_alone_gives_the_actor_the_same_value_and_gradient_without_the_second_head():
    from robopg.core.nets import Critic

    torch.manual_seed(0)
    critic = Critic(3, 2, [8, 8], heads=2)
    obs = torch.randn(5, 3)
    both_action = torch.randn(5, 2, requires_grad=True)
    first_action = both_action.detach().clone().requires_grad_(True)
    critic(obs, both_action)[0].sum().backward()
    assert all(p.grad is not None for p in critic.heads[1].parameters())  # zeros, computed through head 2
    critic.zero_grad(set_to_none=True)
    q = critic.first(obs, first_action)
    q.sum().backward()
    assert q.shape == (5,) and torch.equal(q, critic(obs, first_action)[0])
    assert torch.equal(first_action.grad, both_action.grad)
    assert all(p.grad is None for p in critic.heads[1].parameters())
