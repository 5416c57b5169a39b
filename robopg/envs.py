"""Turn an environment id into a checked Gymnasium env, with errors a user can act on."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

import sim  # noqa: F401  (registers the robopg/... ids)
from robopg.core.history import HistoryWrapper
from robopg.errors import EnvError
from sim.declared import DeclarationError, link_warnings, resolve_task
from sim.spec import TaskSpec, task_spec


def make_env(env_id: str, history: int = 0, **kwargs: Any) -> gym.Env:
    """``gym.make`` for our ids, Gymnasium's own, ``module:EnvId`` or a task declaration (``robot.toml``,
    :mod:`sim.declared`); the action space must be a bounded Box. ``history``: observations are the current one
    and the last ``history`` observations and commands (:class:`robopg.core.history.HistoryWrapper`)."""
    try:
        env = gym.make(resolve_task(env_id), **kwargs)
    except DeclarationError as exc:
        raise EnvError(str(exc)) from None
    except gym.error.Error as exc:
        raise EnvError(f"unknown environment {env_id!r}: {exc}") from None
    except ModuleNotFoundError as exc:
        raise EnvError(f"cannot import the module of environment {env_id!r}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise EnvError(f"cannot make environment {env_id!r}: {exc}") from None
    try:
        check_continuous(env, env_id)
    except EnvError:
        env.close()
        raise
    return HistoryWrapper(env, history) if history else env


def drawn_dynamics(env: gym.Env, keys: tuple[str, ...]) -> dict[str, float]:
    """The values of ``keys`` that one of our tasks drew at its last reset (domain randomization)."""
    dynamics = env.unwrapped.dynamics  # type: ignore[attr-defined]
    return {key: float(getattr(dynamics, key)) for key in keys}


def check_continuous(env: gym.Env, env_id: str) -> None:
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise EnvError(
            f"environment {env_id!r} has a {type(space).__name__} action space; robopg's algorithms need a "
            "continuous (Box) action space"
        )
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise EnvError(f"environment {env_id!r} has an unbounded action space; give it finite low/high bounds")
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        raise EnvError(
            f"environment {env_id!r} must have a flat Box observation space, got {env.observation_space}"
        )


def spec_of(reference: str) -> TaskSpec | None:
    """The robot side's spec of a task reference; ``None`` for an env that has none (not a robopg task), and
    :class:`EnvError` for a declaration or module that cannot be loaded."""
    try:
        return task_spec(reference)
    except KeyError:
        return None
    except DeclarationError as exc:
        raise EnvError(str(exc)) from None
    except ImportError as exc:
        raise EnvError(f"cannot import the module of task {reference!r}: {exc}") from None


def task_warnings(reference: str) -> list[str]:
    """What a declared task does that may not work on the robot (a control rate its serial link cannot carry)."""
    try:
        return link_warnings(reference)
    except DeclarationError as exc:
        raise EnvError(str(exc)) from None
