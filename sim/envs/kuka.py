"""KUKA LBR iiwa reach on PyBullet: ``robopg/KukaReach-v0``.

The arm is ``pybullet_data``'s ``kuka_iiwa/model.urdf`` (LBR iiwa 7, fixed base) on
``plane.urdf``. Each joint is a velocity-controlled drive, modelled as a computed-torque servo:
``τ = clip(M̂(q)·k·(v_set − v) + ĉ(q, v) + ĝ(q), ±τ_max)`` with the nominal model's inertia,
Coriolis and gravity terms, a bandwidth ``k`` of 30 rad/s and the iiwa 7's torque limits. The
drive tracks its set-point closely, yet a heavier arm, friction and damping it does not model
still show in the motion, as on a real arm. Reward and names are in :mod:`sim.tasks.kuka`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import pybullet_data
from pybullet_utils.bullet_client import BulletClient

from sim.envs.base import GRAVITY, Camera, PyBulletEnv, connect, parse_target
from sim.tasks import kuka

EE_LINK = 6  # lbr_iiwa_link_7, the flange
HOME = np.array([0.0, 0.6, 0.0, -1.2, 0.0, 0.9, 0.0])  # elbow up, flange about 0.66 m in front, 0.54 m high
MAX_TORQUE = (176.0, 176.0, 110.0, 110.0, 110.0, 40.0, 40.0)  # N·m, LBR iiwa 7 R800 data sheet
SERVO_BANDWIDTH = 30.0  # rad/s: the drive removes a velocity error with a ~33 ms time constant
# Targets are drawn uniformly in this box (m, base frame): in front of the arm, inside its reach.
TARGET_LOW = np.array([0.35, -0.35, 0.2])
TARGET_HIGH = np.array([0.65, 0.35, 0.7])
# A fixed target must lie within MAX_REACH of the shoulder joint (m, base frame).
SHOULDER_POSITION = (0.0, 0.0, 0.36)
MAX_REACH = 0.85


class KukaReachEnv(PyBulletEnv):
    """Bring the flange to a random point in front of the arm and hold it there.

    Initial state (scaled by ``init_range``): joint angles uniform within ±0.1 rad of ``HOME``,
    velocities within ±0.01 rad/s. The target is drawn uniformly in the box ``TARGET_LOW`` to
    ``TARGET_HIGH`` each episode, independent of ``init_range``; the ``target`` option fixes it to
    an (x, y, z) instead (``None`` draws again).
    """

    task = kuka.SPEC
    physics_dt = 0.005  # 8 substeps per 25 Hz control step
    camera = Camera(distance=1.8, yaw=50.0, pitch=-25.0, target=(0.3, 0.0, 0.4))
    extra_options: ClassVar[Mapping[str, Any]] = MappingProxyType({"target": None})
    # N·m·s/rad. The URDF's 0.5 on every joint would be more than Bullet's explicit damping can
    # integrate stably on the light wrist links (damping · dt / inertia must stay well below 2).
    nominal_joint_damping = (0.5, 0.5, 0.2, 0.2, 0.01, 0.01, 0.0005)
    nominal_joint_friction = (1.0, 1.0, 0.3, 0.3, 0.02, 0.02, 0.001)  # N·m

    def _load(self, client: BulletClient) -> None:
        self._plane = client.loadURDF("plane.urdf")
        self.robot = client.loadURDF("kuka_iiwa/model.urdf", useFixedBase=True)
        self.joints = tuple(range(kuka.N_JOINTS))
        marker = client.createVisualShape(client.GEOM_SPHERE, radius=0.03, rgbaColor=(0.1, 0.8, 0.2, 0.8))
        self._marker = client.createMultiBody(baseMass=0.0, baseVisualShapeIndex=marker)
        self._target = np.zeros(3)
        # The drive's own model of the arm, in a client of its own that is never stepped or
        # randomized (Bullet caches a body's inverse-dynamics model at its first use, so the
        # simulated arm itself would give whichever masses it had then).
        self._drive_model = connect()
        self._drive_model.setGravity(0.0, 0.0, -GRAVITY)
        self._drive_robot = self._drive_model.loadURDF(
            os.path.join(pybullet_data.getDataPath(), "kuka_iiwa/model.urdf"), useFixedBase=True
        )
        self._max_torque = np.array(MAX_TORQUE)

    def _randomized_bodies(self) -> tuple[int, ...]:
        return (self.robot, self._plane)

    def _apply_action(self, applied: np.ndarray) -> None:
        states = self._get_joint_states(self.robot, self.joints)
        q = [s[0] for s in states]
        v = [s[1] for s in states]
        accel = (SERVO_BANDWIDTH * (applied - np.array(v))).tolist()
        # The drive's model is the nominal arm: it does not know the arm was made heavier or lighter.
        torque = np.array(self._drive_model.calculateInverseDynamics(self._drive_robot, q, v, accel))
        super()._apply_action(np.clip(torque, -self._max_torque, self._max_torque))

    def _parse_task_option(self, key: str, value: Any) -> Any:
        return parse_target(value, shoulder=SHOULDER_POSITION, reach=MAX_REACH)

    def _reset_state(self, init_range: float) -> None:
        rng = self.np_random
        angles = HOME + rng.uniform(-0.1, 0.1, kuka.N_JOINTS) * init_range
        velocities = rng.uniform(-0.01, 0.01, kuka.N_JOINTS) * init_range
        self._reset_joints(self.joints, angles, velocities)
        fixed = self._task_options["target"]
        self._target = rng.uniform(TARGET_LOW, TARGET_HIGH) if fixed is None else fixed.copy()
        self.client.resetBasePositionAndOrientation(self._marker, self._target.tolist(), (0, 0, 0, 1))

    def _observe(self) -> np.ndarray:
        states = self._get_joint_states(self.robot, self.joints)
        ee = self.client.getLinkState(self.robot, EE_LINK, computeForwardKinematics=True)[4]
        return np.array([*(s[0] for s in states), *(s[1] for s in states), *ee, *self._target])

    def close(self) -> None:
        if getattr(self, "_drive_model", None) is not None:
            self._drive_model.disconnect()
            self._drive_model = None
        super().close()
