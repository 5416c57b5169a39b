"""What a fine-tuning session keeps: a significance test between evaluations, rollback, and saving.

Robot episodes start where they start, so two evaluations differ by their initial states as much as by
their policies; picking the higher mean of a few episodes would keep lucky draws (a winner's curse). Every
comparison is a test of the difference of the means at ``z`` standard errors, each side's variance taken as the
larger of the two sample variances: a few episodes of a policy whose returns are bimodal by initial state can
all land in one mode and show a spread far below the policy's (on the swing-up, 5 episodes at 145.9 ± 2.4 of a
policy that averages 128 over 20), and Welch's test, which trusts each side's own sample variance, then passed
a policy no better than the deployed one.

Before the test, each return is adjusted for its episode's initial state (regression adjustment, as ANCOVA
and as CUPED in online experiments, Deng et al. 2013): the covariate is the evaluated policy's return that the
robot's simulated twin predicts from the episode's first observation (``twin.return_predictor``), and each
policy's adjusted mean is its mean return over the initial states of every compared episode, so the
comparison no longer turns on which policy drew the easier starts. The slope, fitted within the compared
evaluations, takes from the prediction only what it explains: where the initial state decides much of the
return (a reacher's target far or near) the spread shrinks; where the twin predicts nothing (a chaotic
swing-up) the slope is near 0 and the returns stay as they are. Each policy's prediction is a function of the
initial state fixed before its episodes run, so the adjustment does not move a mean in expectation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robopg import checkpoint
from robopg.export import export_policy

Verdict = Literal["best, saved", "rolled back", ""]
Predict = Callable[[np.ndarray], float]  # a policy's return predicted from an episode's first observation


def clearly_better(new: Sequence[float], old: Sequence[float], z: float) -> bool:
    """Whether returns ``new`` beat ``old`` by more than ``z`` standard errors of the difference of the means:
    (mean_new − mean_old) / sqrt(max(s²_new, s²_old) · (1/n + 1/m)) > z, Welch's statistic with both sides'
    variance the larger sample variance (module docstring); at z = 2 a policy that is no better passes at most
    about 2 % of the time."""
    new_a, old_a = np.asarray(new, dtype=np.float64), np.asarray(old, dtype=np.float64)
    if min(len(new_a), len(old_a)) < 2:
        raise ValueError("a comparison needs at least 2 returns on each side")
    diff = new_a.mean() - old_a.mean()
    variance = max(new_a.var(ddof=1), old_a.var(ddof=1))
    standard_error = math.sqrt(variance * (1 / len(new_a) + 1 / len(old_a)))
    return bool(diff > z * standard_error)


@dataclass(frozen=True)
class Evaluation:
    """An evaluation's robot episodes: each one's return and first observation, and ``predict``, the return the
    twin predicts for the evaluated policy from a first observation (None: no prediction)."""

    returns: tuple[float, ...]
    starts: tuple[np.ndarray, ...]
    predict: Predict | None = None
    _predicted: dict[bytes, float] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.returns) != len(self.starts):
            raise ValueError(f"{len(self.returns)} returns but {len(self.starts)} first observations")

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns, ddof=1))

    def predicted(self, starts: Sequence[np.ndarray]) -> np.ndarray:
        """The evaluated policy's predicted return from each of ``starts`` (0 without a prediction); each
        computed once."""
        if self.predict is None:
            return np.zeros(len(starts))
        for start in starts:
            if start.tobytes() not in self._predicted:
                self._predicted[start.tobytes()] = self.predict(start)
        return np.array([self._predicted[start.tobytes()] for start in starts])

    def __add__(self, other: Evaluation) -> Evaluation:
        """Both evaluations' episodes, pooled (the same policy's)."""
        return Evaluation(self.returns + other.returns, self.starts + other.starts, self.predict or other.predict,
                          {**self._predicted, **other._predicted})


def adjusted(evaluations: Sequence[Evaluation]) -> list[np.ndarray]:
    """Each evaluation's returns y less slope × (x − m): x the evaluated policy's predicted return from each of
    its episodes' first observations, m the mean of that policy's predictions over every compared episode's
    first observation (the same initial states for every policy, so each adjusted mean estimates its policy's
    mean return over one distribution of initial states), and the slope the returns' on the predictions within
    each evaluation, pooled: Σ (x − x̄ₖ)(y − ȳₖ) / Σ (x − x̄ₖ)² (ANCOVA's common slope; 0 where no prediction
    varies)."""
    starts = [start for evaluation in evaluations for start in evaluation.starts]
    xs = [e.predicted(e.starts) for e in evaluations]
    ys = [np.asarray(e.returns, dtype=np.float64) for e in evaluations]
    centers = [float(np.mean(e.predicted(starts))) for e in evaluations]
    spread = sum(float(np.sum(np.square(x - x.mean()))) for x in xs)
    covariation = sum(float(np.sum((x - x.mean()) * (y - y.mean()))) for x, y in zip(xs, ys, strict=True))
    slope = covariation / spread if spread > 0 else 0.0
    return [y - slope * (x - center) for x, y, center in zip(xs, ys, centers, strict=True)]


def verdict(new: Evaluation, best: Evaluation, baseline: Evaluation, z: float) -> Verdict:
    """An evaluation clearly better than the best so far and than the deployed policy is kept and saved; one
    clearly worse than the best so far is rolled back to it; anything else changes nothing. Returns are
    compared adjusted for their initial states (module docstring)."""
    distinct = list({id(e): e for e in (new, best, baseline)}.values())  # the best is the baseline at first
    returns = dict(zip(map(id, distinct), adjusted(distinct), strict=True))
    new_r, best_r, baseline_r = returns[id(new)], returns[id(best)], returns[id(baseline)]
    if clearly_better(new_r, best_r, z) and clearly_better(new_r, baseline_r, z):
        return "best, saved"
    if clearly_better(best_r, new_r, z):
        return "rolled back"
    return ""


def no_better(new: Evaluation, baseline: Evaluation) -> bool:
    """Whether ``new``'s mean return, adjusted for the initial states, is at most ``baseline``'s."""
    new_r, baseline_r = adjusted([new, baseline])
    return bool(new_r.mean() <= baseline_r.mean())


def save_finetuned(learner: Any, state: dict[str, Any], out_dir: Path) -> None:
    """The fine-tuned learner as a checkpoint of the original's kind, then its verified ONNX."""
    checkpoint.save(out_dir / checkpoint.CHECKPOINT_FILE, dict(state, learner=learner.state_dict()))
    export_policy(out_dir / checkpoint.CHECKPOINT_FILE, out_dir / "policy.onnx")
