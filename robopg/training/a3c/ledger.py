"""Where each gradient of an A3C run went: applied to the global networks, dropped as too stale, or lost with a
worker that died; and how many global updates behind the weights it was computed from were when it was applied.

Each worker numbers its gradients 0, 1, 2, ...; the ledger keeps one outcome byte per number, in order, so a
number is settled once and only once, and a checkpoint holds the outcomes of every gradient behind its weights.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch

from robopg.errors import BackendError

APPLIED, STALE, LOST = b"a", b"s", b"l"
LAG_WINDOW = 100  # the staleness reported is that of the last this-many applied gradients


class GradientLedger:
    def __init__(self, workers: int, state: dict[str, Any] | None = None) -> None:
        """``state``: what :meth:`state_dict` gave (a resumed run's)."""
        self.outcomes = [bytearray() for _ in range(workers)]
        if state is not None:
            self.outcomes = [bytearray(outcomes.numpy().tobytes()) for outcomes in state["outcomes"]]
        self.counts = {outcome: sum(o.count(outcome) for o in self.outcomes) for outcome in (APPLIED, STALE, LOST)}
        self.lags: deque[int] = deque(maxlen=LAG_WINDOW)

    def settled(self, index: int) -> int:
        """How many of worker ``index``'s gradients have an outcome: the number of its next one."""
        return len(self.outcomes[index])

    def record(self, index: int, number: int, outcome: bytes, lag: int | None = None) -> None:
        """Settle gradient ``number`` of worker ``index``; ``lag`` (applied ones): global updates since its
        weights."""
        if number != self.settled(index):
            raise BackendError(f"A3C worker {index}'s gradient {number} arrived where gradient "
                               f"{self.settled(index)} was expected: refusing to apply it twice or out of order")
        self.outcomes[index] += outcome
        self.counts[outcome] += 1
        if lag is not None:
            self.lags.append(lag)

    @property
    def applied(self) -> int:
        return self.counts[APPLIED]

    def count(self, outcome: bytes, index: int) -> int:
        return self.outcomes[index].count(outcome)

    def stats(self) -> dict[str, float]:
        """Totals, and the staleness of the last applied gradients (when the backend measures it)."""
        stats = {"gradients_applied": float(self.applied), "gradients_stale": float(self.counts[STALE]),
                 "gradients_lost": float(self.counts[LOST])}
        if self.lags:
            stats.update(staleness_mean=float(np.mean(self.lags)), staleness_max=float(max(self.lags)))
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {"outcomes": [torch.from_numpy(np.frombuffer(bytes(o), dtype=np.uint8).copy()) for o in self.outcomes],
                "applied": self.applied}
