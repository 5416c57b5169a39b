"""Write firmware_bridge/vectors/protocol_vectors.json: the protocol's test vectors, from the Python codec.

The file is the contract between the Python codec and the C firmware (firmware_bridge/firmware/): both
must reproduce every vector. Re-running gives identical bytes; tests/firmware_bridge/test_vectors.py
checks that the committed file is what this script produces now.

Layout (flat, so a small C reader can parse it): a top-level object of scalars and arrays of objects
whose fields are strings, integers, floats or arrays of numbers.

- ``constants``: name and value of every protocol number (codes.py, framing and message limits).
- ``crc``: ``data_hex`` and its CRC-16/CCITT-FALSE ``crc``.
- ``cobs``: ``decoded_hex`` and its COBS ``encoded_hex``; ``cobs_invalid``: ``encoded_hex`` that fails.
- ``frames``: one valid message per object: ``type``, ``version``, ``seq``, the message's fields,
  ``body_hex``, ``payload_hex`` (header, body, CRC) and ``wire_hex`` (``00 cobs(payload) 00``).
- ``framing``: frames valid at the framing level whatever their type and body (the largest frames).
- ``invalid``: ``wire_hex`` of one delimited chunk and the ``error`` class (firmware_bridge.errors)
  that rejects it, at the framing level (CrcError, MalformedFrame) or the message level
  (UnsupportedVersion, UnknownMessageType, MalformedMessage).

Floats are float32 values written as the shortest decimal of their exact double, so parsing them as a
double and rounding to float32 gives the original bits; no NaN or infinity (JSON has none).

Usage: ``python tools/make_protocol_vectors.py [--check]``.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path
from typing import Any

from firmware_bridge import cobs, codes, framing
from firmware_bridge import messages as msg
from firmware_bridge.codes import Capabilities, FaultReason, MessageType, StatusFlags, fault_reason
from firmware_bridge.errors import FrameError
from firmware_bridge.framing import Frame, FrameDecoder, crc16, encode_frame, encode_payload

OUTPUT = Path(__file__).resolve().parents[1] / "firmware_bridge" / "vectors" / "protocol_vectors.json"
FORMAT_VERSION = 1

FLT_MAX = 3.4028234663852886e38
FLT_MIN_NORMAL = 1.1754943508222875e-38
FLT_TRUE_MIN = 1.401298464324817e-45

def f32(x: float) -> float:
    """``x`` rounded to float32, as the exact double of that float32."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32s(values: list[float] | tuple[float, ...]) -> tuple[float, ...]:
    return tuple(f32(v) for v in values)


def _ramp(n: int, start: float, step: float) -> tuple[float, ...]:
    """``n`` float32 values alternating in sign: a deterministic stand-in for sensor data."""
    return f32s([(start + step * i) * (-1) ** i for i in range(n)])


# ----- known answers ---------------------------------------------------------------------------------

# From docs/protocol.md (sections 1 and 9) and the COBS paper, independent of the codec: the generator
# refuses to write vectors from a codec that disagrees with the specification.
KNOWN_CRC = (b"123456789", 0x29B1)
KNOWN_COBS = (bytes.fromhex("450000 2c4c79 0000 40064f37".replace(" ", "")),
              bytes.fromhex("02450104 2c4c7901 05 40064f37".replace(" ", "")))
KNOWN_WIRES = (
    (msg.HelloMsg(), 0, "00030101010103e9cd00"),
    (msg.ActionMsg((0.5, -0.25)), 7, "00040103070309020101023f010580be16c200"),
)


def check_known_answers() -> None:
    """Raise if the Python codec disagrees with the specification's own examples."""
    data, crc = KNOWN_CRC
    if crc16(data) != crc:
        raise AssertionError(f"crc16(b'123456789') = 0x{crc16(data):04X}, the specification says 0x{crc:04X}")
    decoded, encoded = KNOWN_COBS
    if cobs.encode(decoded) != encoded or cobs.decode(encoded) != decoded:
        raise AssertionError("COBS disagrees with the example of the COBS paper")
    for message, seq, wire in KNOWN_WIRES:
        if msg.encode_message(message, seq).hex() != wire:
            raise AssertionError(f"{message} seq {seq} encodes to {msg.encode_message(message, seq).hex()}, "
                                 f"docs/protocol.md says {wire}")


# ----- constants -------------------------------------------------------------------------------------


def constants() -> list[dict[str, Any]]:
    """Every number protocol.h must mirror, by the name protocol.h gives it."""
    rows: list[tuple[str, int]] = [("PROTOCOL_VERSION", codes.PROTOCOL_VERSION)]
    rows += [(f"MSG_{m.name}", int(m)) for m in MessageType]
    rows += [(f"FLAG_{f.name}", int(f)) for f in StatusFlags if f.name and f is not StatusFlags.NONE]
    rows += [(f"FAULT_{r.name}", int(r)) for r in FaultReason]
    rows += [(f"CAP_{c.name}", int(c)) for c in Capabilities if c.name and c is not Capabilities.NONE]
    rows += [
        ("HEADER_SIZE", framing.HEADER.size),
        ("CRC_SIZE", framing.CRC.size),
        ("MAX_BODY", framing.MAX_BODY),
        ("MIN_PAYLOAD", framing.MIN_PAYLOAD),
        ("MAX_PAYLOAD", framing.MAX_PAYLOAD),
        ("MAX_ENCODED", framing.MAX_ENCODED),
        ("MAX_OBS_DIM", msg.MAX_OBS_DIM),
        ("MAX_ACTION_DIM", msg.MAX_ACTION_DIM),
        ("MAX_FIRMWARE_ID", msg.MAX_FIRMWARE_ID),
        ("CRC_CHECK", crc16(b"123456789")),
    ]
    return [{"name": name, "value": value} for name, value in rows]


# ----- CRC and COBS ----------------------------------------------------------------------------------


def crc_vectors() -> list[dict[str, Any]]:
    """The check string, register edge cases (empty, zeros, ones) and a real header."""
    inputs = {
        "check string 123456789": b"123456789",
        "empty": b"",
        "one zero byte": b"\x00",
        "sixteen zero bytes": bytes(16),
        "four 0xff bytes": b"\xff" * 4,
        "hello header v1 seq 0": framing.HEADER.pack(1, MessageType.HELLO, 0, 0),
        "all byte values": bytes(range(256)),
    }
    return [{"name": name, "data_hex": data.hex(), "crc": crc16(data)} for name, data in inputs.items()]


def _nonzero(n: int, start: int = 1) -> bytes:
    """``n`` bytes cycling through 1..255 (never zero)."""
    return bytes((start - 1 + i) % 255 + 1 for i in range(n))


def cobs_vectors() -> list[dict[str, Any]]:
    """Zeros at every place and zero-free runs around the 254-byte block size."""
    cases: list[tuple[str, bytes]] = [
        ("empty", b""),
        ("single zero", b"\x00"),
        ("two zeros", b"\x00\x00"),
        ("all zeros (5)", bytes(5)),
        ("one non-zero byte", b"\x11"),
        ("COBS paper, figure 3", KNOWN_COBS[0]),
        ("zero in the middle", b"\x11\x22\x00\x33"),
        ("no zeros", b"\x11\x22\x33\x44"),
        ("trailing zeros", b"\x11\x00\x00\x00"),
        ("leading zero", b"\x00\x11\x22"),
        ("253 non-zero bytes", _nonzero(253)),
        ("254 non-zero bytes", _nonzero(254)),
        ("255 non-zero bytes", _nonzero(255)),
        ("508 non-zero bytes", _nonzero(508)),
        ("253 non-zero bytes and a zero", _nonzero(253) + b"\x00"),
        ("254 non-zero bytes and a zero", _nonzero(254) + b"\x00"),
        ("zero, 254 non-zero bytes, zero", b"\x00" + _nonzero(254) + b"\x00"),
        ("mixed 0..255 twice", bytes(range(256)) * 2),
        ("mixed runs", b"\x01\x00\x00\x02\x03\x00" + _nonzero(300, 7) + b"\x00\xff"),
    ]
    return [{"name": name, "decoded_hex": data.hex(), "encoded_hex": cobs.encode(data).hex()} for name, data in cases]


def cobs_invalid_vectors() -> list[dict[str, Any]]:
    cases: list[tuple[str, bytes]] = [
        ("zero code byte", b"\x00"),
        ("zero code byte after a block", b"\x02\x11\x00"),
        ("block past the end", b"\x05\x11\x22"),
        ("zero inside a block", b"\x03\x11\x00"),
        ("full block cut short", b"\xff" + _nonzero(100)),
    ]
    for _, data in cases:  # keep the file honest: every one of these must fail
        try:
            cobs.decode(data)
        except FrameError:
            continue
        raise AssertionError(f"COBS vector {data.hex()} decodes")
    return [{"name": name, "encoded_hex": data.hex(), "error": "MalformedFrame"} for name, data in cases]


# ----- valid frames ----------------------------------------------------------------------------------


def message_fields(message: msg.Message) -> dict[str, Any]:
    """The message's fields as JSON values (enums as ints, vectors as lists)."""
    match message:
        case msg.InfoMsg():
            return {
                "ack_seq": message.ack_seq, "obs_dim": message.obs_dim, "action_dim": message.action_dim,
                "capabilities": int(message.capabilities), "control_period_us": message.control_period_us,
                "watchdog_ms": message.watchdog_ms, "action_low": list(message.action_low),
                "action_high": list(message.action_high), "firmware_id": message.firmware_id,
            }
        case msg.ActionMsg():
            return {"values": list(message.values)}
        case msg.ObservationMsg():
            return {"ack_seq": message.ack_seq, "t_ms": message.t_ms, "flags": int(message.flags),
                    "values": list(message.values)}
        case msg.StatusMsg():
            return {"ack_seq": message.ack_seq, "t_ms": message.t_ms, "flags": int(message.flags)}
        case msg.FaultMsg():
            return {"reason": int(message.reason), "detail": message.detail, "ref_seq": message.ref_seq,
                    "t_ms": message.t_ms, "flags": int(message.flags)}
        case _:
            return {}


def message_of(vector: dict[str, Any]) -> msg.Message:
    """The message a ``frames`` vector describes (the inverse of :func:`message_fields`)."""
    code = MessageType(vector["type"])
    if code in msg.BODYLESS:
        return msg.BODYLESS[code]()
    if code is MessageType.INFO:
        return msg.InfoMsg(vector["ack_seq"], vector["obs_dim"], vector["action_dim"],
                       Capabilities(vector["capabilities"]), vector["control_period_us"], vector["watchdog_ms"],
                       tuple(vector["action_low"]), tuple(vector["action_high"]), vector["firmware_id"])
    if code is MessageType.ACTION:
        return msg.ActionMsg(tuple(vector["values"]))
    if code is MessageType.OBSERVATION:
        return msg.ObservationMsg(vector["ack_seq"], vector["t_ms"], StatusFlags(vector["flags"]),
                              tuple(vector["values"]))
    if code is MessageType.STATUS:
        return msg.StatusMsg(vector["ack_seq"], vector["t_ms"], StatusFlags(vector["flags"]))
    return msg.FaultMsg(fault_reason(vector["reason"]), vector["detail"], vector["ref_seq"], vector["t_ms"],
                        StatusFlags(vector["flags"]))


def _frame_vector(name: str, frame: Frame) -> dict[str, Any]:
    return {"name": name, "version": frame.version, "type": frame.type, "seq": frame.seq,
            "body_hex": frame.body.hex(), "payload_hex": encode_payload(frame).hex(),
            "wire_hex": encode_frame(frame).hex()}


def _message_vector(name: str, message: msg.Message, seq: int) -> dict[str, Any]:
    code = msg.message_type(message)
    frame = Frame(code, seq, msg.encode_body(message))
    vector = {"name": name, "type_name": code.name} | _frame_vector(name, frame) | message_fields(message)
    if msg.decode_message(frame) != message:  # a vector the codec cannot read back is a generator bug
        raise AssertionError(f"vector {name!r} does not round-trip")
    return vector


def message_cases() -> list[tuple[str, msg.Message, int]]:
    """(name, message, seq) of every valid message vector."""
    all_flags = StatusFlags(sum(StatusFlags))
    all_caps = Capabilities(sum(Capabilities))
    cases: list[tuple[str, msg.Message, int]] = []
    for code, cls in msg.BODYLESS.items():
        for seq in (0, 1, 0x0100, 0x7FFF, 0xFFFF):
            cases.append((f"{code.name} seq {seq}", cls(), seq))
    cases += [
        ("INFO reference host firmware",
         msg.InfoMsg(0, 2, 1, Capabilities.CAN_RESET | Capabilities.LOCKSTEP, 20000, 200, (-1.0,), (1.0,),
                 "robopg-ref-host"), 0),
        ("INFO no watchdog, no capabilities",
         msg.InfoMsg(0x1234, 5, 2, Capabilities.NONE, 2000, 0, f32s([-10.0, -0.05]), f32s([10.0, 0.05]), "cartpole"),
         1),
        ("INFO largest", msg.InfoMsg(0xFFFF, msg.MAX_OBS_DIM, msg.MAX_ACTION_DIM, all_caps, 0xFFFFFFFF,
                                 0xFFFF, _ramp(16, -120.5, 0.25), tuple(abs(v) for v in _ramp(16, 120.5, 0.25)),
                                 "X" * 31 + "~"), 0xFFFF),
        ("INFO printable id with quote and backslash",
         msg.InfoMsg(7, 1, 1, Capabilities.CAN_RESET, 1, 1, (f32(-0.1),), (f32(0.1),), ' !"#\\/ az{|}~'), 2),
        ("INFO no action, empty id", msg.InfoMsg(0, 1, 0, Capabilities.NONE, 1000, 0, (), (), ""), 3),
        ("ACTION one value", msg.ActionMsg((0.5,)), 0),
        ("ACTION negative", msg.ActionMsg((-1.0,)), 1),
        ("ACTION out of range", msg.ActionMsg((5.0,)), 2),
        ("ACTION no values", msg.ActionMsg(()), 3),
        ("ACTION worked example of docs/protocol.md", msg.ActionMsg((0.5, -0.25)), 7),
        ("ACTION two values seq wrap", msg.ActionMsg(f32s([0.1, -0.2])), 0xFFFF),
        ("ACTION float edge values",
         msg.ActionMsg((0.0, -0.0, FLT_MAX, -FLT_MAX, FLT_MIN_NORMAL, -FLT_TRUE_MIN, f32(1 / 3), f32(1e-3))),
         0x0100),
        ("ACTION largest", msg.ActionMsg(_ramp(msg.MAX_ACTION_DIM, 0.125, 1.5)), 0x8000),
        ("OBSERVATION two values", msg.ObservationMsg(0, 20, StatusFlags.WATCHDOG_ARMED, f32s([0.0004, 0.02])), 1),
        ("OBSERVATION reset", msg.ObservationMsg(5, 1000, StatusFlags.RESET, (0.0, 0.0)), 6),
        ("OBSERVATION clipped terminated", msg.ObservationMsg(
            0xFFFF, 0xFFFFFFFF, StatusFlags.CLIPPED | StatusFlags.WATCHDOG_ARMED | StatusFlags.TERMINATED,
            f32s([2.5, -1.0])), 0),
        ("OBSERVATION no values", msg.ObservationMsg(0, 0, StatusFlags.NONE, ()), 0),
        ("OBSERVATION largest", msg.ObservationMsg(0x00FF, 0x01000000, all_flags, _ramp(msg.MAX_OBS_DIM,
                                                                                    -3.75, 0.5)), 0xFF00),
        ("STATUS idle", msg.StatusMsg(0, 0, StatusFlags.NONE), 0),
        ("STATUS estop", msg.StatusMsg(3, 123456, StatusFlags.ESTOP), 4),
        ("STATUS all flags, wrapped clock", msg.StatusMsg(0xFFFF, 0xFFFFFFFF, all_flags), 0xFFFF),
        ("FAULT watchdog", msg.FaultMsg(FaultReason.WATCHDOG, 0, 41, 1234, StatusFlags.FAULT), 42),
        ("FAULT latched", msg.FaultMsg(FaultReason.LATCHED, 0, 7, 99, StatusFlags.ESTOP), 8),
        ("FAULT unsupported version", msg.FaultMsg(FaultReason.UNSUPPORTED_VERSION, 1, 0x0102, 5, StatusFlags.NONE),
         9),
        ("FAULT bad type", msg.FaultMsg(FaultReason.BAD_TYPE, 0xFF, 0, 0, StatusFlags.NONE), 10),
        ("FAULT bad length", msg.FaultMsg(FaultReason.BAD_LENGTH, 1, 0xFFFF, 0x80000000, StatusFlags.CLIPPED), 11),
        ("FAULT bad value", msg.FaultMsg(FaultReason.BAD_VALUE, 15, 3, 77, StatusFlags.WATCHDOG_ARMED), 12),
        ("FAULT reset unsupported", msg.FaultMsg(FaultReason.RESET_UNSUPPORTED, 0, 4, 88, StatusFlags.NONE), 13),
        ("FAULT plant", msg.FaultMsg(FaultReason.PLANT, 200, 5, 0xFFFFFFFF, StatusFlags.FAULT), 0xFFFF),
        ("FAULT unknown reason", msg.FaultMsg(0x7F, 0x80, 6, 1, all_flags), 0),
    ]
    return cases


def frame_vectors() -> list[dict[str, Any]]:
    return [_message_vector(name, message, seq) for name, message, seq in message_cases()]


def framing_vectors() -> list[dict[str, Any]]:
    """Frames that pass framing checks whatever their type and body: sizes the messages never reach."""
    cases = [
        ("largest body, no zeros", Frame(0x7E, 0x0101, _nonzero(framing.MAX_BODY))),
        ("largest body, all zeros", Frame(0x7E, 0, bytes(framing.MAX_BODY))),
        ("largest body, mixed", Frame(0xFF, 0xFFFF, bytes(range(framing.MAX_BODY)), version=0xFF)),
        ("254-byte body", Frame(0x42, 0x4242, _nonzero(254, 3), version=2)),
        ("empty body, version 0", Frame(0x00, 0x0000, b"", version=0)),
    ]
    return [_frame_vector(name, frame) for name, frame in cases]


# ----- invalid frames --------------------------------------------------------------------------------


def _payload(version: int, type_code: int, seq: int, body: bytes, length: int | None = None) -> bytes:
    """A payload with a correct CRC; ``length`` overrides the header's length field."""
    head = framing.HEADER.pack(version, type_code, seq, len(body) if length is None else length) + body
    return head + framing.CRC.pack(crc16(head))


def _wire(payload: bytes) -> bytes:
    return b"\x00" + cobs.encode(payload) + b"\x00"


def _body(type_code: int, body: bytes, seq: int = 1) -> bytes:
    return _wire(_payload(codes.PROTOCOL_VERSION, type_code, seq, body))


def _info_body(obs_dim: int, action_dim: int, ident: bytes, id_len: int | None = None, limits: int | None = None
               ) -> bytes:
    head = struct.pack("<HBBBIH", 0, obs_dim, action_dim, 0, 20000, 200)
    n = action_dim if limits is None else limits
    return head + struct.pack(f"<{2 * n}f", *([-1.0] * n + [1.0] * n)) + bytes([len(ident) if id_len is None
                                                                                 else id_len]) + ident


def invalid_cases() -> list[tuple[str, bytes, str]]:
    hello = encode_payload(Frame(MessageType.HELLO, 5))
    action = encode_payload(Frame(MessageType.ACTION, 6, msg.encode_body(msg.ActionMsg((0.5,)))))
    action_1 = struct.pack("<Bf", 1, 0.5)
    v = codes.PROTOCOL_VERSION
    cases: list[tuple[str, bytes, str]] = [
        # framing: noise
        ("CRC low byte flipped", _wire(hello[:-2] + bytes([hello[-2] ^ 0x01]) + hello[-1:]), "CrcError"),
        ("CRC high byte flipped", _wire(hello[:-1] + bytes([hello[-1] ^ 0x80])), "CrcError"),
        ("ACTION body bit flipped", _wire(action[:7] + bytes([action[7] ^ 0x10]) + action[8:]), "CrcError"),
        ("seq bit flipped", _wire(hello[:2] + bytes([hello[2] ^ 0x04]) + hello[3:]), "CrcError"),
        ("CRC of zeros", _wire(hello[:-2] + b"\x00\x00"), "CrcError"),
        ("COBS block past the end", b"\x00" + cobs.encode(hello)[:-1] + b"\x00", "MalformedFrame"),
        ("COBS code points past the end", b"\x00\x09\x01\x01\x05\x00", "MalformedFrame"),
        ("too short: one byte", b"\x00\x02\x01\x00", "MalformedFrame"),
        ("too short: six-byte payload", _wire(hello[:6]), "MalformedFrame"),
        ("too short: header only", _wire(framing.HEADER.pack(v, MessageType.HELLO, 0, 0)), "MalformedFrame"),
        ("too long: payload of MAX_PAYLOAD + 1 bytes",
         _wire(_payload(v, 0x7E, 0, bytes(framing.MAX_BODY)) + b"\x00"),
         "MalformedFrame"),
        ("too long: no delimiter within MAX_ENCODED bytes", b"\x00" + b"\x55" * 300 + b"\x00", "MalformedFrame"),
        ("length field one more than the body", _wire(_payload(v, MessageType.ACTION, 1, action_1, length=6)),
         "MalformedFrame"),
        ("length field one less than the body", _wire(_payload(v, MessageType.ACTION, 1, action_1, length=4)),
         "MalformedFrame"),
        ("length field 255, empty body", _wire(_payload(v, MessageType.HELLO, 1, b"", length=255)),
         "MalformedFrame"),
        # message level: a CRC-valid frame the receiver cannot read
        ("version 0", _wire(_payload(0, MessageType.HELLO, 1, b"")), "UnsupportedVersion"),
        ("version 2", _wire(_payload(2, MessageType.HELLO, 2, b"")), "UnsupportedVersion"),
        ("version 255 with a bad body", _wire(_payload(255, MessageType.ACTION, 3, b"\x01")), "UnsupportedVersion"),
        ("unknown type 0x00", _wire(_payload(v, 0x00, 1, b"")), "UnknownMessageType"),
        ("unknown type 0x0B", _wire(_payload(v, 0x0B, 1, b"")), "UnknownMessageType"),
        ("unknown type 0xFF with a body", _wire(_payload(v, 0xFF, 1, b"\x01\x02")), "UnknownMessageType"),
    ]
    for code in msg.BODYLESS:
        cases.append((f"{code.name} with a one-byte body", _body(code, b"\x00"), "MalformedMessage"))
    cases += [
        ("HELLO with a 255-byte body", _body(MessageType.HELLO, bytes(255)), "MalformedMessage"),
        ("ACTION empty body", _body(MessageType.ACTION, b""), "MalformedMessage"),
        ("ACTION count 1, 3 value bytes", _body(MessageType.ACTION, action_1[:-1]), "MalformedMessage"),
        ("ACTION count 1, 5 value bytes", _body(MessageType.ACTION, action_1 + b"\x00"), "MalformedMessage"),
        ("ACTION count 2, one value", _body(MessageType.ACTION, b"\x02" + action_1[1:]), "MalformedMessage"),
        ("ACTION count 0 with a value", _body(MessageType.ACTION, b"\x00" + action_1[1:]), "MalformedMessage"),
        ("ACTION count 17", _body(MessageType.ACTION, b"\x11" + struct.pack("<17f", *range(17))),
         "MalformedMessage"),
        ("OBSERVATION too short", _body(MessageType.OBSERVATION, bytes(8)), "MalformedMessage"),
        ("OBSERVATION count 1, no value", _body(MessageType.OBSERVATION, bytes(8) + b"\x01"), "MalformedMessage"),
        ("OBSERVATION count 33", _body(MessageType.OBSERVATION, bytes(8) + b"\x21" + bytes(132)),
         "MalformedMessage"),
        ("OBSERVATION trailing byte", _body(MessageType.OBSERVATION, bytes(9) + b"\x00"), "MalformedMessage"),
        ("STATUS 7 bytes", _body(MessageType.STATUS, bytes(7)), "MalformedMessage"),
        ("STATUS 9 bytes", _body(MessageType.STATUS, bytes(9)), "MalformedMessage"),
        ("FAULT 9 bytes", _body(MessageType.FAULT, bytes(9)), "MalformedMessage"),
        ("FAULT 11 bytes", _body(MessageType.FAULT, bytes(11)), "MalformedMessage"),
        ("INFO too short", _body(MessageType.INFO, bytes(10)), "MalformedMessage"),
        ("INFO head only", _body(MessageType.INFO, _info_body(2, 1, b"ab")[:13]), "MalformedMessage"),
        ("INFO no id length byte", _body(MessageType.INFO, _info_body(2, 1, b"")[:-1]), "MalformedMessage"),
        ("INFO obs_dim 33", _body(MessageType.INFO, _info_body(33, 1, b"id")), "MalformedMessage"),
        ("INFO action_dim 17", _body(MessageType.INFO, _info_body(2, 17, b"id")), "MalformedMessage"),
        ("INFO limits cut short", _body(MessageType.INFO, _info_body(2, 2, b"", limits=1)), "MalformedMessage"),
        ("INFO id length 33", _body(MessageType.INFO, _info_body(2, 1, b"x" * 33)), "MalformedMessage"),
        ("INFO id length says 3, 2 bytes", _body(MessageType.INFO, _info_body(2, 1, b"ab", id_len=3)),
         "MalformedMessage"),
        ("INFO id length says 1, 2 bytes", _body(MessageType.INFO, _info_body(2, 1, b"ab", id_len=1)),
         "MalformedMessage"),
        ("INFO id with DEL", _body(MessageType.INFO, _info_body(2, 1, b"a\x7f")), "MalformedMessage"),
        ("INFO id with a control byte", _body(MessageType.INFO, _info_body(2, 1, b"\x1fa")), "MalformedMessage"),
        ("INFO id with a non-ASCII byte", _body(MessageType.INFO, _info_body(2, 1, b"\xc3\xa9")),
         "MalformedMessage"),
    ]
    return cases


def classify(wire: bytes) -> list[str]:
    """The class names of what the Python codec makes of ``wire``: ``Frame`` or the rejecting error."""
    results = []
    for item in FrameDecoder().feed(wire):
        if isinstance(item, FrameError):
            results.append(type(item).__name__)
            continue
        try:
            msg.decode_message(item)
        except Exception as error:
            results.append(type(error).__name__)
        else:
            results.append("Frame")
    return results


def invalid_vectors() -> list[dict[str, Any]]:
    vectors = []
    for name, wire, error in invalid_cases():
        if classify(wire) != [error]:  # a vector the codec does not reject as stated is a generator bug
            raise AssertionError(f"invalid vector {name!r}: codec says {classify(wire)}, vector says {error}")
        vectors.append({"name": name, "wire_hex": wire.hex(), "error": error})
    return vectors


# ----- the file ---------------------------------------------------------------------------------------


def build_vectors() -> dict[str, Any]:
    check_known_answers()
    return {
        "format": "robopg-protocol-vectors",
        "format_version": FORMAT_VERSION,
        "protocol_version": codes.PROTOCOL_VERSION,
        "generator": "tools/make_protocol_vectors.py",
        "constants": constants(),
        "crc": crc_vectors(),
        "cobs": cobs_vectors(),
        "cobs_invalid": cobs_invalid_vectors(),
        "frames": frame_vectors(),
        "framing": framing_vectors(),
        "invalid": invalid_vectors(),
    }


def render(vectors: dict[str, Any]) -> str:
    """The JSON text: one vector object per line, keys in a fixed order, no NaN or infinity."""
    lines = ["{"]
    items = list(vectors.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, list):
            lines.append(f"  {json.dumps(key)}: [")
            for j, row in enumerate(value):
                row_comma = "," if j < len(value) - 1 else ""
                lines.append(f"    {json.dumps(row, allow_nan=False)}{row_comma}")
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, allow_nan=False)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from what would be written")
    args = parser.parse_args(argv)
    text = render(build_vectors())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is out of date; run tools/make_protocol_vectors.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
