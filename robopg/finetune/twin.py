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
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from robopg.core.history import History
from robopg.envs import make_env
from robopg.errors import EnvError
from robopg.finetune.decide import Predict
from robopg.identify import LATENCY, NOISE, IdentifyConfig, identify
from robopg.runtime.deploy import ControlLoop, prepare_robot, robot_session, task_functions
from robopg.runtime.episode import PolicyFn, RobotEpisode
from robopg.runtime.onnx_policy import PolicyMetadata
from robopg.runtime.safety import SafetyConfig, SafetyLayer
from sim.virtual_robot import RobotSimConfig, in_memory_robot

# The share of each estimate the twin randomizes over, on each side. Not the estimates' standard errors: a joint
# fit's estimates can be strongly correlated (a cart-pole's mass and actuator gain are fitted only through their
# ratio: 3.78 and 2.65 for a robot of gain 0.7), and ranges of several standard errors drawn independently pair
# values the log rules out (the twin of that robot returned 103 ± 48 with such ranges).
TWIN_SPREAD = 0.05

# A context manager of a robot whose dynamics are ``gap`` (sim.randomization dynamics: values or ranges).
Twin = Callable[[Mapping[str, Any]], contextlib.AbstractContextManager[ControlLoop]]


def identified_dynamics(env_id: str, episodes: Sequence[RobotEpisode], params: Sequence[str],
                        seed: int) -> dict[str, Any]:
    """The ``dynamics`` of ``env_id`` fitted to ``episodes``: ± ``TWIN_SPREAD`` around each continuous estimate,
    the latency fixed at its fitted integer."""
    logged = [(np.asarray(ep.observations, np.float64), np.asarray(ep.commands, np.float64)) for ep in episodes]
    found = identify(env_id, logged, params, IdentifyConfig(seed=seed))
    return {key: round(value) if key == LATENCY else
            (round(value * (1 - TWIN_SPREAD), 4), round(value * (1 + TWIN_SPREAD), 4))
            for key, value in found.estimates.items()}


def simulated_twin(meta: PolicyMetadata, safety: SafetyConfig, seed: int, max_steps: int | None = None) -> Twin:
    """Twins of the robot that ``meta``'s policy runs on, each in this process, with the robot's safety
    settings and episode length (``max_steps``, default the task's); each twin's episodes start from its own
    initial states (``seed`` onwards)."""

    @contextlib.contextmanager
    def twin(gap: Mapping[str, Any]) -> Iterator[ControlLoop]:
        link = in_memory_robot(RobotSimConfig(meta.env_id, gap=dict(gap), seed=seed))
        layer = SafetyLayer(np.array(meta.action_low), np.array(meta.action_high), safety)
        with prepare_robot(link, meta) as ready, robot_session(ready):
            yield ControlLoop(ready, layer, task_functions(meta.env_id, max_steps), history=meta.history)

    return twin


def return_predictor(env_id: str, dynamics: Mapping[str, Any], policy: PolicyFn, history: int,
                     steps: int) -> Predict | None:
    """The return of ``policy`` (fed ``history`` steps of history, as on the robot) over at most ``steps`` control
    steps in the simulator with ``dynamics`` (each range at its middle, no sensor noise), from the state an initial
    observation describes: a prediction of the robot's return from that state, which evaluations are adjusted
    by (``decide.adjusted``). None for a task that cannot be put in an observed state. The predictor keeps its
    simulator, closed when the predictor is dropped."""
    fixed = {key: (sum(value) / 2 if isinstance(value, tuple | list) else value) for key, value in dynamics.items()
             if key != NOISE}
    try:
        env = make_env(env_id, **({"dynamics": fixed} if fixed else {})).unwrapped  # others' envs take none
    except EnvError:
        return None
    try:
        env.set_state(env.reset(seed=0)[0])  # a task whose observation does not determine its state refuses
    except (AttributeError, ValueError):
        env.close()
        return None
    act_dim, low, high = env.action_space.shape[0], env.action_space.low, env.action_space.high

    def predict(first_observation: np.ndarray) -> float:
        obs = np.asarray(first_observation, dtype=np.float32)
        inputs = History(history, obs.size, act_dim)
        policy_input, total = inputs.start(obs), 0.0
        env.set_state(obs)
        for _ in range(steps):
            command = np.clip(policy(policy_input), low, high)
            obs, reward, terminated, _, _ = env.step(command)
            total += float(reward)
            if terminated:
                break
            policy_input = inputs.step(command, obs)
        return total

    weakref.finalize(predict, env.close)
    return predict
