"""The tasks' pure reward and termination functions against hand-computed values, single and batched."""

import numpy as np
import pytest

import sim
from sim.spec import task_spec
from sim.tasks import cartpole, half_cheetah, kuka, reacher


def test_cartpole_reward_hand_computed():
    upright = np.array([0.0, 0.0, 1.0, 0.0, 0.0])
    assert cartpole.reward(upright, np.array([0.0]), upright) == pytest.approx(1.0)
    hanging = np.array([0.0, 0.0, -1.0, 0.0, 0.0])
    assert cartpole.reward(upright, np.array([0.0]), hanging) == pytest.approx(0.0)
    # Horizontal pole at 2 m, 5 rad/s, full force: 0.5 · (1 + 0.1)/2 · 4/5 · (1 + 0.1)/2.
    edge = np.array([2.0, 0.0, 0.0, 1.0, 5.0])
    expected = 0.5 * 0.55 * 0.8 * 0.55
    assert cartpole.reward(upright, np.array([10.0]), edge) == pytest.approx(expected)
    # Beyond the bounds the force counts as the bound.
    assert cartpole.reward(upright, np.array([-20.0]), edge) == pytest.approx(expected)


def test_cartpole_terminates_off_track_only():
    obs = np.zeros((4, 5))
    obs[:, 0] = [0.0, 2.39, -2.41, 3.0]
    np.testing.assert_array_equal(cartpole.terminated(obs), [False, False, True, True])
    assert not cartpole.terminated(obs[0])


def test_reacher_reward_hand_computed():
    next_obs = np.zeros(10)
    next_obs[6:8] = [0.1, 0.0]  # target
    next_obs[8:10] = [0.1, 0.1]  # fingertip, 0.1 m away
    assert reacher.reward(next_obs, np.array([0.05, 0.0]), next_obs) == pytest.approx(-0.1 - 0.05 * 1.0)
    assert reacher.reward(next_obs, np.array([0.025, -0.025]), next_obs) == pytest.approx(-0.1 - 0.05 * 0.5)
    assert not reacher.terminated(next_obs)


def test_half_cheetah_reward_hand_computed():
    next_obs = np.zeros(17)
    next_obs[half_cheetah.OBS_NAMES.index("torso_vx")] = 2.0
    action = np.array([120.0, 0, 0, 0, 0, 30.0])
    assert half_cheetah.reward(next_obs, action, next_obs) == pytest.approx(2.0 - 0.1 * 2.0)
    assert not half_cheetah.terminated(next_obs)


def test_kuka_reward_hand_computed():
    next_obs = np.zeros(20)
    next_obs[14:17] = [0.5, 0.0, 0.5]  # end effector
    next_obs[17:20] = [0.5, 0.3, 0.1]  # target, 0.5 m away
    action = np.array([1.0, 0, 0, 0, 0, 0, 1.5])
    assert kuka.reward(next_obs, action, next_obs) == pytest.approx(-0.5 - 0.01 * 2.0)
    assert not kuka.terminated(next_obs)


@pytest.mark.parametrize("env_id", sim.ENV_IDS)
def test_batched_equals_looped(env_id):
    spec = task_spec(env_id)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(3, 4, spec.obs_dim))
    next_obs = rng.normal(size=(3, 4, spec.obs_dim))
    action = rng.uniform(-2, 2, size=(3, 4, spec.action_dim)) * np.array(spec.action_high)
    batched = spec.reward(obs, action, next_obs)
    done = spec.terminated(next_obs)
    assert batched.shape == done.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert batched[i, j] == spec.reward(obs[i, j], action[i, j], next_obs[i, j])
            assert done[i, j] == spec.terminated(next_obs[i, j])
    # float32 observations (what a robot sends) give the float64 result of the same numbers.
    assert np.array_equal(
        spec.reward(obs.astype(np.float32), action, next_obs.astype(np.float32)),
        spec.reward(obs.astype(np.float32).astype(np.float64), action, next_obs.astype(np.float32).astype(np.float64)),
    )


def test_specs_are_registered_and_named():
    assert set(sim.ENV_IDS) == {
        "robopg/CartPoleSwingUp-v0", "robopg/CartPoleBalance-v0", "robopg/Reacher2D-v0", "robopg/HalfCheetah-v0",
        "robopg/KukaReach-v0",
    }
    for env_id in sim.ENV_IDS:
        spec = task_spec(env_id)
        assert len(set(spec.obs_names)) == spec.obs_dim
        assert len(set(spec.action_names)) == spec.action_dim == len(spec.action_low) == len(spec.action_high)
        assert all(lo < hi for lo, hi in zip(spec.action_low, spec.action_high, strict=True))
    kuka_names = task_spec("robopg/KukaReach-v0").obs_names
    assert kuka_names[14:] == ("ee_x", "ee_y", "ee_z", "target_x", "target_y", "target_z")
