"""robopg: policy-gradient RL from PyBullet simulation to robot hardware.

``import robopg`` registers the built-in tasks (``robopg/CartPoleSwingUp-v0``, ...) with Gymnasium and gives the
Python API of :mod:`robopg.api` (``docs/api.md``).
"""

import sim  # noqa: F401  (registers the robopg/... ids with Gymnasium)
from robopg.api import EvalResult, Policy, evaluate, export_onnx, load_policy, make_config, train
from robopg.version import __version__

__all__ = ["EvalResult", "Policy", "__version__", "evaluate", "export_onnx", "load_policy", "make_config",
           "train"]
