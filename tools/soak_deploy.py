"""Long run of ``robopg deploy`` against the virtual robot in lockstep: is its memory flat, are its
descriptors and threads constant?

Exports the test fixture's policy (tests/robopg/fixtures/swingup_ddpg.pt), starts ``robopg robot-sim`` on
a pty, runs ``robopg deploy`` for enough CartPoleSwingUp episodes to cover ``--periods`` control periods,
and samples the deploy process (resident memory, open descriptors, threads) every ``--every`` seconds with
psutil. Prints the figures at the first sample after ``--warmup`` periods, at the end, and the largest,
and exits non-zero if memory grew by more than ``--max-growth-mb`` or a descriptor or thread was left over.

    python tools/soak_deploy.py [--periods 1000000] [--every 5] [--progress 60] [--out soak.csv]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

import psutil

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "robopg" / "fixtures" / "swingup_ddpg.pt"
ENV = "robopg/CartPoleSwingUp-v0"
EPISODE_STEPS = 250  # the task's episode length (a steady swing-up never ends early)
CLI = [sys.executable, "-m", "robopg.cli"]


def export_fixture_policy(folder: Path) -> Path:
    """The test fixture's swing-up policy exported to ``folder/policy.onnx``."""
    policy = folder / "policy.onnx"
    subprocess.run([*CLI, "export", str(FIXTURE), "--out", str(policy)], check=True, capture_output=True)
    return policy


def start_robot(*options: str) -> tuple[subprocess.Popen, str]:
    """``robopg robot-sim`` of the swing-up with ``options``, and the port it serves."""
    robot = subprocess.Popen([*CLI, "robot-sim", "--env", ENV, *options], stdout=subprocess.PIPE, text=True)
    return robot, robot.stdout.readline().strip()


def sample(process: psutil.Process) -> tuple[float, int, int]:
    """(resident MB, open descriptors, threads) of a process."""
    with process.oneshot():
        return process.memory_info().rss / 2**20, process.num_fds(), process.num_threads()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--periods", type=int, default=1_000_000, help="control periods to run (default 1e6)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warmup", type=int, default=10_000, help="periods before the start figures")
    parser.add_argument("--max-growth-mb", type=float, default=5.0)
    parser.add_argument("--watchdog-ms", type=int, default=250,
                        help="the robot's watchdog (robot-sim's default); a host stalled longer by a busy machine "
                             "ends the run with a WATCHDOG fault")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="deploy's --rate: 0 (default) runs the lockstep robot as fast as it answers, the "
                             "policy's control rate (50 Hz) would take 5.6 hours for 1e6 periods")
    parser.add_argument("--out", type=Path, help="CSV of every sample, written as the samples are taken")
    parser.add_argument("--progress", type=float, default=60.0,
                        help="seconds between progress lines (periods, memory, descriptors, threads); 0: none")
    args = parser.parse_args()
    episodes = math.ceil(args.periods / EPISODE_STEPS)
    with tempfile.TemporaryDirectory() as folder:
        policy = export_fixture_policy(Path(folder))
        robot, port = start_robot("--busy-poll", "--watchdog-ms", str(args.watchdog_ms))
        try:
            deploy = subprocess.Popen([*CLI, "deploy", "--policy", str(policy), "--port", port, "--episodes",
                                       str(episodes), "--rate", str(args.rate)], stdout=subprocess.PIPE, text=True)
            with contextlib.ExitStack() as stack:
                out = stack.enter_context(args.out.open("w", newline="")) if args.out else None
                rows = watch(deploy, args, out)
            tail = deploy.communicate()[0].strip().splitlines()
        finally:
            robot.terminate()
            robot.wait(10)
    if deploy.returncode != 0:
        print(f"deploy failed with exit code {deploy.returncode}", file=sys.stderr)
        return 1
    return report(rows, tail, args)


def watch(deploy: subprocess.Popen, args: argparse.Namespace,
          out: TextIO | None = None) -> list[tuple[float, int, float, int, int]]:
    """Samples of the deploy process until it ends; periods are counted from its per-episode lines. Each
    sample goes to ``out`` (CSV) as it is taken, and a progress line to stdout every ``args.progress``
    seconds, so that a run stopped early still leaves its figures."""
    process = psutil.Process(deploy.pid)
    writer = csv.writer(out) if out else None
    if writer:
        writer.writerow(("seconds", "periods", "rss_mb", "fds", "threads"))
    start = time.monotonic()
    rows, periods, next_sample, next_progress = [], 0, start, start + args.progress
    for line in deploy.stdout:
        if line.startswith("episode "):
            periods += int(line.rsplit(" over ", 1)[1].split()[0])
        last = line.startswith("return ")
        if time.monotonic() >= next_sample or last:
            rows.append((round(time.monotonic() - start, 1), periods, *sample(process)))
            next_sample += args.every
            if writer:
                writer.writerow(rows[-1])
                out.flush()
        if args.progress > 0 and time.monotonic() >= next_progress:
            seconds, done, rss, fds, threads = rows[-1]
            print(f"progress: {done} periods in {seconds:.0f} s, {rss:.1f} MB resident, {fds} descriptors, "
                  f"{threads} threads", flush=True)
            next_progress = time.monotonic() + args.progress
        if last:
            break
    return rows


def report(rows: list, tail: list[str], args: argparse.Namespace) -> int:
    """The figures after the warm-up, at the end, and over the run; the last row is taken after the session
    closed the port (the run's own descriptors are gone by then)."""
    steady = [r for r in rows[:-1] if r[1] >= args.warmup] or rows
    first, last = steady[0], rows[-1]
    growth = last[2] - first[2]
    print(f"{last[1]} control periods in {last[0]:.0f} s ({last[1] / max(last[0], 1e-9):.0f} per second)")
    print(f"resident memory: {first[2]:.1f} MB at {first[1]} periods, {last[2]:.1f} MB at the end "
          f"({growth:+.1f} MB), range {min(r[2] for r in steady):.1f}-{max(r[2] for r in steady):.1f} MB")
    print(f"descriptors: {sorted({r[3] for r in steady})} during the run, {last[3]} after the session closed; "
          f"threads: {sorted({r[4] for r in steady})} during the run, {last[4]} at the end")
    for line in tail:
        print(f"deploy: {line}")
    return 0 if growth <= args.max_growth_mb and last[3] <= first[3] and last[4] <= first[4] else 1


if __name__ == "__main__":
    sys.exit(main())
