"""pybullet's C code prints a banner on import and ``argv[0]=`` on every connect, straight to the process's
file descriptors. A command-line tool that promises one clear line on error cannot have that, so both
happen with stdout and stderr pointed at /dev/null for the moment."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator

_libc = ctypes.CDLL(None)


@contextlib.contextmanager
def native_output_silenced() -> Iterator[None]:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        _libc.fflush(None)  # what C stdio buffered goes to /dev/null too, not to the restored streams later
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
