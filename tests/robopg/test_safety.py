"""The safety layer: clip, rate limit, low-pass, non-finite guard and observation bounds, by hand-computed cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robopg.errors import ConfigError
from robopg.runtime.safety import SafetyConfig, SafetyLayer


def layer(**config):
    return SafetyLayer(np.array([-1.0, -2.0]), np.array([1.0, 2.0]), SafetyConfig(**config))


def test_clips_to_the_limits_and_counts():
    s = layer()
    assert np.allclose(s.filter([3.0, -5.0]), [1.0, -2.0]) and s.counters.clipped == 1
    assert np.allclose(s.filter([0.5, 0.5]), [0.5, 0.5]) and s.counters.clipped == 1


def test_counters_read_as_a_sentence():
    s = layer(max_delta=0.5)
    s.filter([3.0, 0.0])
    s.filter([np.nan, 0.0])
    s.observation_ok([np.inf])
    assert str(s.counters) == ("0 steps clipped, 1 rate-limited, 1 non-finite actions replaced, 0 observations out "
                               "of bounds, 1 non-finite observations")


def test_rate_limit_moves_at_most_max_delta_per_step_from_the_safe_action():
    s = layer(max_delta=(0.5, 1.0))
    assert np.allclose(s.filter([1.0, 2.0]), [0.5, 1.0])
    assert np.allclose(s.filter([1.0, 2.0]), [1.0, 2.0])
    assert np.allclose(s.filter([-1.0, -2.0]), [0.5, 1.0])
    assert s.counters.rate_limited == 2


def test_lowpass_filter():
    s = layer(lowpass=0.25)
    assert np.allclose(s.filter([1.0, 2.0]), [0.25, 0.5])
    assert np.allclose(s.filter([1.0, 2.0]), [0.4375, 0.875])


@pytest.mark.parametrize("bad", [[np.nan, 0.0], [0.0, np.inf], [1.0]])
def test_non_finite_or_misshapen_actions_send_the_safe_action(bad):
    s = layer(safe_action=(0.5, -0.5))
    assert np.allclose(s.filter(bad), [0.5, -0.5]) and s.counters.nonfinite_actions == 1


def test_reset_restarts_the_rate_limit_from_the_safe_action():
    s = layer(max_delta=0.5)
    s.filter([1.0, 2.0])
    s.filter([1.0, 2.0])
    s.reset()
    assert np.allclose(s.filter([1.0, 2.0]), [0.5, 0.5])


def test_observation_bounds_end_an_episode():
    s = layer(obs_low=(-1.0,), obs_high=(1.0,))
    assert s.observation_ok([0.5]) and not s.observation_ok([1.5]) and not s.observation_ok([np.nan])
    assert (s.counters.obs_out_of_bounds, s.counters.nonfinite_obs) == (1, 1)


@pytest.mark.parametrize(("config", "message"), [
    ({"max_delta": 0.0}, "max_delta must be a finite number > 0"),
    ({"max_delta": float("inf")}, "max_delta must be a finite number > 0"),
    ({"max_delta": (0.1, float("nan"))}, "max_delta must be a finite number > 0"),
    ({"lowpass": float("nan")}, "lowpass must be in"),
    ({"lowpass": 1.5}, "lowpass must be in"),
    ({"obs_low": (0.0,)}, "go together"),
])
def test_bad_config_is_refused(config, message):
    with pytest.raises(ConfigError, match=message):
        layer(**config)


def test_per_component_settings_must_fit_the_robot():
    with pytest.raises(ConfigError, match="takes 2 actions"):
        layer(max_delta=(0.1, 0.2, 0.3))


@settings(derandomize=True, max_examples=200)
@given(st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=2, max_size=2),
                min_size=1, max_size=30),
       st.floats(0.01, 3.0), st.one_of(st.none(), st.floats(0.05, 1.0)))
def test_whatever_the_policy_says_commands_stay_in_limits_and_rate(actions, max_delta, lowpass):
    s = layer(max_delta=max_delta, lowpass=lowpass)
    previous = s.safe_action
    for action in actions:
        command = s.filter(action)
        assert np.all(np.isfinite(command))
        assert np.all(command >= s.action_low) and np.all(command <= s.action_high)
        assert np.all(np.abs(command - previous) <= np.float32(max_delta) * (1 + 1e-6))
        previous = command
