"""A noisy line: a :class:`~firmware_bridge.transport.Transport` wrapper that drops bytes, flips bits and cuts the
line, seeded, in both directions.

It wraps any transport: the in-memory one (:mod:`firmware_bridge.memory`) in the tests, or a serial port
between ``robopg deploy`` and the virtual robot. A cut starts when the host has written a given number of
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


class FaultyTransport:
    """``inner`` behind a line with ``faults``; ``clock`` times the cuts (the link's clock)."""

    def __init__(self, inner: Transport, faults: LineFaults, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner, self.faults, self.clock = inner, faults, clock
        self.counts = FaultCounts()
        self._rng = np.random.default_rng(faults.seed)
        self._pending_cuts = sorted(faults.cuts)
        self._cut_until = -np.inf
        self._written = 0

    def write(self, data: bytes) -> None:
        self._written += len(data)
        while self._pending_cuts and self._written >= self._pending_cuts[0][0]:
            self._cut_until = self.clock() + self._pending_cuts.pop(0)[1]
            self.counts.cut_starts.append(self.clock())
        if damaged := self._damage(data):
            self.inner.write(damaged)

    def read(self, deadline: float) -> bytes:
        while True:  # bytes lost on the way are not a reading: wait on until something arrives, or the deadline
            if data := self._damage(self.inner.read(deadline)):
                return data

    def close(self) -> None:
        self.inner.close()

    @property
    def cut(self) -> bool:
        """Whether the line is cut now."""
        return self.clock() < self._cut_until

    def _damage(self, data: bytes) -> bytes:
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
