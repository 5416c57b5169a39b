"""PyBullet implementations of the tasks in :mod:`sim.tasks` (importing these imports pybullet)."""

from sim.envs.quiet import native_output_silenced

# pybullet's C module prints a build banner on first import; this package is imported before any env module.
with native_output_silenced():
    import pybullet  # noqa: F401
