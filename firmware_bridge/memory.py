"""A transport whose far end is a :class:`FirmwareCore` in this process: the whole link without a port.

Bytes the host writes go straight into the core; the frames it answers wait to be read. Nothing runs in
between, so a read that finds nothing cannot be helped by waiting: it checks the core's watchdog (on the
core's clock, which the caller sets) and otherwise times out at once. Tests of the host link against the
firmware's rules are therefore exact and take no wall-clock time.

With a :class:`VirtualClock` shared by the core and the link, a read that finds nothing lets the clock run
to its deadline instead, stopping where the core's watchdog trips, as a firmware checking it every
millisecond would: time passes only while the host waits, and a cut line costs no wall-clock time either.
"""

from __future__ import annotations

from firmware_bridge.device import FirmwareCore
from firmware_bridge.errors import LinkClosed, LinkTimeout


class VirtualClock:
    """Seconds that pass only when told to: the link's clock (call it) and, in milliseconds, the core's (``ms``).

    ``after_answer(dt)`` is time that passes before the host's next request (a lockstep robot's control
    period, at which the host paces it), not while an answer crosses the line: the transport adds it when
    the host next writes or waits.
    """

    def __init__(self, start: float = 1.0) -> None:
        self.now = start
        self._pending = 0.0

    def __call__(self) -> float:
        return self.now

    def ms(self) -> int:
        return int(self.now * 1000)

    def advance_to(self, t: float) -> None:
        self.now = max(self.now, t)

    def after_answer(self, seconds: float) -> None:
        self._pending += seconds

    def settle(self) -> None:
        """Let the time owed by :meth:`after_answer` pass."""
        self.now += self._pending
        self._pending = 0.0


class MemoryTransport:
    """A :class:`~firmware_bridge.transport.Transport` to ``core``; ``clock``: see the module's text."""

    def __init__(self, core: FirmwareCore, clock: VirtualClock | None = None) -> None:
        self.core = core
        self.clock = clock
        self._unread = bytearray()  # the core's frames, not yet read by the host
        self._closed = False

    def write(self, data: bytes) -> None:
        self._check_open()
        if self.clock is not None:
            self.clock.settle()
        # Time may have passed since the core last ran: its watchdog comes before the bytes do.
        self._unread += b"".join(self.core.poll() + self.core.receive(data))

    def read(self, deadline: float) -> bytes:
        """What the core has sent; :class:`LinkTimeout` at once if that is nothing (``deadline`` cannot help)."""
        self._check_open()
        self._unread += b"".join(self.core.poll())
        if not self._unread and self.clock is not None:
            self.clock.settle()
        while not self._unread and self.clock is not None and self.clock() < deadline:
            trips = self.core.watchdog_deadline_ms  # it trips in the millisecond after this one
            self.clock.advance_to(deadline if trips is None else min(deadline, (trips + 1.5) / 1000))
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
