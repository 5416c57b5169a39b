"""What a fine-tuning session keeps: a significance test between evaluations, rollback, and saving.

Robot episodes start where they start, so two evaluations differ by their initial states as much as by
their policies; picking the higher mean of a few episodes would keep lucky draws (a winner's curse). Every
comparison is a test of the difference of the means at ``z`` standard errors, each side's variance taken as the
larger of the two sample variances: a few episodes of a policy whose returns are bimodal by initial state can
all land in one mode and show a spread far below the policy's (on the swing-up, 5 episodes at 145.9 ± 2.4 of a
policy that averages 128 over 20), and Welch's test, which trusts each side's own sample variance, then passed
a policy no better than the deployed one.

Before the test, each return is adjusted for its episode's initial state (regression adjustment, as ANCOVA
and as CUPED in online experiments, Deng et al. 2013): the covariate is the deployed policy's return that the
robot's simulated twin predicts from the episode's first observation (``twin.return_predictor``), known
before the policy acts, and the adjustment removes the share of the returns' spread that it explains, with one
slope fitted within the compared evaluations. Where the initial state decides much of the return (a reacher's
target far or near) the spread shrinks; where the twin predicts nothing (a chaotic swing-up) the slope is near
0 and the returns stay as they are. Because the covariate does not depend on which policy ran, the adjustment
does not move the difference of the means in expectation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robopg import checkpoint
from robopg.export import export_policy

Verdict = Literal["best, saved", "rolled back", ""]


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
    """An evaluation's robot episodes: each one's return and the return predicted for the deployed policy from
    its initial state (the covariate; all equal when there is no prediction)."""

    returns: tuple[float, ...]
    predicted: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.returns) != len(self.predicted):
            raise ValueError(f"{len(self.returns)} returns but {len(self.predicted)} predictions")

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    def __add__(self, other: Evaluation) -> Evaluation:
        """Both evaluations' episodes, pooled."""
        return Evaluation(self.returns + other.returns, self.predicted + other.predicted)


def adjusted(evaluations: Sequence[Evaluation]) -> list[np.ndarray]:
    """Each evaluation's returns less slope × (prediction − the mean prediction over all of them): the slope of
    the returns on the predictions within each evaluation, pooled, Σ (x − x̄ₖ)(y − ȳₖ) / Σ (x − x̄ₖ)² (ANCOVA's
    common slope; 0 where the predictions do not vary within an evaluation)."""
    xs = [np.asarray(e.predicted, dtype=np.float64) for e in evaluations]
    ys = [np.asarray(e.returns, dtype=np.float64) for e in evaluations]
    spread = sum(float(np.sum(np.square(x - x.mean()))) for x in xs)
    covariation = sum(float(np.sum((x - x.mean()) * (y - y.mean()))) for x, y in zip(xs, ys, strict=True))
    slope = covariation / spread if spread > 0 else 0.0
    center = float(np.mean(np.concatenate(xs)))
    return [y - slope * (x - center) for x, y in zip(xs, ys, strict=True)]


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
