"""What a fine-tuning session keeps: a significance test between evaluations, rollback, and saving.

Robot episodes start where they start, so two evaluations differ by their initial states as much as by
their policies; picking the higher mean of a few episodes would keep lucky draws (a winner's curse). Every
comparison is a test of the difference of the means at ``z`` standard errors, each side's variance taken as the
larger of the two sample variances: a few episodes of a policy whose returns are bimodal by initial state can
all land in one mode and show a spread far below the policy's (on the swing-up, 5 episodes at 145.9 ± 2.4 of a
policy that averages 128 over 20), and Welch's test, which trusts each side's own sample variance, then passed
a policy no better than the deployed one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def verdict(returns: Sequence[float], best: Sequence[float], baseline: Sequence[float], z: float) -> Verdict:
    """An evaluation clearly better than the best so far and than the deployed policy is kept and saved; one
    clearly worse than the best so far is rolled back to it; anything else changes nothing."""
    if clearly_better(returns, best, z) and clearly_better(returns, baseline, z):
        return "best, saved"
    if clearly_better(best, returns, z):
        return "rolled back"
    return ""


def save_finetuned(learner: Any, state: dict[str, Any], out_dir: Path) -> None:
    """The fine-tuned learner as a checkpoint of the original's kind, then its verified ONNX."""
    checkpoint.save(out_dir / checkpoint.CHECKPOINT_FILE, dict(state, learner=learner.state_dict()))
    export_policy(out_dir / checkpoint.CHECKPOINT_FILE, out_dir / "policy.onnx")
