"""A session over a noisy line: resends, discarded episodes, reconnection after a cut, and the end of it.

The robot is the in-memory virtual robot (``sim.virtual_robot.in_memory_robot``) behind a seeded
:class:`firmware_bridge.faults.FaultyTransport`, on a virtual clock: a cut of seconds costs no wall-clock time.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.errors import LinkTimeout
from firmware_bridge.faults import FaultyTransport, LineFaults
from firmware_bridge.memory import VirtualClock
from robopg.runtime.deploy import ControlLoop, RobotError, task_functions
from robopg.runtime.safety import SafetyLayer
from sim.controllers import cartpole_swing_up
from sim.virtual_robot import RobotSimConfig, in_memory_robot

ROOT = Path(__file__).resolve().parents[2]
ENV = "robopg/CartPoleSwingUp-v0"
HOST_BYTES_PER_EPISODE = 3_700  # 250 ACTIONs of the swing-up and a RESET, on the wire


class Echo:
    """A transport whose far end sends back what it is sent."""

    def __init__(self) -> None:
        self.pending = b""

    def write(self, data: bytes) -> None:
        self.pending += data

    def read(self, deadline: float) -> bytes:
        data, self.pending = self.pending, b""
        if not data:
            raise LinkTimeout("nothing")
        return data

    def close(self) -> None:
        pass


def test_the_faulty_line_drops_flips_and_cuts_as_seeded():
    clock = VirtualClock()
    line = FaultyTransport(Echo(), LineFaults(drop=0.01, flip=0.001, cuts=((20_000, 2.0),), seed=3), clock)
    data = bytes(range(1, 201)) * 50  # 10 kB each way
    line.write(data)
    back = line.read(clock() + 1)
    counts = line.counts
    assert 150 <= counts.dropped_bytes <= 250 and 120 <= counts.flipped_bits <= 200  # 1 % of 20 kB, 0.1 % of 160 kbit
    assert len(back) == 2 * len(data) - counts.dropped_bytes - len(data)  # what was not dropped came back
    line.write(data)  # the 20,000th byte written starts a 2 s cut
    assert line.cut and counts.cut_starts == [clock()] and counts.cut_bytes == len(data)
    with pytest.raises(LinkTimeout):
        line.read(clock() + 1)
    clock.advance_to(clock() + 2.0)
    line.write(b"\x01\x02")
    assert not line.cut and line.read(clock() + 1)
    again = FaultyTransport(Echo(), LineFaults(drop=0.01, flip=0.001, seed=3), VirtualClock())
    again.write(data)
    assert again.read(0) == back  # seeded: the same damage


def session(faults: LineFaults, **loop_args) -> tuple[ControlLoop, object]:
    link = in_memory_robot(RobotSimConfig(ENV), faults)
    info = link.hello()
    loop = ControlLoop(link, SafetyLayer(info.action_low, info.action_high), task_functions(ENV), **loop_args)
    return loop, link.transport.inner.core


def test_after_a_cut_the_episode_is_discarded_and_the_session_goes_on():
    loop, core = session(LineFaults(cuts=((HOST_BYTES_PER_EPISODE + 1000, 2.0),)), max_faults=1)
    episodes = [loop.run_episode(cartpole_swing_up) for _ in range(2)]
    assert [len(e) for e in episodes] == [250, 250] and loop.trajectory == episodes  # complete ones only
    assert loop.discarded == 1 and len(loop.faults) == 1 and "no answer to ActionMsg" in loop.faults[0]
    causes = [c.cause for c in core.log]
    assert causes.count("watchdog") == 1  # the robot went safe by itself during the cut
    watchdog = next(c for c in core.log if c.cause == "watchdog")
    last_action = max(c.t_ms for c in core.log if c.cause == "action" and c.t_ms <= watchdog.t_ms)
    assert watchdog.t_ms - last_action <= 250 + 20  # watchdog timeout + one period
    assert core.stats.resends == 0 and loop.link.stats.resends > 0  # nothing reached it during the cut


def test_the_session_stops_with_one_line_after_max_faults_or_when_the_line_stays_dead(tmp_path):
    cuts = tuple((HOST_BYTES_PER_EPISODE * (i + 1) + 500, 1.0) for i in range(3))
    loop, _ = session(LineFaults(cuts=cuts), max_faults=2, log=tmp_path / "traj.npz")
    with pytest.raises(RobotError, match=r"^stopped after 3 link faults \(at most 2\); the last: no answer") as caught:
        for _ in range(5):
            loop.run_episode(cartpole_swing_up)
    assert "\n" not in str(caught.value)
    saved = np.load(tmp_path / "traj.npz")  # the completed episodes are on disk
    completed = len(loop.trajectory)
    assert completed >= 1 and {f"command_{i}" for i in range(completed)} == {f for f in saved.files
                                                                             if f.startswith("command")}
    loop, _ = session(LineFaults(cuts=((500, 60.0),)), max_faults=5, reconnect_timeout=5.0)
    with pytest.raises(RobotError, match="the link did not come back within 5 s after a fault"):
        loop.run_episode(cartpole_swing_up)
    loop, _ = session(LineFaults(cuts=((500, 60.0),)))  # max_faults 0: the fault itself, as before
    with pytest.raises(LinkTimeout):
        loop.run_episode(cartpole_swing_up)


def test_finetuning_learns_only_from_complete_episodes(tmp_path):
    from robopg.checkpoint import restore
    from robopg.finetune import finetune, finetune_configs

    restored = restore(ROOT / "tests" / "robopg" / "fixtures" / "swingup_ddpg.pt")
    config, method = finetune_configs({"episodes": 6, "baseline_episodes": 2, "eval_episodes": 2,
                                       "warmup_episodes": 1, "rehearsal_episodes": 0, "twin_training_steps": 0},
                                      "cautious_a2c")
    loop, _ = session(LineFaults(cuts=((HOST_BYTES_PER_EPISODE * 3 + 800, 2.0),)), max_faults=3)
    finetune(loop, restored.learner, restored.state, config, method, tmp_path)
    # Six episodes reached the session (baseline 2, exploring 2, evaluation 2), all whole; the one the cut
    # interrupted was run again, and neither the learner nor finetune.csv saw it.
    assert loop.discarded == 1 and len(loop.trajectory) == 6 and all(len(e) == 250 for e in loop.trajectory)
    kinds = [line.split(",")[1] for line in (tmp_path / "finetune.csv").read_text().splitlines()[1:]]
    assert kinds == ["baseline", "explore", "explore", "eval"]


def test_episodes_complete_on_a_noisy_line_within_the_limits():
    """The figures of docs/reliability.md, at a smaller count: at 1 % byte loss and at 0.1 % bit flips at least 95 %
    of episodes complete; after 2 s cuts the session goes on; the robot is safe within watchdog + one period of
    each cut; no command leaves the limits."""
    result = subprocess.run([sys.executable, "-m", "tools.fault_link", "--episodes", "12", "--drop", "0.01",
                             "--flip", "0.001", "--cuts", "2", "--cut-every", "12000", "--json"],
                            capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    drop, flip, cuts = (json.loads(line) for line in result.stdout.splitlines())
    for report in (drop, flip, cuts):
        assert report["stopped"] == "" and report["episodes_completed"] == 12
        assert report["episodes_completed"] / report["episodes_started"] >= 0.95 or report is cuts
        assert report["commands_out_of_limits"] == 0 and report["steps"] == 12 * 250
    assert drop["host_resends"] > 0 and drop["firmware_resends"] > 0  # answers were lost and commands resent
    assert cuts["link_faults"] == 2 and cuts["episodes_started"] == 14
    assert cuts["worst_seconds_to_safe"] <= cuts["watchdog_seconds"] + cuts["period_seconds"]
