"""The firmware's Cortex-M port (firmware/ports/mps2) on QEMU's emulated MPS2 AN385 board (Cortex-M3).

The protocol vectors, the board watchdog and the exported policy run as test images on the target (results
over UART0); the firmware image serves the Python link on UART0 and drives the swing-up plant on UART1 (a
PlantServer): the same trajectory as the virtual robot, the protocol watchdog after a cut link (measured in
the plant's log), and a flood of random bytes that must neither reset nor stall it nor move the plant. Each
run is a few seconds of emulated time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.codes import FaultReason, StatusFlags
from firmware_bridge.device import AppliedCommand
from firmware_bridge.errors import RobotFault
from firmware_bridge.link import RobotLink, RobotStatus
from firmware_bridge.qemu import QEMU, QemuBoard, qemu_available, run_image
from sim.plant_server import PlantServer
from sim.virtual_robot import CommandLog, RobotSimConfig, in_memory_robot

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware_bridge" / "firmware"
BUILD = FIRMWARE / "build" / "mps2-an385"
ENV = "robopg/CartPoleSwingUp-v0"
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


class PlantInLoop:
    """The firmware image under QEMU with the swing-up plant on its UART1 (a PlantServer thread logging every
    actuator command) and a link on its UART0."""

    def __init__(self, image: Path, log: Path) -> None:
        self.board = QemuBoard(image, uarts=2)
        self.server = PlantServer(RobotSimConfig(ENV, log_path=log), self.board.paths[1])
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()
        self.link = RobotLink.open(self.board.paths[0], timeout=0.5)
        self.log = log

    def commands(self) -> list[AppliedCommand]:
        return CommandLog.read(self.log)

    def close(self) -> None:
        self.link.close()
        self.server.stop()
        self.thread.join(timeout=5.0)
        self.board.stop()


@pytest.fixture
def rig(images: Path, tmp_path: Path) -> Iterator[PlantInLoop]:
    loop = PlantInLoop(images / "robopg-fw.elf", tmp_path / "plant.csv")
    try:
        loop.link.hello(timeout=3.0)  # the firmware serves once the plant has answered its HELLO
        yield loop
    finally:
        loop.close()


@pytest.fixture(scope="module")
def policy_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained swing-up fixture's [64, 64] actor, exported as C."""
    from robopg.export import export_c

    fixture = ROOT / "tests" / "robopg" / "fixtures" / "swingup_ddpg.pt"
    return export_c(fixture, tmp_path_factory.mktemp("policy") / "policy_c").directory


@pytest.fixture(scope="module")
def policy_image(images: Path, policy_c: Path) -> Path:
    """The AN385's POLICY-mode firmware with the fixture's policy."""
    built = subprocess.run(
        ["make", "-C", str(FIRMWARE), "port-policy", f"POLICY={policy_c}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return images / "robopg-fw-policy.elf"


@pytest.fixture(scope="module")
def policy_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same policy as ONNX: the host side's."""
    from robopg.export import export_policy

    out = tmp_path_factory.mktemp("onnx") / "policy.onnx"
    return export_policy(ROOT / "tests" / "robopg" / "fixtures" / "swingup_ddpg.pt", out).path


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


def test_the_policy_runs_on_the_board_as_on_the_host(policy_image: Path, policy_onnx: Path, tmp_path: Path) -> None:
    from robopg.runtime.deploy import task_functions
    from robopg.runtime.onnx_policy import OnnxPolicy
    from robopg.runtime.supervise import supervise_episode

    act = OnnxPolicy(policy_onnx)
    loop = PlantInLoop(policy_image, tmp_path / "plant.csv")
    try:
        info = loop.link.hello(timeout=3.0)
        assert info.firmware_id == "robopg-ref-mps2-policy" and not info.lockstep
        episode = supervise_episode(loop.link, task_functions(ENV), act, steps=25)  # half a second at 50 Hz
        loop.link.estop()
    finally:
        loop.close()
    # The host-side policy from the same initial state, on the virtual robot: the same trajectory, within
    # what 1e-5 of the action range moves it in 25 steps.
    virtual = in_memory_robot(RobotSimConfig(ENV))
    virtual.hello()
    obs = virtual.reset().values
    np.testing.assert_array_equal(episode.observations[0], obs)
    for k in range(1, episode.steps + 1):
        obs = virtual.step(act(obs)).values
        np.testing.assert_allclose(episode.observations[k], obs, atol=1e-3)
    applied = [c for c in CommandLog.read(tmp_path / "plant.csv") if c.cause == "action"]
    assert len(applied) >= episode.steps and all(-10.0 <= c.applied[0] <= 10.0 for c in applied)


def test_robopg_supervise_runs_the_boards_policy(
    images: Path, policy_image: Path, policy_onnx: Path, tmp_path: Path
) -> None:
    cli = [sys.executable, "-m", "robopg.cli", "supervise", "--policy", str(policy_onnx), "--steps", "10"]
    for image, expected in ((policy_image, 0), (images / "robopg-fw.elf", 2)):
        loop = PlantInLoop(image, tmp_path / "plant.csv")
        loop.link.close()  # the command opens the port itself
        try:
            ran = subprocess.run(
                [*cli, "--port", loop.board.paths[0], "--episodes", "2"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            loop.close()
        assert ran.returncode == expected, ran.stdout + ran.stderr
        if expected == 0:
            assert "robopg-ref-mps2-policy" in ran.stdout and "over 2 episodes" in ran.stdout
            assert ran.stdout.count("over 10 steps") == 2
        else:  # a robot that waits for actions: one line, nothing moved
            assert ran.stderr.strip().splitlines()[-1].startswith("error: a POLICY-mode robot streams in real time")


def test_the_port_drives_the_plant_as_the_virtual_robot_does(rig: PlantInLoop) -> None:
    info = rig.link.info
    assert info is not None and info.firmware_id == "robopg-ref-mps2"
    assert (info.obs_dim, info.action_dim) == (5, 1) and info.lockstep and info.can_reset
    virtual = in_memory_robot(RobotSimConfig(ENV))
    virtual.hello()
    np.testing.assert_array_equal(rig.link.reset().values, virtual.reset().values)
    for force in np.random.default_rng(3).uniform(-12, 12, size=25):
        obs, expected = rig.link.step([force]), virtual.step([force])
        np.testing.assert_array_equal(obs.values, expected.values)
        assert obs.flags == expected.flags
    applied = [c.applied[0] for c in rig.commands() if c.cause == "action"]
    assert len(applied) == 25 and max(map(abs, applied)) <= 10.0


def test_a_cut_link_makes_the_plant_safe_in_time_and_the_robot_recovers(rig: PlantInLoop) -> None:
    link = rig.link
    link.reset()
    for _ in range(5):
        link.step([4.0])
    time.sleep(2.0)  # the link is cut for 2 s
    with pytest.raises(RobotFault) as fault:
        link.step([4.0])
    assert fault.value.reason == FaultReason.WATCHDOG
    commands = rig.commands()
    last = max(i for i, c in enumerate(commands) if c.cause == "action")
    safe = commands[last + 1]
    assert safe.cause == "safe" and safe.applied == (0.0,)
    # Measured from the plant's log: the safe action within the watchdog (200 ms) and one period (20 ms), plus
    # 50 ms for the plant process and QEMU being scheduled late on a shared machine (the log stamps a frame when
    # the plant handles it; 201-216 ms on a quiet run, up to 249 ms under a load of 8 on 2 cores).
    assert safe.t_ms - commands[last].t_ms <= 200 + 20 + 50
    assert StatusFlags.FAULT in _status(link).flags
    link.clear()
    assert StatusFlags.RESET in link.reset().flags
    assert link.step([1.0]).flags == StatusFlags.WATCHDOG_ARMED


def test_a_garbage_flood_neither_resets_nor_stalls_the_port(rig: PlantInLoop) -> None:
    link = rig.link
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
    commands = rig.commands()
    assert all(-10.0 <= c.applied[0] <= 10.0 for c in commands)  # nothing outside the limits, ever
    last = max(i for i, c in enumerate(commands) if c.cause == "action")  # the step before the flood
    assert [c.cause for c in commands[last + 1 :]] == ["safe"]  # since then, only the watchdog's safe action
