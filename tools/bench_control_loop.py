"""Control-loop benchmark: the deploy loop (ONNX inference, safety layer, serial link) at 100, 250, 500 and
1000 Hz through the virtual robot, against the link's byte-time limit.

Two robots, each in its own process as firmware would be on its own chip:

- real time (``robopg robot-sim --mode realtime --rate R``): the robot ticks at R Hz and streams an
  OBSERVATION per tick; the host must answer before the next tick, and a command that misses it is a
  deadline miss (counted from the acknowledged sequence numbers, as ``robopg deploy`` does);
- lockstep (``--mode lockstep``): the host paces itself at R Hz; a step that ends after its deadline is a miss.

At B baud a byte takes 10/B s, so no loop can exchange an ACTION and an OBSERVATION more than
``B / (10 * bytes per exchange)`` times a second: that limit, from the frames actually sent in the same run,
is what the achieved rate is compared with. The policy runs at the robot's rate whatever rate it was trained
for: this measures the loop, not the task.

    python tools/bench_control_loop.py --policy policy.onnx [--bauds 115200 1000000] [--seconds 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from firmware_bridge.link import RobotLink
from robopg.runtime.deploy import ControlLoop, TaskFunctions
from robopg.runtime.onnx_policy import OnnxPolicy
from robopg.runtime.safety import SafetyConfig, SafetyLayer

RATES = (100, 250, 500, 1000)


def start_robot(env_id: str, mode: str, rate: float, baud: int) -> tuple[subprocess.Popen, str]:
    args = [sys.executable, "-m", "robopg.cli", "robot-sim", "--env", env_id, "--mode", mode, "--baud", str(baud)]
    if mode == "realtime":
        args += ["--rate", str(rate)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def measure(policy: OnnxPolicy, mode: str, rate: float, baud: int, seconds: float) -> dict[str, float]:
    meta = policy.metadata
    proc, port = start_robot(meta.env_id, mode, rate, baud)
    steps = int(rate * seconds)
    try:
        with RobotLink.open(port, baudrate=baud, timeout=1.0) as link:
            link.hello()
            safety = SafetyLayer(np.array(meta.action_low), np.array(meta.action_high), SafetyConfig())
            # No reward or termination: one long episode of exactly ``steps`` steps.
            task = TaskFunctions(lambda *_: 0.0, lambda _: False, steps)
            loop = ControlLoop(link, safety, task, rate_hz=rate, history=meta.history)
            loop.run_episode(policy)
            bytes_per_exchange = (link.stats.bytes_sent + link.stats.bytes_received) / link.stats.frames_sent
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    deadlines = loop.deadlines
    limit = baud / (10 * bytes_per_exchange)
    return {"achieved": 1 / deadlines.periods.mean, "limit": limit, "misses": deadlines.misses, "steps": steps,
            "jitter_ms": 1e3 * deadlines.jitter, "p99_ms": 1e3 * deadlines.periods.percentile(99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, required=True, help="An exported policy.onnx of one of our tasks.")
    parser.add_argument("--bauds", type=int, nargs="+", default=[115200, 1_000_000])
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--seconds", type=float, default=4.0, help="Length of each run.")
    args = parser.parse_args()
    policy = OnnxPolicy(args.policy)
    print(f"{policy.metadata.env_id}: deploy loop (onnxruntime, safety layer, link) against the virtual robot")
    print(f"{'robot':>9} {'baud':>8} {'target Hz':>9} {'achieved':>9} {'byte limit':>10} {'target/limit':>12} "
          f"{'misses':>12} {'jitter ms':>9} {'p99 ms':>7}")
    for mode in ("realtime", "lockstep"):
        for baud in args.bauds:
            for rate in args.rates:
                r = measure(policy, mode, rate, baud, args.seconds)
                print(f"{mode:>9} {baud:>8} {rate:>9.0f} {r['achieved']:>9.1f} {r['limit']:>10.1f} "
                      f"{rate / r['limit']:>12.2f} {r['misses']:>5}/{r['steps']:<6} {r['jitter_ms']:>9.3f} "
                      f"{r['p99_ms']:>7.2f}", flush=True)
    print("target/limit > 1: the wire cannot carry one exchange per period at that baud rate, whatever the code.")


if __name__ == "__main__":
    main()
