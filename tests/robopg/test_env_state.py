"""A simulator's episode in flight, saved and restored in a fresh simulator, goes on exactly."""

import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from robopg.envs import make_env
from robopg.training.env_state import env_state, load_env_state

NOISY_AND_LATE = {"dynamics": {"sensor_noise_std": 0.01, "action_latency_steps": 2, "mass_scale": (0.8, 1.2)}}


def saved_and_loaded(state):
    """Through a checkpoint file as ``resume.pt`` is written and read (tensors and plain values only)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize(("env_id", "options"), [
    ("Pendulum-v1", {}),
    ("robopg/CartPoleSwingUp-v0", NOISY_AND_LATE),
    ("robopg/CartPoleSwingUp-v0", {"history": 2}),
    ("robopg/Reacher2D-v0", NOISY_AND_LATE),
    ("robopg/HalfCheetah-v0", NOISY_AND_LATE),  # contacts with the ground
    ("robopg/KukaReach-v0", {}),
])
def test_an_episode_restored_in_a_fresh_simulator_goes_on_exactly(env_id, options):
    original, fresh = make_env(env_id, **options), make_env(env_id, **options)
    actions = np.random.default_rng(0).uniform(original.action_space.low, original.action_space.high,
                                               (80, *original.action_space.shape)).astype(np.float32)
    original.reset(seed=3)
    for action in actions[:30]:
        original.step(action)
    fresh.reset(seed=4)  # another episode, further along, which the state replaces
    for action in actions[:45]:
        fresh.step(action)
    load_env_state(fresh, saved_and_loaded(env_state(original)))
    for action in actions[30:]:
        a, b = original.step(action), fresh.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
    a, b = original.reset(), fresh.reset()  # the random generators too: the next episodes start alike
    np.testing.assert_array_equal(a[0], b[0])


class WorldOutsidePython(gym.Env):
    """An environment whose state is an object this module knows nothing of (as a MuJoCo world is)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self) -> None:
        self.world = object()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 0.0, False, False, {}


def test_a_simulator_whose_state_cannot_be_captured_gives_none():
    assert env_state(gym.wrappers.TimeLimit(WorldOutsidePython(), 10)) is None


def test_a_state_loads_only_into_the_same_wrapper_chain():
    state = env_state(make_env("Pendulum-v1"))
    with pytest.raises(ValueError, match="another wrapper chain"):
        load_env_state(make_env("robopg/CartPoleSwingUp-v0", history=1), state)
