"""Link benchmark: ACTION -> OBSERVATION exchanges through the virtual robot against the link's byte-time limit.

The virtual robot runs in its own process (``robopg robot-sim --baud B``), as firmware would on its own chip;
the host is this process with :class:`firmware_bridge.link.RobotLink`. At ``B`` baud a byte takes 10/B s. The
peer each achieved rate is divided by is the limit the wire itself sets, from the frames actually sent:

- one request in flight (a control loop: the next action needs this observation): the request and its
  answer cross one after the other, so at most ``B / (10 * (request bytes + answer bytes))`` exchanges/s;
- ``W > 1`` requests in flight (``send_action`` ahead, answers matched by ``ack_seq``): the UART is full
  duplex, both lines carry frames at once, and the longer frame sets the limit ``B / (10 * max(...))``.

Each end either sleeps until bytes arrive (``sleep``, the default of both) or polls for them (``poll``: the
robot's ``--busy-poll`` and the host's ``busy_poll``, a core each), which removes the process wake-ups from
every exchange.

    python tools/bench_link.py [--env robopg/CartPoleSwingUp-v0] [--exchanges 2000] [--bauds 115200 1000000]
                               [--windows 1 4] [--waits sleep poll]
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from firmware_bridge.link import RobotLink


@dataclass(frozen=True)
class LinkResult:
    rate: float  # exchanges per second
    limit: float  # exchanges per second the wire allows; inf without a baud rate
    request_bytes: float
    answer_bytes: float
    latency: np.ndarray  # seconds from each ACTION's send to its OBSERVATION


def start_robot(env_id: str, baud: int | None, busy_poll: bool) -> tuple[subprocess.Popen, str]:
    args = [sys.executable, "-m", "robopg.cli", "robot-sim", "--env", env_id, "--watchdog-ms", "0"]
    if baud is not None:
        args += ["--baud", str(baud)]
    if busy_poll:
        args.append("--busy-poll")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def exchange(link: RobotLink, actions: np.ndarray, window: int) -> np.ndarray:
    """Send every action with up to ``window`` unanswered; returns each one's latency to its answer."""
    sent_at: dict[int, float] = {}
    latency = np.empty(len(actions))
    for action in actions[:window]:
        sent_at[link.send_action(action)] = time.perf_counter()
    for i in range(len(actions)):
        observation = link.read_observation()
        latency[i] = time.perf_counter() - sent_at.pop(observation.ack_seq)
        if i + window < len(actions):
            sent_at[link.send_action(actions[i + window])] = time.perf_counter()
    return latency


def measure(env_id: str, baud: int | None, exchanges: int, window: int, busy_poll: bool) -> LinkResult:
    proc, port = start_robot(env_id, baud, busy_poll)
    try:
        with RobotLink.open(port, timeout=2.0, busy_poll=busy_poll) as link:
            info = link.hello()
            link.reset()
            actions = np.random.default_rng(0).uniform(info.action_low, info.action_high,
                                                       size=(exchanges, info.action_dim))
            exchange(link, actions[:50], window)  # warm-up: page faults, the robot's first physics steps
            s = link.stats
            sent0, received0, requests0, answers0 = s.bytes_sent, s.bytes_received, s.frames_sent, s.frames_received
            start = time.perf_counter()
            latency = exchange(link, actions, window)
            elapsed = time.perf_counter() - start
            request_bytes = (s.bytes_sent - sent0) / (s.frames_sent - requests0)
            answer_bytes = (s.bytes_received - received0) / (s.frames_received - answers0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    wire_bytes = request_bytes + answer_bytes if window == 1 else max(request_bytes, answer_bytes)
    limit = float("inf") if baud is None else baud / (10 * wire_bytes)
    return LinkResult(exchanges / elapsed, limit, request_bytes, answer_bytes, latency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="robopg/CartPoleSwingUp-v0")
    parser.add_argument("--exchanges", type=int, default=2000)
    parser.add_argument("--bauds", type=int, nargs="+", default=[115200, 1_000_000])
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 4], help="requests in flight")
    parser.add_argument("--waits", nargs="+", choices=["sleep", "poll"], default=["sleep", "poll"],
                        help="how both ends wait for bytes")
    args = parser.parse_args()
    if args.exchanges < 1 or min(args.windows) < 1:
        parser.error("--exchanges and --windows must be >= 1")
    print(f"{args.env}: {args.exchanges} ACTION->OBSERVATION exchanges per setting, virtual robot in lockstep")
    print(f"{'link':>14} {'in flight':>9} {'wait':>5} {'bytes req+ans':>13} {'rate/s':>8} {'limit/s':>8} {'ratio':>6} "
          f"{'p50 ms':>7} {'p99 ms':>7}")
    for baud in [None, *args.bauds]:
        for window, wait in itertools.product(args.windows, args.waits):
            r = measure(args.env, baud, args.exchanges, window, busy_poll=wait == "poll")
            name = "no wire delay" if baud is None else f"{baud} baud"
            ratio = "-" if baud is None else f"{r.rate / r.limit:.3f}"
            limit = "-" if baud is None else f"{r.limit:.0f}"
            sizes = f"{r.request_bytes:.0f}+{r.answer_bytes:.0f}"
            p50, p99 = 1e3 * np.percentile(r.latency, [50, 99])
            print(f"{name:>14} {window:>9} {wait:>5} {sizes:>13} {r.rate:>8.0f} {limit:>8} {ratio:>6} {p50:>7.3f} "
                  f"{p99:>7.3f}")


if __name__ == "__main__":
    main()
