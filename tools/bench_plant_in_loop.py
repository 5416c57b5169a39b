"""The trained swing-up policy through three robots, with ``robopg deploy`` unchanged: the Python virtual robot,
the C firmware's host build and the firmware's Cortex-M port under QEMU, the last two driving the same
PyBullet plant over their plant line (``robopg robot-sim --plant-port``).

Exports the test fixture's policy (tests/robopg/fixtures/swingup_ddpg.pt), runs ``--episodes`` episodes on
each robot from the same initial states (each robot's plant starts at seed 0 and takes the next seed at every
RESET), and prints each robot's returns and their mean against the virtual robot's (the peer, measured in the
same run). ``--mode lockstep`` runs deploy as fast as the robot answers (``--rate 0``); ``--mode realtime``
makes the firmware stream at the task's 50 Hz with the plant on the wall clock.

``--on-mcu`` adds the policy on the microcontroller: the same policy exported as C, built into the port's
POLICY-mode firmware (``make port-policy``), which acts at its own 50 Hz ticks on a plant it steps once per
tick, supervised from the host (``robopg supervise``), from the same initial states.

    make -C firmware_bridge/firmware all port
    python tools/bench_plant_in_loop.py [--mode lockstep|realtime] [--episodes 10] [--gap KEY=VALUE ...] [--on-mcu]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware_bridge.qemu import QemuBoard  # noqa: E402

FIXTURE = ROOT / "tests" / "robopg" / "fixtures" / "swingup_ddpg.pt"
FIRMWARE = ROOT / "firmware_bridge" / "firmware" / "build"
ENV = "robopg/CartPoleSwingUp-v0"
CLI = [sys.executable, "-m", "robopg.cli"]
EPISODE = re.compile(r"episode \d+: return (-?[\d.]+)")


@contextlib.contextmanager
def process(cmd: list[str]) -> Iterator[subprocess.Popen[str]]:
    """A child process, stdin held open (the host build stops at its end), terminated on the way out."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def plant(port: str, args: argparse.Namespace) -> Iterator[None]:
    """The plant on ``port``, serving once it has said so (the firmware waits for it before it serves)."""
    with process([*CLI, "robot-sim", "--env", ENV, "--mode", args.mode, "--plant-port", port, *gap_options(args)]) as p:
        p.stdout.readline()
        time.sleep(0.5)  # the firmware's next HELLO to the plant, and its answer
        yield


def gap_options(args: argparse.Namespace) -> list[str]:
    return [option for item in args.gap for option in ("--gap", item)]


@contextlib.contextmanager
def virtual_robot(args: argparse.Namespace) -> Iterator[str]:
    with process([*CLI, "robot-sim", "--env", ENV, "--mode", args.mode, *gap_options(args)]) as robot:
        yield robot.stdout.readline().strip()


@contextlib.contextmanager
def host_build(args: argparse.Namespace) -> Iterator[str]:
    with process([str(FIRMWARE / "robopg-fw-host"), "--plant-pty"]) as firmware:
        link, plant_port = firmware.stdout.readline().strip(), firmware.stdout.readline().strip()
        with plant(plant_port, args):
            yield link


@contextlib.contextmanager
def qemu(args: argparse.Namespace) -> Iterator[str]:
    board = QemuBoard(FIRMWARE / args.board / "robopg-fw.elf", machine=args.board, uarts=2)
    with board, plant(board.paths[1], args):
        yield board.paths[0]


def episodes(command: list[str], port: str, args: argparse.Namespace) -> list[float]:
    """Run ``robopg deploy`` or ``robopg supervise`` (``command``) for ``--episodes`` on ``port``: the returns."""
    ran = subprocess.run(
        [*CLI, *command, "--port", port, "--episodes", str(args.episodes)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if ran.returncode != 0:
        raise SystemExit(f"{command[0]} failed on {port}: {ran.stdout[-500:]} {ran.stderr[-500:]}")
    return [float(r) for r in EPISODE.findall(ran.stdout)]


def on_mcu(folder: Path, args: argparse.Namespace) -> list[float]:
    """Episodes of the POLICY-mode firmware under QEMU, supervised with ``robopg supervise``: its returns."""
    code = folder / "policy_c"
    subprocess.run([*CLI, "export", str(FIXTURE), "--format", "c", "--out", str(code)], check=True, capture_output=True)
    subprocess.run(
        ["make", "-C", str(FIRMWARE.parent), "port-policy", f"POLICY={code}", f"BOARD={args.board}"],
        check=True,
        capture_output=True,
    )
    board = QemuBoard(FIRMWARE / args.board / "robopg-fw-policy.elf", machine=args.board, uarts=2)
    lockstep_plant = argparse.Namespace(**{**vars(args), "mode": "lockstep"})  # stepped by the firmware's ticks
    with board, plant(board.paths[1], lockstep_plant):
        return episodes(["supervise", "--policy", str(folder / "policy.onnx")], board.paths[0], args)


def show(name: str, returns: list[float]) -> None:
    print(f"{name:>20}: mean {np.mean(returns):7.2f}  returns " + " ".join(f"{r:.2f}" for r in returns), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("lockstep", "realtime"), default="lockstep")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--board", default="mps2-an385", help="mps2-an385 (Cortex-M3) or mps2-an386 (Cortex-M4F)")
    parser.add_argument("--gap", action="append", default=[], metavar="KEY=VALUE", help="reality gap, repeatable")
    parser.add_argument("--on-mcu", action="store_true", help="also the policy on the microcontroller (QEMU)")
    parser.add_argument(
        "--only-mcu", action="store_true", help="with --on-mcu: only QEMU, the policy on the host and on the MCU"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        policy = Path(folder) / "policy.onnx"
        subprocess.run([*CLI, "export", str(FIXTURE), "--out", str(policy)], check=True, capture_output=True)
        rate = ["--rate", "0"] if args.mode == "lockstep" else []  # lockstep: as fast as the robot answers
        robots = {"virtual robot": virtual_robot, "C host build": host_build, f"QEMU {args.board}": qemu}
        results = {}
        for name, robot in robots.items():
            if args.only_mcu and robot is not qemu:
                continue
            with robot(args) as port:
                results[name] = episodes(["deploy", "--policy", str(policy), *rate], port, args)
            show(name, results[name])
        if args.on_mcu:
            results["on the MCU (QEMU)"] = on_mcu(Path(folder), args)
            show("on the MCU (QEMU)", results["on the MCU (QEMU)"])
    print(
        f"{args.mode}, {args.episodes} episodes, gap {args.gap or 'none'}: mean return against the virtual robot's "
        "(the policy on the MCU: against the same firmware with the policy on the host)"
    )
    for name, returns in results.items():
        peer = results[f"QEMU {args.board}" if name == "on the MCU (QEMU)" or args.only_mcu else "virtual robot"]
        print(
            f"{name:>20}: {np.mean(returns) / np.mean(peer):.4f}  (largest episode difference "
            f"{np.max(np.abs(np.array(returns) - peer)):.3g})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
