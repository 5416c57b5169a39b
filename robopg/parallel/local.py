"""A3C on one machine: worker processes update global networks that live in shared memory, lock-free
(Hogwild!, Recht et al. 2011, as A3C does), with Adam's moment estimates shared as well.

A worker that dies is restarted with a fresh seed and training goes on.
"""

from __future__ import annotations

import queue
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp

from robopg.algos.a2c import A2C
from robopg.config import A3CConfig
from robopg.parallel.worker import (
    GlobalNets,
    GradientWorker,
    WorkerReport,
    WorkerSpec,
    absorb_report,
    apply_gradients,
    check_restarts,
)


def share_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Create Adam's state now, in shared memory, so every worker steps the same moments."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state[param]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(param)
                state["exp_avg_sq"] = torch.zeros_like(param)
            for value in state.values():
                if isinstance(value, torch.Tensor):
                    value.share_memory_()


def share(nets: GlobalNets) -> None:
    for module in nets.modules().values():
        module.share_memory()
    share_optimizer(nets.actor_optimizer)
    share_optimizer(nets.critic_optimizer)


def run_worker(env_id: str, config: A3CConfig, spec: WorkerSpec, space: tuple[int, np.ndarray, np.ndarray],
               nets: GlobalNets, lock: Any, reports: Any, stop: Any) -> None:
    """A worker process: rollout, gradients, lock-free global step, report; until told to stop."""
    worker = GradientWorker(env_id, config, spec, *space)
    while not stop.is_set():
        worker.load(nets.states())
        actor, critic, report = worker.gradients()
        apply_gradients(nets, actor, critic)
        with lock:  # the normalizer's three statistics must change together
            absorb_report(nets, report)
        reports.put(report)
    worker.close()


class LocalWorkers:
    def __init__(self, env_id: str, config: A3CConfig, learner: A2C, space: tuple[int, np.ndarray, np.ndarray]):
        self.env_id, self.config, self.space = env_id, config, space
        self.nets = GlobalNets.of(learner)
        self.context = mp.get_context("spawn")  # fork after torch's threads start can deadlock
        self.lock = self.context.Lock()
        self.reports = self.context.Queue()
        self.stop = self.context.Event()
        self.processes: list[Any] = []
        self.restarts = [0] * config.workers

    def start(self) -> None:
        share(self.nets)
        self.processes = [self.spawn(i) for i in range(self.config.workers)]

    def spawn(self, index: int):
        spec = WorkerSpec.for_worker(self.config, index, self.restarts[index])
        process = self.context.Process(
            target=run_worker, daemon=True, name=f"a3c-worker-{index}",
            args=(self.env_id, self.config, spec, self.space, self.nets, self.lock, self.reports, self.stop),
        )
        process.start()
        return process

    def collect(self, timeout: float) -> list[WorkerReport]:
        """Reports that arrived (at least one unless ``timeout`` passes); the global step already happened."""
        reports = []
        try:
            reports.append(self.reports.get(timeout=timeout))
            while True:
                reports.append(self.reports.get_nowait())
        except queue.Empty:
            pass
        return reports

    def restart_dead(self) -> list[str]:
        """Restart workers that died; say which and how."""
        messages = []
        for index, process in enumerate(self.processes):
            if not process.is_alive() and not self.stop.is_set():
                self.restarts[index] += 1
                check_restarts(index, self.restarts[index], f"exit code {process.exitcode}")
                messages.append(f"A3C worker {index} died (exit code {process.exitcode}); restarted "
                                f"({self.restarts[index]} restart(s) so far)")
                self.processes[index] = self.spawn(index)
        return messages

    def close(self) -> None:
        self.stop.set()
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
        self.reports.cancel_join_thread()
