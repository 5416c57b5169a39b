"""The plant line: how firmware reaches a simulated plant over a second serial port (docs/protocol.md section 12).

Frames as on the host link (COBS, CRC-16, the same header); the messages are the plant line's own. The
firmware asks and the plant answers each request with one frame carrying the request's ``seq``:

====================  =========  ===========================================================  ===========
message               direction  body                                                          answer
====================  =========  ===========================================================  ===========
PLANT_HELLO   0x41    fw → pl    (empty)                                                       PLANT_INFO
PLANT_INFO    0x42    pl → fw    u8 obs_dim, u8 action_dim, u8 lockstep, u32 period_us,
                                 f32 low × action_dim, f32 high × action_dim
PLANT_RESET   0x43    fw → pl    (empty): a new episode                                        PLANT_STATE
PLANT_ACTUATE 0x44    fw → pl    u8 safe (1: the firmware's safe state), u8 count, f32 × count  PLANT_STATE
PLANT_STEP    0x45    fw → pl    (empty): lockstep, advance one control period                 PLANT_STATE
PLANT_SENSE   0x46    fw → pl    (empty)                                                       PLANT_STATE
PLANT_STATE   0x47    pl → fw    u8 terminated, u8 count, f32 × count (the sensors)
====================  =========  ===========================================================  ===========
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from firmware_bridge.errors import MalformedMessage


class PlantType(IntEnum):
    HELLO = 0x41
    INFO = 0x42
    RESET = 0x43
    ACTUATE = 0x44
    STEP = 0x45
    SENSE = 0x46
    STATE = 0x47


_INFO_HEAD = struct.Struct("<BBBI")
_COUNTED = struct.Struct("<BB")  # ACTUATE: safe, count; STATE: terminated, count


@dataclass(frozen=True)
class PlantInfo:
    obs_dim: int
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    lockstep: bool
    period_us: int

    def encode(self) -> bytes:
        n = len(self.action_low)
        head = _INFO_HEAD.pack(self.obs_dim, n, int(self.lockstep), self.period_us)
        return head + struct.pack(f"<{2 * n}f", *self.action_low, *self.action_high)


def _floats(body: bytes, offset: int, count: int, what: str) -> np.ndarray:
    if len(body) != offset + 4 * count:
        raise MalformedMessage(f"{what} of {len(body)} bytes does not hold {count} floats")
    return np.frombuffer(body, dtype="<f4", count=count, offset=offset).astype(np.float32)


def decode_actuate(body: bytes) -> tuple[bool, np.ndarray]:
    """PLANT_ACTUATE's body: whether it is the safe state, and the command."""
    if len(body) < _COUNTED.size:
        raise MalformedMessage("PLANT_ACTUATE too short")
    safe, count = _COUNTED.unpack_from(body)
    return bool(safe), _floats(body, _COUNTED.size, count, "PLANT_ACTUATE")


def encode_state(terminated: bool, sensors: np.ndarray) -> bytes:
    values = np.asarray(sensors, dtype="<f4").ravel()
    return _COUNTED.pack(int(terminated), values.size) + values.tobytes()


def decode_state(body: bytes) -> tuple[bool, np.ndarray]:
    if len(body) < _COUNTED.size:
        raise MalformedMessage("PLANT_STATE too short")
    terminated, count = _COUNTED.unpack_from(body)
    return bool(terminated), _floats(body, _COUNTED.size, count, "PLANT_STATE")
