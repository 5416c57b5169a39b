"""A virtual robot: a sim/ task behind a pseudo-terminal, speaking the serial protocol as firmware would.

The firmware's rules (limits, latches, watchdog, the command log) are :class:`firmware_bridge.device.FirmwareCore`;
this module gives it a simulated plant with a reality gap, a serial port and a notion of time:

- **lockstep**: the physics advances one control period per ACTION, as fast as the host asks (tests);
- **real time**: the physics advances every control period by the wall clock and an OBSERVATION is streamed
  each period; the host's ACTION applies from the next period, as on a robot.

With a baud rate given, bytes take the time a full-duplex UART would need (10 bits per byte, each direction on
its own line). Every frame read from the pty is timestamped and handed to the firmware when its last byte
would have arrived; every frame the firmware writes leaves when a UART would have finished sending it,
counted from then. The simulator's own compute time is hidden in the answer's wire time when it fits (a
microcontroller answers in microseconds) and adds to it when it does not. Meanwhile the robot keeps reading,
so frames in both directions overlap as on real wires.
"""

from __future__ import annotations

import csv
import os
import select
import time
import tty
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from firmware_bridge.clock import SPIN_SECONDS
from firmware_bridge.codes import Capabilities
from firmware_bridge.device import AppliedCommand, DeviceConfig, FirmwareCore
from firmware_bridge.faults import FaultyTransport, LineFaults
from firmware_bridge.framing import DELIMITER
from firmware_bridge.link import RobotLink
from firmware_bridge.memory import MemoryTransport, VirtualClock
from firmware_bridge.messages import BITS_PER_BYTE
from firmware_bridge.transport import Transport
from sim.declared import resolve_task
from sim.randomization import parse_dynamics
from sim.spec import task_spec

Mode = Literal["lockstep", "realtime"]
IDLE_WAKE_SECONDS = 0.1  # the longest the serve loop blocks, so that stop() is noticed


class SimPlant:
    """A Gymnasium env as the firmware's plant; the time limit is the host's business, so it is not applied."""

    def __init__(self, env_id: str, *, dynamics: Mapping[str, Any] | None = None, init_range: float | None = None,
                 seed: int = 0) -> None:
        kwargs: dict[str, Any] = {"dynamics": dict(dynamics or {})}
        if init_range is not None:
            kwargs["init_range"] = init_range
        self.env = gym.make(resolve_task(env_id), **kwargs).unwrapped
        self._seed = seed
        self._action = np.zeros(self.env.action_space.shape, dtype=np.float32)
        self.terminated = False
        self._obs, _ = self.env.reset(seed=seed)  # powered on in the first episode's initial state

    def observe(self) -> np.ndarray:
        return self._obs

    def apply(self, action: np.ndarray) -> None:
        self._action = np.asarray(action, dtype=np.float32)

    def advance(self) -> None:
        self._obs, _, terminated, _, _ = self.env.step(self._action)
        self.terminated = bool(terminated)

    def reset(self) -> None:
        self._obs, _ = self.env.reset(seed=self._seed)
        self._seed += 1  # every episode its own initial state, reproducibly
        self.terminated = False

    def close(self) -> None:
        self.env.close()


class Uart:
    """When bytes would leave and arrive on a UART at ``baud``; no waiting at all when ``baud`` is None."""

    def __init__(self, baud: int | None) -> None:
        if baud is not None and baud <= 0:
            raise ValueError(f"baud rate must be > 0, got {baud}")
        self.byte_time = 0.0 if baud is None else BITS_PER_BYTE / baud
        self._rx_free = 0.0  # when the receive line is idle again
        self._tx_free = 0.0

    def received(self, n: int, now: float) -> float:
        """``n`` bytes written by the host at ``now``: when their last byte is in."""
        self._rx_free = max(now, self._rx_free) + n * self.byte_time
        return self._rx_free

    def sending_at(self, t: float) -> bool:
        """Whether the transmit line is still busy with earlier bytes at ``t``."""
        return self._tx_free > t

    def sent(self, n: int, ready: float) -> float:
        """``n`` bytes ready to go at ``ready``: when their last byte is out."""
        self._tx_free = max(ready, self._tx_free) + n * self.byte_time
        return self._tx_free


MAX_BAUD = 100_000_000
MAX_WATCHDOG_MS = 0xFFFF  # INFO's 16-bit field
MAX_RATE_HZ = 1e6  # a control period of at least 1 µs, INFO's unit
MAX_SEED = 2**32 - 1  # numpy's seeds


@dataclass(frozen=True)
class RobotSimConfig:
    """Everything ``robopg robot-sim`` takes; validated on construction."""

    env_id: str
    mode: Mode = "lockstep"
    baud: int | None = None
    gap: Mapping[str, Any] = field(default_factory=dict)  # sim.randomization dynamics keys
    watchdog_ms: int = 250
    rate_hz: float | None = None  # None: the task's control rate
    seed: int = 0
    log_path: Path | None = None
    busy_poll: bool = False  # poll the pty instead of sleeping: a microcontroller's interrupt latency, one core

    def __post_init__(self) -> None:
        if self.mode not in ("lockstep", "realtime"):
            raise ValueError(f"mode must be 'lockstep' or 'realtime', got {self.mode!r}")
        if self.baud is not None and not 0 < self.baud <= MAX_BAUD:
            raise ValueError(f"baud rate must be in [1, {MAX_BAUD}], got {self.baud}")
        if not 0 <= self.watchdog_ms <= MAX_WATCHDOG_MS:
            raise ValueError(f"watchdog must be in [0, {MAX_WATCHDOG_MS}] ms, got {self.watchdog_ms}")
        if self.rate_hz is not None and not 0 < self.rate_hz <= MAX_RATE_HZ:
            raise ValueError(f"rate must be in (0, {MAX_RATE_HZ:g}] Hz, got {self.rate_hz}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be in [0, {MAX_SEED}], got {self.seed}")
        parse_dynamics(dict(self.gap))  # names the bad key or value


def firmware_core(config: RobotSimConfig, plant: SimPlant, period: float, clock_ms: Callable[[], int]) -> FirmwareCore:
    """The firmware state machine of a virtual robot over ``plant``, announcing the task's sizes and limits."""
    space = plant.env.action_space
    name = resolve_task(config.env_id).split("/")[-1]
    capabilities = Capabilities.CAN_RESET | (Capabilities.LOCKSTEP if config.mode == "lockstep" else 0)
    return FirmwareCore(
        DeviceConfig(obs_dim=int(np.prod(plant.env.observation_space.shape)),
                     action_low=tuple(map(float, space.low)), action_high=tuple(map(float, space.high)),
                     control_period_us=round(period * 1e6), watchdog_ms=config.watchdog_ms,
                     firmware_id=f"virtual {name}"[:32], capabilities=capabilities),
        plant, clock_ms)


def in_memory_robot(config: RobotSimConfig, faults: LineFaults | None = None) -> RobotLink:
    """A lockstep virtual robot in this process: the same plant, gap and firmware state machine as
    :class:`VirtualRobot`, reached through a :class:`MemoryTransport` instead of a pty, on a virtual clock that
    advances one control period per physics step and, while the host waits for an answer, to its deadline (so
    the watchdog sees robot time, never the host's pauses for thought).

    Every byte still goes through the protocol, the host link and the firmware's checks; only the wire is
    gone, which makes it the robot of benchmarks and tests that run many episodes. ``faults`` puts a noisy
    line (:class:`FaultyTransport`) between the two, on the same clock."""
    if config.mode != "lockstep":
        raise ValueError("an in-memory robot runs in lockstep")
    period = 1.0 / (config.rate_hz or task_spec(config.env_id).control_hz)
    clock = VirtualClock(start=0.0)
    plant = ClockedPlant(config.env_id, dynamics=config.gap, seed=config.seed)
    plant.clock, plant.period = clock, period
    core = firmware_core(config, plant, period, clock.ms)
    transport: Transport = MemoryTransport(core, clock)
    if faults is not None:
        transport = FaultyTransport(transport, faults, clock)
    return RobotLink(transport, clock=clock)


class ClockedPlant(SimPlant):
    """A :class:`SimPlant` whose physics steps move a virtual clock by one control period each, before the host's
    next request (the host paces a lockstep robot at its control rate; the answer itself is immediate)."""

    clock: VirtualClock
    period: float

    def advance(self) -> None:
        super().advance()
        self.clock.after_answer(self.period)


class CommandLog:
    """Every actuator write, as the robot saw it, appended to a CSV file as it happens."""

    COLUMNS = ("t_ms", "seq", "cause", "requested", "applied")

    def __init__(self, path: Path) -> None:
        self._file = path.open("w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.COLUMNS)

    def write(self, commands: list[AppliedCommand]) -> None:
        if not commands:
            return
        for c in commands:
            self._writer.writerow((c.t_ms, "" if c.seq is None else c.seq, c.cause, " ".join(map(repr, c.requested)),
                                   " ".join(map(repr, c.applied))))
        self._file.flush()  # what the robot did must survive the robot process being killed

    def close(self) -> None:
        self._file.close()

    @staticmethod
    def read(path: Path) -> list[AppliedCommand]:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        return [AppliedCommand(int(r["t_ms"]), int(r["seq"]) if r["seq"] else None,
                               tuple(map(float, r["requested"].split())), tuple(map(float, r["applied"].split())),
                               r["cause"]) for r in rows]


class VirtualRobot:
    """Serve one task behind a pseudo-terminal until :meth:`stop` (or the process ends)."""

    def __init__(self, config: RobotSimConfig) -> None:
        self.config = config
        spec = task_spec(config.env_id) if config.rate_hz is None else None
        rate = config.rate_hz if config.rate_hz is not None else spec.control_hz
        self.period = 1.0 / rate
        self.plant = SimPlant(config.env_id, dynamics=config.gap, seed=config.seed)
        self._start = time.monotonic()
        self.core = firmware_core(config, self.plant, self.period, self._clock_ms)
        self.uart = Uart(config.baud)
        self._inbox: deque[tuple[float, bytes]] = deque()  # (when its last byte is in, bytes)
        self._outbox: deque[tuple[float, bytes]] = deque()  # (when its last byte is out, wire frame)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # bytes as they are: no echo, no line editing, no newline translation
        self.port = os.ttyname(self._slave)
        self._log = CommandLog(config.log_path) if config.log_path else None
        self._spin_seconds = float("inf") if config.busy_poll else SPIN_SECONDS
        self._running = True
        self._closed = False

    def _clock_ms(self) -> int:
        return int((time.monotonic() - self._start) * 1000)

    def serve(self) -> None:
        """Answer the host until :meth:`stop`; the port stays open when a host disconnects, for the next one."""
        next_tick = time.monotonic() + self.period
        try:
            while self._running:
                self._read_until(self._next_event(next_tick))
                self._write_due()  # first: a frame due now must not wait for the work below
                now = time.monotonic()
                while self._inbox and self._inbox[0][0] <= now:
                    arrived, data = self._inbox.popleft()
                    self._queue(self.core.receive(data), arrived)
                self._queue(self.core.poll(), now)
                if self.config.mode == "realtime" and now >= next_tick:
                    observation = self.core.tick()
                    # A streamed frame that finds the line still busy is dropped (the host sees the gap in
                    # sequence numbers), as firmware with its TX DMA still running would: queuing it would
                    # make every later observation staler once the stream outruns the wire.
                    if not self.uart.sending_at(next_tick):
                        self._queue([observation], next_tick)
                    next_tick += self.period
                    if next_tick < now:  # fell behind (a stall): skip, do not burst
                        next_tick = now + self.period
                self._write_due()
                self._flush_log()
        finally:
            self.close()

    def _next_event(self, next_tick: float) -> float:
        """When the loop must act next: a frame arriving or leaving, a tick, the watchdog, or an idle wake."""
        now = time.monotonic()
        events = [now + IDLE_WAKE_SECONDS]
        if self._inbox:
            events.append(self._inbox[0][0])
        if self._outbox:
            events.append(self._outbox[0][0])
        if self.config.mode == "realtime":
            events.append(next_tick)
        watchdog = self.core.watchdog_deadline_ms
        if watchdog is not None:
            events.append(now + (watchdog + 1 - self._clock_ms()) / 1000)
        return min(events)

    def _read_until(self, deadline: float) -> None:
        """Wait for input until ``deadline``, returning as soon as some is read. The last ``SPIN_SECONDS`` (all of
        it with ``busy_poll``) are polled rather than slept, because a sleeping process wakes up to 0.15 ms late."""
        while (remaining := deadline - time.monotonic()) > 0:
            timeout = remaining - self._spin_seconds if remaining > self._spin_seconds else 0.0
            readable, _, _ = select.select([self._master], [], [], timeout)
            if readable:
                self._receive(os.read(self._master, 4096), time.monotonic())
                return

    def _receive(self, data: bytes, now: float) -> None:
        """Queue what the host wrote, frame by frame, each for when its last byte is in."""
        start = 0
        while start < len(data):
            end = data.find(DELIMITER, start)
            end = len(data) if end < 0 else end + 1
            self._inbox.append((self.uart.received(end - start, now), data[start:end]))
            start = end

    def _queue(self, frames: list[bytes], ready: float) -> None:
        for wire in frames:
            self._outbox.append((self.uart.sent(len(wire), ready), wire))

    def _write_due(self) -> None:
        now = time.monotonic()
        while self._outbox and self._outbox[0][0] <= now:
            os.write(self._master, self._outbox.popleft()[1])

    def _flush_log(self) -> None:
        """Move the core's new log entries to the file, so that memory stays flat however long the robot runs."""
        if self._log is not None:
            self._log.write(self.core.log)
        self.core.log.clear()

    def stop(self) -> None:
        self._running = False

    def close(self) -> None:
        """Idempotent: the serve loop closes on its way out, and a caller may close again."""
        if self._closed:
            return
        self._closed = True
        self._flush_log()
        if self._log is not None:
            self._log.close()
        os.close(self._master)
        os.close(self._slave)
        self.plant.close()
