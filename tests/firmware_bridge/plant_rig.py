"""The C firmware with the swing-up plant on its plant line, for the tests: the host build or the Cortex-M port
under QEMU, a PlantServer logging every actuator command, and a link on the firmware's host line."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from firmware_bridge.device import AppliedCommand
from firmware_bridge.link import RobotLink
from firmware_bridge.qemu import QemuBoard
from sim.plant_server import PlantServer
from sim.virtual_robot import CommandLog, RobotSimConfig

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware_bridge" / "firmware"
SWING_UP = "robopg/CartPoleSwingUp-v0"
SWING_UP_FIXTURE = ROOT / "tests" / "robopg" / "fixtures" / "swingup_ddpg.pt"  # DDPG, [64, 64] actor, trained
ROBOPG = [sys.executable, "-m", "robopg.cli"]

def make(*targets: str) -> None:
    """``make -C firmware_bridge/firmware targets``; the test fails with make's output if it does."""
    built = subprocess.run(["make", "-C", str(FIRMWARE), *targets], capture_output=True, text=True, timeout=300,
                           check=False)
    assert built.returncode == 0, built.stdout + built.stderr


class PlantInLoop:
    """Firmware with the swing-up plant on its plant line (a PlantServer thread logging every actuator command to
    ``log``) and a link open on its host line, ``port``. ``stop_firmware`` ends the firmware."""

    def __init__(self, port: str, plant_port: str, log: Path, stop_firmware: Callable[[], object]) -> None:
        self.port, self.log, self._stop_firmware = port, log, stop_firmware
        try:
            self.server = PlantServer(RobotSimConfig(SWING_UP, log_path=log), plant_port)
        except BaseException:
            stop_firmware()
            raise
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()
        self.link = RobotLink.open(port, timeout=0.5)

    def commands(self) -> list[AppliedCommand]:
        return CommandLog.read(self.log)

    def close(self) -> None:
        self.link.close()
        self.server.stop()
        self.thread.join(timeout=5.0)
        self._stop_firmware()


def host_build_in_loop(log: Path, image: Path = FIRMWARE / "build" / "robopg-fw-host") -> PlantInLoop:
    """The C host build (``image``, built) with ``--plant-pty`` and the plant on its second pty."""
    firmware = subprocess.Popen([str(image), "--plant-pty"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
    assert firmware.stdout is not None

    def stop() -> None:
        firmware.terminate()
        firmware.wait(timeout=5.0)

    port, plant_port = firmware.stdout.readline().strip(), firmware.stdout.readline().strip()
    return PlantInLoop(port, plant_port, log, stop)


def qemu_in_loop(image: Path, log: Path, machine: str = "mps2-an385") -> PlantInLoop:
    """The Cortex-M port's ``image`` under QEMU, the plant on its UART1."""
    board = QemuBoard(image, machine=machine, uarts=2)
    return PlantInLoop(board.paths[0], board.paths[1], log, board.stop)


