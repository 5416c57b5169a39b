"""The Furuta pendulum's reward and termination: ``reward(obs, action, next_obs)`` and ``terminated(next_obs)``,
vectorized over leading batch dimensions, numpy only (the robot side runs them on sensor data too).

The observation, as ``robot.toml`` declares it: cos and sin of the arm angle θ, cos and sin of the pendulum
angle α (0 upright), θ̇ and α̇ (rad/s). The action is the arm motor's torque in N·m.

Reward per step, in [0, 1], in the style of the cart-pole's (DeepMind Control's ``cartpole``):

    upright        = (cos α + 1) / 2                  1 upright, 0 hanging
    centered       = (1 + tol(θ, π/2)) / 2            1 with the arm at 0, 0.55 a quarter turn away
    small_control  = (4 + (1 − (u / U)²)) / 5         1 at zero torque, 0.8 at full torque U
    small_velocity = (1 + tol(α̇, 5 rad/s)) / 2        1 at rest, 0.55 at 5 rad/s
    reward = upright · centered · small_control · small_velocity

where ``tol(v, m) = 10^(−(v/m)²)``. The episode ends when the pendulum falls below the horizontal.
"""

from __future__ import annotations

import numpy as np

MAX_TORQUE = 0.1  # N·m, the actuator's limit in robot.toml


def _tolerance(x: np.ndarray, margin: float) -> np.ndarray:
    """1 at 0, 0.1 at ``|x| = margin``, smooth and positive."""
    return np.power(10.0, -np.square(x / margin))


def balance(obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    """Per-step reward in [0, 1]; ``obs`` is unused."""
    next_obs = np.asarray(next_obs, np.float64)
    arm = np.arctan2(next_obs[..., 1], next_obs[..., 0])
    pendulum_cos, pendulum_velocity = next_obs[..., 2], next_obs[..., 5]
    u = np.clip(np.asarray(action, np.float64)[..., 0], -MAX_TORQUE, MAX_TORQUE) / MAX_TORQUE
    upright = (np.clip(pendulum_cos, -1.0, 1.0) + 1.0) / 2.0
    centered = (1.0 + _tolerance(arm, np.pi / 2)) / 2.0
    small_control = (4.0 + (1.0 - np.square(u))) / 5.0
    small_velocity = (1.0 + _tolerance(pendulum_velocity, 5.0)) / 2.0
    return upright * centered * small_control * small_velocity


def fallen(next_obs: np.ndarray) -> np.ndarray:
    """True where the pendulum is below the horizontal."""
    return np.asarray(next_obs, np.float64)[..., 2] < 0.0
