"""System identification from the robot's own logs (real to sim): the dynamics under which the simulator
best reproduces logged robot trajectories.

Each logged episode is cut into windows of ``horizon`` control steps. A window is replayed in the simulator
from its logged first observation with the logged commands (and, under a latency, the commands still in
flight), and the predicted observations are compared with the logged ones: multiple shooting, whose short
windows keep a chaotic plant's predictions comparable. The cost is the mean squared error per observation,
each dimension scaled by its spread in the log.

Continuous parameters are fitted by CMA-ES (Hansen & Ostermeier 2001, the ``cmaes`` package) over their
logarithms, once for every candidate latency (an integer, searched exhaustively); the best pair wins and is
refined by least squares (scipy's trust-region reflective Gauss-Newton). A weak
Gaussian prior on the logarithms around the nominal model (``prior``, a maximum a posteriori fit) decides
between parameters the log cannot tell apart: a cart-pole whose actuator is 0.7 times weaker is reproduced
exactly by masses, friction and gain all 3.8 times larger, and a policy trained on that twin did worse on the
robot than the deployed one; the prior picks the combination nearest the nominal model. Each
estimate's uncertainty is its Gauss-Newton standard error at the optimum, s²(JᵀJ)⁻¹ with J the Jacobian of
the residuals by central differences and s² the residual variance.

Sensor noise is not a dynamics a replay can fit; it is estimated from the identified model's one-step
predictions. A logged observation y = x + e carries noise e ~ N(0, σ²) in every dimension, and predicting the
next one from it leaves, to first order, the residual e' − J e (J the simulator's one-step Jacobian by the
observation, by finite differences), whose i-th dimension has variance σ²(1 + ‖J_i‖²). Each squared residual
divided by that factor is σ² times a χ²(1) variable; their median over every window and dimension, divided by
χ²(1)'s median, estimates σ² robustly: the few dimensions and steps the model gets wrong (a contact, a
nonlinearity larger than the noise) move a mean, not a median. Its standard error is bootstrapped over windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cmaes import CMA
from scipy.optimize import least_squares

from robopg.envs import make_env
from robopg.errors import EnvError, LogError
from robopg.settings import Settings, require, setting
from sim.randomization import DYNAMICS_KEYS

LATENCY = "action_latency_steps"
NOISE = "sensor_noise_std"  # estimated from the identified model's one-step residuals, not fitted
IDENTIFIABLE = DYNAMICS_KEYS
CHI2_1_MEDIAN = 0.45493642311957283  # the median of a χ² variable with one degree of freedom
NOISE_BOOTSTRAP = 200  # resamples of the windows behind the noise estimate's standard error
JACOBIAN_STEP = 1e-3  # of the observation, in its units, for the one-step Jacobian
SMALLEST_SCALE, LARGEST_SCALE = 0.05, 20.0  # what identification searches, and a range stays within
LOG_BOUNDS = (math.log(SMALLEST_SCALE), math.log(LARGEST_SCALE))


@dataclass(frozen=True, kw_only=True)
class IdentifyConfig(Settings):
    """How the simulator is fitted to logged trajectories."""

    label = "identify config"

    horizon: int = setting(10, "control steps replayed from each logged observation", ge=1, most=10_000)
    stride: int = setting(5, "control steps between the starts of two windows", ge=1, most=10_000)
    max_windows: int = setting(150, "windows replayed per cost evaluation (an even subsample of the log)", ge=1,
                              most=10**6)
    max_latency: int = setting(5, "largest action latency tried, in control steps", ge=0, most=100)
    generations: int = setting(20, "CMA-ES generations of the final fit", ge=1, most=10_000)
    screen_generations: int = setting(5, "CMA-ES generations of each latency's screening fit", ge=1, most=10_000)
    range_errors: float = setting(3.0, "the suggested randomization range spans this many standard errors on "
                                       "each side of an estimate", gt=0, le=100)
    min_range: float = setting(0.05, "… and at least this share of the estimate on each side", ge=0, lt=1)
    prior: float = setting(1e-3, "pull of every scale towards the nominal model: the fit minimizes the cost plus "
                                 "prior × the nominal model's cost × Σ log(scale)², which settles parameters the "
                                 "log cannot tell apart at the values nearest the nominal model", ge=0, le=1)
    seed: int = setting(0, "seed of CMA-ES and of the window subsample", ge=0, le=2**32 - 1)


@dataclass(frozen=True)
class Window:
    """``horizon`` logged steps: the first observation, the commands in flight before it, the commands sent
    from it and the observations that followed."""

    start: np.ndarray
    in_flight: np.ndarray  # the commands sent before ``start``, oldest first (up to max_latency of them)
    commands: np.ndarray
    observed: np.ndarray


@dataclass(frozen=True)
class Identification:
    estimates: dict[str, float]  # every fitted parameter (the latency as a float of an integer)
    standard_errors: dict[str, float]  # 0 for the latency: it is chosen, not estimated
    cost: float  # the fit's mean squared scaled prediction error
    nominal_cost: float  # the nominal model's
    latency_costs: dict[int, float]  # the best cost found at each latency tried (when the latency is fitted)
    correlations: dict[tuple[str, str], float]  # between two continuous estimates

    def confounded(self, threshold: float = 0.9) -> list[tuple[str, str, float]]:
        """Pairs of estimates so correlated that the log determines mostly a combination of the two."""
        return [(a, b, r) for (a, b), r in self.correlations.items() if abs(r) >= threshold]

    def randomization(self, config: IdentifyConfig) -> dict[str, tuple[float, float]]:
        """A range around each estimate for training on the identified dynamics: ± ``range_errors`` standard
        errors, at least ± ``min_range`` of the estimate; the latency exactly."""
        ranges: dict[str, tuple[float, float]] = {}
        for key, value in self.estimates.items():
            if key == LATENCY:
                ranges[key] = (value, value)
                continue
            half = max(config.range_errors * self.standard_errors[key], config.min_range * value)
            ranges[key] = (round(max(value - half, 0.0 if key == NOISE else SMALLEST_SCALE), 4),
                           round(value + half, 4))
        return ranges


def load_log(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(observations, commands) of every episode of a ``deploy --log`` trajectory file."""
    try:
        with np.load(path) as data:
            episodes = [(np.asarray(data[f"obs_{i}"], np.float64), np.asarray(data[f"command_{i}"], np.float64))
                        for i in range(sum(key.startswith("obs_") for key in data.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise LogError(f"{path} is not a robot trajectory log (deploy --log): {exc}") from None
    if not episodes:
        raise LogError(f"{path} holds no episodes")
    for obs, commands in episodes:
        if not (obs.ndim == 2 and commands.ndim == 2 and len(obs) == len(commands) + 1):
            raise LogError(f"{path}: an episode needs one more observation than commands")
        if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(commands))):
            raise LogError(f"{path}: an episode holds a NaN or infinite value")
    return episodes


def windows_of(episodes: Sequence[tuple[np.ndarray, np.ndarray]], config: IdentifyConfig) -> list[Window]:
    """The log's windows, evenly subsampled to at most ``max_windows``."""
    windows = []
    for obs, commands in episodes:
        for t in range(0, len(commands) - config.horizon + 1, config.stride):
            windows.append(Window(obs[t], commands[max(0, t - config.max_latency):t], commands[t:t + config.horizon],
                                  obs[t + 1:t + config.horizon + 1]))
    require(bool(windows), f"the log has no episode of at least horizon = {config.horizon} steps")
    if len(windows) > config.max_windows:
        keep = np.linspace(0, len(windows) - 1, config.max_windows).round().astype(int)
        windows = [windows[i] for i in keep]
    return windows


class Replay:
    """Prediction residuals of the simulator over a log's windows, for a given set of dynamics parameters."""

    def __init__(self, env_id: str, windows: list[Window]) -> None:
        self.env = make_env(env_id).unwrapped
        self.windows = windows
        start = windows[0].start
        if not hasattr(self.env, "set_state") or self.env.observation_space.shape != start.shape:
            self.close()
            raise EnvError(f"environment {env_id!r} cannot replay this log: identify needs a robopg task whose "
                           f"observations have the log's size ({start.size})")
        self.env.reset(seed=0)
        try:
            self.env.set_state(start)
        except ValueError as exc:
            self.close()
            raise EnvError(f"environment {env_id!r}: {exc}") from None
        observed = np.concatenate([w.observed for w in windows])
        self.scale = observed.std(axis=0) + 1e-6 * (np.abs(observed).max(axis=0) + 1.0)

    def residuals(self, dynamics: dict[str, float]) -> np.ndarray:
        """Scaled prediction errors of every window's every step, flattened."""
        self.env.reset(seed=0, options={"dynamics": dynamics})
        errors = []
        for w in self.windows:
            self.env.set_state(w.start, list(w.in_flight))
            predicted = np.array([self.env.predict(c.astype(np.float32)) for c in w.commands])
            errors.append((predicted - w.observed) / self.scale)
        return np.concatenate(errors).ravel()

    def cost(self, dynamics: dict[str, float]) -> float:
        return float(np.mean(np.square(self.residuals(dynamics))))

    def noise_ratios(self, dynamics: dict[str, float]) -> np.ndarray:
        """Per window (rows) and observation dimension (columns): the squared one-step prediction residual over
        its first-order noise factor 1 + ‖J_i‖², in squared observation units (module docstring)."""
        self.env.reset(seed=0, options={"dynamics": dynamics})
        rows = []
        for w in self.windows:
            predicted = self.first_step(w, w.start)
            jacobian = np.stack([(self.first_step(w, w.start + JACOBIAN_STEP * unit) - predicted) / JACOBIAN_STEP
                                 for unit in np.eye(w.start.size)], axis=1)
            rows.append(np.square(w.observed[0] - predicted) / (1.0 + np.square(jacobian).sum(axis=1)))
        return np.array(rows)

    def first_step(self, window: Window, start: np.ndarray) -> np.ndarray:
        """The observation after ``window``'s first command from observation ``start``, its commands in flight."""
        self.env.set_state(start, list(window.in_flight))
        return np.asarray(self.env.predict(window.commands[0].astype(np.float32)), np.float64)

    def close(self) -> None:
        self.env.close()


def check_params(params: Sequence[str]) -> None:
    require(bool(params), "name at least one parameter to identify")
    for key in params:
        require(key in IDENTIFIABLE, f"unknown dynamics parameter {key!r}; expected some of "
                                     f"{', '.join(IDENTIFIABLE)}")
    require(len(set(params)) == len(params), f"a parameter is named twice: {', '.join(params)}")


def identify(env_id: str, episodes: Sequence[tuple[np.ndarray, np.ndarray]], params: Sequence[str],
             config: IdentifyConfig) -> Identification:
    """Fit ``params`` (keys of ``sim.randomization.Dynamics``) of ``env_id`` to the logged ``episodes``."""
    check_params(params)
    continuous = [p for p in params if p not in (LATENCY, NOISE)]
    latencies = range(config.max_latency + 1) if LATENCY in params else [0]
    replay = Replay(env_id, windows_of(episodes, config))
    try:
        nominal_cost = replay.cost({})
        start = [0.0] * len(continuous)
        weight = config.prior * nominal_cost
        fits = {k: fit_continuous(replay, continuous, k, start, config.screen_generations, config.seed, weight)
                for k in latencies}
        latency = min(fits, key=lambda k: fits[k][1])
        values, _ = fit_continuous(replay, continuous, latency, [math.log(v) for v in fits[latency][0]],
                                   config.generations, config.seed, weight)
        values = polish(replay, continuous, latency, values, weight)
        estimates = dict(zip(continuous, values, strict=True))
        dynamics = {**({LATENCY: latency} if latency else {}), **estimates}
        cost = replay.cost(dynamics)
        errors, correlations = uncertainty(replay, estimates, latency)
        if NOISE in params:
            estimates[NOISE], errors[NOISE] = sensor_noise(replay.noise_ratios(dynamics), config.seed)
    finally:
        replay.close()
    if LATENCY in params:
        estimates[LATENCY], errors[LATENCY] = float(latency), 0.0
    return Identification({p: estimates[p] for p in params}, {p: errors[p] for p in params}, cost, nominal_cost,
                          {k: fits[k][1] for k in fits} if LATENCY in params else {}, correlations)


def sensor_noise(ratios: np.ndarray, seed: int) -> tuple[float, float]:
    """The noise's standard deviation from ``Replay.noise_ratios`` (module docstring), and its standard error
    bootstrapped over the windows (the rows)."""
    def estimate(rows: np.ndarray) -> float:
        return math.sqrt(float(np.median(rows)) / CHI2_1_MEDIAN)

    rng = np.random.default_rng(seed)
    resampled = [estimate(ratios[rng.integers(0, len(ratios), len(ratios))]) for _ in range(NOISE_BOOTSTRAP)]
    return estimate(ratios), float(np.std(resampled))


def fit_continuous(replay: Replay, params: list[str], latency: int, start: list[float], generations: int,
                   seed: int, prior_weight: float = 0.0) -> tuple[list[float], float]:
    """CMA-ES over the logarithms z of ``params`` at a fixed latency from ``start`` (logarithms), minimizing the
    cost plus ``prior_weight`` × Σz²; the best values and their objective."""
    fixed = {LATENCY: latency} if latency else {}

    def objective(z: np.ndarray) -> float:
        return replay.cost({**fixed, **dict(zip(params, np.exp(z), strict=True))}) + prior_weight * float(z @ z)

    best = np.asarray(start, np.float64)
    best_cost = objective(best)
    if not params:
        return [], best_cost
    optimizer = CMA(mean=best.copy(), sigma=0.3, bounds=np.array([LOG_BOUNDS] * len(params)), seed=seed)
    for _ in range(generations):
        solutions = []
        for _ in range(optimizer.population_size):
            z = optimizer.ask()
            cost = objective(z)
            solutions.append((z, cost))
            if cost < best_cost:
                best, best_cost = z, cost
        optimizer.tell(solutions)
    return [float(v) for v in np.exp(best)], best_cost


def polish(replay: Replay, params: list[str], latency: int, values: list[float], prior_weight: float) -> list[float]:
    """CMA-ES's best ``values`` refined by least squares (trust-region reflective, scipy) on the same objective:
    CMA-ES finds the basin, and within it a valley of parameters that trade off against each other (mass and
    gain) is followed to its bottom in a few Gauss-Newton steps, where CMA-ES's generations stall."""
    if not params:
        return values
    fixed = {LATENCY: latency} if latency else {}
    count = sum(window.observed.size for window in replay.windows)  # the residuals' length

    def residuals(z: np.ndarray) -> np.ndarray:
        fit = replay.residuals({**fixed, **dict(zip(params, np.exp(z), strict=True))}) / math.sqrt(count)
        return np.concatenate([fit, math.sqrt(prior_weight) * z])

    # A trust-region method accepts only steps that lower the objective: the result is never worse than the start.
    found = least_squares(residuals, np.clip(np.log(values), *LOG_BOUNDS), bounds=LOG_BOUNDS, diff_step=1e-3,
                          max_nfev=20 * (len(params) + 1))
    return [float(v) for v in np.exp(found.x)]


def uncertainty(replay: Replay, estimates: dict[str, float],
                latency: int) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """Gauss-Newton standard errors of the continuous estimates (central differences of 1 % of each), and the
    correlation of each pair."""
    if not estimates:
        return {}, {}
    fixed = {LATENCY: latency} if latency else {}
    residuals = replay.residuals({**fixed, **estimates})
    columns = []
    for key, value in estimates.items():
        step = 0.01 * max(abs(value), 1e-3)
        plus = replay.residuals({**fixed, **estimates, key: value + step})
        minus = replay.residuals({**fixed, **estimates, key: max(value - step, 0.0)})
        columns.append((plus - minus) / (value + step - max(value - step, 0.0)))
    jacobian = np.stack(columns, axis=1)
    dof = max(len(residuals) - len(estimates), 1)
    variance = float(residuals @ residuals) / dof
    covariance = variance * np.linalg.pinv(jacobian.T @ jacobian)
    errors = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    keys = list(estimates)
    correlations = {(keys[i], keys[j]): float(covariance[i, j] / max(errors[i] * errors[j], 1e-300))
                    for i in range(len(keys)) for j in range(i + 1, len(keys))}
    return {key: float(errors[i]) for i, key in enumerate(keys)}, correlations
