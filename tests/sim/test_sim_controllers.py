"""Hand-written controllers reach each task's solved_return; doing nothing or acting at random does not."""

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the ids)
from sim.controllers import cartpole_swing_up, reacher_ik_pd
from sim.spec import task_spec
from sim.tasks import kuka


def episode_return(env, policy, seed):
    obs, _ = env.reset(seed=seed)
    total = 0.0
    while True:
        obs, reward, terminated, truncated, _ = env.step(policy(obs).astype(np.float32))
        total += reward
        if terminated or truncated:
            return total


def mean_return(env_id, policy, seeds=(0, 1, 2), **kwargs):
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(0)
    try:
        return np.mean([episode_return(env, policy(env), seed) for seed in seeds])
    finally:
        env.close()


def zero(env):
    return lambda obs: np.zeros(env.action_space.shape)


def uniform(env):
    return lambda obs: env.action_space.sample()


def test_cartpole_swing_up_controller_solves_and_idling_does_not():
    solved = task_spec("robopg/CartPoleSwingUp-v0").solved_return
    assert mean_return("robopg/CartPoleSwingUp-v0", lambda env: cartpole_swing_up) > solved + 20
    assert mean_return("robopg/CartPoleSwingUp-v0", zero) < 0.05 * solved
    assert mean_return("robopg/CartPoleSwingUp-v0", uniform) < 0.1 * solved


def test_the_same_controller_balances_the_pole_that_starts_upright_and_idling_does_not():
    solved = task_spec("robopg/CartPoleBalance-v0").solved_return
    assert mean_return("robopg/CartPoleBalance-v0", lambda env: cartpole_swing_up) > solved + 20
    assert mean_return("robopg/CartPoleBalance-v0", zero) < 0.7 * solved
    assert mean_return("robopg/CartPoleBalance-v0", uniform) < 0.5 * solved


def test_cartpole_swing_up_from_the_exact_bottom():
    solved = task_spec("robopg/CartPoleSwingUp-v0").solved_return
    assert mean_return("robopg/CartPoleSwingUp-v0", lambda env: cartpole_swing_up, seeds=(0,), init_range=0.0) > solved


def test_reacher_controller_solves_and_idling_does_not():
    solved = task_spec("robopg/Reacher2D-v0").solved_return
    assert mean_return("robopg/Reacher2D-v0", lambda env: reacher_ik_pd, seeds=range(5)) > solved
    assert mean_return("robopg/Reacher2D-v0", zero, seeds=range(5)) < 3 * solved
    assert mean_return("robopg/Reacher2D-v0", uniform, seeds=range(5)) < 3 * solved


def resolved_rate(env, gain=4.0):
    """End-effector velocity towards the target through a damped pseudo-inverse of the Jacobian."""
    inner = env.unwrapped
    high = np.array(kuka.MAX_VELOCITY)

    def policy(obs):
        q = obs[:7].astype(float).tolist()
        linear, _ = inner.client.calculateJacobian(inner.robot, 6, [0.0, 0.0, 0.0], q, [0.0] * 7, [0.0] * 7)
        jac = np.array(linear)
        error = obs[kuka.TARGET].astype(float) - obs[kuka.EE].astype(float)
        v = jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(3), gain * error)
        return v / max(1.0, np.max(np.abs(v) / high))  # scale down, keeping the direction

    return policy


def test_kuka_targets_are_reachable_and_idling_does_not_solve():
    solved = task_spec("robopg/KukaReach-v0").solved_return
    assert mean_return("robopg/KukaReach-v0", resolved_rate) > solved
    assert mean_return("robopg/KukaReach-v0", zero) < 3 * solved
    assert mean_return("robopg/KukaReach-v0", uniform) < 3 * solved


@pytest.mark.parametrize("corner", [(0.35, -0.35, 0.2), (0.65, 0.35, 0.7), (0.65, -0.35, 0.2)])
def test_kuka_reaches_the_corners_of_the_target_box(corner):
    env = gym.make("robopg/KukaReach-v0", target=corner)
    policy = resolved_rate(env)
    obs, _ = env.reset(seed=0)
    for _ in range(task_spec("robopg/KukaReach-v0").max_episode_steps):
        obs, *_ = env.step(policy(obs).astype(np.float32))
    assert np.linalg.norm(obs[kuka.EE] - obs[kuka.TARGET]) < 0.01
    env.close()


# An open-loop sine gait (amplitudes, phases and offsets per joint, in units of the torque limit,
# and a frequency in Hz) found by a short cross-entropy search: the runner can run.
GAIT = np.array([
    1.41, 1.07, 0.89, 0.59, 1.11, 0.76, -1.62, 0.31, -0.83, -0.17, -0.5, -0.45,
    0.5, -0.35, 0.21, -0.17, 0.23, -0.45, 2.4,
])  # fmt: skip


def test_half_cheetah_runs_forward_with_a_gait_and_not_without():
    env = gym.make("robopg/HalfCheetah-v0")
    high = env.action_space.high
    amp, phase, offset, freq = np.clip(GAIT[:6], 0, 1.5), GAIT[6:12], GAIT[12:18], GAIT[18]
    steps = 250
    env.reset(seed=0)
    gait = [np.clip(offset + amp * np.sin(2 * np.pi * freq * t / 50 + phase), -1, 1) * high for t in range(steps)]
    gait_return = sum(env.step(action.astype(np.float32))[1] for action in gait)
    env.reset(seed=0)
    idle_return = sum(env.step(np.zeros(6, np.float32))[1] for _ in range(steps))
    assert gait_return > 1.4 * steps  # over 1.4 m/s
    assert abs(idle_return) < 0.1 * steps
    env.close()
