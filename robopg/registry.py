"""The one table of algorithms: a name maps to its config class, its learner class and how it gathers
experience. Every lookup by name (the command line, configs read from TOML, checkpoints, fine-tuning)
reads this table; adding an algorithm is one file in ``robopg/algos/`` and one line here (or a call to
:func:`register`, for an algorithm defined outside robopg).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from robopg.algos.a2c import A2C, A2CConfig
from robopg.algos.a3c import A3CConfig
from robopg.algos.actor_critic import ActorCriticConfig, QActorCritic
from robopg.algos.cautious_a2c import CautiousA2C, CautiousA2CConfig
from robopg.algos.cautious_ddpg import CautiousDDPG, CautiousDDPGConfig
from robopg.algos.ddpg import DDPG, DDPGConfig, TD3Config
from robopg.algos.dpg import DPG, DPGConfig
from robopg.algos.offpac import OffPAC, OffPACConfig
from robopg.algos.reinforce import Reinforce, ReinforceConfig
from robopg.algos.sil import A2CSIL, SILConfig
from robopg.errors import ConfigError
from robopg.settings import Settings, build, require, to_dict

# How an algorithm gathers experience; ``robopg/training/run.py`` maps each kind of simulation training to
# its trainer, and ``robot`` learners run in a fine-tuning session on the robot (``robopg finetune``).
Kind = Literal["off_policy", "rollouts", "self_imitation", "episodes", "episode_replay", "a3c", "robot"]


@dataclass(frozen=True)
class Algorithm:
    name: str
    config: type[Settings]
    learner: type
    kind: Kind
    summary: str  # one line for --help

    @property
    def trains_in_simulation(self) -> bool:
        return self.kind != "robot"


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("ddpg", DDPGConfig, DDPG, "off_policy", "deep deterministic policy gradient (Lillicrap et al. 2015)"),
    Algorithm("td3", TD3Config, DDPG, "off_policy", "DDPG with TD3's three fixes (Fujimoto et al. 2018)"),
    Algorithm("dpg", DPGConfig, DPG, "off_policy", "deterministic actor-critic, compatible critic (Silver et al. "
                                                   "2014)"),
    Algorithm("reinforce", ReinforceConfig, Reinforce, "episodes", "REINFORCE (Williams 1992)"),
    Algorithm("ac", ActorCriticConfig, QActorCritic, "rollouts", "actor-critic with a Q critic (Sutton et al. 2000)"),
    Algorithm("a2c", A2CConfig, A2C, "rollouts", "advantage actor-critic (Mnih et al. 2016)"),
    Algorithm("a2c_sil", SILConfig, A2CSIL, "self_imitation", "A2C with self-imitation (Oh et al. 2018)"),
    Algorithm("offpac", OffPACConfig, OffPAC, "episode_replay", "off-policy actor-critic (Degris et al. 2012)"),
    Algorithm("a3c", A3CConfig, A2C, "a3c", "asynchronous advantage actor-critic (Mnih et al. 2016)"),
    Algorithm("cautious_a2c", CautiousA2CConfig, CautiousA2C, "robot", "cautious online A2C on the robot"),
    Algorithm("cautious_ddpg", CautiousDDPGConfig, CautiousDDPG, "robot", "cautious off-policy DDPG/TD3 on the "
                                                                          "robot, from the simulation's critic"),
)}


def register(algorithm: Algorithm) -> None:
    """Add an algorithm to the table (its name must be new)."""
    if algorithm.name in ALGORITHMS:
        raise ValueError(f"an algorithm named {algorithm.name!r} is registered already")
    ALGORITHMS[algorithm.name] = algorithm


def names(*, robot: bool = False) -> list[str]:
    """The algorithms that train in simulation (or, with ``robot``, that fine-tune on the robot)."""
    return [a.name for a in ALGORITHMS.values() if a.trains_in_simulation != robot]


def algorithm(name: str, *, robot: bool = False) -> Algorithm:
    """The algorithm called ``name``, which must train in simulation (or fine-tune on the robot)."""
    found = ALGORITHMS.get(name)
    if found is not None and not found.trains_in_simulation and not robot:
        raise ConfigError(f"{name} fine-tunes a deployed policy on the robot: robopg finetune --method {name}")
    if found is None or found.trains_in_simulation == robot:
        what = "fine-tuning method" if robot else "algorithm"
        raise ConfigError(f"unknown {what} {name!r} (choose from {', '.join(names(robot=robot))})")
    return found


def name_of(config: Settings) -> str:
    """The registered name of ``config``'s algorithm."""
    for entry in ALGORITHMS.values():
        if type(config) is entry.config:
            return entry.name
    raise ConfigError(f"{type(config).__name__} is not the config of a registered algorithm")


def make_config(name: str, overrides: dict[str, Any] | None = None, *, robot: bool = False) -> Any:
    """The config of algorithm ``name`` with ``overrides`` applied, checked by name, type and range."""
    return build(algorithm(name, robot=robot).config, dict(overrides or {}), f"{name} config")


@dataclass(frozen=True)
class ConfigFile:
    """A TOML config file as read: the algorithm and environment it names (a run folder's ``config.toml`` names
    both), its config values, and the package versions the run was made with."""

    path: Path
    algo: str | None
    env: str | None
    values: dict[str, Any]
    versions: dict[str, str]

    def algorithm(self, name: str | None) -> str:
        """The algorithm to train: ``name`` (the command line's) if given, which must agree with the file's."""
        require(name is None or self.algo is None or name == self.algo,
                f"config file {self.path} is for algorithm {self.algo!r}, not {name!r}")
        return name or self.algo or DEFAULT_ALGORITHM


DEFAULT_ALGORITHM = "ddpg"


def read_config_file(path: Path) -> ConfigFile:
    values = read_toml(path)
    algo, env, versions = values.pop("algo", None), values.pop("env", None), values.pop("versions", {})
    require(isinstance(versions, dict), f"config file {path}: versions must be a table of package versions")
    return ConfigFile(Path(path), algo, env, values, versions)


def load_config(name: str | None, path: Path, overrides: dict[str, Any] | None = None) -> Any:
    """Read a TOML file of config values for algorithm ``name`` (None: the file's); ``overrides`` win."""
    file = read_config_file(path)
    name = file.algorithm(name)
    return make_config(name, {**file.values, **(overrides or {})})


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def config_to_dict(config: Settings) -> dict[str, Any]:
    """The config as TOML values, with the algorithm's name under ``algo``."""
    return {"algo": name_of(config), **to_dict(config)}


def config_from_dict(values: dict[str, Any]) -> Any:
    values = dict(values)
    return make_config(values.pop("algo"), values)


def make_learner(config: Settings, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray,
                 generator: torch.Generator) -> Any:
    """The learner of ``config``'s algorithm; ``learner.policy()`` is its deterministic policy."""
    return ALGORITHMS[name_of(config)].learner(config, obs_dim, action_low, action_high, generator)


__all__ = ["ALGORITHMS", "DEFAULT_ALGORITHM", "Algorithm", "ConfigFile", "Kind", "algorithm", "config_from_dict",
           "config_to_dict", "load_config", "make_config", "make_learner", "name_of", "names", "read_config_file",
           "read_toml", "register"]
