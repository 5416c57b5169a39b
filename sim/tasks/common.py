"""Small numpy helpers shared by the tasks' pure reward and termination functions."""

from __future__ import annotations

import numpy as np

LN10 = float(np.log(10.0))


def as_float64(x: np.ndarray) -> np.ndarray:
    """Rewards are computed in float64 whatever the observation dtype, so sim and robot agree to the bit."""
    return np.asarray(x, dtype=np.float64)


def gaussian_tolerance(x: np.ndarray, margin: float) -> np.ndarray:
    """1 at ``x = 0``, 0.1 at ``|x| = margin``, smooth and positive everywhere (DM control's gaussian sigmoid)."""
    return np.exp(-LN10 * np.square(x / margin))


def normalized_control_cost(action: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Σ (a_i / high_i)² over the last axis, with the action clipped to its bounds first.

    Dividing by each actuator's limit makes the weight dimensionless and the same for joints of
    different strength.
    """
    a = np.clip(as_float64(action), -high, high) / high
    return np.sum(np.square(a), axis=-1)


def reach_reward(
    next_obs: np.ndarray, action: np.ndarray, *, tip: slice, target: slice, high: np.ndarray, control_cost: float
) -> np.ndarray:
    """The reach tasks' reward: ``−‖tip − target‖ − control_cost · Σ (a_i / high_i)²``, vectorized.

    ``tip`` and ``target`` are where the two points lie in the observation (metres).
    """
    next_obs = as_float64(next_obs)
    distance = np.linalg.norm(next_obs[..., tip] - next_obs[..., target], axis=-1)
    return -distance - control_cost * normalized_control_cost(action, high)


def never_terminates(next_obs: np.ndarray) -> np.ndarray:
    """For tasks that run to their time limit: False for every observation in the batch."""
    return np.zeros(np.shape(next_obs)[:-1], dtype=bool)
