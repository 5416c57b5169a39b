"""The main job, end to end, with robopg's own commands: train in simulation, export to ONNX, start a virtual robot
with a reality gap behind a serial port, deploy, fine-tune on the robot, deploy the result; then print the
returns before and after and plot them.

    python tools/demo.py [--steps 25000] [--out runs/demo] [--gap action_latency_steps=3 ...] [--finetune-episodes 50]
        [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ENV = "robopg/CartPoleSwingUp-v0"
ROBOPG = [sys.executable, "-m", "robopg.cli"]
BAUD = 1_000_000  # UART timing of a 1 Mbaud link (about 0.6 ms per exchange on the wire)
# The lockstep robot as fast as it answers rather than at the task's 50 Hz: the same episodes, in less time.
UNPACED = ["--rate", "0"]
SAFETY = ["--max-delta", "8.0"]  # newtons per 20 ms step: a gentle ramp for a ±10 N actuator
EVAL_SEED = 7000  # initial states of the deploys before and after fine-tuning


def step(title: str, *args: str) -> str:
    """Run one robopg command, its output shown as it comes; returns the output."""
    print(f"\n=== {title}\n$ robopg {' '.join(args)}", flush=True)
    proc = subprocess.Popen([*ROBOPG, *args], stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    if proc.wait() != 0:
        sys.exit(f"demo stopped: robopg {args[0]} failed (exit {proc.returncode})")
    return "".join(lines)


@contextlib.contextmanager
def virtual_robot(gap_args: list[str], log: Path, seed: int) -> Iterator[str]:
    """A ``robopg robot-sim`` process for the duration; yields its port."""
    robot = subprocess.Popen([*ROBOPG, "robot-sim", "--env", ENV, "--baud", str(BAUD), "--seed", str(seed), "--log",
                              str(log), *gap_args], stdout=subprocess.PIPE, text=True)
    try:
        yield robot.stdout.readline().strip()
    finally:
        robot.terminate()
        robot.wait(timeout=10)


def mean_return(output: str) -> float:
    return float(re.search(r"return (-?[\d.]+) ±", output).group(1))


def plot(out: Path, before: float, after: float | None, finetune_csv: Path, gap: str) -> Path:
    from matplotlib.figure import Figure

    with finetune_csv.open() as f:
        rows = list(csv.DictReader(f))
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    explore = [(int(r["episode"]), float(r["return"])) for r in rows if r["kind"] == "explore"]
    evals = [(int(r["episode"]), float(r["return"])) for r in rows if r["kind"] in ("baseline", "eval")]
    ax.plot(*zip(*explore, strict=True), ".", alpha=0.5, label="exploring episodes")
    ax.plot(*zip(*evals, strict=True), "o-", label="evaluations (no noise)")
    ax.axhline(before, color="gray", ls="--", label=f"deployed policy on the robot: {before:.1f}")
    if after is not None:
        ax.axhline(after, color="green", ls="--", label=f"fine-tuned policy on the robot: {after:.1f}")
    ax.set(xlabel="fine-tuning episodes on the robot", ylabel="episode return",
           title=f"{ENV} on the virtual robot, gap {gap}")
    ax.legend(loc="best", framealpha=0.8)
    path = out / "pipeline.png"
    fig.savefig(path, dpi=100)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25000)
    parser.add_argument("--out", type=Path, default=Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S"))
    parser.add_argument("--gap", nargs="+", default=["action_latency_steps=3"])
    parser.add_argument("--finetune-episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="seed of the training run")
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes before and after")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    run, policy = out / "train", out / "policy.onnx"

    step("1. train DDPG in simulation", "train-sim", "--env", ENV, "--algo", "ddpg", "--steps", str(args.steps),
         "--seed", str(args.seed), "--out", str(run))
    step("2. export the policy to ONNX (verified against torch)", "export", str(run), "--out", str(policy))
    sim_return = mean_return(step("3. the ONNX policy in simulation (onnxruntime only)", "eval", "--policy",
                                  str(policy), "--episodes", str(args.episodes)))

    gap_args = [a for g in args.gap for a in ("--gap", g)]
    print(f"\n=== 4. the virtual robot: lockstep, {BAUD} baud, gap {' '.join(args.gap)}; every command it applies "
          f"is logged in {out}/robot_*.csv", flush=True)
    # The deploys before and after fine-tuning each get a fresh robot with the same seed: the same initial
    # states, so the two returns compare the policies and not the luck of the draw.
    with virtual_robot(gap_args, out / "robot_before.csv", EVAL_SEED) as port:
        before = mean_return(step("5. deploy the sim-trained policy to the robot", "deploy", "--policy", str(policy),
                                  "--port", port, "--episodes", str(args.episodes), *UNPACED, *SAFETY))
    tuned = out / "finetune"
    with virtual_robot(gap_args, out / "robot_finetune.csv", 0) as port:  # twin_jobs=0: the twin runs, one per core
        step("6. fine-tune on the robot (training on its identified twin, then cautious online A2C)", "finetune",
             "--policy", str(policy), "--checkpoint", str(run), "--port", port, "--out", str(tuned), "--episodes",
             str(args.finetune_episodes), "--set", "twin_jobs=0", *SAFETY)
    after = None
    if (tuned / "policy.onnx").exists():
        with virtual_robot(gap_args, out / "robot_after.csv", EVAL_SEED) as port:
            after = mean_return(step("7. deploy the fine-tuned policy (the same initial states as 5.)", "deploy",
                                     "--policy", str(tuned / "policy.onnx"), "--port", port, "--episodes",
                                     str(args.episodes), *UNPACED, *SAFETY))
    figure = plot(out, before, after, tuned / "finetune.csv", " ".join(args.gap))
    print(f"\n=== returns over {args.episodes} episodes each")
    print(f"in simulation (nominal model):        {sim_return:8.2f}")
    print(f"on the robot with the gap, deployed:  {before:8.2f}")
    if after is not None:
        share = (after - before) / (sim_return - before) if sim_return != before else float("nan")
        print(f"on the robot with the gap, fine-tuned: {after:7.2f}  ({100 * share:.0f}% of the loss recovered)")
    else:
        print("no fine-tuned policy was clearly better on the robot: the deployed policy stays")
    print(f"plot: {figure}")


if __name__ == "__main__":
    main()
