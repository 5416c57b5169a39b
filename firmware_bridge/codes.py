"""The protocol's numbers: version, message types, status flags, fault reasons, capabilities.

docs/protocol.md is the specification; firmware/protocol.h holds the same values for C.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

PROTOCOL_VERSION = 1


class MessageType(IntEnum):
    HELLO = 0x01  # host → firmware: open a session, ask for INFO
    INFO = 0x02  # firmware → host: sizes, limits, timing, firmware id
    ACTION = 0x03  # host → firmware: actuator command
    OBSERVATION = 0x04  # firmware → host: sensor values, timestamp, status flags
    HEARTBEAT = 0x05  # host → firmware: liveness probe
    STATUS = 0x06  # firmware → host: answer to HEARTBEAT, ESTOP and CLEAR
    ESTOP = 0x07  # host → firmware: engage the e-stop latch
    CLEAR = 0x08  # host → firmware: release the e-stop and fault latches
    RESET = 0x09  # host → firmware: start a new episode
    FAULT = 0x0A  # firmware → host: a refused frame or a fault event


HOST_TO_FIRMWARE = frozenset(
    {MessageType.HELLO, MessageType.ACTION, MessageType.HEARTBEAT, MessageType.ESTOP, MessageType.CLEAR,
     MessageType.RESET}
)
FIRMWARE_TO_HOST = frozenset(MessageType) - HOST_TO_FIRMWARE


class StatusFlags(IntFlag):
    """Firmware state carried by OBSERVATION, STATUS and FAULT."""

    NONE = 0
    ESTOP = 0x0001  # e-stop latch engaged: actuators safe until CLEAR
    FAULT = 0x0002  # fault latch engaged (e.g. watchdog): actuators safe until CLEAR
    CLIPPED = 0x0004  # the last applied action was clipped to the action limits
    WATCHDOG_ARMED = 0x0008  # an ACTION has been applied and the watchdog is counting
    RESET = 0x0010  # first observation of an episode (answer to RESET)
    TERMINATED = 0x0020  # the plant reached a terminal state (e.g. an end stop); RESET to go on


class FaultReason(IntEnum):
    """Why a FAULT was sent. WATCHDOG and PLANT are events; the others refuse the frame ``ref_seq``."""

    WATCHDOG = 0x01  # no valid ACTION within the watchdog timeout: safe state, fault latched
    LATCHED = 0x02  # command refused: the e-stop or fault latch is engaged
    UNSUPPORTED_VERSION = 0x03  # detail: the version the firmware speaks
    BAD_TYPE = 0x04  # detail: the unknown (or wrong-direction) type code
    BAD_LENGTH = 0x05  # body does not fit the type; for ACTION, detail: the action size expected
    BAD_VALUE = 0x06  # non-finite action component; detail: its index
    RESET_UNSUPPORTED = 0x07  # this robot cannot start a new episode by itself
    PLANT = 0x08  # sensor or actuator failure: safe state, fault latched; detail: HAL code


EVENT_REASONS = frozenset({FaultReason.WATCHDOG, FaultReason.PLANT})


def fault_reason(code: int) -> FaultReason | int:
    """``code`` as a :class:`FaultReason`; a reason this side does not know (a newer firmware's) stays a number."""
    return FaultReason(code) if code in FaultReason._value2member_map_ else code


class Capabilities(IntFlag):
    """What a firmware can do, announced in INFO."""

    NONE = 0
    CAN_RESET = 0x01  # RESET starts a new episode
    LOCKSTEP = 0x02  # the plant advances one control period per ACTION (a simulator), no streaming
