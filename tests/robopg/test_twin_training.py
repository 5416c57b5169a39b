"""Training on the robot's twin: the deployed policy's run, resumed on the identified dynamics, and its best
snapshot, judged on the twin against the deployed policy."""

import copy
from dataclasses import replace

import pytest

from robopg.checkpoint import BEST_FILE, RESUME_FILE, restore
from robopg.core.nets import torch_policy_fn
from robopg.envs import make_env
from robopg.errors import ConfigError
from robopg.evaluation import evaluate
from robopg.finetune.twin_training import CONFIRM_SEED_OFFSET, paired_means, train_on_twin
from robopg.registry import make_config
from robopg.training.loop import EVAL_SEED_OFFSET
from robopg.training.run import train

ENV = "robopg/CartPoleSwingUp-v0"
TWIN = {"action_latency_steps": 2, "actuator_gain": (0.6, 0.7)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("twin") / "run"
    train(ENV, make_config("ddpg", {"total_steps": 300, "learning_starts": 100, "batch_size": 32, "eval_every": 300,
                                    "eval_episodes": 1, "actor_hidden": [16], "critic_hidden": [16]}), folder,
          show_progress=False)
    return folder


def test_the_deployed_policy_and_the_snapshots_are_judged_on_the_twin(run, tmp_path):
    found = train_on_twin(run / RESUME_FILE, TWIN, steps=300, eval_every=150, eval_episodes=1, out_dir=tmp_path / "t")
    # The reference: the deployed policy on the twin's dynamics, from the twin evaluations' initial states.
    on_twin = evaluate(torch_policy_fn(restore(run).policy()), make_env(ENV, dynamics=TWIN), 1,
                       seed=restore(run).state["config"]["seed"] + EVAL_SEED_OFFSET)
    assert found.deployed == pytest.approx(on_twin.mean)
    assert found.best >= found.deployed
    assert (found.confirmed is None) == (found.best_step == 0)
    if found.confirmed is not None:  # the snapshot and the deployed policy again, on fresh paired episodes
        fresh = [evaluate(torch_policy_fn(policy), make_env(ENV, dynamics=TWIN), 30,
                          seed=restore(run).state["config"]["seed"] + CONFIRM_SEED_OFFSET).mean
                 for policy in (restore(run).policy(), restore(tmp_path / "t" / BEST_FILE).policy())]
        assert found.confirmed == pytest.approx(tuple(fresh))
        assert (found.candidate is not None) == (fresh[1] > fresh[0])
    rows = (tmp_path / "t" / "eval.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == [450, 600]  # after the run's 300 steps, every 150 more
    if found.candidate is not None:  # the best snapshot, as best.pt holds it
        snapshot = evaluate(torch_policy_fn(found.candidate.policy()), make_env(ENV, dynamics=TWIN), 1,
                            seed=restore(run).state["config"]["seed"] + EVAL_SEED_OFFSET)
        assert snapshot.mean == pytest.approx(found.best)


def test_the_run_must_be_there(tmp_path):
    with pytest.raises(ConfigError, match=r"resume\.pt is missing"):
        train_on_twin(tmp_path / RESUME_FILE, TWIN, steps=10, eval_every=10, eval_episodes=1, out_dir=tmp_path / "t")


def test_the_confirmation_pairs_the_episodes(run):
    config = restore(run).learner.config
    twin = replace(config, randomize=("mass_scale=0.8:1.2",))
    policy = restore(run).policy()
    same = paired_means(ENV, twin, (policy, copy.deepcopy(policy)), 4)
    assert same[0] == same[1]  # the same initial states and dynamics draws for each policy
    shifted = paired_means(ENV, replace(twin, seed=config.seed + 1), (policy,), 4)
    assert shifted[0] != same[0]
