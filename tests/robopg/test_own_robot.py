"""The Furuta example's walk-through, command by command as its README writes them, at a small budget: a robot
declared in a robot.toml goes through train-sim, export, eval, robot-sim with a gap, deploy and finetune."""

import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from robopg.runtime.deploy import RobotError, task_functions
from robopg.runtime.onnx_policy import PolicyMetadata
from sim.spec import task_spec
from sim.virtual_robot import CommandLog

ROOT = Path(__file__).parents[2]
README = ROOT / "examples" / "furuta" / "README.md"
ROBOPG = [sys.executable, "-m", "robopg.cli"]
# The README's budgets, and the small ones the test runs instead.
SMALL = {
    "--steps 15000": "--steps 300 --set learning_starts=100 --set batch_size=32 --set eval_every=300 --set "
                     "eval_episodes=1 --set checkpoint_every=300 --set actor_hidden=[16] --set critic_hidden=[16]",
    "--episodes 10": "--episodes 2",
    "--episodes 30": "--episodes 12",
}
FINETUNE_SETTINGS = ("warmup_episodes = 2\neval_every = 2\neval_episodes = 2\nbaseline_episodes = 2\n"
                     "rehearsal_episodes = 2\nidentify_params = ['actuator_gain']\ntwin_training_steps = 300\n"
                     "twin_eval_every = 150\ntwin_eval_episodes = 1\n")


def readme_commands(runs: Path) -> dict[str, list[str]]:
    """The README's robopg commands by name, with the small budgets and the runs/ folder moved to ``runs``."""
    block = re.search(r"^```bash\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL).group(1)
    commands = {}
    for line in block.splitlines():
        for big, small in SMALL.items():
            line = line.replace(big, small)
        words = shlex.split(line.replace("runs/", f"{runs}/"))
        assert words[0] == "robopg", line
        commands[words[1]] = words[1:]
    return commands


def run(args: list[str], port: str = "") -> str:
    ran = subprocess.run([*ROBOPG, *(port if a == "PORT" else a for a in args)], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert ran.returncode == 0, f"{args[0]}: {ran.stderr}"
    assert "warning" not in ran.stderr, ran.stderr
    return ran.stdout


def test_the_readmes_commands_take_the_declared_robot_from_simulation_to_the_robot(tmp_path):
    commands = readme_commands(tmp_path)
    assert list(commands) == ["train-sim", "export", "eval", "robot-sim", "deploy", "finetune"]
    run(commands["train-sim"])
    exported = run(commands["export"])
    assert "policy for examples/furuta/robot.toml, 6 observations -> 1 actions in [-0.1] .. [0.1]" in exported
    assert run(commands["eval"]).startswith("examples/furuta/robot.toml: return ")
    robot = subprocess.Popen([*ROBOPG, *commands["robot-sim"]], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        port = robot.stdout.readline().strip()
        assert "virtual robot: examples/furuta/robot.toml" in robot.stdout.readline()
        deployed = run(commands["deploy"], port)
        assert "robot virtual FurutaBalance-v0: ddpg policy for examples/furuta/robot.toml" in deployed
        assert "pacing: 50 Hz" in deployed and re.search(r"return -?[\d.]+ ± [\d.]+ over 2 episodes", deployed)
        (tmp_path / "ft.toml").write_text(FINETUNE_SETTINGS)
        tuned = run([*commands["finetune"], "--config", str(tmp_path / "ft.toml")], port)
        assert "baseline episode   2" in tuned and "episode  12" in tuned
    finally:
        robot.terminate()
        robot.wait(timeout=10)
    applied = np.array([c.applied[0] for c in CommandLog.read(tmp_path / "robot.csv")])
    assert len(applied) > 0 and np.all(np.abs(applied) <= 0.1 + 1e-7)  # the declared torque limit, on the robot
    with np.load(tmp_path / "traj.npz") as trajectory:
        assert trajectory["obs_0"].shape[1] == 6


def test_a_task_given_in_place_of_the_policys_own_must_name_the_same_observations_and_actions():
    task = str(ROOT / "examples" / "furuta" / "robot.toml")
    spec = task_spec(task)
    policy = PolicyMetadata(obs_dim=6, action_dim=1, obs_names=spec.obs_names, action_names=spec.action_names,
                            action_low=(-0.1,), action_high=(0.1,), control_hz=50.0, env_id="elsewhere/robot.toml",
                            algo="ddpg", robopg_version="0", checkpoint_sha256="", opset=18)
    assert task_functions(task, policy=policy).max_steps == 250
    renamed = replace(policy, action_names=("motor_current",))
    with pytest.raises(RobotError, match=r"names the actions arm_torque; the policy was exported with motor_current; "
                                         r"nothing was sent$"):
        task_functions(task, policy=renamed)
