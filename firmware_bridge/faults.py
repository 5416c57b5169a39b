"""A noisy line: a :class:`~firmware_bridge.transport.Transport` wrapper that drops bytes, flips bits and cuts the
line, seeded, in both directions.

It wraps any transport: the in-memory one (:mod:`firmware_bridge.memory`) in the tests, or a serial port;
the line alone (:class:`NoisyLine`) also sits between two real ptys, ``robopg deploy``'s and ``robopg
robot-sim``'s (``tools/fault_pty.py``). A cut starts when the host has written a given number of
bytes, so where it falls does not depend on timing, and lasts a given time on the link's clock: nothing
crosses the line in either direction until then.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.transport import Transport


@dataclass(frozen=True)
class LineFaults:
    """What goes wrong on the line: each byte lost with probability ``drop``, each bit inverted with probability
    ``flip``, and ``cuts``: (after this many bytes written by the host, seconds of silence)."""

    drop: float = 0.0
    flip: float = 0.0
    cuts: tuple[tuple[int, float], ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.drop < 1 and 0 <= self.flip < 1):
            raise ValueError(f"drop and flip are probabilities in [0, 1), got {self.drop}, {self.flip}")
        if any(at < 0 or seconds <= 0 for at, seconds in self.cuts):
            raise ValueError(f"cuts are (bytes >= 0, seconds > 0) pairs, got {self.cuts}")


@dataclass
class FaultCounts:
    """What the line did: bytes lost to drops and to cuts, bits inverted, and when each cut began (link clock)."""

    dropped_bytes: int = 0
    flipped_bits: int = 0
    cut_bytes: int = 0
    cut_starts: list[float] = field(default_factory=list)


class NoisyLine:
    """The line itself, between any two byte streams: what it does to the bytes each way. ``clock`` times the
    cuts. :class:`FaultyTransport` puts it in front of a transport; ``tools/fault_pty.py`` between two ptys."""

    def __init__(self, faults: LineFaults, clock: Callable[[], float] = time.monotonic) -> None:
        self.faults, self.clock = faults, clock
        self.counts = FaultCounts()
        self._rng = np.random.default_rng(faults.seed)
        self._pending_cuts = sorted(faults.cuts)
        self._cut_until = -np.inf
        self._written = 0

    def from_host(self, data: bytes) -> bytes:
        """What arrives of ``data`` written by the host (it counts towards the next cut)."""
        self._written += len(data)
        while self._pending_cuts and self._written >= self._pending_cuts[0][0]:
            self._cut_until = self.clock() + self._pending_cuts.pop(0)[1]
            self.counts.cut_starts.append(self.clock())
        return self.damage(data)

    @property
    def cut(self) -> bool:
        """Whether the line is cut now."""
        return self.clock() < self._cut_until

    def damage(self, data: bytes) -> bytes:
        """What arrives of ``data`` (either way): nothing during a cut, else with its bits flipped and bytes
        dropped."""
        if self.cut:
            self.counts.cut_bytes += len(data)
            return b""
        array = np.frombuffer(data, dtype=np.uint8)
        if self.faults.flip:
            flips = self._rng.random((array.size, 8)) < self.faults.flip
            self.counts.flipped_bits += int(flips.sum())
            array = array ^ np.packbits(flips, axis=1).reshape(-1)
        if self.faults.drop:
            kept = self._rng.random(array.size) >= self.faults.drop
            self.counts.dropped_bytes += int(array.size - kept.sum())
            array = array[kept]
        return array.tobytes()


class FaultyTransport:
    """``inner`` behind a line with ``faults``; ``clock`` times the cuts (the link's clock)."""

    def __init__(self, inner: Transport, faults: LineFaults, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner, self.faults = inner, faults
        self.line = NoisyLine(faults, clock)

    @property
    def counts(self) -> FaultCounts:
        return self.line.counts

    @property
    def cut(self) -> bool:
        """Whether the line is cut now."""
        return self.line.cut

    def write(self, data: bytes) -> None:
        if damaged := self.line.from_host(data):
            self.inner.write(damaged)

    def read(self, deadline: float) -> bytes:
        while True:  # bytes lost on the way are not a reading: wait on until something arrives, or the deadline
            if data := self.line.damage(self.inner.read(deadline)):
                return data

    def close(self) -> None:
        self.inner.close()
