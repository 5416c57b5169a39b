"""Link benchmark: ACTION -> OBSERVATION round trips through the virtual robot against the link's byte-time limit.

The virtual robot runs in its own process (``robopg robot-sim --baud B``), as firmware would on its own chip;
the host is this process with :class:`firmware_bridge.link.RobotLink`. At ``B`` baud a byte takes 10/B s, so
no request/response link can beat ``B / (10 * (request bytes + answer bytes))`` exchanges per second: that
limit, measured in the same run from the frames actually sent, is the peer the achieved rate is divided by.

    python tools/bench_link.py [--env robopg/CartPoleSwingUp-v0] [--exchanges 2000] [--bauds 115200 1000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

from firmware_bridge.link import RobotLink


def start_robot(env_id: str, baud: int | None) -> tuple[subprocess.Popen, str]:
    args = [sys.executable, "-m", "robopg.cli", "robot-sim", "--env", env_id, "--watchdog-ms", "0"]
    if baud is not None:
        args += ["--baud", str(baud)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def measure(env_id: str, baud: int | None, exchanges: int) -> dict[str, float]:
    proc, port = start_robot(env_id, baud)
    try:
        with RobotLink.open(port, timeout=2.0) as link:
            info = link.hello()
            link.reset()
            rng = np.random.default_rng(0)
            low, high = info.action_low, info.action_high
            for _ in range(50):  # warm-up: page faults, the robot's first physics steps
                link.step(rng.uniform(low, high))
            sent0, received0, frames0 = link.stats.bytes_sent, link.stats.bytes_received, link.stats.frames_sent
            rtt = []
            start = time.perf_counter()
            for _ in range(exchanges):
                t = time.perf_counter()
                link.step(rng.uniform(low, high))
                rtt.append(time.perf_counter() - t)
            elapsed = time.perf_counter() - start
            bytes_per_exchange = (link.stats.bytes_sent - sent0 + link.stats.bytes_received - received0) / (
                link.stats.frames_sent - frames0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    rate = exchanges / elapsed
    limit = float("inf") if baud is None else baud / (10 * bytes_per_exchange)
    return {"rate": rate, "limit": limit, "bytes": bytes_per_exchange, "p50_ms": 1e3 * float(np.median(rtt)),
            "p99_ms": 1e3 * float(np.percentile(rtt, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="robopg/CartPoleSwingUp-v0")
    parser.add_argument("--exchanges", type=int, default=2000)
    parser.add_argument("--bauds", type=int, nargs="+", default=[115200, 1_000_000])
    args = parser.parse_args()
    print(f"{args.env}: {args.exchanges} ACTION->OBSERVATION exchanges per setting, virtual robot in lockstep")
    print(f"{'link':>14} {'bytes/exch':>10} {'rate/s':>9} {'limit/s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for baud in [None, *args.bauds]:
        r = measure(args.env, baud, args.exchanges)
        name = "no wire delay" if baud is None else f"{baud} baud"
        ratio = "-" if baud is None else f"{r['rate'] / r['limit']:.3f}"
        limit = "-" if baud is None else f"{r['limit']:.0f}"
        print(f"{name:>14} {r['bytes']:>10.1f} {r['rate']:>9.0f} {limit:>9} {ratio:>6} {r['p50_ms']:>7.3f} "
              f"{r['p99_ms']:>7.3f}")


if __name__ == "__main__":
    main()
