"""A long deploy holds: the control loop's memory does not grow with the episodes it runs (the long run
itself, 10⁶ periods against the virtual robot's pty, is tools/soak_deploy.py; docs/reliability.md)."""

import tracemalloc

import numpy as np
import pytest

from robopg.runtime.deploy import ControlLoop, DeadlineStats, task_functions
from robopg.runtime.safety import SafetyConfig, SafetyLayer
from sim.virtual_robot import RobotSimConfig, in_memory_robot

ENV = "robopg/CartPoleSwingUp-v0"
STEPS = 50
WINDOW = 4096  # periods and round trips whose percentiles the statistics keep


def loop_on_a_virtual_robot(**kwargs) -> ControlLoop:
    link = in_memory_robot(RobotSimConfig(ENV))
    info = link.hello()
    safety = SafetyLayer(np.array(info.action_low), np.array(info.action_high), SafetyConfig())
    return ControlLoop(link, safety, task_functions(ENV, STEPS, need_reward=False), **kwargs)


def still(obs: np.ndarray) -> np.ndarray:
    return np.zeros(1, dtype=np.float32)


def test_a_loop_that_keeps_no_episodes_runs_in_constant_memory():
    loop = loop_on_a_virtual_robot(keep_episodes=False)
    robot_log = loop.link.transport.core.log  # the robot's record of what it applied (robot-sim empties it too)

    def run(episodes: int) -> None:
        for _ in range(episodes):
            loop.run_episode(still)
            robot_log.clear()

    tracemalloc.start()  # before the warm-up, so that what the run frees of it counts too
    while min(loop.deadlines.periods.count, loop.link.stats.rtt.count) < WINDOW:
        run(10)  # warm-up: the timing statistics' percentile windows fill to their size
    before = tracemalloc.get_traced_memory()[0]
    run(40)  # 2,000 periods: keeping the episodes or every period would take ~300 kB
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert loop.trajectory == [] and loop.deadlines.periods.count % (STEPS - 1) == 0
    assert grown < 20_000, f"{grown} bytes more after 40 episodes"


def test_a_loop_that_keeps_episodes_has_them_all_for_the_log():
    loop = loop_on_a_virtual_robot()
    episodes = [loop.run_episode(still) for _ in range(3)]
    assert loop.trajectory == episodes and all(len(e) == STEPS for e in episodes)


def test_deadline_statistics_are_running_sums_that_match_the_whole_series():
    rng = np.random.default_rng(0)
    periods = 0.02 + 1e-3 * rng.standard_normal(10_000)
    stats = DeadlineStats(0.02)
    for p in periods:
        stats.record(float(p))
    assert stats.periods.mean == pytest.approx(periods.mean(), rel=1e-12)
    assert stats.jitter == pytest.approx(np.std(periods - 0.02), rel=1e-6)
    assert stats.periods.percentile(50) == pytest.approx(np.median(periods[-4096:]), abs=1e-5)
