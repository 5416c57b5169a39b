"""The plant in the loop: a sim/ task served on the plant line of real firmware (docs/protocol.md section 12).

``robopg robot-sim --plant-port PORT`` runs this instead of a virtual robot: the firmware (the C host build,
or the Cortex-M port under QEMU) keeps its own protocol state machine, limits and watchdog, and reads its
sensors and writes its actuators here, over a second serial line. The plant is the virtual robot's
(:class:`~sim.virtual_robot.SimPlant`, with the same reality gap and the same initial state for each
episode), its settings a :class:`~sim.virtual_robot.RobotSimConfig`, its command log the same CSV.

- **lockstep**: the physics advances one control period per PLANT_STEP;
- **real time**: the physics advances every control period by the wall clock; the firmware samples and
  commands it whenever it likes, as it would a robot.
"""

from __future__ import annotations

import time

import numpy as np

from firmware_bridge.device import AppliedCommand
from firmware_bridge.errors import FrameError, LinkTimeout, MalformedMessage
from firmware_bridge.framing import Frame, FrameDecoder, encode_frame
from firmware_bridge.plant_line import PlantInfo, PlantType, decode_actuate, encode_state
from firmware_bridge.transport import SerialTransport
from sim.spec import task_spec
from sim.virtual_robot import IDLE_WAKE_SECONDS, CommandLog, RobotSimConfig, SimPlant


class PlantServer:
    """Serve ``config``'s task on the firmware's plant line ``port`` until :meth:`stop`."""

    def __init__(self, config: RobotSimConfig, port: str) -> None:
        self.config = config
        rate = config.rate_hz if config.rate_hz is not None else task_spec(config.env_id).control_hz
        self.period = 1.0 / rate
        self.plant = SimPlant(config.env_id, dynamics=config.gap, seed=config.seed)
        space = self.plant.env.action_space
        self.info = PlantInfo(obs_dim=int(np.prod(self.plant.env.observation_space.shape)),
                              action_low=tuple(map(float, space.low)), action_high=tuple(map(float, space.high)),
                              lockstep=config.mode == "lockstep", period_us=round(self.period * 1e6))
        self.transport = SerialTransport(port)
        self._decoder = FrameDecoder()
        self._log = CommandLog(config.log_path) if config.log_path else None
        self._start = time.monotonic()
        self._running = True
        self.steps = 0
        self.rejected = 0  # frames that failed the framing checks or carried an unknown message

    def _ms(self) -> int:
        return int((time.monotonic() - self._start) * 1000)

    def serve(self) -> None:
        next_tick = time.monotonic() + self.period
        try:
            while self._running:
                wake = next_tick if not self.info.lockstep else time.monotonic() + IDLE_WAKE_SECONDS
                try:
                    data = self.transport.read(wake)
                except LinkTimeout:
                    data = b""
                for frame in self._decoder.feed(data):
                    answer = self.answer(frame) if isinstance(frame, Frame) else None
                    if answer is None:
                        self.rejected += 1
                    else:
                        self.transport.write(encode_frame(answer))
                if not self.info.lockstep and time.monotonic() >= next_tick:
                    self._advance()
                    next_tick += self.period
                    if next_tick < time.monotonic():  # fell behind: skip, do not burst
                        next_tick = time.monotonic() + self.period
        finally:
            self.close()

    def answer(self, frame: Frame | FrameError) -> Frame | None:
        """The answer to one request (None for a frame the plant does not take)."""
        if not isinstance(frame, Frame):
            return None
        if frame.type == PlantType.HELLO:
            return Frame(PlantType.INFO, frame.seq, self.info.encode())
        if frame.type == PlantType.RESET:
            self.plant.reset()
        elif frame.type == PlantType.ACTUATE:
            try:
                safe, command = decode_actuate(frame.body)
            except MalformedMessage:
                return None
            if command.size != len(self.info.action_low):
                return None
            self.plant.apply(command)
            if self._log is not None:
                values = tuple(map(float, command))
                self._log.write([AppliedCommand(self._ms(), None if safe else frame.seq, values, values,
                                                "safe" if safe else "action")])
        elif frame.type == PlantType.STEP:
            if self.info.lockstep:
                self._advance()
        elif frame.type != PlantType.SENSE:
            return None
        return Frame(PlantType.STATE, frame.seq, encode_state(self.plant.terminated, self.plant.observe()))

    def _advance(self) -> None:
        self.plant.advance()
        self.steps += 1

    def stop(self) -> None:
        self._running = False

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        self.transport.close()
        self.plant.close()
