"""Policies with a history in their input: the layout, training with it (every kind of trainer), the export, and
the runtime feeding it on a robot exactly as training does."""

import numpy as np
import pytest
import torch
from conftest import invoke

from firmware_bridge.codes import Capabilities, StatusFlags
from firmware_bridge.link import Observation, RobotInfo
from robopg.api import evaluate, load_policy
from robopg.checkpoint import restore
from robopg.core.history import History, HistoryWrapper, history_input_dim, observation_dim
from robopg.core.nets import torch_policy_fn
from robopg.envs import make_env
from robopg.errors import ConfigError
from robopg.evaluation import evaluate as evaluate_episodes
from robopg.export import export_policy
from robopg.finetune import FinetuneConfig, finetune, finetune_configs
from robopg.identify import IdentifyConfig, identify, load_log
from robopg.registry import make_config
from robopg.runtime.deploy import ControlLoop, TaskFunctions, prepare_robot, robot_session, task_functions
from robopg.runtime.onnx_policy import OnnxPolicy
from robopg.runtime.safety import SafetyLayer
from robopg.training.run import make_trainer, resume, train
from sim.virtual_robot import RobotSimConfig, in_memory_robot

TOY = "PointToOrigin-v0"  # tests/robopg/toy_envs.py: x' = x + 0.1·clip(a), 20 steps from x ~ U(-1, 1)
SWING_UP = "robopg/CartPoleSwingUp-v0"
SMALL = {"eval_episodes": 1, "actor_hidden": [8], "log_every": 100}


def test_the_input_is_newest_first_and_its_past_starts_as_the_first_observation_and_zero_commands():
    history = History(2, obs_dim=2, act_dim=1)
    first = history.start(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(first, [1, 2, 1, 2, 1, 2, 0, 0])
    second = history.step(np.array([0.5]), np.array([3.0, 4.0]))
    np.testing.assert_array_equal(second, [3, 4, 1, 2, 1, 2, 0.5, 0])
    third = history.step(np.array([-0.5]), np.array([5.0, 6.0]))
    np.testing.assert_array_equal(third, [5, 6, 3, 4, 1, 2, -0.5, 0.5])
    np.testing.assert_array_equal(first, [1, 2, 1, 2, 1, 2, 0, 0])  # each input is the caller's to keep
    np.testing.assert_array_equal(history.start(np.array([7.0, 8.0])), [7, 8, 7, 8, 7, 8, 0, 0])
    assert history_input_dim(2, 1, 2) == 8 and observation_dim(8, 1, 2) == 2


def test_without_history_the_input_is_the_observation_and_the_env_is_not_wrapped():
    obs = np.array([1.0, 2.0], dtype=np.float32)
    assert History(0, 2, 1).start(obs) is obs and History(0, 2, 1).step(np.zeros(1), obs) is obs
    env = make_env(TOY)
    assert not isinstance(env, HistoryWrapper) and make_config("ddpg", {}).env_options() == {}
    env.close()


@pytest.mark.parametrize(("value", "message"), [
    (-1, "history must be an integer >= 0, got -1"), (101, "history must be at most 100"),
    (1.5, "history must be an integer"),
])
def test_a_bad_history_is_refused_by_name(value, message):
    with pytest.raises(ConfigError, match=message):
        make_config("a2c", {"history": value})


def test_the_wrapper_records_the_commands_clipped_to_the_action_space():
    env = make_env(TOY, history=2)
    assert env.observation_space.shape == (history_input_dim(1, 1, 2),)
    obs, _ = env.reset(seed=0)
    x0 = obs[0]
    after, *_ = env.step(np.array([3.0], dtype=np.float32))  # the toy clips to 1 too: x1 = x0 + 0.1
    np.testing.assert_allclose(after, [x0 + 0.1, x0, x0, 1.0, 0.0], rtol=1e-6)
    env.close()


@pytest.mark.parametrize(("algo", "settings"), [
    ("ddpg", {"learning_starts": 50, "batch_size": 16, "critic_hidden": [8]}),
    ("dpg", {"learning_starts": 50, "batch_size": 16, "value_hidden": [8]}),
    ("a2c", {"num_envs": 2, "rollout_steps": 10, "critic_hidden": [8]}),
    ("a2c_sil", {"num_envs": 2, "rollout_steps": 10, "sil_batch_size": 8, "critic_hidden": [8]}),
    ("reinforce", {"num_envs": 2, "episodes_per_update": 2, "critic_hidden": [8]}),
    ("offpac", {"num_envs": 2, "episodes_per_update": 2, "critic_hidden": [8]}),
])
def test_every_kind_of_trainer_learns_on_the_history_and_resume_keeps_it(algo, settings, tmp_path):
    config = make_config(algo, {**SMALL, **settings, "total_steps": 200, "eval_every": 200, "checkpoint_every": 100,
                                "history": 3})
    run = tmp_path / "run"
    train(TOY, config, run, show_progress=False)
    assert "history = 3" in (run / "config.toml").read_text()
    restored = restore(run)
    assert (restored.history, restored.obs_dim, restored.state["obs_dim"]) == (3, 1, history_input_dim(1, 1, 3))
    assert resume(run, total_steps=300, show_progress=False).steps >= 300
    assert restore(run).history == 3


def test_a3c_workers_learn_on_the_history(tmp_path):
    config = make_config("a3c", {**SMALL, "critic_hidden": [8], "workers": 1, "num_envs": 1, "rollout_steps": 10,
                                 "total_steps": 200, "eval_every": 200, "checkpoint_every": 200, "history": 2})
    train("Pendulum-v1", config, tmp_path / "run", show_progress=False)  # registered in the workers' processes too
    assert restore(tmp_path / "run").state["obs_dim"] == history_input_dim(3, 1, 2)


def test_the_trainers_envs_give_the_history():
    config = make_config("ddpg", {**SMALL, "history": 2, "buffer_size": 1000})
    trainer = make_trainer(SWING_UP, config, "unused", show_progress=False)
    try:
        assert isinstance(trainer.env, HistoryWrapper) and isinstance(trainer.eval_env, HistoryWrapper)
        assert trainer.obs_dim == history_input_dim(5, 1, 2)
    finally:
        trainer.close()


@pytest.fixture(scope="module")
def history_run(tmp_path_factory):
    """A small DDPG swing-up policy with 3 steps of history, trained under an actuator-gain range."""
    run = tmp_path_factory.mktemp("history") / "run"
    config = make_config("ddpg", {**SMALL, "critic_hidden": [8], "total_steps": 400, "learning_starts": 200,
                                  "batch_size": 32, "eval_every": 400, "checkpoint_every": 400, "history": 3,
                                  "randomize": ["actuator_gain=0.7:1"]})
    train(SWING_UP, config, run, show_progress=False)
    export_policy(run, run / "policy.onnx")
    return run


def test_the_export_takes_the_history_and_matches_torch_along_an_episode(history_run):
    onnx = OnnxPolicy(history_run / "policy.onnx")
    meta = onnx.metadata
    assert (meta.history, meta.obs_dim, meta.input_dim) == (3, 5, history_input_dim(5, 1, 3))
    torch_policy = restore(history_run).policy()
    history = History(3, 5, 1)
    env = make_env(SWING_UP).unwrapped  # the robot's view: raw observations; the runtime keeps the history
    obs, _ = env.reset(seed=7)
    policy_input, inputs, actions = history.start(obs), [], []
    for _ in range(60):
        inputs.append(policy_input)
        action = onnx(policy_input)
        actions.append(action)
        obs = env.step(action)[0]
        policy_input = history.step(np.clip(action, -10, 10), obs)
    env.close()
    with torch.no_grad():
        expected = torch_policy.double()(torch.from_numpy(np.array(inputs)).double()).numpy()
    assert np.max(np.abs(np.array(actions) - expected)) / 10 < 1e-5  # normalized by half the actuator range


class ScriptedRobot:
    """A lockstep robot with the toy task's plant (x' = x + 0.1·a), whose RESETs put it where the toy env seeded
    ``seed, seed + 1, ...`` starts (an episode's start and the parking after it are a RESET each): what the
    policy sees on it must be what it saw in training."""

    def __init__(self, seed: int) -> None:
        self.info = RobotInfo(1, 1, 1, np.array([-1.0], np.float32), np.array([1.0], np.float32), 0.02, None,
                              "scripted", Capabilities.LOCKSTEP | Capabilities.CAN_RESET)
        self.starts = make_env(TOY)
        self.seed, self.x = seed, np.zeros(1, np.float32)

    def observation(self) -> Observation:
        return Observation(0, 0, 0, StatusFlags(0), self.x.copy())

    def reset(self) -> Observation:
        self.x = self.starts.reset(seed=self.seed)[0]
        self.seed += 1
        return self.observation()

    def step(self, command: np.ndarray) -> Observation:
        self.x = (self.x + 0.1 * command).astype(np.float32)
        return self.observation()


WEIGHTS = np.array([-6.0, 2.0, -1.0, 3.0, 0.5, -1.0, 0.3], np.float32)


def act(policy_input: np.ndarray) -> np.ndarray:
    """Acts on every part of its input (so that a wrong order changes the actions), beyond the limits at times
    (so that the commands recorded are the clipped ones)."""
    return np.array([WEIGHTS @ policy_input], np.float32)


def training_inputs(seed: int) -> np.ndarray:
    """The inputs of one training episode of ``act`` (the trainers clip actions to the action space)."""
    env = make_env(TOY, history=3)
    obs, _ = env.reset(seed=seed)
    inputs, done = [obs], False
    while not done:
        obs, _, terminated, truncated, _ = env.step(np.clip(act(obs), -1, 1))
        inputs.append(obs)
        done = terminated or truncated
    env.close()
    return np.array(inputs)


@pytest.mark.parametrize("loops_history, episodes_history", [(3, None), (0, 3)])
def test_the_runtime_feeds_the_history_in_trainings_order_and_starts_it_afresh_each_episode(loops_history,
                                                                                            episodes_history):
    """The loop's own history, or one an episode asks for (a fine-tuning session's candidate), alike."""
    fed: list[np.ndarray] = []

    def recording(policy_input: np.ndarray) -> np.ndarray:
        fed.append(np.array(policy_input))
        return act(policy_input)

    task = TaskFunctions(lambda *_: 0.0, lambda _: False, 20)
    loop = ControlLoop(ScriptedRobot(5), SafetyLayer(np.array([-1.0]), np.array([1.0])), task,
                       history=loops_history)
    episodes = [loop.run_episode(recording, episodes_history) for _ in range(2)]
    for seed, episode in zip((5, 7), episodes, strict=True):
        expected = training_inputs(seed)
        assert episode.inputs.shape == expected.shape == (21, 7) and episode.observations.shape == (21, 1)
        np.testing.assert_allclose(episode.inputs, expected, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(episode.commands, np.clip(episode.actions, -1, 1))
    assert np.any(np.abs(episodes[0].actions) > 1)  # some commands were clipped
    np.testing.assert_array_equal(np.array(fed), np.concatenate([ep.inputs[:-1] for ep in episodes]))
    np.testing.assert_array_equal(episodes[1].inputs[0], [episodes[1].observations[0][0]] * 4 + [0] * 3)


def test_deploy_log_of_a_history_policy_holds_raw_observations_that_identify_fits(history_run, tmp_path):
    onnx = OnnxPolicy(history_run / "policy.onnx")
    link = in_memory_robot(RobotSimConfig(SWING_UP, gap={"action_latency_steps": 2}, seed=3))
    safety = SafetyLayer(np.array(onnx.metadata.action_low), np.array(onnx.metadata.action_high))
    with prepare_robot(link, onnx.metadata) as ready, robot_session(ready):
        loop = ControlLoop(ready, safety, task_functions(SWING_UP, 100), log=tmp_path / "robot.npz",
                           history=onnx.metadata.history)
        for _ in range(2):
            loop.run_episode(onnx)
    log = load_log(tmp_path / "robot.npz")
    assert all(obs.shape[1] == 5 for obs, _ in log)  # the robot's observations, not the policy's inputs
    fit = identify(SWING_UP, log, ["action_latency_steps"],
                   IdentifyConfig(horizon=5, stride=5, max_windows=40, max_latency=3, screen_generations=3,
                                  generations=8))
    assert fit.estimates["action_latency_steps"] == 2


def test_eval_feeds_the_history_as_training_does(history_run):
    env = make_env(SWING_UP, history=3, dynamics={"actuator_gain": 0.7})  # what training's evaluations step
    trained = evaluate_episodes(torch_policy_fn(restore(history_run).policy()), env, 2, seed=0).returns
    env.close()
    for source in (history_run, history_run / "policy.onnx"):
        policy = load_policy(source)
        assert (policy.history, policy.obs_dim) == (3, 5)
        returns = evaluate(policy, episodes=2, randomize=["actuator_gain=0.7"]).returns
        np.testing.assert_allclose(returns, trained, rtol=1e-4)
    result = invoke("eval", "--policy", str(history_run / "policy.onnx"), "--episodes", "2", "--gap",
                    "actuator_gain=0.7")
    assert result.returncode == 0 and f"return {np.mean(trained):.2f}" in result.stdout


def test_finetuning_a_history_policy_learns_from_the_inputs_it_fed(history_run, tmp_path):
    restored = restore(history_run)
    meta = OnnxPolicy(history_run / "policy.onnx").metadata
    session, method = finetune_configs({"episodes": 6, "baseline_episodes": 2, "eval_every": 1, "eval_episodes": 2,
                                        "warmup_episodes": 0, "rehearsal_episodes": 0, "twin_training_steps": 0},
                                       "cautious_a2c")
    assert isinstance(session, FinetuneConfig)
    link = in_memory_robot(RobotSimConfig(SWING_UP, gap={"actuator_gain": 0.7}, seed=4))
    safety = SafetyLayer(np.array(meta.action_low), np.array(meta.action_high))
    with prepare_robot(link, meta) as ready, robot_session(ready):
        loop = ControlLoop(ready, safety, task_functions(SWING_UP, 50), history=meta.history)
        result = finetune(loop, restored.learner, restored.state, session, method, tmp_path)
    assert result.records[0].kind == "baseline" and result.records[-1].kind == "eval"
    assert all(ep.inputs.shape[1] == history_input_dim(5, 1, 3) for ep in loop.trajectory)


def test_the_command_line_and_a_config_file_set_the_history(tmp_path):
    small = ["--set", "num_envs=1", "--set", "actor_hidden=[8]", "--set", "critic_hidden=[8]", "--quiet"]
    flag = invoke("train-sim", "--env", TOY, "--algo", "a2c", "--steps", "80", "--set", "history=2", *small,
                  "--out", str(tmp_path / "flag"))
    assert flag.returncode == 0, flag.stderr
    assert "history = 2" in (tmp_path / "flag" / "config.toml").read_text()
    again = invoke("train-sim", "--config", str(tmp_path / "flag" / "config.toml"), "--out", str(tmp_path / "file"))
    assert again.returncode == 0, again.stderr
    assert restore(tmp_path / "file").history == 2
    refused = invoke("train-sim", "--env", TOY, "--set", "history=-1", "--out", str(tmp_path / "bad"))
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        "error: history must be an integer >= 0, got -1"]
