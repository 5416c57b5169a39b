"""Cart-pole swing-up and balance on PyBullet: ``robopg/CartPoleSwingUp-v0``, ``robopg/CartPoleBalance-v0``.

The model is ``cartpole.urdf`` from ``pybullet_data`` (a 1 kg cart on a prismatic rail and a
0.1 kg, 1 m pole on a hinge). The action is the horizontal force on the cart in newtons. Reward,
termination and names are in :mod:`sim.tasks.cartpole`.
"""

from __future__ import annotations

import math

import numpy as np
from pybullet_utils.bullet_client import BulletClient

from sim.envs.base import Camera, PyBulletEnv
from sim.randomization import Dynamics
from sim.tasks import cartpole, cartpole_balance

SLIDER, HINGE = 0, 1


class CartPoleSwingUpEnv(PyBulletEnv):
    """Swing the pole up from hanging and balance it, pushing the cart within ±2.4 m.

    Initial state (scaled by ``init_range``): cart position and pole angle uniform within
    ±0.05 m and ±0.1 rad of (0, π), velocities within ±0.05.
    """

    task = cartpole.SPEC
    initial_angle = math.pi  # hanging down
    physics_dt = 0.005  # 4 substeps per 50 Hz control step
    camera = Camera(distance=4.5, yaw=0.0, pitch=-5.0, target=(0.0, 0.0, 0.0))
    # Small but non-zero so the damping and friction scales have something to act on.
    nominal_joint_damping = (0.05,)  # N·s/m on the cart
    nominal_joint_friction = (0.05,)  # N of dry friction on the cart
    # Pole hinge damping (N·m·s/rad); the pole is not actuated, so it is set here and scaled too.
    pole_damping = 0.0005

    def _load(self, client: BulletClient) -> None:
        self.robot = client.loadURDF("cartpole.urdf", useFixedBase=True)
        self.joints = (SLIDER,)
        # The pole swings freely: no default velocity motor on the hinge.
        client.setJointMotorControl2(self.robot, HINGE, client.VELOCITY_CONTROL, force=0.0)

    def _apply_dynamics(self, d: Dynamics) -> None:
        super()._apply_dynamics(d)
        self.client.changeDynamics(self.robot, HINGE, jointDamping=self.pole_damping * d.damping_scale)

    def _reset_state(self, init_range: float) -> None:
        rng = self.np_random
        x, theta, x_dot, theta_dot = rng.uniform(-1.0, 1.0, 4) * init_range * np.array([0.05, 0.1, 0.05, 0.05])
        self._reset_joints((SLIDER, HINGE), (x, self.initial_angle + theta), (x_dot, theta_dot))

    def _observe(self) -> np.ndarray:
        (x, x_dot, *_), (theta, theta_dot, *_) = self._get_joint_states(self.robot, (SLIDER, HINGE))
        return np.array([x, x_dot, math.cos(theta), math.sin(theta), theta_dot])

    def _restore_observed_state(self, obs: np.ndarray) -> None:
        x, x_dot, cos_theta, sin_theta, theta_dot = obs
        self._reset_joints((SLIDER, HINGE), (x, math.atan2(sin_theta, cos_theta)), (x_dot, theta_dot))


class CartPoleBalanceEnv(CartPoleSwingUpEnv):
    """Keep the pole up: the swing-up with the pole starting within ±0.1 rad (times ``init_range``) of upright."""

    task = cartpole_balance.SPEC
    initial_angle = 0.0
