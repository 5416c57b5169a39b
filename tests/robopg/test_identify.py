"""System identification: a logged trajectory replays exactly, and the fit recovers known dynamics from it."""

import tomllib

import gymnasium as gym
import numpy as np
import pytest
from typer.testing import CliRunner

import sim  # noqa: F401  (registers the tasks)
from robopg.cli import app
from robopg.errors import ConfigError
from robopg.identify import CHI2_1_MEDIAN, Identification, IdentifyConfig, identify, sensor_noise

ENV = "robopg/CartPoleSwingUp-v0"
FAST = IdentifyConfig(horizon=5, stride=5, max_windows=40, max_latency=3, generations=8, screen_generations=3)


def robot_log(dynamics: dict, episodes: int = 2, steps: int = 100, env_id: str = ENV) -> list:
    """Episodes of smoothed random commands on a simulated robot with ``dynamics``: (observations, commands)."""
    env = gym.make(env_id, dynamics=dynamics).unwrapped
    rng = np.random.default_rng(1)
    log = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        observations, commands, command = [obs], [], np.zeros(env.action_space.shape)
        for _ in range(steps):
            command = np.clip(0.8 * command + rng.normal(0, 0.4, command.shape) * env.action_space.high,
                              env.action_space.low, env.action_space.high).astype(np.float32)
            observations.append(env.step(command)[0])
            commands.append(command)
        log.append((np.array(observations, np.float64), np.array(commands, np.float64)))
    env.close()
    return log


def save_log(path, log) -> None:
    np.savez(path, **{f"{kind}_{i}": arrays[j] for i, arrays in enumerate(log)
                      for j, kind in enumerate(("obs", "command"))})


@pytest.mark.parametrize("env_id", [ENV, "robopg/Reacher2D-v0"])
def test_a_logged_window_replays_exactly_from_its_observation_and_the_commands_in_flight(env_id):
    (observations, commands), = robot_log({"action_latency_steps": 2, "mass_scale": 1.3}, episodes=1, steps=30,
                                          env_id=env_id)
    env = gym.make(env_id, dynamics={"action_latency_steps": 2, "mass_scale": 1.3}).unwrapped
    env.reset(seed=99)  # another initial state: set_state replaces it
    env.set_state(observations[10], commands[8:10])
    replayed = [env.step(c.astype(np.float32))[0] for c in commands[10:20]]
    np.testing.assert_allclose(replayed, observations[11:21], atol=1e-5)


def test_identify_recovers_a_gain_and_a_latency_from_a_log():
    result = identify(ENV, robot_log({"actuator_gain": 0.7, "action_latency_steps": 2}),
                      ["actuator_gain", "action_latency_steps"], FAST)
    assert result.estimates["action_latency_steps"] == 2
    assert result.estimates["actuator_gain"] == pytest.approx(0.7, rel=0.03)
    assert result.cost < 0.01 * result.nominal_cost
    assert min(result.latency_costs, key=result.latency_costs.get) == 2
    low, high = result.randomization(FAST)["actuator_gain"]
    assert low < result.estimates["actuator_gain"] < high


def test_identify_recovers_a_mass_from_a_log():
    result = identify(ENV, robot_log({"mass_scale": 1.5}), ["mass_scale"], FAST)
    assert result.estimates["mass_scale"] == pytest.approx(1.5, rel=0.05)
    assert result.standard_errors["mass_scale"] > 0


@pytest.mark.parametrize("env_id, gap", [(ENV, {"action_latency_steps": 2}), ("robopg/Reacher2D-v0", {})])
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_identify_estimates_the_sensor_noise_beside_the_dynamics(env_id, gap, noise):
    log = robot_log({**gap, "sensor_noise_std": noise}, episodes=2, steps=150, env_id=env_id)
    result = identify(env_id, log, [*gap, "sensor_noise_std"], FAST)
    assert result.estimates["sensor_noise_std"] == pytest.approx(noise, abs=0.1 * noise + 1e-3)
    assert gap.get("action_latency_steps", 0) == result.estimates.get("action_latency_steps", 0)
    if noise:
        assert 0 < result.standard_errors["sensor_noise_std"] < 0.2 * noise


def test_the_noise_estimate_is_the_median_ratio_over_chi2_median():
    # Ratios of σ² χ²(1) with σ = 0.1: every ratio at 0.01 × the χ²(1) median gives σ exactly, with no spread.
    ratios = np.full((4, 3), 0.01 * CHI2_1_MEDIAN)
    ratios[0, 0] = 100.0  # one dimension of one window the model got wrong does not move a median
    estimate, error = sensor_noise(ratios, seed=0)
    assert estimate == pytest.approx(0.1)
    assert error == pytest.approx(0.0, abs=1e-12)


def test_the_command_line_writes_estimates_and_ranges(tmp_path):
    save_log(tmp_path / "robot.npz", robot_log({"actuator_gain": 0.7}))
    (tmp_path / "fast.toml").write_text("horizon = 5\nmax_windows = 40\ngenerations = 8\nscreen_generations = 3\n")
    out = tmp_path / "identified.toml"
    result = CliRunner().invoke(app, ["identify", "--log", str(tmp_path / "robot.npz"), "--env", ENV, "--params",
                                      "actuator_gain", "--config", str(tmp_path / "fast.toml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "actuator_gain" in result.output and "with the identified one" in result.output
    written = tomllib.loads(out.read_text())
    assert written["estimates"]["actuator_gain"] == pytest.approx(0.7, rel=0.03)
    low, high = written["dynamics"]["actuator_gain"]
    assert low < 0.7 < high
    assert written["randomize"] == [f"actuator_gain={low:g}:{high:g}"]
    assert f"train-sim --resume RUN --steps N --randomize actuator_gain={low:g}:{high:g}" in result.output


@pytest.mark.parametrize("params, message", [
    ("mass", "unknown dynamics parameter 'mass'"),
    ("mass_scale,mass_scale", "named twice"),
])
def test_bad_parameters_are_refused_by_name(tmp_path, params, message):
    save_log(tmp_path / "robot.npz", robot_log({}, episodes=1, steps=20))
    result = CliRunner().invoke(app, ["identify", "--log", str(tmp_path / "robot.npz"), "--env", ENV,
                                      "--params", params, "--out", str(tmp_path / "x.toml")])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_file_that_is_not_a_log_and_a_log_of_another_task_are_refused(tmp_path):
    (tmp_path / "notes.npz").write_text("not a log")
    result = CliRunner().invoke(app, ["identify", "--log", str(tmp_path / "notes.npz"), "--env", ENV,
                                      "--params", "mass_scale"])
    assert result.exit_code == 2 and "is not a robot trajectory log" in result.output
    save_log(tmp_path / "reacher.npz", robot_log({}, episodes=1, steps=20, env_id="robopg/Reacher2D-v0"))
    result = CliRunner().invoke(app, ["identify", "--log", str(tmp_path / "reacher.npz"), "--env", ENV,
                                      "--params", "mass_scale"])
    assert result.exit_code == 2 and "cannot replay this log" in result.output


def test_identify_settings_are_checked():
    with pytest.raises(ConfigError, match="horizon"):
        IdentifyConfig(horizon=0)


def test_a_range_around_an_uncertain_estimate_stays_a_valid_dynamics():
    # mass 0.5 ± 1.0: three standard errors below would be −2.5; the range stops at the smallest scale searched.
    found = Identification({"mass_scale": 0.5, "action_latency_steps": 2.0},
                           {"mass_scale": 1.0, "action_latency_steps": 0.0}, 0.1, 1.0, {}, {})
    assert found.randomization(IdentifyConfig()) == {"mass_scale": (0.05, 3.5), "action_latency_steps": (2.0, 2.0)}
    # Noise 0.01 ± 0.02: the range stops at no noise, not at the smallest scale.
    noisy = Identification({"sensor_noise_std": 0.01}, {"sensor_noise_std": 0.02}, 0.1, 1.0, {}, {})
    assert noisy.randomization(IdentifyConfig()) == {"sensor_noise_std": (0.0, 0.07)}
