"""The trained swing-up policy through three robots, with ``robopg deploy`` unchanged: the Python virtual robot,
the C firmware's host build and the firmware's Cortex-M port under QEMU, the last two driving the same
PyBullet plant over their plant line (``robopg robot-sim --plant-port``).

Exports the test fixture's policy (tests/robopg/fixtures/swingup_ddpg.pt), runs ``--episodes`` episodes on
each robot from the same initial states (each robot's plant starts at seed 0 and takes the next seed at every
RESET), and prints each robot's returns and their mean against the virtual robot's (the peer, measured in the
same run). ``--mode lockstep`` runs deploy as fast as the robot answers (``--rate 0``); ``--mode realtime``
makes the firmware stream at the task's 50 Hz with the plant on the wall clock.

``--on-mcu`` adds the policy in the firmware: the same policy exported as C, built into the host build's and
the port's POLICY-mode firmware (``make host-policy port-policy``), which acts at its own 50 Hz ticks on a plant
it steps once per tick, supervised from the host (``robopg supervise``), from the same initial states.

``--finetune`` runs ``robopg finetune`` instead of deploy on each robot: a session of ``--episodes`` robot
episodes of ``--steps`` steps from the fixture's run (checkpoint and resume state), its settings ``--set
KEY=VALUE`` (a TOML table for ``--config``), and prints each session's outcome lines and the commands the robot's
log (robot-sim's, the plant's) shows outside the policy's action limits.

    make -C firmware_bridge/firmware all port
    python tools/bench_plant_in_loop.py [--mode lockstep|realtime] [--episodes 10] [--gap KEY=VALUE ...] [--on-mcu]
    python tools/bench_plant_in_loop.py --finetune --episodes 12 --steps 100 --set rehearsal_episodes=4 ...
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware_bridge.qemu import QemuBoard  # noqa: E402
from robopg.runtime.onnx_policy import OnnxPolicy  # noqa: E402
from sim.virtual_robot import CommandLog  # noqa: E402

FIXTURE = ROOT / "tests" / "robopg" / "fixtures" / "swingup_ddpg.pt"
FIRMWARE = ROOT / "firmware_bridge" / "firmware" / "build"
ENV = "robopg/CartPoleSwingUp-v0"
CLI = [sys.executable, "-m", "robopg.cli"]
EPISODE = re.compile(r"episode \d+: return (-?[\d.]+)")
SESSION_LINE = re.compile(r"^\s*(baseline|twin|rehearsal|explore|eval) episode|^(link:|deployed |wrote|no evaluation)")


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
def plant(port: str, args: argparse.Namespace, log: Path) -> Iterator[None]:
    """The plant on ``port``, serving once it has said so (the firmware waits for it before it serves)."""
    serve = [*CLI, "robot-sim", "--env", ENV, "--mode", args.mode, "--plant-port", port, *sim_options(args, log)]
    with process(serve) as p:
        p.stdout.readline()
        time.sleep(0.5)  # the firmware's next HELLO to the plant, and its answer
        yield


def sim_options(args: argparse.Namespace, log: Path) -> list[str]:
    """robot-sim's reality gap and command log."""
    return [option for item in args.gap for option in ("--gap", item)] + ["--log", str(log)]


@contextlib.contextmanager
def virtual_robot(args: argparse.Namespace, log: Path) -> Iterator[str]:
    with process([*CLI, "robot-sim", "--env", ENV, "--mode", args.mode, *sim_options(args, log)]) as robot:
        yield robot.stdout.readline().strip()


@contextlib.contextmanager
def host_build(args: argparse.Namespace, log: Path, image: str = "robopg-fw-host") -> Iterator[str]:
    with process([str(FIRMWARE / image), "--plant-pty"]) as firmware:
        link, plant_port = firmware.stdout.readline().strip(), firmware.stdout.readline().strip()
        with plant(plant_port, args, log):
            yield link


@contextlib.contextmanager
def qemu(args: argparse.Namespace, log: Path, image: str = "robopg-fw.elf") -> Iterator[str]:
    board = QemuBoard(FIRMWARE / args.board / image, machine=args.board, uarts=2)
    with board, plant(board.paths[1], args, log):
        yield board.paths[0]


def run(command: list[str], port: str) -> str:
    """Run a robopg ``command`` on ``port``: its output."""
    ran = subprocess.run([*CLI, *command, "--port", port], capture_output=True, text=True, timeout=3600, check=False)
    if ran.returncode != 0:
        raise SystemExit(f"{command[0]} failed on {port}: {ran.stdout[-500:]} {ran.stderr[-500:]}")
    return ran.stdout


def episodes(command: list[str], port: str, args: argparse.Namespace) -> list[float]:
    """Run ``robopg deploy`` or ``robopg supervise`` (``command``) for ``--episodes`` on ``port``: the returns."""
    return [float(r) for r in EPISODE.findall(run([*command, "--episodes", str(args.episodes)], port))]


def in_policy_mode(folder: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Episodes of the POLICY-mode firmware, the host build's and the port's under QEMU (only the latter with
    ``--only-mcu``), supervised with ``robopg supervise``: their returns."""
    code = folder / "policy_c"
    subprocess.run([*CLI, "export", str(FIXTURE), "--format", "c", "--out", str(code)], check=True, capture_output=True)
    subprocess.run(
        ["make", "-C", str(FIRMWARE.parent), "host-policy", "port-policy", f"POLICY={code}", f"BOARD={args.board}"],
        check=True,
        capture_output=True,
    )
    lockstep_plant = argparse.Namespace(**{**vars(args), "mode": "lockstep"})  # stepped by the firmware's ticks
    robots = {"policy in QEMU": qemu(lockstep_plant, folder / "plant.csv", "robopg-fw-policy.elf")}
    if not args.only_mcu:
        robots["policy in host build"] = host_build(lockstep_plant, folder / "plant.csv", "robopg-fw-host-policy")
    results = {}
    for name, robot in robots.items():
        with robot as port:
            results[name] = episodes(["supervise", "--policy", str(folder / "policy.onnx")], port, args)
        show(name, results[name])
    return results


def finetune(folder: Path, args: argparse.Namespace) -> None:
    """A ``robopg finetune`` session on each robot: its outcome lines, and the commands its log shows outside the
    policy's action limits."""
    trained = folder / "run"  # the run folder as train-sim leaves it: training on the twin continues its resume state
    trained.mkdir()
    shutil.copyfile(FIXTURE, trained / "checkpoint.pt")
    shutil.copyfile(FIXTURE.with_suffix(".resume.pt"), trained / "resume.pt")
    settings = folder / "session.toml"
    settings.write_text("".join(f"{item.split('=', 1)[0]} = {item.split('=', 1)[1]}\n" for item in args.set))
    policy = folder / "policy.onnx"
    meta = OnnxPolicy(policy).metadata
    low, high = np.array(meta.action_low), np.array(meta.action_high)
    for name, robot in robots(args).items():
        log = folder / f"{name}.csv"
        with robot(args, log) as port:
            start = time.monotonic()
            out = run(["finetune", "--policy", str(policy), "--checkpoint", str(trained), "--out", str(folder / name),
                       "--episodes", str(args.episodes), "--steps", str(args.steps), "--config", str(settings)], port)
            seconds = time.monotonic() - start
        time.sleep(0.2)  # the robot's last log lines
        commands = CommandLog.read(log)
        outside = sum(bool(np.any(np.array(c.applied) < low) or np.any(np.array(c.applied) > high)) for c in commands)
        print(f"--- {name}: finetune, {args.episodes} robot episodes of {args.steps} steps, {args.mode}, "
              f"{seconds:.1f} s")
        print("\n".join(line for line in out.splitlines() if SESSION_LINE.search(line)))
        print(f"{name}'s log: {len(commands)} commands applied, {outside} outside [{low}, {high}]", flush=True)


Robot = Callable[[argparse.Namespace, Path], contextlib.AbstractContextManager[str]]  # a robot's port while it runs


def robots(args: argparse.Namespace) -> dict[str, Robot]:
    """The three robots by name (only QEMU with ``--only-mcu``)."""
    everything = {"virtual robot": virtual_robot, "C host build": host_build, f"QEMU {args.board}": qemu}
    return {name: robot for name, robot in everything.items() if robot is qemu or not args.only_mcu}


def show(name: str, returns: list[float]) -> None:
    print(f"{name:>20}: mean {np.mean(returns):7.2f}  returns " + " ".join(f"{r:.2f}" for r in returns), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("lockstep", "realtime"), default="lockstep")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--board", default="mps2-an385", help="mps2-an385 (Cortex-M3) or mps2-an386 (Cortex-M4F)")
    parser.add_argument("--gap", action="append", default=[], metavar="KEY=VALUE", help="reality gap, repeatable")
    parser.add_argument("--on-mcu", action="store_true", help="also the policy in the firmware (host build, QEMU)")
    parser.add_argument(
        "--only-mcu", action="store_true", help="only QEMU: the policy on the host and, with --on-mcu, on the MCU"
    )
    parser.add_argument("--finetune", action="store_true", help="robopg finetune sessions instead of deploy")
    parser.add_argument("--steps", type=int, default=250, help="with --finetune: steps per episode")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="with --finetune: a session or method setting (TOML value), repeatable")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        policy = Path(folder) / "policy.onnx"
        subprocess.run([*CLI, "export", str(FIXTURE), "--out", str(policy)], check=True, capture_output=True)
        if args.finetune:
            finetune(Path(folder), args)
            return 0
        rate = ["--rate", "0"] if args.mode == "lockstep" else []  # lockstep: as fast as the robot answers
        results = {}
        for name, robot in robots(args).items():
            with robot(args, Path(folder) / "robot.csv") as port:
                results[name] = episodes(["deploy", "--policy", str(policy), *rate], port, args)
            show(name, results[name])
        if args.on_mcu:
            results |= in_policy_mode(Path(folder), args)
    print(
        f"{args.mode}, {args.episodes} episodes, gap {args.gap or 'none'}: mean return against the virtual robot's "
        "(the policy in the firmware: against the same firmware with the policy on the host)"
    )
    peers = {"policy in QEMU": f"QEMU {args.board}", "policy in host build": "C host build"}
    for name, returns in results.items():
        peer = results[peers.get(name, f"QEMU {args.board}" if args.only_mcu else "virtual robot")]
        print(
            f"{name:>20}: {np.mean(returns) / np.mean(peer):.4f}  (largest episode difference "
            f"{np.max(np.abs(np.array(returns) - peer)):.3g})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
