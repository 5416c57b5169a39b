"""Evaluations in a process of their own, so that training never waits for one.

The trainer hands over a copy of the policy at the step it is to be evaluated (a snapshot) and goes on; the
evaluator runs the same deterministic episodes the trainer would have run itself (same task options, same
seeds) and sends the result back. A3C uses it: its workers learn while the trainer only folds in their reports,
and a trainer busy evaluating would leave their reports unread, their pipes full and the workers waiting.

The evaluator runs at a lower scheduling priority: where the workers fill every core, it takes what they leave
and its results come later (each is recorded at the step its snapshot was taken), rather than slowing training
down; where cores are spare it runs at full speed. At the end of the run the trainer waits for the evaluations
still queued, and that wait stays out of the training clock, as an evaluation in the loop does.

An evaluator that dies is started again and given the snapshots it had not finished. Snapshots still queued at
a checkpoint are saved with it and evaluated again after a resume.
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
            policy = torch.load(io.BytesIO(policy_bytes), weights_only=False)
            requests.send(evaluate(torch_policy_fn(policy), env, episodes, seed=seed))
    finally:
        env.close()


class BackgroundEvaluator:
    """Evaluates snapshots in a spawned process, in the order they were submitted."""

    def __init__(self, env_id: str, env_options: dict[str, Any], episodes: int, seed: int,
                 torch_threads: int) -> None:
        self.args = (env_id, env_options, episodes, seed, torch_threads)
        self.context = mp.get_context("spawn")
        self.pending: list[Snapshot] = []
        self.restarts = 0
        self.process: Any = None
        self.pipe: Connection | None = None

    def start(self) -> None:
        self.pipe, remote = self.context.Pipe()
        self.process = self.context.Process(target=serve, args=(*self.args, remote), daemon=True,
                                            name="evaluator")
        self.process.start()
        remote.close()  # the evaluator holds the only other end: its death reads as end-of-file here
        for snapshot in self.pending:
            self.pipe.send(snapshot.policy)

    def submit(self, snapshot: Snapshot) -> None:
        if self.process is None:
            self.start()
        assert self.pipe is not None
        self.pending.append(snapshot)
        try:
            self.pipe.send(snapshot.policy)
        except (BrokenPipeError, OSError):
            self.restart()  # sends every pending snapshot, this one included

    def finished(self, wait: bool = False) -> list[tuple[Snapshot, EvalResult]]:
        """Evaluations done so far, in submission order; with ``wait``, all of them."""
        done: list[tuple[Snapshot, EvalResult]] = []
        while self.pending:
            assert self.pipe is not None
            try:
                if not wait and not self.pipe.poll():
                    break
                result = self.pipe.recv()
            except (EOFError, OSError):
                self.restart()
                continue
            done.append((self.pending.pop(0), result))
        return done

    def restart(self) -> None:
        self.restarts += 1
        process = self.process
        self.close()
        exit_code = None if process is None else process.exitcode
        if self.restarts > RESTARTS_ALLOWED:
            raise WorkerFailure(f"the evaluator process died {self.restarts} times (last: exit code {exit_code}); "
                                "giving up")
        print(f"the evaluator process died (exit code {exit_code}); restarted with its {len(self.pending)} "
              "evaluation(s) to do", file=sys.stderr, flush=True)
        self.start()

    def close(self) -> None:
        if self.pipe is not None:
            self.pipe.close()
        if self.process is not None:
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join()
        self.process, self.pipe = None, None
