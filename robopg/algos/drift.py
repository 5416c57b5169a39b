"""The bound every fine-tuning learner keeps: the fine-tuned actor stays within ``max_drift`` of the deployed
one, max over recently seen states of |μθ(s) − μ₀(s)| in normalized action units.

After an update that went further, the parameters are pulled back along the straight line to the deployed
ones, to the largest share of the change that keeps the bound (a bisection): the direction the update
found is kept, only its length is cut.
"""

from __future__ import annotations

import copy
from collections import deque

import numpy as np
import torch
from torch import nn

DRIFT_EPISODES = 50  # the bound holds on the states of this many most recent episodes


class DriftBound:
    def __init__(self, actor: nn.Module, normalizer: nn.Module, max_drift: float) -> None:
        self.actor, self.normalizer, self.max_drift = actor, normalizer, max_drift
        self.deployed = copy.deepcopy(actor).requires_grad_(False)
        self.seen: deque[np.ndarray] = deque(maxlen=DRIFT_EPISODES)

    def remember(self, inputs: np.ndarray) -> None:
        """An episode's policy inputs (raw observations, with their history if the policy has one): states the
        bound must hold on."""
        self.seen.append(np.asarray(inputs, dtype=np.float32))

    def drift(self) -> float:
        """max over the recent states seen of |μθ(s) − μ₀(s)|, normalized action units."""
        return self._drift_on(self._states()) if self.seen else 0.0

    def enforce(self) -> float:
        """Pull the actor back until the bound holds; returns the drift afterwards."""
        if not self.seen:
            return 0.0
        x = self._states()
        drift = self._drift_on(x)
        if drift <= self.max_drift:
            return drift
        start = [p.detach().clone() for p in self.deployed.parameters()]
        end = [p.detach().clone() for p in self.actor.parameters()]
        low, high = 0.0, 1.0  # the share of the change from the deployed parameters that is kept
        for _ in range(12):
            mid = (low + high) / 2
            interpolate(self.actor, start, end, mid)
            low, high = (mid, high) if self._drift_on(x) <= self.max_drift else (low, mid)
        interpolate(self.actor, start, end, low)
        return self._drift_on(x)

    def _states(self) -> torch.Tensor:
        with torch.no_grad():
            return self.normalizer(torch.as_tensor(np.concatenate(self.seen), dtype=torch.float32))

    @torch.no_grad()
    def _drift_on(self, x: torch.Tensor) -> float:
        return float((self.actor(x) - self.deployed(x)).abs().max())


@torch.no_grad()
def interpolate(module: nn.Module, start: list[torch.Tensor], end: list[torch.Tensor], t: float) -> None:
    """Set ``module``'s parameters to start + t·(end − start)."""
    for p, s, e in zip(module.parameters(), start, end, strict=True):
        p.copy_(s + t * (e - s))
