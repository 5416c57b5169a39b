"""A policy's input with history: the current observation and the last k observations and commands.

A policy that sees what it did and what followed can infer the dynamics it acts on (a latency, a gain, a mass)
within an episode, where a policy of the current observation alone can only average over them (Peng et al.
2018, "Sim-to-real transfer of robotic control with dynamics randomization", feed such a history to a
recurrent policy; a fixed window fed to a feed-forward one is the simpler form used here).

The layout, written once here and used by training (:class:`HistoryWrapper` around every env of a run) and by
the robot's runtime (``robopg.runtime.deploy.ControlLoop``), is one flat vector::

    [obs_t, obs_{t-1}, ..., obs_{t-k}, command_{t-1}, ..., command_{t-k}]

newest first, where ``command`` is what was applied (the action clipped to the action space's bounds, as the
robot's safety layer clips it). At an episode's start the past is the first observation repeated and zero
commands: what a robot at rest after a reset has seen and done, and what the simulator's latency queue holds.

numpy and gymnasium only: the robot's runtime imports this module without torch.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np


def history_input_dim(obs_dim: int, act_dim: int, k: int) -> int:
    """The width of a policy's input with ``k`` steps of history."""
    return (k + 1) * obs_dim + k * act_dim


def observation_dim(input_dim: int, act_dim: int, k: int) -> int:
    """The observation width of a policy whose input is ``input_dim`` wide with ``k`` steps of history."""
    return (input_dim - k * act_dim) // (k + 1)


class History:
    """The last ``k`` observations and commands of an episode, as the policy's input (the layout above).

    :meth:`start` at each episode's first observation, :meth:`step` after each command with the observation that
    followed; both return the policy's input (a new array each time, safe to keep). With ``k = 0`` the input is
    the observation itself.
    """

    def __init__(self, k: int, obs_dim: int, act_dim: int) -> None:
        if k < 0:
            raise ValueError(f"history must be >= 0, got {k}")
        self.k, self.obs_dim, self.act_dim = k, obs_dim, act_dim
        self.commands_at = (k + 1) * obs_dim  # where the commands begin in the input
        self.input = np.zeros(history_input_dim(obs_dim, act_dim, k), dtype=np.float32)

    def start(self, obs: np.ndarray) -> np.ndarray:
        if not self.k:
            return obs
        self.input[:self.commands_at] = np.tile(np.asarray(obs, dtype=np.float32), self.k + 1)
        self.input[self.commands_at:] = 0.0
        return self.input.copy()

    def step(self, command: np.ndarray, obs: np.ndarray) -> np.ndarray:
        if not self.k:
            return obs
        o, a, x = self.obs_dim, self.act_dim, self.input
        x[o:self.commands_at] = x[:self.commands_at - o]  # numpy copies overlapping slices through a buffer
        x[:o] = obs
        x[self.commands_at + a:] = x[self.commands_at:len(x) - a]
        x[self.commands_at:self.commands_at + a] = command
        return x.copy()


class HistoryWrapper(gym.Wrapper):
    """An env whose observations are :class:`History` inputs of ``k`` steps (``k >= 1``); the commands recorded
    are the actions given to :meth:`step`, clipped to the action space."""

    def __init__(self, env: gym.Env, k: int) -> None:
        super().__init__(env)
        obs_space, act_space = env.observation_space, env.action_space
        assert isinstance(obs_space, gym.spaces.Box) and isinstance(act_space, gym.spaces.Box)
        self.low, self.high = act_space.low, act_space.high
        self.history = History(k, obs_space.shape[0], act_space.shape[0])
        self.observation_space = gym.spaces.Box(
            np.concatenate([np.tile(obs_space.low, k + 1), np.tile(act_space.low, k)]).astype(np.float32),
            np.concatenate([np.tile(obs_space.high, k + 1), np.tile(act_space.high, k)]).astype(np.float32),
            dtype=np.float32)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self.history.start(obs), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        command = np.clip(action, self.low, self.high)
        return self.history.step(command, obs), reward, terminated, truncated, info

    def external_state(self) -> dict[str, Any]:
        """The episode's history so far (for ``robopg.training.env_state``)."""
        return {"input": self.history.input.tolist()}

    def restore_external_state(self, state: dict[str, Any]) -> None:
        self.history.input[:] = np.asarray(state["input"], dtype=np.float32)
