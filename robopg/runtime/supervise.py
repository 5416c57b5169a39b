"""Supervise a robot whose firmware runs the policy itself (POLICY mode, firmware/hal.h): the host starts an
episode (RESET), reads the firmware's stream of observations as telemetry, and stops it (ESTOP) on a
fault, Ctrl-C or the end of the episode; it sends no action.

The firmware does not report its actions, so an episode's reward is computed with the exported policy's
action on each streamed observation: the firmware's C policy equals it within the export's check (1e-5 of the
action range, docs/export.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from firmware_bridge.codes import StatusFlags
from firmware_bridge.link import RobotLink
from robopg.runtime.deploy import RobotError, TaskFunctions

STOPPING = StatusFlags.ESTOP | StatusFlags.FAULT | StatusFlags.TERMINATED


@dataclass(frozen=True)
class SupervisedEpisode:
    ret: float
    steps: int
    observations: np.ndarray  # (steps + 1, obs_dim): the RESET's answer, then the stream


def supervise_episode(
    link: RobotLink,
    task: TaskFunctions,
    act: Callable[[np.ndarray], np.ndarray],
    steps: int | None = None,
    late: float = 2.0,
) -> SupervisedEpisode:
    """One episode of a POLICY-mode robot: RESET, then ``steps`` (default: the task's) streamed observations
    or until the task or the firmware ends it, then :func:`park`; the robot is stopped with ESTOP when anything
    goes wrong, or when an observation is more than ``late`` seconds overdue."""
    if link.info is None or link.info.lockstep:
        raise RobotError("a POLICY-mode robot streams in real time: HELLO first, and it must not be LOCKSTEP")
    limit = steps or task.max_steps
    try:
        # Not resent: the answer to a resent RESET would read as the first observation of the stream.
        resend_after, link.resend_after = link.resend_after, link.timeout
        try:
            obs = link.reset().values
        finally:
            link.resend_after = resend_after
        seen, ret = [obs], 0.0
        for _ in range(limit):
            observation = link.read_observation(link.info.control_period + late)
            if observation.flags & (StatusFlags.ESTOP | StatusFlags.FAULT):
                raise RobotError(f"the robot stopped the episode ({observation.flags!r})")
            ret += task.reward(obs, act(obs), observation.values)
            obs = observation.values
            seen.append(obs)
            if task.terminated(obs) or observation.flags & StatusFlags.TERMINATED:
                break
    except BaseException:
        link.estop()
        raise
    park(link)
    return SupervisedEpisode(ret, len(seen) - 1, np.stack(seen))


def park(link: RobotLink) -> None:
    """Between episodes, as ``robopg deploy`` parks a robot (RESET: the next initial state), then stopped there
    (ESTOP, CLEAR: the policy waits for the next episode's RESET, the latch is not left set)."""
    link.reset()
    link.estop()
    link.clear()
