"""What every PyBullet task shares: its own physics client, fixed substeps, domain randomization,
action latency, sensor noise, option handling and rendering.

A task subclass sets ``task`` (its :class:`~sim.spec.TaskSpec`) and ``physics_dt``, loads its model
once in :meth:`PyBulletEnv._load`, puts the robot in its initial state in
:meth:`PyBulletEnv._reset_state` and reads sensors in :meth:`PyBulletEnv._observe`. Reward and
termination are the spec's pure functions, evaluated on the same float32 observations a robot
would report, so simulation and hardware compute exactly the same thing.
"""

from __future__ import annotations

import math
import os
import tempfile
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pybullet
import pybullet_data
from pybullet_utils.bullet_client import BulletClient

from sim.envs.quiet import native_output_silenced
from sim.randomization import Dynamics, DynamicsDistribution, parse_dynamics, parse_init_range
from sim.spec import TaskSpec

GRAVITY = 9.81


def connect() -> BulletClient:
    """A physics server of its own, in this process, with no GUI (and without pybullet's chatter)."""
    with native_output_silenced():
        return BulletClient(connection_mode=pybullet.DIRECT)


def parse_target(value: Any, shoulder: tuple[float, ...], reach: float) -> np.ndarray | None:
    """The reach tasks' ``target`` option: ``None`` (a new target each episode) or a point within reach.

    ``shoulder`` is the point the arm reaches from, its length the target's (2 in the plane, 3 in space).
    """
    if value is None:
        return None
    target = np.asarray(value, dtype=np.float64)
    if target.shape != (len(shoulder),) or not np.all(np.isfinite(target)) or np.linalg.norm(target - shoulder) > reach:
        point = "(x, y)" if len(shoulder) == 2 else "(x, y, z)"
        raise ValueError(f"target must be None or a finite {point} within {reach} m of the shoulder, got {value!r}")
    return target


@dataclass(frozen=True)
class Camera:
    """An orbit camera around ``target`` (world frame, metres), angles in degrees."""

    distance: float
    yaw: float
    pitch: float
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    width: int = 320
    height: int = 240
    fov: float = 60.0


@dataclass(frozen=True)
class _LinkDynamics:
    body: int
    link: int
    mass: float
    inertia: tuple[float, float, float]
    lateral_friction: float


class PyBulletEnv(gym.Env[np.ndarray, np.ndarray], ABC):
    """Base of the robopg tasks. Not registered itself.

    Constructor keywords and ``reset(options=...)`` keys (given once, they persist for later
    resets until changed):

    - ``init_range``: float ≥ 0 scaling the random perturbation of the initial state (0 gives the
      nominal initial state; default 1).
    - ``dynamics``: dict for :func:`sim.randomization.parse_dynamics`, each key a fixed value or a
      ``(low, high)`` range sampled at every reset; a new dict replaces the previous one, keys left
      out are nominal, ``None`` or ``{}`` restores the nominal model.
    - any key in the subclass's ``extra_options`` (e.g. a fixed ``target``).

    Unknown keys or invalid values raise ``ValueError`` naming the key. The parameters drawn at the
    last reset are in ``env.unwrapped.dynamics``.

    The reward uses the noise-free observations and the commanded (clipped) action: sensor noise
    and latency perturb what the policy sees and does, not what the task asks for.
    """

    task: ClassVar[TaskSpec]
    physics_dt: ClassVar[float]
    camera: ClassVar[Camera] = Camera(distance=2.0, yaw=0.0, pitch=-20.0)
    # Task-specific option keys and their defaults.
    extra_options: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    # Viscous damping and Coulomb friction of the actuated joints in the nominal model, which the
    # damping and friction scales multiply (a model's own values are often zero).
    nominal_joint_damping: ClassVar[Sequence[float]] = ()
    nominal_joint_friction: ClassVar[Sequence[float]] = ()

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "task" in cls.__dict__:
            hz = cls.task.control_hz
            cls.metadata = {"render_modes": ["rgb_array"], "render_fps": int(hz) if float(hz).is_integer() else hz}

    def __init__(
        self,
        render_mode: str | None = None,
        init_range: float = 1.0,
        dynamics: Mapping[str, Any] | Dynamics | None = None,
        **task_options: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        spec = self.task
        self.control_dt = 1.0 / spec.control_hz
        self.substeps = round(self.control_dt / self.physics_dt)
        if not math.isclose(self.substeps * self.physics_dt, self.control_dt, rel_tol=1e-9):
            raise ValueError(f"control period {self.control_dt} s is not a multiple of physics_dt {self.physics_dt} s")

        self.action_space = gym.spaces.Box(
            np.array(spec.action_low, np.float32), np.array(spec.action_high, np.float32), dtype=np.float32
        )
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (spec.obs_dim,), np.float32)
        self._action_low = np.array(spec.action_low, np.float64)
        self._action_high = np.array(spec.action_high, np.float64)

        # Options are validated before anything is built, so a bad one cannot leak a client.
        self._init_range = 1.0
        self._dynamics_dist = DynamicsDistribution()
        self._task_options: dict[str, Any] = dict(self.extra_options)
        self._configure({"init_range": init_range, "dynamics": dynamics, **task_options})
        self.dynamics = Dynamics()

        self._client: BulletClient | None = connect()
        client = self._client
        client.setAdditionalSearchPath(pybullet_data.getDataPath())
        client.setGravity(0.0, 0.0, -GRAVITY)
        # Substeps are explicit stepSimulation calls: pybullet's own numSubSteps would apply motor
        # force limits (and so joint friction) once per substep at the full-step impulse.
        client.setPhysicsEngineParameter(fixedTimeStep=self.physics_dt, numSubSteps=1, deterministicOverlappingPairs=1)
        # BulletClient binds the client id on every attribute access; bind the hot calls once.
        self._step_simulation = client.stepSimulation
        self._set_motors = client.setJointMotorControlArray
        self._get_joint_states = client.getJointStates

        self.robot: int = -1
        self.joints: tuple[int, ...] = ()
        self._load(client)
        if len(self.joints) != spec.action_dim:
            raise RuntimeError(
                f"{type(self).__name__} actuates {len(self.joints)} joints but its spec names {spec.action_dim}"
            )
        self._links = self._capture_link_dynamics(client)
        self._initial_state = client.saveState()

        self._latency: deque[np.ndarray] = deque()
        self._obs = np.zeros(spec.obs_dim, np.float32)
        self._joint_friction = np.zeros(len(self.joints))

    # ----- for subclasses -----------------------------------------------------------------------

    @abstractmethod
    def _load(self, client: BulletClient) -> None:
        """Load the model once; set ``self.robot`` and ``self.joints`` (actuated, in action order)."""

    @abstractmethod
    def _reset_state(self, init_range: float) -> None:
        """Put the model in a (randomized, scaled by ``init_range``) initial state using ``self.np_random``."""

    @abstractmethod
    def _observe(self) -> np.ndarray:
        """The noise-free observation (float64), laid out as ``task.obs_names``."""

    def _restore_observed_state(self, obs: np.ndarray) -> None:
        """Put the model in the state ``obs`` (laid out as ``task.obs_names``) describes; tasks whose observation
        determines their state implement it (system identification replays logged trajectories from it)."""
        raise ValueError(f"{type(self).__name__}'s observation does not determine its state: it cannot be put in "
                         "an observed state")

    def _randomized_bodies(self) -> tuple[int, ...]:
        """Bodies whose link masses and contact friction the dynamics scales act on."""
        return (self.robot,)

    def _apply_action(self, applied: np.ndarray) -> None:
        """Send the actuator command for one physics substep (torques by default).

        Bullet clears applied joint torques after every step, so this runs before each substep.
        """
        self._set_motors(self.robot, self.joints, pybullet.TORQUE_CONTROL, forces=applied)

    def _set_joint_friction(self, friction: np.ndarray) -> None:
        """Coulomb joint friction as a velocity motor with target 0 whose force limit is the friction:
        it holds the joint still below that force and resists motion with it above."""
        zeros = [0.0] * len(self.joints)
        self._set_motors(self.robot, self.joints, pybullet.VELOCITY_CONTROL, targetVelocities=zeros, forces=friction)

    def _camera_target(self) -> tuple[float, float, float]:
        return self.camera.target

    def _reset_joints(self, joints: Sequence[int], positions: Sequence[float], velocities: Sequence[float]) -> None:
        """Set each of ``joints`` of the robot to its position and velocity (for :meth:`_reset_state`)."""
        for joint, q, qd in zip(joints, positions, velocities, strict=True):
            self.client.resetJointState(self.robot, joint, float(q), float(qd))

    @property
    def client(self) -> BulletClient:
        """This env's own pybullet client (raises after :meth:`close`)."""
        if self._client is None:
            raise RuntimeError("the environment is closed")
        return self._client

    @property
    def task_options(self) -> dict[str, Any]:
        return dict(self._task_options)

    def _parse_task_option(self, key: str, value: Any) -> Any:
        """Validate one of ``extra_options``; subclasses with extra options override this."""
        return value

    # ----- options and randomization ------------------------------------------------------------

    def _configure(self, options: Mapping[str, Any]) -> None:
        """Validate every option first, then apply them all (a bad option changes nothing)."""
        if not isinstance(options, Mapping):
            raise ValueError(f"options must be a dict, got {type(options).__name__}")
        init_range = self._init_range
        dynamics = self._dynamics_dist
        task_options = dict(self._task_options)
        for key, value in options.items():
            if key == "init_range":
                init_range = parse_init_range(value)
            elif key == "dynamics":
                dynamics = parse_dynamics(value)
            elif key in self.extra_options:
                task_options[key] = self._parse_task_option(key, value)
            else:
                known = ("init_range", "dynamics", *self.extra_options)
                raise ValueError(f"unknown option {key!r} for {self.task.env_id}; expected some of {known}")
        self._init_range, self._dynamics_dist, self._task_options = init_range, dynamics, task_options

    def _capture_link_dynamics(self, client: BulletClient) -> list[_LinkDynamics]:
        links = []
        for body in self._randomized_bodies():
            for link in range(-1, client.getNumJoints(body)):
                info = client.getDynamicsInfo(body, link)
                links.append(_LinkDynamics(body, link, info[0], tuple(info[2]), info[1]))
        return links

    def _apply_dynamics(self, d: Dynamics) -> None:
        client = self.client
        for link in self._links:
            kwargs: dict[str, Any] = {"lateralFriction": link.lateral_friction * d.friction_scale}
            if link.mass > 0:  # mass 0 is a static base or a massless frame of a loaded model
                # Bullet recomputes inertia from the collision shape when only the mass changes.
                kwargs["mass"] = link.mass * d.mass_scale
                kwargs["localInertiaDiagonal"] = [i * d.mass_scale for i in link.inertia]
            client.changeDynamics(link.body, link.link, **kwargs)
        damping = np.asarray(self.nominal_joint_damping, np.float64) * d.damping_scale
        for joint, value in zip(self.joints, damping, strict=True):
            client.changeDynamics(self.robot, joint, jointDamping=float(value))
        self._joint_friction = np.asarray(self.nominal_joint_friction, np.float64) * d.friction_scale
        self._set_joint_friction(self._joint_friction)

    # ----- Gymnasium API ------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if options:
            self._configure(options)
        self.dynamics = self._dynamics_dist.sample(self.np_random)
        # Restoring the saved state also drops contact caches, so an episode does not depend on
        # the one before it.
        self.client.restoreState(self._initial_state)
        self._apply_dynamics(self.dynamics)
        self._latency = deque(np.zeros(self.action_space.shape) for _ in range(self.dynamics.action_latency_steps))
        self._reset_state(self._init_range)
        self._obs = self._observe().astype(np.float32)
        return self._noisy(self._obs), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = self._clipped(action)
        next_obs = self._advance(action)
        reward = float(self.task.reward(self._obs, action, next_obs))
        terminated = bool(self.task.terminated(next_obs))
        self._obs = next_obs
        return self._noisy(next_obs), reward, terminated, False, {}

    def predict(self, action: np.ndarray) -> np.ndarray:
        """The noise-free observation after one control step of ``action``: :meth:`step`'s physics without the
        task's reward, termination or sensor noise, which replaying a logged trajectory (system identification)
        does not use, at about three quarters of the cost."""
        self._obs = self._advance(self._clipped(action))
        return self._obs.copy()

    def _clipped(self, action: np.ndarray) -> np.ndarray:
        action = np.asarray(action, dtype=np.float64).reshape(self.action_space.shape)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action}")
        return np.clip(action, self._action_low, self._action_high)

    def _advance(self, action: np.ndarray) -> np.ndarray:
        """One control step of the (clipped) ``action`` through the latency, the actuator gain and the physics
        substeps; the noise-free observation after it."""
        applied = action
        if self._latency:
            self._latency.append(action)
            applied = self._latency.popleft()
        applied = applied * self.dynamics.actuator_gain
        for _ in range(self.substeps):
            self._apply_action(applied)
            self._step_simulation()
        return self._observe().astype(np.float32)

    def set_state(self, obs: np.ndarray, pending_actions: Sequence[np.ndarray] = ()) -> None:
        """Continue from the state observation ``obs`` describes, with the dynamics of the last reset and
        ``pending_actions`` (oldest first, one per latency step; missing ones are zero) still on their way to the
        actuators: what a logged robot trajectory is replayed from."""
        latency = self.dynamics.action_latency_steps
        pending = [np.asarray(a, np.float64).reshape(self.action_space.shape) for a in pending_actions][-latency:]
        zeros = [np.zeros(self.action_space.shape)] * (latency - len(pending)) if latency else []
        self._latency = deque(zeros + pending if latency else [])
        self._restore_observed_state(np.asarray(obs, np.float64))
        self._obs = self._observe().astype(np.float32)

    def external_state(self) -> dict[str, Any]:
        """What an episode in flight keeps outside this object's plain attributes: the physics world (Bullet's
        own serialization of every body's pose and velocities), the dynamics drawn at the last reset and the
        actions on their way to the actuators. With the plain attributes (the last observation, the random
        generator, a task's target) it continues the episode exactly, in this process or another
        (``robopg.training.env_state``)."""
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "world.bullet")
            self.client.saveBullet(path)
            with open(path, "rb") as f:
                world = f.read()
        return {
            "world": world,
            "dynamics": {key: np.asarray(value).item() for key, value in asdict(self.dynamics).items()},
            "latency": [action.tolist() for action in self._latency],
        }

    def restore_external_state(self, state: Mapping[str, Any]) -> None:
        """Continue from what :meth:`external_state` saved (in an env of the same task and options)."""
        self.dynamics = Dynamics(**state["dynamics"])
        self._apply_dynamics(self.dynamics)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "world.bullet")
            with open(path, "wb") as f:
                f.write(bytes(state["world"]))
            self.client.restoreState(fileName=path)
        self._latency = deque(np.asarray(action, np.float64) for action in state["latency"])

    def _noisy(self, obs: np.ndarray) -> np.ndarray:
        std = self.dynamics.sensor_noise_std
        if std > 0:
            return (obs + self.np_random.normal(0.0, std, obs.shape)).astype(np.float32)
        return obs.copy()

    def render(self) -> np.ndarray | None:
        """An RGB image (height, width, 3) uint8 from Bullet's CPU renderer, in ``rgb_array`` mode."""
        if self.render_mode != "rgb_array":
            return None
        cam = self.camera
        client = self.client
        view = client.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=self._camera_target(), distance=cam.distance, yaw=cam.yaw, pitch=cam.pitch,
            roll=0.0, upAxisIndex=2,
        )
        proj = client.computeProjectionMatrixFOV(fov=cam.fov, aspect=cam.width / cam.height, nearVal=0.01, farVal=100.0)
        _, _, rgba, _, _ = client.getCameraImage(
            cam.width, cam.height, viewMatrix=view, projectionMatrix=proj, renderer=pybullet.ER_TINY_RENDERER
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(cam.height, cam.width, 4)[..., :3].copy()

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client = None
        super().close()
