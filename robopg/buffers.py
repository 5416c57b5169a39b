"""Replay memory as preallocated numpy arrays (the layout of Stable-Baselines3's ReplayBuffer).

Terminations are stored apart from time-limit truncations: only a termination stops
bootstrapping, so a transition cut by a time limit still learns from V(s').
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """A ring of transitions (s, a, r, s', terminated) with uniform sampling."""

    _FIELDS = ("obs", "action", "reward", "next_obs", "terminated")

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.action = np.zeros((capacity, act_dim), dtype=np.float32)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.full = False

    def __len__(self) -> int:
        return self.capacity if self.full else self.pos

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        i = self.pos
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = terminated
        self.pos = (i + 1) % self.capacity
        self.full = self.full or self.pos == 0

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, len(self), size=batch_size)
        return Batch(*(torch.from_numpy(getattr(self, name)[idx]) for name in self._FIELDS))

    def latest(self, n: int) -> Batch:
        """The ``n`` most recent transitions, for purely online learning."""
        if len(self) < n:
            raise ValueError(f"replay buffer holds {len(self)} transitions, fewer than {n}")
        idx = (self.pos - 1 - np.arange(n)) % self.capacity
        return Batch(*(torch.from_numpy(getattr(self, name)[idx]) for name in self._FIELDS))

    def state_dict(self) -> dict[str, np.ndarray | int | bool]:
        """The filled part only, so a checkpoint holds no zeros it does not need."""
        n = len(self)
        return {**{name: getattr(self, name)[:n].copy() for name in self._FIELDS}, "pos": self.pos, "full": self.full}

    def load_state_dict(self, state: dict) -> None:
        n = len(state["reward"])
        if n > self.capacity:
            raise ValueError(f"saved buffer holds {n} transitions, more than this buffer's capacity {self.capacity}")
        for name in self._FIELDS:
            getattr(self, name)[:n] = state[name]
        self.pos, self.full = int(state["pos"]), bool(state["full"])


class Rollout(NamedTuple):
    """``steps`` transitions from each of ``envs`` simulators, time first: (steps, envs, ...).

    Observations are stored normalized, as the policy saw them. ``rewards`` of a step cut by a time limit
    already include γ·V(final observation) and its ``dones`` is set: bootstrapping through truncation.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    values: torch.Tensor
    last_value: torch.Tensor


class Episode(NamedTuple):
    """One whole episode, time first: normalized observations, unclipped actions, rewards, and the
    log-probability each action had under the policy that chose it (the behaviour policy b)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    behaviour_log_probs: torch.Tensor
