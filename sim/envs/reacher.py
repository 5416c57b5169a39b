"""Two-link planar reacher on PyBullet: ``robopg/Reacher2D-v0``.

The arm and arena come from ``pybullet_data``'s ``mjcf/reacher.xml`` (the MuJoCo Gym reacher),
loaded with ``loadMJCF``. Bullet ignores that file's actuators and joint armature, so the torques
are in newton-metres for the bare 40 g arm. The file's target body (two slide joints) is replaced
by a marker without physics. Reward and names are in :mod:`sim.tasks.reacher`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
from pybullet_utils.bullet_client import BulletClient

from sim.envs.base import Camera, PyBulletEnv, parse_target
from sim.tasks import reacher

SHOULDER, ELBOW = 0, 2  # joint indices in the loaded arm (the others are fixed frames)


class Reacher2DEnv(PyBulletEnv):
    """Bring the fingertip to a random target in the plane.

    Initial state (scaled by ``init_range``): joint angles uniform within ±0.1 rad of straight
    along +x, velocities within ±0.005 rad/s. The target is drawn uniformly over the annulus
    0.02–0.2 m around the shoulder each episode, independent of ``init_range``; the ``target``
    option fixes it to an (x, y) instead (``None`` draws again).
    """

    task = reacher.SPEC
    physics_dt = 0.005
    camera = Camera(distance=0.55, yaw=0.0, pitch=-89.0, target=(0.0, 0.0, 0.0))
    extra_options: ClassVar[Mapping[str, Any]] = MappingProxyType({"target": None})
    nominal_joint_damping = (0.002, 0.002)  # N·m·s/rad: a velocity of ~25 rad/s at full torque
    nominal_joint_friction = (0.0005, 0.0005)  # N·m, 1 % of the torque limit

    def _load(self, client: BulletClient) -> None:
        *arena, self.robot, target_body = client.loadMJCF("mjcf/reacher.xml")
        client.removeBody(target_body)
        self.joints = (SHOULDER, ELBOW)
        # Nothing in this task touches anything: no collision checks at all.
        for body in (*arena, self.robot):
            for link in range(-1, client.getNumJoints(body)):
                client.setCollisionFilterGroupMask(body, link, 0, 0)
        marker = client.createVisualShape(client.GEOM_SPHERE, radius=0.009, rgbaColor=(0.9, 0.2, 0.2, 1.0))
        self._marker = client.createMultiBody(baseMass=0.0, baseVisualShapeIndex=marker, basePosition=(0, 0, 0.01))
        self._target = np.zeros(2)

    def _parse_task_option(self, key: str, value: Any) -> Any:
        return parse_target(value, shoulder=(0.0, 0.0), reach=sum(reacher.LINK_LENGTHS))

    def _reset_state(self, init_range: float) -> None:
        rng = self.np_random
        angles = rng.uniform(-0.1, 0.1, 2) * init_range
        velocities = rng.uniform(-0.005, 0.005, 2) * init_range
        self._reset_joints(self.joints, angles, velocities)
        fixed = self._task_options["target"]
        if fixed is None:
            low, high = reacher.TARGET_RADIUS
            # Uniform over the annulus' area, not its radius.
            radius = math.sqrt(rng.uniform(low**2, high**2))
            angle = rng.uniform(-math.pi, math.pi)
            self._target = np.array([radius * math.cos(angle), radius * math.sin(angle)])
        else:
            self._target = fixed.copy()
        self.client.resetBasePositionAndOrientation(self._marker, (*self._target, 0.01), (0, 0, 0, 1))

    def _observe(self) -> np.ndarray:
        (q0, qd0, *_), (q1, qd1, *_) = self._get_joint_states(self.robot, self.joints)
        l0, l1 = reacher.LINK_LENGTHS
        # The fingertip by forward kinematics of the file's geometry (shoulder at the origin).
        tip_x = l0 * math.cos(q0) + l1 * math.cos(q0 + q1)
        tip_y = l0 * math.sin(q0) + l1 * math.sin(q0 + q1)
        return np.array(
            [math.cos(q0), math.sin(q0), math.cos(q1), math.sin(q1), qd0, qd1, *self._target, tip_x, tip_y]
        )

    def _restore_observed_state(self, obs: np.ndarray) -> None:
        cos0, sin0, cos1, sin1, qd0, qd1, target_x, target_y = obs[:8]
        self._reset_joints(self.joints, (math.atan2(sin0, cos0), math.atan2(sin1, cos1)), (qd0, qd1))
        self._target = np.array([target_x, target_y])
        self.client.resetBasePositionAndOrientation(self._marker, (*self._target, 0.01), (0, 0, 0, 1))
