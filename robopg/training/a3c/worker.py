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
from robopg.core.nets import PendingObservations
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


def flatten(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The tensors' values, concatenated in order into one float32 vector (a copy)."""
    return torch.cat([tensor.detach().reshape(-1) for tensor in tensors])


def unflatten_into(vector: torch.Tensor | np.ndarray, tensors: list[torch.Tensor]) -> None:
    """Copy a vector :func:`flatten` made back into tensors of the same shapes, in place (a read-only array, as
    Ray gives, is read, not wrapped)."""
    values = np.asarray(vector)
    total = sum(tensor.numel() for tensor in tensors)
    if values.shape != (total,):
        raise ValueError(f"a flat vector of {total} values was expected, got shape {values.shape}")
    offset = 0
    for tensor in tensors:
        size = tensor.numel()
        tensor.detach().numpy().reshape(-1)[:] = values[offset:offset + size]  # one copy, into the tensor's memory
        offset += size


def clip_by_norm_(vector: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale ``vector`` in place so that its L2 norm is at most ``max_norm`` (``clip_grad_norm_``'s rule, on one
    flat vector: a factor of max_norm / (norm + 1e-6), when below 1); returns its norm before."""
    norm = torch.linalg.vector_norm(vector)
    vector.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
    return norm


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
    pending: PendingObservations  # the reports' observations, folded into the normalizer in batches

    @staticmethod
    def of(learner: A2C) -> GlobalNets:
        return GlobalNets(learner.normalizer, learner.pi, learner.critic, learner.actor_optimizer,
                          learner.critic_optimizer, learner.config.max_grad_norm,
                          PendingObservations(learner.normalizer, learner.config.normalize_obs))

    @property
    def normalize_obs(self) -> bool:
        return self.pending.enabled

    def modules(self) -> dict[str, nn.Module]:
        return {"normalizer": self.normalizer, "pi": self.pi, "value": self.value}

    def weight_tensors(self) -> list[torch.Tensor]:
        """What a worker's rollouts and gradients read, in a fixed order: the normalizer's mean and variance (its
        count only serves the trainer's updates) and the networks' parameters."""
        return [self.normalizer.mean, self.normalizer.var, *self.pi.parameters(), *self.value.parameters()]

    def weights(self) -> torch.Tensor:
        """The weights a worker needs as one flat vector (a copy): one array to send, not one per tensor."""
        return flatten(self.weight_tensors())

    def load(self, weights: torch.Tensor | np.ndarray) -> None:
        """Copy a flat vector of :meth:`weights` into these networks."""
        unflatten_into(weights, self.weight_tensors())

    def gradient(self) -> torch.Tensor:
        """The actor's then the critic's parameter gradients as one flat vector (a copy)."""
        return flatten([param.grad for param in (*self.pi.parameters(), *self.value.parameters())])

    def apply(self, gradient: torch.Tensor) -> None:
        """Clip the actor's and the critic's parts of a flat :meth:`gradient` to ``max_grad_norm`` each (in
        place), and step the global optimizers with them."""
        offset = 0
        for params, optimizer in ((list(self.pi.parameters()), self.actor_optimizer),
                                  (list(self.value.parameters()), self.critic_optimizer)):
            size = sum(param.numel() for param in params)
            part = gradient[offset:offset + size]
            offset += size
            clip_by_norm_(part, self.max_grad_norm)
            for param, grad in zip(params, part.split([param.numel() for param in params]), strict=True):
                param.grad = grad.view_as(param)
            optimizer.step()

    def absorb(self, report: WorkerReport) -> None:
        """Gather the observations a worker saw for the normalizer (the trainer alone writes it), folded in
        ``NORMALIZER_FLUSH`` at a time: folding each report was most of the trainer's CPU per gradient beside
        reading the reports."""
        self.pending.add(report.raw_obs)

    def pending_obs(self) -> np.ndarray:
        """The observations gathered and not yet folded in, for a checkpoint."""
        return self.pending.rows()


class GradientWorker:
    def __init__(self, env_id: str, config: A3CConfig, spec: WorkerSpec, obs_dim: int, action_low: np.ndarray,
                 action_high: np.ndarray) -> None:
        torch.set_num_threads(1)
        self.config, self.spec = config, spec
        self.learner = A2C(config, obs_dim, action_low, action_high, torch.Generator().manual_seed(spec.seed))
        self.learner.entropy_coef = spec.entropy_coef
        self.nets = GlobalNets.of(self.learner)  # the worker's own copy, in the global networks' layout
        options = None if spec.init_range is None else {"init_range": spec.init_range}
        self.collector = RolloutCollector(env_id, config.num_envs, config.gamma, config.env_options(spec.randomize),
                                          options, config.randomized_keys(spec.randomize))
        self.collector.start(spec.seed)

    def load(self, weights: torch.Tensor | np.ndarray) -> None:
        """Take the global networks' weights (``GlobalNets.weights``) as this worker's copy."""
        self.nets.load(weights)

    def gradients(self) -> tuple[torch.Tensor, WorkerReport]:
        """The flat actor and critic gradient (``GlobalNets.gradient``) of one rollout from the current copy."""
        rollout, raw_obs, finished = self.collector.collect(self.learner, self.config.rollout_steps)
        loss, stats = self.learner.loss(rollout)
        self.learner.pi.zero_grad(set_to_none=True)
        self.learner.critic.zero_grad(set_to_none=True)
        loss.backward()
        report = WorkerReport(self.spec.index, self.config.rollout_steps * self.config.num_envs, finished,
                              {k: float(v) for k, v in stats.items()}, np.concatenate(raw_obs),
                              self.collector.take_draws())
        return self.nets.gradient(), report

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
