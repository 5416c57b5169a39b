"""What every training run has, and what each family of algorithms shares; one frozen dataclass each.

An algorithm's own config derives from one of these in the algorithm's file (``robopg/algos/``), and the
registry (``robopg/registry.py``) names it. Fields are declared with :func:`robopg.settings.setting`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from robopg.settings import Settings, require, setting

MAX_SEED = 2**32 - 1  # numpy's and torch's seeds
MAX_LAYER_WIDTH = 16_384
NoiseKind = Literal["gaussian", "ou"]


def hidden_layers(default: tuple[int, ...], of: str) -> Any:
    """A config field of hidden layer widths (what most networks' size is declared with)."""
    return setting(default, f"hidden layer widths of the {of}", ge=1, most=MAX_LAYER_WIDTH, nonempty=True)


def learning_rate(default: float, of: str) -> Any:
    return setting(default, f"learning rate of the {of}", gt=0)


@dataclass(frozen=True, kw_only=True)
class RunConfig(Settings):
    """What every training run has, whatever the algorithm."""

    total_steps: int = setting(30_000, "environment steps to train for", ge=1, most=10**12)
    seed: int = setting(0, "seed of every random stream of the run", ge=0, le=MAX_SEED)
    eval_every: int = setting(5_000, "steps between evaluations", ge=1)
    eval_episodes: int = setting(5, "episodes per evaluation", ge=1)
    checkpoint_every: int = setting(5_000, "steps between checkpoints (written at the next episode end)", ge=1)
    checkpoint_seconds: float = setting(60.0, "training seconds between checkpoints at most, whatever the steps "
                                              "(the first falls due after a tenth of it): what a kill can lose", gt=0,
                                        le=86_400)
    log_every: int = setting(1_000, "steps between progress lines and metrics", ge=1)
    torch_threads: int = setting(1, "threads torch may use", ge=1, most=1024)
    anneal_lr: bool = setting(False, "learning rates decay linearly to 0 at total_steps (Mnih et al. 2016)")


@dataclass(frozen=True, kw_only=True)
class OffPolicyConfig(RunConfig):
    """Replay, target networks and exploration shared by DDPG, TD3 and DPG."""

    gamma: float = setting(0.99, "discount factor", gt=0, le=1)
    tau: float = setting(0.005, "soft update rate of the target networks", gt=0, le=1)
    batch_size: int = setting(256, "transitions per update", ge=1)
    buffer_size: int = setting(200_000, "replay capacity in transitions", ge=1, most=10**9)
    learning_starts: int = setting(2_000, "steps of uniform random actions before the first update", ge=0)
    updates_per_step: int = setting(1, "learner updates per environment step", ge=1)
    noise: NoiseKind = setting("gaussian", "exploration noise: gaussian or Ornstein-Uhlenbeck")
    noise_std: float = setting(0.2, "exploration noise scale, normalized action units", ge=0)
    ou_theta: float = setting(0.15, "Ornstein-Uhlenbeck mean reversion", gt=0)
    normalize_obs: bool = setting(True, "normalize observations by running mean and variance")
    use_replay: bool = setting(True, "false: learn online from the latest transition only (Silver et al. 2014)")
    actor_hidden: tuple[int, ...] = hidden_layers((256, 256), "actor")
    actor_lr: float = learning_rate(1e-3, "actor")
    critic_lr: float = learning_rate(1e-3, "critic")

    def check(self) -> None:
        require(self.batch_size <= self.buffer_size,
                f"batch_size ({self.batch_size}) must not exceed buffer_size ({self.buffer_size})")


@dataclass(frozen=True, kw_only=True)
class OnPolicyConfig(RunConfig):
    """A Gaussian policy π(a|s) = N(μθ(s), σ²) whose mean μθ is the deterministic policy that export uses,
    a value critic, and synchronous rollouts from ``num_envs`` simulator instances."""

    gamma: float = setting(0.99, "discount factor", gt=0, le=1)
    num_envs: int = setting(4, "simulators stepped in lockstep", ge=1, most=4096)
    actor_hidden: tuple[int, ...] = hidden_layers((64, 64), "policy")
    critic_hidden: tuple[int, ...] = hidden_layers((64, 64), "critic")
    actor_lr: float = learning_rate(3e-4, "policy")
    critic_lr: float = learning_rate(1e-3, "critic")
    init_log_std: float = setting(-0.5, "initial log standard deviation of the policy", ge=-5, le=1)
    entropy_coef: float = setting(0.0, "entropy bonus β", ge=0)
    max_grad_norm: float = setting(0.5, "gradients' global norm is clipped to this", gt=0)
    normalize_obs: bool = setting(True, "normalize observations by running mean and variance")


__all__ = ["MAX_LAYER_WIDTH", "MAX_SEED", "OffPolicyConfig", "OnPolicyConfig", "RunConfig"]
