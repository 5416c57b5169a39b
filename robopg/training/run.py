"""Entry points: train a new run, or resume one, with the trainer of the algorithm's kind."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from robopg import checkpoint
from robopg.atomic import atomic_write_text
from robopg.config import RunConfig
from robopg.envs import make_env
from robopg.errors import ConfigError, RunDirError
from robopg.registry import Kind, algorithm, config_from_dict, config_to_dict, name_of
from robopg.settings import to_toml
from robopg.training import tracking
from robopg.training.a3c.trainer import A3CTrainer
from robopg.training.loop import Trainer, TrainResult, prepare_new_run_dir
from robopg.training.off_policy import OffPolicyTrainer
from robopg.training.on_policy import EpisodeReplayTrainer, EpisodeTrainer, RolloutTrainer, SILTrainer
from robopg.version import __version__
from robopg.video import make_render_env

# The trainer of each kind of algorithm that trains in simulation (robopg/registry.py gives each its kind).
TRAINERS: dict[Kind, type[Trainer]] = {
    "off_policy": OffPolicyTrainer,
    "rollouts": RolloutTrainer,
    "self_imitation": SILTrainer,
    "episodes": EpisodeTrainer,
    "episode_replay": EpisodeReplayTrainer,
    "a3c": A3CTrainer,
}


def make_trainer(env_id: str, config: RunConfig, run_dir: Path, show_progress: bool) -> Trainer:
    kind = algorithm(name_of(config)).kind
    if kind not in TRAINERS:
        raise ConfigError(f"{name_of(config)} does not train in simulation")
    return TRAINERS[kind](env_id, config, run_dir, show_progress=show_progress)


# The packages besides robopg whose versions can change a run's numbers, recorded in its config.toml.
RECORDED_PACKAGES = ("torch", "gymnasium", "pybullet", "numpy")


def versions() -> dict[str, str]:
    """The versions of robopg and of :data:`RECORDED_PACKAGES` that run here."""
    return {"robopg": __version__, **{name: metadata.version(name) for name in RECORDED_PACKAGES}}


def version_differences(recorded: dict[str, str]) -> list[str]:
    """One line for each recorded package version that differs from the installed one."""
    installed = versions()
    return [f"the run was made with {name} {version}, this is {installed[name]}: results may differ"
            for name, version in recorded.items() if name in installed and installed[name] != version]


def run_file(env_id: str, config: RunConfig) -> str:
    """A run folder's config.toml: everything ``robopg train-sim --config`` needs to run it again."""
    return to_toml({"algo": name_of(config), "env": env_id, **config_to_dict(config), "versions": versions()})


def train(env_id: str, config: RunConfig, run_dir: Path, *, show_progress: bool = True,
          wandb_project: str | None = None) -> TrainResult:
    """Train a new run in ``run_dir`` (which must not hold a run yet); ``wandb_project``: also log the run to
    Weights & Biases (``pip install 'robopg[track]'``)."""
    run_dir = Path(run_dir)
    check_env_options(env_id, config)
    if config.video_every:
        make_render_env(env_id).close()  # and so is an env that cannot render
    if wandb_project is not None:
        tracking.require_wandb()
    prepare_new_run_dir(run_dir)
    trainer = make_trainer(env_id, config, run_dir, show_progress)
    atomic_write_text(run_dir / checkpoint.CONFIG_FILE, run_file(env_id, config))
    return trainer.run(wandb_project=wandb_project)


def check_env_options(env_id: str, config: RunConfig) -> None:
    """A bad env id or option (a range on an env that cannot randomize) is an error before any training."""
    make_env(env_id, **config.env_options()).close()


# What a resumed run may change besides its steps and ranges: when it evaluates, checkpoints, logs and records,
# never what it learns (a resumed run with other values trains exactly as it would have).
SCHEDULE_SETTINGS = ("eval_every", "eval_episodes", "checkpoint_every", "checkpoint_seconds", "log_every",
                     "video_every")


def resume(run_dir: Path, *, total_steps: int | None = None, randomize: tuple[str, ...] | None = None,
           init_range: float | None = None, schedule: dict[str, Any] | None = None, show_progress: bool = True,
           warn: Callable[[str], None] | None = None) -> TrainResult:
    """Continue a run from its last checkpoint; ``total_steps`` may extend it. ``randomize`` and ``init_range``
    replace the run's randomization from its checkpoint on: a curriculum (the nominal task learned first, then
    made robust over ranges) or the ranges ``robopg identify`` wrote for the robot. The episodes in flight finish
    on the dynamics they drew; config.toml records the new settings; evaluations then run on the new
    distribution, so the best snapshot (best.pt) is chosen anew among them. ``schedule``: new values of
    :data:`SCHEDULE_SETTINGS` (more evaluation episodes, say, where the returns vary over ranges). ``warn`` gets
    each of the continued config's warnings (``RunConfig.config_warnings``) before training."""
    schedule = dict(schedule or {})
    if unknown := sorted(set(schedule) - set(SCHEDULE_SETTINGS)):
        raise ConfigError(f"a resumed run cannot change {', '.join(unknown)} (it would learn otherwise than it "
                          f"began): only its steps, its ranges and {', '.join(SCHEDULE_SETTINGS)}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"no run folder at {run_dir}")
    state = checkpoint.load(run_dir / checkpoint.RESUME_FILE)
    before = config_from_dict(state["config"])
    changes = {"total_steps": total_steps, "randomize": randomize, "init_range": init_range}
    config = config_from_dict({**config_to_dict(before), **schedule,
                               **{key: value for key, value in changes.items() if value is not None}})
    if (config.randomize, config.init_range) != (before.randomize, before.init_range):
        check_env_options(state["env_id"], config)
        # Evaluations on other dynamics or initial states are no reference for the ones to come.
        state = {**state, "loop": {**state["loop"], "best_eval": None, "best_step": 0}}
    if warn is not None:
        for line in config.config_warnings():
            warn(line)
    trainer = make_trainer(state["env_id"], config, run_dir, show_progress)
    if config != before:
        atomic_write_text(run_dir / checkpoint.CONFIG_FILE, run_file(state["env_id"], config))
    return trainer.run(resume_state=state)


__all__ = ["RECORDED_PACKAGES", "SCHEDULE_SETTINGS", "TRAINERS", "RunDirError", "TrainResult", "make_trainer",
           "resume", "run_file", "train", "version_differences", "versions"]
