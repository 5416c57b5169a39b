"""Cart-pole swing-up: what the robot side needs (names, bounds, reward, termination), numpy only.

The pole starts hanging down; the agent pushes the cart along a bounded track to swing the pole
up and balance it. θ is the pole angle from upright (θ = 0 up, θ = π hanging down), positive when
the pole tip leans towards +x.

Reward per step, in [0, 1], smooth, in the style of DeepMind Control's ``cartpole`` swing-up:

    upright        = (cos θ + 1) / 2                          1 upright, 0 hanging
    centered       = (1 + tol(x, 2 m)) / 2                    1 at the track centre, 0.55 at 2 m
    small_control  = (4 + (1 − (u / F)²)) / 5                 1 at zero force, 0.8 at full force F = 10 N
    small_velocity = (1 + tol(θ̇, 5 rad/s)) / 2                1 at rest, 0.55 at 5 rad/s
    reward = upright · centered · small_control · small_velocity

where ``tol(v, m) = 10^(−(v/m)²)``. Upright dominates; the other factors only halve it at worst,
so swinging up is always worth it and a calm, centred, frugal balance earns the most.
The episode terminates when the cart leaves the track (|x| > 2.4 m): the remaining rewards
(all ≥ 0) are lost, which is the penalty.
"""

from __future__ import annotations

import numpy as np

from sim.spec import symmetric_task_spec
from sim.tasks.common import as_float64, gaussian_tolerance

ENV_ID = "robopg/CartPoleSwingUp-v0"
ENTRY_POINT = "sim.envs.cartpole:CartPoleSwingUpEnv"

CONTROL_HZ = 50.0
MAX_EPISODE_STEPS = 250  # 5 s
MAX_FORCE = 10.0  # N; swings up in about two swings (1.5–2 s) within ±2 m of travel
TRACK_LIMIT = 2.4  # m, from the track centre

OBS_NAMES = ("cart_position", "cart_velocity", "pole_cos", "pole_sin", "pole_angular_velocity")
ACTION_NAMES = ("cart_force",)


def reward(obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    """Per-step reward in [0, 1]; vectorized over leading dimensions. ``obs`` is unused."""
    next_obs = as_float64(next_obs)
    x, cos_theta, theta_dot = next_obs[..., 0], next_obs[..., 2], next_obs[..., 4]
    u = np.clip(as_float64(action)[..., 0], -MAX_FORCE, MAX_FORCE) / MAX_FORCE
    upright = (np.clip(cos_theta, -1.0, 1.0) + 1.0) / 2.0
    centered = (1.0 + gaussian_tolerance(x, 2.0)) / 2.0
    small_control = (4.0 + (1.0 - np.square(u))) / 5.0
    small_velocity = (1.0 + gaussian_tolerance(theta_dot, 5.0)) / 2.0
    return upright * centered * small_control * small_velocity


def terminated(next_obs: np.ndarray) -> np.ndarray:
    """True where the cart has left the track."""
    return np.abs(as_float64(next_obs)[..., 0]) > TRACK_LIMIT


SPEC = symmetric_task_spec(
    ENV_ID, OBS_NAMES, ACTION_NAMES, (MAX_FORCE,), control_hz=CONTROL_HZ, max_episode_steps=MAX_EPISODE_STEPS,
    solved_return=150.0, reward=reward, terminated=terminated,
)
