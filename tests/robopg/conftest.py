import gymnasium as gym
import numpy as np
import pytest

# Small enough to train in seconds on Pendulum-v1 (200-step episodes), big enough to exercise every phase.
TINY = {
    "total_steps": 800, "learning_starts": 200, "batch_size": 32, "buffer_size": 5000,
    "eval_every": 400, "eval_episodes": 1, "checkpoint_every": 200, "log_every": 100,
    "actor_hidden": [16], "critic_hidden": [16],
}


@pytest.fixture
def tiny():
    return dict(TINY)


# A task small enough that learning is visible within seconds: move a point on a line to 0.
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
