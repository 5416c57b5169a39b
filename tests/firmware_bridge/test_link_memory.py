"""RobotLink against the Python firmware core in memory: host and firmware rules together, without a port.

The transport hands the link's bytes straight to the core and its answers straight back, so every exchange
is exact, and time moves only when a test moves the core's clock or ticks a real-time core.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from firmware_bridge.codes import PROTOCOL_VERSION, Capabilities, FaultReason, StatusFlags
from firmware_bridge.errors import LinkClosed, LinkTimeout, RobotFault
from firmware_bridge.link import RobotLink
from firmware_bridge.memory import MemoryTransport

REAL_TIME = Capabilities.CAN_RESET  # no LOCKSTEP: the core answers an ACTION at its next tick


@pytest.fixture
def connect(make_core: Callable) -> Callable:
    """``connect(**make_core_args)``: a link to a new core in memory, with its transport, plant and clock."""

    def make(**core_args: object) -> tuple:
        core, plant, clock = make_core(**core_args)
        transport = MemoryTransport(core)
        return RobotLink(transport, timeout=0.5), transport, plant, clock

    return make


def test_hello_reports_what_the_core_announces(connect: Callable) -> None:
    link, _, _, _ = connect()
    info = link.hello()
    assert (info.protocol_version, info.obs_dim, info.action_dim, info.firmware_id) == (PROTOCOL_VERSION, 2, 1, "test")
    assert info.lockstep and info.can_reset
    assert info.control_period == pytest.approx(0.02) and info.watchdog_timeout == pytest.approx(0.1)
    np.testing.assert_array_equal(info.action_low, [-1.0])
    np.testing.assert_array_equal(info.action_high, [1.0])
    assert link.info is info


def test_step_applies_the_action_and_answers_its_observation(connect: Callable) -> None:
    link, transport, plant, _ = connect()
    link.hello()
    obs = link.step([0.5])
    assert (obs.seq, obs.ack_seq, obs.t_ms, obs.flags) == (1, 1, 1000, StatusFlags.WATCHDOG_ARMED)
    np.testing.assert_allclose(obs.values, [0.005, 0.05], rtol=1e-6)
    assert plant.u == 0.5
    clipped = link.step([5.0])  # within float32, beyond the robot's limits: the firmware clips
    assert StatusFlags.CLIPPED in clipped.flags and plant.u == 1.0
    assert [(c.seq, c.requested, c.applied) for c in transport.core.log[-2:]] == [(1, (0.5,), (0.5,)),
                                                                                (2, (5.0,), (1.0,))]
    host, firmware = link.stats, transport.core.stats
    assert (host.frames_sent, host.frames_received, host.rtt.count) == (3, 3, 3)
    assert (firmware.frames_received, firmware.frames_sent) == (3, 3)
    assert host.bytes_received == firmware.bytes_sent
    assert (host.dropped_frames, host.late_frames, host.timeouts, host.skipped_observations) == (0, 0, 0, 0)


def test_reset_starts_an_episode_or_is_refused(connect: Callable) -> None:
    link, _, plant, _ = connect()
    link.hello()
    link.step([1.0])
    first = link.reset()
    assert first.ack_seq == 2 and first.flags == StatusFlags.RESET and plant.resets == 1
    np.testing.assert_array_equal(first.values, [0.0, 0.0])
    link, _, plant, _ = connect(capabilities=Capabilities.LOCKSTEP)
    assert not link.hello().can_reset
    with pytest.raises(RobotFault) as caught:
        link.reset()
    assert (caught.value.reason, caught.value.ref_seq) == (FaultReason.RESET_UNSUPPORTED, 1)
    assert plant.resets == 0


def test_estop_latches_until_clear(connect: Callable) -> None:
    link, _, plant, _ = connect()
    link.hello()
    link.step([0.7])
    status = link.estop()
    assert (status.ack_seq, status.flags) == (2, StatusFlags.ESTOP) and plant.u == 0.0
    with pytest.raises(RobotFault, match="LATCHED") as caught:
        link.step([0.7])
    assert (caught.value.ref_seq, caught.value.flags) == (3, StatusFlags.ESTOP) and plant.u == 0.0
    with pytest.raises(RobotFault, match="LATCHED"):
        link.reset()
    assert link.clear().flags == StatusFlags.NONE
    assert link.step([0.7]).flags == StatusFlags.WATCHDOG_ARMED and plant.u == pytest.approx(0.7)


def test_heartbeat_reads_the_firmware_clock_and_does_not_feed_the_watchdog(connect: Callable) -> None:
    link, _, plant, clock = connect(watchdog_ms=100)
    link.hello()
    link.step([0.7])
    clock.ms += 60
    status = link.heartbeat()
    assert (status.ack_seq, status.t_ms, status.flags) == (2, 1060, StatusFlags.WATCHDOG_ARMED)
    clock.ms += 41  # 101 ms after the action: the watchdog trips before the next answer
    with pytest.raises(RobotFault) as caught:
        link.heartbeat()
    assert (caught.value.reason, caught.value.ref_seq, caught.value.flags) == (
        FaultReason.WATCHDOG, 1, StatusFlags.FAULT)
    assert plant.u == 0.0
    assert link.heartbeat().flags == StatusFlags.FAULT  # the FAULT came once; the latch stays
    assert link.clear().flags == StatusFlags.NONE


def test_a_request_the_core_does_not_answer_times_out_at_once_and_its_answer_is_late(connect: Callable) -> None:
    link, transport, _, _ = connect(capabilities=REAL_TIME, watchdog_ms=0)
    link.hello()
    start = time.monotonic()
    with pytest.raises(LinkTimeout, match="ActionMsg #1"):
        link.step([0.5], timeout=5.0)  # a real-time core answers at its next tick, which has not come
    assert time.monotonic() - start < 1.0  # nothing can arrive while the host waits: no need to wait
    transport.tick()  # the answer, now late
    assert link.heartbeat().ack_seq == 2
    assert (link.stats.timeouts, link.stats.late_frames, link.stats.skipped_observations) == (1, 1, 0)


def test_real_time_observations_stream_and_answer_actions_by_ack_seq(connect: Callable) -> None:
    link, transport, _, _ = connect(capabilities=REAL_TIME)
    link.hello()
    transport.tick()
    assert link.read_observation().ack_seq == 0  # streamed before any action
    seq = link.send_action([0.5])
    transport.tick()
    transport.tick()
    answers = [link.read_observation() for _ in range(2)]
    assert [o.ack_seq for o in answers] == [seq, seq]
    assert answers[1].seq == answers[0].seq + 1 and link.stats.dropped_frames == 0


def test_an_action_of_the_wrong_size_before_hello_is_refused_by_the_firmware(connect: Callable) -> None:
    link, _, plant, _ = connect()
    with pytest.raises(RobotFault) as caught:
        link.step([0.1, 0.2])  # without INFO the link cannot check the size
    assert (caught.value.reason, caught.value.detail, caught.value.ref_seq) == (FaultReason.BAD_LENGTH, 1, 0)
    assert plant.u == 0.0


def test_a_closed_link_raises_link_closed(connect: Callable) -> None:
    link, _, _, _ = connect()
    link.hello()
    link.close()
    with pytest.raises(LinkClosed):
        link.heartbeat()
