"""Evaluations beside training: the same results as in the loop, a killed evaluator replaced, queued
evaluations kept across a resume."""

import csv
import os
import shutil
import signal
from dataclasses import asdict

import pytest

from robopg import checkpoint
from robopg.core.nets import torch_policy_fn
from robopg.envs import make_env
from robopg.evaluation import evaluate
from robopg.registry import make_config
from robopg.training.evaluator import BackgroundEvaluator, Snapshot
from robopg.training.loop import EVAL_SEED_OFFSET
from robopg.training.run import resume, train

ENV = "toy_envs:PointToOrigin-v0"
A3C = {"total_steps": 1_600, "workers": 1, "rollout_steps": 16, "actor_hidden": [16], "critic_hidden": [16],
       "eval_every": 800, "eval_episodes": 3, "log_every": 800, "checkpoint_every": 800}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("a3c") / "run"
    train(ENV, make_config("a3c", A3C), run_dir, show_progress=False)
    return run_dir


def policy_of(run_dir):
    return checkpoint.restore(run_dir / checkpoint.CHECKPOINT_FILE).policy()


def test_the_evaluator_gives_the_loops_results_and_survives_a_kill(trained_run, capfd):
    policy = policy_of(trained_run)
    env = make_env(ENV)
    expected = evaluate(torch_policy_fn(policy), env, 3, seed=7)
    env.close()
    evaluator = BackgroundEvaluator(ENV, {}, 3, 7, 1)
    evaluator.start()
    try:
        evaluator.submit(Snapshot.of(800, 1.0, {}, policy))
        first = evaluator.finished(wait=True)
        os.kill(evaluator.process.pid, signal.SIGKILL)
        evaluator.process.join()
        evaluator.submit(Snapshot.of(1600, 2.0, {}, policy))
        evaluator.submit(Snapshot.of(2400, 3.0, {}, policy))
        rest = evaluator.finished(wait=True)
    finally:
        evaluator.close()
    assert [(snapshot.step, result) for snapshot, result in first + rest] == [
        (800, expected), (1600, expected), (2400, expected)]
    assert "the evaluator process died (exit code -9); restarted" in capfd.readouterr().err


def test_queued_evaluations_are_done_after_a_resume_and_written_once(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    policy = policy_of(run_dir)
    state = checkpoint.load(run_dir / checkpoint.RESUME_FILE)
    # As if the evaluation of step 800 had been still queued at the checkpoint and its row written before a kill.
    queued = Snapshot.of(800, 0.5, {**state, "learner": state["learner"]}, policy)
    state["loop"]["queued_evaluations"] = [asdict(queued)]
    checkpoint.save(run_dir / checkpoint.RESUME_FILE, state)
    with open(run_dir / "eval.csv", newline="") as f:
        before = {int(row["step"]): row for row in csv.DictReader(f)}
    assert set(before) == {800, 1600}

    resume(run_dir, total_steps=2_400, show_progress=False)
    with open(run_dir / "eval.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(row["step"]) for row in rows) == [800, 1600, 2400]
    # The row of step 800 is the queued snapshot's evaluation, done after the resume.
    env = make_env(ENV)
    expected = evaluate(torch_policy_fn(policy), env, 3, seed=EVAL_SEED_OFFSET)
    env.close()
    after = {int(row["step"]): row for row in rows}
    assert float(after[800]["return_mean"]) == expected.mean
    assert after[1600] == before[1600]
