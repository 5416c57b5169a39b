"""A3C on one machine: worker processes update global networks that live in shared memory, lock-free
(Hogwild!, Recht et al. 2011, as A3C does), with Adam's moment estimates shared as well.

A worker that dies is restarted with a fresh seed and training goes on.
"""

from __future__ import annotations

from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp

from robopg.algos.a2c import A2C
from robopg.algos.a3c import A3CConfig
from robopg.training.a3c.worker import GlobalNets, GradientWorker, WorkerReport, WorkerSpec, check_restarts


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
               nets: GlobalNets, reports: Connection, stop: Any) -> None:
    """A worker process: rollout, gradients, lock-free global step, report; until told to stop."""
    worker = GradientWorker(env_id, config, spec, *space)
    try:
        while not stop.value:
            worker.load(nets.states())
            actor, critic, report = worker.gradients()
            nets.apply(actor, critic)
            reports.send(report)
    except (BrokenPipeError, EOFError):
        pass  # the trainer is gone
    finally:
        worker.close()


class LocalWorkers:
    """Worker processes on this machine.

    Nothing a worker can die holding is shared: each worker reports through its own pipe (a SIGKILL in the
    middle of a shared queue's put would leave the queue's lock taken and every other worker blocked), the
    stop flag is a lock-free shared byte, and the trainer alone writes the normalizer statistics.
    """

    def __init__(self, env_id: str, config: A3CConfig, learner: A2C, space: tuple[int, np.ndarray, np.ndarray]):
        self.env_id, self.config, self.space = env_id, config, space
        self.nets = GlobalNets.of(learner)
        self.context = mp.get_context("spawn")  # fork after torch's threads start can deadlock
        self.stop = self.context.RawValue("b", 0)
        self.processes: list[Any] = []
        self.pipes: list[Connection] = []
        self.restarts = [0] * config.workers

    def start(self) -> None:
        share(self.nets)
        for index in range(self.config.workers):
            process, pipe = self.spawn(index)
            self.processes.append(process)
            self.pipes.append(pipe)

    def spawn(self, index: int) -> tuple[Any, Connection]:
        spec = WorkerSpec.for_worker(self.config, index, self.restarts[index])
        reader, writer = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=run_worker, daemon=True, name=f"a3c-worker-{index}",
            args=(self.env_id, self.config, spec, self.space, self.nets, writer, self.stop),
        )
        process.start()
        writer.close()  # the worker holds the only write end: its death reads as end-of-file here
        return process, reader

    def collect(self, timeout: float) -> list[WorkerReport]:
        """Reports that arrived (at least one unless ``timeout`` passes or a worker dies); the global step
        already happened."""
        reports = []
        for pipe in wait(self.pipes, timeout=timeout):
            try:
                while pipe.poll():
                    report = pipe.recv()
                    self.nets.absorb(report)
                    reports.append(report)
            except EOFError:
                pass  # a dead worker: restart_dead replaces it
        return reports

    def restart_dead(self) -> list[str]:
        """Restart workers that died; say which and how."""
        messages = []
        for index, process in enumerate(self.processes):
            if not process.is_alive() and not self.stop.value:
                process.join()
                self.restarts[index] += 1
                check_restarts(index, self.restarts[index], f"exit code {process.exitcode}")
                messages.append(f"A3C worker {index} died (exit code {process.exitcode}); restarted "
                                f"({self.restarts[index]} restart(s) so far)")
                self.pipes[index].close()
                self.processes[index], self.pipes[index] = self.spawn(index)
        return messages

    def close(self) -> None:
        self.stop.value = 1
        for pipe in self.pipes:
            pipe.close()  # a worker blocked in send gets a broken pipe and leaves
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
