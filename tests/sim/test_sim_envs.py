"""The PyBullet envs: Gymnasium conformance, seeding, options and randomization, specs, rendering."""

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from sim.randomization import Dynamics
from sim.spec import task_spec

PHYSICAL_KEYS = ("mass_scale", "friction_scale", "damping_scale", "actuator_gain")


def make(env_id, **kwargs):
    return gym.make(env_id, **kwargs)


def actions_for(env, n, seed=0):
    """A fixed, seeded action sequence within the bounds."""
    rng = np.random.default_rng(seed)
    space = env.action_space
    return rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(np.float32)


def rollout(env, actions, seed=0, options=None):
    obs, _ = env.reset(seed=seed, options=options)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards)


@pytest.fixture(params=sim.ENV_IDS)
def env_id(request):
    return request.param


@pytest.fixture
def env(env_id):
    env = make(env_id)
    yield env
    env.close()


def test_import_does_not_load_pybullet():
    code = "import sim, sys; assert 'pybullet' not in sys.modules; assert sim.task_spec('robopg/KukaReach-v0')"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_env_checker(env):
    with warnings.catch_warnings():
        # Actions are in actuator units and observations unbounded, on purpose.
        warnings.filterwarnings("ignore", message=".*(symmetric and normalized|infinity).*")
        check_env(env.unwrapped)


def test_spec_matches_env(env_id, env):
    spec = task_spec(env_id)
    inner = env.unwrapped
    assert inner.task is spec
    assert env.observation_space.shape == (spec.obs_dim,) and env.observation_space.dtype == np.float32
    assert env.action_space.dtype == np.float32
    np.testing.assert_array_equal(env.action_space.low, np.array(spec.action_low, np.float32))
    np.testing.assert_array_equal(env.action_space.high, np.array(spec.action_high, np.float32))
    assert gym.spec(env_id).max_episode_steps == spec.max_episode_steps
    assert inner.metadata["render_fps"] == spec.control_hz
    assert inner.substeps * inner.physics_dt == pytest.approx(1.0 / spec.control_hz)
    # The step's reward and termination are the spec's functions of (obs, clipped action, next_obs).
    obs, _ = env.reset(seed=3)
    for action in actions_for(env, 5, seed=1) * 3:  # beyond the bounds, so clipping shows
        next_obs, reward, terminated, _, _ = env.step(action)
        clipped = np.clip(action, env.action_space.low, env.action_space.high)
        assert reward == float(spec.reward(obs, clipped, next_obs))
        assert terminated == bool(spec.terminated(next_obs))
        obs = next_obs


def test_seeded_reset_is_bit_reproducible(env_id):
    a, b = make(env_id), make(env_id)
    try:
        actions = actions_for(a, 40)
        # Give `a` a different history first: a reset must not depend on it.
        rollout(a, actions_for(a, 30, seed=9), seed=5, options={"dynamics": {"mass_scale": 2.0}})
        a.reset(options={"dynamics": None})
        # Randomized dynamics and sensor noise are drawn from the seeded generator too.
        options = {"dynamics": {"mass_scale": (0.8, 1.2), "sensor_noise_std": 0.01}}
        obs_a, rew_a = rollout(a, actions, seed=42, options=options)
        obs_b, rew_b = rollout(b, actions, seed=42, options=options)
        obs_c, _ = rollout(a, actions, seed=42)  # options persist
        assert obs_a.tobytes() == obs_b.tobytes() == obs_c.tobytes()
        assert rew_a.tobytes() == rew_b.tobytes()
        obs_d, _ = rollout(b, actions, seed=43)
        assert not np.array_equal(obs_a, obs_d)
    finally:
        a.close()
        b.close()


def test_actions_are_clipped(env_id):
    env = make(env_id)
    try:
        high = env.action_space.high
        obs_big, _ = rollout(env, [high * 5] * 5, seed=0)
        obs_high, _ = rollout(env, [high] * 5, seed=0)
        assert obs_big.tobytes() == obs_high.tobytes()
        env.reset(seed=0)
        with pytest.raises(ValueError, match="finite"):
            env.step(np.full(env.action_space.shape, np.nan, np.float32))
    finally:
        env.close()


def test_init_range_zero_gives_the_nominal_state(env_id):
    env = make(env_id, init_range=0.0)
    try:
        first, _ = env.reset(seed=1)
        second, _ = env.reset(seed=2)
        names = task_spec(env_id).obs_names
        robot = [i for i, name in enumerate(names) if not name.startswith("target")]
        np.testing.assert_array_equal(first[robot], second[robot])
        env.reset(seed=1, options={"init_range": 1.0})
        perturbed, _ = env.reset(seed=2)
        assert not np.array_equal(perturbed[robot], first[robot])
    finally:
        env.close()


def test_cartpole_nominal_state_hangs_at_rest():
    env = make("robopg/CartPoleSwingUp-v0", init_range=0.0)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs, [0.0, 0.0, -1.0, 0.0, 0.0], atol=1e-7)
    env.close()


@pytest.mark.parametrize("key", PHYSICAL_KEYS)
def test_each_physical_parameter_changes_the_motion(env_id, key):
    env = make(env_id)
    try:
        actions = actions_for(env, 15)
        nominal, _ = rollout(env, actions, seed=0, options={"dynamics": None})
        changed, _ = rollout(env, actions, seed=0, options={"dynamics": {key: 1.5}})
        assert env.unwrapped.dynamics == Dynamics(**{key: 1.5})
        # The initial state is the same draw; what follows differs.
        assert np.array_equal(nominal[0], changed[0])
        assert np.abs(nominal[1:] - changed[1:]).max() > 1e-5
    finally:
        env.close()


def test_sensor_noise_changes_observations_not_the_physics():
    env = make("robopg/CartPoleSwingUp-v0")
    actions = actions_for(env, 100)
    clean, clean_rewards = rollout(env, actions, seed=0)
    noisy, noisy_rewards = rollout(env, actions, seed=0, options={"dynamics": {"sensor_noise_std": 0.05}})
    # Rewards come from the noise-free state, which the noise does not touch.
    assert clean_rewards.tobytes() == noisy_rewards.tobytes()
    residual = noisy - clean
    assert residual.std() == pytest.approx(0.05, rel=0.15)
    assert abs(residual.mean()) < 0.01
    env.close()


@pytest.mark.parametrize("k", [1, 3])
def test_action_latency_delays_actions_by_exactly_k_steps(env_id, k):
    env = make(env_id)
    actions = actions_for(env, 30)
    delayed, _ = rollout(env, actions, seed=0, options={"dynamics": {"action_latency_steps": k}})
    # Without latency, the same physics results from the action sequence shifted by k (zeros first).
    shifted = np.concatenate([np.zeros((k, *env.action_space.shape), np.float32), actions[:-k]])
    reference, _ = rollout(env, shifted, seed=0, options={"dynamics": None})
    prompt, _ = rollout(env, actions, seed=0)
    assert delayed.tobytes() == reference.tobytes()
    assert not np.array_equal(delayed, prompt)
    env.close()


def test_predict_gives_steps_noise_free_observations_under_latency_and_gain(env_id):
    gap = {"dynamics": {"action_latency_steps": 2, "actuator_gain": 0.8, "sensor_noise_std": 0.05}}
    env = make(env_id)
    actions = actions_for(env, 20)
    env.reset(seed=0, options=gap)
    stepped = []
    for action in actions:
        env.step(action)
        stepped.append(env.unwrapped._obs.copy())  # the noise-free observation behind the noisy one
    env.reset(seed=0, options=gap)
    predicted = [env.unwrapped.predict(action) for action in actions]
    assert np.array(predicted).tobytes() == np.array(stepped).tobytes()
    with pytest.raises(ValueError, match="finite"):
        env.unwrapped.predict(np.full(env.action_space.shape, np.nan))
    env.close()


def test_latency_queue_starts_empty_each_episode():
    env = make("robopg/CartPoleSwingUp-v0", dynamics={"action_latency_steps": 2})
    actions = actions_for(env, 10)
    first, _ = rollout(env, actions, seed=0)
    second, _ = rollout(env, actions, seed=0)  # the first episode's last actions must not leak in
    assert first.tobytes() == second.tobytes()
    env.close()


def test_options_persist_until_changed():
    env = make("robopg/CartPoleSwingUp-v0", dynamics={"mass_scale": 2.0}, init_range=0.5)
    inner = env.unwrapped
    env.reset(seed=0)
    assert inner.dynamics.mass_scale == 2.0
    env.reset(options={"dynamics": {"actuator_gain": (0.5, 0.6)}})
    assert inner.dynamics.mass_scale == 1.0  # a new dynamics dict replaces the old one
    gains = set()
    for _ in range(5):
        env.reset()
        assert 0.5 <= inner.dynamics.actuator_gain <= 0.6
        gains.add(inner.dynamics.actuator_gain)
    assert len(gains) == 5
    env.reset(options={"dynamics": None})
    assert inner.dynamics == Dynamics()
    env.close()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"init_rnage": 1.0}, "init_rnage"),
        ({"init_range": -1.0}, "init_range"),
        ({"dynamics": {"mass_scale": -1.0}}, "mass_scale"),
        ({"dynamics": {"latency": 1}}, "latency"),
        ({"dynamics": {"action_latency_steps": 0.5}}, "action_latency_steps"),
        ({"target": (0.1, 0.1)}, "target"),  # the cart-pole has no target
    ],
)
def test_invalid_options_raise_and_change_nothing(options, key):
    env = make("robopg/CartPoleSwingUp-v0", dynamics={"mass_scale": 1.3})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=key):
        env.reset(options={"dynamics": {"mass_scale": 1.7}, **options})
    env.reset(seed=0)
    assert env.unwrapped.dynamics.mass_scale == 1.3
    env.close()
    with pytest.raises(ValueError, match=key):
        make("robopg/CartPoleSwingUp-v0", **options)


@pytest.mark.parametrize(
    ("env_id", "target"), [("robopg/Reacher2D-v0", (0.1, -0.05)), ("robopg/KukaReach-v0", (0.5, 0.2, 0.4))]
)
def test_fixed_target_option(env_id, target):
    env = make(env_id, target=target)
    names = task_spec(env_id).obs_names
    where = [i for i, name in enumerate(names) if name.startswith("target")]
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        np.testing.assert_allclose(obs[where], target, atol=1e-6)
    env.reset(options={"target": None})
    drawn = {tuple(env.reset(seed=s)[0][where]) for s in range(3)}
    assert len(drawn) == 3
    with pytest.raises(ValueError, match="target"):
        env.reset(options={"target": (5.0,) * len(target)})
    with pytest.raises(ValueError, match="target"):
        env.reset(options={"target": (0.1,)})
    env.close()


def test_rgb_array_render(env_id):
    env = make(env_id, render_mode="rgb_array")
    try:
        env.reset(seed=0)
        env.step(env.action_space.sample())
        frame = env.render()
        cam = env.unwrapped.camera
        assert frame.shape == (cam.height, cam.width, 3) and frame.dtype == np.uint8
        assert frame.std() > 5  # something is drawn, not a blank image
    finally:
        env.close()
    env = make(env_id)
    env.reset(seed=0)
    assert env.render() is None  # no render mode, no image
    env.close()


def test_envs_are_independent_and_close_disconnects():
    envs = [make("robopg/CartPoleSwingUp-v0") for _ in range(3)]
    actions = actions_for(envs[0], 20)
    for env in envs:
        env.reset(seed=0)
    for action in actions:  # interleaved stepping: each has its own physics
        results = [env.step(action)[0] for env in envs]
        assert all(np.array_equal(results[0], r) for r in results)
    for env in envs:
        env.close()
        with pytest.raises(RuntimeError, match="closed"):
            env.unwrapped.client  # noqa: B018
        env.close()  # twice is harmless


def test_unknown_render_mode_is_refused():
    entry_point = gym.spec("robopg/CartPoleSwingUp-v0").entry_point
    env_class = gym.envs.registration.load_env_creator(entry_point)
    with pytest.raises(ValueError, match="render_mode"):
        env_class(render_mode="human")


def test_stable_baselines3_trains_unchanged():
    sb3 = pytest.importorskip("stable_baselines3")
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: more threads only contend (30x slower on 2 cores)
    env = make("robopg/CartPoleSwingUp-v0")
    try:
        model = sb3.DDPG(
            "MlpPolicy", env, learning_starts=100, buffer_size=1000, batch_size=32,
            policy_kwargs={"net_arch": [16]}, seed=0, device="cpu",
        )
        model.learn(300)
        action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
        assert env.action_space.contains(action)
    finally:
        env.close()
        torch.set_num_threads(threads)
