"""The virtual robot: a sim task behind a pty that behaves as firmware would, with a reality gap and UART timing."""

import subprocess
import sys
import threading
import time

import gymnasium as gym
import numpy as np
import pytest

from firmware_bridge.codes import Capabilities, FaultReason, StatusFlags
from firmware_bridge.errors import LinkClosed, LinkTimeout, RobotFault
from firmware_bridge.link import RobotLink
from sim.virtual_robot import CommandLog, RobotSimConfig, VirtualRobot, in_memory_robot

ENV = "robopg/CartPoleSwingUp-v0"


@pytest.fixture
def serve():
    """Start virtual robots in background threads; stop them all at the end."""
    robots = []

    def start(**kwargs):
        robot = VirtualRobot(RobotSimConfig(ENV, **kwargs))
        thread = threading.Thread(target=robot.serve, daemon=True)
        thread.start()
        robots.append((robot, thread))
        return robot

    yield start
    for robot, thread in robots:
        robot.stop()
        thread.join(timeout=5)


def actions(n, seed=0):
    return np.random.default_rng(seed).uniform(-12, 12, size=(n, 1)).astype(np.float32)


@pytest.mark.parametrize("busy_poll", [False, True], ids=["sleep", "poll"])
def test_lockstep_robot_is_the_sim_task_with_its_gap(serve, busy_poll):
    gap = {"mass_scale": 1.3, "actuator_gain": 0.8}
    robot = serve(gap=gap, seed=4, busy_poll=busy_poll)
    env = gym.make(ENV, dynamics=gap).unwrapped
    expected, _ = env.reset(seed=4)
    with RobotLink.open(robot.port, busy_poll=busy_poll) as link:
        info = link.hello()
        assert (info.obs_dim, info.action_dim, info.control_period) == (5, 1, 0.02)
        assert info.capabilities == Capabilities.CAN_RESET | Capabilities.LOCKSTEP
        assert np.array_equal(info.action_low, [-10.0]) and np.array_equal(info.action_high, [10.0])
        first = link.reset()
        assert StatusFlags.RESET in first.flags
        assert np.allclose(first.values, expected, atol=1e-6)
        for action in actions(50):
            expected, *_ = env.step(np.clip(action, -10, 10))
            assert np.allclose(link.step(action).values, expected, atol=1e-5)
    env.close()


def test_the_gap_changes_the_robot(serve):
    nominal, heavy = serve(seed=1), serve(seed=1, gap={"mass_scale": 2.0})
    finals = []
    for robot in (nominal, heavy):
        with RobotLink.open(robot.port) as link:
            link.hello()
            link.reset()
            for action in actions(30):
                obs = link.step(action)
            finals.append(obs.values)
    assert not np.allclose(finals[0], finals[1], atol=1e-3)


def test_log_holds_every_command_as_requested_and_applied(serve, tmp_path):
    path = tmp_path / "robot.csv"
    robot = serve(log_path=path)
    sent = actions(20)
    with RobotLink.open(robot.port) as link:
        link.hello()
        link.reset()
        for action in sent:
            link.step(action)
    robot.stop()
    time.sleep(0.3)
    log = CommandLog.read(path)
    commanded = [c for c in log if c.cause == "action"]
    assert [c.requested[0] for c in commanded] == pytest.approx(sent[:, 0].tolist())
    assert all(-10 <= c.applied[0] <= 10 for c in log)
    assert any(c.requested[0] != c.applied[0] for c in commanded)  # some were clipped
    assert [c.cause for c in log[:2]] == ["start", "reset"]


def test_watchdog_trips_within_timeout_plus_one_period(serve):
    robot = serve(watchdog_ms=100, mode="realtime")
    with RobotLink.open(robot.port) as link:
        link.hello()
        sent = time.monotonic()  # before the write: the robot may take the action before the write returns
        link.send_action([1.0])
        with pytest.raises(RobotFault) as fault:
            while True:
                link.read_observation(timeout=1.0)
        waited = time.monotonic() - sent
    assert fault.value.reason == FaultReason.WATCHDOG and StatusFlags.FAULT in fault.value.flags
    assert 0.1 <= waited <= 0.1 + 0.02 + 0.03  # timeout + one period, plus scheduling slack


def test_real_time_robot_streams_at_its_control_rate(serve):
    robot = serve(mode="realtime")
    with RobotLink.open(robot.port) as link:
        link.hello()
        stamps = []
        for _ in range(26):
            obs = link.read_observation()
            link.send_action([0.0])
            stamps.append(obs.t_ms)
    periods = np.diff(stamps[1:])  # the first observation may have waited in the port
    assert abs(np.mean(periods) - 20) <= 1.0 and np.max(periods) <= 30


def test_uart_emulation_takes_the_byte_time_of_the_link(serve):
    baud = 19200
    robot = serve(baud=baud)
    with RobotLink.open(robot.port) as link:
        link.resend_after = link.timeout  # no resends: their answers would take wire time of their own
        link.hello()
        link.reset()
        start = time.monotonic()
        for action in actions(20):
            link.step(action)
        elapsed = time.monotonic() - start
        per_exchange = (link.stats.bytes_sent + link.stats.bytes_received) / link.stats.frames_sent * 10 / baud
    # 20 exchanges cannot be faster than their bytes on the wire; the emulation adds little besides.
    assert 20 * per_exchange * 0.95 <= elapsed <= 20 * per_exchange * 1.5


def test_uart_emulation_is_full_duplex(serve):
    """Requests sent ahead cross on their own line while the answers come back: the answers' bytes set the pace."""
    baud, n = 19200, 20
    robot = serve(baud=baud)
    with RobotLink.open(robot.port) as link:
        link.resend_after = link.timeout  # no resends: their answers would take wire time of their own
        link.hello()
        link.reset()
        stats = link.stats
        sent0, received0 = stats.bytes_sent, stats.bytes_received
        start = time.monotonic()
        for action in actions(n):
            link.send_action(action)
        answers = [link.read_observation().ack_seq for _ in range(n)]
        elapsed = time.monotonic() - start
        request, answer = (stats.bytes_sent - sent0) / n, (stats.bytes_received - received0) / n
    assert answers == sorted(answers)
    full_duplex = (request + n * answer) * 10 / baud  # the first request, then the answers back to back
    half_duplex = n * (request + answer) * 10 / baud
    assert full_duplex * 0.98 <= elapsed <= full_duplex * 1.1 < half_duplex


def test_a_robot_that_goes_away_is_an_error_not_a_hang(serve):
    robot = serve()
    with RobotLink.open(robot.port, timeout=0.5) as link:
        link.hello()
        robot.stop()
        time.sleep(0.3)
        start = time.monotonic()
        with pytest.raises((LinkClosed, LinkTimeout)):
            link.step([0.0])
        assert time.monotonic() - start < 1.0


def test_cli_prints_the_port_first_and_rejects_a_bad_gap():
    proc = subprocess.Popen([sys.executable, "-m", "robopg.cli", "robot-sim", "--env", ENV, "--gap",
                             "friction_scale=0.5"], stdout=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        with RobotLink.open(port) as link:
            assert link.hello().obs_dim == 5
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    bad = subprocess.run([sys.executable, "-m", "robopg.cli", "robot-sim", "--env", ENV, "--gap", "mass=2"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "mass" in bad.stderr, bad.stderr


def test_an_in_memory_robot_speaks_the_protocol_on_robot_time():
    """The virtual robot without its pty: the same firmware rules, its watchdog on the plant's clock."""
    link = in_memory_robot(RobotSimConfig("robopg/CartPoleSwingUp-v0", gap={"actuator_gain": 0.5}, seed=3,
                                          watchdog_ms=250))
    info = link.hello()
    assert info.lockstep and info.obs_dim == 5 and info.control_period == pytest.approx(0.02)
    first = link.reset()
    steps = [link.step(np.array([10.0], dtype=np.float32)) for _ in range(20)]
    # Each physics step's period passes before the next request: 19 periods from the first ACTION to the 20th,
    # whatever the host took.
    assert steps[-1].t_ms - first.t_ms == 380
    assert steps[-1].values[0] > first.values[0]  # pushed right
    with pytest.raises(ValueError, match="lockstep"):
        in_memory_robot(RobotSimConfig("robopg/CartPoleSwingUp-v0", mode="realtime"))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("watchdog_ms", 70_000, r"watchdog must be in \[0, 65535\] ms"),
    ("rate_hz", float("inf"), r"rate must be in \(0, 1e\+06\] Hz"),
    ("rate_hz", float("nan"), "rate must be in"),
    ("baud", 0, "baud rate must be in"),
    ("seed", 2**40, r"seed must be in \[0, 4294967295\]"),
])
def test_settings_beyond_the_protocol_fields_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        RobotSimConfig("robopg/CartPoleSwingUp-v0", **{field: value})
