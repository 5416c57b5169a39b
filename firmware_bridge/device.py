"""The firmware's side of the protocol in Python: the behaviour docs/protocol.md specifies, over any plant.

The virtual robot (:mod:`sim.virtual_robot`) runs it on a simulator; the C reference firmware
(``firmware_bridge/firmware/``) is the same state machine for a microcontroller. The core knows no port
and no clock of its own: bytes go in, wire frames come out, and the millisecond clock is passed in, so
every rule (limits, latches, watchdog) is testable without a serial line or a wait.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from firmware_bridge import messages as msg
from firmware_bridge.codes import (
    FIRMWARE_TO_HOST,
    PROTOCOL_VERSION,
    Capabilities,
    FaultReason,
    MessageType,
    StatusFlags,
)
from firmware_bridge.errors import MalformedMessage, ProtocolError, UnknownMessageType, UnsupportedVersion
from firmware_bridge.framing import Frame, FrameDecoder
from firmware_bridge.stats import LinkStats


class Plant(Protocol):
    """What the firmware drives: sensors, actuators and, for a simulator, the physics clock."""

    terminated: bool  # in a terminal state (an end stop, a fall); actions are still applied

    def observe(self) -> np.ndarray:
        """The sensor values now."""

    def apply(self, action: np.ndarray) -> None:
        """Write the actuators; the command holds until the next write."""

    def advance(self) -> None:
        """Let one control period of time pass (a simulator steps its physics)."""

    def reset(self) -> None:
        """Start a new episode."""


@dataclass(frozen=True)
class DeviceConfig:
    """What the firmware announces in INFO and enforces."""

    obs_dim: int
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    control_period_us: int
    watchdog_ms: int  # 0: no watchdog
    firmware_id: str
    capabilities: Capabilities = Capabilities.CAN_RESET
    safe_action: tuple[float, ...] | None = None  # None: zeros, clipped into the limits

    def __post_init__(self) -> None:
        n = len(self.action_low)
        if not 0 < n <= msg.MAX_ACTION_DIM or len(self.action_high) != n:
            raise ValueError(f"action limits must have 1..{msg.MAX_ACTION_DIM} values each, low and high alike")
        if not all(math.isfinite(lo) and math.isfinite(hi) and lo <= hi
                   for lo, hi in zip(self.action_low, self.action_high, strict=True)):
            raise ValueError(f"action limits must be finite with low <= high: {self.action_low}..{self.action_high}")
        if not 0 < self.obs_dim <= msg.MAX_OBS_DIM:
            raise ValueError(f"obs_dim must be 1..{msg.MAX_OBS_DIM}, got {self.obs_dim}")
        if self.control_period_us <= 0 or self.watchdog_ms < 0:
            raise ValueError("control_period_us must be > 0 and watchdog_ms >= 0")
        if self.safe_action is not None and len(self.safe_action) != n:
            raise ValueError(f"safe_action must have {n} values")

    @property
    def action_dim(self) -> int:
        return len(self.action_low)

    def safe(self) -> np.ndarray:
        values = np.zeros(self.action_dim) if self.safe_action is None else np.asarray(self.safe_action)
        return np.clip(values, self.action_low, self.action_high).astype(np.float32)


@dataclass(frozen=True)
class AppliedCommand:
    """One write to the actuators: an ACTION (``seq``) as requested and as applied, or the safe state."""

    t_ms: int
    seq: int | None  # None: the safe state, written by the firmware itself
    requested: tuple[float, ...]
    applied: tuple[float, ...]
    cause: str  # "action", or why the safe state was written: "estop", "watchdog", "reset", "start"


@dataclass
class FirmwareCore:
    """The protocol's firmware state machine over ``plant``; ``clock_ms`` is the firmware's millisecond clock."""

    config: DeviceConfig
    plant: Plant
    clock_ms: Callable[[], int]
    log: list[AppliedCommand] = field(default_factory=list)
    stats: LinkStats = field(default_factory=LinkStats)

    def __post_init__(self) -> None:
        self._decoder = FrameDecoder()
        self._low = np.asarray(self.config.action_low, dtype=np.float32)
        self._high = np.asarray(self.config.action_high, dtype=np.float32)
        self._seq = 0
        self._estop = False
        self._fault = False
        self._clipped = False
        self._episode_start = False
        self._watchdog_deadline: int | None = None
        self._last_action_seq = 0
        self._ack_seq = 0  # the last ACTION or RESET applied: what a streamed OBSERVATION answers
        self._last_command: tuple[type, int] | None = None  # (type, seq) of that command since the last HELLO
        self._write_safe("start")

    # ----- inputs ------------------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[bytes]:
        """Feed received bytes; returns the wire frames to send back (answers and faults), in order."""
        out: list[bytes] = []
        for frame in self.stats.count_decoded(self._decoder.feed(data)):  # noise: dropped without an answer
            out += self._handle(frame)
        return out

    def poll(self) -> list[bytes]:
        """Check the watchdog; returns the FAULT to send if it has just tripped."""
        if self._watchdog_deadline is None or self.clock_ms() <= self._watchdog_deadline:
            return []
        self._fault = True
        self._watchdog_deadline = None
        self._write_safe("watchdog")
        return [self._fault_frame(FaultReason.WATCHDOG, 0, self._last_action_seq)]

    def tick(self) -> bytes:
        """Real-time firmware: one control period passes; returns the streamed OBSERVATION."""
        self.plant.advance()
        return self._observation(self._ack_seq)

    @property
    def watchdog_deadline_ms(self) -> int | None:
        return self._watchdog_deadline

    @property
    def flags(self) -> StatusFlags:
        flags = StatusFlags.NONE
        for on, flag in ((self._estop, StatusFlags.ESTOP), (self._fault, StatusFlags.FAULT),
                         (self._clipped, StatusFlags.CLIPPED),
                         (self._watchdog_deadline is not None, StatusFlags.WATCHDOG_ARMED),
                         (self._episode_start, StatusFlags.RESET), (self.plant.terminated, StatusFlags.TERMINATED)):
            if on:
                flags |= flag
        return flags

    # ----- the rules -----------------------------------------------------------------------------------

    def _handle(self, frame: Frame) -> list[bytes]:
        try:
            if frame.version != PROTOCOL_VERSION:  # checked first, as the specification orders it
                raise UnsupportedVersion(frame.version, PROTOCOL_VERSION)
            if frame.type in FIRMWARE_TO_HOST:
                raise UnknownMessageType(frame.type)
            message = msg.decode_message(frame)
        except UnsupportedVersion:
            self.stats.rejected_messages += 1
            return [self._fault_frame(FaultReason.UNSUPPORTED_VERSION, PROTOCOL_VERSION, frame.seq)]
        except UnknownMessageType:
            self.stats.rejected_messages += 1
            return [self._fault_frame(FaultReason.BAD_TYPE, frame.type, frame.seq)]
        except MalformedMessage:
            self.stats.rejected_messages += 1
            detail = self.config.action_dim if frame.type == MessageType.ACTION else 0
            return [self._fault_frame(FaultReason.BAD_LENGTH, detail, frame.seq)]
        answer = self._dispatch(message, frame.seq)
        return [] if answer is None else [answer]

    def _dispatch(self, message: msg.Message, seq: int) -> bytes | None:
        match message:
            case msg.HelloMsg():
                self._last_command = None  # a new session: its host may count from 0 again
                return self._send(self._info(seq))
            case msg.HeartbeatMsg():
                return self._status(seq)
            case msg.EstopMsg():
                self._estop = True
                self._watchdog_deadline = None
                self._write_safe("estop")
                return self._status(seq)
            case msg.ClearMsg():
                self._estop = self._fault = False
                self._watchdog_deadline = None
                return self._status(seq)
            case msg.ActionMsg():
                return self._action(message.values, seq)
            case msg.ResetMsg():
                return self._reset(seq)
        raise ProtocolError(f"no rule for {type(message).__name__}")  # unreachable: the types are exhaustive

    def _action(self, values: tuple[float, ...], seq: int) -> bytes | None:
        if self._estop or self._fault:
            return self._fault_frame(FaultReason.LATCHED, 0, seq)
        if len(values) != self.config.action_dim:
            return self._fault_frame(FaultReason.BAD_LENGTH, self.config.action_dim, seq)
        if self._last_command == (msg.ActionMsg, seq):  # a resend: the command already holds, applied once
            self.stats.resends += 1  # and does not feed the watchdog: it holds watchdog_ms from its application
            return self._observation(seq) if Capabilities.LOCKSTEP in self.config.capabilities else None
        requested = np.asarray(values, dtype=np.float32)
        bad = np.flatnonzero(~np.isfinite(requested))
        if bad.size:
            return self._fault_frame(FaultReason.BAD_VALUE, int(bad[0]), seq)
        applied = np.clip(requested, self._low, self._high)
        self._clipped = bool(np.any(applied != requested))
        self._write(requested, applied, seq, "action")
        self._last_action_seq = self._ack_seq = seq
        self._last_command = (msg.ActionMsg, seq)
        self._episode_start = False
        self._feed_watchdog()
        if Capabilities.LOCKSTEP in self.config.capabilities:
            self.plant.advance()
            return self._observation(seq)
        return None  # real time: the next tick's OBSERVATION answers it

    def _reset(self, seq: int) -> bytes:
        if Capabilities.CAN_RESET not in self.config.capabilities:
            return self._fault_frame(FaultReason.RESET_UNSUPPORTED, 0, seq)
        if self._estop or self._fault:
            return self._fault_frame(FaultReason.LATCHED, 0, seq)
        if self._last_command == (msg.ResetMsg, seq):  # a resend: the episode has already started
            self.stats.resends += 1
            return self._observation(seq)
        self.plant.reset()
        self._watchdog_deadline = None
        self._clipped = False
        self._write_safe("reset")
        self._ack_seq = seq
        self._last_command = (msg.ResetMsg, seq)
        self._episode_start = True
        return self._observation(seq)

    def _feed_watchdog(self) -> None:
        if self.config.watchdog_ms:
            self._watchdog_deadline = self.clock_ms() + self.config.watchdog_ms

    # ----- outputs -------------------------------------------------------------------------------------

    def _write(self, requested: np.ndarray, applied: np.ndarray, seq: int | None, cause: str) -> None:
        self.plant.apply(applied)
        self.log.append(AppliedCommand(self.clock_ms(), seq, tuple(requested.tolist()), tuple(applied.tolist()),
                                       cause))

    def _write_safe(self, cause: str) -> None:
        safe = self.config.safe()
        self._write(safe, safe, None, cause)

    def _send(self, message: msg.Message) -> bytes:
        wire = msg.encode_message(message, self._seq)
        self._seq = (self._seq + 1) & 0xFFFF
        self.stats.count_sent(wire)
        return wire

    def _info(self, ack_seq: int) -> msg.InfoMsg:
        c = self.config
        return msg.InfoMsg(ack_seq, c.obs_dim, c.action_dim, c.capabilities, c.control_period_us, c.watchdog_ms,
                           c.action_low, c.action_high, c.firmware_id)

    def _observation(self, ack_seq: int) -> bytes:
        values = tuple(float(v) for v in np.asarray(self.plant.observe(), dtype=np.float32).reshape(-1))
        return self._send(msg.ObservationMsg(ack_seq, self._now(), self.flags, values))

    def _status(self, ack_seq: int) -> bytes:
        return self._send(msg.StatusMsg(ack_seq, self._now(), self.flags))

    def _fault_frame(self, reason: FaultReason, detail: int, ref_seq: int) -> bytes:
        return self._send(msg.FaultMsg(reason, detail & 0xFF, ref_seq, self._now(), self.flags))

    def _now(self) -> int:
        return self.clock_ms() & 0xFFFFFFFF
