"""A throughput model for A3C with more workers than this machine has, built from measured per-gradient costs.

Where the time of one gradient goes, measured one at a time with the backends' own code: a worker's copy of the
weights, its rollout and backward pass, the optimizer step, the report's pickling and the trainer's folding of
it into the normalizer, a ``ray.put`` of the weights (where they are too large to go inside the call), a Ray
actor call's round trip carrying the weights and a gradient's arrays (and the CPU the whole machine spends on it:
driver, actor and Ray's own processes), and the bytes per gradient that cross the driver's link on a cluster.

The model: a run's rate (gradients per second) is the least of three bounds: the workers' (each as fast as a
lone worker is), the serial process's (the local trainer or the Ray driver: one over its CPU per gradient, plus
the network time of its bytes on a cluster) and, on one machine, its CPU's (cores over the machine's CPU per
gradient, every process counted). The per-gradient figures come from one-worker runs of each backend, read in
their steady state (between their logged intervals after the first: start-up left out). ``--check`` runs 2-4
workers and compares the measured steady rate with the prediction.

usage: python tools/a3c_scaling_model.py [--env ID] [--set KEY=VALUE ...] [--check] [--calibration-steps 60000]
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robopg.algos.a2c import A2C
from robopg.envs import make_env
from robopg.registry import make_config
from robopg.settings import parse_assignments
from robopg.training.a3c.ray_backend import INLINE_BYTES, WORKER_NICENESS, import_ray
from robopg.training.a3c.worker import GlobalNets, GradientWorker, WorkerSpec
from robopg.training.metrics import CsvLog
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
    put: float  # ray.put of one weights version (0 where they go inside the call)
    round_trip: float  # a Ray actor call carrying the weights there and a gradient's arrays back
    ray_cpu: float  # CPU seconds the machine spends on one such call, every process included
    gradient_bytes: int
    report_bytes: int
    weights_bytes: int

    def network_bytes(self) -> int:
        """What crosses the driver's link per gradient: the gradient and report in, one weights version out."""
        return self.gradient_bytes + self.report_bytes + self.weights_bytes


def machine_cpu_seconds() -> float:
    """CPU time spent on this machine since boot, every process (/proc/stat: user, nice, system, irq, softirq)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / os.sysconf("SC_CLK_TCK")


def timed(function, repeats: int = REPEATS) -> float:
    function()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def measure(env_id: str, settings: dict) -> Costs:
    torch.set_num_threads(1)
    config = make_config("a3c", {**settings, "workers": 1})
    env = make_env(env_id, **config.env_options())
    obs_dim = int(np.prod(env.observation_space.shape))
    low, high = env.action_space.low.astype(np.float32), env.action_space.high.astype(np.float32)
    env.close()
    learner = A2C(config, obs_dim, low, high, torch.Generator().manual_seed(0))
    nets = GlobalNets.of(learner)
    worker = GradientWorker(env_id, config, WorkerSpec.for_worker(config, 0), obs_dim, low, high)
    gradient, report = worker.gradients()
    report_bytes = pickle.dumps(report)
    gradient_array = gradient.numpy()
    weights = nets.weights().numpy()
    weights_bytes = weights.nbytes

    def receive() -> None:
        nets.absorb(pickle.loads(report_bytes))

    ray = import_ray()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             _system_config={"worker_niceness": WORKER_NICENESS})
    try:
        @ray.remote(num_cpus=1)
        class Echo:
            def answer(self, weights, gradient):
                return gradient

        echo = Echo.remote()
        # The weights as the backend sends them: inside the call when small, else by one object-store reference.
        inline = weights_bytes < INLINE_BYTES
        weights_ref = None if inline else ray.put(weights)

        def call() -> torch.Tensor:
            return torch.tensor(ray.get(echo.answer.remote(nets.weights().numpy() if inline else weights_ref,
                                                           gradient_array)))

        call()
        cpu_before = machine_cpu_seconds()
        round_trip = timed(call)
        ray_cpu = (machine_cpu_seconds() - cpu_before) / (REPEATS + 1)
        put = 0.0 if inline else timed(lambda: ray.put(nets.weights().numpy()))
    finally:
        ray.shutdown()
    costs = Costs(
        steps=config.rollout_steps * config.num_envs,
        load=timed(lambda: worker.load(nets.weights())),
        gradient=timed(worker.gradients),
        apply=timed(lambda: nets.apply(gradient.clone())),
        report=timed(lambda: pickle.dumps(report)),
        receive=timed(receive),
        put=put,
        round_trip=round_trip,
        ray_cpu=ray_cpu,
        gradient_bytes=gradient_array.nbytes,
        report_bytes=len(report_bytes),
        weights_bytes=weights_bytes,
    )
    worker.close()
    return costs


@dataclass(frozen=True)
class Calibration:
    """A real run's steady state (its logged intervals after the first), per gradient: wall seconds, the
    trainer's or driver's own CPU seconds (this process, every thread), the whole machine's CPU seconds."""

    wall: float
    process_cpu: float
    machine_cpu: float


def calibrated_run(env_id: str, settings: dict, steps: int, workers: int, backend: str) -> Calibration:
    """Run A3C in this process (evaluation off); read the clocks each time a progress line is written."""
    config = make_config("a3c", {**settings, "total_steps": steps, "workers": workers, "backend": backend,
                                 "eval_every": steps, "checkpoint_every": steps, "eval_episodes": 1,
                                 "log_every": max(steps // 20, 1)})
    samples: list[tuple[int, float, float, float]] = []  # (steps, wall, process CPU, machine CPU)
    done = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        progress = Path(tmp) / "run" / "progress.csv"

        def sample() -> None:
            while not done.is_set():
                rows = CsvLog(progress, ()).read() if progress.exists() else []
                if rows and (not samples or int(rows[-1]["step"]) > samples[-1][0]):
                    usage = resource.getrusage(resource.RUSAGE_SELF)
                    samples.append((int(rows[-1]["step"]), time.perf_counter(), usage.ru_utime + usage.ru_stime,
                                    machine_cpu_seconds()))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            train(env_id, config, Path(tmp) / "run", show_progress=False)
        finally:
            done.set()
            sampler.join()
    (steps0, wall0, process0, machine0), (steps1, wall1, process1, machine1) = samples[1], samples[-2]
    gradients = (steps1 - steps0) / (config.rollout_steps * config.num_envs)
    return Calibration((wall1 - wall0) / gradients, (process1 - process0) / gradients,
                       (machine1 - machine0) / gradients)


def predicted_rate(one: Calibration, workers: int, cores: int | None, network: float = 0.0) -> tuple[float, str]:
    """Gradients per second at ``workers``, from a one-worker run ``one``: the least of the workers' bound (each
    as fast as the one was), the serial trainer's or driver's (its CPU per gradient plus ``network`` seconds
    per gradient on its link) and, on one machine of ``cores``, the CPU's (the machine's CPU per gradient)."""
    bounds = {"workers": workers / one.wall, "serial": 1 / (one.process_cpu + network)}
    if cores is not None:
        bounds["cores"] = cores / one.machine_cpu
    bound = min(bounds, key=bounds.get)
    return bounds[bound], bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="robopg/CartPoleSwingUp-v0")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="A3C settings (e.g. num_envs=4)")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--calibration-steps", type=int, default=60_000)
    args = parser.parse_args()
    settings = parse_assignments(args.set, "--set")
    cores = os.cpu_count() or 1
    c = measure(args.env, settings)
    ms = 1e3
    print(f"{args.env}: {c.steps} steps per gradient; per gradient, in ms: worker load {c.load * ms:.3f}, rollout "
          f"and backward {c.gradient * ms:.3f}, apply {c.apply * ms:.3f}, report pickle {c.report * ms:.3f}, "
          f"report unpickle and normalizer {c.receive * ms:.3f}, ray.put of the weights {c.put * ms:.3f}, Ray "
          f"round trip {c.round_trip * ms:.3f} (machine CPU {c.ray_cpu * ms:.3f}); bytes: gradient "
          f"{c.gradient_bytes}, report {c.report_bytes}, weights {c.weights_bytes}")
    steps_per_gradient = c.steps
    local = calibrated_run(args.env, settings, args.calibration_steps, 1, "local")
    ray = calibrated_run(args.env, settings, args.calibration_steps, 1, "ray")
    for name, one in (("local", local), ("Ray", ray)):
        print(f"{name}, 1 worker, steady state, ms per gradient: wall {one.wall * ms:.3f}, trainer/driver CPU "
              f"{one.process_cpu * ms:.3f}, machine CPU {one.machine_cpu * ms:.3f}")
    columns = [("local, " + str(cores) + " cores", local, cores, 0.0), ("local, a core each", local, None, 0.0),
               ("Ray, " + str(cores) + " cores", ray, cores, 0.0),
               *((f"Ray cluster, {b:g} Gb/s", ray, None, c.network_bytes() * 8 / (b * 1e9)) for b in BANDWIDTHS_GBIT)]
    print("predicted steps/s (bound) | " + " | ".join(f"{name:>22}" for name, *_ in columns))
    for n in WORKER_COUNTS:
        cells = [predicted_rate(one, n, cores_, network) for _, one, cores_, network in columns]
        print(f"{n:>14} worker(s) | " + " | ".join(f"{rate * steps_per_gradient:>12.0f} ({bound:>7})"
                                                   for rate, bound in cells))
    if args.check:
        for workers, backend, one in ((2, "local", local), (3, "local", local), (4, "local", local),
                                      (2, "ray", ray), (3, "ray", ray)):
            predicted = predicted_rate(one, workers, cores)[0] * steps_per_gradient
            run = calibrated_run(args.env, settings, args.calibration_steps, workers, backend)
            rate = steps_per_gradient / run.wall
            print(f"check {backend:5s} {workers} worker(s): measured {rate:6.0f} steps/s, predicted {predicted:6.0f} "
                  f"({rate / predicted:.2f} of the prediction)", flush=True)


if __name__ == "__main__":
    main()
