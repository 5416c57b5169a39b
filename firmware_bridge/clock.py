"""Deadlines on the monotonic clock, for both ends of the link (wall-clock time can jump; this cannot)."""

from __future__ import annotations

import time

# A sleeping thread wakes 50-150 us late on Linux (timer slack plus scheduling); at 1 Mbaud that is
# 5-15 bytes. The last stretch before a deadline is therefore spun on the clock instead of slept.
SPIN_SECONDS = 200e-6


def sleep_until(deadline: float) -> None:
    """Return when ``time.monotonic()`` reaches ``deadline`` (at once if it has): sleep until ``SPIN_SECONDS``
    before it, then spin, which keeps the lateness to a few microseconds for at most that much CPU time."""
    delay = deadline - time.monotonic() - SPIN_SECONDS
    if delay > 0:
        time.sleep(delay)
    while time.monotonic() < deadline:
        pass
