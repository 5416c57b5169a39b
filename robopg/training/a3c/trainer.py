"""The A3C trainer: the global actor and critic live here; workers (local processes or Ray actors) send
gradients asynchronously. Each ``advance`` waits for at least one worker report.

A resumed run starts its workers afresh (new episodes, generators from their seeds) and their races differ
from those of the run before, so it goes on like the run, not exactly as it; with ``take_turns`` the local
workers take turns, and the checkpoint holds whose turn it is and every worker's state: a resume is exact.
The checkpoint also holds the gradient ledger (``ledger.py``): the outcome of every gradient behind its weights.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robopg.algos.a2c import A2C
from robopg.algos.a3c import A3CConfig
from robopg.training.a3c.ledger import GradientLedger
from robopg.training.loop import Advance, Trainer

REPORT_TIMEOUT_S = 5.0


class A3CTrainer(Trainer):
    config: A3CConfig
    learner: A2C

    def __init__(self, env_id: str, config: A3CConfig, run_dir: Path, *, show_progress: bool = True) -> None:
        if config.backend == "ray":
            from robopg.training.a3c.ray_backend import import_ray

            import_ray()  # fail now, with the extra to install, not after set-up
        super().__init__(env_id, config, run_dir, show_progress=show_progress)
        self.workers: Any = None
        self.stopped = False
        self.worker_restarts = 0
        self.resumed_turns: dict[str, Any] | None = None  # with take_turns, from the checkpoint resumed
        self.resumed_pending = np.zeros((0, self.obs_dim), np.float32)  # not yet in the normalizer, from it too
        self.ledger = GradientLedger(config.workers)

    def start_workers(self) -> None:
        space = (self.obs_dim, self.action_low, self.action_high)
        if self.config.backend == "ray":
            from robopg.training.a3c.ray_backend import RayWorkers

            self.workers = RayWorkers(self.env_id, self.config, self.learner, space, self.ledger)
        else:
            from robopg.training.a3c.local import LocalWorkers

            self.workers = LocalWorkers(self.env_id, self.config, self.learner, space, self.ledger,
                                        self.resumed_turns)
        self.workers.nets.pending.load(self.resumed_pending)
        self.workers.start()

    def advance(self) -> Advance:
        if self.workers is None:
            self.start_workers()
        reports = self.workers.collect(timeout=REPORT_TIMEOUT_S)
        for message in self.workers.restart_dead():
            self.worker_restarts += 1
            print(message, file=sys.stderr, flush=True)
        episodes = [episode for report in reports for episode in report.episodes]
        stats = {**reports[-1].stats, **self.ledger.stats()} if reports else {}
        draws = [draw for report in reports for draw in report.draws]
        return Advance(sum(report.steps for report in reports), episodes, stats, draws)

    def evaluates_in_background(self) -> bool:
        """The workers learn while a snapshot is evaluated; with ``take_turns`` they wait for the trainer anyway,
        and an evaluation in the loop keeps every checkpoint where the run has it."""
        return not self.config.take_turns

    def stop_collecting(self) -> None:
        if self.workers is not None and not self.stopped:
            self.workers.close()
            self.stopped = True  # the workers are kept, for what they report (nodes, restarts)

    def randomizes(self) -> bool:
        return any(self.config.randomized_keys(self.config.worker_ranges(i)) for i in range(self.config.workers))

    def loop_state(self) -> dict[str, Any]:
        turns = self.workers.turns_state() if self.config.take_turns and self.workers is not None else None
        pending = self.workers.nets.pending_obs() if self.workers is not None else self.resumed_pending
        return {"worker_restarts": self.worker_restarts, "turns": turns, "gradients": self.ledger.state_dict(),
                "gradients_applied": self.ledger.applied, "pending_obs": torch.from_numpy(pending)}

    def load_loop_state(self, state: dict[str, Any]) -> None:
        self.worker_restarts = int(state["worker_restarts"])
        self.resumed_turns = state.get("turns")
        if "pending_obs" in state:  # absent from runs saved before the trainer batched its normalizer updates
            self.resumed_pending = state["pending_obs"].numpy()
        if "gradients" in state:  # absent from runs saved before the ledger existed
            self.ledger = GradientLedger(self.config.workers, state["gradients"])

    def close(self) -> None:
        self.stop_collecting()
        super().close()
