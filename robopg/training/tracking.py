"""Weights & Biases, optional (``pip install 'robopg[track]'``): a run's config, metrics and final results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robopg.errors import OptionalDependencyError, TrackingError


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
    wandb = require_wandb()
    try:
        return wandb.init(project=project, name=name, dir=str(run_dir), config=config, reinit="finish_previous")
    except wandb.errors.Error as exc:  # not logged in, no network, a project one may not write to
        raise TrackingError(f"Weights & Biases: {exc} (WANDB_MODE=offline logs to the run folder instead)") from None
