"""The reference firmware's Cortex-M port (``firmware/ports/mps2``) under QEMU.

``qemu-system-arm -M mps2-an385`` emulates the MPS2 board with the AN385 image (ARM DAI0385D): a Cortex-M3
at 25 MHz, CMSDK UARTs, timers and watchdog; ``-M mps2-an386`` is the same board with a Cortex-M4F.
:class:`QemuBoard` runs a firmware image with its first UARTs on pseudo-terminals (``-serial pty``; UART0 is
the host link, UART1 the plant), which a :class:`~firmware_bridge.link.RobotLink` opens like any serial
port. QEMU only hears a pty once it has noticed a client on it, which it checks once a second; the board
holds each pty open itself from the start, so a client that opens it later is heard at once.
:func:`run_image` runs a test image to its end: its output on UART0, its exit status through semihosting.

``icount`` runs the CPU at a fixed 2**shift nanoseconds per instruction (QEMU's ``-icount shift=N``), which
makes emulated time and instruction counts deterministic.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from firmware_bridge.errors import LinkError

QEMU = "qemu-system-arm"
MACHINES = ("mps2-an385", "mps2-an386")
_CONNECT_POLL = 1.1  # s: QEMU looks for a client on a pty once a second
_PTY_LINE = re.compile(rb"char device redirected to (\S+) \(label serial(\d+)\)")


def qemu_available() -> bool:
    """True when ``qemu-system-arm`` is on the PATH."""
    return shutil.which(QEMU) is not None


def _command(image: Path, machine: str, serial: list[str], icount: int | None, semihosting: bool) -> list[str]:
    if machine not in MACHINES:
        raise LinkError(f"unknown board {machine!r}; the port runs on {', '.join(MACHINES)}")
    if not image.is_file():
        raise LinkError(f"no firmware image at {image} (make -C firmware_bridge/firmware port)")
    cmd = [
        QEMU,
        "-M",
        machine,
        "-display",
        "none",
        "-monitor",
        "none",
        "-nodefaults",
        "-nic",
        "none",
        "-kernel",
        str(image),
    ]
    for target in serial:
        cmd += ["-serial", target]
    if icount is not None:
        cmd += ["-icount", f"shift={icount}"]
    if semihosting:
        cmd += ["-semihosting-config", "enable=on,target=native"]
    return cmd


class QemuBoard:
    """A running ``qemu-system-arm -M machine`` with ``uarts`` UARTs on pseudo-terminals.

    ``paths[i]`` is UART i's pty. Use as a context manager, or call :meth:`stop`.
    """

    def __init__(
        self,
        image: Path,
        *,
        machine: str = MACHINES[0],
        uarts: int = 1,
        icount: int | None = None,
        start_timeout: float = 10.0,
    ):
        if uarts < 1:
            raise ValueError("a board needs at least its host UART")
        self.proc = subprocess.Popen(
            _command(image, machine, ["pty"] * uarts, icount, semihosting=False),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.paths: list[str] = [""] * uarts
        self._held: list[int] = []
        try:
            self._read_paths(start_timeout)
            self._held = [os.open(path, os.O_RDWR | os.O_NOCTTY) for path in self.paths]
            time.sleep(_CONNECT_POLL)
        except BaseException:
            self.stop()
            raise

    def _read_paths(self, timeout: float) -> None:
        assert self.proc.stdout is not None
        deadline, seen = time.monotonic() + timeout, b""
        while not all(self.paths):
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = self.proc.stdout.readline() if ready else b""
            if not line:
                raise LinkError(f"{QEMU} printed no pty path: {seen.decode(errors='replace').strip()!r}")
            seen += line
            for path, index in _PTY_LINE.findall(line):
                self.paths[int(index)] = path.decode()

    def stop(self) -> int | None:
        """Terminate QEMU (it has no clean shutdown of its own) and return its exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        for fd in self._held:
            os.close(fd)
        self._held = []
        return self.proc.returncode

    def __enter__(self) -> QemuBoard:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def run_image(
    image: Path, *, machine: str = MACHINES[0], timeout: float, icount: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a test image to its end: UART0 on stdout, the exit status the image gives through semihosting."""
    return subprocess.run(
        _command(image, machine, ["stdio"], icount, semihosting=True),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
