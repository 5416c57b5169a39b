"""The PyBullet env of a declared task (:mod:`sim.declared`): the robot's own URDF or MJCF, its actuators and
observation terms, with the randomization, latency, noise and ``set_state`` of every robopg task.

Nominal viscous damping and Coulomb friction of the joints are the model file's (``<dynamics damping=...
friction=...>`` in URDF); the dynamics scales multiply them, on the passive joints too. Joints that are not
actuated swing freely (their default motor is switched off). Coulomb friction acts on torque joints only:
a velocity or position servo's motor is the joint's one motor, and it holds its joint itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from sim.declared import AXES, Declaration, DeclarationError
from sim.envs.base import Camera, PyBulletEnv
from sim.randomization import Dynamics

_CONTROL = {"torque": pybullet.TORQUE_CONTROL, "velocity": pybullet.VELOCITY_CONTROL,
            "position": pybullet.POSITION_CONTROL}


class DeclaredEnv(PyBulletEnv):
    """A declared task's env; ``gym.make(id)`` passes the declaration (``sim.declared.load_declaration``).

    Options as every robopg task's (``init_range``, ``dynamics``) and, for a task with a target, ``target``
    (a point in the declared box; ``None`` draws one per episode)."""

    def __init__(self, declaration: Declaration, **kwargs: Any) -> None:
        self.declaration = declaration
        self.task = declaration.spec()
        self.physics_dt = 1.0 / (declaration.control_hz * declaration.substeps)
        cam = declaration.camera
        self.camera = Camera(distance=cam.distance, yaw=cam.yaw, pitch=cam.pitch, target=cam.target)
        self.extra_options = {"target": None} if declaration.target else {}
        hz = declaration.control_hz
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": int(hz) if float(hz).is_integer() else hz}
        super().__init__(**kwargs)

    # ----- model --------------------------------------------------------------------------------

    def _load(self, client: BulletClient) -> None:
        d = self.declaration
        if d.model.suffix.lower() == ".urdf":
            bodies: tuple[int, ...] = (client.loadURDF(str(d.model), useFixedBase=d.fixed_base),)
        else:
            bodies = tuple(client.loadMJCF(str(d.model)))
        joint_index = {body: self._joint_names(client, body) for body in bodies}
        first = d.actuators[0].joint
        self.robot = next((body for body, names in joint_index.items() if first in names), bodies[0])
        names = joint_index[self.robot]
        links = {client.getBodyInfo(self.robot)[0].decode(): -1} | {
            client.getJointInfo(self.robot, j)[12].decode(): j for j in range(client.getNumJoints(self.robot))}

        def joint(name: str, where: str) -> int:
            if name not in names:
                raise DeclarationError(f"{where}: joint {name!r} is not in {d.model.name} "
                                       f"(movable joints: {', '.join(sorted(names)) or 'none'})")
            return names[name]

        self.joints = tuple(joint(a.joint, "actuator") for a in d.actuators)
        self._modes = [a.mode for a in d.actuators]
        self._initial = [(joint(i.joint, "initial"), i) for i in d.initial]
        self._terms: list[tuple[str, int, str]] = []  # (quantity, joint or link index, axes)
        for o in d.observations:
            if o.quantity == "position":
                if o.link not in links:
                    raise DeclarationError(f"observation position: link {o.link!r} is not in {d.model.name} "
                                           f"(links: {', '.join(sorted(links))})")
                self._terms.append((o.quantity, links[o.link], o.axes))
            else:
                index = joint(o.joint, f"observation {o.quantity}") if o.joint is not None else -1
                self._terms.append((o.quantity, index, o.axes))
        self._movable = tuple(names.values())
        self._passive = tuple(j for j in self._movable if j not in self.joints)
        for j in self._passive:  # free to swing: no default velocity motor
            client.setJointMotorControl2(self.robot, j, client.VELOCITY_CONTROL, force=0.0)
        info = {j: client.getJointInfo(self.robot, j) for j in self._movable}
        self.nominal_joint_damping = tuple(info[j][6] for j in self.joints)
        self.nominal_joint_friction = tuple(info[j][7] if m == "torque" else 0.0 for j, m in zip(
            self.joints, self._modes, strict=True))
        self._passive_damping = tuple(info[j][6] for j in self._passive)
        self._target = np.zeros(len(d.target.axes)) if d.target else np.zeros(0)
        self._marker = -1
        if d.target is not None:
            shape = client.createVisualShape(client.GEOM_SPHERE, radius=0.01, rgbaColor=(0.9, 0.2, 0.2, 1.0))
            self._marker = client.createMultiBody(baseMass=0.0, baseVisualShapeIndex=shape)

    @staticmethod
    def _joint_names(client: BulletClient, body: int) -> dict[str, int]:
        """The body's movable (revolute and prismatic) joints by name."""
        movable = (pybullet.JOINT_REVOLUTE, pybullet.JOINT_PRISMATIC)
        infos = (client.getJointInfo(body, j) for j in range(client.getNumJoints(body)))
        return {info[1].decode(): info[0] for info in infos if info[2] in movable}

    # ----- actuation and dynamics ----------------------------------------------------------------

    def _apply_action(self, applied: np.ndarray) -> None:
        for j, actuator, value in zip(self.joints, self.declaration.actuators, applied, strict=True):
            if actuator.mode == "torque":
                self.client.setJointMotorControl2(self.robot, j, pybullet.TORQUE_CONTROL, force=float(value))
            elif actuator.mode == "velocity":
                self.client.setJointMotorControl2(self.robot, j, pybullet.VELOCITY_CONTROL,
                                                  targetVelocity=float(value), force=actuator.max_force)
            else:
                self.client.setJointMotorControl2(self.robot, j, pybullet.POSITION_CONTROL, targetPosition=float(value),
                                                  force=actuator.max_force, positionGain=actuator.position_gain,
                                                  velocityGain=actuator.velocity_gain)

    def _set_joint_friction(self, friction: np.ndarray) -> None:
        for j, mode, value in zip(self.joints, self._modes, friction, strict=True):
            if mode == "torque":
                self.client.setJointMotorControl2(self.robot, j, pybullet.VELOCITY_CONTROL, targetVelocity=0.0,
                                                  force=float(value))

    def _apply_dynamics(self, d: Dynamics) -> None:
        super()._apply_dynamics(d)
        for j, damping in zip(self._passive, self._passive_damping, strict=True):
            self.client.changeDynamics(self.robot, j, jointDamping=damping * d.damping_scale)

    # ----- state and observation ------------------------------------------------------------------

    def _parse_task_option(self, key: str, value: Any) -> Any:
        box = self.declaration.target
        assert box is not None  # the only extra option, declared only with a target
        if value is None:
            return None
        point = np.asarray(value, dtype=np.float64)
        if point.shape != (len(box.axes),) or not np.all((point >= box.low) & (point <= box.high)):
            raise ValueError(f"target must be None or a point of {len(box.axes)} values within {list(box.low)} .. "
                             f"{list(box.high)}, got {value!r}")
        return point

    def _reset_state(self, init_range: float) -> None:
        rng = self.np_random
        for j in self._movable:
            self.client.resetJointState(self.robot, j, 0.0, 0.0)
        for j, i in self._initial:
            position = i.position + rng.uniform(-1.0, 1.0) * i.position_spread * init_range
            velocity = i.velocity + rng.uniform(-1.0, 1.0) * i.velocity_spread * init_range
            self.client.resetJointState(self.robot, j, position, velocity)
        box = self.declaration.target
        if box is not None:
            fixed = self._task_options["target"]
            self._set_target(rng.uniform(box.low, box.high) if fixed is None else fixed.copy())

    def _set_target(self, target: np.ndarray) -> None:
        self._target = target
        box = self.declaration.target
        assert box is not None
        position = [0.0, 0.0, 0.0]
        for axis, value in zip(box.axes, target, strict=True):
            position[AXES.index(axis)] = float(value)
        self.client.resetBasePositionAndOrientation(self._marker, position, (0, 0, 0, 1))

    def _observe(self) -> np.ndarray:
        states = {j: s for j, s in zip(self._movable, self._get_joint_states(self.robot, self._movable), strict=True)}
        values: list[float] = []
        for quantity, index, axes in self._terms:
            match quantity:
                case "angle":
                    values.append(states[index][0])
                case "cos_sin":
                    values += [math.cos(states[index][0]), math.sin(states[index][0])]
                case "velocity":
                    values.append(states[index][1])
                case "position":
                    frame = (self.client.getBasePositionAndOrientation(self.robot)[0] if index == -1 else
                             self.client.getLinkState(self.robot, index, computeForwardKinematics=True)[4])
                    values += [frame[AXES.index(axis)] for axis in axes]
                case _:
                    values += self._target.tolist()
        return np.array(values)

    def _restore_observed_state(self, obs: np.ndarray) -> None:
        positions: dict[int, float] = {}
        velocities: dict[int, float] = {}
        at = 0
        for (quantity, index, _), names in zip(self._terms, self._term_sizes(), strict=True):
            chunk = obs[at:at + names]
            at += names
            if quantity == "angle":
                positions[index] = float(chunk[0])
            elif quantity == "cos_sin":
                positions[index] = math.atan2(chunk[1], chunk[0])
            elif quantity == "velocity":
                velocities[index] = float(chunk[0])
            elif quantity == "target":
                self._set_target(np.array(chunk, np.float64))
        unknown = [j for j in self._movable if j not in positions or j not in velocities]
        if unknown:
            return super()._restore_observed_state(obs)  # refuses: the observation does not determine the state
        for j in self._movable:
            self.client.resetJointState(self.robot, j, positions[j], velocities[j])

    def _term_sizes(self) -> list[int]:
        axes = self.declaration.target.axes if self.declaration.target else AXES
        return [len(o.names(axes)) for o in self.declaration.observations]
