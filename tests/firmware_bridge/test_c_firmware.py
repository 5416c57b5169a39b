"""The C reference firmware (firmware_bridge/firmware/): its unit tests pass, and its host build serves the
protocol on a pty to the Python link exactly as docs/protocol.md section 5 says.

The host build is a lockstep point mass of 1 kg on a rail: observation [x, v], action [force] in [-1, 1],
one semi-implicit Euler step of the control period per ACTION (v += u dt; x += v dt), terminal at the end
stops |x| >= end stop. Every test starts its own firmware process and terminates it in a finalizer.
"""

from __future__ import annotations

import math
import select
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.codes import Capabilities, FaultReason, MessageType, StatusFlags
from firmware_bridge.errors import RobotFault
from firmware_bridge.framing import Frame, encode_frame
from firmware_bridge.link import RobotLink
from firmware_bridge.messages import (
    ActionMsg,
    FaultMsg,
    HelloMsg,
    InfoMsg,
    Message,
    ObservationMsg,
    ResetMsg,
    decode_message,
    encode_message,
)

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware_bridge" / "firmware"
BINARY = FIRMWARE / "build" / "robopg-fw-host"

WATCHDOG = 0.200  # the host build's defaults
PERIOD = 0.020

pytestmark = pytest.mark.skipif(shutil.which("make") is None or (shutil.which("cc") or shutil.which("gcc")) is None,
                                reason="needs make and a C compiler")


def _make(*targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(FIRMWARE), *targets], capture_output=True, text=True, timeout=240,
                          check=False)


@pytest.fixture(scope="module")
def binary() -> Path:
    result = _make()
    assert result.returncode == 0, result.stdout + result.stderr
    assert BINARY.is_file()
    return BINARY


class HostFirmware:
    """One running host build: its process and the pty path it printed."""

    def __init__(self, binary: Path, args: tuple[str, ...]) -> None:
        self.proc = subprocess.Popen([str(binary), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], 5.0)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("/"):
            self.stop()
            raise RuntimeError(f"firmware printed no pty path: {line!r}")
        self.path = line

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=2.0)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode


@pytest.fixture
def start(binary: Path, request: pytest.FixtureRequest) -> Callable[..., tuple[HostFirmware, RobotLink]]:
    """``start(*args)``: a running firmware and a link to it (after HELLO); both closed in a finalizer."""

    def _start(*args: str) -> tuple[HostFirmware, RobotLink]:
        firmware = HostFirmware(binary, args)
        request.addfinalizer(firmware.stop)
        link = RobotLink.open(firmware.path, timeout=0.5)
        link.resend_after = link.timeout  # no resends: these tests count the firmware's answers one by one
        request.addfinalizer(link.close)
        link.hello()
        return firmware, link

    return _start


@pytest.fixture
def link(start: Callable[..., tuple[HostFirmware, RobotLink]]) -> RobotLink:
    return start()[1]


class PointMass:
    """The host build's plant, computed the same way (double precision, semi-implicit Euler)."""

    def __init__(self, dt: float = PERIOD) -> None:
        self.dt = dt
        self.x = self.v = 0.0

    def step(self, force: float) -> np.ndarray:
        u = min(1.0, max(-1.0, float(np.float32(force))))
        self.v += u * self.dt
        self.x += self.v * self.dt
        return np.array([self.x, self.v], dtype=np.float32)


def _raw_request(link: RobotLink, wire: bytes, timeout: float = 0.5) -> Message:
    """Send raw wire bytes and return the next message the firmware sends."""
    link.channel.send(wire)
    return decode_message(link.channel.receive(time.monotonic() + timeout))


def _expect_fault(exc: pytest.ExceptionInfo[RobotFault], reason: FaultReason, ref_seq: int | None = None) -> None:
    assert exc.value.reason == reason, exc.value
    if ref_seq is not None:
        assert exc.value.ref_seq == ref_seq


# ----- the C unit tests --------------------------------------------------------------------------------------


def test_c_unit_tests_pass() -> None:
    result = _make("test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_codec:" in result.stdout and "test_core:" in result.stdout
    assert result.stdout.count(" 0 failed") == 2, result.stdout


# ----- the host build over a pty -----------------------------------------------------------------------------


def test_hello(link: RobotLink) -> None:
    info = link.info
    assert info is not None
    assert (info.obs_dim, info.action_dim) == (2, 1)
    assert info.action_low.tolist() == [-1.0] and info.action_high.tolist() == [1.0]
    assert info.control_period == pytest.approx(PERIOD)
    assert info.watchdog_timeout == pytest.approx(WATCHDOG)
    assert info.firmware_id == "robopg-ref-host"
    assert info.capabilities == Capabilities.CAN_RESET | Capabilities.LOCKSTEP
    assert info.can_reset and info.lockstep
    assert link.heartbeat().flags == StatusFlags.NONE  # HELLO changed nothing


def test_steps_follow_the_physics(link: RobotLink) -> None:
    first = link.reset()
    assert first.values.tolist() == [0.0, 0.0]
    assert StatusFlags.RESET in first.flags
    plant = PointMass()
    t_ms = first.t_ms
    for force in (0.5, 0.5, 1.0, -0.25, 0.0, -1.0, 0.75):
        seq = link._seq
        obs = link.step([force])
        np.testing.assert_allclose(obs.values, plant.step(force), rtol=1e-6, atol=1e-9)
        assert obs.ack_seq == seq
        assert obs.flags == StatusFlags.WATCHDOG_ARMED
        assert obs.t_ms >= t_ms
        t_ms = obs.t_ms
    assert link.stats.dropped_frames == 0 and link.stats.timeouts == 0


def test_clipping(link: RobotLink) -> None:
    link.reset()
    plant = PointMass()
    obs = link.step([5.0])
    assert StatusFlags.CLIPPED in obs.flags
    np.testing.assert_allclose(obs.values, plant.step(1.0), rtol=1e-6)  # the plant felt the limit, not 5
    assert obs.values[1] == pytest.approx(1.0 * PERIOD)
    obs = link.step([-3.0])
    assert StatusFlags.CLIPPED in obs.flags
    np.testing.assert_allclose(obs.values, plant.step(-1.0), rtol=1e-6, atol=1e-9)
    assert obs.values[1] == pytest.approx(0.0, abs=1e-7)
    obs = link.step([1.0])  # exactly at the limit: not clipped
    assert StatusFlags.CLIPPED not in obs.flags
    np.testing.assert_allclose(obs.values, plant.step(1.0), rtol=1e-6)
    assert StatusFlags.CLIPPED not in link.heartbeat().flags


def test_estop_latches_until_clear(link: RobotLink) -> None:
    link.reset()
    plant = PointMass()
    link.step([1.0])
    before = link.step([1.0])
    plant.step(1.0)
    plant.step(1.0)
    status = link.estop()
    assert status.flags == StatusFlags.ESTOP  # watchdog disarmed
    seq = link._seq
    with pytest.raises(RobotFault) as exc:
        link.step([0.5])
    _expect_fault(exc, FaultReason.LATCHED, seq)
    assert exc.value.flags == StatusFlags.ESTOP
    with pytest.raises(RobotFault) as exc:
        link.reset()
    _expect_fault(exc, FaultReason.LATCHED)
    assert link.heartbeat().flags == StatusFlags.ESTOP
    assert link.clear().flags == StatusFlags.NONE
    # Nothing moved while latched: the next step continues from the state before the e-stop.
    after = link.step([0.0])
    np.testing.assert_allclose(after.values, plant.step(0.0), rtol=1e-6)
    assert after.values[1] == before.values[1]


def test_watchdog_trips_within_one_period(link: RobotLink) -> None:
    link.reset()
    sent = time.monotonic()
    seq = link._seq
    link.step([0.3])
    answered = time.monotonic()
    with pytest.raises(RobotFault) as exc:
        link.read_observation(timeout=1.0)  # silence: the next thing to arrive is the watchdog FAULT
    arrived = time.monotonic()
    _expect_fault(exc, FaultReason.WATCHDOG, seq)
    assert exc.value.detail == 0
    assert exc.value.flags == StatusFlags.FAULT
    assert arrived - sent >= WATCHDOG - 0.002  # not before the timeout
    assert arrived - answered <= WATCHDOG + PERIOD, f"FAULT after {arrived - answered:.3f} s"
    seq = link._seq
    with pytest.raises(RobotFault) as exc:
        link.step([0.3])
    _expect_fault(exc, FaultReason.LATCHED, seq)
    assert link.heartbeat().flags == StatusFlags.FAULT
    assert link.clear().flags == StatusFlags.NONE
    assert link.step([0.3]).flags == StatusFlags.WATCHDOG_ARMED


def test_heartbeat_does_not_feed_the_watchdog(link: RobotLink) -> None:
    link.step([0.1])
    start = time.monotonic()
    with pytest.raises(RobotFault) as exc:
        while time.monotonic() - start < 1.0:
            assert StatusFlags.WATCHDOG_ARMED in link.heartbeat().flags
            time.sleep(0.04)
    _expect_fault(exc, FaultReason.WATCHDOG)
    assert time.monotonic() - start <= WATCHDOG + PERIOD + 0.05


def test_reset(link: RobotLink) -> None:
    link.step([1.0])
    link.step([5.0])
    seq = link._seq
    obs = link.reset()
    assert obs.ack_seq == seq
    assert obs.values.tolist() == [0.0, 0.0]
    assert obs.flags == StatusFlags.RESET  # clipping and watchdog gone
    time.sleep(WATCHDOG + 2 * PERIOD)  # disarmed: no FAULT comes
    assert link.heartbeat().flags == StatusFlags.RESET
    obs = link.step([0.5])
    assert obs.flags == StatusFlags.WATCHDOG_ARMED  # RESET marks only the episode's first observation
    np.testing.assert_allclose(obs.values, PointMass().step(0.5), rtol=1e-6)


def test_terminated_at_the_end_stop(start: Callable[..., tuple[HostFirmware, RobotLink]]) -> None:
    _, link = start("--end-stop", "10")  # 10 mm
    link.reset()
    plant = PointMass()
    for _ in range(10):
        obs = link.step([1.0])
        expected = plant.step(1.0)
        assert (StatusFlags.TERMINATED in obs.flags) == (plant.x >= 0.010)
        np.testing.assert_allclose(obs.values, expected, rtol=1e-6)
    assert StatusFlags.TERMINATED in obs.flags  # actions are still applied past the stop
    assert StatusFlags.TERMINATED not in link.reset().flags


def test_options_set_period_and_watchdog(start: Callable[..., tuple[HostFirmware, RobotLink]]) -> None:
    _, link = start("--watchdog-ms", "50", "--period-us", "10000")
    assert link.info is not None
    assert link.info.watchdog_timeout == pytest.approx(0.050)
    assert link.info.control_period == pytest.approx(0.010)
    obs = link.step([1.0])
    np.testing.assert_allclose(obs.values, PointMass(0.010).step(1.0), rtol=1e-6)
    with pytest.raises(RobotFault) as exc:
        link.read_observation(timeout=0.5)
    _expect_fault(exc, FaultReason.WATCHDOG)


def test_refused_frames(link: RobotLink) -> None:
    answer = _raw_request(link, encode_frame(Frame(MessageType.HELLO, 0x1234, version=2)))
    assert answer == FaultMsg(FaultReason.UNSUPPORTED_VERSION, 1, 0x1234, answer.t_ms, StatusFlags.NONE)
    answer = _raw_request(link, encode_frame(Frame(0x42, 0x0102)))
    assert answer == FaultMsg(FaultReason.BAD_TYPE, 0x42, 0x0102, answer.t_ms, StatusFlags.NONE)
    answer = _raw_request(link, encode_frame(Frame(MessageType.INFO, 7)))  # a firmware -> host type
    assert isinstance(answer, FaultMsg) and (answer.reason, answer.detail) == (FaultReason.BAD_TYPE, 2)
    answer = _raw_request(link, encode_frame(Frame(MessageType.HELLO, 8, b"\x00")))
    assert isinstance(answer, FaultMsg) and (answer.reason, answer.detail, answer.ref_seq) == (
        FaultReason.BAD_LENGTH, 0, 8)
    answer = _raw_request(link, encode_message(ActionMsg((0.1, 0.2)), 9))  # the robot takes 1 value
    assert isinstance(answer, FaultMsg) and (answer.reason, answer.detail) == (FaultReason.BAD_LENGTH, 1)
    answer = _raw_request(link, encode_frame(Frame(MessageType.ACTION, 10, b"\x01\x00\x00")))  # cut short
    assert isinstance(answer, FaultMsg) and (answer.reason, answer.detail) == (FaultReason.BAD_LENGTH, 1)
    nan = struct.pack("<Bf", 1, math.nan)
    answer = _raw_request(link, encode_frame(Frame(MessageType.ACTION, 11, nan)))
    assert isinstance(answer, FaultMsg) and (answer.reason, answer.detail, answer.ref_seq) == (
        FaultReason.BAD_VALUE, 0, 11)
    # Refusals change nothing, and the session goes on.
    assert link.heartbeat().flags == StatusFlags.NONE
    assert link.step([0.5]).ack_seq == link._seq - 1


def test_garbage_before_a_valid_frame(link: RobotLink) -> None:
    hello = encode_message(HelloMsg(), 0x0BAD)
    corrupted = bytearray(encode_message(HelloMsg(), 0x0BAE))
    corrupted[-2] ^= 0x20  # CRC: dropped silently
    noise = b"\x13\x37\xff\x01garbage" + b"\x00\x05\x01\x00" + bytes(range(1, 256)) * 4  # overlong, no zero
    answer = _raw_request(link, noise + bytes(corrupted) + noise[:7] + hello)
    assert isinstance(answer, InfoMsg) and answer.ack_seq == 0x0BAD  # the first answer: noise got none
    # Garbage without the frame's leading delimiter: the frame is still received.
    answer = _raw_request(link, b"\x01\x02\x03" + hello)
    assert isinstance(answer, InfoMsg)
    info = link.hello()
    assert info.firmware_id == "robopg-ref-host"
    assert link.step([0.2]).flags == StatusFlags.WATCHDOG_ARMED


def test_stops_on_sigterm_and_on_stdin_eof(binary: Path, request: pytest.FixtureRequest) -> None:
    firmware = HostFirmware(binary, ())
    request.addfinalizer(firmware.stop)
    firmware.proc.send_signal(signal.SIGTERM)
    assert firmware.proc.wait(timeout=2.0) == 0
    assert b"frames in" in firmware.proc.stderr.read()
    firmware = HostFirmware(binary, ())
    request.addfinalizer(firmware.stop)
    firmware.proc.stdin.close()
    assert firmware.proc.wait(timeout=2.0) == 0


def test_bad_option_is_refused(binary: Path) -> None:
    result = subprocess.run([str(binary), "--watchdog-ms", "70000"], capture_output=True, text=True, timeout=5,
                            stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 2 and "usage" in result.stderr


def test_a_resent_command_is_answered_but_applied_once(link: RobotLink) -> None:
    """The same ACTION or RESET again (same seq: its answer was lost) holds, answered again, not applied twice."""
    plant = PointMass()
    reset = encode_message(ResetMsg(), 0x0100)
    first = _raw_request(link, reset)
    assert isinstance(first, ObservationMsg) and first.ack_seq == 0x0100
    action = encode_message(ActionMsg((1.0,)), 0x0101)
    once = _raw_request(link, action)
    again = _raw_request(link, action)
    assert isinstance(once, ObservationMsg) and isinstance(again, ObservationMsg)
    np.testing.assert_array_equal(once.values, plant.step(1.0))
    assert (again.ack_seq, again.values) == (0x0101, once.values)  # no second physics step
    nxt = _raw_request(link, encode_message(ActionMsg((1.0,)), 0x0102))
    assert isinstance(nxt, ObservationMsg)
    np.testing.assert_array_equal(nxt.values, plant.step(1.0))
    assert link.hello().firmware_id  # a new session: the same seq is a new command
    after_hello = _raw_request(link, encode_message(ActionMsg((1.0,)), 0x0102))
    assert isinstance(after_hello, ObservationMsg)
    np.testing.assert_array_equal(after_hello.values, plant.step(1.0))
    resent_reset = _raw_request(link, encode_message(ResetMsg(), 0x0200))
    resent_again = _raw_request(link, encode_message(ResetMsg(), 0x0200))
    assert isinstance(resent_reset, ObservationMsg) and isinstance(resent_again, ObservationMsg)
    assert StatusFlags.RESET in resent_again.flags and resent_again.values == resent_reset.values
