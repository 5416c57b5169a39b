"""The Furuta pendulum's reference controller: LQR on the model linearized about upright by finite differences
in the simulator itself, which is what ``solved_return`` in robot.toml is measured against.

    python examples/furuta/reference.py [--episodes 20]

prints the controller's mean return over seeded episodes (and doing nothing's). The state is (θ, α, θ̇, α̇);
the model is linearized without Coulomb friction, which has no derivative at rest.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from robopg.envs import make_env
from sim.controllers import discrete_lqr

TASK = str(Path(__file__).with_name("robot.toml"))
MAX_TORQUE = 0.1  # N·m
Q = np.diag([1.0, 20.0, 0.05, 0.5])  # θ, α, θ̇, α̇
R = np.array([[200.0]])  # a torque of 0.1 N·m costs what an α of 0.45 rad does


def observation(state: np.ndarray) -> np.ndarray:
    theta, alpha, theta_dot, alpha_dot = state
    return np.array([np.cos(theta), np.sin(theta), np.cos(alpha), np.sin(alpha), theta_dot, alpha_dot])


def state_of(obs: np.ndarray) -> np.ndarray:
    obs = np.asarray(obs, np.float64)
    return np.array([np.arctan2(obs[1], obs[0]), np.arctan2(obs[3], obs[2]), obs[4], obs[5]])


def linearize(eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """``A`` and ``B`` of one control step about upright at rest, by central differences."""
    env = make_env(TASK, dynamics={"friction_scale": 0.0}, init_range=0.0).unwrapped
    env.reset(seed=0)

    def step(state: np.ndarray, torque: float) -> np.ndarray:
        env.set_state(observation(state))
        next_obs, *_ = env.step(np.array([torque]))
        return state_of(next_obs)

    a = np.zeros((4, 4))
    for i in range(4):
        dx = np.eye(4)[i] * eps
        a[:, i] = (step(dx, 0.0) - step(-dx, 0.0)) / (2 * eps)
    b = ((step(np.zeros(4), eps) - step(np.zeros(4), -eps)) / (2 * eps))[:, None]
    env.close()
    return a, b


Controller = Callable[[np.ndarray], np.ndarray]


def lqr_controller() -> Controller:
    """``u = −K x`` clipped to the torque limit, ``K`` the discrete LQR gain of the linearized model."""
    gain = discrete_lqr(*linearize(), Q, R)[0]
    return lambda obs: np.clip(np.array([-gain @ state_of(obs)]), -MAX_TORQUE, MAX_TORQUE)


def mean_return(policy: Controller, episodes: int) -> float:
    """The mean return of ``policy`` over episodes seeded 0, 1, ..."""
    env = make_env(TASK)
    returns = []
    for seed in range(episodes):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += reward
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    print(f"LQR reference: {mean_return(lqr_controller(), args.episodes):.1f} over {args.episodes} episodes")
    print(f"doing nothing: {mean_return(lambda obs: np.zeros(1), args.episodes):.1f}")


if __name__ == "__main__":
    main()
