"""Domain randomization parameters shared by every task: parsing, validation and sampling.

Numpy only, so a robot-side or training-side process can build and check the options without a
physics engine. A task's ``reset(options={"dynamics": {...}})`` and its constructor's
``dynamics=...`` take the same dict: each key maps either to a fixed value or to a ``(low, high)``
range that is sampled from the env's ``np_random`` at every reset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from numbers import Integral, Real
from typing import Any

import numpy as np

# Latency beyond this is a configuration mistake (2 s at 50 Hz), not a robot.
MAX_LATENCY_STEPS = 100


@dataclass(frozen=True)
class Dynamics:
    """One draw of the physical parameters; the defaults are the nominal model.

    - ``mass_scale``: multiplies every link's mass and inertia (> 0).
    - ``friction_scale``: multiplies contact (lateral) friction and joint Coulomb friction (≥ 0).
    - ``damping_scale``: multiplies viscous joint damping (≥ 0).
    - ``actuator_gain``: multiplies the applied force, torque or velocity command (≥ 0).
    - ``sensor_noise_std``: std of Gaussian noise added to each returned observation, in obs units (≥ 0).
    - ``action_latency_steps``: actions take effect that many control steps late (int ≥ 0).
    """

    mass_scale: float = 1.0
    friction_scale: float = 1.0
    damping_scale: float = 1.0
    actuator_gain: float = 1.0
    sensor_noise_std: float = 0.0
    action_latency_steps: int = 0


DYNAMICS_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Dynamics))
_INTEGER_KEYS = frozenset({"action_latency_steps"})
# Smallest allowed value and whether it is excluded.
_LOWER_BOUND: dict[str, tuple[float, bool]] = {
    "mass_scale": (0.0, True),
    "friction_scale": (0.0, False),
    "damping_scale": (0.0, False),
    "actuator_gain": (0.0, False),
    "sensor_noise_std": (0.0, False),
    "action_latency_steps": (0, False),
}


def _check_value(key: str, value: Any) -> float | int:
    # bool is an int subclass; True as a scale is almost certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"dynamics[{key!r}] must be a number or a (low, high) pair, got {value!r}")
    if key in _INTEGER_KEYS:
        if not isinstance(value, Integral) and not float(value).is_integer():
            raise ValueError(f"dynamics[{key!r}] must be an integer, got {value!r}")
        value = int(value)
        if value > MAX_LATENCY_STEPS:
            raise ValueError(f"dynamics[{key!r}] must be at most {MAX_LATENCY_STEPS}, got {value}")
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"dynamics[{key!r}] must be finite, got {value!r}")
    bound, strict = _LOWER_BOUND[key]
    if value < bound or (strict and value == bound):
        relation = ">" if strict else "≥"
        raise ValueError(f"dynamics[{key!r}] must be {relation} {bound}, got {value!r}")
    return value


@dataclass(frozen=True)
class DynamicsDistribution:
    """Per key, either a fixed value or an inclusive ``(low, high)`` range; build with :func:`parse_dynamics`."""

    values: tuple[tuple[str, float | int | tuple[float, float] | tuple[int, int]], ...] = ()

    def sample(self, rng: np.random.Generator) -> Dynamics:
        """Draw one parameter set; keys with a fixed value consume no random numbers."""
        drawn: dict[str, float | int] = {}
        for key, value in self.values:
            if not isinstance(value, tuple):
                drawn[key] = value
            elif key in _INTEGER_KEYS:
                drawn[key] = int(rng.integers(value[0], value[1] + 1))
            else:
                drawn[key] = float(rng.uniform(value[0], value[1]))
        return Dynamics(**drawn)


def parse_dynamics(spec: Mapping[str, Any] | Dynamics | DynamicsDistribution | None) -> DynamicsDistribution:
    """Validate a ``dynamics`` option; ``ValueError`` names the offending key.

    Keys left out stay nominal. ``None`` or ``{}`` means the nominal model.
    """
    if spec is None:
        return DynamicsDistribution()
    if isinstance(spec, DynamicsDistribution):
        return spec
    if isinstance(spec, Dynamics):
        spec = {f.name: getattr(spec, f.name) for f in fields(Dynamics)}
    if not isinstance(spec, Mapping):
        raise ValueError(f"dynamics must be a dict with keys from {DYNAMICS_KEYS}, got {type(spec).__name__}")
    parsed: list[tuple[str, Any]] = []
    for key, value in spec.items():
        if key not in DYNAMICS_KEYS:
            raise ValueError(f"unknown dynamics key {key!r}; expected some of {DYNAMICS_KEYS}")
        if isinstance(value, tuple | list | np.ndarray):
            if len(value) != 2:
                raise ValueError(f"dynamics[{key!r}] range must be (low, high), got {value!r}")
            low, high = (_check_value(key, v) for v in value)
            if low > high:
                raise ValueError(f"dynamics[{key!r}] range has low > high: {value!r}")
            parsed.append((key, (low, high)))
        else:
            parsed.append((key, _check_value(key, value)))
    # A fixed key order makes sampling independent of the caller's dict order.
    parsed.sort(key=lambda item: DYNAMICS_KEYS.index(item[0]))
    return DynamicsDistribution(tuple(parsed))


def parse_init_range(value: Any) -> float:
    """Validate the ``init_range`` option: a finite float scale ≥ 0 of the initial-state perturbation."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)) or value < 0:
        raise ValueError(f"init_range must be a finite number ≥ 0, got {value!r}")
    return float(value)


def parse_randomize(texts: Sequence[str]) -> dict[str, float | tuple[float, float]]:
    """``["mass_scale=0.7:1.5", "actuator_gain=0.8"]`` (the command line's and a config's ``randomize``) as a
    ``dynamics`` dict: ``key=low:high`` is a range sampled at every reset, ``key=value`` a fixed value. Only the
    syntax is checked here; :func:`parse_dynamics` checks keys and values."""
    spec: dict[str, float | tuple[float, float]] = {}
    for text in texts:
        key, sep, value = str(text).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"randomize {text!r}: expected KEY=LOW:HIGH or KEY=VALUE")
        if key in spec:
            raise ValueError(f"randomize: {key} is given twice")
        try:
            numbers = [float(part) for part in value.split(":")]
        except ValueError:
            raise ValueError(f"randomize {text!r}: {value!r} is not a number or LOW:HIGH") from None
        if len(numbers) > 2:
            raise ValueError(f"randomize {text!r}: expected KEY=LOW:HIGH or KEY=VALUE")
        spec[key] = (numbers[0], numbers[1]) if len(numbers) == 2 else numbers[0]
    parse_dynamics(spec)  # keys and values, refused by name
    return spec


def format_dynamics(distribution: DynamicsDistribution) -> tuple[str, ...]:
    """The inverse of :func:`parse_randomize`: ``("mass_scale=0.7:1.5", ...)``; a range of one value is written as
    that value (``action_latency_steps=3``)."""
    items = []
    for key, value in distribution.values:
        low, high = value if isinstance(value, tuple) else (value, value)
        items.append(f"{key}={low:g}:{high:g}" if low != high else f"{key}={low:g}")
    return tuple(items)


def envelope(item_sets: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """The smallest randomization that contains each of ``item_sets`` (``parse_randomize``'s items, one set per
    simulator, such as A3C workers with their own ranges): per key, from the lowest to the highest value any set
    can draw, a set without the key drawing its nominal value."""
    specs = [parse_randomize(items) for items in item_sets]
    nominal = Dynamics()
    spans: dict[str, tuple[float, float]] = {}
    for key in DYNAMICS_KEYS:
        if not any(key in spec for spec in specs):
            continue
        values = [spec.get(key, getattr(nominal, key)) for spec in specs]
        lows = [v[0] if isinstance(v, tuple) else v for v in values]
        highs = [v[1] if isinstance(v, tuple) else v for v in values]
        spans[key] = (min(lows), max(highs))
    return format_dynamics(parse_dynamics({k: lo if lo == hi else (lo, hi) for k, (lo, hi) in spans.items()}))
