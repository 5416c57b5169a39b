"""Half-cheetah on PyBullet: ``robopg/HalfCheetah-v0``.

The runner is ``pybullet_data``'s ``mjcf/half_cheetah.xml`` (the MuJoCo Gym cheetah as shipped
with Bullet) loaded with ``loadMJCF`` on ``plane.urdf``. Bullet's MJCF importer reads neither the
joints' damping nor their stiffness, yet without those springs the legs fold under the body: both
are applied here with the file's values (damping by Bullet, springs as a torque). Reward and
names are in :mod:`sim.tasks.half_cheetah`.
"""

from __future__ import annotations

import numpy as np
from pybullet_utils.bullet_client import BulletClient

from sim.envs.base import Camera, PyBulletEnv
from sim.tasks import half_cheetah

# The importer turns the root's x slide, z slide and pitch hinge into joints 0-2; the legs are
# every other joint after the torso's fixed frame.
ROOT_X, ROOT_Z, ROOT_PITCH = 0, 1, 2
LEG_JOINTS = (4, 6, 8, 10, 12, 14)
TORSO_HEIGHT = 0.7  # the torso's height in the file, where the root joints are zero
SPRING_STIFFNESS = np.array([240.0, 180.0, 120.0, 180.0, 120.0, 60.0])  # N·m/rad, rest angle 0


class HalfCheetahEnv(PyBulletEnv):
    """Run forward as fast as possible.

    Initial state (scaled by ``init_range``): torso height, pitch and leg angles uniform within
    ±0.1 of the file's pose, all velocities Gaussian with std 0.1 (as in Gym's cheetah).
    """

    task = half_cheetah.SPEC
    physics_dt = 0.005
    camera = Camera(distance=3.0, yaw=0.0, pitch=-10.0)
    nominal_joint_damping = (6.0, 4.5, 3.0, 4.5, 3.0, 1.5)  # the file's values, N·m·s/rad
    nominal_joint_friction = (0.5,) * 6  # N·m

    def _load(self, client: BulletClient) -> None:
        self._plane = client.loadURDF("plane.urdf")
        (self.robot,) = client.loadMJCF("mjcf/half_cheetah.xml")
        self.joints = LEG_JOINTS
        self._root = (ROOT_X, ROOT_Z, ROOT_PITCH)
        client.setJointMotorControlArray(self.robot, self._root, client.VELOCITY_CONTROL, forces=[0.0] * 3)
        self._x_before = 0.0

    def _randomized_bodies(self) -> tuple[int, ...]:
        return (self.robot, self._plane)

    def _apply_action(self, applied: np.ndarray) -> None:
        angles = np.array([state[0] for state in self._get_joint_states(self.robot, self.joints)])
        super()._apply_action(applied - SPRING_STIFFNESS * angles)

    def _reset_state(self, init_range: float) -> None:
        rng = self.np_random
        n = len(self._root) + len(self.joints)
        positions = rng.uniform(-0.1, 0.1, n) * init_range
        positions[0] = 0.0  # where along the track it starts does not matter
        velocities = rng.normal(0.0, 0.1, n) * init_range
        self._reset_joints((*self._root, *self.joints), positions, velocities)
        self._x_before = None

    def _observe(self) -> np.ndarray:
        states = self._get_joint_states(self.robot, (*self._root, *self.joints))
        q = np.array([s[0] for s in states])
        qd = np.array([s[1] for s in states])
        # Forward velocity as displacement over the control step (at reset: the instantaneous one).
        vx = qd[0] if self._x_before is None else (q[0] - self._x_before) / self.control_dt
        self._x_before = q[0]
        return np.concatenate(([q[1] + TORSO_HEIGHT], q[2:], [vx], qd[1:]))

    def _camera_target(self) -> tuple[float, float, float]:
        return (float(self._x_before or 0.0), 0.0, 0.4)
