"""Half-cheetah locomotion: names, bounds, reward and termination, numpy only.

A planar two-legged runner (torso pitch and height free, six leg joints) must run forward (+x).
Actions are the six joint torques in N·m, bounded by the model's motor gears.

Reward per step: ``torso_vx − 0.1 · Σ (τ_i / τ_max,i)²``, where ``torso_vx`` (an observation) is
the torso's forward displacement over the last control step divided by its duration, so a policy
cannot earn by vibrating. The episode never terminates early; it ends by time limit after 1000
steps (20 s).
"""

from __future__ import annotations

import numpy as np

from sim.spec import symmetric_task_spec
from sim.tasks.common import as_float64, never_terminates, normalized_control_cost

ENV_ID = "robopg/HalfCheetah-v0"
ENTRY_POINT = "sim.envs.half_cheetah:HalfCheetahEnv"

CONTROL_HZ = 50.0
MAX_EPISODE_STEPS = 1000
LEGS = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
MAX_TORQUE = (120.0, 90.0, 60.0, 120.0, 60.0, 30.0)  # N·m, the gears of the model's motors
CONTROL_COST = 0.1

OBS_NAMES = (
    "torso_z", "torso_pitch", *(f"{leg}_angle" for leg in LEGS),
    "torso_vx", "torso_vz", "torso_pitch_rate", *(f"{leg}_velocity" for leg in LEGS),
)  # fmt: skip
ACTION_NAMES = tuple(f"{leg}_torque" for leg in LEGS)
FORWARD_VELOCITY = OBS_NAMES.index("torso_vx")
_HIGH = np.array(MAX_TORQUE)


def reward(obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    """Forward velocity minus a control cost; vectorized. ``obs`` is unused."""
    return as_float64(next_obs)[..., FORWARD_VELOCITY] - CONTROL_COST * normalized_control_cost(action, _HIGH)


# Never terminates: the runner may fall and get up again within its time limit.
terminated = never_terminates

# solved_return: 3 m/s on average; an open-loop sine gait tuned by CEM reaches about 2 m/s.
SPEC = symmetric_task_spec(
    ENV_ID, OBS_NAMES, ACTION_NAMES, MAX_TORQUE, control_hz=CONTROL_HZ, max_episode_steps=MAX_EPISODE_STEPS,
    solved_return=3000.0, reward=reward, terminated=terminated,
)
