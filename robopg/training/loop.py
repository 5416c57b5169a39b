"""The training loop every algorithm shares: run folder, metrics, evaluation, checkpoints, progress.

A ``Trainer`` subclass says how to make its learner and how to ``advance``: take some environment
steps and learn from them (one step and its updates for off-policy methods, one rollout and its
update for on-policy ones). The loop around it logs, evaluates and checkpoints when a step count
crosses the configured interval (a checkpoint also when ``checkpoint_seconds`` have passed since the last,
the first after a tenth of that), and resumes from ``resume.pt`` with every generator restored. Evaluations run
in the loop, or beside it in a process of their own (``evaluator.py``) for a trainer whose workers would wait.
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robopg import checkpoint
from robopg.algos.base import anneal_learning_rates
from robopg.config import RunConfig
from robopg.core.nets import torch_policy_fn
from robopg.envs import make_env
from robopg.errors import RunDirError
from robopg.evaluation import EvalResult, evaluate
from robopg.registry import config_to_dict, make_learner, name_of
from robopg.training.evaluator import BackgroundEvaluator, Snapshot
from robopg.training.metrics import RunLogger
from robopg.training.progress import ProgressReporter
from robopg.training.tracking import start_wandb
from robopg.video import frame_rate, make_render_env, video_writer

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never reuse a training episode's seed


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    train_seconds: float  # seconds less the time training waited for evaluations
    final_eval: EvalResult
    best_eval: EvalResult  # the best evaluation of the run, whose policy is in best.pt
    best_step: int


@dataclass
class Advance:
    """What one ``advance`` did: environment steps taken, episodes finished (return, length), learner stats."""

    steps: int
    episodes: list[tuple[float, int]]
    stats: dict[str, torch.Tensor | float]
    draws: list[dict[str, float]] = field(default_factory=list)  # dynamics drawn by episodes that started


def prepare_new_run_dir(run_dir: Path) -> None:
    for name in (checkpoint.CHECKPOINT_FILE, checkpoint.RESUME_FILE):
        if (run_dir / name).exists():
            raise RunDirError(f"output folder {run_dir} already holds a run; resume it with --resume {run_dir} "
                              "or choose another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot write to output folder {run_dir}: {exc.strerror}") from None


def crossed(before: int, after: int, every: int) -> bool:
    return after // every > before // every


class Trainer(ABC):
    def __init__(self, env_id: str, config: RunConfig, run_dir: Path, *, show_progress: bool = True) -> None:
        self.env_id, self.config, self.run_dir = env_id, config, Path(run_dir)
        self.algo = name_of(config)
        self.show_progress = show_progress
        torch.set_num_threads(config.torch_threads)
        torch.manual_seed(config.seed)
        self.eval_env = make_env(env_id, **config.env_options())  # evaluated on the distribution it trains on
        self.video_env: Any = None  # made at the first video
        space = self.eval_env.action_space
        self.obs_dim = int(np.prod(self.eval_env.observation_space.shape))
        self.act_dim = int(np.prod(space.shape))
        self.action_low, self.action_high = space.low.astype(np.float32), space.high.astype(np.float32)
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.learner = self.make_learner()
        self.step = 0
        self.episodes = 0
        self.elapsed = 0.0
        self.eval_seconds = 0.0  # kept out of the training clock, so time-to-threshold compares training
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.last_eval: EvalResult | None = None
        self.best_eval: EvalResult | None = None
        self.best_step = 0
        self.evaluator: BackgroundEvaluator | None = None
        self.queued_evaluations: list[Snapshot] = []  # a resumed run's, still to evaluate

    # ---- what a family of algorithms provides -------------------------------------------------
    def make_learner(self) -> Any:
        """The learner: ``update``, ``policy()`` (raw obs -> actuator units), ``state_dict``."""
        return make_learner(self.config, self.obs_dim, self.action_low, self.action_high, self.generator)

    @abstractmethod
    def advance(self) -> Advance:
        """Take environment steps and learn from them."""

    def randomizes(self) -> bool:
        """Whether the training episodes draw dynamics from ranges (their spread is then logged)."""
        return bool(self.config.randomized_keys())

    def evaluates_in_background(self) -> bool:
        """Whether evaluations run in a process of their own while training goes on (``evaluator.py``)."""
        return False

    def stop_collecting(self) -> None:
        """The run has its steps: stop whatever still collects (so that evaluations still queued get the CPU)."""
        return None

    def safe_to_checkpoint(self) -> bool:
        """Whether a checkpoint now would let a resumed run go on exactly as this one."""
        return True

    @abstractmethod
    def loop_state(self) -> dict[str, Any]:
        """Family-specific state to save (replay memory, noise, ...)."""

    @abstractmethod
    def load_loop_state(self, state: dict[str, Any]) -> None:
        """Restore what ``loop_state`` saved."""

    def close(self) -> None:
        self.eval_env.close()
        if self.video_env is not None:
            self.video_env.close()

    # ---- shared ---------------------------------------------------------------------------------
    def evaluate(self) -> EvalResult:
        """Evaluate the current policy here and now, and record the result."""
        result = evaluate(torch_policy_fn(self.learner.policy()), self.eval_env, self.config.eval_episodes,
                          seed=self.config.seed + EVAL_SEED_OFFSET)
        self.record_evaluation(self.step, result, self.policy_checkpoint)
        return result

    def record_evaluation(self, step: int, result: EvalResult,
                          policy_checkpoint: Callable[[], dict[str, Any]]) -> None:
        """The evaluation of the policy of ``step``; ``policy_checkpoint`` gives that policy's checkpoint, which
        becomes ``best.pt`` if the evaluation is the best so far."""
        self.last_eval = result
        if self.best_eval is None or result.mean > self.best_eval.mean:
            self.best_eval, self.best_step = result, step
            checkpoint.save(self.run_dir / checkpoint.BEST_FILE,
                            {**policy_checkpoint(), "eval_returns": list(result.returns)})

    def start_evaluator(self) -> None:
        """The background evaluator, if this trainer evaluates in the background, with a resumed run's queue."""
        if not self.evaluates_in_background():
            return
        c = self.config
        self.evaluator = BackgroundEvaluator(self.env_id, c.env_options(), c.eval_episodes,
                                             c.seed + EVAL_SEED_OFFSET, c.torch_threads, self.queued_evaluations)
        self.evaluator.start()

    def record_video(self) -> Path:
        """A video of one evaluation episode of the current policy: ``videos/step-N.mp4``."""
        if self.video_env is None:
            self.video_env = make_render_env(self.env_id, **self.config.env_options())
        path = self.run_dir / "videos" / f"step-{self.step}.mp4"
        with video_writer(path, frame_rate(self.video_env)) as add_frame:
            evaluate(torch_policy_fn(self.learner.policy()), self.video_env, 1,
                     seed=self.config.seed + EVAL_SEED_OFFSET, on_frame=add_frame)
        return path

    def metadata(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "algo": self.algo,
            "config": config_to_dict(self.config),
            "obs_dim": self.obs_dim,
            "action_low": torch.from_numpy(self.action_low),
            "action_high": torch.from_numpy(self.action_high),
            "step": self.step,
        }

    def policy_checkpoint(self) -> dict[str, Any]:
        """What export and evaluation need: the learner and the run's metadata."""
        return {**self.metadata(), "learner": self.learner.state_dict()}

    def save(self) -> None:
        """Resume state first, then the small checkpoint: a crash between them loses nothing."""
        checkpoint.save(self.run_dir / checkpoint.RESUME_FILE, {
            **self.metadata(),
            "learner": self.learner.state_dict(),
            "loop": {
                "episodes": self.episodes,
                "elapsed": self.elapsed,
                "eval_seconds": self.eval_seconds,
                "recent_returns": list(self.recent_returns),
                "numpy_rng": self.rng.bit_generator.state,
                "torch_generator": self.generator.get_state(),
                "torch_global": torch.get_rng_state(),
                "last_eval": _eval_state(self.last_eval),
                "best_eval": _eval_state(self.best_eval),
                "best_step": self.best_step,
                "queued_evaluations": [asdict(snapshot) for snapshot in self.evaluator.pending] if self.evaluator
                else [],
                **self.loop_state(),
            },
        })
        checkpoint.save(self.run_dir / checkpoint.CHECKPOINT_FILE, self.policy_checkpoint())

    def restore(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        loop = state["loop"]
        self.step = int(state["step"])
        self.episodes = int(loop["episodes"])
        self.elapsed = float(loop["elapsed"])
        self.eval_seconds = float(loop["eval_seconds"])
        self.recent_returns.extend(loop["recent_returns"])
        self.rng.bit_generator.state = loop["numpy_rng"]
        self.generator.set_state(loop["torch_generator"])
        torch.set_rng_state(loop["torch_global"])
        self.last_eval = _eval_result(loop["last_eval"])
        self.best_eval = _eval_result(loop.get("best_eval"))  # absent from runs saved before best.pt existed
        self.best_step = int(loop.get("best_step", 0))
        self.queued_evaluations = [Snapshot(**snapshot) for snapshot in loop.get("queued_evaluations", [])]
        self.load_loop_state(loop)

    def run(self, resume_state: dict[str, Any] | None = None, *, wandb_project: str | None = None) -> TrainResult:
        """Train to ``config.total_steps`` (from ``resume_state`` if given); ``wandb_project``: also log to W&B."""
        c = self.config
        if resume_state is not None:
            self.restore(resume_state)
        wandb_run = None if wandb_project is None else start_wandb(
            wandb_project, self.run_dir, f"{self.run_dir.name}", {"env": self.env_id, **config_to_dict(c)})
        logger = RunLogger(self.run_dir, resume_step=self.step if resume_state is not None else None,
                           wandb_run=wandb_run, randomized=self.randomizes(),
                           evaluations_to_redo={snapshot.step for snapshot in self.queued_evaluations})
        reporter = ProgressReporter(f"{self.algo} {self.env_id}", c.total_steps, self.step, self.show_progress)
        checkpoint_due = False
        stats: dict[str, torch.Tensor | float] = {}
        optimizers = [part for part in self.learner.parts().values() if isinstance(part, torch.optim.Optimizer)]
        started = interval_start = time.perf_counter()
        interval_step = self.step
        checkpoint_at = started + c.checkpoint_seconds / 10  # early, so that a kill soon after the start loses little
        self.start_evaluator()
        evaluator = self.evaluator

        def record_finished(wait: bool) -> None:
            """Record the background evaluations done (with ``wait``, all), as of the step each was taken at."""
            assert evaluator is not None
            for snapshot, result in evaluator.finished(wait):
                self.record_evaluation(snapshot.step, result, lambda snapshot=snapshot: snapshot.checkpoint)
                logger.evaluation(snapshot.step, snapshot.train_seconds, result.mean, result.std)

        try:
            while self.step < c.total_steps:
                before = self.step
                if c.anneal_lr:
                    anneal_learning_rates(optimizers, self.step / c.total_steps)
                advance = self.advance()
                self.step += advance.steps
                stats = advance.stats or stats
                for episode_return, length in advance.episodes:
                    self.episodes += 1
                    self.recent_returns.append(episode_return)
                    logger.episode(self.step, episode_return, length)
                logger.drew(advance.draws)
                if evaluator is not None:
                    record_finished(wait=False)
                done = self.step >= c.total_steps
                if crossed(before, self.step, c.log_every) or done:
                    now = time.perf_counter()
                    rate = (self.step - interval_step) / max(now - interval_start, 1e-9)
                    interval_start, interval_step = now, self.step
                    logger.train_stats(self.step, self.elapsed + now - started, rate,
                                       {k: float(v) for k, v in stats.items()})
                    reporter.update(self.step, self.status(rate))
                if crossed(before, self.step, c.eval_every) or done:
                    train_seconds = self.elapsed + time.perf_counter() - started - self.eval_seconds
                    eval_started = time.perf_counter()
                    if evaluator is None:
                        result = self.evaluate()
                        logger.evaluation(self.step, train_seconds, result.mean, result.std)
                    else:
                        evaluator.submit(Snapshot.of(self.step, train_seconds, copy.deepcopy(self.policy_checkpoint()),
                                                     self.learner.policy()))
                        if done:
                            self.stop_collecting()
                            record_finished(wait=True)
                    self.eval_seconds += time.perf_counter() - eval_started
                if c.video_every and (crossed(before, self.step, c.video_every) or done):
                    eval_started = time.perf_counter()
                    self.record_video()
                    self.eval_seconds += time.perf_counter() - eval_started
                checkpoint_due = (checkpoint_due or crossed(before, self.step, c.checkpoint_every)
                                  or time.perf_counter() >= checkpoint_at)
                if (checkpoint_due and self.safe_to_checkpoint()) or done:
                    self.elapsed += time.perf_counter() - started
                    started = time.perf_counter()
                    self.save()
                    checkpoint_due = False
                    checkpoint_at = time.perf_counter() + c.checkpoint_seconds
            if resume_state is not None and self.step == int(resume_state["step"]):
                # Resumed at its end: a kill between the last resume.pt and checkpoint.pt left the latter behind.
                self.save()
            if evaluator is not None:  # a run resumed past its total_steps with evaluations queued
                record_finished(wait=True)
            if self.last_eval is None:  # a run resumed past its total_steps before any evaluation
                self.evaluate()
            assert self.last_eval is not None and self.best_eval is not None
            logger.results({"env": self.env_id, **config_to_dict(c)}, {
                "final/return_mean": self.last_eval.mean, "final/return_std": self.last_eval.std,
                "final/best_return_mean": self.best_eval.mean})
        finally:
            if evaluator is not None:
                evaluator.close()
            reporter.close()
            logger.close()
        logger.plot(f"{self.algo.upper()} on {self.env_id}")
        self.close()
        return TrainResult(self.run_dir, self.step, self.elapsed, self.elapsed - self.eval_seconds, self.last_eval,
                           self.best_eval, self.best_step)

    def status(self, rate: float) -> str:
        recent = f"return {np.mean(self.recent_returns):.1f}" if self.recent_returns else "return -"
        evaluated = f"eval {self.last_eval.mean:.1f}" if self.last_eval else "eval -"
        return f"{recent} | {evaluated} | {rate:.0f} steps/s"


def _eval_state(result: EvalResult | None) -> list[list[float]] | None:
    return None if result is None else [list(result.returns), list(result.lengths)]


def _eval_result(state: list[list[float]] | None) -> EvalResult | None:
    return None if state is None else EvalResult(tuple(state[0]), tuple(int(n) for n in state[1]))
