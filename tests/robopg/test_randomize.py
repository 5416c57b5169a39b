"""Domain randomization from the command line: ranges checked by name, sampled by every env of the run, kept by
resume and export, and usable by eval."""

import tomllib

import numpy as np
import pytest
from conftest import invoke

from robopg.export import export_policy
from robopg.registry import make_config
from robopg.runtime.onnx_policy import OnnxPolicy
from robopg.training.run import make_trainer
from sim.randomization import format_dynamics, parse_dynamics, parse_randomize

ENV = "robopg/CartPoleSwingUp-v0"
RANGES = ("mass_scale=0.7:1.5", "action_latency_steps=0:3", "actuator_gain=0.8")
SMALL = {"total_steps": 300, "learning_starts": 100, "batch_size": 32, "buffer_size": 1000, "eval_every": 300,
         "eval_episodes": 1, "actor_hidden": [16], "critic_hidden": [16]}


def test_assignments_parse_into_ranges_and_fixed_values_and_back():
    spec = parse_randomize(RANGES)
    assert spec == {"mass_scale": (0.7, 1.5), "action_latency_steps": (0.0, 3.0), "actuator_gain": 0.8}
    assert format_dynamics(parse_dynamics(spec)) == ("mass_scale=0.7:1.5", "actuator_gain=0.8",
                                                     "action_latency_steps=0:3")


@pytest.mark.parametrize("value, message", [
    ("mass_scale=2:1", "mass_scale'] range has low > high"),
    ("action_latency_steps=0.5:2", "action_latency_steps'] must be an integer, got 0.5"),
    ("mass=1:2", "unknown dynamics key 'mass'"),
    ("mass_scale", "expected KEY=LOW:HIGH or KEY=VALUE"),
    ("mass_scale=heavy", "'heavy' is not a number"),
    ("mass_scale=0:2", "mass_scale'] must be > 0"),
])
def test_a_bad_range_is_one_line_that_names_it(tmp_path, value, message):
    result = invoke("train-sim", "--env", ENV, "--randomize", value, "--steps", "100", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_randomizing_an_env_that_has_no_dynamics_is_refused():
    result = invoke("train-sim", "--env", "Pendulum-v1", "--randomize", "mass_scale=1:2", "--steps", "100")
    assert result.returncode == 2 and "Pendulum-v1" in result.stderr and "dynamics" in result.stderr


def test_every_env_of_a_run_samples_within_the_ranges(tmp_path):
    config = make_config("ddpg", {**SMALL, "randomize": list(RANGES), "init_range": 0.5})
    trainer = make_trainer(ENV, config, tmp_path / "run", show_progress=False)
    drawn = []
    for env in (trainer.env, trainer.eval_env):
        for seed in range(20):
            env.reset(seed=seed)
            drawn.append(env.unwrapped.dynamics)
    assert all(0.7 <= d.mass_scale <= 1.5 and d.actuator_gain == 0.8 for d in drawn)
    assert {d.action_latency_steps for d in drawn} == {0, 1, 2, 3}
    assert len({d.mass_scale for d in drawn}) == 20  # a draw per seed, the same seed the same draw


def test_the_run_folder_resume_and_export_keep_the_randomization(tmp_path):
    run = tmp_path / "run"
    result = invoke("train-sim", "--env", ENV, *[f"--randomize={r}" for r in RANGES], "--init-range", "0.5",
                    *[f"--set={k}={v}" for k, v in SMALL.items() if k != "total_steps"], "--steps", "300",
                    "--out", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    written = tomllib.loads((run / "config.toml").read_text())
    assert written["randomize"] == list(RANGES) and written["init_range"] == 0.5
    result = invoke("train-sim", "--resume", str(run), "--steps", "400", "--quiet")
    assert result.returncode == 0, result.stderr
    resumed = make_trainer(ENV, make_config("ddpg", {**SMALL, "randomize": list(RANGES)}), tmp_path / "other",
                           show_progress=False)
    assert resumed.env.unwrapped._dynamics_dist == parse_dynamics(parse_randomize(RANGES))
    export_policy(run, tmp_path / "policy.onnx")
    assert OnnxPolicy(tmp_path / "policy.onnx").metadata.randomize == RANGES


def test_eval_on_a_fixed_gap_and_over_ranges(tmp_path):
    run = tmp_path / "run"
    assert invoke("train-sim", "--env", ENV, *[f"--set={k}={v}" for k, v in SMALL.items() if k != "total_steps"],
                  "--steps", "300", "--out", str(run), "--quiet").returncode == 0
    export_policy(run, tmp_path / "policy.onnx")
    policy = str(tmp_path / "policy.onnx")
    nominal = invoke("eval", "--policy", policy, "--episodes", "2")
    stalled = invoke("eval", "--policy", policy, "--episodes", "2", "--gap", "actuator_gain=0")
    ranged = invoke("eval", "--policy", policy, "--episodes", "2", "--randomize", "mass_scale=0.5:2")
    assert {nominal.returncode, stalled.returncode, ranged.returncode} == {0}
    assert "with actuator_gain=0" in stalled.stdout and "with mass_scale=0.5:2" in ranged.stdout
    returns = [float(r.stdout.split("return ")[1].split(" ±")[0]) for r in (nominal, stalled, ranged)]
    assert not np.isclose(returns[0], returns[1])  # a motor that does nothing changes the return
    refused = invoke("eval", "--policy", policy, "--gap", "actuator_gain=0.5:1")
    assert refused.returncode == 2 and "--randomize" in refused.stderr
