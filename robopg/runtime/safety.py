"""The safety layer between a policy and the actuators, shared by ``robopg deploy`` and ``robopg finetune``.

Every action passes, in this order: a non-finite guard (hold the safe action, count it), an optional
first-order low-pass filter, a rate limit (largest change per control step), and clipping to the action
limits. Clipping comes last so that nothing outside the limits can leave; the rate limit comes before it
and still holds afterwards, because the previous command is within the limits and clipping only moves a
value towards them. Observations outside their bounds end the episode. Numpy only: it runs on the robot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from robopg.errors import ConfigError


@dataclass(frozen=True)
class SafetyConfig:
    """Limits the host enforces on top of the firmware's own.

    - ``max_delta``: largest change of each action component per control step, in actuator units
      (one value for all components or one per component); None: no rate limit.
    - ``lowpass``: smoothing factor α in (0, 1] of ``y ← y + α (x − y)``; None or 1: no filter.
    - ``obs_low``/``obs_high``: an observation outside these bounds ends the episode; None: no bound.
    - ``safe_action``: what is sent in place of a non-finite action (default: zeros, clipped into the limits).
    """

    max_delta: float | tuple[float, ...] | None = None
    lowpass: float | None = None
    obs_low: tuple[float, ...] | None = None
    obs_high: tuple[float, ...] | None = None
    safe_action: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.max_delta is not None and not np.all(np.isfinite(self.max_delta) & (np.asarray(self.max_delta) > 0)):
            raise ConfigError(f"safety max_delta must be a finite number > 0, got {self.max_delta}")
        if self.lowpass is not None and not 0 < self.lowpass <= 1:
            raise ConfigError(f"safety lowpass must be in (0, 1], got {self.lowpass}")
        if (self.obs_low is None) != (self.obs_high is None):
            raise ConfigError("safety obs_low and obs_high go together")
        if self.obs_low is not None and len(self.obs_low) != len(self.obs_high):
            raise ConfigError("safety obs_low and obs_high must have the same length")


@dataclass
class SafetyCounters:
    nonfinite_actions: int = 0
    clipped: int = 0
    rate_limited: int = 0
    obs_out_of_bounds: int = 0
    nonfinite_obs: int = 0

    def __str__(self) -> str:
        return (f"{self.clipped} steps clipped, {self.rate_limited} rate-limited, {self.nonfinite_actions} non-finite "
                f"actions replaced, {self.obs_out_of_bounds} observations out of bounds, {self.nonfinite_obs} "
                "non-finite observations")


@dataclass
class SafetyLayer:
    """Filters actions for one robot; call :meth:`reset` at every episode start."""

    action_low: np.ndarray
    action_high: np.ndarray
    config: SafetyConfig = field(default_factory=SafetyConfig)
    counters: SafetyCounters = field(default_factory=SafetyCounters)

    def __post_init__(self) -> None:
        self.action_low = np.asarray(self.action_low, dtype=np.float32)
        self.action_high = np.asarray(self.action_high, dtype=np.float32)
        n = self.action_low.size
        c = self.config
        if c.max_delta is not None and np.size(c.max_delta) not in (1, n):
            raise ConfigError(f"safety max_delta has {np.size(c.max_delta)} values; the robot takes {n} actions")
        if c.safe_action is not None and len(c.safe_action) != n:
            raise ConfigError(f"safety safe_action has {len(c.safe_action)} values; the robot takes {n} actions")
        safe = np.zeros(n) if c.safe_action is None else np.asarray(c.safe_action)
        self.safe_action = np.clip(safe, self.action_low, self.action_high).astype(np.float32)
        self._max_delta = None if c.max_delta is None else np.broadcast_to(
            np.asarray(c.max_delta, dtype=np.float32), (n,))
        self._obs_bounds = None if c.obs_low is None else (np.asarray(c.obs_low), np.asarray(c.obs_high))
        self.reset()

    def reset(self, previous: ArrayLike | None = None) -> None:
        """Start an episode from ``previous`` (default: the safe action, what the firmware holds after RESET)."""
        self._previous = self.safe_action.copy() if previous is None else np.asarray(previous, dtype=np.float32)

    def filter(self, action: ArrayLike) -> np.ndarray:
        """The command to send for the policy's ``action``."""
        x = np.asarray(action, dtype=np.float32).reshape(-1)
        if x.shape != self.safe_action.shape or not np.all(np.isfinite(x)):
            self.counters.nonfinite_actions += 1
            x = self.safe_action.copy()
        if self.config.lowpass is not None:
            x = self._previous + np.float32(self.config.lowpass) * (x - self._previous)
        if self._max_delta is not None:
            limited = np.clip(x, self._previous - self._max_delta, self._previous + self._max_delta)
            self.counters.rate_limited += int(np.any(limited != x))
            x = limited
        clipped = np.clip(x, self.action_low, self.action_high)
        self.counters.clipped += int(np.any(clipped != x))
        self._previous = clipped
        return clipped

    def observation_ok(self, obs: ArrayLike) -> bool:
        """False (and counted) for a non-finite observation or one outside the bounds: end the episode."""
        obs = np.asarray(obs)
        if not np.all(np.isfinite(obs)):
            self.counters.nonfinite_obs += 1
            return False
        if self._obs_bounds is not None and not np.all((obs >= self._obs_bounds[0]) & (obs <= self._obs_bounds[1])):
            self.counters.obs_out_of_bounds += 1
            return False
        return True
