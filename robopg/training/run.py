"""Entry points: train a new run, or resume one, with the trainer that fits the algorithm."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from robopg import checkpoint
from robopg.atomic import atomic_write_text
from robopg.config import OffPolicyConfig, RunConfig, config_from_dict, config_to_toml
from robopg.envs import make_env
from robopg.off_policy import OffPolicyTrainer
from robopg.trainer import RunDirError, Trainer, TrainResult, prepare_new_run_dir


def make_trainer(env_id: str, config: RunConfig, run_dir: Path, show_progress: bool) -> Trainer:
    if isinstance(config, OffPolicyConfig):
        return OffPolicyTrainer(env_id, config, run_dir, show_progress=show_progress)
    from robopg.on_policy import make_on_policy_trainer

    return make_on_policy_trainer(env_id, config, run_dir, show_progress=show_progress)


def train(env_id: str, config: RunConfig, run_dir: Path, *, show_progress: bool = True) -> TrainResult:
    """Train a new run in ``run_dir`` (which must not hold a run yet)."""
    run_dir = Path(run_dir)
    make_env(env_id).close()  # a bad env id is an error before any folder is made
    prepare_new_run_dir(run_dir)
    trainer = make_trainer(env_id, config, run_dir, show_progress)
    atomic_write_text(run_dir / checkpoint.CONFIG_FILE, config_to_toml(config))
    return trainer.run()


def resume(run_dir: Path, *, total_steps: int | None = None, show_progress: bool = True) -> TrainResult:
    """Continue a run from its last checkpoint; ``total_steps`` may extend it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"no run folder at {run_dir}")
    state = checkpoint.load(run_dir / checkpoint.RESUME_FILE)
    config = config_from_dict(state["config"])
    if total_steps is not None:
        config = replace(config, total_steps=total_steps)
    return make_trainer(state["env_id"], config, run_dir, show_progress).run(resume_state=state)


__all__ = ["RunDirError", "TrainResult", "resume", "train"]
