"""PyBullet implementations of the tasks in :mod:`sim.tasks` (importing these imports pybullet)."""
