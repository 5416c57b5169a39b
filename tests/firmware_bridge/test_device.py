"""The firmware's rules (docs/protocol.md, firmware behaviour) on the Python core, without a port or a wait."""

import pytest

from firmware_bridge import messages as msg
from firmware_bridge.codes import Capabilities, FaultReason, MessageType, StatusFlags
from firmware_bridge.device import DeviceConfig
from firmware_bridge.framing import Frame, FrameDecoder, encode_frame


def decoded(wire_frames):
    """The messages in a list of wire frames, as the core returns them."""
    return [msg.decode_message(f) for f in FrameDecoder().feed(b"".join(wire_frames))]


def exchange(core, message, seq=7):
    """Send one message; the decoded answers."""
    return decoded(core.receive(msg.encode_message(message, seq)))


def test_hello_answers_info_and_changes_nothing(make_core):
    core, plant, _ = make_core()
    [info] = exchange(core, msg.HelloMsg(), seq=3)
    assert info == msg.InfoMsg(3, 2, 1, Capabilities.CAN_RESET | Capabilities.LOCKSTEP, 20_000, 100, (-1.0,), (1.0,),
                           "test")
    assert core.flags == StatusFlags.NONE and plant.u == 0.0


def test_lockstep_action_steps_the_plant_once_and_answers_its_observation(make_core):
    core, _, _ = make_core()
    [obs] = exchange(core, msg.ActionMsg((0.5,)), seq=11)
    assert isinstance(obs, msg.ObservationMsg) and obs.ack_seq == 11
    assert obs.values == pytest.approx((0.005, 0.05))
    assert obs.flags == StatusFlags.WATCHDOG_ARMED


def test_a_resent_command_is_answered_but_applied_once(make_core):
    """The same ACTION or RESET again (same seq: its answer was lost) is answered as before and not applied twice;
    a resent ACTION does not feed the watchdog. After HELLO, a new session, the same seq is a new command."""
    core, plant, clock = make_core()
    [first] = exchange(core, msg.ResetMsg(), seq=4)
    [again] = exchange(core, msg.ResetMsg(), seq=4)
    assert plant.resets == 1 and again == first and StatusFlags.RESET in again.flags
    [obs] = exchange(core, msg.ActionMsg((0.5,)), seq=5)
    clock.ms += 60
    [resent] = exchange(core, msg.ActionMsg((0.5,)), seq=5)
    assert resent.values == obs.values and resent.ack_seq == 5  # one physics step, not two
    assert [c.seq for c in core.log if c.cause == "action"] == [5] and core.stats.resends == 2
    assert core.watchdog_deadline_ms == clock.ms - 60 + 100  # from the ACTION's application, not its resend
    exchange(core, msg.HelloMsg(), seq=0)
    [new] = exchange(core, msg.ActionMsg((0.5,)), seq=5)
    assert new.values != obs.values and [c.seq for c in core.log if c.cause == "action"] == [5, 5]


def test_out_of_range_action_is_clipped_flagged_and_logged(make_core):
    core, plant, _ = make_core()
    [obs] = exchange(core, msg.ActionMsg((5.0,)), seq=1)
    assert plant.u == 1.0 and StatusFlags.CLIPPED in obs.flags
    assert (core.log[-1].requested, core.log[-1].applied, core.log[-1].seq) == ((5.0,), (1.0,), 1)
    [obs] = exchange(core, msg.ActionMsg((0.25,)), seq=2)
    assert StatusFlags.CLIPPED not in obs.flags  # the flag describes the last applied action


@pytest.mark.parametrize(("values", "reason", "detail"), [
    ((0.1, 0.2), FaultReason.BAD_LENGTH, 1),
    ((float("nan"),), FaultReason.BAD_VALUE, 0),
    ((float("inf"),), FaultReason.BAD_VALUE, 0),
])
def test_bad_actions_are_refused_and_nothing_moves(values, reason, detail, make_core):
    core, plant, _ = make_core()
    [fault] = exchange(core, msg.ActionMsg(values), seq=9)
    assert (fault.reason, fault.detail, fault.ref_seq) == (reason, detail, 9)
    assert plant.u == 0.0 and plant.x == 0.0


def test_estop_latches_until_clear_and_holds_the_safe_state(make_core):
    core, plant, _ = make_core()
    exchange(core, msg.ActionMsg((0.7,)), seq=1)
    [status] = exchange(core, msg.EstopMsg(), seq=2)
    assert isinstance(status, msg.StatusMsg) and StatusFlags.ESTOP in status.flags and plant.u == 0.0
    [fault] = exchange(core, msg.ActionMsg((0.7,)), seq=3)
    assert fault.reason == FaultReason.LATCHED and plant.u == 0.0
    [fault] = exchange(core, msg.ResetMsg(), seq=4)
    assert fault.reason == FaultReason.LATCHED and plant.resets == 0
    [status] = exchange(core, msg.ClearMsg(), seq=5)
    assert status.flags == StatusFlags.NONE and plant.u == 0.0  # safe until the next ACTION
    [obs] = exchange(core, msg.ActionMsg((0.7,)), seq=6)
    assert isinstance(obs, msg.ObservationMsg) and plant.u == pytest.approx(0.7)
    assert [c.cause for c in core.log] == ["start", "action", "estop", "action"]


def test_watchdog_trips_once_after_silence_and_latches(make_core):
    core, plant, clock = make_core(watchdog_ms=100)
    exchange(core, msg.ActionMsg((0.7,)), seq=4)
    clock.ms += 100
    assert core.poll() == []  # not later than the deadline yet
    exchange(core, msg.HeartbeatMsg(), seq=5)  # a heartbeat does not feed the watchdog
    clock.ms += 1
    [fault] = decoded(core.poll())
    assert (fault.reason, fault.ref_seq) == (FaultReason.WATCHDOG, 4) and StatusFlags.FAULT in fault.flags
    assert plant.u == 0.0 and core.log[-1].cause == "watchdog"
    clock.ms += 1000
    assert core.poll() == []  # one FAULT, not one per poll
    [refused] = exchange(core, msg.ActionMsg((0.1,)), seq=6)
    assert refused.reason == FaultReason.LATCHED


def test_actions_feed_the_watchdog(make_core):
    core, _, clock = make_core(watchdog_ms=100)
    for seq in range(10):
        exchange(core, msg.ActionMsg((0.0,)), seq=seq)
        clock.ms += 90
        assert core.poll() == []


def test_reset_starts_an_episode_or_says_it_cannot(make_core):
    core, plant, _ = make_core()
    exchange(core, msg.ActionMsg((1.0,)), seq=1)
    [obs] = exchange(core, msg.ResetMsg(), seq=2)
    assert obs.ack_seq == 2 and StatusFlags.RESET in obs.flags and plant.resets == 1 and plant.u == 0.0
    assert StatusFlags.WATCHDOG_ARMED not in obs.flags
    core, plant, _ = make_core(capabilities=Capabilities.LOCKSTEP)
    [fault] = exchange(core, msg.ResetMsg(), seq=2)
    assert fault.reason == FaultReason.RESET_UNSUPPORTED and plant.resets == 0


def test_terminal_state_is_flagged(make_core):
    core, _, _ = make_core()
    flags = [exchange(core, msg.ActionMsg((1.0,)), seq=s)[0].flags for s in range(20)]
    assert StatusFlags.TERMINATED not in flags[0] and StatusFlags.TERMINATED in flags[-1]


def test_real_time_firmware_answers_actions_on_its_next_tick(make_core):
    core, _, _ = make_core(capabilities=Capabilities.CAN_RESET)
    assert exchange(core, msg.ActionMsg((0.5,)), seq=8) == []
    [obs] = decoded([core.tick()])
    assert obs.ack_seq == 8 and obs.values == pytest.approx((0.005, 0.05))


@pytest.mark.parametrize(("frame", "reason", "detail"), [
    (Frame(MessageType.HELLO, 5, version=2), FaultReason.UNSUPPORTED_VERSION, 1),
    (Frame(MessageType.OBSERVATION, 5, version=2), FaultReason.UNSUPPORTED_VERSION, 1),  # version before type
    (Frame(0x7E, 5), FaultReason.BAD_TYPE, 0x7E),
    (Frame(MessageType.OBSERVATION, 5, b""), FaultReason.BAD_TYPE, MessageType.OBSERVATION),
    (Frame(MessageType.HELLO, 5, b"\x01"), FaultReason.BAD_LENGTH, 0),
    (Frame(MessageType.ACTION, 5, b"\x01\x00"), FaultReason.BAD_LENGTH, 1),
])
def test_frames_it_cannot_take_are_answered_with_a_fault(frame, reason, detail, make_core):
    core, _, _ = make_core()
    [fault] = decoded(core.receive(encode_frame(frame)))
    assert isinstance(fault, msg.FaultMsg) and (fault.reason, fault.detail, fault.ref_seq) == (reason, detail, 5)
    assert core.stats.rejected_messages == 1


def test_noise_is_dropped_silently_and_the_next_frame_gets_through(make_core):
    core, _, _ = make_core()
    wire = msg.encode_message(msg.HeartbeatMsg(), 1)
    corrupted = bytearray(wire)
    corrupted[3] ^= 0x10
    answers = core.receive(b"\xff\x13garbage" + bytes(corrupted) + wire)
    assert len(answers) == 1 and core.stats.crc_errors + core.stats.malformed_frames >= 2
    assert core.stats.rejected_messages == 0


def test_sequence_numbers_count_every_frame_sent(make_core):
    core, _, _ = make_core()
    frames = [f for m in (msg.HelloMsg(), msg.HeartbeatMsg(), msg.ActionMsg((9.0, 9.0)))
              for f in FrameDecoder().feed(b"".join(core.receive(msg.encode_message(m, 0))))]
    assert [f.seq for f in frames] == [0, 1, 2]


def test_config_is_validated():
    with pytest.raises(ValueError, match="low <= high"):
        DeviceConfig(obs_dim=2, action_low=(1.0,), action_high=(-1.0,), control_period_us=1, watchdog_ms=0,
                     firmware_id="x")
    with pytest.raises(ValueError, match="obs_dim"):
        DeviceConfig(obs_dim=0, action_low=(0.0,), action_high=(1.0,), control_period_us=1, watchdog_ms=0,
                     firmware_id="x")
