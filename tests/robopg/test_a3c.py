"""A3C: asynchronous workers learn; a killed worker is replaced; the Ray backend; the missing-extra error."""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from robopg import checkpoint
from robopg.errors import ConfigError
from robopg.registry import make_config
from robopg.training.a3c.ray_backend import staleness_warning
from robopg.training.run import resume, train

A3C = {"total_steps": 16_000, "workers": 2, "rollout_steps": 16, "actor_lr": 3e-3, "critic_lr": 3e-3,
       "actor_hidden": [16], "critic_hidden": [16], "eval_every": 16_000, "eval_episodes": 10, "log_every": 2_000,
       "checkpoint_every": 16_000, "gamma": 0.9, "worker_init_ranges": [1.0, 0.5],
       "worker_entropy_coefs": [0.0, 0.001]}


def started_at(pid: int) -> int:
    """A process's start time, in clock ticks since boot (/proc/PID/stat's 22nd field)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def test_per_worker_settings_are_checked():
    with pytest.raises(ConfigError, match="one value per worker"):
        make_config("a3c", {"workers": 3, "worker_init_ranges": [1.0, 0.5]})
    with pytest.raises(ConfigError, match="backend must be"):
        make_config("a3c", {"backend": "mpi"})


def test_take_turns_needs_the_local_backend():
    with pytest.raises(ConfigError, match="take_turns is available with the local backend only"):
        make_config("a3c", {"take_turns": True, "backend": "ray"})


def test_workers_taking_turns_resume_exactly(tmp_path):
    config = {**A3C, "total_steps": 640, "eval_every": 160, "eval_episodes": 1, "checkpoint_every": 160,
              "take_turns": True}
    train("toy_envs:PointToOrigin-v0", make_config("a3c", config), tmp_path / "whole", show_progress=False)
    # 25 turns of 16 steps: the workers' simulators are 208 and 192 steps into 20-step episodes, mid-episode
    train("toy_envs:PointToOrigin-v0", make_config("a3c", {**config, "total_steps": 400}), tmp_path / "split",
          show_progress=False)
    resume(tmp_path / "split", total_steps=640, show_progress=False)
    whole, split = checkpoint.load(tmp_path / "whole")["learner"], checkpoint.load(tmp_path / "split")["learner"]
    for part in ("pi", "value", "normalizer"):
        for name, tensor in whole[part].items():
            assert torch.equal(tensor, split[part][name]), f"{part}.{name}"


def test_local_workers_learn_and_a_killed_worker_is_replaced(tmp_path, capfd):
    def kill_one_worker():
        # As soon as the worker processes exist (a fixed wait raced a fast run to its end), give them a second
        # to take part, then kill the last one started: the evaluator process is started before the workers.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            children = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True,
                                      text=True).stdout.split()
            commands = {int(pid): Path(f"/proc/{pid}/cmdline").read_text() for pid in children}
            spawned = [pid for pid, command in commands.items()
                       if "multiprocessing.spawn" in command and "resource_tracker" not in command]
            if len(spawned) == 1 + A3C["workers"]:
                time.sleep(1.0)
                os.kill(max(spawned, key=started_at), signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    result = train("toy_envs:PointToOrigin-v0", make_config("a3c", A3C), tmp_path / "run", show_progress=False)
    killer.join()
    assert result.steps >= 16_000
    assert result.final_eval.mean > -5.0, result.final_eval
    assert "died (exit code -9); restarted" in capfd.readouterr().err


def test_ray_backend_learns(tmp_path):
    pytest.importorskip("ray")
    config = make_config("a3c", {**A3C, "backend": "ray"})
    result = train("toy_envs:PointToOrigin-v0", config, tmp_path / "run", show_progress=False)
    assert result.final_eval.mean > -5.0, result.final_eval


@pytest.mark.parametrize(("hidden", "inline"), [([16], True), ([256, 256], False)])
def test_ray_requests_carry_small_weights_inside_and_large_ones_by_reference(hidden, inline):
    pytest.importorskip("ray")
    import numpy as np

    from robopg.algos.a2c import A2C
    from robopg.training.a3c.ledger import GradientLedger
    from robopg.training.a3c.ray_backend import INLINE_BYTES, RayWorkers

    config = make_config("a3c", {**A3C, "backend": "ray", "actor_hidden": hidden, "critic_hidden": hidden})
    low, high = -np.ones(2, np.float32), np.ones(2, np.float32)
    learner = A2C(config, 4, low, high, torch.Generator().manual_seed(0))
    workers = RayWorkers("toy_envs:PointToOrigin-v0", config, learner, (4, low, high), GradientLedger(2))
    size = sum(t.numel() * t.element_size() for t in (learner.normalizer.mean, learner.normalizer.var,
                                                          *learner.pi.parameters(), *learner.critic.parameters()))
    assert (size < INLINE_BYTES) == inline and workers.inline == inline
    if inline:  # the request's argument is the weights themselves, one numpy array
        weights = workers.weights_arg()
        assert isinstance(weights, np.ndarray) and weights.nbytes == size
        assert np.array_equal(weights, workers.nets.weights().numpy())


def test_ray_backend_without_ray_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from robopg.cli import main; "
            f"sys.argv = ['robopg', 'train-sim', '--env', 'Pendulum-v1', '--algo', 'a3c', '--backend', 'ray', "
            f"'--out', '{tmp_path / 'run'}']; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --backend ray needs Ray, an optional extra: pip install 'robopg[ray]'"


def test_a_max_staleness_below_the_pipelines_lag_is_warned_of():
    config = make_config("a3c", {"backend": "ray", "workers": 16, "gradients_per_request": 4})
    assert staleness_warning(config) == (
        "max_staleness 64 is below the lag of up to 127 updates that 16 workers with 2 requests of 4 gradients in "
        "flight give: gradients will be dropped; raise max_staleness or lower gradients_per_request")
    assert staleness_warning(replace(config, max_staleness=127)) is None
    assert staleness_warning(replace(config, max_staleness=0)) is None  # asked for: only current gradients


def test_ray_backend_drops_gradients_past_max_staleness(tmp_path):
    # One worker with two requests in flight, each for two gradients from the weights it carries. With
    # max_staleness 0 only a request's first gradient, and only if no gradient was applied since it was sent, is
    # of the current weights: one request in two, so "as" then "ss" (one gradient per request would give "as").
    pytest.importorskip("ray")
    config = make_config("a3c", {**A3C, "backend": "ray", "workers": 1, "max_staleness": 0, "total_steps": 640,
                                 "gradients_per_request": 2, "worker_init_ranges": [], "worker_entropy_coefs": [],
                                 "eval_every": 640, "eval_episodes": 1, "checkpoint_every": 640})
    train("toy_envs:PointToOrigin-v0", config, tmp_path / "run", show_progress=False)
    loop = checkpoint.load(tmp_path / "run" / checkpoint.RESUME_FILE)["loop"]
    outcomes = loop["gradients"]["outcomes"][0].numpy().tobytes()
    assert len(outcomes) == 640 // 16 and outcomes == b"asss" * (len(outcomes) // 4)
    assert loop["gradients_applied"] == outcomes.count(b"a")
