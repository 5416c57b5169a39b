"""Training configurations: one frozen dataclass per algorithm, validated on construction.

A config is the single object an algorithm takes (no 26-argument constructors). It reads from
and writes to TOML so that a run directory records exactly what produced it.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import tomli_w

from robopg.errors import ConfigError


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _int_at_least(name: str, value: int, low: int) -> None:
    _require(isinstance(value, int) and not isinstance(value, bool) and value >= low,
             f"{name} must be an integer >= {low}, got {value!r}")


def _positive(name: str, value: float) -> None:
    _require(isinstance(value, int | float) and value > 0, f"{name} must be > 0, got {value!r}")


def _non_negative(name: str, value: float) -> None:
    _require(isinstance(value, int | float) and value >= 0, f"{name} must be >= 0, got {value!r}")


def _in_unit_interval(name: str, value: float, *, closed_low: bool = False) -> None:
    ok = (0 <= value <= 1) if closed_low else (0 < value <= 1)
    interval = "[0, 1]" if closed_low else "(0, 1]"
    _require(isinstance(value, int | float) and ok, f"{name} must be in {interval}, got {value!r}")


def _hidden(name: str, value: tuple[int, ...]) -> None:
    _require(
        len(value) > 0 and all(isinstance(h, int) and h > 0 for h in value),
        f"{name} must be a non-empty list of positive layer widths, got {list(value)!r}",
    )


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """What every training run has, whatever the algorithm."""

    total_steps: int = 30_000
    seed: int = 0
    eval_every: int = 5_000
    eval_episodes: int = 5
    checkpoint_every: int = 5_000
    log_every: int = 1_000
    torch_threads: int = 1
    anneal_lr: bool = False  # learning rates decay linearly to 0 at total_steps (Mnih et al. 2016)

    def __post_init__(self) -> None:
        for name in ("total_steps", "eval_every", "eval_episodes", "checkpoint_every", "log_every",
                     "torch_threads"):
            _int_at_least(name, getattr(self, name), 1)
        _int_at_least("seed", self.seed, 0)
        _require(isinstance(self.anneal_lr, bool), f"anneal_lr must be true or false, got {self.anneal_lr!r}")


NoiseKind = Literal["gaussian", "ou"]
MatmulPrecision = Literal["float32", "bfloat16"]


@dataclass(frozen=True, kw_only=True)
class OffPolicyConfig(RunConfig):
    """Replay, target networks and exploration shared by DDPG, TD3 and DPG."""

    algo: ClassVar[str]

    gamma: float = 0.99
    tau: float = 0.005
    batch_size: int = 256
    buffer_size: int = 200_000
    learning_starts: int = 2_000
    updates_per_step: int = 1
    noise: NoiseKind = "gaussian"
    noise_std: float = 0.2
    ou_theta: float = 0.15
    normalize_obs: bool = True
    use_replay: bool = True  # False: learn online from the latest transition only (Silver et al. 2014)

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_unit_interval("gamma", self.gamma)
        _in_unit_interval("tau", self.tau)
        for name in ("batch_size", "buffer_size", "updates_per_step"):
            _int_at_least(name, getattr(self, name), 1)
        _int_at_least("learning_starts", self.learning_starts, 0)
        _require(self.batch_size <= self.buffer_size,
                 f"batch_size ({self.batch_size}) must not exceed buffer_size ({self.buffer_size})")
        _require(self.noise in ("gaussian", "ou"), f"noise must be 'gaussian' or 'ou', got {self.noise!r}")
        _non_negative("noise_std", self.noise_std)
        _positive("ou_theta", self.ou_theta)


@dataclass(frozen=True, kw_only=True)
class DDPGConfig(OffPolicyConfig):
    """DDPG (Lillicrap et al. 2015); the TD3 fixes (Fujimoto et al. 2018) are options."""

    algo: ClassVar[str] = "ddpg"

    actor_hidden: tuple[int, ...] = (256, 256)
    critic_hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    twin_critics: bool = False
    policy_delay: int = 1
    target_noise: float = 0.0
    target_noise_clip: float = 0.5
    # bfloat16: the hidden layers' matrix products of the update in bf16 (weights, outputs, losses and the
    # optimizer stay float32), on CPUs with bf16 units (AVX512-BF16, AMX). Acting and export are float32.
    matmul_precision: MatmulPrecision = "float32"

    def __post_init__(self) -> None:
        super().__post_init__()
        _hidden("actor_hidden", self.actor_hidden)
        _hidden("critic_hidden", self.critic_hidden)
        _positive("actor_lr", self.actor_lr)
        _positive("critic_lr", self.critic_lr)
        _int_at_least("policy_delay", self.policy_delay, 1)
        _non_negative("target_noise", self.target_noise)
        _non_negative("target_noise_clip", self.target_noise_clip)
        _require(self.matmul_precision in ("float32", "bfloat16"),
                 f"matmul_precision must be 'float32' or 'bfloat16', got {self.matmul_precision!r}")
        _require(self.matmul_precision == "float32" or _cpu_has_bf16(),
                 "matmul_precision 'bfloat16' needs a CPU with bf16 instructions (AVX512-BF16 or AMX); "
                 "this one has none")


@dataclass(frozen=True, kw_only=True)
class TD3Config(DDPGConfig):
    """TD3 (Fujimoto et al. 2018): DDPG with twin critics, target smoothing and delayed actor."""

    algo: ClassVar[str] = "td3"

    twin_critics: bool = True
    policy_delay: int = 2
    target_noise: float = 0.2


@dataclass(frozen=True, kw_only=True)
class DPGConfig(OffPolicyConfig):
    """Off-policy deterministic actor-critic with a compatible critic (Silver et al. 2014, COPDAC-Q)."""

    algo: ClassVar[str] = "dpg"

    actor_hidden: tuple[int, ...] = (64, 64)
    value_hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 1e-3
    use_target_networks: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _hidden("actor_hidden", self.actor_hidden)
        _hidden("value_hidden", self.value_hidden)
        _positive("actor_lr", self.actor_lr)
        _positive("critic_lr", self.critic_lr)


@dataclass(frozen=True, kw_only=True)
class OnPolicyConfig(RunConfig):
    """A Gaussian policy π(a|s) = N(μθ(s), σ²) whose mean μθ is the deterministic policy that export uses,
    a value critic, and synchronous rollouts from ``num_envs`` simulator instances."""

    algo: ClassVar[str]

    gamma: float = 0.99
    num_envs: int = 4
    actor_hidden: tuple[int, ...] = (64, 64)
    critic_hidden: tuple[int, ...] = (64, 64)
    actor_lr: float = 3e-4
    critic_lr: float = 1e-3
    init_log_std: float = -0.5
    entropy_coef: float = 0.0
    max_grad_norm: float = 0.5
    normalize_obs: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_unit_interval("gamma", self.gamma)
        _int_at_least("num_envs", self.num_envs, 1)
        _hidden("actor_hidden", self.actor_hidden)
        _hidden("critic_hidden", self.critic_hidden)
        _positive("actor_lr", self.actor_lr)
        _positive("critic_lr", self.critic_lr)
        _require(isinstance(self.init_log_std, int | float) and -5 <= self.init_log_std <= 1,
                 f"init_log_std must be in [-5, 1], got {self.init_log_std!r}")
        _non_negative("entropy_coef", self.entropy_coef)
        _positive("max_grad_norm", self.max_grad_norm)


ReinforceVariant = Literal["return", "baseline", "reward_to_go"]
Advantage = Literal["mc", "td", "nstep", "gae"]


@dataclass(frozen=True, kw_only=True)
class ReinforceConfig(OnPolicyConfig):
    """REINFORCE (Williams 1992) on whole episodes: ψ_t = R(τ), R(τ) − mean R, or the reward-to-go."""

    algo: ClassVar[str] = "reinforce"

    variant: ReinforceVariant = "reward_to_go"
    episodes_per_update: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.variant in ("return", "baseline", "reward_to_go"),
                 f"variant must be 'return', 'baseline' or 'reward_to_go', got {self.variant!r}")
        _int_at_least("episodes_per_update", self.episodes_per_update, 1)


@dataclass(frozen=True, kw_only=True)
class A2CConfig(OnPolicyConfig):
    """Advantage actor-critic (Mnih et al. 2016, synchronous form) with a choice of advantage estimator."""

    algo: ClassVar[str] = "a2c"

    rollout_steps: int = 16
    advantage: Advantage = "gae"
    n_step: int = 5
    gae_lambda: float = 0.95
    value_coef: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _int_at_least("rollout_steps", self.rollout_steps, 1)
        _require(self.advantage in ("mc", "td", "nstep", "gae"),
                 f"advantage must be 'mc', 'td', 'nstep' or 'gae', got {self.advantage!r}")
        _int_at_least("n_step", self.n_step, 1)
        _in_unit_interval("gae_lambda", self.gae_lambda, closed_low=True)
        _positive("value_coef", self.value_coef)


Backend = Literal["local", "ray"]


@dataclass(frozen=True, kw_only=True)
class A3CConfig(A2CConfig):
    """A3C (Mnih et al. 2016): ``workers`` actor-learners, each with its own simulators, seed, initial-state
    range and entropy β, sending gradients asynchronously to a global actor and critic."""

    algo: ClassVar[str] = "a3c"

    num_envs: int = 1
    workers: int = 2
    backend: Backend = "local"
    ray_address: str = ""
    worker_init_ranges: tuple[float, ...] = ()
    worker_entropy_coefs: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        _int_at_least("workers", self.workers, 1)
        # Local workers step the global optimizers in their own processes, each with its own learning rate.
        _require(not self.anneal_lr, "anneal_lr is not available for a3c (its workers keep their own learning rates)")
        _require(self.backend in ("local", "ray"), f"backend must be 'local' or 'ray', got {self.backend!r}")
        for name in ("worker_init_ranges", "worker_entropy_coefs"):
            values = getattr(self, name)
            _require(len(values) in (0, self.workers),
                     f"{name} must be empty or give one value per worker ({self.workers}), got {len(values)}")
            _require(all(isinstance(v, int | float) and v >= 0 for v in values), f"{name} must be >= 0")


@dataclass(frozen=True, kw_only=True)
class SILConfig(A2CConfig):
    """A2C plus self-imitation learning (Oh et al. 2018): ``sil_updates`` prioritized minibatches of past
    (s, a, R) per A2C update, learning only where the return beat V(s)."""

    algo: ClassVar[str] = "a2c_sil"

    sil_updates: int = 2
    sil_batch_size: int = 64
    sil_buffer_size: int = 100_000
    sil_value_coef: float = 0.01
    sil_alpha: float = 0.6
    sil_beta: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        _int_at_least("sil_updates", self.sil_updates, 1)
        _int_at_least("sil_batch_size", self.sil_batch_size, 1)
        _int_at_least("sil_buffer_size", self.sil_buffer_size, 1)
        _positive("sil_value_coef", self.sil_value_coef)
        _in_unit_interval("sil_alpha", self.sil_alpha, closed_low=True)
        _in_unit_interval("sil_beta", self.sil_beta, closed_low=True)


@dataclass(frozen=True, kw_only=True)
class OffPACConfig(OnPolicyConfig):
    """Off-policy actor-critic with importance sampling: episodes from a behaviour policy b (the policy
    with its standard deviation times ``behaviour_std_scale``) with b(a|s) stored, replayed with
    per-decision importance weights truncated at ``rho_clip``, and a value baseline."""

    algo: ClassVar[str] = "offpac"

    episodes_per_update: int = 4
    replay_episodes: int = 32
    replay_batch: int = 8
    behaviour_std_scale: float = 1.5
    rho_clip: float = 2.0
    value_coef: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _int_at_least("episodes_per_update", self.episodes_per_update, 1)
        _int_at_least("replay_episodes", self.replay_episodes, 1)
        _int_at_least("replay_batch", self.replay_batch, 1)
        _require(self.replay_batch <= self.replay_episodes,
                 f"replay_batch ({self.replay_batch}) must not exceed replay_episodes ({self.replay_episodes})")
        _require(isinstance(self.behaviour_std_scale, int | float) and self.behaviour_std_scale >= 1,
                 f"behaviour_std_scale must be >= 1 (b must cover π), got {self.behaviour_std_scale!r}")
        _positive("rho_clip", self.rho_clip)
        _positive("value_coef", self.value_coef)


@dataclass(frozen=True, kw_only=True)
class ActorCriticConfig(OnPolicyConfig):
    """Actor-critic in the policy gradient theorem's form: ψ = Q_φ(s, a), Q learned by on-policy TD."""

    algo: ClassVar[str] = "ac"

    rollout_steps: int = 16
    value_coef: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _int_at_least("rollout_steps", self.rollout_steps, 1)
        _positive("value_coef", self.value_coef)


CONFIG_CLASSES: dict[str, type[RunConfig]] = {
    cls.algo: cls
    for cls in (DDPGConfig, TD3Config, DPGConfig, ReinforceConfig, ActorCriticConfig, A2CConfig, SILConfig,
                OffPACConfig, A3CConfig)
}


def _cpu_has_bf16() -> bool:
    import torch  # here, not at the top: the CLI checks a config before it pays for importing torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def config_class(algo: str) -> type[RunConfig]:
    try:
        return CONFIG_CLASSES[algo]
    except KeyError:
        raise ConfigError(f"unknown algorithm {algo!r} (choose from {', '.join(CONFIG_CLASSES)})") from None


def _coerce(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Check names and types from TOML before the dataclass validates ranges."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    _require(not unknown, f"unknown {cls.algo} config key(s): {', '.join(unknown)}")
    coerced: dict[str, Any] = {}
    for name, value in values.items():
        default = known[name].default
        if isinstance(default, tuple):
            _require(isinstance(value, list | tuple), f"{name} must be a list, got {value!r}")
            value = tuple(value)
        elif isinstance(default, bool):
            _require(isinstance(value, bool), f"{name} must be true or false, got {value!r}")
        elif isinstance(default, float):
            _require(isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
                     f"{name} must be a number, got {value!r}")
            value = float(value)
        elif isinstance(default, int):
            _require(isinstance(value, int) and not isinstance(value, bool),
                     f"{name} must be an integer, got {value!r}")
        coerced[name] = value
    return coerced


def make_config(algo: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The config of ``algo`` with ``overrides`` applied, checked by name, type and range."""
    cls = config_class(algo)
    return cls(**_coerce(cls, dict(overrides or {})))


def load_config(algo: str, path: Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a TOML file of config values; ``overrides`` (e.g. from the command line) win."""
    try:
        values = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    file_algo = values.pop("algo", algo)
    _require(file_algo == algo, f"config file {path} is for algorithm {file_algo!r}, not {algo!r}")
    return make_config(algo, {**values, **(overrides or {})})


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    return {"algo": config.algo, **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}


def config_to_toml(config: RunConfig) -> str:
    return tomli_w.dumps(config_to_dict(config))


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    values = dict(values)
    return make_config(values.pop("algo"), values)


__all__ = [
    "A2CConfig",
    "A3CConfig",
    "ActorCriticConfig",
    "ConfigError",
    "DDPGConfig",
    "DPGConfig",
    "OffPACConfig",
    "OffPolicyConfig",
    "OnPolicyConfig",
    "ReinforceConfig",
    "RunConfig",
    "SILConfig",
    "TD3Config",
    "config_from_dict",
    "config_to_dict",
    "config_to_toml",
    "load_config",
    "make_config",
]
