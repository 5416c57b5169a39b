"""Typed exceptions of the serial link, from line noise up to faults the robot reports."""

from __future__ import annotations

from firmware_bridge.codes import FaultReason, StatusFlags, fault_reason


class LinkError(Exception):
    """Base of every error the link raises."""


class LinkTimeout(LinkError, TimeoutError):
    """No complete answer before the deadline."""


class LinkClosed(LinkError):
    """The port is closed or went away (device unplugged, pty peer exited, socket dropped)."""


class ProtocolError(LinkError):
    """Bytes or messages that do not follow the protocol."""


class FrameError(ProtocolError):
    """A frame rejected by framing checks; on a serial line this is normally noise."""


class CrcError(FrameError):
    """The frame's CRC-16 does not match its contents."""


class MalformedFrame(FrameError):
    """Invalid COBS, a frame too short or too long, or a length field that disagrees with the frame."""


class UnsupportedVersion(ProtocolError):
    """A CRC-valid frame of a protocol version this side does not speak."""

    def __init__(self, version: int, supported: int) -> None:
        super().__init__(f"peer speaks protocol version {version}; this side speaks version {supported}")
        self.version = version
        self.supported = supported


class UnknownMessageType(ProtocolError):
    """A CRC-valid frame whose type code is not defined (or not valid in this direction)."""

    def __init__(self, type_code: int) -> None:
        super().__init__(f"unknown message type 0x{type_code:02x}")
        self.type_code = type_code


class MalformedMessage(ProtocolError):
    """A CRC-valid frame whose body does not match its message type's layout."""


class RobotFault(LinkError):
    """The firmware reported a fault: it refused a command or went to its safe state.

    ``reason`` is a :class:`~firmware_bridge.codes.FaultReason`; ``ref_seq`` is the sequence number of
    the frame it refers to; ``flags`` are the firmware's status flags after the fault; ``t_ms`` its clock when
    it sent the fault (None when not known).
    """

    def __init__(self, reason: int, detail: int = 0, ref_seq: int = 0, flags: int = 0,
                 t_ms: int | None = None) -> None:
        self.reason = fault_reason(reason)
        name = self.reason.name if isinstance(self.reason, FaultReason) else f"reason 0x{reason:02x}"
        self.detail = detail
        self.ref_seq = ref_seq
        self.flags = StatusFlags(flags)
        self.t_ms = t_ms
        super().__init__(f"robot fault {name} (detail {detail}, frame {ref_seq}, flags {self.flags!r})")
