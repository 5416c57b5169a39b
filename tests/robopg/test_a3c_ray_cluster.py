"""A3C on a Ray cluster of several nodes on this machine: workers on different nodes, a node removed mid-run,
every gradient accounted for once, and a driver killed with SIGKILL resumed from its checkpoint."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from robopg import checkpoint  # noqa: E402
from robopg.registry import make_config  # noqa: E402
from robopg.training.a3c.ledger import APPLIED, LOST, STALE  # noqa: E402
from robopg.training.loop import prepare_new_run_dir  # noqa: E402
from robopg.training.run import make_trainer  # noqa: E402

ENV = "toy_envs:PointToOrigin-v0"
SETTINGS = {"workers": 2, "backend": "ray", "rollout_steps": 16, "actor_hidden": [16], "critic_hidden": [16],
            "eval_every": 100_000, "eval_episodes": 1, "log_every": 1_000, "checkpoint_every": 1_000,
            "gamma": 0.9}


@pytest.fixture
def cluster():
    # The head runs the driver only (no CPU for workers); three one-CPU nodes: two workers and a spare.
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(3)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, nodes
    ray.shutdown()
    cluster.shutdown()


def check_ledger(state: dict, workers: int) -> list[bytes]:
    """Every gradient of each worker settled once, in order; the counter is the number applied."""
    loop = state["loop"]
    outcomes = [bytes(o.numpy().tobytes()) for o in loop["gradients"]["outcomes"]]
    assert len(outcomes) == workers
    assert all(set(o) <= set(APPLIED + STALE + LOST) for o in outcomes)
    assert loop["gradients_applied"] == sum(o.count(APPLIED) for o in outcomes)
    return outcomes


def test_workers_on_several_nodes_survive_a_node_removal_and_a_driver_kill(cluster, tmp_path):
    cluster, nodes = cluster
    run_dir = tmp_path / "run"
    config = make_config("a3c", {**SETTINGS, "total_steps": 12_000, "ray_address": cluster.address})
    prepare_new_run_dir(run_dir)
    trainer = make_trainer(ENV, config, run_dir, show_progress=False)
    removed: list[str] = []

    def remove_worker_0s_node():
        # Once both workers have had gradients applied, take away the node worker 0 runs on.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = trainer.workers
            if workers is not None and all(workers.ledger.count(APPLIED, i) >= 2 for i in range(2)):
                node_id = workers.nodes()[0][-1]
                node = next(n for n in nodes if n.node_id == node_id)
                removed.append(node_id)
                cluster.remove_node(node)
                return
            time.sleep(0.05)

    remover = threading.Thread(target=remove_worker_0s_node)
    remover.start()
    result = trainer.run()
    remover.join()

    assert result.steps >= 12_000
    assert removed, "the run ended before both workers had gradients applied"
    nodes_0, nodes_1 = trainer.workers.nodes()
    assert nodes_0[0] == removed[0] and len(nodes_0) == 2 and nodes_0[1] != removed[0]  # relaunched elsewhere
    assert len(nodes_1) == 1 and len(set(nodes_0) | set(nodes_1)) == 3  # three nodes, one worker each at a time
    assert trainer.workers.restarts == [1, 0]
    state = checkpoint.load(run_dir / checkpoint.RESUME_FILE)
    outcomes = check_ledger(state, 2)
    assert outcomes[0].count(LOST) >= 1 and outcomes[1].count(LOST) == 0  # what was in flight to the dead node
    assert state["loop"]["gradients_applied"] == trainer.ledger.applied

    # Go on to 20,000 steps in a driver of its own, kill it with SIGKILL after a checkpoint past 13,000, resume.
    driver = subprocess.Popen([sys.executable, "-m", "robopg.cli", "train-sim", "--resume", str(run_dir), "--steps",
                               "20000", "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if checkpoint.load(run_dir / checkpoint.RESUME_FILE)["step"] >= 13_000:
                break
            assert driver.poll() is None, "the driver ended before a checkpoint past 13,000 steps"
            time.sleep(0.1)
        os.kill(driver.pid, signal.SIGKILL)
    finally:
        driver.wait()
    killed = checkpoint.load(run_dir / checkpoint.RESUME_FILE)
    assert 13_000 <= killed["step"] < 20_000
    killed_outcomes = check_ledger(killed, 2)
    assert all(k.startswith(o) for k, o in zip(killed_outcomes, outcomes, strict=True))

    resumed = make_trainer(ENV, make_config("a3c", {**SETTINGS, "total_steps": 20_000,
                                                    "ray_address": cluster.address}), run_dir, show_progress=False)
    result = resumed.run(resume_state=killed)
    assert result.steps >= 20_000
    survivors = {n.node_id for n in nodes} - set(removed)
    assert {nodes[-1] for nodes in resumed.workers.nodes()} == survivors  # one worker on each node left
    final = checkpoint.load(run_dir / checkpoint.RESUME_FILE)
    final_outcomes = check_ledger(final, 2)
    # The gradients behind the killed driver's checkpoint stay as they were; the resumed run numbers on from there.
    assert all(f.startswith(k) and len(f) > len(k) for f, k in zip(final_outcomes, killed_outcomes, strict=True))
    assert final["loop"]["gradients_applied"] > killed["loop"]["gradients_applied"]
