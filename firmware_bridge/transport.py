"""Frames over any pyserial port: a device, a pty, ``loop://``, ``socket://host:port``.

Every wait has a deadline from :func:`time.monotonic`; every failure of the port becomes
:class:`LinkClosed`, so a vanished peer is an error, never a hang.
"""

from __future__ import annotations

import time
from collections import deque

import serial

from firmware_bridge.errors import FrameError, LinkClosed, LinkTimeout
from firmware_bridge.framing import Frame, FrameDecoder
from firmware_bridge.stats import LinkStats

# Longest single blocking read. Changing pyserial's timeout reconfigures the port (termios calls), so
# it stays at this value and only shrinks when a deadline is nearer.
_READ_SLICE = 0.05


class SerialTransport:
    """Sends wire frames and returns the frames that pass framing checks, counting the ones that fail."""

    def __init__(self, url: str, *, baudrate: int = 115200, write_timeout: float = 1.0,
                 stats: LinkStats | None = None, busy_poll: bool = False) -> None:
        """``busy_poll`` polls the port instead of sleeping until bytes arrive: a core at 100 %, for the
        tens of microseconds a sleeping process takes to wake (more on an idle or virtual machine)."""
        self.url = url
        self.busy_poll = busy_poll
        self.stats = stats if stats is not None else LinkStats()
        self._decoder = FrameDecoder()
        self._frames: deque[Frame] = deque()
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0 if busy_poll else _READ_SLICE,
                                               write_timeout=write_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkClosed(f"cannot open {url}: {exc}") from exc

    def send(self, data: bytes) -> None:
        """Write one or more wire frames."""
        try:
            self._port.write(data)
        except serial.SerialTimeoutException as exc:
            raise LinkTimeout(f"{self.url}: write did not complete") from exc
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkClosed(f"{self.url}: {exc}") from exc
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(data)

    def receive(self, deadline: float) -> Frame:
        """The next frame that passes framing checks; :class:`LinkTimeout` at ``deadline`` (monotonic)."""
        while not self._frames:
            data = self._read(deadline)
            self.stats.bytes_received += len(data)
            for result in self._decoder.feed(data):
                if isinstance(result, FrameError):
                    self.stats.count_rejected(result)
                else:
                    self._frames.append(result)
        self.stats.frames_received += 1
        return self._frames.popleft()

    def _read(self, deadline: float) -> bytes:
        return self._poll(deadline) if self.busy_poll else self._wait(deadline)

    def _poll(self, deadline: float) -> bytes:
        port = self._port  # timeout 0: read() returns what is there, and still reports a closed port
        while True:
            try:
                data = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise LinkClosed(f"{self.url}: {exc}") from exc
            if data:
                return data
            if time.monotonic() >= deadline:
                raise LinkTimeout(f"{self.url}: no complete frame before the deadline")

    def _wait(self, deadline: float) -> bytes:
        port = self._port
        while True:
            wait = min(deadline - time.monotonic(), _READ_SLICE)
            if wait <= 0:
                raise LinkTimeout(f"{self.url}: no complete frame before the deadline")
            try:
                if port.timeout != wait:
                    port.timeout = wait
                # The first byte waits; whatever came with it is taken in the same call, so a frame that
                # arrives at once is not read in two pieces.
                data = port.read(1)
                if data and (waiting := port.in_waiting):
                    data += port.read(waiting)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise LinkClosed(f"{self.url}: {exc}") from exc
            if data:
                return data

    def close(self) -> None:
        self._port.close()

    @property
    def is_open(self) -> bool:
        return bool(self._port.is_open)
