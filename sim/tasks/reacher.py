"""Two-link planar reacher: names, bounds, reward and termination, numpy only.

Move the fingertip of a 2-link arm (links 0.1 m and 0.11 m to the fingertip, horizontal plane)
to a target drawn anew each episode. Actions are the two joint torques in N·m.

Reward per step: ``−‖fingertip − target‖ − 0.05 · Σ (τ_i / τ_max)²`` (metres; the control
weight is per unit of normalized torque), computed from ``next_obs`` and the action alone. The
episode never terminates early; it ends by time limit after 150 steps (3 s).
"""

from __future__ import annotations

import numpy as np

from sim.spec import symmetric_task_spec
from sim.tasks.common import never_terminates, reach_reward

ENV_ID = "robopg/Reacher2D-v0"
ENTRY_POINT = "sim.envs.reacher:Reacher2DEnv"

CONTROL_HZ = 50.0
MAX_EPISODE_STEPS = 150
MAX_TORQUE = 0.05  # N·m: about 35 rad/s² at the shoulder of this 40 g arm
CONTROL_COST = 0.05
LINK_LENGTHS = (0.1, 0.11)  # shoulder to elbow, elbow to fingertip (m)
TARGET_RADIUS = (0.02, 0.2)  # targets are drawn uniformly over this annulus (m)

OBS_NAMES = (
    "shoulder_cos", "shoulder_sin", "elbow_cos", "elbow_sin",
    "shoulder_velocity", "elbow_velocity",
    "target_x", "target_y", "fingertip_x", "fingertip_y",
)  # fmt: skip
ACTION_NAMES = ("shoulder_torque", "elbow_torque")
TARGET = slice(6, 8)
FINGERTIP = slice(8, 10)
_HIGH = np.full(2, MAX_TORQUE)


def reward(obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    """Negative fingertip-to-target distance minus a control cost; vectorized. ``obs`` is unused."""
    return reach_reward(next_obs, action, tip=FINGERTIP, target=TARGET, high=_HIGH, control_cost=CONTROL_COST)


# Never terminates: a reach episode runs to its time limit.
terminated = never_terminates

SPEC = symmetric_task_spec(
    ENV_ID, OBS_NAMES, ACTION_NAMES, (MAX_TORQUE, MAX_TORQUE), control_hz=CONTROL_HZ,
    max_episode_steps=MAX_EPISODE_STEPS, solved_return=-7.0, reward=reward, terminated=terminated,
)
