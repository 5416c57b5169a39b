"""Parsing, validation and sampling of the dynamics options (numpy only)."""

import numpy as np
import pytest

from sim.randomization import DYNAMICS_KEYS, Dynamics, parse_dynamics, parse_init_range


def test_nominal_when_empty():
    rng = np.random.default_rng(0)
    assert parse_dynamics(None).sample(rng) == Dynamics()
    assert parse_dynamics({}).sample(rng) == Dynamics()


def test_fixed_values_and_ranges():
    dist = parse_dynamics({"mass_scale": (0.5, 2.0), "action_latency_steps": [0, 3], "sensor_noise_std": 0.01})
    draws = [dist.sample(np.random.default_rng(s)) for s in range(200)]
    masses = np.array([d.mass_scale for d in draws])
    latencies = {d.action_latency_steps for d in draws}
    assert masses.min() >= 0.5 and masses.max() <= 2.0 and masses.std() > 0.2
    assert latencies == {0, 1, 2, 3}  # inclusive integer range
    assert all(isinstance(d.action_latency_steps, int) for d in draws)
    assert {d.sensor_noise_std for d in draws} == {0.01}
    assert {d.friction_scale for d in draws} == {1.0}
    # Same generator state, same draw; key order in the dict does not matter.
    swapped = parse_dynamics({"sensor_noise_std": 0.01, "action_latency_steps": [0, 3], "mass_scale": (0.5, 2.0)})
    assert swapped.sample(np.random.default_rng(7)) == dist.sample(np.random.default_rng(7))


def test_a_dynamics_instance_round_trips():
    d = Dynamics(mass_scale=1.5, action_latency_steps=2)
    assert parse_dynamics(d).sample(np.random.default_rng(0)) == d


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"mass": 1.0}, "mass"),
        ({"mass_scale": 0.0}, "mass_scale"),
        ({"mass_scale": -1.0}, "mass_scale"),
        ({"friction_scale": float("nan")}, "friction_scale"),
        ({"damping_scale": "high"}, "damping_scale"),
        ({"actuator_gain": True}, "actuator_gain"),
        ({"actuator_gain": (2.0, 1.0)}, "actuator_gain"),
        ({"actuator_gain": (1.0, 2.0, 3.0)}, "actuator_gain"),
        ({"sensor_noise_std": -0.1}, "sensor_noise_std"),
        ({"action_latency_steps": 1.5}, "action_latency_steps"),
        ({"action_latency_steps": -1}, "action_latency_steps"),
        ({"action_latency_steps": (0, 10_000)}, "action_latency_steps"),
    ],
)
def test_invalid_dynamics_name_the_key(spec, key):
    with pytest.raises(ValueError, match=key):
        parse_dynamics(spec)


def test_dynamics_must_be_a_dict():
    with pytest.raises(ValueError, match="dynamics"):
        parse_dynamics([("mass_scale", 1.0)])


@pytest.mark.parametrize("value", [-0.1, float("inf"), "1", None, False])
def test_invalid_init_range(value):
    with pytest.raises(ValueError, match="init_range"):
        parse_init_range(value)


def test_keys_are_the_documented_ones():
    assert DYNAMICS_KEYS == (
        "mass_scale", "friction_scale", "damping_scale", "actuator_gain", "sensor_noise_std", "action_latency_steps",
    )
