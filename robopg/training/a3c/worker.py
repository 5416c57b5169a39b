"""What an A3C actor-learner does, whatever runs it: copy the global networks, collect an n-step rollout
on its own simulators, and compute the A2C gradients of that rollout (Mnih et al. 2016, Algorithm S3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from robopg.algos.a2c import A2C
from robopg.algos.a3c import A3CConfig
from robopg.errors import WorkerFailure
from robopg.training.rollouts import RolloutCollector

MAX_RESTARTS = 10  # per worker: past this it is not bad luck but a bug or a broken machine


def check_restarts(index: int, restarts: int, why: str) -> None:
    if restarts > MAX_RESTARTS:
        raise WorkerFailure(f"A3C worker {index} died {restarts} times (last: {why}); giving up")


@dataclass(frozen=True)
class WorkerSpec:
    """One worker's own exploration: seed, initial-state range, entropy β, domain randomization."""

    index: int
    seed: int
    init_range: float | None
    entropy_coef: float
    randomize: tuple[str, ...] = ()

    @staticmethod
    def for_worker(config: A3CConfig, index: int, restarts: int = 0) -> WorkerSpec:
        return WorkerSpec(
            index=index,
            seed=config.seed + 10_000 * (index + 1) + 1_000_000 * restarts,  # a restarted worker sees new episodes
            init_range=config.worker_init_ranges[index] if config.worker_init_ranges else None,
            entropy_coef=config.worker_entropy_coefs[index] if config.worker_entropy_coefs else config.entropy_coef,
            randomize=config.worker_ranges(index),
        )


@dataclass
class WorkerReport:
    """What a worker sends back after a rollout."""

    index: int
    steps: int
    episodes: list[tuple[float, int]]
    stats: dict[str, float]
    raw_obs: np.ndarray
    draws: list[dict[str, float]]  # dynamics drawn by the episodes that started
    state: dict[str, Any] | None = None  # the worker's own state after the rollout, when workers take turns


@dataclass
class GlobalNets:
    """The global actor, critic, normalizer and their optimizers: the tensors workers read and step.

    A view over a learner's own modules (not a copy), small enough to hand to another process.
    """

    normalizer: nn.Module
    pi: nn.Module
    value: nn.Module
    actor_optimizer: torch.optim.Optimizer
    critic_optimizer: torch.optim.Optimizer
    max_grad_norm: float
    normalize_obs: bool

    @staticmethod
    def of(learner: A2C) -> GlobalNets:
        return GlobalNets(learner.normalizer, learner.pi, learner.critic, learner.actor_optimizer,
                          learner.critic_optimizer, learner.config.max_grad_norm, learner.config.normalize_obs)

    def modules(self) -> dict[str, nn.Module]:
        return {"normalizer": self.normalizer, "pi": self.pi, "value": self.value}

    def states(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: module.state_dict() for name, module in self.modules().items()}

    def apply(self, actor: list[torch.Tensor], critic: list[torch.Tensor]) -> None:
        """Clip a worker's gradients and step the global optimizers with them."""
        for params, grads, optimizer in ((list(self.pi.parameters()), actor, self.actor_optimizer),
                                         (list(self.value.parameters()), critic, self.critic_optimizer)):
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
            nn.utils.clip_grad_norm_(params, self.max_grad_norm)
            optimizer.step()

    def absorb(self, report: WorkerReport) -> None:
        """Fold the observations a worker saw into the global normalizer (the trainer alone writes it)."""
        if self.normalize_obs and len(report.raw_obs):
            self.normalizer.update(torch.tensor(report.raw_obs, dtype=torch.float32))  # Ray's arrays are read-only


class GradientWorker:
    def __init__(self, env_id: str, config: A3CConfig, spec: WorkerSpec, obs_dim: int, action_low: np.ndarray,
                 action_high: np.ndarray) -> None:
        torch.set_num_threads(1)
        self.config, self.spec = config, spec
        self.learner = A2C(config, obs_dim, action_low, action_high, torch.Generator().manual_seed(spec.seed))
        self.learner.entropy_coef = spec.entropy_coef
        options = None if spec.init_range is None else {"init_range": spec.init_range}
        self.collector = RolloutCollector(env_id, config.num_envs, config.gamma, config.env_options(spec.randomize),
                                          options, config.randomized_keys(spec.randomize))
        self.collector.start(spec.seed)

    def load(self, states: dict[str, dict[str, torch.Tensor]]) -> None:
        for name, module in GlobalNets.of(self.learner).modules().items():
            module.load_state_dict(states[name])

    def gradients(self) -> tuple[list[torch.Tensor], list[torch.Tensor], WorkerReport]:
        """Actor and critic gradients of one rollout from the current local copy."""
        rollout, raw_obs, finished = self.collector.collect(self.learner, self.config.rollout_steps)
        loss, stats = self.learner.loss(rollout)
        self.learner.pi.zero_grad(set_to_none=True)
        self.learner.critic.zero_grad(set_to_none=True)
        loss.backward()
        actor = [p.grad for p in self.learner.pi.parameters()]
        critic = [p.grad for p in self.learner.critic.parameters()]
        report = WorkerReport(self.spec.index, self.config.rollout_steps * self.config.num_envs, finished,
                              {k: float(v) for k, v in stats.items()}, np.concatenate(raw_obs),
                              self.collector.take_draws())
        return actor, critic, report

    def state_dict(self) -> dict[str, Any]:
        """What the next rollouts depend on besides the global networks: the worker's random generator and its
        simulators' episodes in flight (``None`` for simulators that cannot be captured: fresh episodes)."""
        return {"generator": self.learner.generator.get_state(), "collector": self.collector.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.generator.set_state(state["generator"])
        if state["collector"] is not None:
            self.collector.load_state_dict(state["collector"])

    def close(self) -> None:
        self.collector.close()
