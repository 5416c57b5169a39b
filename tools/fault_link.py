"""Episodes over a noisy line: how many complete, how much is resent, how fast the robot goes safe, and
whether any command leaves the limits.

The robot is the lockstep virtual robot in this process (``sim.virtual_robot.in_memory_robot``: the same
plant, firmware state machine and protocol as ``robopg robot-sim``) behind a
:class:`firmware_bridge.faults.FaultyTransport` that drops bytes, flips bits and cuts the line, seeded; the
host is ``robopg deploy``'s control loop with its safety layer, riding out link faults. Time is the robot's
virtual clock (one control period per physics step, plus the host's waits), so a 2 s cut takes no wall-clock
time. The policy is the task's hand-written controller.

    python -m tools.fault_link [--env robopg/CartPoleSwingUp-v0] [--episodes 20] [--seed 0]
                                  [--drop 0.01] [--flip 0.001] [--cuts 3] [--cut-seconds 2] [--json]

Prints one line per fault setting: episodes completed of those started, link faults, host resends, firmware
resends (received again and not re-applied), the worst time from a cut to the robot's safe state, and
commands outside the limits (sent by the host or applied by the firmware).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import numpy as np

from firmware_bridge.errors import LinkError
from firmware_bridge.faults import FaultyTransport, LineFaults
from robopg.runtime.deploy import ControlLoop, RobotError, task_functions
from robopg.runtime.safety import SafetyLayer
from sim.controllers import cartpole_swing_up, reacher_ik_pd
from sim.virtual_robot import RobotSimConfig, in_memory_robot

CONTROLLERS = {"robopg/CartPoleSwingUp-v0": cartpole_swing_up, "robopg/Reacher2D-v0": reacher_ik_pd}


@dataclass
class RowReport:
    """What every row of a fault table starts with: the setting, episodes, link faults."""

    drop: float
    flip: float
    cuts: int
    episodes_completed: int
    episodes_started: int
    link_faults: int


@dataclass
class LineReport(RowReport):
    host_resends: int
    firmware_resends: int
    worst_seconds_to_safe: float  # from the start of a cut to the robot's safe state; NaN without cuts
    watchdog_seconds: float
    period_seconds: float
    commands_out_of_limits: int  # sent by the host and applied by the firmware, together
    steps: int
    stopped: str  # why the session stopped early, or ""
    faults: list[str]  # each link fault ridden out


def run(env_id: str, faults: LineFaults, episodes: int, *, max_faults: int = 1000, seed: int = 0) -> LineReport:
    """``episodes`` complete episodes (or as many as ``max_faults`` link faults allow) over a line with ``faults``."""
    link = in_memory_robot(RobotSimConfig(env_id, seed=seed), faults)
    transport = link.transport
    assert isinstance(transport, FaultyTransport)
    core = transport.inner.core  # type: ignore[attr-defined]
    info = link.hello(timeout=30.0)  # the session's first handshake waits as long as a reconnection
    safety = SafetyLayer(info.action_low, info.action_high)
    loop = ControlLoop(link, safety, task_functions(env_id), max_faults=max_faults, reconnect_timeout=30.0)
    stopped = ""
    try:
        for _ in range(episodes):
            loop.run_episode(CONTROLLERS[env_id])
    except (LinkError, RobotError) as exc:  # the report says why the session stopped
        stopped = f"{type(exc).__name__}: {exc}"
    sent = np.concatenate([e.commands for e in loop.trajectory]) if loop.trajectory else np.zeros((0, info.action_dim))
    applied = np.array([c.applied for c in core.log])
    out = int(np.sum(np.any((sent < info.action_low) | (sent > info.action_high), axis=1)))
    out += int(np.sum(np.any((applied < info.action_low) | (applied > info.action_high), axis=1)))
    safe_times = [c.t_ms / 1000 for c in core.log if c.seq is None]
    to_safe = [min((t for t in safe_times if t >= start), default=np.inf) - start
               for start in transport.counts.cut_starts]
    return LineReport(faults.drop, faults.flip, len(faults.cuts), len(loop.trajectory),
                      len(loop.trajectory) + loop.discarded, len(loop.faults), link.stats.resends,
                      core.stats.resends, max(to_safe, default=float("nan")), info.watchdog_timeout or 0.0,
                      info.control_period, out, len(sent), stopped, loop.faults)


def fault_arguments(parser: argparse.ArgumentParser, episodes: int) -> None:
    """The options that choose the fault settings (the table's rows), shared with ``tools/fault_pty.py``."""
    parser.add_argument("--episodes", type=int, default=episodes)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drop", type=float, nargs="*", default=[0.0, 0.001, 0.01])
    parser.add_argument("--flip", type=float, nargs="*", default=[0.0001, 0.001])
    parser.add_argument("--cuts", type=int, default=3, help="cuts of the last setting")
    parser.add_argument("--cut-seconds", type=float, default=2.0)
    parser.add_argument("--cut-every", type=int, default=15_000,
                        help="host bytes between cuts (an episode of the swing-up is about 3.8 kB)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")


def fault_settings(args: argparse.Namespace) -> list[LineFaults]:
    """One setting per byte-drop rate, one per bit-flip rate, and one of ``--cuts`` cuts."""
    settings = [LineFaults(drop=d, seed=args.seed) for d in args.drop]
    settings += [LineFaults(flip=f, seed=args.seed) for f in args.flip]
    if args.cuts:
        settings.append(LineFaults(cuts=tuple((args.cut_every * (i + 1), args.cut_seconds) for i in range(args.cuts)),
                                   seed=args.seed))
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="robopg/CartPoleSwingUp-v0", choices=sorted(CONTROLLERS))
    fault_arguments(parser, episodes=20)
    args = parser.parse_args()
    for faults in fault_settings(args):
        report = run(args.env, faults, args.episodes, seed=args.seed)
        print_report(report, faults, args,
                     f"{report.host_resends} host resends, {report.firmware_resends} not re-applied, worst time to "
                     f"safe state {1e3 * report.worst_seconds_to_safe:.0f} ms (watchdog "
                     f"{1e3 * report.watchdog_seconds:.0f} ms + period {1e3 * report.period_seconds:.0f} ms), "
                     f"{report.commands_out_of_limits} commands out of limits in {report.steps} steps"
                     + (f"; stopped: {report.stopped}" if report.stopped else ""))


def print_report(report: RowReport, faults: LineFaults, args: argparse.Namespace, details: str) -> None:
    """One row of the table: the setting, episodes completed of those started, link faults and ``details``; its
    JSON object with ``--json``."""
    if args.json:
        print(json.dumps(asdict(report)), flush=True)
        return
    print(f"drop {faults.drop:g}, flip {faults.flip:g}, {len(faults.cuts)} cuts of {args.cut_seconds:g} s: "
          f"{report.episodes_completed}/{report.episodes_started} episodes completed, {report.link_faults} link "
          f"faults, {details}", flush=True)

if __name__ == "__main__":
    main()
