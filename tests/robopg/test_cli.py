"""The command line: one clear error line for bad input, and recovery after kill -9."""

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from conftest import invoke

ROBOPG = [sys.executable, "-m", "robopg.cli"]


def run(*args, **kwargs):
    return subprocess.run([*ROBOPG, *args], capture_output=True, text=True, timeout=120, **kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "NoSuchEnv-v0"], "unknown environment"),
        (["--env", "Pendulum-v1", "--algo", "ppo"], "unknown algorithm 'ppo'"),
        (["--env", "CartPole-v1"], "Discrete action space"),
        (["--env", "Pendulum-v1", "--steps", "0"], "total_steps must be an integer >= 1"),
        (["--env", "Pendulum-v1", "--config", "/nonexistent.toml"], "cannot read config file"),
        (["--env", "Pendulum-v1", "--out", "/proc/robopg-run"], "cannot write to output folder"),
        (["--resume", "/nonexistent-run"], "no run folder"),
        (["--resume", "/nonexistent-run", "--set", "gamma=0.9"], "a resumed run cannot change gamma"),
        (["--resume", "/nonexistent-run", "--seed", "3"], "of the run's settings only --steps"),
        ([], "--env is required"),
    ],
)
def test_bad_input_gives_one_error_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train-sim", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error: "), result.stderr
    assert not list(tmp_path.iterdir()), "bad input must not leave a run folder behind"


def test_kill_9_then_resume_loses_nothing(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("learning_starts = 200\nbatch_size = 32\nactor_hidden = [16]\ncritic_hidden = [16]\n"
                      "eval_every = 1000\neval_episodes = 1\ncheckpoint_every = 200\nlog_every = 200\n")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([*ROBOPG, "train-sim", "--env", "Pendulum-v1", "--steps", "3000", "--config",
                             str(config), "--out", str(run_dir), "--quiet"])
    deadline = time.monotonic() + 90
    while not (run_dir / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (run_dir / "resume.pt").exists()
    result = run("train-sim", "--resume", str(run_dir), "--set", "eval_episodes=2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "trained 3000 steps" in result.stdout and "over 2 episodes" in result.stdout
    steps = [int(line.split(",")[0]) for line in (run_dir / "episodes.csv").read_text().splitlines()[1:]]
    assert steps == list(range(200, 3001, 200))  # every episode once, none lost, none twice


SMOKE = {
    "ddpg": "learning_starts = 100\nbatch_size = 16\nactor_hidden = [8]\ncritic_hidden = [8]\n",
    "td3": "learning_starts = 100\nbatch_size = 16\nactor_hidden = [8]\ncritic_hidden = [8]\n",
    "dpg": "learning_starts = 100\nbatch_size = 16\nactor_hidden = [8]\nvalue_hidden = [8]\n",
    "reinforce": "episodes_per_update = 2\nnum_envs = 2\n",
    "ac": "rollout_steps = 8\nnum_envs = 2\n",
    "a2c": "rollout_steps = 8\nnum_envs = 2\nadvantage = \"nstep\"\n",
    "a2c_sil": "rollout_steps = 8\nnum_envs = 2\nsil_batch_size = 8\n",
    "offpac": "episodes_per_update = 2\nnum_envs = 2\nreplay_batch = 2\n",
    "a3c": "rollout_steps = 8\nworkers = 2\n",
}


@pytest.mark.parametrize("algo", sorted(SMOKE))
def test_every_algorithm_through_the_cli(tmp_path, algo):
    config = tmp_path / "c.toml"
    config.write_text(SMOKE[algo] + "eval_every = 400\neval_episodes = 1\nlog_every = 200\ncheckpoint_every = 400\n")
    result = run("train-sim", "--env", "Pendulum-v1", "--algo", algo, "--steps", "400", "--config", str(config),
                 "--out", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "trained 4" in result.stdout and (tmp_path / "run" / "checkpoint.pt").exists()


def test_config_lists_an_algorithms_settings_and_refuses_an_unknown_name():
    result = invoke("config", "cautious_a2c")
    assert result.returncode == 0 and "episodes = 50" in result.stdout and "max_kl = 0.02" in result.stdout
    result = invoke("config", "ppo")
    assert result.returncode == 2 and "cautious_ddpg" in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(("assignment", "toml"), [
    ("gamma=2", "gamma = 2"),
    ("batch_size=abc", 'batch_size = "abc"'),
    ("actor_hidden=[0]", "actor_hidden = [0]"),
    ("noise=pink", 'noise = "pink"'),
    ("no_such_field=1", "no_such_field = 1"),
])
def test_set_is_checked_as_the_config_file_is(assignment, toml, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(toml + "\n")
    by_flag = invoke("train-sim", "--env", "Pendulum-v1", "--set", assignment, "--out", str(tmp_path / "a"))
    by_file = invoke("train-sim", "--env", "Pendulum-v1", "--config", str(config), "--out", str(tmp_path / "b"))
    assert by_flag.returncode == by_file.returncode == 2
    assert by_flag.stderr == by_file.stderr and len(by_flag.stderr.splitlines()) == 1, by_flag.stderr


def test_set_without_a_value_is_one_line():
    result = invoke("train-sim", "--env", "Pendulum-v1", "--set", "batch_size")
    assert result.returncode == 2
    assert result.stderr == "error: --set takes KEY=VALUE (e.g. batch_size=64), got 'batch_size'\n"


def test_set_and_the_config_files_algo_reach_the_run(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('algo = "td3"\nlearning_starts = 0\nbatch_size = 4\n')
    result = invoke("train-sim", "--env", "Pendulum-v1", "--config", str(config), "--steps", "1", "--quiet",
                    "--set", "noise=ou", "--set", "actor_hidden=[8, 4]", "--set", "batch_size=2",
                    "--set", "eval_episodes=1", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    recorded = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert recorded["algo"] == "td3"  # the file's, not a default of the command line
    assert (recorded["noise"], recorded["actor_hidden"], recorded["batch_size"]) == ("ou", [8, 4], 2)
    clash = invoke("train-sim", "--env", "Pendulum-v1", "--config", str(config), "--algo", "ddpg")
    assert clash.returncode == 2 and clash.stderr == f"error: config file {config} is for algorithm 'td3', not 'ddpg'\n"


def test_a_run_that_would_silently_skip_something_warns_once_per_setting(tmp_path):
    result = invoke("train-sim", "--env", "Pendulum-v1", "--steps", "200", "--quiet", "--set", "eval_episodes=1",
                    "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: eval_every (5000) is longer than the run (total_steps 200): the only evaluation is at the end",
        "warning: checkpoint_every (5000) is longer than the run (total_steps 200): the only checkpoint is at the end",
        "warning: learning_starts (2000) is not below total_steps (200): the run takes random actions only and "
        "never learns",
    ]


def test_help_lists_choices_and_every_run_setting_with_its_type_range_and_default(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # no wrapping inside the table's cells
    train_help = invoke("train-sim", "-h")
    assert train_help.returncode == 0
    text = " ".join(train_help.stdout.split())
    assert "[ddpg|td3|dpg|reinforce|ac|a2c|a2c_sil|offpac|a3c]" in text and "[local|ray]" in text
    assert "total_steps (integer >= 1, at most 1000000000000, default 30000): environment steps to train for" in text
    assert "seed (integer in [0, 4294967295], default 0)" in text and "anneal_lr (true/false, default false)" in text
    assert "[lockstep|realtime]" in invoke("robot-sim", "--help").stdout
    assert "[cautious_a2c|cautious_ddpg]" in invoke("finetune", "--help").stdout
    assert invoke("-h").returncode == 0 and "train-sim" in invoke("-h").stdout


@pytest.mark.parametrize(("args", "message"), [
    (["eval", "--policy", "x.onnx", "--episodes", "0"],
     "error: Invalid value for '--episodes': Input should be greater than or equal to 1"),
    (["eval", "--policy", "README.md"],
     "error: README.md is not a policy: give an exported .onnx file, a run folder or a .pt checkpoint"),
    (["robot-sim", "--env", "robopg/CartPoleSwingUp-v0", "--mode", "fast"],
     "error: mode must be 'lockstep' or 'realtime', got 'fast'"),
    (["train-sim", "--env", "Pendulum-v1", "--backend", "mpi", "--algo", "a3c"],
     "error: backend must be 'local' or 'ray', got 'mpi'"),
    (["deploy", "--policy", "p.onnx"], "error: Missing option '--port'."),
    (["no-such-command"], "error: No such command 'no-such-command'."),
    (["train-sim", "--env", "PointToOrigin-v0", "--video-every", "100"],
     "error: cannot record a video of PointToOrigin-v0: cannot make environment"),
    (["plot", "README.md", "--out", "curves.txt"], "error: cannot write a picture to curves.txt: give a file ending"),
])
def test_usage_errors_are_one_line(args, message, monkeypatch):
    monkeypatch.chdir(Path(__file__).parents[2])  # README.md is there
    result = invoke(*args)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
