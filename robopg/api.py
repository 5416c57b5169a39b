"""The Python API: make a config, train, export, load a trained policy (checkpoint or ONNX), act, evaluate.

What the command line does, as functions (``docs/api.md``)::

    config = robopg.make_config("td3", total_steps=20_000, seed=1)
    result = robopg.train("robopg/Reacher2D-v0", config, "runs/reacher")
    robopg.export_onnx("runs/reacher/best.pt", "reacher.onnx")
    policy = robopg.load_policy("reacher.onnx")   # or a run folder, or a .pt checkpoint
    action = policy(observation)
    print(robopg.evaluate(policy, episodes=10))

torch is imported by the functions that need it only: loading and evaluating an ONNX policy runs on numpy and
onnxruntime, as on a robot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robopg.core.history import HistoryWrapper
from robopg.envs import make_env
from robopg.errors import ConfigError, PolicyFileError
from robopg.evaluation import EvalResult
from robopg.evaluation import evaluate as evaluate_episodes
from robopg.runtime.episode import PolicyFn
from sim.randomization import parse_randomize

if TYPE_CHECKING:
    from robopg.config import RunConfig
    from robopg.export import ExportReport
    from robopg.training.loop import TrainResult


def make_config(algo: str, **values: Any) -> RunConfig:
    """The config of algorithm ``algo`` (``robopg config ALGO`` lists its fields), checked by name, type and
    range: a bad value raises :class:`robopg.errors.ConfigError` naming it."""
    from robopg.registry import make_config as make

    return make(algo, values)


def train(env_id: str, config: RunConfig, run_dir: str | Path, *, progress: bool = False,
          wandb_project: str | None = None) -> TrainResult:
    """Train a new run in ``run_dir`` (``robopg train-sim``); the result has the final and best evaluations."""
    from robopg.training.run import train as train_run

    return train_run(env_id, config, Path(run_dir), show_progress=progress, wandb_project=wandb_project)


def export_onnx(source: str | Path, path: str | Path) -> ExportReport:
    """Write the policy of a run folder or checkpoint to ONNX, verified against torch (``robopg export``)."""
    from robopg.export import export_policy

    return export_policy(Path(source), Path(path))


@dataclass(frozen=True)
class Policy:
    """A trained policy: ``policy(observation)`` is its deterministic action, in actuator units. A policy with a
    history (``history = k`` in training) takes its input in the layout of :class:`robopg.core.history.History`,
    which keeps it along an episode (``History(k, obs_dim, len(action_low))``: ``start`` at the first
    observation, ``step`` with each command and the next observation); :func:`evaluate` does that itself."""

    act: PolicyFn
    env_id: str  # the environment it was trained on
    obs_dim: int  # of one observation
    action_low: np.ndarray
    action_high: np.ndarray
    history: int = 0  # steps of history in its input

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        return self.act(np.asarray(observation, dtype=np.float32))


def load_policy(source: str | Path) -> Policy:
    """The policy of an exported ``.onnx`` file (onnxruntime only), or of a run folder or ``.pt`` checkpoint."""
    source = Path(source)
    if not source.exists():
        raise PolicyFileError(f"no policy file or run folder at {source}")
    if source.suffix == ".onnx":
        from robopg.runtime.onnx_policy import OnnxPolicy

        onnx = OnnxPolicy(source)
        m = onnx.metadata
        return Policy(onnx, m.env_id, m.obs_dim, np.asarray(m.action_low), np.asarray(m.action_high), m.history)
    if not (source.is_dir() or source.suffix == ".pt"):
        raise PolicyFileError(f"{source} is not a policy: give an exported .onnx file, a run folder or a .pt "
                              "checkpoint")
    from robopg.checkpoint import restore
    from robopg.core.nets import torch_policy_fn

    restored = restore(source)
    state = restored.state
    return Policy(torch_policy_fn(restored.policy()), state["env_id"], restored.obs_dim,
                  state["action_low"].numpy(), state["action_high"].numpy(), restored.history)


def evaluate(policy: Policy, env_id: str | None = None, *, episodes: int = 10, seed: int = 0,
             video: str | Path | None = None, randomize: Sequence[str] = ()) -> EvalResult:
    """Run ``episodes`` noise-free episodes on ``env_id`` (default: the policy's own), seeded ``seed, seed + 1,
    ...``; ``video``: also write them to this file (.mp4, .gif); ``randomize``: dynamics of a robopg task, fixed
    (``KEY=VALUE``, a gap) or sampled at each reset (``KEY=LOW:HIGH``), as training's ``randomize``."""
    from robopg.runtime.onnx_policy import check_fits

    if episodes < 1:
        raise ConfigError(f"episodes must be at least 1, got {episodes}")
    env_id = env_id or policy.env_id
    try:
        options = {"dynamics": parse_randomize(randomize)} if randomize else {}
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if video is None:
        env = make_env(env_id, **options)
    else:
        from robopg.video import make_render_env

        env = make_render_env(env_id, **options)
    try:
        space = env.action_space
        check_fits(policy.obs_dim, policy.action_low, policy.action_high, env.observation_space.shape[0],
                   space.low, space.high, f"environment {env_id}")
        if policy.history:  # fed as in training: the same wrapper
            env = HistoryWrapper(env, policy.history)
        if video is None:
            return evaluate_episodes(policy, env, episodes, seed)
        from robopg.video import frame_rate, video_writer

        with video_writer(Path(video), frame_rate(env)) as add_frame:
            return evaluate_episodes(policy, env, episodes, seed, on_frame=add_frame)
    finally:
        env.close()


__all__ = ["EvalResult", "Policy", "evaluate", "export_onnx", "load_policy", "make_config", "train"]
