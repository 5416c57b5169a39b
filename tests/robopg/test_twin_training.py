"""Training on the robot's twin: the deployed policy's run, resumed on the identified dynamics, and its best
snapshot, judged on the twin against the deployed policy."""

import copy
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from robopg.checkpoint import BEST_FILE, RESUME_FILE, restore
from robopg.core.nets import torch_policy_fn
from robopg.envs import make_env
from robopg.errors import ConfigError
from robopg.evaluation import evaluate
from robopg.finetune.twin_training import (
    CONFIRM_SEED_OFFSET,
    CONTINUED,
    FROM_SCRATCH,
    confirmed_best,
    paired_means,
    train_on_twin,
)
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
    seed = restore(run).state["config"]["seed"]
    # The reference: the deployed policy on the twin's dynamics, from the twin evaluations' initial states.
    on_twin = evaluate(torch_policy_fn(restore(run).policy()), make_env(ENV, dynamics=TWIN), 1,
                       seed=seed + EVAL_SEED_OFFSET)
    assert found.deployed == pytest.approx(on_twin.mean)
    mean, steps = found.best[CONTINUED]
    assert list(found.best) == [CONTINUED] and mean >= found.deployed
    assert bool(found.confirmed) == (steps > 0)
    if found.confirmed:  # the snapshot and the deployed policy again, on fresh paired episodes
        fresh = [evaluate(torch_policy_fn(policy), make_env(ENV, dynamics=TWIN), 30,
                          seed=seed + CONFIRM_SEED_OFFSET).mean
                 for policy in (restore(run).policy(), restore(tmp_path / "t" / "continued" / BEST_FILE).policy())]
        assert found.confirmed == pytest.approx({"deployed": fresh[0], CONTINUED: fresh[1]})
        assert (found.candidate is not None) == (fresh[1] > fresh[0])
    rows = (tmp_path / "t" / "continued" / "eval.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == [450, 600]  # after the run's 300 steps, every 150 more
    if found.candidate is not None:  # the best snapshot, as best.pt holds it
        snapshot = evaluate(torch_policy_fn(found.candidate.policy()), make_env(ENV, dynamics=TWIN), 1,
                            seed=seed + EVAL_SEED_OFFSET)
        assert snapshot.mean == pytest.approx(mean)


def test_runs_from_scratch_on_the_twin_compete_with_the_continued_one(run, tmp_path):
    found = train_on_twin(run / RESUME_FILE, TWIN, steps=300, eval_every=150, eval_episodes=2, out_dir=tmp_path / "t",
                          confirm_episodes=3, scratch_runs=2, scratch_history=2)
    seed = restore(run).state["config"]["seed"]
    second = f"{FROM_SCRATCH}, seed {seed + 1}"
    assert list(found.best) == [CONTINUED, FROM_SCRATCH, second]
    # The run's own settings and steps (300), evaluated on its own schedule (every 300) on the twin's episodes, its
    # policy fed the history asked for (the twin's latency), the continued one the run's own (none); the second
    # run from scratch alike but for its seed.
    scratch, continued = restore(tmp_path / "t" / "from-scratch"), restore(tmp_path / "t" / "continued")
    other = restore(tmp_path / "t" / f"from-scratch-seed-{seed + 1}")
    for folder in ("from-scratch", f"from-scratch-seed-{seed + 1}"):
        assert [int(row.split(",")[0]) for row in (tmp_path / "t" / folder / "eval.csv").read_text()
                .splitlines()[1:]] == [300]
    assert scratch.state["config"]["randomize"] == continued.state["config"]["randomize"] \
        == other.state["config"]["randomize"]
    assert (scratch.history, other.history, continued.history) == (2, 2, 0)
    assert (scratch.state["config"]["seed"], other.state["config"]["seed"]) == (seed, seed + 1)
    beat = [name for name, (mean, steps) in found.best.items() if steps > 0]
    assert all(found.best[name][0] > found.deployed for name in beat if name != second)
    # The second run's snapshots are judged against the deployed policy on its own evaluation episodes.
    deployed_there = evaluate(torch_policy_fn(restore(run).policy()), make_env(ENV, dynamics=TWIN), 2,
                              seed=seed + 1 + EVAL_SEED_OFFSET)
    mean, steps = found.best[second]
    assert mean > deployed_there.mean if steps else mean == pytest.approx(deployed_there.mean)
    assert sorted(found.confirmed) == (sorted(["deployed", *beat]) if beat else [])
    if found.candidate is not None:  # the best snapshot on the fresh episodes, and better than the deployed one
        assert found.confirmed[found.source] == max(found.confirmed.values()) > found.confirmed["deployed"]
        policy, history = found.candidate.policy(), found.candidate.history  # fed its history, as in training
        fresh = evaluate(torch_policy_fn(policy), make_env(ENV, dynamics=TWIN, history=history), 3,
                         seed=seed + CONFIRM_SEED_OFFSET)
        assert fresh.mean == pytest.approx(found.confirmed[found.source])
    else:
        assert found.source == "" and all(found.confirmed.get(name, -np.inf) <= found.confirmed.get("deployed", np.inf)
                                          for name in beat)


def test_the_candidate_is_the_best_snapshot_on_the_fresh_episodes_if_it_beats_the_deployed_policy():
    assert confirmed_best({"deployed": 1.0, CONTINUED: 2.0, FROM_SCRATCH: 3.0}) == FROM_SCRATCH
    assert confirmed_best({"deployed": 1.0, CONTINUED: 2.0, FROM_SCRATCH: 0.5}) == CONTINUED
    assert confirmed_best({"deployed": 3.0, CONTINUED: 2.0, FROM_SCRATCH: 3.0}) == ""  # equal is not better
    assert confirmed_best({"deployed": 1.0}) == ""


def test_the_run_must_be_there(tmp_path):
    with pytest.raises(ConfigError, match=r"resume\.pt is missing"):
        train_on_twin(tmp_path / RESUME_FILE, TWIN, steps=10, eval_every=10, eval_episodes=1, out_dir=tmp_path / "t")


def test_the_confirmation_pairs_the_episodes(run):
    config = restore(run).learner.config
    twin = replace(config, randomize=("mass_scale=0.8:1.2",))
    policy = restore(run).policy()
    same = paired_means(ENV, twin, ((policy, 0), (copy.deepcopy(policy), 0)), 4)
    assert same[0] == same[1]  # the same initial states and dynamics draws for each policy
    shifted = paired_means(ENV, replace(twin, seed=config.seed + 1), ((policy, 0),), 4)
    assert shifted[0] != same[0]


def test_the_runs_on_the_twin_train_side_by_side_with_the_same_results(run, tmp_path):
    def twin_training(jobs):
        return train_on_twin(run / RESUME_FILE, TWIN, steps=300, eval_every=150, eval_episodes=2,
                             out_dir=tmp_path / f"jobs{jobs}", confirm_episodes=3, scratch_runs=2, scratch_history=2,
                             jobs=jobs)

    alone, beside = twin_training(1), twin_training(2)  # 1: in this process; 2: two processes for the 3 runs
    assert list(beside.best) == list(alone.best) == [CONTINUED, FROM_SCRATCH, f"{FROM_SCRATCH}, seed 1"]
    assert (beside.deployed, beside.best, beside.confirmed, beside.source) == \
        (alone.deployed, alone.best, alone.confirmed, alone.source)
    for folder in ("continued", "from-scratch", "from-scratch-seed-1"):  # every evaluation, its time aside
        evaluations = [[row.split(",")[:1] + row.split(",")[2:] for row in (tmp_path / jobs / folder / "eval.csv")
                        .read_text().splitlines()] for jobs in ("jobs1", "jobs2")]
        assert evaluations[0] == evaluations[1] and len(evaluations[0]) > 1


def test_a_script_without_the_main_guard_gets_one_line_saying_why_its_processes_died(run, tmp_path):
    script = tmp_path / "unguarded.py"  # spawned processes import it again and start a pool of their own
    script.write_text(f"""from pathlib import Path
from robopg.finetune.twin_training import train_on_twin
train_on_twin(Path({str(run / RESUME_FILE)!r}), {{"actuator_gain": 0.7}}, steps=10, eval_every=10, eval_episodes=1,
              out_dir=Path({str(tmp_path / "t")!r}), scratch_runs=1, jobs=2)
""")
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode != 0
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith("robopg.errors.WorkerFailure: a process training on the twin ended abruptly") \
        and 'if __name__ == "__main__":' in last and "twin_jobs = 1" in last
