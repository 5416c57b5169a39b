"""One readable file per algorithm; ``make_learner`` picks one from a config."""

from __future__ import annotations

import numpy as np
import torch

from robopg.algos.base import OffPolicyLearner
from robopg.algos.ddpg import DDPG
from robopg.algos.dpg import DPG
from robopg.config import DDPGConfig, DPGConfig, OffPolicyConfig


def make_learner(
    config: OffPolicyConfig, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray, generator: torch.Generator
) -> OffPolicyLearner:
    if isinstance(config, DDPGConfig):
        return DDPG(config, obs_dim, action_low, action_high, generator)
    if isinstance(config, DPGConfig):
        return DPG(config, obs_dim, action_low, action_high, generator)
    raise TypeError(f"no learner for config {type(config).__name__}")


__all__ = ["DDPG", "DPG", "OffPolicyLearner", "make_learner"]
