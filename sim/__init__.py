"""Robot control tasks on PyBullet under the Gymnasium API.

Importing ``sim`` registers these Gymnasium ids and their :class:`sim.spec.TaskSpec` (see
:func:`sim.spec.task_spec`) without importing pybullet; an env loads it when it is made.

- ``robopg/CartPoleSwingUp-v0``: swing a pole up and balance it, force on the cart (:mod:`sim.tasks.cartpole`).
- ``robopg/CartPoleBalance-v0``: the same, starting upright (:mod:`sim.tasks.cartpole_balance`).
- ``robopg/Reacher2D-v0``: bring a 2-link arm's fingertip to a target, joint torques (:mod:`sim.tasks.reacher`).
- ``robopg/HalfCheetah-v0``: run forward, six joint torques (:mod:`sim.tasks.half_cheetah`).
- ``robopg/KukaReach-v0``: bring a KUKA iiwa's flange to a target, joint velocities (:mod:`sim.tasks.kuka`).

Every env takes ``init_range``, ``dynamics`` (see :mod:`sim.randomization`) and ``render_mode="rgb_array"``
as ``gym.make`` keywords or ``reset(options=...)`` keys; the reach tasks also take a fixed ``target``.
"""

import gymnasium as gym

from sim.spec import register_spec, task_spec
from sim.tasks import TASK_MODULES

for _task in TASK_MODULES:
    register_spec(_task.SPEC)
    # Importing again (e.g. under pytest's importlib mode) must not re-register, which warns.
    if _task.SPEC.env_id not in gym.registry:
        gym.register(
            id=_task.SPEC.env_id, entry_point=_task.ENTRY_POINT, max_episode_steps=_task.SPEC.max_episode_steps
        )

ENV_IDS: tuple[str, ...] = tuple(task.SPEC.env_id for task in TASK_MODULES)

__all__ = ["ENV_IDS", "task_spec"]
