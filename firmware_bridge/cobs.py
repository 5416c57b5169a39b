"""Consistent Overhead Byte Stuffing: a byte string without zeros, so 0x00 can delimit frames."""

from __future__ import annotations

from firmware_bridge.errors import MalformedFrame

_MAX_BLOCK = 254  # data bytes a single code byte can announce


def max_encoded_len(n: int) -> int:
    """Worst-case COBS size of ``n`` bytes: one code byte per started 254-byte block."""
    return n + 1 + n // _MAX_BLOCK


def encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (the result holds no 0x00)."""
    out = bytearray()
    for chunk in data.split(b"\x00"):
        # A zero-free run longer than 254 bytes is split into full blocks (code 0xFF, no implied zero).
        while len(chunk) >= _MAX_BLOCK:
            out.append(0xFF)
            out += chunk[:_MAX_BLOCK]
            chunk = chunk[_MAX_BLOCK:]
        out.append(len(chunk) + 1)
        out += chunk
    return bytes(out)


def decode(data: bytes) -> bytes:
    """Invert :func:`encode`; :class:`MalformedFrame` for a zero byte or a block past the end."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            raise MalformedFrame("invalid COBS encoding")
        block = data[i + 1 : end]
        if 0 in block:
            raise MalformedFrame("invalid COBS encoding")
        out += block
        # Every block but a full one and the last implies a zero.
        if code != 0xFF and end < n:
            out.append(0)
        i = end
    return bytes(out)
