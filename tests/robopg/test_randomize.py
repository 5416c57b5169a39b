"""Domain randomization from the command line: ranges checked by name, sampled by every env of the run, kept by
resume and export, and usable by eval."""

import csv
import tomllib

import numpy as np
import pytest
from conftest import invoke

from robopg import checkpoint
from robopg.errors import ConfigError
from robopg.export import export_policy
from robopg.registry import config_from_dict, make_config
from robopg.runtime.onnx_policy import OnnxPolicy
from robopg.training.a3c.worker import GradientWorker, WorkerSpec
from robopg.training.run import make_trainer, train
from sim.randomization import envelope, format_dynamics, parse_dynamics, parse_randomize

ENV = "robopg/CartPoleSwingUp-v0"
RANGES = ("mass_scale=0.7:1.5", "action_latency_steps=0:3", "actuator_gain=0.8")
SMALL = {"total_steps": 300, "learning_starts": 100, "batch_size": 32, "buffer_size": 1000, "eval_every": 300,
         "eval_episodes": 1, "actor_hidden": [16], "critic_hidden": [16]}


def test_assignments_parse_into_ranges_and_fixed_values_and_back():
    spec = parse_randomize(RANGES)
    assert spec == {"mass_scale": (0.7, 1.5), "action_latency_steps": (0.0, 3.0), "actuator_gain": 0.8}
    assert format_dynamics(parse_dynamics(spec)) == ("mass_scale=0.7:1.5", "actuator_gain=0.8",
                                                     "action_latency_steps=0:3")
    # A range of one value (identify's exact latency, a zero noise estimate) reads as that value.
    assert format_dynamics(parse_dynamics({"action_latency_steps": (3, 3), "sensor_noise_std": (0, 0)})) == (
        "sensor_noise_std=0", "action_latency_steps=3")


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


@pytest.mark.parametrize("algo", ["ddpg", "a2c", "a3c"])
def test_a_randomized_latency_without_history_warns_and_with_history_does_not(algo):
    warning = ("randomize draws action_latency_steps but history is 0: a policy of the observation alone cannot "
               "tell which latency it is under; history = 4 lets it (docs/transfer.md)")
    assert warning in make_config(algo, {"randomize": list(RANGES)}).config_warnings()
    assert warning not in make_config(algo, {"randomize": list(RANGES), "history": 2}).config_warnings()
    assert warning not in make_config(algo, {"randomize": ["action_latency_steps=2"]}).config_warnings()


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


def test_a_nominal_run_resumed_with_ranges_draws_from_them_from_its_checkpoint_on(tmp_path):
    run = tmp_path / "run"
    train(ENV, make_config("ddpg", SMALL), run, show_progress=False)
    nominal_best = read_rows(run / "eval.csv")[-1]
    written = (run / "config.toml").read_text()
    refused = invoke("train-sim", "--resume", str(run), "--randomize", "mass_scale=2:1", "--steps", "600")
    assert refused.returncode == 2 and "mass_scale'] range has low > high" in refused.stderr
    assert (run / "config.toml").read_text() == written  # the run untouched
    result = invoke("train-sim", "--resume", str(run), *[f"--randomize={r}" for r in RANGES], "--init-range", "0.5",
                    "--steps", "600", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "history = 4 lets it" in result.stderr  # the continued config's warnings, as a new run's
    written = tomllib.loads((run / "config.toml").read_text())
    assert written["randomize"] == list(RANGES) and written["init_range"] == 0.5 and written["total_steps"] == 600
    rows = read_rows(run / "dynamics.csv")
    assert rows and all(int(row["step"]) > 300 for row in rows)  # drawn only after the checkpoint
    assert all(0.7 <= float(row["min"]) <= float(row["max"]) <= 1.5 for row in rows
               if row["parameter"] == "mass_scale")
    # best.pt is the best of the evaluations on the new ranges: here the one at step 600
    assert [row["step"] for row in read_rows(run / "eval.csv")] == [nominal_best["step"], "600"]
    assert int(checkpoint.load(run / checkpoint.BEST_FILE)["step"]) == 600
    trainer = make_trainer(ENV, config_from_dict(checkpoint.load(run / checkpoint.RESUME_FILE)["config"]),
                           tmp_path / "other", show_progress=False)
    assert trainer.env.unwrapped._dynamics_dist == parse_dynamics(parse_randomize(RANGES))


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


@pytest.mark.parametrize("algo, settings", [
    ("ddpg", SMALL),
    ("a2c", {"total_steps": 600, "num_envs": 2, "rollout_steps": 50, "eval_every": 600, "eval_episodes": 1,
             "actor_hidden": [16], "critic_hidden": [16], "log_every": 200}),
    ("reinforce", {"total_steps": 600, "episodes_per_update": 2, "eval_every": 600, "eval_episodes": 1,
                   "actor_hidden": [16], "critic_hidden": [16], "log_every": 200}),
])
def test_the_run_logs_the_spread_of_the_dynamics_its_episodes_drew(tmp_path, algo, settings):
    config = make_config(algo, {**settings, "log_every": 100, "randomize": list(RANGES)})
    train(ENV, config, tmp_path / "run", show_progress=False)
    rows = read_rows(tmp_path / "run" / "dynamics.csv")
    assert {row["parameter"] for row in rows} == {"mass_scale", "action_latency_steps"}  # the fixed gain is not drawn
    for row in rows:
        low, mean, high = float(row["min"]), float(row["mean"]), float(row["max"])
        assert low <= mean <= high and int(row["episodes"]) >= 1
        assert (low >= 0.7 and high <= 1.5) if row["parameter"] == "mass_scale" else (low >= 0 and high <= 3)
    started = sum(int(row["episodes"]) for row in rows if row["parameter"] == "mass_scale")
    finished = len(read_rows(tmp_path / "run" / "episodes.csv"))
    assert finished <= started <= finished + config.num_envs if algo != "ddpg" else started in (finished,
                                                                                                finished + 1)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_run_without_ranges_writes_no_dynamics_log(tmp_path):
    train(ENV, make_config("ddpg", {**SMALL, "randomize": ["actuator_gain=0.8"]}), tmp_path / "run",
          show_progress=False)
    assert not (tmp_path / "run" / "dynamics.csv").exists()


def test_the_envelope_of_several_randomizations_holds_each():
    assert envelope([("mass_scale=0.7:1",), ("mass_scale=1:1.5", "actuator_gain=0.8")]) == (
        "mass_scale=0.7:1.5", "actuator_gain=0.8:1")  # a worker without the gain drives the nominal one
    assert envelope([("action_latency_steps=2",), ("action_latency_steps=2",)]) == ("action_latency_steps=2",)


def test_each_a3c_worker_draws_from_its_own_ranges(tmp_path):
    own = ["mass_scale=0.5:0.6,actuator_gain=0.9:1", ""]
    config = make_config("a3c", {"workers": 2, "rollout_steps": 100, "num_envs": 2, "actor_hidden": [8],
                                 "critic_hidden": [8], "randomize": ["mass_scale=1.4:1.5"], "worker_randomize": own})
    trainer = make_trainer(ENV, config, tmp_path / "run", show_progress=False)
    space = (trainer.obs_dim, trainer.action_low, trainer.action_high)
    draws = []
    for index in range(2):
        worker = GradientWorker(ENV, config, WorkerSpec.for_worker(config, index), *space)
        draws.append(worker.gradients()[1].draws)
        worker.close()
    assert draws[0] and all(0.5 <= d["mass_scale"] <= 0.6 and 0.9 <= d["actuator_gain"] <= 1 for d in draws[0])
    assert draws[1] and all(1.4 <= d["mass_scale"] <= 1.5 and set(d) == {"mass_scale"} for d in draws[1])
    assert config.trained_ranges() == ("mass_scale=0.5:1.5", "actuator_gain=0.9:1")
    trainer.close()


@pytest.mark.parametrize("value, message", [
    (["mass_scale=2:1", ""], "worker_randomize of worker 0: dynamics['mass_scale'] range has low > high"),
    (["mass_scale=1:2"], "worker_randomize must be empty or give one value per worker (2), got 1"),
    (["", "gain=1:2"], "worker_randomize of worker 1: unknown dynamics key 'gain'"),
])
def test_a_bad_worker_range_is_refused_by_name(value, message):
    with pytest.raises(ConfigError) as refused:
        make_config("a3c", {"workers": 2, "worker_randomize": value})
    assert message in str(refused.value)
