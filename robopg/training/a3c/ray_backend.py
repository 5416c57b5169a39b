"""A3C across machines on Ray: each worker is a Ray actor with its own simulators; the driver holds the
global networks and applies each worker's gradients as soon as they arrive, then sends that worker the
new weights (asynchronous, parameter-server style). A worker lost with its node is started again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robopg.algos.a2c import A2C
from robopg.algos.a3c import A3CConfig
from robopg.errors import BackendError
from robopg.training.a3c.worker import GlobalNets, GradientWorker, WorkerReport, WorkerSpec, check_restarts


def import_ray():
    try:
        import ray
    except ImportError:
        raise BackendError("--backend ray needs Ray, an optional extra: pip install 'robopg[ray]'") from None
    return ray


class RemoteWorker:
    """The body of a Ray actor: a ``GradientWorker`` that takes weights and returns gradients."""

    def __init__(self, *args: Any) -> None:
        self.worker = GradientWorker(*args)

    def gradients_from(self, states: dict) -> tuple[list, list, WorkerReport]:
        self.worker.load(states)
        return self.worker.gradients()


class RayWorkers:
    def __init__(self, env_id: str, config: A3CConfig, learner: A2C, space: tuple[int, np.ndarray, np.ndarray]):
        self.ray = import_ray()
        self.env_id, self.config, self.space = env_id, config, space
        self.nets = GlobalNets.of(learner)
        self.started_ray = False
        self.actor_class = None
        self.actors: dict[int, Any] = {}
        self.pending: dict[Any, int] = {}
        self.restarts = [0] * config.workers
        self.messages: list[str] = []

    def start(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            if self.config.ray_address:
                ray.init(address=self.config.ray_address, log_to_driver=False)
            else:  # a small local instance: one CPU per worker
                ray.init(num_cpus=self.config.workers, include_dashboard=False, log_to_driver=False)
            self.started_ray = True
        self.actor_class = ray.remote(num_cpus=1, max_restarts=0)(RemoteWorker)
        for index in range(self.config.workers):
            self.launch(index)

    def launch(self, index: int) -> None:
        spec = WorkerSpec.for_worker(self.config, index, self.restarts[index])
        self.actors[index] = self.actor_class.remote(self.env_id, self.config, spec, *self.space)
        self.submit(index)

    def submit(self, index: int) -> None:
        self.pending[self.actors[index].gradients_from.remote(self.nets.states())] = index

    def collect(self, timeout: float) -> list[WorkerReport]:
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        reports = []
        for ref in ready:
            index = self.pending.pop(ref)
            try:
                actor, critic, report = self.ray.get(ref)
            except self.ray.exceptions.RayError as exc:
                self.restarts[index] += 1
                check_restarts(index, self.restarts[index], type(exc).__name__)
                self.messages.append(f"A3C worker {index} failed ({type(exc).__name__}); restarted "
                                     f"({self.restarts[index]} restart(s) so far)")
                self.launch(index)
                continue
            self.nets.apply(actor, critic)
            self.nets.absorb(report)
            self.submit(index)
            reports.append(report)
        return reports

    def restart_dead(self) -> list[str]:
        messages, self.messages = self.messages, []
        return messages

    def close(self) -> None:
        for actor in self.actors.values():
            self.ray.kill(actor)
        if self.started_ray:
            self.ray.shutdown()
