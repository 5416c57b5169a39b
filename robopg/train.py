"""The off-policy training loop shared by DDPG, TD3 and DPG.

Per environment step: act with the behaviour policy (uniform random during warm-up, then the
deterministic actor plus exploration noise), store the transition, and make
``updates_per_step`` learner updates on uniform minibatches from replay. Deterministic
evaluations, atomic checkpoints and metrics at fixed step intervals; ``resume`` continues from
the last checkpoint with the replay memory, optimizers and every random generator restored.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from robopg import checkpoint
from robopg.algos import OffPolicyLearner, make_learner
from robopg.atomic import atomic_write_text
from robopg.buffers import Batch, ReplayBuffer
from robopg.config import OffPolicyConfig, config_from_dict, config_to_dict, config_to_toml
from robopg.envs import make_env
from robopg.evaluation import EvalResult, evaluate
from robopg.metrics import RunLogger
from robopg.noise import make_noise
from robopg.progress import ProgressReporter

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never reuse a training episode's seed
NORMALIZER_FLUSH = 256  # observations gathered before one normalizer update: one torch call, not 256


class RunDirError(ValueError):
    """The output folder cannot be used for this run."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    train_seconds: float  # seconds less the time spent in evaluation
    final_eval: EvalResult


def policy_fn(learner: OffPolicyLearner):
    """The deterministic policy as numpy in, actuator units out."""
    policy = learner.policy()

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        return policy(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    return act


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


class OffPolicyTrainer:
    def __init__(self, env_id: str, config: OffPolicyConfig, run_dir: Path, *, show_progress: bool = True) -> None:
        self.env_id, self.config, self.run_dir = env_id, config, Path(run_dir)
        self.show_progress = show_progress
        torch.set_num_threads(config.torch_threads)
        torch.manual_seed(config.seed)
        self.env = make_env(env_id)
        self.eval_env = make_env(env_id)
        space = self.env.action_space
        self.obs_dim = int(np.prod(self.env.observation_space.shape))
        self.act_dim = int(np.prod(space.shape))
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.learner = make_learner(config, self.obs_dim, space.low, space.high, self.generator)
        self.buffer = ReplayBuffer(config.buffer_size, self.obs_dim, self.act_dim)
        self.noise = make_noise(config.noise, (self.act_dim,), config.noise_std, self.rng, config.ou_theta)
        self.step = 0
        self.episodes = 0
        self.elapsed = 0.0
        self.eval_seconds = 0.0  # kept out of the training clock, so time-to-threshold compares training
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.last_eval: EvalResult | None = None

    # ---- persistence -------------------------------------------------------------------------
    def _metadata(self) -> dict:
        space = self.env.action_space
        return {
            "env_id": self.env_id,
            "algo": self.config.algo,
            "config": config_to_dict(self.config),
            "obs_dim": self.obs_dim,
            "action_low": torch.as_tensor(space.low, dtype=torch.float32),
            "action_high": torch.as_tensor(space.high, dtype=torch.float32),
            "step": self.step,
        }

    def save(self) -> None:
        """Resume state first, then the small checkpoint: a crash between them loses nothing."""
        checkpoint.save(self.run_dir / checkpoint.RESUME_FILE, {
            **self._metadata(),
            "learner": self.learner.state_dict(),
            "buffer": {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                       for k, v in self.buffer.state_dict().items()},
            "loop": {
                "episodes": self.episodes,
                "elapsed": self.elapsed,
                "eval_seconds": self.eval_seconds,
                "recent_returns": list(self.recent_returns),
                "numpy_rng": self.rng.bit_generator.state,
                "torch_generator": self.generator.get_state(),
                "torch_global": torch.get_rng_state(),
                "noise": torch.from_numpy(self.noise.get_state()),
                "last_eval": None if self.last_eval is None else [list(self.last_eval.returns),
                                                                  list(self.last_eval.lengths)],
            },
        })
        checkpoint.save(self.run_dir / checkpoint.CHECKPOINT_FILE,
                        {**self._metadata(), "learner": self.learner.state_dict()})

    def restore(self, state: dict) -> None:
        self.learner.load_state_dict(state["learner"])
        self.buffer.load_state_dict({k: v.numpy() if isinstance(v, torch.Tensor) else v
                                     for k, v in state["buffer"].items()})
        loop = state["loop"]
        self.step = int(state["step"])
        self.episodes = int(loop["episodes"])
        self.elapsed = float(loop["elapsed"])
        self.eval_seconds = float(loop["eval_seconds"])
        self.recent_returns.extend(loop["recent_returns"])
        self.rng.bit_generator.state = loop["numpy_rng"]
        self.generator.set_state(loop["torch_generator"])
        torch.set_rng_state(loop["torch_global"])
        self.noise.set_state(loop["noise"].numpy())
        if loop["last_eval"] is not None:
            self.last_eval = EvalResult(tuple(loop["last_eval"][0]), tuple(loop["last_eval"][1]))

    # ---- the loop ----------------------------------------------------------------------------
    def behaviour_action(self, obs: np.ndarray) -> np.ndarray:
        """Uniform random before learning starts, then μ(s) + noise, in [-1, 1] units."""
        if self.step < self.config.learning_starts:
            return self.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
        action = self.learner.act(torch.from_numpy(obs)).numpy()
        return np.clip(action + self.noise(), -1.0, 1.0)

    def start_episode(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self.config.seed + self.episodes)
        self.noise.reset()
        return np.asarray(obs, dtype=np.float32)

    def update_normalizer(self, pending_obs: list[np.ndarray]) -> None:
        if self.config.normalize_obs and pending_obs:
            self.learner.normalizer.update(torch.from_numpy(np.stack(pending_obs)))
        pending_obs.clear()

    def evaluate(self) -> EvalResult:
        result = evaluate(policy_fn(self.learner), self.eval_env, self.config.eval_episodes,
                          seed=self.config.seed + EVAL_SEED_OFFSET)
        self.last_eval = result
        return result

    def run(self, resume_state: dict | None = None) -> TrainResult:
        c = self.config
        if resume_state is not None:
            self.restore(resume_state)
        logger = RunLogger(self.run_dir, resume_step=self.step if resume_state is not None else None)
        reporter = ProgressReporter(f"{c.algo} {self.env_id}", c.total_steps, self.step, self.show_progress)
        scale = self.learner.scaler
        low, high = self.env.action_space.low, self.env.action_space.high
        center, half_range = scale.center.numpy(), scale.half_range.numpy()

        obs = self.start_episode()
        pending_obs: list[np.ndarray] = [obs]
        episode_return, episode_length = 0.0, 0
        checkpoint_due = False
        stats: dict[str, torch.Tensor] = {}
        started, interval_start, interval_step = time.perf_counter(), time.perf_counter(), self.step
        try:
            while self.step < c.total_steps:
                unit_action = self.behaviour_action(obs)
                env_action = np.clip(center + half_range * unit_action, low, high)
                next_obs, reward, terminated, truncated, _ = self.env.step(env_action)
                next_obs = np.asarray(next_obs, dtype=np.float32)
                self.buffer.add(obs, unit_action, float(reward), next_obs, terminated)
                self.step += 1
                episode_return += float(reward)
                episode_length += 1
                pending_obs.append(next_obs)
                if len(pending_obs) >= NORMALIZER_FLUSH:
                    self.update_normalizer(pending_obs)

                if self.step >= c.learning_starts:
                    for _ in range(c.updates_per_step):
                        stats = self.learner.update(self.sample())

                if self.step % c.log_every == 0 or self.step == c.total_steps:
                    now = time.perf_counter()
                    rate = (self.step - interval_step) / max(now - interval_start, 1e-9)
                    interval_start, interval_step = now, self.step
                    logger.train_stats(self.step, self.elapsed + now - started, rate,
                                       {k: float(v) for k, v in stats.items()})
                    reporter.update(self.step, self._status(rate))
                if self.step % c.eval_every == 0 or self.step == c.total_steps:
                    eval_started = time.perf_counter()
                    result = self.evaluate()
                    self.eval_seconds += time.perf_counter() - eval_started
                    train_seconds = self.elapsed + time.perf_counter() - started - self.eval_seconds
                    logger.evaluation(self.step, train_seconds, result.mean, result.std)
                checkpoint_due = checkpoint_due or self.step % c.checkpoint_every == 0

                if terminated or truncated:
                    self.episodes += 1
                    self.recent_returns.append(episode_return)
                    logger.episode(self.step, episode_return, episode_length)
                    episode_return, episode_length = 0.0, 0
                    if checkpoint_due:
                        # At an episode boundary the env holds no state a checkpoint would miss, so a
                        # resumed run goes on exactly as this one does.
                        self.update_normalizer(pending_obs)
                        self.elapsed += time.perf_counter() - started
                        started = time.perf_counter()
                        self.save()
                        checkpoint_due = False
                    if self.step < c.total_steps:
                        obs = self.start_episode()
                        pending_obs.append(obs)
                else:
                    obs = next_obs
            self.update_normalizer(pending_obs)
            self.elapsed += time.perf_counter() - started
            self.save()
        finally:
            reporter.close()
            logger.close()
        logger.plot(f"{c.algo.upper()} on {self.env_id}")
        self.env.close()
        self.eval_env.close()
        final_eval = self.last_eval or self.evaluate()
        return TrainResult(self.run_dir, self.step, self.elapsed, self.elapsed - self.eval_seconds, final_eval)

    def sample(self) -> Batch:
        if self.config.use_replay:
            return self.buffer.sample(self.config.batch_size, self.rng)
        return self.buffer.latest(1)

    def _status(self, rate: float) -> str:
        recent = f"return {np.mean(self.recent_returns):.1f}" if self.recent_returns else "return -"
        evaluated = f"eval {self.last_eval.mean:.1f}" if self.last_eval else "eval -"
        return f"{recent} | {evaluated} | {rate:.0f} steps/s"


def train(env_id: str, config: OffPolicyConfig, run_dir: Path, *, show_progress: bool = True) -> TrainResult:
    """Train a new run in ``run_dir`` (which must not hold a run yet)."""
    run_dir = Path(run_dir)
    prepare_new_run_dir(run_dir)
    trainer = OffPolicyTrainer(env_id, config, run_dir, show_progress=show_progress)
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
    trainer = OffPolicyTrainer(state["env_id"], config, run_dir, show_progress=show_progress)
    return trainer.run(resume_state=state)


__all__ = ["OffPolicyTrainer", "RunDirError", "TrainResult", "resume", "train"]
