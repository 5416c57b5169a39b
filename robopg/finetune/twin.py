"""The robot's simulated twin: the task's simulator with the dynamics identified from the robot's own
episodes, behind the same firmware state machine, protocol, link, safety layer and control loop.

A fine-tuning session rehearses on it (``rehearsal_episodes``): the learner's first exploring episodes run on
the twin instead of the robot, at the cost of simulator time while the robot stays parked, and the robot's
episodes are left for what only the robot can do: show the dynamics (the baseline, which is also the
identification's data) and judge the result (the evaluations). This is the real-to-sim-to-real loop of
system identification (``robopg/identify.py``) with domain randomization over the identified ranges
(Tobin et al. 2017; narrowed by identification as in Chebotar et al. 2019).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from robopg.identify import LATENCY, IdentifyConfig, identify
from robopg.runtime.deploy import ControlLoop, prepare_robot, robot_session, task_functions
from robopg.runtime.episode import RobotEpisode
from robopg.runtime.onnx_policy import PolicyMetadata
from robopg.runtime.safety import SafetyConfig, SafetyLayer
from sim.virtual_robot import RobotSimConfig, in_memory_robot

# A context manager of a robot whose dynamics are ``gap`` (sim.randomization dynamics: values or ranges).
Twin = Callable[[Mapping[str, Any]], contextlib.AbstractContextManager[ControlLoop]]


def identified_dynamics(env_id: str, episodes: Sequence[RobotEpisode], params: Sequence[str],
                        seed: int) -> dict[str, Any]:
    """The ``dynamics`` of ``env_id`` fitted to ``episodes``: a range around each continuous estimate
    (``Identification.randomization``), the latency fixed at its fitted integer."""
    config = IdentifyConfig(seed=seed)
    logged = [(np.asarray(ep.observations, np.float64), np.asarray(ep.commands, np.float64)) for ep in episodes]
    ranges = identify(env_id, logged, params, config).randomization(config)
    return {key: int(low) if key == LATENCY else (low, high) for key, (low, high) in ranges.items()}


def simulated_twin(meta: PolicyMetadata, safety: SafetyConfig, seed: int) -> Twin:
    """Twins of the robot that ``meta``'s policy runs on, each in this process, with the robot's safety
    settings; each twin's episodes start from its own initial states (``seed`` onwards)."""

    @contextlib.contextmanager
    def twin(gap: Mapping[str, Any]) -> Iterator[ControlLoop]:
        link = in_memory_robot(RobotSimConfig(meta.env_id, gap=dict(gap), seed=seed))
        layer = SafetyLayer(np.array(meta.action_low), np.array(meta.action_high), safety)
        with prepare_robot(link, meta) as ready, robot_session(ready):
            yield ControlLoop(ready, layer, task_functions(meta.env_id), history=meta.history)

    return twin
