"""A throughput model for A3C with more workers than this machine has, built from measured per-gradient costs.

Each gradient costs, measured here one at a time with the backends' own code:
- local backend (workers step shared networks, Hogwild): the worker's copy of the weights, its rollout and
  backward pass, its lock-free optimizer step, the pickling of its report; the trainer's unpickling of the report
  and folding of its observations into the normalizer, which is serial (one trainer);
- Ray backend (the driver applies every gradient): the worker's rollout and backward pass from weights it is
  sent; the driver's optimizer step, normalizer fold, one ``ray.put`` of the new weights, and Ray's own cost of
  a request and its answer (a round trip of an actor call carrying the gradient's arrays, measured on a local
  Ray instance); the bytes the driver sends and receives per gradient, which cross the network on a cluster.

A run's throughput is the least of three bounds (gradients per second): the workers' (N / worker time), the
machines' CPUs (cores / CPU time per gradient, when workers and trainer share them) and the one serial process
(1 / trainer or driver time, plus the driver's network time at a given bandwidth). ``--check`` runs the local
backend at 1-4 workers and Ray at 1-2 (evaluation off, the same budget each) and prints measured against predicted.

usage: python tools/a3c_scaling_model.py [--env ID] [--check] [--check-steps 30000]
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robopg.algos.a2c import A2C
from robopg.envs import make_env
from robopg.registry import make_config
from robopg.training.a3c.ray_backend import import_ray, to_arrays, to_tensors
from robopg.training.a3c.worker import GlobalNets, GradientWorker, WorkerSpec
from robopg.training.run import train

REPEATS = 300
WORKER_COUNTS = (1, 2, 3, 4, 8, 16, 64)
BANDWIDTHS_GBIT = (1.0, 10.0)


@dataclass(frozen=True)
class Costs:
    """Seconds per gradient, and bytes; ``steps``: environment steps per gradient."""

    steps: int
    load: float  # a worker copies the global weights
    gradient: float  # rollout and backward pass
    apply: float  # clipped optimizer step of actor and critic
    report: float  # pickling a report (local: through a pipe)
    receive: float  # unpickling a report and folding its observations into the normalizer
    put: float  # ray.put of one weights version
    round_trip: float  # a Ray actor call carrying a gradient's arrays, there and back
    gradient_bytes: int
    report_bytes: int
    weights_bytes: int

    def local_worker(self) -> float:
        return self.load + self.gradient + self.apply + self.report

    def local_trainer(self) -> float:
        return self.receive

    def ray_worker(self) -> float:
        return self.load + self.gradient

    def ray_driver(self) -> float:
        return self.apply + self.receive + self.put + self.round_trip

    def network_bytes(self) -> int:
        """What crosses the driver's link per gradient: the gradient and report in, one weights version out."""
        return self.gradient_bytes + self.report_bytes + self.weights_bytes


def timed(function, repeats: int = REPEATS) -> float:
    function()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def measure(env_id: str) -> Costs:
    torch.set_num_threads(1)
    config = make_config("a3c", {"workers": 1})
    env = make_env(env_id, **config.env_options())
    obs_dim = int(np.prod(env.observation_space.shape))
    low, high = env.action_space.low.astype(np.float32), env.action_space.high.astype(np.float32)
    env.close()
    learner = A2C(config, obs_dim, low, high, torch.Generator().manual_seed(0))
    nets = GlobalNets.of(learner)
    worker = GradientWorker(env_id, config, WorkerSpec.for_worker(config, 0), obs_dim, low, high)
    actor, critic, report = worker.gradients()
    report_bytes = pickle.dumps(report)
    gradient_arrays = [g.numpy() for g in [*actor, *critic]]
    weights = to_arrays(nets.states())

    def receive() -> None:
        nets.absorb(pickle.loads(report_bytes))

    ray = import_ray()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote(num_cpus=1)
        class Echo:
            def answer(self, weights, arrays):
                return arrays

        echo = Echo.remote()
        weights_ref = ray.put(weights)
        ray.get(echo.answer.remote(weights_ref, gradient_arrays))
        round_trip = timed(lambda: to_tensors(ray.get(echo.answer.remote(weights_ref, gradient_arrays))))
        put = timed(lambda: ray.put(to_arrays(nets.states())))
    finally:
        ray.shutdown()
    costs = Costs(
        steps=config.rollout_steps * config.num_envs,
        load=timed(lambda: worker.load(nets.states())),
        gradient=timed(worker.gradients),
        apply=timed(lambda: nets.apply([g.clone() for g in actor], [g.clone() for g in critic])),
        report=timed(lambda: pickle.dumps(report)),
        receive=timed(receive),
        put=put,
        round_trip=round_trip,
        gradient_bytes=sum(a.nbytes for a in gradient_arrays),
        report_bytes=len(report_bytes),
        weights_bytes=sum(a.nbytes for state in weights.values() for a in state.values()),
    )
    worker.close()
    return costs


def local_rate(costs: Costs, workers: int, cores: int) -> tuple[float, str]:
    """Predicted steps/s of the local backend and the bound that sets it."""
    bounds = {"workers": workers / costs.local_worker(),
              "cores": cores / (costs.local_worker() + costs.local_trainer()),
              "trainer": 1 / costs.local_trainer()}
    bound = min(bounds, key=bounds.get)
    return bounds[bound] * costs.steps, bound


def ray_rate(costs: Costs, workers: int, cores: int | None, bandwidth_gbit: float | None) -> tuple[float, str]:
    """Predicted steps/s of the Ray backend: on one machine of ``cores`` (no network), or on a cluster with a
    core per worker and the driver's own (``cores`` None) whose driver link carries ``bandwidth_gbit``."""
    network = 0.0 if bandwidth_gbit is None else costs.network_bytes() * 8 / (bandwidth_gbit * 1e9)
    bounds = {"workers": workers / costs.ray_worker(), "driver": 1 / (costs.ray_driver() + network)}
    if cores is not None:
        bounds["cores"] = cores / (costs.ray_worker() + costs.ray_driver())
    bound = min(bounds, key=bounds.get)
    return bounds[bound] * costs.steps, bound


def measured_rate(env_id: str, steps: int, workers: int, backend: str) -> float:
    config = make_config("a3c", {"total_steps": steps, "workers": workers, "backend": backend,
                                 "eval_every": steps, "checkpoint_every": steps, "eval_episodes": 1})
    with tempfile.TemporaryDirectory() as tmp:
        result = train(env_id, config, Path(tmp) / "run", show_progress=False)
    return result.steps / result.train_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="robopg/CartPoleSwingUp-v0")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--check-steps", type=int, default=30_000)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    c = measure(args.env)
    ms = 1e3
    print(f"{args.env}: {c.steps} steps per gradient; per gradient, in ms: worker load {c.load * ms:.3f}, rollout "
          f"and backward {c.gradient * ms:.3f}, apply {c.apply * ms:.3f}, report pickle {c.report * ms:.3f}, "
          f"report unpickle and normalizer {c.receive * ms:.3f}, ray.put of the weights {c.put * ms:.3f}, Ray "
          f"round trip {c.round_trip * ms:.3f}; bytes: gradient {c.gradient_bytes}, report {c.report_bytes}, "
          f"weights {c.weights_bytes}")
    print(f"local: worker {c.local_worker() * ms:.3f} ms per gradient, trainer (serial) "
          f"{c.local_trainer() * ms:.3f}; Ray: worker {c.ray_worker() * ms:.3f}, driver (serial) "
          f"{c.ray_driver() * ms:.3f}")
    header = (f"{'workers':>7} | {'local, ' + str(cores) + ' cores':>22} | {'local, a core each':>22} | "
              f"{'Ray, ' + str(cores) + ' cores':>22} | " + " | ".join(f"{'Ray cluster, ' + str(b) + ' Gb/s':>24}"
                                                                   for b in BANDWIDTHS_GBIT))
    print(header)
    for n in WORKER_COUNTS:
        cells = [local_rate(c, n, cores), local_rate(c, n, n + 1), ray_rate(c, n, cores, None),
                 *(ray_rate(c, n, None, b) for b in BANDWIDTHS_GBIT)]
        print(f"{n:>7} | " + " | ".join(f"{rate:>10.0f} ({bound:>7})".rjust(22 if i < 3 else 24)
                                         for i, (rate, bound) in enumerate(cells)))
    if args.check:
        for workers, backend in ((1, "local"), (2, "local"), (3, "local"), (4, "local"), (1, "ray"), (2, "ray")):
            predicted = (local_rate(c, workers, cores) if backend == "local" else ray_rate(c, workers, cores, None))[0]
            rate = measured_rate(args.env, args.check_steps, workers, backend)
            print(f"check {backend:5s} {workers} worker(s): measured {rate:6.0f} steps/s, predicted {predicted:6.0f} "
                  f"({rate / predicted:.2f} of the prediction)", flush=True)


if __name__ == "__main__":
    main()
