"""robopg deploy against the virtual robot: checks before motion, the loop, ESTOP on every way out, no torch."""

import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import modules_loaded_by_cli

from robopg.export import export_policy
from robopg.registry import make_config
from robopg.training.run import train
from sim.virtual_robot import CommandLog

ENV = "robopg/CartPoleSwingUp-v0"
ROBOPG = [sys.executable, "-m", "robopg.cli"]


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    """A small swing-up policy and a Pendulum one (the wrong sizes for the cart-pole robot)."""
    root = tmp_path_factory.mktemp("policies")
    small = {"total_steps": 500, "learning_starts": 200, "batch_size": 32, "actor_hidden": [16], "critic_hidden": [16],
             "eval_every": 500, "eval_episodes": 1}
    for env, name in ((ENV, "cartpole"), ("Pendulum-v1", "pendulum")):
        train(env, make_config("ddpg", small), root / name, show_progress=False)
        export_policy(root / name, root / f"{name}.onnx")
    return root


@pytest.fixture
def robot(tmp_path):
    """A virtual robot process; yields (port, log path); stopped at the end."""
    procs = []

    def start(*args):
        log = tmp_path / f"robot{len(procs)}.csv"
        proc = subprocess.Popen([*ROBOPG, "robot-sim", "--env", ENV, "--log", str(log), *args],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc.stdout.readline().strip(), log

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def deploy(*args, **kwargs):
    return subprocess.run([*ROBOPG, "deploy", *args], capture_output=True, text=True, timeout=120, **kwargs)


def test_deploy_runs_episodes_within_limits_and_reports_timing(policies, robot, tmp_path):
    port, log = robot()
    result = deploy("--policy", str(policies / "cartpole.onnx"), "--port", port, "--episodes", "2", "--max-delta",
                    "2.0", "--rate", "200", "--log", str(tmp_path / "traj.npz"), "--ort-threads", "2",
                    "--ort-spinning")
    assert result.returncode == 0, result.stderr
    assert "episode 2: return" in result.stdout and "deadline misses" in result.stdout
    traj = np.load(tmp_path / "traj.npz")
    assert {"obs_0", "command_1"} <= set(traj.files)
    time.sleep(0.2)
    commands = [c for c in CommandLog.read(log) if c.cause == "action"]
    applied = np.array([c.applied[0] for c in commands])
    assert len(commands) == len(traj["command_0"]) + len(traj["command_1"])
    assert np.all(np.abs(applied) <= 10.0)
    # The rate limit holds within each episode (every episode starts from the safe action after RESET).
    for i in range(2):
        steps = np.concatenate([[0.0], traj[f"command_{i}"][:, 0]])
        assert np.max(np.abs(np.diff(steps))) <= 2.0 + 1e-5


def test_a_robot_that_does_not_match_the_policy_is_refused_before_anything_moves(policies, robot):
    port, log = robot()
    result = deploy("--policy", str(policies / "pendulum.onnx"), "--port", port)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "the policy takes 3 observations" in result.stderr and "nothing was sent" in result.stderr
    time.sleep(0.2)
    assert [c.cause for c in CommandLog.read(log)] == ["start"]


def test_ctrl_c_sends_estop_leaves_the_robot_safe_and_keeps_the_completed_episodes(policies, robot, tmp_path):
    port, log = robot()
    trajectory = tmp_path / "traj.npz"
    proc = subprocess.Popen([*ROBOPG, "deploy", "--policy", str(policies / "cartpole.onnx"), "--port", port,
                             "--episodes", "1000", "--rate", "50", "--steps", "40", "--log", str(trajectory)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in stderr
    time.sleep(0.2)
    causes = [c.cause for c in CommandLog.read(log)]
    assert "action" in causes and causes[-1] == "estop"
    lengths = [int(line.split(" over ")[1].split()[0]) for line in stdout.splitlines() if line.startswith("episode ")]
    saved = np.load(trajectory)
    saved_episodes = sum(f.startswith("command_") for f in saved.files)  # one more if Ctrl-C fell before its line
    assert len(lengths) >= 2 and saved_episodes in (len(lengths), len(lengths) + 1)
    assert [len(saved[f"command_{i}"]) for i in range(len(lengths))] == lengths  # every completed episode, whole


def test_a_latched_robot_needs_clear(policies, robot):
    from firmware_bridge.link import RobotLink

    port, _ = robot()
    with RobotLink.open(port) as link:
        link.hello()
        link.estop()
    result = deploy("--policy", str(policies / "cartpole.onnx"), "--port", port)
    assert result.returncode == 2 and "latched" in result.stderr and "--clear" in result.stderr
    result = deploy("--policy", str(policies / "cartpole.onnx"), "--port", port, "--clear", "--busy-poll", "--steps",
                    "10")
    assert result.returncode == 0, result.stderr


def test_a_silent_or_missing_robot_is_one_clear_error(policies, tmp_path):
    result = deploy("--policy", str(policies / "cartpole.onnx"), "--port", str(tmp_path / "no-such-port"))
    assert result.returncode == 2 and result.stderr.startswith("error: robot link: cannot open")


def test_deploy_imports_neither_torch_nor_pybullet(policies, robot):
    port, _ = robot()
    _, loaded = modules_loaded_by_cli("deploy", "--policy", str(policies / "cartpole.onnx"), "--port", port, "--steps",
                                      "10")
    assert loaded == []


def test_deploy_runs_at_the_policys_control_rate_unless_told_otherwise(policies, robot):
    port, _ = robot()
    paced = deploy("--policy", str(policies / "cartpole.onnx"), "--port", port, "--steps", "50")
    assert paced.returncode == 0, paced.stderr
    assert "pacing: 50 Hz (the policy's control rate" in paced.stdout
    assert 45 < achieved_rate(paced.stdout) < 52  # 50 Hz with the scheduler's jitter
    unpaced = deploy("--policy", str(policies / "cartpole.onnx"), "--port", port, "--steps", "50", "--rate", "0")
    assert unpaced.returncode == 0, unpaced.stderr
    assert "pacing: none: as fast as the robot answers" in unpaced.stdout
    assert achieved_rate(unpaced.stdout) > 100


def achieved_rate(output: str) -> float:
    return float(re.search(r"timing: \d+ steps at ([\d.]+) Hz", output).group(1))
