"""What the off-policy training loop needs from a learner, and the pieces every learner shares."""

from __future__ import annotations

import copy
from typing import Protocol

import numpy as np
import torch
from torch import nn

from robopg.core.buffers import Batch
from robopg.core.nets import ActionScaler, Actor, DeployablePolicy, RunningNormalizer


class OffPolicyLearner(Protocol):
    """A learner step is ``update(batch) -> metrics``; acting and deployment go through ``policy``."""

    normalizer: nn.Module
    scaler: ActionScaler

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action in [-1, 1] for a raw observation."""
        ...

    def update(self, batch: Batch) -> dict[str, torch.Tensor]: ...

    def policy(self) -> DeployablePolicy: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def make_normalizer(obs_dim: int, enabled: bool) -> nn.Module:
    return RunningNormalizer(obs_dim) if enabled else nn.Identity()


def frozen_copy(module: nn.Module) -> nn.Module:
    """A target network: same weights, no gradients, eval mode (Tianshou keeps targets in eval)."""
    return copy.deepcopy(module).eval().requires_grad_(False)


def matmul_precision(precision: str) -> torch.autocast:
    """The context of an update's forward passes: bf16 matrix products with ``"bfloat16"`` (CPU autocast; the
    weights and the optimizer stay float32), nothing changed with ``"float32"``."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16")


def adam(parameters, lr: float) -> torch.optim.Adam:
    """Adam with the fused CPU kernel: the same update as the default per-tensor loop, one kernel per step."""
    return torch.optim.Adam(parameters, lr=lr, fused=True)


def anneal_learning_rates(optimizers: list[torch.optim.Optimizer], progress: float) -> None:
    """Linear decay: every parameter group's learning rate becomes lr₀·(1 − progress), reaching 0 at the end of
    the run, as the learning rates of A3C (Mnih et al. 2016) were. lr₀ is kept in the group (``initial_lr``, the
    key torch's schedulers use), so it survives a checkpoint and a resume continues the same schedule."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * max(0.0, 1.0 - progress)


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class SavesModules:
    """``state_dict``/``load_state_dict`` over the modules and optimizers a learner names in ``parts``,
    plus its update counter."""

    updates: int = 0

    def parts(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return {}

    def state_dict(self) -> dict:
        return {**{name: part.state_dict() for name, part in self.parts().items()}, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        for name, part in self.parts().items():
            part.load_state_dict(state[name])
        self.updates = int(state["updates"])


class DeterministicLearner(SavesModules):
    """What DDPG, TD3 and DPG share: normalizer, action scaling and the deterministic actor μθ."""

    def __init__(self, config, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray,
                 generator: torch.Generator) -> None:
        self.config = config
        self.generator = generator
        self.act_dim = len(action_low)
        self.normalizer = make_normalizer(obs_dim, config.normalize_obs)
        self.scaler = ActionScaler(action_low, action_high)
        self.actor = Actor(obs_dim, self.act_dim, config.actor_hidden)
        self.updates = 0

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.normalizer(obs))

    def policy(self) -> DeployablePolicy:
        return DeployablePolicy(self.normalizer, self.actor, self.scaler)
