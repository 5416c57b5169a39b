"""A session's rehearsal: the twin is identified from the robot's baseline episodes, and the learner's first
exploring episodes run on it, not on the robot."""

import contextlib
from pathlib import Path

import numpy as np
import pytest

from robopg.checkpoint import restore
from robopg.errors import ConfigError
from robopg.export.to_onnx import metadata_for
from robopg.finetune import FinetuneConfig, finetune, finetune_configs
from robopg.finetune.twin import simulated_twin
from robopg.runtime.deploy import ControlLoop, prepare_robot, robot_session, task_functions
from robopg.runtime.safety import SafetyConfig, SafetyLayer
from sim.virtual_robot import RobotSimConfig, in_memory_robot

FIXTURE = Path(__file__).parent / "fixtures" / "swingup_ddpg.pt"
ENV = "robopg/CartPoleSwingUp-v0"


def test_the_twin_has_the_identified_latency_and_takes_the_rehearsal_episodes(tmp_path):
    restored = restore(FIXTURE)
    meta = metadata_for(restored)
    safety = SafetyConfig(8.0)
    made, twin_episodes = [], []
    make_twin = simulated_twin(meta, safety, seed=5)

    @contextlib.contextmanager
    def recording_twin(gap):
        made.append(dict(gap))
        with make_twin(gap) as loop:
            yield loop
        twin_episodes.append(len(loop.trajectory))

    config, method = finetune_configs({"episodes": 6, "baseline_episodes": 2, "eval_episodes": 2,
                                       "rehearsal_episodes": 3, "twin_training_steps": 0,
                                       "identify_params": ["action_latency_steps"],
                                       "warmup_episodes": 2}, "cautious_a2c")
    link = in_memory_robot(RobotSimConfig(ENV, gap={"action_latency_steps": 3}, seed=1))
    with prepare_robot(link, meta) as ready, robot_session(ready):
        robot = ControlLoop(ready, SafetyLayer(np.array(meta.action_low), np.array(meta.action_high), safety),
                            task_functions(ENV))
        result = finetune(robot, restored.learner, restored.state, config, method, tmp_path, twin=recording_twin)
    assert made == [{"action_latency_steps": 3}]  # identified exactly from two baseline episodes
    assert twin_episodes == [3]
    # The robot ran its budget and no more: the rehearsal's episodes were the twin's. The learner's warm-up
    # (2 episodes) took place on the twin, so the first evaluation is due as soon as the budget asks for it.
    assert len(robot.trajectory) == 6
    assert [r.kind for r in result.records] == ["baseline", "rehearsal", "explore", "explore", "eval"]
    assert "action_latency_steps 3" in result.records[1].note


def test_a_rehearsal_needs_a_twin_and_identifiable_parameters(tmp_path):
    restored = restore(FIXTURE)
    with pytest.raises(ConfigError, match="unknown dynamics parameter 'gain'"):
        FinetuneConfig(identify_params=("gain",))
    config, method = finetune_configs({"episodes": 5, "baseline_episodes": 2, "eval_episodes": 2,
                                       "rehearsal_episodes": 1, "twin_training_steps": 0,
                                       "identify_params": ["action_latency_steps"],
                                       "warmup_episodes": 1}, "cautious_a2c")
    robot = in_memory_robot(RobotSimConfig(ENV, seed=1))
    meta = metadata_for(restored)
    with prepare_robot(robot, meta) as ready, robot_session(ready), pytest.raises(ConfigError, match="twin"):
        loop = ControlLoop(ready, SafetyLayer(np.array(meta.action_low), np.array(meta.action_high), SafetyConfig()),
                           task_functions(ENV))
        finetune(loop, restored.learner, restored.state, config, method, tmp_path)
