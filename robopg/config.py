"""What every training run has, and what each family of algorithms shares; one frozen dataclass each.

An algorithm's own config derives from one of these in the algorithm's file (``robopg/algos/``), and the
registry (``robopg/registry.py``) names it. Fields are declared with :func:`robopg.settings.setting`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from robopg.errors import ConfigError
from robopg.memory import network_bytes, require_memory, transitions_bytes
from robopg.settings import Settings, require, setting
from sim.randomization import MAX_LATENCY_STEPS, parse_randomize

MAX_SEED = 2**32 - 1  # numpy's and torch's seeds
MAX_LAYER_WIDTH = 16_384
# Caps on what a run may ask for (``most``): what a counter or an array of that size can still hold.
MAX_STEPS = 10**12  # environment steps, and anything counted in them
MAX_EPISODES = 10**6  # episodes, wherever they are counted
MAX_BATCH = 10**6  # samples in one update
MAX_HISTORY = MAX_LATENCY_STEPS  # steps of history in a policy's input: as long as the longest latency a task takes
NoiseKind = Literal["gaussian", "ou"]


def hidden_layers(default: tuple[int, ...], of: str) -> Any:
    """A config field of hidden layer widths (what most networks' size is declared with); name it ``*_hidden``
    so that :func:`require_fits_in_memory` counts it."""
    return setting(default, f"hidden layer widths of the {of}", ge=1, most=MAX_LAYER_WIDTH, nonempty=True)


def learning_rate(default: float, of: str) -> Any:
    return setting(default, f"learning rate of the {of}", gt=0, le=1)


def require_fits_in_memory(config: Settings, replay_bytes: int = 0) -> None:
    """Refuse a config whose networks (its ``*_hidden`` fields) and replay memory cannot fit in the memory
    available now; the sizes are lower bounds, so a config that fails here could never run."""
    networks = [f.name for f in fields(config) if f.name.endswith("_hidden")]  # type: ignore[arg-type]
    parts = networks + (["the replay memory"] if replay_bytes else [])
    total = replay_bytes + sum(network_bytes(getattr(config, name)) for name in networks)
    require_memory(", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1], total)


@dataclass(frozen=True, kw_only=True)
class RunConfig(Settings):
    """What every training run has, whatever the algorithm."""

    total_steps: int = setting(30_000, "environment steps to train for", ge=1, most=MAX_STEPS)
    seed: int = setting(0, "seed of every random stream of the run", ge=0, le=MAX_SEED)
    eval_every: int = setting(5_000, "steps between evaluations", ge=1, most=MAX_STEPS)
    eval_episodes: int = setting(5, "episodes per evaluation", ge=1, most=MAX_EPISODES)
    checkpoint_every: int = setting(5_000, "steps between checkpoints (written at the next episode end)", ge=1,
                                    most=MAX_STEPS)
    checkpoint_seconds: float = setting(60.0, "training seconds between checkpoints at most, whatever the steps "
                                              "(the first falls due after a tenth of it): what a kill can lose", gt=0,
                                        le=86_400)
    log_every: int = setting(1_000, "steps between progress lines and metrics", ge=1, most=MAX_STEPS)
    torch_threads: int = setting(1, "threads torch may use", ge=1, most=1024)
    anneal_lr: bool = setting(False, "learning rates decay linearly to 0 at total_steps (Mnih et al. 2016)")
    video_every: int = setting(0, "steps between videos of an evaluation episode (videos/step-N.mp4); 0: none", ge=0,
                              most=MAX_STEPS)
    randomize: tuple[str, ...] = setting((), "domain randomization of a robopg task, sampled at every reset of "
                                             "training and evaluation: KEY=LOW:HIGH or KEY=VALUE of mass_scale, "
                                             "friction_scale, damping_scale, actuator_gain, sensor_noise_std, "
                                             "action_latency_steps")
    init_range: float = setting(1.0, "scale of a robopg task's random initial-state perturbation (0: the nominal "
                                     "state)", ge=0, le=100)
    history: int = setting(0, "steps of history in the policy's input: the current observation and the last "
                              "`history` observations and commands (0: the current observation alone)", ge=0,
                           most=MAX_HISTORY)

    def check(self) -> None:
        try:
            parse_randomize(self.randomize)
        except ValueError as exc:
            raise ConfigError(f"randomize: {exc}") from None

    def randomized_keys(self, randomize: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The dynamics parameters the run (or ``randomize``, an A3C worker's own) draws from a range at every
        reset; fixed values are not drawn."""
        items = self.randomize if randomize is None else randomize
        return tuple(key for key, value in parse_randomize(items).items() if isinstance(value, tuple))

    def trained_ranges(self) -> tuple[str, ...]:
        """The randomization the training episodes drew from (an export's metadata records it)."""
        return self.randomize

    def env_options(self, randomize: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Keyword arguments of every env the run makes (``envs.make_env``'s): none unless randomization, the
        initial-state range or the history differ from the defaults (so any Gymnasium env works without them).
        ``randomize``: instead of the run's (an A3C worker's own ranges)."""
        options: dict[str, Any] = {}
        items = self.randomize if randomize is None else randomize
        if items:
            options["dynamics"] = parse_randomize(items)
        if self.init_range != 1.0:
            options["init_range"] = self.init_range
        if self.history:
            options["history"] = self.history
        return options

    def config_warnings(self) -> list[str]:
        """One line for each setting that the step budget makes pointless (the run would silently skip it), or
        that the other settings keep from working."""
        found = []
        for name, what in (("eval_every", "evaluation"), ("checkpoint_every", "checkpoint"), ("video_every", "video")):
            every = getattr(self, name)
            if every > self.total_steps:
                found.append(f"{name} ({every}) is longer than the run (total_steps {self.total_steps}): "
                             f"the only {what} is at the end")
        if "action_latency_steps" in self.randomized_keys() and not self.history:
            found.append("randomize draws action_latency_steps but history is 0: a policy of the observation alone "
                         "cannot tell which latency it is under; history = 4 lets it (docs/transfer.md)")
        return found


@dataclass(frozen=True, kw_only=True)
class OffPolicyConfig(RunConfig):
    """Replay, target networks and exploration shared by DDPG, TD3 and DPG."""

    gamma: float = setting(0.99, "discount factor", gt=0, le=1)
    tau: float = setting(0.005, "soft update rate of the target networks", gt=0, le=1)
    batch_size: int = setting(256, "transitions per update", ge=1, most=MAX_BATCH)
    buffer_size: int = setting(200_000, "replay capacity in transitions", ge=1, most=10**9)
    learning_starts: int = setting(2_000, "steps of uniform random actions before the first update", ge=0,
                                   most=MAX_STEPS)
    updates_per_step: int = setting(1, "learner updates per environment step", ge=1, most=1000)
    noise: NoiseKind = setting("gaussian", "exploration noise: gaussian or Ornstein-Uhlenbeck")
    noise_std: float = setting(0.2, "exploration noise scale, normalized action units", ge=0, le=10)
    ou_theta: float = setting(0.15, "Ornstein-Uhlenbeck mean reversion", gt=0, le=100)
    normalize_obs: bool = setting(True, "normalize observations by running mean and variance")
    use_replay: bool = setting(True, "false: learn online from the latest transition only (Silver et al. 2014)")
    n_step: int = setting(1, "steps of reward in each critic target before bootstrapping (n-step returns)", ge=1,
                          most=1000)
    actor_hidden: tuple[int, ...] = hidden_layers((256, 256), "actor")
    actor_lr: float = learning_rate(1e-3, "actor")
    critic_lr: float = learning_rate(1e-3, "critic")

    def config_warnings(self) -> list[str]:
        found = super().config_warnings()
        if self.learning_starts >= self.total_steps:
            found.append(f"learning_starts ({self.learning_starts}) is not below total_steps ({self.total_steps}): "
                         "the run takes random actions only and never learns")
        return found

    def check(self) -> None:
        super().check()
        require(self.batch_size <= self.buffer_size,
                f"batch_size ({self.batch_size}) must not exceed buffer_size ({self.buffer_size})")
        require(self.use_replay or self.n_step == 1,
                f"n_step ({self.n_step}) needs use_replay = true (without replay each update sees one transition); "
                "set n_step = 1 to learn online")
        require_fits_in_memory(self, transitions_bytes(self.buffer_size))


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
    entropy_coef: float = setting(0.0, "entropy bonus β", ge=0, le=10)
    max_grad_norm: float = setting(0.5, "gradients' global norm is clipped to this", gt=0, le=1e6)
    normalize_obs: bool = setting(True, "normalize observations by running mean and variance")

    def check(self) -> None:
        super().check()
        require_fits_in_memory(self)


__all__ = ["MAX_BATCH", "MAX_EPISODES", "MAX_HISTORY", "MAX_LAYER_WIDTH", "MAX_SEED", "MAX_STEPS", "OffPolicyConfig",
           "OnPolicyConfig", "RunConfig", "require_fits_in_memory"]
