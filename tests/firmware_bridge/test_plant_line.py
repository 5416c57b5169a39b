"""The plant line (docs/protocol.md section 12): the Python plant answers it, and the C host build drives the
swing-up plant through it exactly as the virtual robot runs the same task."""

from __future__ import annotations

import os
import select
import shutil
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from plant_rig import SWING_UP, host_build_in_loop, make

from firmware_bridge.framing import Frame, FrameDecoder, encode_frame
from firmware_bridge.link import RobotLink
from firmware_bridge.plant_line import PlantType, decode_state
from sim.plant_server import PlantServer
from sim.virtual_robot import CommandLog, RobotSimConfig, in_memory_robot

ENV = SWING_UP


def _serve(server: PlantServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    return thread


def test_the_plant_answers_each_request_with_its_seq(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    server = PlantServer(RobotSimConfig(ENV, log_path=tmp_path / "plant.csv"), os.ttyname(slave))
    thread = _serve(server)
    decoder = FrameDecoder()

    def ask(type_: PlantType, seq: int, body: bytes = b"") -> Frame:
        os.write(master, encode_frame(Frame(type_, seq, body)))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                frames = decoder.feed(os.read(master, 4096))
                if frames:
                    assert isinstance(frames[0], Frame)
                    return frames[0]
        raise AssertionError("no answer")

    try:
        info = ask(PlantType.HELLO, 0)
        assert (info.type, info.seq, info.body[:3]) == (PlantType.INFO, 0, bytes([5, 1, 1]))
        start = ask(PlantType.RESET, 1)
        terminated, first = decode_state(start.body)
        virtual = in_memory_robot(RobotSimConfig(ENV))
        virtual.hello()
        np.testing.assert_array_equal(first, virtual.reset().values)
        assert not terminated
        assert ask(PlantType.ACTUATE, 2, bytes([0, 1]) + np.float32(2.5).tobytes()).seq == 2
        _, after = decode_state(ask(PlantType.STEP, 3).body)
        np.testing.assert_array_equal(after, virtual.step([2.5]).values)
        _, sensed = decode_state(ask(PlantType.SENSE, 4).body)
        np.testing.assert_array_equal(sensed, after)  # lockstep: nothing moves between steps
        ask(PlantType.ACTUATE, 5, bytes([1, 1]) + np.float32(0.0).tobytes())
        os.write(master, encode_frame(Frame(0x01, 6)) + b"\x00\x13\x37\x00")  # not the plant's; noise
        assert ask(PlantType.SENSE, 7).seq == 7  # neither answered, and the plant goes on
        assert server.rejected == 2
    finally:
        server.stop()
        thread.join(timeout=5.0)
        os.close(master)
    assert [(c.cause, c.applied) for c in CommandLog.read(tmp_path / "plant.csv")] == [
        ("action", (2.5,)),
        ("safe", (0.0,)),
    ]


@pytest.fixture
def host_with_plant(tmp_path: Path) -> Iterator[RobotLink]:
    if shutil.which("make") is None or shutil.which("cc") is None:
        pytest.skip("needs make and a C compiler")
    make()
    loop = host_build_in_loop(tmp_path / "plant.csv")
    try:
        loop.link.hello(timeout=3.0)
        yield loop.link
    finally:
        loop.close()


def test_the_host_build_drives_the_plant_as_the_virtual_robot_does(host_with_plant: RobotLink) -> None:
    link = host_with_plant
    assert link.info is not None and link.info.firmware_id == "robopg-ref-host" and link.info.obs_dim == 5
    virtual = in_memory_robot(RobotSimConfig(ENV))
    virtual.hello()
    for _ in range(2):  # two episodes: each RESET takes the next initial state on both
        np.testing.assert_array_equal(link.reset().values, virtual.reset().values)
        for force in np.random.default_rng(5).uniform(-12, 12, size=30):
            obs, expected = link.step([force]), virtual.step([force])
            np.testing.assert_array_equal(obs.values, expected.values)
            assert obs.flags == expected.flags
