"""Frames over a byte transport: the framing layer between :mod:`~firmware_bridge.transport` and the link."""

from __future__ import annotations

from collections import deque

from firmware_bridge.framing import Frame, FrameDecoder
from firmware_bridge.stats import LinkStats
from firmware_bridge.transport import Transport


class FrameChannel:
    """Writes wire frames and returns the received frames that pass the framing checks, counting all in ``stats``."""

    def __init__(self, transport: Transport, stats: LinkStats | None = None) -> None:
        self.transport = transport
        self.stats = stats if stats is not None else LinkStats()
        self._decoder = FrameDecoder()
        self._frames: deque[Frame] = deque()

    def send(self, wire: bytes) -> None:
        """Write one or more wire frames."""
        self.transport.write(wire)
        self.stats.count_sent(wire)

    def receive(self, deadline: float) -> Frame:
        """The next frame that passes the framing checks; :class:`LinkTimeout` at ``deadline`` (monotonic)."""
        while not self._frames:
            data = self.transport.read(deadline)
            self.stats.bytes_received += len(data)
            self._frames += self.stats.count_decoded(self._decoder.feed(data))
        return self._frames.popleft()
