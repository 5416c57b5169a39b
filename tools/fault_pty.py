"""A noisy line between two real processes: ``robopg deploy`` and ``robopg robot-sim`` over serial ptys, with
this tool in the middle dropping bytes, flipping bits and cutting the line.

``robot-sim`` (lockstep swing-up, its default 250 ms watchdog, a command log) serves its own pty; this tool
opens it, makes a second pty pair, and starts ``robopg deploy`` of the test fixture's policy on that pair's
port. Every byte either way goes through a :class:`firmware_bridge.faults.NoisyLine` (the same seeded faults as
``tools/fault_link.py``'s in-memory figures), on the wall clock: a 2 s cut is 2 s of silence the robot's
watchdog sees. ``deploy`` runs as fast as the robot answers (``--rate 0``) and rides out up to 1,000 link
faults.

Reported per fault setting: episodes completed of those started, link faults ridden out and frames resent
(``deploy``'s own count), the robot's watchdog trips and, with cuts, the worst time to its safe state, and
commands outside the action limits (sent by ``deploy``, from its ``--log``, and applied by the robot, from its
command log). The time to the safe state is on the robot's clock, from the last command it applied before a
trip to its own write of the safe action: for a cut, an upper bound of the time from the cut itself, which
falls after that command. A trip without a cut is a stall of the host, the robot or the line of more than the
watchdog's 250 ms (a busy machine's scheduler).

    python -m tools.fault_pty [--episodes 10] [--seed 0] [--drop 0.001 0.01] [--flip 0.0001 0.001]
                              [--cuts 3] [--cut-seconds 2] [--cut-every 15000] [--json]
"""

from __future__ import annotations

import argparse
import os
import re
import select
import subprocess
import tempfile
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.device import AppliedCommand
from firmware_bridge.faults import LineFaults, NoisyLine
from sim.spec import task_spec
from sim.virtual_robot import CommandLog
from tools.fault_link import RowReport, fault_arguments, fault_settings, print_report
from tools.soak_deploy import CLI, ENV, export_fixture_policy, start_robot

LINK_LINE = re.compile(r"link: (\d+) faults ridden out, (\d+) episodes discarded, (\d+) frames resent")


@dataclass
class PtyReport(RowReport):
    frames_resent: int
    worst_seconds_to_safe: float  # NaN without cuts
    watchdog_trips: int  # the robot's watchdog: the cuts', and any stall of the host or line past 250 ms
    commands_out_of_limits: int  # sent by deploy and applied by the robot, together
    steps: int
    seconds: float
    deploy_exit: int
    stopped: str  # deploy's last error line, if it stopped early


def relay(host: int, robot: int, line: NoisyLine, stop: threading.Event) -> None:
    """Carry bytes between the host's pty master and the robot's port through ``line`` until ``stop``."""
    while not stop.is_set():
        ready, _, _ = select.select([host, robot], [], [], 0.05)
        for source in ready:
            try:
                data = os.read(source, 4096)
            except OSError:  # the host closed its end (EIO on the master) before it opens it again
                time.sleep(0.01)
                continue
            if source == host:
                damaged, target = line.from_host(data), robot
            else:
                damaged, target = line.damage(data), host
            if damaged:
                os.write(target, damaged)


def watchdog_gaps(log: list[AppliedCommand]) -> list[float]:
    """For each time the robot's watchdog made it safe: seconds, on its clock, from the last command it applied
    before to its own write of the safe action."""
    gaps = []
    last_action = None
    for command in log:
        if command.seq is not None:
            last_action = command.t_ms
        elif command.cause == "watchdog" and last_action is not None:
            gaps.append((command.t_ms - last_action) / 1000)
            last_action = None
    return gaps


def out_of_limits(commands: np.ndarray, low: np.ndarray, high: np.ndarray) -> int:
    return int(np.sum(np.any((commands < low) | (commands > high), axis=1))) if len(commands) else 0


def run(faults: LineFaults, episodes: int, policy: Path, folder: Path) -> PtyReport:
    """``episodes`` episodes of ``deploy`` against ``robot-sim`` through a line with ``faults``."""
    spec = task_spec(ENV)
    low, high = np.asarray(spec.action_low), np.asarray(spec.action_high)
    robot_log, deploy_log = folder / "robot.csv", folder / "deploy.npz"
    robot, robot_port = start_robot("--log", str(robot_log))
    robot_fd = os.open(robot_port, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(robot_fd)
    host_fd, host_side = os.openpty()
    tty.setraw(host_side)  # deploy's port: raw before deploy opens it (pyserial makes it raw again)
    line, stop = NoisyLine(faults), threading.Event()
    thread = threading.Thread(target=relay, args=(host_fd, robot_fd, line, stop), daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        deploy = subprocess.run([*CLI, "deploy", "--policy", str(policy), "--port", os.ttyname(host_side),
                                 "--episodes", str(episodes), "--rate", "0", "--max-faults", "1000",
                                 "--log", str(deploy_log)], capture_output=True, text=True, timeout=60 * episodes)
    finally:
        seconds = time.monotonic() - started
        stop.set()
        thread.join()
        robot.terminate()
        robot.wait(10)
        for fd in (robot_fd, host_fd, host_side):
            os.close(fd)
    completed = sum(line.startswith("episode ") for line in deploy.stdout.splitlines())
    link = LINK_LINE.search(deploy.stdout)
    faults_ridden, discarded, resent = (int(n) for n in link.groups()) if link else (0, 0, 0)
    sent = np.zeros((0, len(low)))
    if deploy_log.exists():  # one command_<i> array per completed episode
        with np.load(deploy_log) as saved:
            sent = np.concatenate([sent, *(saved[k].reshape(-1, len(low)) for k in saved.files
                                           if k.startswith("command_"))])
    log = CommandLog.read(robot_log)
    applied = np.array([c.applied for c in log if c.seq is not None]).reshape(-1, len(low))
    errors = [line for line in deploy.stderr.splitlines() if line.startswith("error")]
    gaps = watchdog_gaps(log)  # with several trips, the longest are at least as long as the cuts'
    return PtyReport(faults.drop, faults.flip, len(faults.cuts), completed, completed + discarded, faults_ridden,
                     resent, max(gaps, default=float("nan")) if faults.cuts else float("nan"), len(gaps),
                     out_of_limits(sent, low, high) + out_of_limits(applied, low, high),
                     len(sent), seconds, deploy.returncode, errors[-1] if errors else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    fault_arguments(parser, episodes=10)
    args = parser.parse_args()
    settings = fault_settings(args)
    with tempfile.TemporaryDirectory() as folder:
        policy = export_fixture_policy(Path(folder))
        for index, faults in enumerate(settings):
            run_folder = Path(folder) / str(index)
            run_folder.mkdir()
            report = run(faults, args.episodes, policy, run_folder)
            print_report(report, faults, args,
                         f"{report.frames_resent} frames resent, worst time to safe state "
                         f"{1e3 * report.worst_seconds_to_safe:.0f} ms, {report.watchdog_trips} watchdog trips, "
                         f"{report.commands_out_of_limits} commands out "
                         f"of limits in {report.steps} steps, {report.seconds:.0f} s"
                         + (f"; deploy exit {report.deploy_exit}: {report.stopped}" if report.deploy_exit else ""))


if __name__ == "__main__":
    main()
