"""Deadlines on the monotonic clock, for both ends of the link (wall-clock time can jump; this cannot)."""

from __future__ import annotations

import time


def sleep_until(deadline: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``deadline``; return at once if it has."""
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)
