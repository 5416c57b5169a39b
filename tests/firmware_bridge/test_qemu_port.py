"""The firmware's Cortex-M port (firmware/ports/mps2) on QEMU's emulated MPS2 AN385 board (Cortex-M3).

The protocol vectors and the board watchdog run as test images on the target (results over UART0); the
firmware image serves the Python link over a pty: the point mass in lockstep, the protocol watchdog after a
cut link, and a flood of random bytes that must neither reset nor stall it. Each run is a second or two of
emulated time.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.codes import FaultReason, StatusFlags
from firmware_bridge.errors import RobotFault
from firmware_bridge.link import RobotLink, RobotStatus
from firmware_bridge.qemu import QEMU, QemuBoard, qemu_available, run_image

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware_bridge" / "firmware"
BUILD = FIRMWARE / "build" / "mps2-an385"
ICOUNT = 5  # 32 ns per instruction: about the 25 MHz the board's Cortex-M3 runs at

pytestmark = [
    pytest.mark.skipif(not qemu_available(), reason=f"needs {QEMU} (Debian: qemu-system-arm)"),
    pytest.mark.skipif(
        shutil.which("arm-none-eabi-gcc") is None,
        reason="needs arm-none-eabi-gcc (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi)",
    ),
]


@pytest.fixture(scope="module")
def images() -> Path:
    result = subprocess.run(
        ["make", "-C", str(FIRMWARE), "port"], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return BUILD


@pytest.fixture
def link(images: Path) -> Iterator[RobotLink]:
    with QemuBoard(images / "robopg-fw.elf") as board:
        robot = RobotLink.open(board.paths[0], timeout=0.5)
        try:
            robot.hello()
            yield robot
        finally:
            robot.close()


@pytest.fixture(scope="module")
def policy_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained swing-up fixture's [64, 64] actor, exported as C."""
    from robopg.export import export_c

    fixture = ROOT / "tests" / "robopg" / "fixtures" / "swingup_ddpg.pt"
    return export_c(fixture, tmp_path_factory.mktemp("policy") / "policy_c").directory


def _status(link: RobotLink, timeout: float | None = None) -> RobotStatus:
    """A HEARTBEAT's STATUS, past the FAULT frames (the refused ACTION's LATCHED) still on the line."""
    for _ in range(3):
        try:
            return link.heartbeat(timeout)
        except RobotFault:
            continue
    return link.heartbeat(timeout)


def test_protocol_vectors_pass_on_the_target(images: Path) -> None:
    result = run_image(images / "test_codec.elf", timeout=60, icount=ICOUNT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_codec:" in result.stdout and " 0 failed" in result.stdout, result.stdout


def test_board_watchdog_makes_a_stall_safe_then_resets(images: Path) -> None:
    result = run_image(images / "test_stall.elf", timeout=60, icount=ICOUNT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 stalls; stalling" in result.stdout and "after reset:" in result.stdout, result.stdout


@pytest.mark.parametrize("board", ["mps2-an385", "mps2-an386"])
def test_the_exported_policy_matches_onnxruntime_on_the_board(images: Path, policy_c: Path, board: str) -> None:
    built = subprocess.run(
        ["make", "-C", str(FIRMWARE), "port-policy", f"POLICY={policy_c}", f"BOARD={board}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    result = run_image(FIRMWARE / "build" / board / "test_policy.elf", machine=board, timeout=120, icount=0)
    assert result.returncode == 0, result.stdout + result.stderr  # within the export's tolerance
    assert "test_policy: 456 observations" in result.stdout and "hidden [64, 64]" in result.stdout


def test_the_port_serves_the_link(link: RobotLink) -> None:
    info = link.info
    assert info is not None and info.firmware_id == "robopg-ref-mps2"
    assert (info.obs_dim, info.action_dim) == (2, 1) and info.lockstep and info.can_reset
    assert link.reset().values.tolist() == [0.0, 0.0]
    x = v = 0.0
    for force in (0.5, 1.0, -0.25, 3.0):
        obs = link.step([force])
        v += min(force, 1.0) * 0.02
        x += v * 0.02
        np.testing.assert_allclose(obs.values, [x, v], rtol=1e-6, atol=1e-9)
        assert (StatusFlags.CLIPPED in obs.flags) == (force > 1.0)


def test_a_cut_link_trips_the_watchdog_and_the_robot_recovers(link: RobotLink) -> None:
    link.reset()
    link.step([1.0])
    time.sleep(0.5)  # no ACTION for more than the 200 ms watchdog
    with pytest.raises(RobotFault) as fault:
        link.step([1.0])
    assert fault.value.reason == FaultReason.WATCHDOG
    assert StatusFlags.FAULT in _status(link).flags
    link.clear()
    first = link.reset()
    assert StatusFlags.RESET in first.flags and first.values.tolist() == [0.0, 0.0]
    assert link.step([0.5]).values[1] == pytest.approx(0.01)


def test_a_garbage_flood_neither_resets_nor_stalls_the_port(link: RobotLink) -> None:
    link.reset()
    before = link.step([1.0])
    noise = np.random.default_rng(7).integers(0, 256, size=11520, dtype=np.uint8).tobytes()
    start = time.monotonic()
    for sent in range(0, len(noise), 256):  # at the line's full rate: 115200 baud, 10 bits a byte
        link.channel.send(noise[sent : sent + 256])
        time.sleep(max(0.0, start + (sent + 256) / 11520 - time.monotonic()))
    link.channel.send(b"\x00")  # ends whatever partial frame the noise left
    # Past the watchdog's FAULT (the flood outlasted it), and whatever of the flood the pty still holds: QEMU
    # takes bytes as fast as the emulated UART does, which a busy host can make slower than the line.
    status = _status(link, timeout=3.0)
    assert link.hello().firmware_id == "robopg-ref-mps2"
    assert status.t_ms > before.t_ms + 900  # the clock ran on through the flood: no reset
    # The plant has held the safe force (0) since the watchdog tripped: nothing in the noise moved it.
    link.clear()
    after = link.step([0.0])
    assert after.values[1] == pytest.approx(before.values[1])
