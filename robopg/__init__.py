"""robopg: policy-gradient RL from PyBullet simulation to robot hardware."""

__version__ = "0.1.0"
