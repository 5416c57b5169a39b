"""The command line: one clear error line for bad input, and recovery after kill -9."""

import os
import signal
import subprocess
import sys
import time

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
    result = run("train-sim", "--resume", str(run_dir), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "trained 3000 steps" in result.stdout
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
