"""Deterministic evaluation of any observation -> action function; no torch needed here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from robopg.runtime.episode import PolicyFn


@dataclass(frozen=True)
class EvalResult:
    returns: tuple[float, ...]
    lengths: tuple[int, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f} over {len(self.returns)} episodes"


def evaluate(policy: PolicyFn, env: gym.Env, episodes: int, seed: int,
             on_frame: Callable[[np.ndarray], None] | None = None) -> EvalResult:
    """Run ``episodes`` episodes without exploration noise, seeded ``seed, seed + 1, ...``; ``on_frame`` gets
    ``env.render()`` after every reset and step (an env made with ``render_mode="rgb_array"``)."""
    returns, lengths = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        if on_frame is not None:
            on_frame(env.render())
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            if on_frame is not None:
                on_frame(env.render())
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(steps)
    return EvalResult(tuple(returns), tuple(lengths))
