"""RobotLink against a scripted fake firmware on the far end of a pseudo-terminal or a TCP socket.

The fake reads frames in a thread and answers each one with whatever bytes the test's script returns, so
every test decides exactly what the link sees: answers, noise, gaps, late frames, silence, a hang-up.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import pytest

from firmware_bridge import cobs
from firmware_bridge import messages as msg
from firmware_bridge.codes import Capabilities, FaultReason, MessageType, StatusFlags
from firmware_bridge.errors import (
    LinkClosed,
    LinkTimeout,
    MalformedMessage,
    RobotFault,
    UnknownMessageType,
    UnsupportedVersion,
)
from firmware_bridge.framing import Frame, FrameDecoder, encode_frame, encode_payload
from firmware_bridge.link import RobotLink

CLOSE = object()  # a script's answer meaning: hang up now
Answer = bytes | object
Script = Callable[["FakeFirmware", Frame], Answer]

INFO = dict(obs_dim=3, action_dim=2, capabilities=Capabilities.LOCKSTEP | Capabilities.CAN_RESET,
            control_period_us=20_000, watchdog_ms=100, action_low=(-1.0, -2.0), action_high=(1.0, 2.0),
            firmware_id="fake-fw 0.1")


class FakeFirmware:
    """Answers every frame it receives with ``script(self, frame)``; keeps its own sequence numbers."""

    def __init__(self, read: Callable[[], bytes], write: Callable[[bytes], None], close: Callable[[], None],
                 fileno: int, script: Script) -> None:
        self._read, self._write, self._close, self._fileno = read, write, close, fileno
        self.script = script
        self.seq = 0
        self.received: list[Frame] = []
        self.error: BaseException | None = None
        self.closed = False
        self._stop = threading.Event()
        self._hang_up = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def frame(self, message: msg.Message, seq: int | None = None) -> bytes:
        """``message`` as a wire frame with the next sequence number (or ``seq``, which also moves the counter)."""
        seq = self.seq if seq is None else seq
        self.seq = (seq + 1) & 0xFFFF
        return msg.encode_message(message, seq)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        assert not self._thread.is_alive()
        self._close_once()
        if self.error is not None:
            raise self.error

    def hang_up(self) -> None:
        """Close the firmware's end now (the thread does it, so no descriptor is closed under its select)."""
        self._hang_up.set()
        self._thread.join(timeout=2)
        assert self.closed

    def _close_once(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()

    def _run(self) -> None:
        decoder = FrameDecoder()
        try:
            while not self._stop.is_set():
                if self._hang_up.is_set():
                    self._close_once()
                    return
                if not select.select([self._fileno], [], [], 0.01)[0]:
                    continue
                try:
                    data = self._read()
                except OSError:  # the link closed its end
                    return
                if not data:
                    return
                for item in decoder.feed(data):
                    if isinstance(item, Frame):
                        self.received.append(item)
                        answer = self.script(self, item)
                        if answer is CLOSE:
                            self._close_once()
                            return
                        if answer:
                            assert isinstance(answer, bytes)
                            self._write(answer)
        except BaseException as error:  # surfaced by stop()
            self.error = error


def pty_pair(script: Script, timeout: float, busy_poll: bool = False) -> tuple[RobotLink, FakeFirmware]:
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line discipline: a byte-clean line like a UART
    link = RobotLink.open(os.ttyname(slave), timeout=timeout, busy_poll=busy_poll)
    os.close(slave)  # only the link holds the slave now, so the fake's reads fail (EIO) once the link closes
    fake = FakeFirmware(lambda: os.read(master, 4096), lambda data: _write_all(master, data),
                        lambda: os.close(master), master, script)
    return link, fake


def socket_pair(script: Script, timeout: float, busy_poll: bool = False) -> tuple[RobotLink, FakeFirmware]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        link = RobotLink.open(f"socket://127.0.0.1:{port}", timeout=timeout, busy_poll=busy_poll)
        conn, _ = server.accept()
    fake = FakeFirmware(lambda: conn.recv(4096), conn.sendall, conn.close, conn.fileno(), script)
    return link, fake


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


Connect = Callable[..., tuple[RobotLink, FakeFirmware]]
# Each kind of port, with the transport sleeping until bytes arrive and with it polling for them.
VIAS = pytest.mark.parametrize("via", [pty_pair, socket_pair, partial(pty_pair, busy_poll=True),
                                       partial(socket_pair, busy_poll=True)],
                               ids=["pty", "socket", "pty-poll", "socket-poll"])


@pytest.fixture
def connect() -> Iterator[Connect]:
    """``connect(script, timeout=0.5, via=pty_pair, resend=False)``: a link and its fake firmware, both torn down
    after. Without ``resend`` the link never resends (its first resend would fall at the deadline), so that the
    exchanges these tests count do not depend on how fast a loaded machine runs the fake firmware's thread."""
    opened: list[tuple[RobotLink, FakeFirmware]] = []

    def make(script: Script, timeout: float = 0.5, via: Callable = pty_pair,
             resend: bool = False) -> tuple[RobotLink, FakeFirmware]:
        opened.append(via(script, timeout))
        if not resend:
            opened[-1][0].resend_after = timeout
        return opened[-1]

    yield make
    for link, fake in opened:
        link.close()
        fake.stop()


def lockstep_robot(fake: FakeFirmware, frame: Frame) -> Answer:
    """A well-behaved lockstep firmware: INFO, OBSERVATION (action values and their sum), STATUS."""
    message = msg.decode_message(frame)
    match frame.type:
        case MessageType.HELLO:
            return fake.frame(msg.InfoMsg(ack_seq=frame.seq, **INFO))
        case MessageType.ACTION:
            assert isinstance(message, msg.ActionMsg)
            values = (*message.values, sum(message.values))
            return fake.frame(msg.ObservationMsg(frame.seq, 1000 + frame.seq, StatusFlags.WATCHDOG_ARMED, values))
        case MessageType.HEARTBEAT | MessageType.ESTOP | MessageType.CLEAR:
            return fake.frame(msg.StatusMsg(frame.seq, 7, StatusFlags.NONE))
    return b""


def status(fake: FakeFirmware, ack_seq: int, seq: int | None = None) -> bytes:
    return fake.frame(msg.StatusMsg(ack_seq, 0, StatusFlags.NONE), seq)


# ----- round trips -----------------------------------------------------------------------------------


@VIAS
def test_hello_then_step_round_trip(connect: Connect, via: Callable) -> None:
    link, fake = connect(lockstep_robot, via=via)
    info = link.hello()
    assert (info.obs_dim, info.action_dim, info.firmware_id) == (3, 2, "fake-fw 0.1")
    assert info.lockstep and info.can_reset
    assert info.control_period == pytest.approx(0.02) and info.watchdog_timeout == pytest.approx(0.1)
    np.testing.assert_array_equal(info.action_low, [-1.0, -2.0])
    np.testing.assert_array_equal(info.action_high, [1.0, 2.0])

    obs = link.step([0.25, -0.5])
    assert (obs.seq, obs.ack_seq, obs.t_ms, obs.flags) == (1, 1, 1001, StatusFlags.WATCHDOG_ARMED)
    np.testing.assert_array_equal(obs.values, np.float32([0.25, -0.5, -0.25]))
    assert [frame.seq for frame in fake.received] == [0, 1]
    assert msg.decode_message(fake.received[1]) == msg.ActionMsg((0.25, -0.5))

    with pytest.raises(ValueError, match="takes 2"):
        link.step([1.0, 2.0, 3.0])  # checked against INFO before anything is sent
    with pytest.raises(ValueError, match="non-finite"):
        link.step([np.nan, 0.0])
    assert link.heartbeat().ack_seq == 2  # the refused actions used no sequence numbers

    stats = link.stats
    assert (stats.frames_sent, stats.frames_received, stats.rtt.count) == (3, 3, 3)
    answers = [(msg.InfoMsg(0, **INFO), 0),
               (msg.ObservationMsg(1, 1001, StatusFlags.WATCHDOG_ARMED, (0.25, -0.5, -0.25)), 1),
               (msg.StatusMsg(2, 7, StatusFlags.NONE), 2)]
    assert stats.bytes_received == sum(len(msg.encode_message(message, seq)) for message, seq in answers)
    assert (stats.crc_errors, stats.malformed_frames, stats.rejected_messages, stats.dropped_frames,
            stats.late_frames, stats.timeouts) == (0, 0, 0, 0, 0, 0)


def test_streamed_observations_before_the_answer_are_skipped(connect: Connect) -> None:
    """A real-time firmware streams observations; step() waits for the one that acknowledges its action."""

    def streaming(fake: FakeFirmware, frame: Frame) -> Answer:
        if frame.type == MessageType.ACTION:
            older = fake.frame(msg.ObservationMsg(0, 10, StatusFlags.NONE, (0.0, 0.0, 0.0)))
            return older + fake.frame(msg.ObservationMsg(frame.seq, 30, StatusFlags.NONE, (1.0, 2.0, 3.0)))
        return lockstep_robot(fake, frame)

    link, fake = connect(streaming)
    link.hello()
    obs = link.step([0.0, 0.0])
    assert (obs.ack_seq, obs.t_ms) == (1, 30)
    assert link.stats.skipped_observations == 1
    fake.script = lambda fake, frame: fake.frame(msg.ObservationMsg(1, 50, StatusFlags.NONE, (4.0, 5.0, 6.0)))
    link.send_action([0.0, 0.0])
    assert link.read_observation().t_ms == 50  # whatever it answers


# ----- timeouts and late answers ---------------------------------------------------------------------


@VIAS
def test_silent_peer_times_out_on_time(connect: Connect, via: Callable) -> None:
    link, fake = connect(lambda fake, frame: b"", via=via, resend=True)
    # Sent at 0, resent after 10 ms and then every 20 ms while the deadline allows: at most 11 and 3 sends.
    for seq, (timeout, most) in enumerate(((0.2, 11), (0.05, 3))):
        start = time.monotonic()
        with pytest.raises(LinkTimeout, match="HeartbeatMsg"):
            link.heartbeat(timeout=timeout)
        assert timeout <= time.monotonic() - start < timeout + 0.15
        sends = [frame.seq for frame in fake.received if frame.seq == seq]
        assert 2 <= len(sends) <= most
    assert link.stats.timeouts == 2
    assert link.stats.resends == len(fake.received) - 2


def test_late_answers_are_counted_and_skipped(connect: Connect) -> None:
    """Each answer is held back until the next request arrives, so it is late without any race."""
    held: list[bytes] = []

    def one_behind(fake: FakeFirmware, frame: Frame) -> Answer:
        late, held[:] = b"".join(held), []
        match frame.type:
            case MessageType.HEARTBEAT if frame.seq == 0:
                held.append(status(fake, frame.seq))
            case MessageType.ACTION:
                held.append(fake.frame(msg.ObservationMsg(frame.seq, 0, StatusFlags.NONE, (0.0,))))
            case MessageType.CLEAR:  # a refusal of a timed-out request is late too, not a fault
                held.append(fake.frame(msg.FaultMsg(FaultReason.LATCHED, 0, frame.seq, 0, StatusFlags.ESTOP)))
            case _:
                return late + status(fake, frame.seq)
        return late

    link, _ = connect(one_behind)
    requests = (link.heartbeat, lambda timeout: link.step([0.0], timeout=timeout), link.clear)
    for host_seq, request in zip((0, 2, 4), requests, strict=True):
        with pytest.raises(LinkTimeout, match=f"#{host_seq} "):
            request(timeout=0.05)
        before = link.stats.late_frames
        answer = link.heartbeat()  # brings the late answer, then its own
        assert answer.ack_seq == host_seq + 1 and link.stats.late_frames == before + 1
    assert (link.stats.late_frames, link.stats.timeouts, link.stats.skipped_observations) == (3, 3, 0)
    assert link.stats.rtt.count == 3


def test_a_watchdog_fault_is_raised_even_if_it_names_a_timed_out_action(connect: Connect) -> None:
    def trips(fake: FakeFirmware, frame: Frame) -> Answer:
        if frame.type == MessageType.HEARTBEAT:  # the watchdog event names the action that never got an answer
            return fake.frame(msg.FaultMsg(FaultReason.WATCHDOG, 0, 0, 500, StatusFlags.FAULT))
        return b""

    link, _ = connect(trips)
    with pytest.raises(LinkTimeout):
        link.step([0.0], timeout=0.05)
    with pytest.raises(RobotFault) as caught:
        link.heartbeat()
    assert (caught.value.reason, caught.value.ref_seq, caught.value.flags) == (
        FaultReason.WATCHDOG, 0, StatusFlags.FAULT)
    assert link.stats.late_frames == 0


# ----- sequence gaps, noise, rejected messages ---------------------------------------------------------


def test_gaps_in_the_peer_sequence_are_counted_as_dropped_frames(connect: Connect) -> None:
    # 1 -> 4 loses 2; 4 -> 0xFFFE is a jump backwards (a restart, not loss); 0xFFFF -> 2 wraps and loses 2;
    # HELLO starts the count afresh, so 2 -> 40 is not a loss; 40 -> 42 loses 1.
    peer_seqs = iter([0, 1, 4, 0xFFFE, 0xFFFF, 2, 40, 42])

    def skipping(fake: FakeFirmware, frame: Frame) -> Answer:
        if frame.type == MessageType.HELLO:
            return fake.frame(msg.InfoMsg(frame.seq, **INFO), next(peer_seqs))
        return status(fake, frame.seq, next(peer_seqs))

    link, _ = connect(skipping)
    assert [link.heartbeat().seq for _ in range(6)] == [0, 1, 4, 0xFFFE, 0xFFFF, 2]
    assert link.stats.dropped_frames == 4
    link.hello()
    assert link.heartbeat().seq == 42
    assert link.stats.dropped_frames == 5


def test_crc_errors_and_garbage_are_counted_and_the_next_frame_gets_through(connect: Connect) -> None:
    def noisy(fake: FakeFirmware, frame: Frame) -> Answer:
        payload = encode_payload(Frame(MessageType.STATUS, 99, bytes(8)))
        bad_crc = b"\x00" + cobs.encode(payload[:-1] + bytes([payload[-1] ^ 0x10])) + b"\x00"
        bad_cobs = b"\x00\x05\x11\x00"  # code 05 announces 4 bytes, 1 follows
        no_delimiter = b"\xff\xfe\x13"  # cut short; the next frame's leading 00 ends it
        return bad_crc + bad_cobs + no_delimiter + status(fake, frame.seq)

    link, _ = connect(noisy)
    assert link.heartbeat().ack_seq == 0
    stats = link.stats
    assert (stats.crc_errors, stats.malformed_frames, stats.frames_received) == (1, 2, 1)
    assert stats.dropped_frames == 0


def test_wrong_version_and_unknown_type_are_rejected(connect: Connect) -> None:
    answers = iter([
        encode_frame(Frame(MessageType.INFO, 0, b"", version=2)),
        encode_frame(Frame(0x42, 1, b"")),
        encode_frame(Frame(MessageType.STATUS, 2, bytes(7))),
    ])
    link, _ = connect(lambda fake, frame: next(answers))
    with pytest.raises(UnsupportedVersion) as caught:
        link.hello()
    assert (caught.value.version, caught.value.supported) == (2, 1)
    with pytest.raises(UnknownMessageType):
        link.heartbeat()
    with pytest.raises(MalformedMessage, match="STATUS body of 7 bytes"):
        link.heartbeat()
    assert link.stats.rejected_messages == 3


def test_fault_answers_raise_robot_fault(connect: Connect) -> None:
    def refuses(fake: FakeFirmware, frame: Frame) -> Answer:
        if frame.type == MessageType.RESET:
            return fake.frame(msg.FaultMsg(FaultReason.RESET_UNSUPPORTED, 0, frame.seq, 5, StatusFlags.NONE))
        if frame.type == MessageType.ACTION:
            return fake.frame(msg.FaultMsg(FaultReason.LATCHED, 0, frame.seq, 6, StatusFlags.ESTOP))
        return fake.frame(msg.FaultMsg(0x7E, 9, frame.seq, 7, StatusFlags.NONE))  # a reason from a newer firmware

    link, _ = connect(refuses)
    with pytest.raises(RobotFault) as caught:
        link.reset()
    assert (caught.value.reason, caught.value.ref_seq) == (FaultReason.RESET_UNSUPPORTED, 0)
    with pytest.raises(RobotFault, match="LATCHED") as caught:
        link.step([1.0])
    assert (caught.value.ref_seq, caught.value.flags) == (1, StatusFlags.ESTOP)
    with pytest.raises(RobotFault, match="reason 0x7e") as caught:
        link.heartbeat()
    assert (caught.value.reason, caught.value.detail) == (0x7E, 9)


# ----- a peer that goes away -----------------------------------------------------------------------------


@VIAS
def test_peer_hanging_up_mid_request_gives_link_closed_promptly(connect: Connect, via: Callable) -> None:
    # What pyserial does: for a pty whose master closed, in_waiting (TIOCINQ) fails with EIO or read() raises
    # "device reports readiness to read but returned no data"; for a socket, read() raises "socket
    # disconnected". The transport turns each into LinkClosed within one read slice.
    link, _ = connect(lambda fake, frame: CLOSE, timeout=5.0, via=via)
    start = time.monotonic()
    with pytest.raises(LinkClosed) as caught:
        link.heartbeat()
    assert time.monotonic() - start < 1.0  # not the 5 s timeout
    assert link.transport.url in str(caught.value)
    with pytest.raises(LinkClosed):  # and it stays closed, sending or receiving
        link.heartbeat()
    assert time.monotonic() - start < 2.0


@VIAS
def test_peer_gone_before_the_request_gives_link_closed(connect: Connect, via: Callable) -> None:
    link, fake = connect(lockstep_robot, timeout=5.0, via=via)
    fake.hang_up()
    start = time.monotonic()
    with pytest.raises(LinkClosed):
        link.heartbeat()
    assert time.monotonic() - start < 1.0


def test_opening_a_missing_port_gives_link_closed_naming_it() -> None:
    with pytest.raises(LinkClosed, match="/dev/robopg-no-such-port"):
        RobotLink.open("/dev/robopg-no-such-port")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"socket://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(LinkClosed, match=url):
        RobotLink.open(url)
