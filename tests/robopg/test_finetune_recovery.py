"""The reality-gap claim end to end, over serial links to virtual robots.

A swing-up policy trained in simulation (the committed fixture of tools/make_finetune_fixture.py) loses return
on a robot whose actuation lags 3 control steps; `robopg finetune` with its default session on that robot
recovers a stated share of the loss within 25 robot episodes; and the robot's own log shows that no command
left the limits or the rate limit. Before and after are measured on fresh robots with the same seed: the same
initial states.
"""

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from robopg.checkpoint import CHECKPOINT_FILE, RESUME_FILE
from robopg.envs import make_env
from robopg.evaluation import evaluate
from robopg.export import export_policy
from robopg.runtime.onnx_policy import OnnxPolicy
from sim.virtual_robot import CommandLog

FIXTURE = Path(__file__).parent / "fixtures" / "swingup_ddpg.pt"
FIXTURE_RESUME = FIXTURE.with_suffix(".resume.pt")  # the run's resume state: training on the twin continues it
ENV = "robopg/CartPoleSwingUp-v0"
ROBOPG = [sys.executable, "-m", "robopg.cli"]
GAP = ["--gap", "action_latency_steps=3"]
MAX_DELTA = 8.0
EPISODES = 20  # before and after
# The default session (baseline, training on the identified twin, the candidate's evaluations, cautious A2C on the
# robot) in 25 robot episodes, without the A2C rehearsal on the twin (test_finetune_rehearsal.py covers it) and
# without the run from scratch on the twin, which would train the fixture's whole run again (test_twin_training.py
# covers it).
FINETUNE_EPISODES = 25
SESSION = "rehearsal_episodes = 0\ntwin_scratch_runs = 0\n"
RECOVERED_SHARE = 0.25  # of the loss against the policy in simulation; measured: 51 % (173.9; 130.0 -> 152.4)


class VirtualRobot:
    def __init__(self, log: Path, seed: int) -> None:
        self.log = log
        self.proc = subprocess.Popen([*ROBOPG, "robot-sim", "--env", ENV, "--baud", "1000000", "--seed", str(seed),
                                      "--log", str(log), *GAP], stdout=subprocess.PIPE, text=True)
        self.port = self.proc.stdout.readline().strip()

    def __enter__(self) -> "VirtualRobot":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def robopg(*args: str) -> str:
    result = subprocess.run([*ROBOPG, *args], capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr
    return result.stdout


def deployed_return(policy: Path, log: Path) -> float:
    with VirtualRobot(log, seed=7000) as robot:
        out = robopg("deploy", "--policy", str(policy), "--port", robot.port, "--episodes", str(EPISODES),
                     "--max-delta", str(MAX_DELTA), "--rate", "0")
    return float(out.split("\nreturn ")[1].split(" ±")[0])


def assert_within_limits(log: Path) -> None:
    applied = [(c.cause, c.applied[0]) for c in CommandLog.read(log)]
    assert sum(cause == "action" for cause, _ in applied) > 0
    assert all(abs(value) <= 10.0 for _, value in applied)
    for (_, previous), (cause, value) in itertools.pairwise(applied):
        if cause == "action":  # the first command of an episode moves from the safe command 0
            assert abs(value - previous) <= MAX_DELTA + 1e-4


@pytest.mark.timeout(2400)  # a few minutes on a quiet machine; the suite's 300 s is not enough under load
def test_finetuning_on_a_lagging_robot_recovers_most_of_the_lost_return_within_25_episodes(tmp_path):
    run = tmp_path / "run"  # the run folder as train-sim leaves it: the checkpoint and its resume state
    run.mkdir()
    shutil.copyfile(FIXTURE, run / CHECKPOINT_FILE)
    shutil.copyfile(FIXTURE_RESUME, run / RESUME_FILE)
    policy = tmp_path / "policy.onnx"
    export_policy(run, policy)
    onnx_policy = OnnxPolicy(policy)
    in_sim = evaluate(onnx_policy, make_env(ENV), EPISODES, seed=7000).mean

    before = deployed_return(policy, tmp_path / "before.csv")
    assert before < in_sim - 15.0, (in_sim, before)  # the gap costs return

    tuned = tmp_path / "tuned"
    (tmp_path / "session.toml").write_text(SESSION)
    with VirtualRobot(tmp_path / "finetune.csv", seed=0) as robot:
        out = robopg("finetune", "--policy", str(policy), "--checkpoint", str(run), "--port", robot.port,
                     "--out", str(tuned), "--episodes", str(FINETUNE_EPISODES), "--max-delta",
                     str(MAX_DELTA), "--config", str(tmp_path / "session.toml"), "--method", "cautious_a2c")
    assert "wrote" in out, out
    after = deployed_return(tuned / "policy.onnx", tmp_path / "after.csv")
    share = (after - before) / (in_sim - before)
    print(f"in simulation {in_sim:.1f}; on the robot {before:.1f} -> {after:.1f} after {FINETUNE_EPISODES} "
          f"robot episodes of fine-tuning: {100 * share:.0f} % of the loss recovered")
    assert share >= RECOVERED_SHARE, (in_sim, before, after)
    for log in ("before.csv", "finetune.csv", "after.csv"):
        assert_within_limits(tmp_path / log)
