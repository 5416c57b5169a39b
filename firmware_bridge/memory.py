"""A transport whose far end is a :class:`FirmwareCore` in this process: the whole link without a port.

Bytes the host writes go straight into the core; the frames it answers wait to be read. Nothing runs in
between, so a read that finds nothing cannot be helped by waiting: it checks the core's watchdog (on the
core's clock, which the caller sets) and otherwise times out at once. Tests of the host link against the
firmware's rules are therefore exact and take no wall-clock time.
"""

from __future__ import annotations

from firmware_bridge.device import FirmwareCore
from firmware_bridge.errors import LinkClosed, LinkTimeout


class MemoryTransport:
    """A :class:`~firmware_bridge.transport.Transport` to ``core``."""

    def __init__(self, core: FirmwareCore) -> None:
        self.core = core
        self._unread = bytearray()  # the core's frames, not yet read by the host
        self._closed = False

    def write(self, data: bytes) -> None:
        self._check_open()
        # Time may have passed since the core last ran: its watchdog comes before the bytes do.
        self._unread += b"".join(self.core.poll() + self.core.receive(data))

    def read(self, deadline: float) -> bytes:
        """What the core has sent; :class:`LinkTimeout` at once if that is nothing (``deadline`` cannot help)."""
        self._check_open()
        self._unread += b"".join(self.core.poll())
        if not self._unread:
            raise LinkTimeout("the firmware core has nothing to send")
        data = bytes(self._unread)
        self._unread.clear()
        return data

    def tick(self) -> None:
        """One control period of a real-time core passes: its streamed OBSERVATION waits to be read."""
        self._unread += self.core.tick()

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise LinkClosed("the in-memory transport is closed")
