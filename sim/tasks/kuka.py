"""KUKA LBR iiwa reach: names, bounds, reward and termination, numpy only.

Drive the end effector (the flange of link 7) of a 7-joint arm to a target point drawn anew each
episode. Actions are joint velocity set-points in rad/s, the interface a velocity-controlled
drive takes over a serial link; observations are what its encoders and forward kinematics give.

Reward per step: ``−‖ee − target‖ − 0.01 · Σ (v_i / v_max,i)²`` (metres; the control weight is
per unit of normalized velocity), computed from ``next_obs`` and the action alone. The episode
never terminates early; it ends by time limit after 200 steps (8 s at 25 Hz), so a policy must
also hold the target.
"""

from __future__ import annotations

import numpy as np

from sim.spec import symmetric_task_spec
from sim.tasks.common import never_terminates, reach_reward

ENV_ID = "robopg/KukaReach-v0"
ENTRY_POINT = "sim.envs.kuka:KukaReachEnv"

CONTROL_HZ = 25.0
MAX_EPISODE_STEPS = 200
N_JOINTS = 7
MAX_VELOCITY = (1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.5)  # rad/s, below the iiwa's rated joint speeds
CONTROL_COST = 0.01

JOINT_NAMES = tuple(f"joint{i}" for i in range(1, N_JOINTS + 1))
OBS_NAMES = (
    *(f"{j}_position" for j in JOINT_NAMES),
    *(f"{j}_velocity" for j in JOINT_NAMES),
    "ee_x", "ee_y", "ee_z",
    "target_x", "target_y", "target_z",
)  # fmt: skip
ACTION_NAMES = tuple(f"{j}_velocity_target" for j in JOINT_NAMES)
EE = slice(14, 17)
TARGET = slice(17, 20)
_HIGH = np.array(MAX_VELOCITY)


def reward(obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    """Negative end-effector-to-target distance minus a control cost; vectorized. ``obs`` is unused."""
    return reach_reward(next_obs, action, tip=EE, target=TARGET, high=_HIGH, control_cost=CONTROL_COST)


# Never terminates: the arm must reach and then hold until the time limit.
terminated = never_terminates

SPEC = symmetric_task_spec(
    ENV_ID, OBS_NAMES, ACTION_NAMES, MAX_VELOCITY, control_hz=CONTROL_HZ, max_episode_steps=MAX_EPISODE_STEPS,
    solved_return=-10.0, reward=reward, terminated=terminated,
)
