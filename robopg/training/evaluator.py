"""Evaluations in a process of their own, so that training never waits for one.

The trainer hands over a copy of the policy at the step it is to be evaluated (a snapshot) and goes on; the
evaluator runs the same deterministic episodes the trainer would have run itself (same task options, same
seeds) and sends the result back. A3C uses it: its workers learn while the trainer only folds in their reports,
and a trainer busy evaluating would leave their reports unread, their pipes full and the workers waiting.

The evaluator runs at a lower scheduling priority: where the workers fill every core, it takes what they leave
and its results come later (each is recorded at the step its snapshot was taken), rather than slowing training
down; where cores are spare it runs at full speed. At the end of the run the trainer stops its workers, waits
for the evaluations still queued and evaluates some of them itself; that wait stays out of the training clock,
as an evaluation in the loop does.

An evaluator that dies is started again and given the snapshots it had not finished. Snapshots still queued at
a checkpoint are saved with it and evaluated after a resume.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import torch
import torch.multiprocessing as mp
from torch import nn

from robopg.core.nets import torch_policy_fn
from robopg.envs import make_env
from robopg.errors import WorkerFailure
from robopg.evaluation import EvalResult, evaluate

RESTARTS_ALLOWED = 3
NICENESS = 10  # a CPU share of about a tenth against a busy worker (Linux CFS weights 1024 against 110)


@dataclass
class Snapshot:
    """An evaluation asked for: the step and training time it was taken at, the checkpoint of its policy
    (``best.pt`` if it turns out the best) and the policy itself, as bytes (a copy, not tensors in shared memory
    that the trainer goes on changing)."""

    step: int
    train_seconds: float
    checkpoint: dict[str, Any]
    policy: bytes

    @classmethod
    def of(cls, step: int, train_seconds: float, checkpoint: dict[str, Any], policy: nn.Module) -> Snapshot:
        buffer = io.BytesIO()
        torch.save(policy, buffer)
        return cls(step, train_seconds, checkpoint, buffer.getvalue())


def evaluate_snapshot(policy_bytes: bytes, env: Any, episodes: int, seed: int) -> EvalResult:
    policy = torch.load(io.BytesIO(policy_bytes), weights_only=False)
    return evaluate(torch_policy_fn(policy), env, episodes, seed=seed)


def serve(env_id: str, env_options: dict[str, Any], episodes: int, seed: int, torch_threads: int,
          requests: Connection) -> None:
    """The evaluator process: for each policy received, its evaluation, until the pipe closes."""
    os.nice(NICENESS)
    torch.set_num_threads(torch_threads)
    env = make_env(env_id, **env_options)
    try:
        while True:
            try:
                policy_bytes = requests.recv()
            except EOFError:
                return  # the trainer is done
            requests.send(evaluate_snapshot(policy_bytes, env, episodes, seed))
    finally:
        env.close()


class BackgroundEvaluator:
    """Evaluates snapshots in a spawned process, one at a time, and hands the results back in submission order.

    When the trainer waits for them (at the end of a run, its workers stopped), it evaluates snapshots still
    queued itself, from the back of the queue, while the process works from the front.
    """

    def __init__(self, env_id: str, env_options: dict[str, Any], episodes: int, seed: int,
                 torch_threads: int, queued: list[Snapshot] | None = None) -> None:
        """``queued``: snapshots to evaluate first (a resumed run's)."""
        self.args = (env_id, env_options, episodes, seed, torch_threads)
        self.context = mp.get_context("spawn")
        self.queue: dict[int, Snapshot] = dict(enumerate(queued or []))  # by ticket, in submission order
        self.tickets = len(self.queue)
        self.results: dict[int, EvalResult] = {}  # by ticket, not yet handed back
        self.sent: int | None = None  # the ticket the process is evaluating
        self.restarts = 0
        self.process: Any = None
        self.pipe: Connection | None = None
        self.env: Any = None  # the trainer's own, made when it first helps

    @property
    def pending(self) -> list[Snapshot]:
        """Snapshots submitted and not yet handed back, in order (what a checkpoint saves)."""
        return list(self.queue.values())

    def start(self) -> None:
        self.pipe, remote = self.context.Pipe()
        self.process = self.context.Process(target=serve, args=(*self.args, remote), daemon=True,
                                            name="evaluator")
        self.process.start()
        remote.close()  # the evaluator holds the only other end: its death reads as end-of-file here
        self.sent = None
        self.dispatch()

    def submit(self, snapshot: Snapshot) -> None:
        self.queue[self.tickets] = snapshot
        self.tickets += 1
        self.dispatch()

    def dispatch(self) -> None:
        """Give the process the first snapshot not yet evaluated, if it is idle."""
        if self.sent is not None or self.pipe is None:
            return
        ticket = next((t for t in self.queue if t not in self.results), None)
        if ticket is None:
            return
        try:
            self.pipe.send(self.queue[ticket].policy)
        except (BrokenPipeError, OSError):
            self.restart()  # which dispatches again
            return
        self.sent = ticket

    def receive(self, block: bool) -> None:
        """Take the process's result if it has one (with ``block``, wait for it), and give it the next snapshot."""
        while self.sent is not None:
            assert self.pipe is not None
            try:
                if not block and not self.pipe.poll():
                    return
                result = self.pipe.recv()
            except (EOFError, OSError):
                self.restart()
                continue
            self.results[self.sent] = result
            self.sent = None
            self.dispatch()
            return

    def help(self) -> bool:
        """Evaluate here the last snapshot that the process is not evaluating; whether there was one."""
        ticket = next((t for t in reversed(self.queue) if t not in self.results and t != self.sent), None)
        if ticket is None:
            return False
        env_id, env_options, episodes, seed, _ = self.args
        if self.env is None:
            self.env = make_env(env_id, **env_options)
        self.results[ticket] = evaluate_snapshot(self.queue[ticket].policy, self.env, episodes, seed)
        return True

    def finished(self, wait: bool = False) -> list[tuple[Snapshot, EvalResult]]:
        """Evaluations done so far, in submission order; with ``wait``, all of them."""
        self.receive(block=False)
        while wait and len(self.results) < len(self.queue):
            if not self.help():
                self.receive(block=True)
            else:
                self.receive(block=False)
        done = []
        for ticket in list(self.queue):
            if ticket not in self.results:
                break
            done.append((self.queue.pop(ticket), self.results.pop(ticket)))
        return done

    def restart(self) -> None:
        self.restarts += 1
        process = self.process
        self.close_process()
        exit_code = None if process is None else process.exitcode
        if self.restarts > RESTARTS_ALLOWED:
            raise WorkerFailure(f"the evaluator process died {self.restarts} times (last: exit code {exit_code}); "
                                "giving up")
        print(f"the evaluator process died (exit code {exit_code}); restarted with its "
              f"{len(self.queue) - len(self.results)} evaluation(s) to do", file=sys.stderr, flush=True)
        self.start()

    def close_process(self) -> None:
        if self.pipe is not None:
            self.pipe.close()
        if self.process is not None:
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join()
        self.process, self.pipe, self.sent = None, None, None

    def close(self) -> None:
        self.close_process()
        if self.env is not None:
            self.env.close()
            self.env = None
