"""Link counters: traffic, rejected frames, lost and late answers, round-trip latency."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from firmware_bridge.errors import CrcError, FrameError, ProtocolError
from firmware_bridge.framing import Frame


class LatencyStats:
    """Round-trip times in seconds: running count, mean, min and max, and percentiles of the latest window."""

    def __init__(self, window: int = 4096) -> None:
        self.count = 0
        self.total = 0.0
        self.squares = 0.0  # sum of squared times, for the standard deviation
        self.min = float("inf")
        self.max = 0.0
        self._recent: deque[float] = deque(maxlen=window)

    def record(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.squares += seconds * seconds
        self.min = min(self.min, seconds)
        self.max = max(self.max, seconds)
        self._recent.append(seconds)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")

    @property
    def std(self) -> float:
        """Standard deviation of every time recorded (population); NaN when empty."""
        if not self.count:
            return float("nan")
        return math.sqrt(max(0.0, self.squares / self.count - self.mean * self.mean))

    @property
    def last(self) -> float:
        return self._recent[-1] if self._recent else float("nan")

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100, nearest rank) of the latest window; NaN when empty."""
        if not self._recent:
            return float("nan")
        ordered = sorted(self._recent)
        rank = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[rank]

    def __repr__(self) -> str:
        if not self.count:
            return "LatencyStats(count=0)"
        return (f"LatencyStats(count={self.count}, mean={self.mean * 1e3:.3f} ms, "
                f"p99={self.percentile(99) * 1e3:.3f} ms, max={self.max * 1e3:.3f} ms)")


@dataclass
class LinkStats:
    """What one end of the link has seen. Frames are counted after COBS decoding."""

    frames_sent: int = 0  # wire frames written
    bytes_sent: int = 0  # their bytes, delimiters included
    frames_received: int = 0  # frames that passed the framing checks, whatever their message
    bytes_received: int = 0  # every byte read, noise included
    crc_errors: int = 0  # frames whose CRC did not match: line noise
    malformed_frames: int = 0  # invalid COBS, bad size or length field: line noise or a cut frame
    rejected_messages: int = 0  # CRC-valid frames of an unknown version or type, or a bad body
    dropped_frames: int = 0  # gaps in the peer's sequence numbers
    late_frames: int = 0  # answers that arrived after their request had timed out
    skipped_observations: int = 0  # streamed observations passed over while waiting for an answer
    timeouts: int = 0  # requests that got no answer from any of their sends
    resends: int = 0  # host: requests sent again for want of an answer; firmware: such resends, not re-applied
    rtt: LatencyStats = field(default_factory=LatencyStats)

    def count_sent(self, wire: bytes) -> None:
        """Count one write of wire frames."""
        self.frames_sent += 1
        self.bytes_sent += len(wire)

    def count_decoded(self, results: list[Frame | FrameError]) -> list[Frame]:
        """Count what a :class:`FrameDecoder` made of received bytes; returns the frames that passed."""
        frames: list[Frame] = []
        for result in results:
            if isinstance(result, FrameError):
                self.count_rejected(result)
            else:
                frames.append(result)
        self.frames_received += len(frames)
        return frames

    def count_rejected(self, error: ProtocolError) -> None:
        """Count a frame or message that ``error`` rejected."""
        if isinstance(error, CrcError):
            self.crc_errors += 1
        elif isinstance(error, FrameError):
            self.malformed_frames += 1
        else:
            self.rejected_messages += 1
