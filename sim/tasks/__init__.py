"""The robopg tasks as the robot side sees them: names, bounds, rates, pure reward and termination.

Numpy only: importing these never imports a physics engine. Each module defines ``SPEC`` (a
:class:`sim.spec.TaskSpec`) and ``ENTRY_POINT`` (where its PyBullet env lives).
"""

from sim.tasks import cartpole, cartpole_balance, half_cheetah, kuka, reacher

TASK_MODULES = (cartpole, cartpole_balance, reacher, half_cheetah, kuka)
