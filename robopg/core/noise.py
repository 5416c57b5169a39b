"""Exploration noise for deterministic policies, in normalized action units.

DDPG (Lillicrap et al. 2015) used temporally correlated Ornstein-Uhlenbeck noise; TD3 (Fujimoto
et al. 2018) showed plain Gaussian noise does as well. Both are here, one noise state per env.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class ActionNoise(Protocol):
    def __call__(self) -> np.ndarray: ...

    def reset(self) -> None: ...

    def get_state(self) -> np.ndarray: ...

    def set_state(self, state: np.ndarray) -> None: ...


class GaussianNoise:
    """Independent N(0, σ²) per step."""

    def __init__(self, shape: tuple[int, ...], std: float, rng: np.random.Generator) -> None:
        self.shape, self.std, self.rng = shape, std, rng

    def __call__(self) -> np.ndarray:
        return self.rng.normal(0.0, self.std, self.shape).astype(np.float32)

    def reset(self) -> None:
        """Gaussian noise has no state (its randomness is the shared generator's)."""

    def get_state(self) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)

    def set_state(self, state: np.ndarray) -> None:
        """Nothing to restore."""


class OrnsteinUhlenbeckNoise:
    """x ← x + θ(μ − x)dt + σ√dt·N(0, 1): noise that drifts back to μ = 0 (Uhlenbeck & Ornstein 1930)."""

    def __init__(
        self, shape: tuple[int, ...], std: float, rng: np.random.Generator, theta: float = 0.15, dt: float = 1e-2
    ) -> None:
        self.shape, self.std, self.rng, self.theta, self.dt = shape, std, rng, theta, dt
        self.state = np.zeros(shape, dtype=np.float32)

    def __call__(self) -> np.ndarray:
        drift = -self.theta * self.state * self.dt
        diffusion = self.std * np.sqrt(self.dt) * self.rng.normal(size=self.shape)
        self.state = (self.state + drift + diffusion).astype(np.float32)
        return self.state

    def reset(self) -> None:
        self.state = np.zeros(self.shape, dtype=np.float32)

    def get_state(self) -> np.ndarray:
        return self.state.copy()

    def set_state(self, state: np.ndarray) -> None:
        self.state = np.asarray(state, dtype=np.float32).copy()


def make_noise(kind: str, shape: tuple[int, ...], std: float, rng: np.random.Generator, theta: float) -> ActionNoise:
    if kind == "gaussian":
        return GaussianNoise(shape, std, rng)
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(shape, std, rng, theta=theta)
    raise ValueError(f"unknown noise kind {kind!r} (choose 'gaussian' or 'ou')")
