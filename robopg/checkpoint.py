"""Run folders and checkpoints, written atomically.

A run folder holds:
  config.toml      the exact configuration
  checkpoint.pt    the learner and what export needs (small; rewritten atomically)
  best.pt          the same, for the policy with the best evaluation so far (policy-gradient runs can
                   collapse late; export this one to deploy the best policy the run found)
  resume.pt        everything a crashed run needs to go on: learner, replay, RNG and loop state
  progress.csv, episodes.csv, eval.csv, tb/, learning_curve.png
Files are saved with tensors and plain Python values only, so they load with
``torch.load(weights_only=True)``: opening a foreign file never runs its code.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from robopg import __version__
from robopg.atomic import atomic_write
from robopg.errors import CheckpointError

FORMAT = "robopg-checkpoint/1"
CHECKPOINT_FILE = "checkpoint.pt"
RESUME_FILE = "resume.pt"
BEST_FILE = "best.pt"
CONFIG_FILE = "config.toml"


def save(path: Path, payload: dict[str, Any]) -> None:
    payload = {"format": FORMAT, "robopg_version": __version__, **payload}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load(path: Path) -> dict[str, Any]:
    """Load one of our checkpoint files, or a run folder's ``checkpoint.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable robopg checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a robopg checkpoint (expected format {FORMAT!r})")
    return payload
