"""Cautious fine-tuning: its bounds, the whole loop on a toy robot, and robopg finetune on the virtual robot."""

import itertools
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from robopg.algos.cautious_a2c import CautiousA2C, CautiousA2CConfig
from robopg.algos.cautious_ddpg import CautiousDDPG, CautiousDDPGConfig
from robopg.checkpoint import restore
from robopg.core.history import History
from robopg.core.nets import ActionScaler, Actor, DeployablePolicy, RunningNormalizer
from robopg.envs import make_env
from robopg.errors import ConfigError
from robopg.export import export_policy
from robopg.finetune import FinetuneConfig, clearly_better, finetune, finetune_configs
from robopg.finetune.decide import Evaluation, adjusted, no_better, verdict
from robopg.finetune.twin import return_predictor
from robopg.registry import make_config
from robopg.runtime.episode import RobotEpisode as Episode
from robopg.runtime.onnx_policy import OnnxPolicy
from robopg.training.run import train
from sim.virtual_robot import CommandLog

ROBOPG = [sys.executable, "-m", "robopg.cli"]
SWING_UP = "robopg/CartPoleSwingUp-v0"
ROBOT_ALONE = {"rehearsal_episodes": 0, "twin_training_steps": 0}  # no work on a twin


class SmallDeployed:
    """What a fine-tuning learner starts from: a learner whose ``policy()`` is deployed."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.deployed = DeployablePolicy(RunningNormalizer(1), Actor(1, 1, [16]),
                                         ActionScaler(np.array([-1.0]), np.array([1.0])))

    def policy(self) -> DeployablePolicy:
        return self.deployed


def random_episode(rng: np.random.Generator, steps: int = 20) -> Episode:
    """The policy's actions are the unclipped samples (the scaler is the identity); the commands are clipped."""
    obs = rng.normal(size=(steps + 1, 1)).astype(np.float32)
    units = np.asarray([rng.normal(size=1).astype(np.float32) for _ in range(steps)])
    return Episode(obs, units, np.clip(units, -1, 1), rng.normal(size=steps), False, False)


def test_config_is_checked():
    with pytest.raises(ConfigError, match="std <= max_std"):
        CautiousA2CConfig(std=0.5, max_std=0.2)
    with pytest.raises(ConfigError, match=r"must exceed baseline_episodes \+ the warm-up episodes left"):
        finetune_configs({"episodes": 20, "warmup_episodes": 10, **ROBOT_ALONE}, "cautious_a2c")
    with pytest.raises(ConfigError, match="unknown finetune config key"):
        finetune_configs({"episodez": 4})
    with pytest.raises(ConfigError, match="must leave room for the baseline"):
        FinetuneConfig(episodes=8, baseline_episodes=5, eval_episodes=5)


def test_a_reckless_step_is_cut_back_into_the_trust_region_and_the_drift_bound():
    config = CautiousA2CConfig(actor_lr=0.3, max_kl=0.01, max_drift=0.05, train_output_layer_only=False)
    learner = CautiousA2C(SmallDeployed(), config)
    rng = np.random.default_rng(0)
    batch = [random_episode(rng) for _ in range(2)]
    learner.fit_critic(batch)
    kl, drift = learner.actor_update(batch)
    assert 0.0 < kl <= 0.01
    assert 0.0 < drift <= 0.05 + 1e-6
    assert learner.drift() == pytest.approx(drift)


def test_the_critic_fits_discounted_returns():
    config = CautiousA2CConfig(critic_lr=3e-2, critic_epochs=100, gamma=0.5, value_scale=1.0)
    learner = CautiousA2C(SmallDeployed(), config)
    obs = np.linspace(-1, 1, 4, dtype=np.float32)[:, None]
    rewards = np.ones(3)
    episode = Episode(obs, np.zeros((3, 1)), np.zeros((3, 1)), rewards, True, False)
    learner.fit_critic([episode])
    # Returns of 1, 1, 1 then the end: 1.75, 1.5, 1.
    assert learner.value(obs[:-1]).numpy() == pytest.approx([1.75, 1.5, 1.0], abs=0.05)


class OneStateRobot:
    """Episodes of 10 steps in one state where the reward is −(a − 0.5)² plus a little sensor noise: the better
    action is plain, so each update's direction and each comparison's verdict are easy to check. A policy with
    a history is fed it as the control loop feeds it; ``histories`` records each episode's."""

    def __init__(self, constant_reward: float | None = None) -> None:
        self.rng = np.random.default_rng(0)
        self.constant_reward = constant_reward
        self.histories: list[int] = []

    def run_episode(self, policy, history=None) -> Episode:
        self.histories.append(history or 0)
        obs = np.full((11, 1), 0.3, dtype=np.float32)
        feed = History(history or 0, 1, 1)
        inputs, actions = [feed.start(obs[0])], []
        for t in range(10):
            actions.append(np.asarray(policy(inputs[-1]), dtype=np.float32))
            inputs.append(feed.step(np.clip(actions[-1], -1, 1), obs[t + 1]))
        commands = np.clip(actions, -1, 1)  # as the safety layer clips to the action limits
        rewards = -np.square(commands[:, 0] - 0.5) + 0.01 * self.rng.normal(size=10)
        if self.constant_reward is not None:
            rewards = np.full(10, self.constant_reward)
        return Episode(obs, np.asarray(actions), commands, rewards, False, False,
                       np.asarray(inputs) if feed.k else None)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A DDPG checkpoint of the point-to-origin task (its actor is what fine-tuning starts from; its critic
    unnormalized, as these tests' step sizes were chosen for)."""
    run = tmp_path_factory.mktemp("toy") / "run"
    train("PointToOrigin-v0", make_config("ddpg", {"total_steps": 150, "learning_starts": 100, "batch_size": 32,
                                                   "actor_hidden": [16], "critic_hidden": [16], "eval_every": 150,
                                                   "eval_episodes": 2, "critic_layer_norm": False}),
          run, show_progress=False)
    return run


def test_clearly_better_is_welchs_test_at_z_standard_errors_with_the_larger_variance():
    # means 2 and 1, sample variances 1 and 1, 4 returns each: standard error sqrt(1/4 + 1/4) = 0.707.
    new, old = [1.0, 2.0, 3.0, 2.0], [0.0, 1.0, 2.0, 1.0]
    new = [2 + (x - 2) * (1 / np.std(new, ddof=1)) for x in new]
    old = [1 + (x - 1) * (1 / np.std(old, ddof=1)) for x in old]
    assert clearly_better(new, old, z=1.4) and not clearly_better(new, old, z=1.42)
    # A tight new side (sample variance 0.01) against old's 1: the standard error is sqrt(1 · (1/4 + 1/4)) = 0.707
    # still, where Welch's own sqrt(0.01/4 + 1/4) = 0.502 would pass it at z = 1.9.
    tight = [2 + (x - 2) * 0.1 for x in new]
    assert clearly_better(tight, old, z=1.4) and not clearly_better(tight, old, z=1.42)
    assert not clearly_better(old, new, z=0.0)
    assert not clearly_better([1.0, 1.0], [1.0, 1.0], z=0.0)  # equal is not better
    with pytest.raises(ValueError, match="at least 2"):
        clearly_better([1.0], [0.0, 0.0], z=2.0)


def observations(*values):
    return tuple(np.array([v]) for v in values)


def test_returns_are_adjusted_by_the_common_slope_on_each_policys_own_predictions():
    first = Evaluation((1.0, 3.0), observations(0.0, 2.0), lambda start: float(start[0]))
    # One prediction for both policies: within the first evaluation the predictions deviate by -1, 1 and the
    # returns by -1, 1 (sums 2 and 2), within the second by -1, 1 and -2, 2 (4 and 2): slope 6 / 4 = 1.5 about
    # the mean prediction over the four first observations, 1.5.
    second = Evaluation((2.0, 6.0), observations(1.0, 3.0), lambda start: float(start[0]))
    adjusted_first, adjusted_second = adjusted([first, second])
    assert adjusted_first == pytest.approx([3.25, 2.25]) and adjusted_second == pytest.approx([2.75, 3.75])
    # The second policy predicted at twice the observation: its predictions 2, 6 about their mean over the four
    # first observations, 3; sums 2 + 8 and 2 + 8: slope 1.
    second = Evaluation((2.0, 6.0), observations(1.0, 3.0), lambda start: 2 * float(start[0]))
    adjusted_first, adjusted_second = adjusted([first, second])
    assert adjusted_first == pytest.approx([2.5, 2.5]) and adjusted_second == pytest.approx([3.0, 3.0])
    # Without predictions the returns stay as they are.
    assert adjusted([Evaluation((1.0, 3.0), observations(0.0, 2.0))])[0] == pytest.approx([1.0, 3.0])
    with pytest.raises(ValueError, match="2 returns but 1 first observations"):
        Evaluation((1.0, 2.0), observations(0.0))


def test_a_gain_hidden_by_the_initial_states_spread_is_found_after_the_adjustment():
    """Returns that the initial state decides up to ±10, each policy's predicted by its twin, and a policy 1
    better: the raw returns cannot tell, the adjusted ones can; a policy no better is not taken."""
    rng = np.random.default_rng(0)

    def evaluation(n, gain):
        starts = observations(*rng.uniform(-10, 10, n))
        returns = tuple(float(start[0]) + gain + 0.1 * rng.normal() for start in starts)
        return Evaluation(returns, starts, lambda start: float(start[0]) + gain)

    baseline, better, same, worse = evaluation(10, 0.0), evaluation(5, 1.0), evaluation(5, 0.0), evaluation(5, -1.0)
    assert not clearly_better(better.returns, baseline.returns, z=2.0)
    assert verdict(better, baseline, baseline, z=2.0) == "best, saved"
    assert verdict(same, baseline, baseline, z=2.0) == ""
    assert verdict(worse, better, baseline, z=2.0) == "rolled back"
    assert no_better(worse, baseline) and not no_better(better, baseline)


def test_the_predicted_return_is_the_simulators_from_the_observed_initial_state():
    env = make_env("robopg/Reacher2D-v0", dynamics={"action_latency_steps": 2})
    weights = np.random.default_rng(0).normal(size=(2, env.observation_space.shape[0]))

    def policy(obs):
        return np.tanh(weights @ obs).astype(np.float32)

    predict = return_predictor("robopg/Reacher2D-v0", {"action_latency_steps": 2, "mass_scale": (0.9, 1.1),
                                                       "sensor_noise_std": (0.0, 0.1)}, policy, 0, 150)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        first, total, done = obs, 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total, done = total + reward, terminated or truncated
        assert predict(first) == pytest.approx(total, rel=1e-3)
    assert return_predictor("PointToOrigin-v0", {}, policy, 0, 10) is None  # no state from an observation


def test_finetuning_moves_towards_the_better_action_and_writes_the_better_policy(toy_run, tmp_path):
    restored = restore(toy_run)
    learner, state = restored.learner, restored.state
    obs = torch.tensor([0.3])
    deployed = learner.policy()(obs).item()
    # 20 baseline episodes, then 30 exploring with an evaluation of 10 every 4 after the warm-up of 6: 110 in all.
    config, method = finetune_configs({"episodes": 110, "baseline_episodes": 20, "eval_episodes": 10,
                                       "warmup_episodes": 6, "episodes_per_update": 2, "eval_every": 4,
                                       "actor_lr": 3e-3, "actor_steps": 1, "std": 0.1, "max_kl": 0.05,
                                       "value_scale": 1.0, **ROBOT_ALONE}, "cautious_a2c")
    result = finetune(OneStateRobot(), learner, state, config, method, tmp_path)
    final = learner.policy()(obs).item()
    assert result.improved and result.best > result.baseline
    assert abs(final - 0.5) < abs(deployed - 0.5) - 0.1, (deployed, final)
    # What was written is the kept policy, and it is what the learner holds at the end.
    assert {"finetune.csv", "checkpoint.pt", "policy.onnx"} <= {p.name for p in tmp_path.iterdir()}
    assert OnnxPolicy(tmp_path / "policy.onnx")(np.array([0.3], dtype=np.float32))[0] == pytest.approx(final, abs=1e-4)
    kinds = [line.split(",")[1] for line in (tmp_path / "finetune.csv").read_text().splitlines()[1:]]
    assert kinds[0] == "baseline" and kinds.count("explore") == 30 and kinds.count("eval") == 6


def test_nothing_is_written_when_no_evaluation_is_clearly_better(toy_run, tmp_path):
    restored = restore(toy_run)
    learner, state = restored.learner, restored.state
    deployed = learner.policy()(torch.tensor([0.3])).item()
    result = finetune(OneStateRobot(constant_reward=-1.0), learner, state,
                      FinetuneConfig(episodes=16, **ROBOT_ALONE), CautiousA2CConfig(), tmp_path)
    assert not result.improved
    assert [p.name for p in tmp_path.iterdir()] == ["finetune.csv"]
    assert learner.policy()(torch.tensor([0.3])).item() == deployed  # the deployed policy is what stays


def test_finetune_on_the_virtual_robot_keeps_every_command_within_the_limits(tmp_path):
    train(SWING_UP, make_config("ddpg", {"total_steps": 500, "learning_starts": 200, "batch_size": 32,
                                         "actor_hidden": [16], "critic_hidden": [16], "eval_every": 500,
                                         "eval_episodes": 1}), tmp_path / "run", show_progress=False)
    export_policy(tmp_path / "run", tmp_path / "policy.onnx")
    log = tmp_path / "robot.csv"
    robot = subprocess.Popen([*ROBOPG, "robot-sim", "--env", SWING_UP, "--gap", "actuator_gain=0.6", "--log",
                              str(log)], stdout=subprocess.PIPE, text=True)
    try:
        port = robot.stdout.readline().strip()
        (tmp_path / "ft.toml").write_text("warmup_episodes = 2\neval_every = 2\neval_episodes = 2\n"
                                          "baseline_episodes = 2\nrehearsal_episodes = 2\n"
                                          "twin_training_steps = 500\ntwin_eval_every = 250\n"
                                          "twin_eval_episodes = 1\n"
                                          "identify_params = ['actuator_gain']\n")
        result = subprocess.run([*ROBOPG, "finetune", "--policy", str(tmp_path / "policy.onnx"), "--checkpoint",
                                 str(tmp_path / "run"), "--port", port, "--out", str(tmp_path / "ft"), "--episodes",
                                 "12", "--config", str(tmp_path / "ft.toml"), "--max-delta", "2.0", "--method",
                                 "cautious_a2c", "--set", "twin_jobs=2", "--set", "twin_eval_episodes=2"],
                                capture_output=True, text=True, timeout=300)
    finally:
        robot.terminate()
        robot.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    assert "baseline episode   2" in result.stdout and "episode  12" in result.stdout
    assert "rehearsal episode" in result.stdout and "twin: actuator_gain (" in result.stdout
    # --set wins over --config (2 twin evaluation episodes, not 1); the runs on the twin side by side (twin_jobs=2)
    assert restore(tmp_path / "ft" / "twin" / "from-scratch-seed-1").state["config"]["eval_episodes"] == 2
    assert (tmp_path / "ft" / "policy.onnx").exists() == ("wrote" in result.stdout)
    time.sleep(0.1)
    commands = CommandLog.read(log)
    actions = [c for c in commands if c.cause == "action"]
    assert len(actions) >= 12 * 50  # 12 episodes in all: 2 baseline, exploring and evaluation ones
    # What the robot applied, read on its side: inside ±10 N, and never more than 2 N from the previous
    # command within an episode (each episode starts from the safe command 0 after its RESET).
    applied = [(c.cause, c.applied[0]) for c in commands]
    assert all(abs(value) <= 10.0 for _, value in applied)
    for (_, previous), (cause, value) in itertools.pairwise(applied):
        if cause == "action":
            assert abs(value - previous) <= 2.0 + 1e-5


class CountingRobot(OneStateRobot):
    def __init__(self) -> None:
        super().__init__()
        self.episodes = 0

    def run_episode(self, policy, history=None) -> Episode:
        self.episodes += 1
        return super().run_episode(policy, history)


@pytest.mark.parametrize("method", ["cautious_a2c", "cautious_ddpg"])
def test_a_session_takes_exactly_its_budget_of_robot_episodes(toy_run, tmp_path, method):
    restored = restore(toy_run)
    robot = CountingRobot()
    config, method_config = finetune_configs({"episodes": 37, "warmup_episodes": 2, **ROBOT_ALONE}, method)
    result = finetune(robot, restored.learner, restored.state, config, method_config, tmp_path)
    assert robot.episodes == 37 and result.records[-1].episode == 37
    evaluations = [r for r in result.records if r.kind == "eval"]
    assert evaluations and evaluations[-1].episode == 37  # the budget ends with an evaluation


def test_cautious_ddpg_learns_the_better_action_from_its_critic_within_the_drift_bound(toy_run, tmp_path):
    restored = restore(toy_run)
    obs = torch.tensor([0.3])
    deployed = restored.learner.policy()(obs).item()
    learner = CautiousDDPG(restored.learner, CautiousDDPGConfig(
        warmup_episodes=3, calibration_updates=200, updates_per_step=4, batch_size=32, actor_lr=1e-3, critic_lr=1e-3,
        max_drift=0.3, std=0.2))
    robot = OneStateRobot()
    for _ in range(10):
        learner.observe(robot.run_episode(learner.exploring_policy()), exploring=True)
    final = restored.learner.policy()(obs).item()
    assert abs(final - 0.5) < abs(deployed - 0.5) - 0.1, (deployed, final)
    assert learner.drift() <= 0.3 + 1e-6


def test_cautious_ddpg_needs_a_critic_over_actions(tmp_path):
    run = tmp_path / "a2c"
    train("PointToOrigin-v0", make_config("a2c", {"total_steps": 64, "num_envs": 2, "eval_every": 64,
                                                  "eval_episodes": 1, "actor_hidden": [8], "critic_hidden": [8]}),
          run, show_progress=False)
    _, method_config = finetune_configs({}, "cautious_ddpg")
    with pytest.raises(ConfigError, match="use --method cautious_a2c"):
        CautiousDDPG(restore(run).learner, method_config)


def acting(restored, action: float):
    """``restored``'s learner, its actor changed to answer ``action`` in every state."""
    last = restored.learner.actor.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(float(np.arctanh(action)))  # the scaler of the toy task's [-1, 1] actions is the identity
    return restored


@pytest.mark.parametrize("candidate_action, kept", [(0.5, True), (-0.9, False)])
def test_the_twins_candidate_is_kept_only_when_the_robot_finds_it_clearly_better(toy_run, tmp_path, monkeypatch,
                                                                               candidate_action, kept):
    """Training on the twin stands in here as a snapshot that acts ``candidate_action``: the best action (0.5) is
    saved and the session goes on from it; a bad one is dropped after one evaluation, and the deployed policy
    stays (and the robot's own exploring goes on from it)."""
    from robopg.finetune import session
    from robopg.finetune.twin_training import TwinTraining

    restored = restore(toy_run)
    trained = []

    def twin_training(run_state, dynamics, steps, eval_every, eval_episodes, out_dir, confirm_episodes,
                      scratch_runs, scratch_history, jobs):
        trained.append((run_state, steps, confirm_episodes, scratch_runs, scratch_history, jobs))
        return TwinTraining(deployed=-1.0, best={"continued": (0.0, steps)},
                            candidate=acting(restore(toy_run), candidate_action),
                            confirmed={"deployed": -1.0, "continued": -0.5}, confirm_episodes=confirm_episodes,
                            source="continued")

    monkeypatch.setattr(session, "train_on_twin", twin_training)
    monkeypatch.setattr(session, "identified_dynamics", lambda *args: {"actuator_gain": (0.9, 1.0)})
    robot = CountingRobot()
    config, method = finetune_configs({"episodes": 30, "warmup_episodes": 2, "rehearsal_episodes": 0,
                                       "twin_training_steps": 300, "candidate_evals": 3}, "cautious_a2c")
    result = finetune(robot, restored.learner, restored.state, config, method, tmp_path,
                      run_state=toy_run / "resume.pt")
    assert trained == [(toy_run / "resume.pt", 300, 30, 2, 0, 1)]
    assert result.records[1].note.endswith("deployed -1.0 on the twin, continued best 0.0 after 300 steps; on 30 "
                                           "fresh twin episodes deployed -1.0, continued -0.5; candidate continued")
    kinds = [r.kind for r in result.records]
    assert kinds[:3] == ["baseline", "twin", "candidate"] and kinds.count("candidate") == 1
    assert robot.episodes == 30 and result.records[-1].episode == 30
    assert result.records[2].note == ("best, saved" if kept else "dropped")
    assert result.records[2].episode == 10 + 5  # decided on its first evaluation, either way
    if kept:  # saved, and the session went on from the candidate, which the robot found optimal
        assert result.improved
        exported = OnnxPolicy(tmp_path / "policy.onnx")(np.array([0.3], dtype=np.float32))[0]
        assert exported == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("for_latency", [True, False])
def test_a_twin_with_latency_gives_the_run_from_scratch_a_history_that_the_robot_then_feeds(toy_run, tmp_path,
                                                                                           monkeypatch, for_latency):
    """A twin identified with 2 steps of latency asks the run from scratch for 2 steps of history (none when
    twin_history_for_latency is off); a candidate with a history runs on the robot with it, is saved with it, and
    the session goes on feeding it."""
    from robopg.finetune import session
    from robopg.finetune.twin_training import TwinTraining

    with_history = tmp_path / "with-history"
    train("PointToOrigin-v0", make_config("ddpg", {"total_steps": 150, "learning_starts": 100, "batch_size": 32,
                                                   "actor_hidden": [16], "critic_hidden": [16], "eval_every": 150,
                                                   "eval_episodes": 2, "history": 2}),
          with_history, show_progress=False)
    asked = []

    def twin_training(*args):
        asked.append(args[8])  # scratch_history
        return TwinTraining(deployed=-1.0, best={"from scratch": (0.0, 150)},
                            candidate=acting(restore(with_history), 0.5),
                            confirmed={"deployed": -1.0, "from scratch": -0.5}, confirm_episodes=30,
                            source="from scratch")

    monkeypatch.setattr(session, "train_on_twin", twin_training)
    monkeypatch.setattr(session, "identified_dynamics", lambda *args: {"action_latency_steps": 2})
    restored, robot, out = restore(toy_run), CountingRobot(), tmp_path / "session"
    out.mkdir()
    config, method = finetune_configs({"episodes": 30, "warmup_episodes": 2, "rehearsal_episodes": 0,
                                       "twin_training_steps": 300, "twin_history_for_latency": for_latency},
                                      "cautious_a2c")
    result = finetune(robot, restored.learner, restored.state, config, method, out, run_state=toy_run / "resume.pt")
    assert asked == [2 if for_latency else 0]
    assert result.records[2].note == "best, saved" and result.improved
    assert robot.histories == [0] * 10 + [2] * 20  # the deployed policy's baseline, then the candidate's episodes
    assert restore(out / "checkpoint.pt").history == 2
    saved = OnnxPolicy(out / "policy.onnx")
    assert saved.metadata.history == 2
    assert saved(History(2, 1, 1).start(np.array([0.3], dtype=np.float32)))[0] == pytest.approx(0.5, abs=0.05)


def test_training_on_the_twin_needs_the_run(toy_run, tmp_path):
    restored = restore(toy_run)
    config, method = finetune_configs({"episodes": 20, "rehearsal_episodes": 0}, "cautious_a2c")
    with pytest.raises(ConfigError, match="continues the policy's run"):
        finetune(CountingRobot(), restored.learner, restored.state, config, method, tmp_path)
