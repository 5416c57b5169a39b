"""Frames: header, body and CRC-16 inside COBS, delimited by 0x00; and a stream decoder that resyncs.

Payload (before COBS), all little-endian::

    0  version  u8     protocol version of this frame
    1  type     u8     message type
    2  seq      u16    sender's sequence number, +1 per frame sent, wrapping
    4  length   u8     body length in bytes
    5  body     length bytes
    5+length crc u16   CRC-16/CCITT-FALSE of bytes 0 .. 4+length

On the wire a frame is ``00 cobs(payload) 00``. The leading delimiter ends whatever partial frame the
receiver holds (line noise, a frame cut short), so garbage never costs the frame after it.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

from firmware_bridge import cobs
from firmware_bridge.codes import PROTOCOL_VERSION
from firmware_bridge.errors import CrcError, FrameError, MalformedFrame

HEADER = struct.Struct("<BBHB")
CRC = struct.Struct("<H")
MAX_BODY = 255
MIN_PAYLOAD = HEADER.size + CRC.size
MAX_PAYLOAD = HEADER.size + MAX_BODY + CRC.size
MAX_ENCODED = cobs.max_encoded_len(MAX_PAYLOAD)
DELIMITER = b"\x00"
CRC_INIT = 0xFFFF


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, init 0xFFFF, no reflection, no final xor (check 0x29B1)."""
    return binascii.crc_hqx(data, CRC_INIT)


@dataclass(frozen=True)
class Frame:
    """One frame's header fields and raw body."""

    type: int
    seq: int
    body: bytes = b""
    version: int = PROTOCOL_VERSION


def encode_payload(frame: Frame) -> bytes:
    """Header, body and CRC: the bytes COBS wraps."""
    if len(frame.body) > MAX_BODY:
        raise ValueError(f"frame body of {len(frame.body)} bytes exceeds {MAX_BODY}")
    head = HEADER.pack(frame.version, frame.type, frame.seq & 0xFFFF, len(frame.body)) + frame.body
    return head + CRC.pack(crc16(head))


def decode_payload(payload: bytes) -> Frame:
    """Check size, CRC and length field; :class:`CrcError` or :class:`MalformedFrame` otherwise.

    The CRC is checked before the length field so that a mismatch there means a CRC-valid frame from a
    sender that got the layout wrong, not noise.
    """
    if not MIN_PAYLOAD <= len(payload) <= MAX_PAYLOAD:
        raise MalformedFrame(f"frame of {len(payload)} bytes (valid: {MIN_PAYLOAD}..{MAX_PAYLOAD})")
    (crc,) = CRC.unpack_from(payload, len(payload) - CRC.size)
    if crc16(payload[: -CRC.size]) != crc:
        raise CrcError("CRC mismatch")
    version, type_code, seq, length = HEADER.unpack_from(payload)
    if HEADER.size + length + CRC.size != len(payload):
        raise MalformedFrame(f"length field {length} disagrees with a {len(payload)}-byte frame")
    return Frame(type_code, seq, payload[HEADER.size : -CRC.size], version)


def encode_frame(frame: Frame) -> bytes:
    """The frame as sent on the wire: ``00 cobs(payload) 00``."""
    return DELIMITER + cobs.encode(encode_payload(frame)) + DELIMITER


class FrameDecoder:
    """Turns a byte stream into frames, resynchronizing at every 0x00.

    :meth:`feed` never raises: each delimited chunk yields either a :class:`Frame` or the
    :class:`FrameError` that rejected it. A chunk longer than the largest valid frame is dropped as one
    :class:`MalformedFrame` without being buffered, so garbage cannot grow memory.
    """

    def __init__(self) -> None:
        self._pending = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        results: list[Frame | FrameError] = []
        *complete, tail = data.split(DELIMITER)
        for part in complete:
            if self._overflow:
                self._overflow = False
            else:
                self._pending += part
                if self._pending:
                    results.append(self._decode(bytes(self._pending)))
            self._pending.clear()
        if not self._overflow:
            self._pending += tail
            if len(self._pending) > MAX_ENCODED:
                self._pending.clear()
                self._overflow = True
                results.append(MalformedFrame(f"no delimiter within {MAX_ENCODED} bytes"))
        return results

    @staticmethod
    def _decode(encoded: bytes) -> Frame | FrameError:
        if len(encoded) > MAX_ENCODED:
            return MalformedFrame(f"frame of {len(encoded)} encoded bytes exceeds {MAX_ENCODED}")
        try:
            return decode_payload(cobs.decode(encoded))
        except FrameError as error:
            return error
