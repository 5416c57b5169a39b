"""Bytes to and from the firmware: what a transport is, and the one over any pyserial port.

A transport knows nothing of frames (the link, :mod:`firmware_bridge.link`, speaks the protocol over it),
the way pyserial keeps protocols apart from the port they run on. :class:`SerialTransport` opens a device,
a pty, ``loop://`` or ``socket://host:port``; every wait has a deadline from :func:`time.monotonic`, and
every failure of the port becomes :class:`LinkClosed`, so a vanished peer is an error, never a hang.
"""

from __future__ import annotations

import time
from typing import Protocol

import serial

from firmware_bridge.errors import LinkClosed, LinkTimeout

# Longest single blocking read. Changing pyserial's timeout reconfigures the port (termios calls), so
# it stays at this value and only shrinks when a deadline is nearer.
_READ_SLICE = 0.05


class Transport(Protocol):
    """A byte stream to the firmware."""

    def write(self, data: bytes) -> None:
        """Send ``data``; :class:`LinkClosed` if the peer is gone, :class:`LinkTimeout` if it does not drain."""

    def read(self, deadline: float) -> bytes:
        """Some received bytes (at least one); :class:`LinkTimeout` if none by ``deadline`` (monotonic)."""

    def close(self) -> None:
        """Release the port; later reads and writes raise :class:`LinkClosed`."""


class SerialTransport:
    """A :class:`Transport` over ``serial.serial_for_url(url)``."""

    def __init__(self, url: str, *, baudrate: int = 115200, write_timeout: float = 1.0,
                 busy_poll: bool = False) -> None:
        """``busy_poll`` polls the port instead of sleeping until bytes arrive: a core at 100 %, for the
        tens of microseconds a sleeping process takes to wake (more on an idle or virtual machine)."""
        self.url = url
        self.busy_poll = busy_poll
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0 if busy_poll else _READ_SLICE,
                                               write_timeout=write_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkClosed(f"cannot open {url}: {exc}") from exc

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except serial.SerialTimeoutException as exc:
            raise LinkTimeout(f"{self.url}: write did not complete") from exc
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkClosed(f"{self.url}: {exc}") from exc

    def read(self, deadline: float) -> bytes:
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
                raise LinkTimeout(f"{self.url}: nothing received before the deadline")

    def _wait(self, deadline: float) -> bytes:
        port = self._port
        while True:
            wait = min(deadline - time.monotonic(), _READ_SLICE)
            if wait <= 0:
                raise LinkTimeout(f"{self.url}: nothing received before the deadline")
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
