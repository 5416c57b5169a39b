"""Training metrics to CSV files, TensorBoard and (optionally) Weights & Biases, and the learning-curve pictures."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from robopg.atomic import atomic_write
from robopg.errors import ConfigError, RunDirError


class CsvLog:
    """An append-only CSV with a fixed header; on resume, rows past the checkpoint are dropped, and those of
    ``redo_steps`` (which the resumed run writes again)."""

    def __init__(self, path: Path, columns: tuple[str, ...], resume_step: int | None = None,
                 redo_steps: frozenset[int] = frozenset()) -> None:
        self.path, self.columns = path, columns
        if not columns:  # read-only use
            return
        if resume_step is None or not path.exists():
            path.write_text(",".join(columns) + "\n")
        else:
            rows = [row for row in self.read()
                    if (step := int(float(row["step"]))) <= resume_step and step not in redo_steps]
            atomic_write(path, lambda tmp: self._write_rows(tmp, rows))

    def _write_rows(self, path: Path, rows: list[dict[str, str]]) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(rows)

    def append(self, **values: float) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow(values)

    def read(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))


def read_evaluations(run_dir: Path) -> list[tuple[int, float, float]]:
    """A run's evaluations as (step, training seconds, mean return)."""
    rows = CsvLog(run_dir / "eval.csv", ()).read() if (run_dir / "eval.csv").exists() else []
    return [(int(r["step"]), float(r["train_seconds"]), float(r["return_mean"])) for r in rows]


def first_reaching(threshold: float, evaluations: list[tuple[int, float, float]]) -> tuple[int, float] | None:
    """(step, training seconds) of the first evaluation whose mean return is at least ``threshold``."""
    return next(((step, seconds) for step, seconds, mean in evaluations if mean >= threshold), None)


class RunLogger:
    """Everything a run records: per-episode returns, periodic training stats, evaluations, and at the end its
    hyperparameters beside its final results (TensorBoard's HParams tab). ``wandb_run``: a W&B run that gets
    the same scalars."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, wandb_run: Any = None,
                 randomized: bool = False, evaluations_to_redo: set[int] | None = None) -> None:
        """``randomized``: the run draws dynamics at every reset; their spread goes to dynamics.csv.
        ``evaluations_to_redo``: steps whose evaluation was still queued at the checkpoint resumed from."""
        self.run_dir = run_dir
        self.wandb_run = wandb_run
        self.draws: dict[str, list[float]] = {}  # drawn since the last train_stats line, per parameter
        self.dynamics = CsvLog(run_dir / "dynamics.csv", ("step", "parameter", "episodes", "min", "mean", "max"),
                               resume_step) if randomized else None
        self.episodes = CsvLog(run_dir / "episodes.csv", ("step", "return", "length"), resume_step)
        self.progress = CsvLog(
            run_dir / "progress.csv", ("step", "seconds", "steps_per_s", "critic_loss", "actor_loss"), resume_step
        )
        self.evals = CsvLog(run_dir / "eval.csv", ("step", "train_seconds", "return_mean", "return_std"), resume_step,
                            frozenset(evaluations_to_redo or ()))
        self.tensorboard = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step)

    def episode(self, step: int, episode_return: float, length: int) -> None:
        self.episodes.append(step=step, **{"return": episode_return}, length=length)
        self.scalars(step, {"rollout/episode_return": episode_return})

    def train_stats(self, step: int, seconds: float, steps_per_s: float, stats: dict[str, float]) -> None:
        self.progress.append(step=step, seconds=round(seconds, 3), steps_per_s=round(steps_per_s, 1),
                             critic_loss=stats.get("critic_loss", ""), actor_loss=stats.get("actor_loss", ""))
        self.scalars(step, {"time/steps_per_s": steps_per_s, **{f"train/{k}": v for k, v in stats.items()}})
        self.flush_draws(step)

    def drew(self, draws: list[dict[str, float]]) -> None:
        """Dynamics drawn by episodes that started (one dict per episode); logged with the next stats line."""
        for draw in draws:
            for key, value in draw.items():
                self.draws.setdefault(key, []).append(value)

    def flush_draws(self, step: int) -> None:
        """The spread of the dynamics drawn since the last stats line: dynamics.csv and ``dynamics/KEY/...``."""
        if self.dynamics is None:
            return
        for key, values in sorted(self.draws.items()):
            low, mean, high = min(values), float(np.mean(values)), max(values)
            self.dynamics.append(step=step, parameter=key, episodes=len(values), min=low, mean=mean,
                                 max=high)
            self.scalars(step, {f"dynamics/{key}/min": low, f"dynamics/{key}/mean": mean,
                                f"dynamics/{key}/max": high})
        self.draws.clear()

    def evaluation(self, step: int, train_seconds: float, mean: float, std: float) -> None:
        self.evals.append(step=step, train_seconds=round(train_seconds, 3), return_mean=mean, return_std=std)
        self.scalars(step, {"eval/return_mean": mean, "eval/return_std": std})

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.tensorboard.add_scalar(name, value, step)
        if self.wandb_run is not None:
            self.wandb_run.log(values, step=step)

    def results(self, config: dict[str, Any], final: dict[str, float]) -> None:
        """The run's hyperparameters beside its final results: TensorBoard's HParams tab, W&B's summary."""
        plain = {k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in config.items()}
        for summary in hparams(plain, final):
            self.tensorboard.file_writer.add_summary(summary)
        step = max((int(r["step"]) for r in self.evals.read()), default=0)
        self.scalars(step, final)
        if self.wandb_run is not None:
            self.wandb_run.summary.update(final)

    def close(self) -> None:
        self.tensorboard.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()

    def plot(self, title: str) -> Path:
        """Episode returns (raw and smoothed) and evaluation returns against environment steps."""
        path = self.run_dir / "learning_curve.png"
        fig = Figure(figsize=(7, 4))  # no pyplot: no GUI backend, no global figure state
        ax = fig.subplots()
        episodes = self.episodes.read()
        if episodes:
            steps = [int(r["step"]) for r in episodes]
            returns = [float(r["return"]) for r in episodes]
            window = max(1, len(returns) // 20)
            smoothed = [float(np.mean(returns[max(0, i - window + 1): i + 1])) for i in range(len(returns))]
            ax.plot(steps, returns, color="tab:blue", alpha=0.25, label="training episodes (with noise)")
            ax.plot(steps, smoothed, color="tab:blue", label=f"training, mean of {window}")
        evals = self.evals.read()
        if evals:
            ax.errorbar([int(r["step"]) for r in evals], [float(r["return_mean"]) for r in evals],
                        yerr=[float(r["return_std"]) for r in evals], color="tab:red", marker="o",
                        capsize=3, label="evaluation (deterministic)")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("episode return")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
        return path


def plot_runs(run_dirs: list[Path], path: Path) -> Path:
    """The evaluations of several runs on one picture: mean return with a band of ± one standard deviation."""
    fmt = Path(path).suffix.lstrip(".").lower()
    fig = Figure(figsize=(7, 4))
    formats = fig.canvas.get_supported_filetypes()
    if fmt not in formats:
        raise ConfigError(f"cannot write a picture to {path}: give a file ending in "
                          f"{', '.join('.' + f for f in sorted(formats))}")
    ax = fig.subplots()
    for run_dir in run_dirs:
        eval_file = Path(run_dir) / "eval.csv"
        if not eval_file.exists():
            raise RunDirError(f"no eval.csv in {run_dir}: not a robopg run folder")
        rows = CsvLog(eval_file, ()).read()
        steps = np.array([int(r["step"]) for r in rows])
        mean = np.array([float(r["return_mean"]) for r in rows])
        std = np.array([float(r["return_std"]) for r in rows])
        (line,) = ax.plot(steps, mean, marker="o", markersize=3, label=Path(run_dir).name)
        ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return (mean ± std)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=100))
    return Path(path)
