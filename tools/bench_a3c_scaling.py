"""A3C scaling on this machine: environment steps per second with 1 and 2 local workers and with the Ray backend
at 2, same total budget and settings, the default evaluation schedule on (evaluations in their own process).

Two clocks: the training clock (what ``eval.csv`` and time-to-threshold use: the run less the time it waited for
evaluations) and the wall clock of the whole run, evaluations and start-up included. With ``--seeds`` above 1,
also the evaluation return at equal steps, 1 worker against 2, seed by seed. With ``--cluster``, also Ray with
2 workers on a Ray cluster of several nodes on this machine (``ray.cluster_utils.Cluster``: a head that runs the
driver only and one node of one CPU per worker, as ``tests/robopg/test_a3c_ray_cluster.py`` starts it).

usage: python tools/bench_a3c_scaling.py [--env ID ...] [--steps 200000] [--seeds 1] [--no-ray] [--cluster]
    [--set KEY=VALUE ...]  (A3C settings for every run, e.g. gradients_per_request=1)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from robopg.registry import make_config
from robopg.settings import parse_assignments
from robopg.training.metrics import read_evaluations
from robopg.training.run import train

TASKS = ("robopg/CartPoleSwingUp-v0", "robopg/HalfCheetah-v0")  # 250- and 1000-step episodes


@dataclass(frozen=True)
class Measured:
    train_rate: float  # steps per training second
    wall_rate: float  # steps per second of the whole run
    evaluations: list[tuple[int, float, float]]  # (step, training seconds, mean return)


def run(env_id: str, settings: dict[str, Any], steps: int, seed: int, workers: int, backend: str,
        ray_address: str = "") -> Measured:
    config = make_config("a3c", {**settings, "total_steps": steps, "seed": seed, "workers": workers,
                                 "backend": backend, "ray_address": ray_address})
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = train(env_id, config, Path(tmp) / "run", show_progress=False)
        wall = time.perf_counter() - started
        evaluations = read_evaluations(Path(tmp) / "run")
    return Measured(result.steps / result.train_seconds, result.steps / wall, evaluations)


def on_cluster(nodes: int, work):
    """``work(address)`` with a Ray cluster of a driver-only head and ``nodes`` one-CPU nodes up."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        return work(cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()


def ratio(measured: dict[tuple[int, str], list[Measured]], case: tuple[int, str], base: tuple[int, str],
          clock: str) -> float:
    """The mean over seeds of ``case``'s rate on ``clock`` over ``base``'s, each seed against its own."""
    return float(np.mean([getattr(m, clock) / getattr(b, clock)
                          for m, b in zip(measured[case], measured[base], strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", nargs="+", default=list(TASKS))
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="A3C settings for every run")
    args = parser.parse_args()
    settings = parse_assignments(args.set, "--set")
    cases = [(1, "local"), (2, "local")] + ([] if args.no_ray else [(2, "ray")]) + (
        [(2, "cluster")] if args.cluster else [])
    for env_id in args.env:
        measured: dict[tuple[int, str], list[Measured]] = {case: [] for case in cases}
        for seed in range(args.seeds):
            for workers, backend in cases:
                if backend == "cluster":
                    m = on_cluster(workers, partial(run, env_id, settings, args.steps, seed, workers, "ray"))
                else:
                    m = run(env_id, settings, args.steps, seed, workers, backend)
                measured[(workers, backend)].append(m)
                final = m.evaluations[-1][2]
                print(f"{env_id} seed {seed}, {workers} worker(s) {backend:7s}: {m.train_rate:6.0f} steps/s training "
                      f"clock, {m.wall_rate:6.0f} wall clock; final evaluation {final:.1f}", flush=True)
        for clock, name in (("train_rate", "training clock"), ("wall_rate", "wall clock")):
            line = f"{env_id}, {name}: 2 vs 1 local workers {ratio(measured, (2, 'local'), (1, 'local'), clock):.2f}x"
            if (2, "ray") in measured:
                line += f", Ray vs local at 2 workers {ratio(measured, (2, 'ray'), (2, 'local'), clock):.2f}x"
            if (2, "cluster") in measured:
                line += f", Ray cluster vs local at 2 {ratio(measured, (2, 'cluster'), (2, 'local'), clock):.2f}x"
            print(line + f" (mean over {args.seeds} seed(s))")
        if args.seeds > 1:
            for workers in (1, 2):
                # Evaluations are at the same steps in every run (the default schedule): compare them step by step.
                runs = measured[(workers, "local")]
                count = min(len(m.evaluations) for m in runs)
                returns = np.array([[mean for _, _, mean in m.evaluations[:count]] for m in runs])
                print(f"{env_id}, {workers} local worker(s): evaluation return at each evaluation step, mean over "
                      f"seeds {np.round(returns.mean(axis=0), 1).tolist()}; area under the curve "
                      f"{returns.mean(axis=1).round(1).tolist()} by seed")


if __name__ == "__main__":
    main()
