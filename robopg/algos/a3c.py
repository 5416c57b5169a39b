"""A3C (Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning"): ``workers`` actor-learners,
each with its own simulators, seed, initial-state range and entropy β, sending A2C gradients asynchronously to a
global actor and critic. The learner is A2C's; the workers and their backends are in ``robopg/training/a3c/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robopg.algos.a2c import A2CConfig
from robopg.settings import require, setting

Backend = Literal["local", "ray"]


@dataclass(frozen=True, kw_only=True)
class A3CConfig(A2CConfig):
    """A2C's settings, one simulator per worker by default, and the workers' own."""

    num_envs: int = setting(1, "simulators per worker", ge=1, most=4096)
    workers: int = setting(2, "asynchronous actor-learners", ge=1, most=4096)
    backend: Backend = setting("local", "local (processes on this machine) or ray")
    ray_address: str = setting("", "address of a running Ray cluster (empty: start a local one)")
    max_staleness: int = setting(64, "ray: a gradient computed from weights more than this many global updates "
                                     "old is dropped (about 2 x workers behind is usual)", ge=0, le=1_000_000)
    worker_init_ranges: tuple[float, ...] = setting((), "each worker's initial-state range (empty: the task's)",
                                                    ge=0, le=100)
    worker_entropy_coefs: tuple[float, ...] = setting((), "each worker's entropy β (empty: entropy_coef)", ge=0, le=10)
    take_turns: bool = setting(False, "local workers take turns, one rollout each in index order: deterministic, "
                                      "and a resume goes on exactly; no parallel speed-up")

    def check(self) -> None:
        super().check()
        # Local workers step the global optimizers in their own processes, each with its own learning rate.
        require(not self.anneal_lr, "anneal_lr is not available for a3c (its workers keep their own learning rates)")
        require(not self.take_turns or self.backend == "local", "take_turns is available with the local backend only")
        for name in ("worker_init_ranges", "worker_entropy_coefs"):
            values = getattr(self, name)
            require(len(values) in (0, self.workers),
                    f"{name} must be empty or give one value per worker ({self.workers}), got {len(values)}")
