"""A task declared in a TOML file (``robot.toml``): a robot's own model, actuators, observation and reward.

From the declaration come the robot side's :class:`~sim.spec.TaskSpec` (numpy only: no physics engine) and
a Gymnasium id whose env, :class:`sim.envs.declared.DeclaredEnv`, loads the model in PyBullet when made.
Every command names such a task by a *task reference*: a registered id, ``module:Id`` (importing the module
registers the id and its spec), or the path of a ``.toml`` declaration; :func:`resolve_task` turns any of
them into the registered id, loading and registering a declaration on first use. docs/own-robot.md describes
the file, field by field.

Checks here need no physics engine (types, ranges, names, the reward's and termination's import and shape);
those that need the model (its file, its joint and link names) run when the env is made.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import gymnasium as gym
import numpy as np

from firmware_bridge.messages import MAX_ACTION_DIM, MAX_OBS_DIM, exchange_bytes, lockstep_rate_limit
from sim.spec import TaskSpec, register_spec

Mode = Literal["torque", "velocity", "position"]
Quantity = Literal["angle", "cos_sin", "velocity", "position", "target"]
MODES: tuple[str, ...] = get_args(Mode)
QUANTITIES: tuple[str, ...] = get_args(Quantity)
AXES = "xyz"
DEFAULT_BAUD = 115200  # robopg deploy's default
ENTRY_POINT = "sim.envs.declared:DeclaredEnv"


class DeclarationError(ValueError):
    """A task declaration that cannot be used: one line naming the file, the field and the problem."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise DeclarationError(message)


def _finite(name: str, value: float, *, positive: bool = False) -> None:
    _require(isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
             and (value > 0 or not positive), f"{name} must be a {'positive ' if positive else ''}finite number, "
             f"got {value!r}")


@dataclass(frozen=True)
class Actuator:
    """One actuated joint, in action order. The action is the joint's torque (N·m, N on a prismatic joint),
    its velocity set-point (rad/s, m/s) or its position set-point (rad, m), clipped to ``[low, high]``.

    Velocity and position joints are Bullet's motor servos, whose force is limited to ``max_force``; position
    servos use ``position_gain`` and ``velocity_gain`` (Bullet's defaults)."""

    joint: str
    mode: Mode
    low: float
    high: float
    max_force: float | None = None
    position_gain: float = 0.1
    velocity_gain: float = 1.0

    def __post_init__(self) -> None:
        _require(isinstance(self.joint, str) and bool(self.joint), f"actuator joint must be a name, got {self.joint!r}")
        _require(self.mode in MODES,
                 f"actuator {self.joint}: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        _finite(f"actuator {self.joint}: low", self.low)
        _finite(f"actuator {self.joint}: high", self.high)
        _require(self.low < self.high, f"actuator {self.joint}: low {self.low} must be below high {self.high}")
        if self.mode == "torque":
            _require(self.max_force is None, f"actuator {self.joint}: max_force is for velocity and position "
                     "servos; a torque joint's limit is low/high")
        else:
            _require(self.max_force is not None, f"actuator {self.joint}: a {self.mode} servo needs max_force "
                     "(the largest torque or force it may apply)")
            _finite(f"actuator {self.joint}: max_force", self.max_force, positive=True)  # type: ignore[arg-type]
        _finite(f"actuator {self.joint}: position_gain", self.position_gain, positive=True)
        _finite(f"actuator {self.joint}: velocity_gain", self.velocity_gain)


@dataclass(frozen=True)
class Observation:
    """One term of the observation, in order: a joint's ``angle`` (rad, or m on a prismatic joint),
    ``cos_sin`` (two values), ``velocity``; a link frame's world ``position`` on ``axes`` (m); the ``target``."""

    quantity: Quantity
    joint: str | None = None
    link: str | None = None
    axes: str = AXES

    def __post_init__(self) -> None:
        _require(self.quantity in QUANTITIES,
                 f"unknown observation quantity {self.quantity!r} (known: {', '.join(QUANTITIES)})")
        _require(all(name is None or (isinstance(name, str) and name) for name in (self.joint, self.link)),
                 f"observation {self.quantity}: joint and link are names")
        needs_joint = self.quantity in ("angle", "cos_sin", "velocity")
        _require(needs_joint == (self.joint is not None),
                 f"observation {self.quantity}: " + ("needs a joint" if needs_joint else "takes no joint"))
        needs_link = self.quantity == "position"
        _require(needs_link == (self.link is not None),
                 f"observation {self.quantity}: " + ("needs a link" if needs_link else "takes no link"))
        _require(bool(self.axes) and set(self.axes) <= set(AXES) and len(set(self.axes)) == len(self.axes),
                 f"observation {self.quantity}: axes must be distinct letters of 'xyz', got {self.axes!r}")

    def names(self, target_axes: str) -> tuple[str, ...]:
        match self.quantity:
            case "angle" | "velocity":
                return (f"{self.joint}_{self.quantity}",)
            case "cos_sin":
                return (f"{self.joint}_cos", f"{self.joint}_sin")
            case "position":
                return tuple(f"{self.link}_{axis}" for axis in self.axes)
            case _:
                return tuple(f"target_{axis}" for axis in target_axes)


@dataclass(frozen=True)
class InitialJoint:
    """A joint's initial state: uniform within ``position ± position_spread`` and ``velocity ±
    velocity_spread``, the spreads scaled by the env's ``init_range``. Joints left out start at 0, at rest."""

    joint: str
    position: float = 0.0
    velocity: float = 0.0
    position_spread: float = 0.0
    velocity_spread: float = 0.0

    def __post_init__(self) -> None:
        for name in ("position", "velocity", "position_spread", "velocity_spread"):
            _finite(f"initial {self.joint}: {name}", getattr(self, name))
        _require(self.position_spread >= 0 and self.velocity_spread >= 0,
                 f"initial {self.joint}: spreads must be >= 0")


@dataclass(frozen=True)
class Target:
    """A point drawn uniformly in the box ``[low, high]`` (world frame, m; one value per axis of ``axes``)
    at every reset, independent of ``init_range``; the env's ``target`` option fixes it."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    axes: str = AXES

    def __post_init__(self) -> None:
        _require(len(self.low) == len(self.high) == len(self.axes),
                 f"target: low and high need one value per axis of {self.axes!r}")
        for lo, hi in zip(self.low, self.high, strict=True):
            _finite("target low", lo)
            _finite("target high", hi)
            _require(lo <= hi, f"target: low {list(self.low)} must not exceed high {list(self.high)}")


@dataclass(frozen=True)
class Camera:
    """Where ``render()`` looks from (degrees, metres), as :class:`sim.envs.base.Camera`."""

    distance: float = 1.0
    yaw: float = 0.0
    pitch: float = -20.0
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Declaration:
    """A task as its ``robot.toml`` declares it; validated on construction (:class:`DeclarationError`).

    ``reward`` and ``terminated`` are ``module:function``: ``reward(obs, action, next_obs)`` and
    ``terminated(next_obs)``, vectorized over leading batch dimensions, as :class:`sim.spec.TaskSpec` takes
    them; a module is looked up beside the declaration first (``reward:swing_up`` is ``reward.py`` there).
    No ``terminated``: episodes run to their time limit. ``baud`` is the serial link's, against which the
    control rate is checked (:meth:`link_warnings`)."""

    id: str
    model: Path
    control_hz: float
    episode_steps: int
    reward: str
    solved_return: float
    actuators: tuple[Actuator, ...]
    observations: tuple[Observation, ...]
    terminated: str | None = None
    substeps: int = 4  # physics steps per control step
    fixed_base: bool = True
    initial: tuple[InitialJoint, ...] = ()
    target: Target | None = None
    camera: Camera = field(default_factory=Camera)
    baud: int = DEFAULT_BAUD
    source: Path | None = None  # the file it was read from

    def __post_init__(self) -> None:
        _require(isinstance(self.id, str) and self.id.count("/") <= 1 and bool(self.id),
                 f"id must be a Gymnasium id such as 'myrobot/Balance-v0', got {self.id!r}")
        _require(self.model.suffix.lower() in (".urdf", ".xml"),
                 f"model must be a .urdf or an MJCF .xml file, got {self.model}")
        _require(self.model.is_file(), f"model file {self.model} does not exist")
        _finite("control_hz", self.control_hz, positive=True)
        for name in ("episode_steps", "substeps", "baud"):
            value = getattr(self, name)
            _require(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                     f"{name} must be a whole number >= 1, got {value!r}")
        _finite("solved_return", self.solved_return)
        _require(0 < len(self.actuators) <= MAX_ACTION_DIM, f"declare 1 to {MAX_ACTION_DIM} actuators")
        _require(bool(self.observations), "declare at least one observation")
        for kind, names in (("actuators", [a.joint for a in self.actuators]),
                            ("initial", [i.joint for i in self.initial])):
            repeated = sorted({n for n in names if names.count(n) > 1})
            _require(not repeated, f"joint(s) {', '.join(repeated)} declared twice in [[{kind}]]")
        has_target = any(o.quantity == "target" for o in self.observations)
        _require(has_target == (self.target is not None),
                 "a target observation needs a [target] table" if has_target
                 else "[target] is declared but no observation reads it")
        _require(self.obs_dim <= MAX_OBS_DIM, f"{self.obs_dim} observations exceed the protocol's {MAX_OBS_DIM}")

    @property
    def obs_names(self) -> tuple[str, ...]:
        axes = self.target.axes if self.target else AXES
        return tuple(name for o in self.observations for name in o.names(axes))

    @property
    def obs_dim(self) -> int:
        return len(self.obs_names)

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(f"{a.joint}_{a.mode}" for a in self.actuators)

    def spec(self) -> TaskSpec:
        """The robot side's view, with the reward and termination imported and checked on a batch."""
        reward = self._function(self.reward, "reward")
        terminated = self._function(self.terminated, "terminated") if self.terminated else _never
        obs_dim, act_dim = self.obs_dim, len(self.actuators)
        for batch in ((), (3,)):
            obs, action = np.zeros((*batch, obs_dim), np.float32), np.zeros((*batch, act_dim), np.float32)
            _check_output(self.reward, reward, (obs, action, obs), batch, numeric=True)
            _check_output(self.terminated or "", terminated, (obs,), batch, numeric=False)
        return TaskSpec(
            env_id=self.id, obs_names=self.obs_names, action_names=self.action_names,
            action_low=tuple(a.low for a in self.actuators), action_high=tuple(a.high for a in self.actuators),
            control_hz=float(self.control_hz), max_episode_steps=self.episode_steps,
            solved_return=float(self.solved_return), reward=reward, terminated=terminated,
        )

    def link_warnings(self) -> list[str]:
        """One line if the serial link at ``baud`` cannot carry the control rate with one request in flight."""
        limit = lockstep_rate_limit(self.obs_dim, len(self.actuators), self.baud)
        if self.control_hz <= limit:
            return []
        request, answer = exchange_bytes(self.obs_dim, len(self.actuators))
        return [f"{self.id}: {self.control_hz:g} Hz exceeds what {self.baud} baud carries: {request} + {answer} "
                f"bytes per exchange allow at most {limit:.0f} exchanges/s (docs/own-robot.md, choosing the rate)"]

    def _function(self, reference: str, what: str) -> Callable[..., Any]:
        module_name, _, name = reference.partition(":")
        _require(bool(module_name) and bool(name), f"{what} must be 'module:function', got {reference!r}")
        module = _import_beside(module_name, self.source.parent if self.source else None, what)
        function = getattr(module, name, None)
        _require(callable(function), f"{what} {reference!r}: {module_name} has no function {name!r}")
        return function  # type: ignore[return-value]


def _never(next_obs: np.ndarray) -> np.ndarray:
    return np.zeros(np.shape(next_obs)[:-1], dtype=bool)


def _check_output(reference: str, function: Callable[..., Any], args: tuple[np.ndarray, ...],
                  batch: tuple[int, ...], *, numeric: bool) -> None:
    """``function`` runs on (a batch of) zero observations and returns one value per transition."""
    try:
        value = np.asarray(function(*args))
    except Exception as exc:  # the user's code: whatever it raises is the declaration's problem
        raise DeclarationError(f"{reference} fails on {'a batch' if batch else 'one transition'} of zero "
                               f"observations: {type(exc).__name__}: {exc}") from None
    _require(value.shape == batch, f"{reference} returns shape {value.shape} for {'a batch of ' if batch else ''}"
             f"{batch[0] if batch else 'one'} transition(s); expected {batch} (vectorized over leading dimensions)")
    if numeric:
        _require(np.issubdtype(value.dtype, np.number), f"{reference} returns {value.dtype}, not numbers")


def _import_beside(module_name: str, folder: Path | None, what: str) -> Any:
    """``module_name`` from ``folder`` (the declaration's) when a file of that name is there, else from the path."""
    file = folder / Path(*module_name.split(".")).with_suffix(".py") if folder is not None else None
    try:
        if file is not None and file.is_file():
            key = f"robopg_declared.{file.resolve().with_suffix('').as_posix().strip('/').replace('/', '.')}"
            if key not in sys.modules:
                loader = importlib.util.spec_from_file_location(key, file)
                module = importlib.util.module_from_spec(loader)  # type: ignore[arg-type]
                sys.modules[key] = module
                try:
                    loader.loader.exec_module(module)  # type: ignore[union-attr]
                except BaseException:
                    del sys.modules[key]
                    raise
            return sys.modules[key]
        return importlib.import_module(module_name)
    except Exception as exc:
        raise DeclarationError(f"{what}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None


# The tables of a declaration file and their dataclasses; anything else is refused by name.
_TABLES: dict[str, type] = {"actuators": Actuator, "observations": Observation, "initial": InitialJoint}


def _build(cls: type, values: Any, where: str) -> Any:
    _require(isinstance(values, Mapping), f"{where} must be a table")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    _require(not unknown, f"unknown key(s) {', '.join(unknown)} in {where} (known: {', '.join(sorted(known))})")
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in values]
    _require(not missing, f"{where} needs {', '.join(missing)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def read_declaration(path: Path) -> Declaration:
    """The declaration in ``path``; :class:`DeclarationError` naming the file and the problem otherwise."""
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text())
    except OSError as exc:
        raise DeclarationError(f"cannot read task declaration {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(f"task declaration {path} is not valid TOML: {exc}") from None
    try:
        for key, cls in _TABLES.items():
            items = values.get(key, [])
            _require(isinstance(items, list), f"{key} must be an array of tables ([[{key}]])")
            values[key] = tuple(_build(cls, item, f"[[{key}]] {i + 1}") for i, item in enumerate(items))
        for key, cls in (("target", Target), ("camera", Camera)):
            if key in values:
                values[key] = _build(cls, values[key], f"[{key}]")
        if "model" in values:
            values["model"] = path.parent / str(values["model"])
        return _build(Declaration, {**values, "source": path}, "the top level")
    except DeclarationError as exc:
        raise DeclarationError(f"{path}: {exc}") from None


def is_declaration(reference: str) -> bool:
    return reference.endswith(".toml")


# Declarations loaded in this process, by resolved path, and which file declared each id.
_LOADED: dict[Path, Declaration] = {}
_DECLARED_BY: dict[str, Path] = {}


def load_declaration(path: str | Path) -> Declaration:
    """Read, check and register (Gymnasium id and :class:`TaskSpec`) the declaration in ``path``, once."""
    key = Path(path).resolve()
    if key in _LOADED:
        return _LOADED[key]
    declaration = read_declaration(Path(path))
    other = _DECLARED_BY.get(declaration.id)
    _require(other is None, f"{path}: id {declaration.id!r} is already declared by {other}")
    _require(declaration.id not in gym.registry, f"{path}: id {declaration.id!r} is already a registered environment")
    try:
        spec = declaration.spec()
    except DeclarationError as exc:
        raise DeclarationError(f"{path}: {exc}") from None
    register_spec(spec)
    gym.register(id=declaration.id, entry_point=ENTRY_POINT, max_episode_steps=declaration.episode_steps,
                 kwargs={"declaration": declaration})
    _LOADED[key], _DECLARED_BY[declaration.id] = declaration, key
    return declaration


def resolve_task(reference: str) -> str:
    """The registered id a task reference names: a ``.toml`` declaration is loaded and registered, the module
    of ``module:Id`` imported (it registers the id, and its spec if it has one); any other id is returned as is.

    :class:`DeclarationError` for a bad declaration, ``ModuleNotFoundError`` for a module that is not there."""
    if is_declaration(reference):
        return load_declaration(reference).id
    module, sep, env_id = reference.partition(":")
    if sep and "/" not in module:
        importlib.import_module(module)
        return env_id
    return reference


def link_warnings(reference: str) -> list[str]:
    """The control-rate warnings of a declared task; none for any other."""
    return load_declaration(reference).link_warnings() if is_declaration(reference) else []
