"""What a policy is at run time, and one episode on a robot as the control loop records it (numpy only: it
runs on the robot's computer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PolicyFn = Callable[[np.ndarray], np.ndarray]  # raw observation -> action in actuator units (OnnxPolicy is one)


@dataclass
class RobotEpisode:
    """Observations (T+1), the policy's actions and the commands the safety layer sent (T each), rewards, and the
    policy's inputs (T+1): the observations themselves, or with a history its layout (``robopg.core.history``)."""

    observations: np.ndarray
    actions: np.ndarray
    commands: np.ndarray
    rewards: np.ndarray
    terminated: bool
    stopped_by_safety: bool
    inputs: np.ndarray | None = None  # None: the observations

    def __post_init__(self) -> None:
        if self.inputs is None:
            self.inputs = self.observations

    @property
    def ret(self) -> float:
        return float(self.rewards.sum())

    def __len__(self) -> int:
        return len(self.actions)
