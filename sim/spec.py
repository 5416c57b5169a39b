"""What a robot needs to know about a task, importable without pybullet.

The robot runtime computes rewards and episode ends from sensor data with the same pure
functions the simulator used, so these live here with numpy only and no physics engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A task's pure reward ``r(obs, action, next_obs)``, vectorized over leading batch dimensions: an
# array for a batch, a float (or 0-d array) for a single transition.
VectorizedRewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray | float]
# A task's pure termination test ``terminated(next_obs)``, vectorized the same way.
TerminatedFn = Callable[[np.ndarray], np.ndarray | bool]


@dataclass(frozen=True)
class TaskSpec:
    """A task as the robot side sees it.

    ``reward(obs, action, next_obs)`` and ``terminated(next_obs)`` are pure and vectorized over
    leading batch dimensions; actions are in actuator units (the env's action space).
    """

    env_id: str
    obs_names: tuple[str, ...]
    action_names: tuple[str, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    control_hz: float
    max_episode_steps: int
    solved_return: float
    reward: VectorizedRewardFn
    terminated: TerminatedFn

    @property
    def obs_dim(self) -> int:
        return len(self.obs_names)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)


def symmetric_task_spec(
    env_id: str,
    obs_names: tuple[str, ...],
    action_names: tuple[str, ...],
    action_limit: tuple[float, ...],
    *,
    control_hz: float,
    max_episode_steps: int,
    solved_return: float,
    reward: VectorizedRewardFn,
    terminated: TerminatedFn,
) -> TaskSpec:
    """A :class:`TaskSpec` whose actions lie in ``[-action_limit, action_limit]``, as every robopg task's do."""
    return TaskSpec(
        env_id=env_id, obs_names=obs_names, action_names=action_names,
        action_low=tuple(-limit for limit in action_limit), action_high=action_limit,
        control_hz=control_hz, max_episode_steps=max_episode_steps, solved_return=solved_return,
        reward=reward, terminated=terminated,
    )


_SPECS: dict[str, TaskSpec] = {}


def register_spec(spec: TaskSpec) -> None:
    """Make ``spec`` the robot side's view of ``spec.env_id``: a module that registers a Gymnasium id of its own
    calls this beside ``gym.register`` so that export, robot-sim, deploy and finetune know the task."""
    _SPECS[spec.env_id] = spec


def task_spec(reference: str) -> TaskSpec:
    """The spec of a task reference: a registered id, ``module:Id`` or a ``.toml`` declaration
    (:func:`sim.declared.resolve_task`, which also raises its errors); ``KeyError`` naming the known ids otherwise."""
    from sim.declared import resolve_task  # loading a declaration registers its spec

    env_id = resolve_task(reference)
    try:
        return _SPECS[env_id]
    except KeyError:
        known = ", ".join(sorted(_SPECS)) or "none"
        raise KeyError(f"no robopg task spec for {reference!r} (known: {known})") from None
