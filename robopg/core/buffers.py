"""Replay memory as preallocated numpy arrays (the layout of Stable-Baselines3's ReplayBuffer).

Terminations are stored apart from time-limit truncations: only a termination stops
bootstrapping, so a transition cut by a time limit still learns from V(s'). Episode ends of either kind
are stored too, so that an n-step return never runs into the next episode.
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
    discount: torch.Tensor | None = None  # γ^m of an m-step return per transition; None: γ for all

    def bootstrap_discount(self, gamma: float) -> float | torch.Tensor:
        """The factor of the bootstrapped value in the target: γ for one-step transitions, γ^m for m steps."""
        return gamma if self.discount is None else self.discount


class ReplayBuffer:
    """A ring of transitions (s, a, r, s', terminated, episode end) with uniform sampling."""

    _BATCH_FIELDS = ("obs", "action", "reward", "next_obs", "terminated")
    _FIELDS = (*_BATCH_FIELDS, "episode_end")

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.action = np.zeros((capacity, act_dim), dtype=np.float32)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.episode_end = np.zeros(capacity, dtype=bool)
        self.pos = 0
        self.full = False

    def __len__(self) -> int:
        return self.capacity if self.full else self.pos

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool,
            truncated: bool = False) -> None:
        i = self.pos
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = terminated
        self.episode_end[i] = terminated or truncated
        self.pos = (i + 1) % self.capacity
        self.full = self.full or self.pos == 0

    def sample(self, batch_size: int, rng: np.random.Generator, n_step: int = 1, gamma: float = 1.0) -> Batch:
        """Uniform transitions; with ``n_step`` > 1 each is extended to an m-step return Σ_{k<m} γ^k r_{t+k},
        m ≤ n, with the state and termination m steps later and its γ^m (Sutton 1988; the n-step targets of
        D4PG, Barth-Maron et al. 2018, and Rainbow, Hessel et al. 2018). m stops short of n at an episode's end
        and at the newest stored transition. The later rewards come from the behaviour policy: uncorrected, as
        in those papers."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        start = rng.integers(0, len(self), size=batch_size)
        if n_step == 1:
            return Batch(*(torch.from_numpy(getattr(self, name)[start]) for name in self._BATCH_FIELDS))
        offsets = np.arange(n_step)
        rows = (start[:, None] + offsets) % self.capacity  # (batch, n): the n transitions from each start
        stored_after = (self.pos - 1 - start) % self.capacity  # transitions written after the start
        ends = self.episode_end[rows]
        ended_before = np.cumsum(ends, axis=1) - ends  # episode ends among the steps before step k
        used = (offsets <= stored_after[:, None]) & (ended_before == 0)
        steps = used.sum(axis=1)
        last = rows[np.arange(batch_size), steps - 1]
        discounts = gamma ** offsets.astype(np.float32)
        reward = (self.reward[rows] * discounts * used).sum(axis=1, dtype=np.float32)
        return Batch(torch.from_numpy(self.obs[start]), torch.from_numpy(self.action[start]), torch.from_numpy(reward),
                     torch.from_numpy(self.next_obs[last]), torch.from_numpy(self.terminated[last]),
                     torch.from_numpy((gamma ** steps.astype(np.float32)).astype(np.float32)))

    def latest(self, n: int) -> Batch:
        """The ``n`` most recent transitions, for purely online learning."""
        if len(self) < n:
            raise ValueError(f"replay buffer holds {len(self)} transitions, fewer than {n}")
        idx = (self.pos - 1 - np.arange(n)) % self.capacity
        return Batch(*(torch.from_numpy(getattr(self, name)[idx]) for name in self._BATCH_FIELDS))

    def state_dict(self) -> dict[str, np.ndarray | int | bool]:
        """The filled part only, so a checkpoint holds no zeros it does not need."""
        n = len(self)
        return {**{name: getattr(self, name)[:n].copy() for name in self._FIELDS}, "pos": self.pos, "full": self.full}

    def load_state_dict(self, state: dict) -> None:
        n = len(state["reward"])
        if n > self.capacity:
            raise ValueError(f"saved buffer holds {n} transitions, more than this buffer's capacity {self.capacity}")
        for name in self._FIELDS:
            # Checkpoints from before episode ends were stored lack them; their runs used one-step targets only.
            getattr(self, name)[:n] = state.get(name, 0)
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


class PrioritizedReturns:
    """Replay of (s, a, R) with sampling probability ∝ priority^α (Schaul et al. 2016), for self-imitation.

    Observations are stored raw and normalized when sampled, with the normalizer of that moment.
    Sampling returns importance weights (N·P(i))^(−β) / max, which correct the bias of prioritization.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, alpha: float, beta: float) -> None:
        self.capacity, self.alpha, self.beta = capacity, alpha, beta
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.action = np.zeros((capacity, act_dim), dtype=np.float32)
        self.returns = np.zeros(capacity, dtype=np.float32)
        self.priority = np.zeros(capacity, dtype=np.float64)
        self.pos = 0
        self.full = False

    def __len__(self) -> int:
        return self.capacity if self.full else self.pos

    def add(self, obs: np.ndarray, actions: np.ndarray, returns: np.ndarray) -> None:
        """Add one episode's transitions at the highest priority so far, so each is tried at least once."""
        top = self.priority[: len(self)].max() if len(self) else 1.0
        for i in range(len(returns)):
            self.obs[self.pos], self.action[self.pos], self.returns[self.pos] = obs[i], actions[i], returns[i]
            self.priority[self.pos] = top
            self.pos = (self.pos + 1) % self.capacity
            self.full = self.full or self.pos == 0

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, torch.Tensor, torch.Tensor,
                                                                          torch.Tensor, torch.Tensor]:
        """Indices, observations, actions, returns and importance weights of a prioritized minibatch."""
        n = len(self)
        scaled = self.priority[:n] ** self.alpha + 1e-12
        probabilities = scaled / scaled.sum()
        idx = rng.choice(n, size=batch_size, p=probabilities)
        weights = (n * probabilities[idx]) ** (-self.beta)
        weights = torch.as_tensor(weights / weights.max(), dtype=torch.float32)
        return (idx, torch.from_numpy(self.obs[idx]), torch.from_numpy(self.action[idx]),
                torch.from_numpy(self.returns[idx]), weights)

    def update_priorities(self, idx: np.ndarray, priorities: np.ndarray) -> None:
        self.priority[idx] = priorities

    def state_dict(self) -> dict[str, np.ndarray | int | bool]:
        n = len(self)
        return {"obs": self.obs[:n].copy(), "action": self.action[:n].copy(), "returns": self.returns[:n].copy(),
                "priority": self.priority[:n].copy(), "pos": self.pos, "full": self.full}

    def load_state_dict(self, state: dict) -> None:
        n = len(state["returns"])
        for name in ("obs", "action", "returns", "priority"):
            getattr(self, name)[:n] = state[name]
        self.pos, self.full = int(state["pos"]), bool(state["full"])
