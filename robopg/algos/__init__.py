"""One readable file per algorithm; ``make_learner`` picks one from a config."""

from __future__ import annotations

import numpy as np
import torch

from robopg.algos.a2c import A2C
from robopg.algos.actor_critic import QActorCritic
from robopg.algos.base import OffPolicyLearner
from robopg.algos.ddpg import DDPG
from robopg.algos.dpg import DPG
from robopg.algos.offpac import OffPAC
from robopg.algos.reinforce import Reinforce
from robopg.algos.sil import A2CSIL
from robopg.config import (
    A2CConfig,
    ActorCriticConfig,
    DDPGConfig,
    DPGConfig,
    OffPACConfig,
    ReinforceConfig,
    RunConfig,
    SILConfig,
)

# Most specific first: SIL and A3C configs are A2C configs too (A3C's learner is A2C's).
LEARNERS: tuple[tuple[type[RunConfig], type], ...] = (
    (DDPGConfig, DDPG),
    (DPGConfig, DPG),
    (ReinforceConfig, Reinforce),
    (ActorCriticConfig, QActorCritic),
    (OffPACConfig, OffPAC),
    (SILConfig, A2CSIL),
    (A2CConfig, A2C),
)


def make_learner(
    config: RunConfig, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray, generator: torch.Generator
):
    """The learner of ``config``'s algorithm; ``learner.policy()`` is its deterministic policy."""
    for config_class, learner_class in LEARNERS:
        if isinstance(config, config_class):
            return learner_class(config, obs_dim, action_low, action_high, generator)
    raise TypeError(f"no learner for config {type(config).__name__}")


__all__ = ["A2C", "A2CSIL", "DDPG", "DPG", "OffPAC", "OffPolicyLearner", "QActorCritic", "Reinforce", "make_learner"]
