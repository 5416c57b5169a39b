"""A task small enough that learning is visible within seconds: move a point on a line to 0."""

import gymnasium as gym
import numpy as np


class PointToOrigin(gym.Env):
    """x' = x + 0.1·a, reward −|x'|, 20 steps from x ~ U(−1, 1); optimal action pushes toward 0."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-1, 1))
        return np.array([self.x], dtype=np.float32), {}

    def step(self, action):
        self.x += 0.1 * float(np.clip(action[0], -1, 1))
        return np.array([self.x], dtype=np.float32), -abs(self.x), False, False, {}


gym.register("PointToOrigin-v0", entry_point=PointToOrigin, max_episode_steps=20)
