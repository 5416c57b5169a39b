"""Message bodies: one frozen dataclass per message type and its byte layout (little-endian).

Vectors travel as a u8 count followed by that many float32. Decoding checks that the body has exactly
the size its counts imply, so a truncated or padded body is never read as a shorter vector.

Users import the module, ``from firmware_bridge import messages as msg``, and write ``msg.ActionMsg``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firmware_bridge.codes import PROTOCOL_VERSION, Capabilities, FaultReason, MessageType, StatusFlags, fault_reason
from firmware_bridge.errors import MalformedMessage, UnknownMessageType, UnsupportedVersion
from firmware_bridge.framing import Frame, encode_frame

MAX_OBS_DIM = 32
MAX_ACTION_DIM = 16
MAX_FIRMWARE_ID = 32

_U8 = struct.Struct("<B")
_INFO_HEAD = struct.Struct("<HBBBIH")  # ack_seq, obs_dim, action_dim, capabilities, period_us, watchdog_ms
_OBSERVATION_HEAD = struct.Struct("<HIHB")  # ack_seq, t_ms, flags, count
_STATUS = struct.Struct("<HIH")  # ack_seq, t_ms, flags
_FAULT = struct.Struct("<BBHIH")  # reason, detail, ref_seq, t_ms, flags

Vector = tuple[float, ...]


@dataclass(frozen=True)
class HelloMsg:
    """Open a session; the firmware answers INFO."""


@dataclass(frozen=True)
class InfoMsg:
    """The firmware's description of itself, answering HELLO ``ack_seq``."""

    ack_seq: int
    obs_dim: int
    action_dim: int
    capabilities: Capabilities
    control_period_us: int
    watchdog_ms: int  # 0: no watchdog
    action_low: Vector
    action_high: Vector
    firmware_id: str  # printable ASCII, at most MAX_FIRMWARE_ID bytes


@dataclass(frozen=True)
class ActionMsg:
    """Actuator command, in actuator units."""

    values: Vector


@dataclass(frozen=True)
class ObservationMsg:
    """Sensor values sampled at firmware time ``t_ms``; ``ack_seq`` is the last ACTION (or RESET) applied."""

    ack_seq: int
    t_ms: int
    flags: StatusFlags
    values: Vector


@dataclass(frozen=True)
class HeartbeatMsg:
    """Liveness probe; the firmware answers STATUS. It does not feed the action watchdog."""


@dataclass(frozen=True)
class StatusMsg:
    """Firmware time and flags, answering HEARTBEAT, ESTOP or CLEAR ``ack_seq``."""

    ack_seq: int  # the request answered
    t_ms: int  # firmware clock
    flags: StatusFlags  # firmware state after the request


@dataclass(frozen=True)
class EstopMsg:
    """Engage the e-stop latch: actuators to their safe state until CLEAR."""


@dataclass(frozen=True)
class ClearMsg:
    """Release the e-stop and fault latches."""


@dataclass(frozen=True)
class ResetMsg:
    """Start a new episode; the firmware answers the first OBSERVATION (flag RESET) or FAULT."""


@dataclass(frozen=True)
class FaultMsg:
    """A refused frame (``ref_seq``) or a fault event; ``flags`` is the state after it."""

    reason: FaultReason | int  # int: a reason this side does not know
    detail: int
    ref_seq: int
    t_ms: int
    flags: StatusFlags


Message = (
    HelloMsg | InfoMsg | ActionMsg | ObservationMsg | HeartbeatMsg | StatusMsg | EstopMsg | ClearMsg | ResetMsg
    | FaultMsg
)

# The message class of each body-less type.
BODYLESS: dict[MessageType, type[Message]] = {
    MessageType.HELLO: HelloMsg,
    MessageType.HEARTBEAT: HeartbeatMsg,
    MessageType.ESTOP: EstopMsg,
    MessageType.CLEAR: ClearMsg,
    MessageType.RESET: ResetMsg,
}
_TYPE_OF: dict[type, MessageType] = {cls: code for code, cls in BODYLESS.items()} | {
    InfoMsg: MessageType.INFO,
    ActionMsg: MessageType.ACTION,
    ObservationMsg: MessageType.OBSERVATION,
    StatusMsg: MessageType.STATUS,
    FaultMsg: MessageType.FAULT,
}


def message_type(message: Message) -> MessageType:
    return _TYPE_OF[type(message)]


def _pack_floats(values: Vector) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def _unpack_floats(body: bytes, offset: int, count: int) -> Vector:
    return struct.unpack_from(f"<{count}f", body, offset)


def _pack_vector(values: Vector, limit: int) -> bytes:
    if len(values) > limit:
        raise ValueError(f"vector of {len(values)} values exceeds {limit}")
    return _U8.pack(len(values)) + _pack_floats(values)


def encode_body(message: Message) -> bytes:
    """The body bytes of ``message``."""
    match message:
        case InfoMsg():
            if not (len(message.action_low) == len(message.action_high) == message.action_dim <= MAX_ACTION_DIM):
                raise ValueError("INFO action limits must both have action_dim values")
            if message.obs_dim > MAX_OBS_DIM:
                raise ValueError(f"obs_dim {message.obs_dim} exceeds {MAX_OBS_DIM}")
            ident = message.firmware_id
            if len(ident) > MAX_FIRMWARE_ID or not (ident.isascii() and ident.isprintable()):
                raise ValueError(f"firmware id must be printable ASCII of at most {MAX_FIRMWARE_ID} bytes: "
                                 f"{message.firmware_id!r}")
            head = _INFO_HEAD.pack(message.ack_seq, message.obs_dim, message.action_dim, message.capabilities,
                                   message.control_period_us, message.watchdog_ms)
            limits = _pack_floats(message.action_low) + _pack_floats(message.action_high)
            return head + limits + _U8.pack(len(ident)) + ident.encode("ascii")
        case ActionMsg():
            return _pack_vector(message.values, MAX_ACTION_DIM)
        case ObservationMsg():
            if len(message.values) > MAX_OBS_DIM:
                raise ValueError(f"observation of {len(message.values)} values exceeds {MAX_OBS_DIM}")
            head = _OBSERVATION_HEAD.pack(message.ack_seq, message.t_ms, message.flags, len(message.values))
            return head + _pack_floats(message.values)
        case StatusMsg():
            return _STATUS.pack(message.ack_seq, message.t_ms, message.flags)
        case FaultMsg():
            return _FAULT.pack(message.reason, message.detail, message.ref_seq, message.t_ms, message.flags)
        case _:
            return b""


def encode_message(message: Message, seq: int) -> bytes:
    """``message`` as a wire frame with sequence number ``seq``."""
    return encode_frame(Frame(message_type(message), seq, encode_body(message)))


def _expect_size(body: bytes, size: int, name: str) -> None:
    if len(body) != size:
        raise MalformedMessage(f"{name} body of {len(body)} bytes, expected {size}")


def _decode_info(body: bytes) -> InfoMsg:
    if len(body) < _INFO_HEAD.size:
        raise MalformedMessage(f"INFO body of {len(body)} bytes is too short")
    ack_seq, obs_dim, action_dim, capabilities, period_us, watchdog_ms = _INFO_HEAD.unpack_from(body)
    if obs_dim > MAX_OBS_DIM or action_dim > MAX_ACTION_DIM:
        raise MalformedMessage(f"INFO sizes {obs_dim}/{action_dim} exceed {MAX_OBS_DIM}/{MAX_ACTION_DIM}")
    id_at = _INFO_HEAD.size + 8 * action_dim
    if len(body) <= id_at:
        raise MalformedMessage("INFO body too short for its action limits")
    id_len = body[id_at]
    _expect_size(body, id_at + 1 + id_len, "INFO")
    ident = body[id_at + 1 :]
    if id_len > MAX_FIRMWARE_ID or not all(0x20 <= c < 0x7F for c in ident):
        raise MalformedMessage("INFO firmware id is not printable ASCII of at most 32 bytes")
    return InfoMsg(ack_seq, obs_dim, action_dim, Capabilities(capabilities), period_us, watchdog_ms,
                   _unpack_floats(body, _INFO_HEAD.size, action_dim),
                   _unpack_floats(body, _INFO_HEAD.size + 4 * action_dim, action_dim), ident.decode("ascii"))


def _decode_action(body: bytes) -> ActionMsg:
    if not body:
        raise MalformedMessage("empty ACTION body")
    count = body[0]
    if count > MAX_ACTION_DIM:
        raise MalformedMessage(f"ACTION of {count} values exceeds {MAX_ACTION_DIM}")
    _expect_size(body, 1 + 4 * count, "ACTION")
    return ActionMsg(_unpack_floats(body, 1, count))


def _decode_observation(body: bytes) -> ObservationMsg:
    if len(body) < _OBSERVATION_HEAD.size:
        raise MalformedMessage(f"OBSERVATION body of {len(body)} bytes is too short")
    ack_seq, t_ms, flags, count = _OBSERVATION_HEAD.unpack_from(body)
    if count > MAX_OBS_DIM:
        raise MalformedMessage(f"OBSERVATION of {count} values exceeds {MAX_OBS_DIM}")
    _expect_size(body, _OBSERVATION_HEAD.size + 4 * count, "OBSERVATION")
    return ObservationMsg(ack_seq, t_ms, StatusFlags(flags), _unpack_floats(body, _OBSERVATION_HEAD.size, count))


def _decode_status(body: bytes) -> StatusMsg:
    _expect_size(body, _STATUS.size, "STATUS")
    ack_seq, t_ms, flags = _STATUS.unpack(body)
    return StatusMsg(ack_seq, t_ms, StatusFlags(flags))


def _decode_fault(body: bytes) -> FaultMsg:
    _expect_size(body, _FAULT.size, "FAULT")
    reason, detail, ref_seq, t_ms, flags = _FAULT.unpack(body)
    return FaultMsg(fault_reason(reason), detail, ref_seq, t_ms, StatusFlags(flags))


_DECODERS = {
    MessageType.INFO: _decode_info,
    MessageType.ACTION: _decode_action,
    MessageType.OBSERVATION: _decode_observation,
    MessageType.STATUS: _decode_status,
    MessageType.FAULT: _decode_fault,
}


def decode_message(frame: Frame) -> Message:
    """The message in ``frame``: :class:`UnsupportedVersion`, :class:`UnknownMessageType` or
    :class:`MalformedMessage` if it cannot be one."""
    if frame.version != PROTOCOL_VERSION:
        raise UnsupportedVersion(frame.version, PROTOCOL_VERSION)
    try:
        code = MessageType(frame.type)
    except ValueError:
        raise UnknownMessageType(frame.type) from None
    bodyless = BODYLESS.get(code)
    if bodyless is not None:
        _expect_size(frame.body, 0, code.name)
        return bodyless()
    return _DECODERS[code](frame.body)


BITS_PER_BYTE = 10  # a UART's 8N1 character: start bit, 8 data bits, stop bit


def exchange_bytes(obs_dim: int, action_dim: int) -> tuple[int, int]:
    """Wire bytes (frame and delimiter) of a lockstep exchange: the ACTION of ``action_dim`` values and the
    OBSERVATION of ``obs_dim`` values that answers it. COBS adds one byte per 254, whatever the values."""
    request = encode_message(ActionMsg((1.0,) * action_dim), 0)
    answer = encode_message(ObservationMsg(0, 0, StatusFlags(0), (1.0,) * obs_dim), 0)
    return len(request), len(answer)


def lockstep_rate_limit(obs_dim: int, action_dim: int, baud: int) -> float:
    """Exchanges per second a UART at ``baud`` can carry with one request in flight: the byte-time limit
    ``baud / (10 × (request + answer))`` of docs/benchmarks.md, which no control loop over that line can pass."""
    return baud / (BITS_PER_BYTE * sum(exchange_bytes(obs_dim, action_dim)))
