"""A3C on one machine: worker processes update global networks that live in shared memory, lock-free
(Hogwild!, Recht et al. 2011, as A3C does), with Adam's moment estimates shared as well.

A worker that dies is restarted with a fresh seed and training goes on.

With ``take_turns`` the workers take turns, in index order: the trainer tells one worker to go, it makes one
rollout and its global step, reports with its own state (random generator, simulators), and waits for its
next turn. Nothing then races (the order of the global steps is fixed and no worker runs while the trainer
folds observations into the normalizer or saves a checkpoint), so the run is deterministic, and with the
workers' states in the checkpoint a resumed run goes on exactly.
"""

from __future__ import annotations

from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp

from robopg.algos.a2c import A2C
from robopg.algos.a3c import A3CConfig
from robopg.training.a3c.ledger import APPLIED, GradientLedger
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
               nets: GlobalNets, reports: Connection, stop: Any, turns: Connection | None = None,
               state: dict[str, Any] | None = None) -> None:
    """A worker process: rollout, gradients, lock-free global step, report; until told to stop. With ``turns``,
    each rollout waits for the trainer's word, and the report carries the worker's state; ``state``: the
    worker's state to go on from (a resumed run's)."""
    worker = GradientWorker(env_id, config, spec, *space)
    if state is not None:
        worker.load_state_dict(state)
    try:
        while not stop.value:
            if turns is not None:
                turns.recv()
            worker.load(nets.weights())
            gradient, report = worker.gradients()
            nets.apply(gradient)
            if turns is not None:
                report.state = worker.state_dict()
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

    def __init__(self, env_id: str, config: A3CConfig, learner: A2C, space: tuple[int, np.ndarray, np.ndarray],
                 ledger: GradientLedger, turns: dict[str, Any] | None = None):
        """``ledger``: where the gradient of each report, which its worker applied, is counted; ``turns``: with
        ``take_turns``, whose turn it is and each worker's state, as :meth:`turns_state` gave them (a resumed
        run's)."""
        self.env_id, self.config, self.space, self.ledger = env_id, config, space, ledger
        self.nets = GlobalNets.of(learner)
        self.context = mp.get_context("spawn")  # fork after torch's threads start can deadlock
        self.stop = self.context.RawValue("b", 0)
        self.processes: list[Any] = []
        self.pipes: list[Connection] = []
        self.goes: list[Connection | None] = []  # with take_turns: the trainer's word to each worker
        self.restarts = [0] * config.workers
        self.turn = int(turns["turn"]) if turns else 0
        self.states: list[dict[str, Any] | None] = list(turns["states"]) if turns else [None] * config.workers
        self.going = False  # the worker whose turn it is has been told to go

    def start(self) -> None:
        share(self.nets)
        for index in range(self.config.workers):
            process, pipe, go = self.spawn(index)
            self.processes.append(process)
            self.pipes.append(pipe)
            self.goes.append(go)

    def spawn(self, index: int) -> tuple[Any, Connection, Connection | None]:
        spec = WorkerSpec.for_worker(self.config, index, self.restarts[index])
        reader, writer = self.context.Pipe(duplex=False)
        go_reader, go = self.context.Pipe(duplex=False) if self.config.take_turns else (None, None)
        state = self.states[index] if self.config.take_turns and not self.restarts[index] else None
        process = self.context.Process(
            target=run_worker, daemon=True, name=f"a3c-worker-{index}",
            args=(self.env_id, self.config, spec, self.space, self.nets, writer, self.stop, go_reader, state),
        )
        process.start()
        writer.close()  # the worker holds the only write end: its death reads as end-of-file here
        if go_reader is not None:
            go_reader.close()
        return process, reader, go

    def turns_state(self) -> dict[str, Any]:
        """With ``take_turns``: whose turn it is and each worker's state after its last rollout (``None``
        before its first), for a checkpoint; between two turns, no worker is running."""
        return {"turn": self.turn, "states": list(self.states)}

    def collect(self, timeout: float) -> list[WorkerReport]:
        """Reports that arrived (at least one unless ``timeout`` passes or a worker dies); the global step
        already happened."""
        if self.config.take_turns:
            return self.take_turn(timeout)
        reports = []
        for pipe in wait(self.pipes, timeout=timeout):
            try:
                while pipe.poll():
                    reports.append(self.receive(pipe.recv()))
            except EOFError:
                pass  # a dead worker: restart_dead replaces it
        return reports

    def receive(self, report: WorkerReport) -> WorkerReport:
        """A worker's report: its gradient was applied (by the worker, lock-free); fold in its observations."""
        self.ledger.record(report.index, self.ledger.settled(report.index), APPLIED)
        self.nets.absorb(report)
        return report

    def take_turn(self, timeout: float) -> list[WorkerReport]:
        """The report of the worker whose turn it is (told to go if it has not been), then the next one's turn;
        none if ``timeout`` passes first or the worker died."""
        index = self.turn
        if not self.going:
            go = self.goes[index]
            assert go is not None
            try:
                go.send(True)
            except (BrokenPipeError, OSError):
                return []  # a dead worker: restart_dead replaces it
            self.going = True
        pipe = self.pipes[index]
        try:
            if not pipe.poll(timeout):
                return []
            report = self.receive(pipe.recv())
        except EOFError:
            return []
        self.states[index] = report.state
        self.turn, self.going = (index + 1) % self.config.workers, False
        return [report]

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
                if self.goes[index] is not None:
                    self.goes[index].close()
                if index == self.turn:
                    self.going = False  # the new worker is told to go
                self.processes[index], self.pipes[index], self.goes[index] = self.spawn(index)
        return messages

    def close(self) -> None:
        self.stop.value = 1
        for pipe in [*self.pipes, *(go for go in self.goes if go is not None)]:
            pipe.close()  # a worker blocked in send gets a broken pipe, one waiting for its turn end-of-file
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
