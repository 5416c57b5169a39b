"""Weights & Biases, optional (``pip install 'robopg[track]'``): a run's config, metrics and final results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robopg.errors import OptionalDependencyError


def require_wandb() -> Any:
    """The ``wandb`` module, or one line that says how to install it."""
    try:
        import wandb
    except ImportError:
        raise OptionalDependencyError("--track logs to Weights & Biases, which is not installed: "
                                      "pip install 'robopg[track]'") from None
    return wandb


def start_wandb(project: str, run_dir: Path, name: str, config: dict[str, Any]) -> Any:
    """A W&B run (online, or offline under ``WANDB_MODE=offline``) whose files go in ``run_dir``."""
    return require_wandb().init(project=project, name=name, dir=str(run_dir), config=config, reinit="finish_previous")
