"""Hand-written reference controllers, from observations to actions (numpy only).

They show what a solved episode looks like and put a floor under ``solved_return``: a learned
policy should match them. They also make a quick end-to-end check of a robot link without any
learned weights.
"""

from __future__ import annotations

import numpy as np

from sim.tasks import cartpole, reacher


def _cartpole_lqr_gain() -> np.ndarray:
    """Discrete LQR gain of the cart-pole linearized about upright, from the URDF's parameters.

    State (x, ẋ, θ, θ̇), input cart force. Cart 1 kg; pole 0.1 kg, centre of mass 0.5 m from the
    hinge, inertia about it 0.1·(1² + 0.05²)/12 + 0.1·0.5² kg·m² (a 1 m box, as Bullet computes it).
    """
    cart, pole, lc = 1.0, 0.1, 0.5
    inertia = pole * (1.0 + 0.05**2) / 12.0 + pole * lc**2
    g, dt = 9.81, 1.0 / cartpole.CONTROL_HZ
    # [[M+m, m lc], [m lc, I]] (ẍ, θ̈) = (F, m g lc θ)
    mass = np.array([[cart + pole, pole * lc], [pole * lc, inertia]])
    inv = np.linalg.inv(mass)
    a = np.zeros((4, 4))
    a[0, 1] = a[2, 3] = 1.0
    a[[1, 3], 2] = inv[:, 1] * pole * g * lc
    b = np.zeros((4, 1))
    b[[1, 3], 0] = inv[:, 0]
    # Zero-order hold: exp([[A, B], [0, 0]] dt) by its Taylor series (dt is small).
    m = np.zeros((5, 5))
    m[:4, :4], m[:4, 4:] = a * dt, b * dt
    term, expm = np.eye(5), np.eye(5)
    for k in range(1, 20):
        term = term @ m / k
        expm = expm + term
    ad, bd = expm[:4, :4], expm[:4, 4:]
    return discrete_lqr(ad, bd, np.diag([1.0, 0.1, 10.0, 0.1]), np.array([[0.05]]))[0]


def discrete_lqr(a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray, iterations: int = 2000) -> np.ndarray:
    """The gain ``K`` of the discrete LQR ``u = −K x`` for ``x' = A x + B u`` and cost ``Σ xᵀQx + uᵀRu``, by
    Riccati iteration to the fixed point."""
    p = q.copy()
    for _ in range(iterations):
        k_gain = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
        p = q + a.T @ p @ (a - b @ k_gain)
    return k_gain


_LQR_GAIN = _cartpole_lqr_gain()


def cartpole_swing_up(obs: np.ndarray) -> np.ndarray:
    """Energy-pumping swing-up (Åström & Furuta 2000) with a cart-centring term, then LQR balance near upright."""
    x, x_dot, cos_t, sin_t, theta_dot = np.asarray(obs, np.float64)
    theta = np.arctan2(sin_t, cos_t)
    if cos_t > 0.85:
        force = -_LQR_GAIN @ np.array([x, x_dot, theta, theta_dot])
    else:
        pole, lc, inertia = 0.1, 0.5, 0.1 * (1.0 + 0.05**2) / 12.0 + 0.1 * 0.25
        energy = 0.5 * inertia * theta_dot**2 + pole * 9.81 * lc * (cos_t - 1.0)  # 0 at rest upright
        # dE/dt = −m lc a θ̇ cos θ: accelerate against θ̇ cos θ while short of energy (E < 0), hardest
        # where the pole is fastest, which pumps the most energy per metre of cart travel.
        accel = 40.0 * energy * theta_dot * cos_t - 20.0 * x - 10.0 * x_dot
        if energy < -0.97 * 2.0 * pole * 9.81 * lc and abs(theta_dot) < 0.2:
            accel += 5.0  # at rest at the bottom the pump has nothing to amplify: nudge it
        force = 1.1 * accel
    return np.clip(np.array([force]), -cartpole.MAX_FORCE, cartpole.MAX_FORCE)


def reacher_ik_pd(obs: np.ndarray, kp: float = 0.1, kd: float = 0.01) -> np.ndarray:
    """Joint-space PD towards the inverse-kinematics solution of the target (elbow on the side it is)."""
    obs = np.asarray(obs, np.float64)
    q0, q1 = np.arctan2(obs[1], obs[0]), np.arctan2(obs[3], obs[2])
    tx, ty = obs[6], obs[7]
    l0, l1 = reacher.LINK_LENGTHS
    cos_elbow = np.clip((tx**2 + ty**2 - l0**2 - l1**2) / (2 * l0 * l1), -1.0, 1.0)
    elbow = np.arccos(cos_elbow) * (1.0 if q1 >= 0 else -1.0)
    shoulder = np.arctan2(ty, tx) - np.arctan2(l1 * np.sin(elbow), l0 + l1 * np.cos(elbow))
    # Wrap the shoulder error so the arm turns the short way round.
    error = np.array([(shoulder - q0 + np.pi) % (2 * np.pi) - np.pi, elbow - q1])
    torque = kp * error - kd * obs[4:6]
    return np.clip(torque, -reacher.MAX_TORQUE, reacher.MAX_TORQUE)
