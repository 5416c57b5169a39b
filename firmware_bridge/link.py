"""The host's side of the link: typed requests and answers over any :class:`Transport`.

Every request carries the host's sequence number and the firmware answers it with exactly one frame
whose ``ack_seq`` (or, for a FAULT, ``ref_seq``) names it. A request left unanswered is sent again, the
same frame with the same sequence number, until its deadline: first after twice the smoothed round trip
(at least ``resend_after``), then after waits that double up to twice that (a bounded backoff: enough
sends fit in a watchdog's time to ride out a lossy line); the firmware answers a resent
command without applying it twice (docs/protocol.md, section 5). A command's deadline is the robot's
watchdog timeout at most: past it the robot has gone to its safe state, and a resend would be refused.
Answers that come after their request timed out are counted as late and skipped; any other FAULT is
raised as :class:`RobotFault`. A link is not thread-safe: one thread owns it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike

from firmware_bridge import messages as msg
from firmware_bridge.channel import FrameChannel
from firmware_bridge.codes import EVENT_REASONS, Capabilities, StatusFlags
from firmware_bridge.errors import LinkTimeout, ProtocolError, RobotFault
from firmware_bridge.framing import Frame
from firmware_bridge.stats import LinkStats
from firmware_bridge.transport import SerialTransport, Transport

# A jump this large in the firmware's sequence numbers is a restart, not lost frames.
_MAX_SEQ_GAP = 1024
# Requests that timed out, remembered so that their answers can be told apart as late.
_ABANDONED_MEMORY = 64
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # the wire carries float32

AnswerT = TypeVar("AnswerT", msg.InfoMsg, msg.ObservationMsg, msg.StatusMsg)


@dataclass(frozen=True, eq=False)
class RobotInfo:
    """What the firmware said about itself in INFO, and the protocol version it said it in."""

    protocol_version: int  # the INFO frame's version byte: codes.PROTOCOL_VERSION, the only one the link reads
    obs_dim: int
    action_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    control_period: float  # seconds
    watchdog_timeout: float | None  # seconds; None: no watchdog
    firmware_id: str
    capabilities: Capabilities

    @property
    def can_reset(self) -> bool:
        return Capabilities.CAN_RESET in self.capabilities

    @property
    def lockstep(self) -> bool:
        """True if the plant advances one control period per ACTION (a simulator); else it runs in real time."""
        return Capabilities.LOCKSTEP in self.capabilities


@dataclass(frozen=True, eq=False)
class Observation:
    """One OBSERVATION: the firmware's frame ``seq``, the last ACTION applied ``ack_seq``, its clock ``t_ms``."""

    seq: int
    ack_seq: int
    t_ms: int
    flags: StatusFlags
    values: np.ndarray  # float32, read-only


@dataclass(frozen=True)
class RobotStatus:
    """A STATUS answer: firmware clock and flags."""

    seq: int
    ack_seq: int
    t_ms: int
    flags: StatusFlags


class RobotLink:
    """Talk to actuator firmware (or the virtual robot) over a serial link.

    Open with :meth:`open` from a pyserial URL, or pass any :class:`Transport`; call :meth:`hello` first so
    the link knows the robot's sizes and checks actions against them. ``timeout`` is the default answer
    deadline in seconds; ``resend_after`` the shortest wait before a request is sent again (the round trips
    measured make it longer on a slow line); ``clock`` gives the deadlines (a test may pass a virtual one, as
    :class:`~firmware_bridge.memory.VirtualClock`).
    """

    def __init__(self, transport: Transport, *, timeout: float = 0.5, resend_after: float = 0.01,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < resend_after <= timeout:
            raise ValueError(f"need 0 < resend_after <= timeout, got {resend_after} and {timeout}")
        self.transport = transport
        self.channel = FrameChannel(transport)
        self.timeout, self.resend_after, self.clock = timeout, resend_after, clock
        # Smoothed round trip of answers that needed no resend (Karn's rule: the others may answer either send);
        # the first answer sets it whatever it needed (timed from the last send), so a slow line is learned at once.
        self._smoothed_rtt: float | None = None
        self.info: RobotInfo | None = None
        self._seq = 0
        self._peer_seq: int | None = None
        self._last_sent: tuple[int, bytes] | None = None  # the last request's seq and wire frame, to resend
        self._abandoned: deque[int] = deque(maxlen=_ABANDONED_MEMORY)

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115200, timeout: float = 0.5, busy_poll: bool = False,
             transport: Callable[[Transport], Transport] = lambda t: t) -> RobotLink:
        """Open ``url`` with pyserial's ``serial_for_url`` (a device path, a pty, ``loop://``, ``socket://h:p``);
        ``busy_poll``: see :class:`SerialTransport`; ``transport`` wraps the port (a fault injector, in tests)."""
        port = SerialTransport(url, baudrate=baudrate, write_timeout=max(timeout, 0.1), busy_poll=busy_poll)
        return cls(transport(port), timeout=timeout)

    @property
    def stats(self) -> LinkStats:
        return self.channel.stats

    # ----- requests ------------------------------------------------------------------------------

    def hello(self, timeout: float | None = None) -> RobotInfo:
        """Open a session: ask for INFO, remember it and return it."""
        self._peer_seq = None
        frame, info = self._request(msg.HelloMsg(), msg.InfoMsg, timeout)
        if not np.isfinite(info.action_low + info.action_high).all() or any(
            low > high for low, high in zip(info.action_low, info.action_high, strict=True)
        ):
            raise ProtocolError(f"firmware announced invalid action limits {info.action_low}..{info.action_high}")
        self.info = RobotInfo(
            protocol_version=frame.version,
            obs_dim=info.obs_dim,
            action_dim=info.action_dim,
            action_low=_frozen_array(info.action_low),
            action_high=_frozen_array(info.action_high),
            control_period=info.control_period_us / 1e6,
            watchdog_timeout=info.watchdog_ms / 1e3 if info.watchdog_ms else None,
            firmware_id=info.firmware_id,
            capabilities=info.capabilities,
        )
        return self.info

    def send_action(self, action: ArrayLike) -> int:
        """Send an ACTION without waiting; returns its sequence number (the ``ack_seq`` of the answer)."""
        return self._send(msg.ActionMsg(self._action_values(action)))

    def resend(self, seq: int) -> None:
        """Send the last request again, as it was (``seq`` names it); the firmware does not apply it twice."""
        if self._last_sent is None or self._last_sent[0] != seq:
            raise ValueError(f"#{seq} is not the last request sent")
        self.channel.send(self._last_sent[1])
        self.stats.resends += 1

    def step(self, action: ArrayLike, timeout: float | None = None) -> Observation:
        """Send an ACTION and return the OBSERVATION that answers it.

        With a lockstep firmware that is the state one control period after the action; with a real-time
        one it is the state sampled at the tick that applied the action (its effect shows from the next).
        """
        return self._observation(*self._request(msg.ActionMsg(self._action_values(action)), msg.ObservationMsg,
                                                         self.command_timeout(timeout)))

    def read_observation(self, timeout: float | None = None) -> Observation:
        """The next OBSERVATION, whatever it answers (a real-time firmware streams one per control period)."""
        deadline = self.clock() + self._timeout(timeout)
        while True:
            frame, message = self._receive(deadline)
            if isinstance(message, msg.ObservationMsg):
                return self._observation(frame, message)
            self._skip(message)

    def reset(self, timeout: float | None = None) -> Observation:
        """Start a new episode; returns its first observation (flag RESET). :class:`RobotFault` if it cannot."""
        return self._observation(*self._request(msg.ResetMsg(), msg.ObservationMsg, self.command_timeout(timeout)))

    def estop(self, timeout: float | None = None) -> RobotStatus:
        """Engage the e-stop latch; actuators stay safe until :meth:`clear`."""
        return self._status(*self._request(msg.EstopMsg(), msg.StatusMsg, timeout))

    def clear(self, timeout: float | None = None) -> RobotStatus:
        """Release the e-stop and fault latches."""
        return self._status(*self._request(msg.ClearMsg(), msg.StatusMsg, timeout))

    def heartbeat(self, timeout: float | None = None) -> RobotStatus:
        """Check the firmware is alive (does not feed its action watchdog)."""
        return self._status(*self._request(msg.HeartbeatMsg(), msg.StatusMsg, timeout))

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RobotLink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----- machinery -----------------------------------------------------------------------------

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def command_timeout(self, timeout: float | None = None) -> float:
        """A command's deadline: ``timeout``, else the link's cut to the watchdog's (the robot is safe past it)."""
        if timeout is not None or self.info is None or self.info.watchdog_timeout is None:
            return self._timeout(timeout)
        return min(self.timeout, self.info.watchdog_timeout)

    def _action_values(self, action: ArrayLike) -> tuple[float, ...]:
        values = np.asarray(action, dtype=np.float64).reshape(-1)
        if self.info is not None and values.size != self.info.action_dim:
            raise ValueError(f"action has {values.size} values, the robot takes {self.info.action_dim}")
        if not (np.abs(values) <= _FLOAT32_MAX).all():  # one pass on the control path; NaN fails it too
            finite = np.isfinite(values).all()
            problem = "values beyond the float32 range of the wire" if finite else "non-finite values"
            raise ValueError(f"action has {problem}: {values}")
        return tuple(values.astype(np.float32).tolist())

    def _send(self, message: msg.Message) -> int:
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        wire = msg.encode_message(message, seq)
        self.channel.send(wire)
        self._last_sent = (seq, wire)
        return seq

    def _request(self, message: msg.Message, answer: type[AnswerT], timeout: float | None) -> tuple[Frame, AnswerT]:
        """Send ``message`` and wait for its answer of type ``answer``, sending it again while none comes and the
        deadline allows; returns the answer and its frame."""
        seq = self._send(message)
        sent_at = last_sent_at = self.clock()
        deadline = sent_at + self._timeout(timeout)
        first_wait = max(self.resend_after, 2 * (self._smoothed_rtt or 0.0))
        wait, resends = first_wait, 0
        resend_at = sent_at + wait  # on a schedule from the first send, which also bounds the number of resends
        while True:
            try:
                frame, reply = self._receive(min(deadline, resend_at))
            except LinkTimeout:
                if resend_at < deadline and self.clock() < deadline:
                    self.resend(seq)
                    last_sent_at = self.clock()
                    resends, wait = resends + 1, min(2 * wait, 2 * first_wait)  # bounded backoff
                    resend_at += wait
                    continue
                self._abandoned.append(seq)
                self.stats.timeouts += 1
                raise LinkTimeout(f"no answer to {type(message).__name__} #{seq} within "
                                  f"{self._timeout(timeout)} s ({resends} resends)") from None
            if isinstance(reply, answer) and reply.ack_seq == seq:
                rtt = self.clock() - sent_at
                self.stats.rtt.record(rtt)
                if self._smoothed_rtt is None:
                    self._smoothed_rtt = self.clock() - last_sent_at
                elif not resends:
                    self._smoothed_rtt += 0.125 * (rtt - self._smoothed_rtt)
                return frame, reply
            self._skip(reply)

    def _receive(self, deadline: float) -> tuple[Frame, msg.Message]:
        """The next decodable message; FAULTs are raised unless they answer an abandoned request."""
        while True:
            frame = self.channel.receive(deadline)
            self._track_peer_seq(frame)
            try:
                message = msg.decode_message(frame)
            except ProtocolError as error:
                self.stats.count_rejected(error)
                raise
            if not isinstance(message, msg.FaultMsg):
                return frame, message
            if message.ref_seq in self._abandoned and message.reason not in EVENT_REASONS:
                self.stats.late_frames += 1
                continue
            raise RobotFault(message.reason, message.detail, message.ref_seq, message.flags, message.t_ms)

    def _skip(self, message: msg.Message) -> None:
        """Account for a message that is not the awaited answer."""
        ack = getattr(message, "ack_seq", None)
        if ack is not None and ack in self._abandoned:
            self.stats.late_frames += 1
        elif isinstance(message, msg.ObservationMsg):
            self.stats.skipped_observations += 1

    def _track_peer_seq(self, frame: Frame) -> None:
        if self._peer_seq is not None:
            gap = (frame.seq - self._peer_seq - 1) & 0xFFFF
            if gap < _MAX_SEQ_GAP:
                self.stats.dropped_frames += gap
        self._peer_seq = frame.seq

    def _observation(self, frame: Frame, message: msg.ObservationMsg) -> Observation:
        if self.info is not None and len(message.values) != self.info.obs_dim:
            raise ProtocolError(f"observation of {len(message.values)} values, INFO said {self.info.obs_dim}")
        return Observation(frame.seq, message.ack_seq, message.t_ms, message.flags, _frozen_array(message.values))

    @staticmethod
    def _status(frame: Frame, message: msg.StatusMsg) -> RobotStatus:
        return RobotStatus(frame.seq, message.ack_seq, message.t_ms, message.flags)


def _frozen_array(values: tuple[float, ...]) -> np.ndarray:
    array = np.array(values, dtype=np.float32)
    array.flags.writeable = False
    return array
