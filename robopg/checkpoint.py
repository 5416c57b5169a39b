"""Run folders and checkpoints, written atomically.

A run folder holds:
  config.toml      what it takes to run it again: env id, algorithm, every setting, the packages' versions
  checkpoint.pt    the learner and what export needs (small; rewritten atomically)
  best.pt          the same, for the policy with the best evaluation so far (policy-gradient runs can
                   collapse late; export this one to deploy the best policy the run found)
  resume.pt        everything a crashed run needs to go on: learner, replay, RNG and loop state
  progress.csv, episodes.csv, eval.csv, tb/, learning_curve.png, videos/ (with video_every)
Files are saved with tensors and plain Python values only, so they load with
``torch.load(weights_only=True)``: opening a foreign file never runs its code. :func:`restore` rebuilds the
learner a checkpoint holds, for export, evaluation, fine-tuning and resume alike.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from robopg.algos.ddpg import DDPGConfig
from robopg.atomic import atomic_write
from robopg.config import OffPolicyConfig
from robopg.core.history import observation_dim
from robopg.errors import CheckpointError
from robopg.registry import ALGORITHMS, config_from_dict, make_learner
from robopg.version import __version__

FORMAT = "robopg-checkpoint/1"
CHECKPOINT_FILE = "checkpoint.pt"
RESUME_FILE = "resume.pt"
BEST_FILE = "best.pt"
CONFIG_FILE = "config.toml"
# Settings whose default changed after checkpoints were saved without them: the value those runs ran with, so that
# resuming, exporting or fine-tuning one of them rebuilds the run it was.
RAN_WITHOUT = {OffPolicyConfig: {"n_step": 1}, DDPGConfig: {"critic_layer_norm": False}}


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically; :class:`CheckpointError` if the write fails (a full disk), with the file it
    would have replaced left as it was."""
    payload = {"format": FORMAT, "robopg_version": __version__, **payload}
    try:
        atomic_write(path, lambda tmp: torch.save(payload, tmp))
    except (OSError, RuntimeError) as exc:  # torch reports a short write as a RuntimeError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "the write failed"
        free = shutil.disk_usage(path.parent).free
        raise CheckpointError(f"cannot write {path} ({reason}; {free / 1e6:.1f} MB free on its disk); "
                              f"{path.name} is as it was before") from None


def load(path: Path) -> dict[str, Any]:
    """Load one of our checkpoint files, or a run folder's ``checkpoint.pt``."""
    path = checkpoint_file(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable robopg checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a robopg checkpoint (expected format {FORMAT!r})")
    config = payload.get("config")
    if isinstance(config, dict) and config.get("algo") in ALGORITHMS:
        config_class = ALGORITHMS[config["algo"]].config
        for base, ran_with in RAN_WITHOUT.items():
            if issubclass(config_class, base):
                config = {**ran_with, **config}
        payload["config"] = config
    return payload


def checkpoint_file(source: Path) -> Path:
    """A run folder's ``checkpoint.pt``, or ``source`` itself when it is a file."""
    source = Path(source)
    return source / CHECKPOINT_FILE if source.is_dir() else source


def checkpoint_sha256(source: Path) -> str:
    """The hash of a run folder's or checkpoint file's checkpoint: what ties an export to its source."""
    return hashlib.sha256(checkpoint_file(source).read_bytes()).hexdigest()


@dataclass
class Restored:
    """A learner rebuilt from a checkpoint, with the checkpoint's contents and the hash of its file."""

    learner: Any
    state: dict[str, Any]
    sha256: str

    def policy(self) -> torch.nn.Module:
        """The deployable policy (raw observation, with :attr:`history` steps of history -> actuator units), in
        eval mode."""
        return self.learner.policy().eval()

    @property
    def history(self) -> int:
        """Steps of history in the policy's input (``robopg.core.history``); 0 for runs made before it existed."""
        return int(self.state["config"].get("history", 0))

    @property
    def obs_dim(self) -> int:
        """The width of one observation of the task (the policy's input is wider with a history)."""
        return observation_dim(int(self.state["obs_dim"]), len(self.state["action_low"]), self.history)

    def check_source_of(self, policy_sha256: str, source: Path) -> None:
        """Refuse this checkpoint (read from ``source``) if the policy about to be fine-tuned was not exported
        from it."""
        if self.sha256 != policy_sha256:
            raise CheckpointError(f"the policy was not exported from {source} (checkpoint hash differs); "
                                  "fine-tuning must start from the checkpoint of the deployed policy")


def restore(source: Path) -> Restored:
    """The learner of a run folder or checkpoint file (``checkpoint.pt``, ``best.pt``, ``resume.pt``), rebuilt
    from the config the checkpoint records, as export, evaluation and fine-tuning need it."""
    state = load(source)
    try:
        config = config_from_dict(state["config"])
        learner = make_learner(config, state["obs_dim"], state["action_low"].numpy(), state["action_high"].numpy(),
                               torch.Generator())
        learner.load_state_dict(state["learner"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint_file(source)} does not hold a learner robopg can rebuild "
                              f"({type(exc).__name__}: {exc})") from None
    return Restored(learner, state, checkpoint_sha256(source))
