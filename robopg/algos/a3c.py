"""A3C (Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning"): ``workers`` actor-learners,
each with its own simulators, seed, initial-state range and entropy β, sending A2C gradients asynchronously to a
global actor and critic. The learner is A2C's; the workers and their backends are in ``robopg/training/a3c/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robopg.algos.a2c import A2CConfig
from robopg.errors import ConfigError
from robopg.settings import require, setting
from sim.randomization import envelope, parse_randomize

Backend = Literal["local", "ray"]


@dataclass(frozen=True, kw_only=True)
class A3CConfig(A2CConfig):
    """A2C's settings, one simulator per worker by default, and the workers' own."""

    num_envs: int = setting(1, "simulators per worker", ge=1, most=4096)
    workers: int = setting(2, "asynchronous actor-learners", ge=1, most=4096)
    backend: Backend = setting("local", "local (processes on this machine) or ray")
    ray_address: str = setting("", "address of a running Ray cluster (empty: start a local one)")
    max_staleness: int = setting(64, "ray: a gradient computed from weights more than this many global updates "
                                     "old is dropped (up to 2 x workers x gradients_per_request behind is usual)",
                                 ge=0, le=1_000_000)
    gradients_per_request: int = setting(1, "ray: gradients a worker computes per request, of consecutive rollouts "
                                            "from the weights the request carries; the driver applies each (one "
                                            "Ray round trip for all of them: faster, but staler)", ge=1, most=64)
    worker_init_ranges: tuple[float, ...] = setting((), "each worker's initial-state range (empty: the task's)",
                                                    ge=0, le=100)
    worker_randomize: tuple[str, ...] = setting((), "each worker's own domain randomization, replacing the run's "
                                                    "randomize for that worker: KEY=LOW:HIGH items joined by commas, "
                                                    "'' for the run's (empty: the run's for every worker)")
    worker_entropy_coefs: tuple[float, ...] = setting((), "each worker's entropy β (empty: entropy_coef)", ge=0, le=10)
    take_turns: bool = setting(False, "local workers take turns, one rollout each in index order: deterministic, "
                                      "and a resume goes on exactly; no parallel speed-up")

    def check(self) -> None:
        super().check()
        # Local workers step the global optimizers in their own processes, each with its own learning rate.
        require(not self.anneal_lr, "anneal_lr is not available for a3c (its workers keep their own learning rates)")
        require(not self.take_turns or self.backend == "local", "take_turns is available with the local backend only")
        for name in ("worker_init_ranges", "worker_randomize", "worker_entropy_coefs"):
            values = getattr(self, name)
            require(len(values) in (0, self.workers),
                    f"{name} must be empty or give one value per worker ({self.workers}), got {len(values)}")
        for index in range(len(self.worker_randomize)):
            try:
                parse_randomize(self.worker_ranges(index))
            except ValueError as exc:
                raise ConfigError(f"worker_randomize of worker {index}: {exc}") from None

    def worker_ranges(self, index: int) -> tuple[str, ...]:
        """Worker ``index``'s randomization items: its own if ``worker_randomize`` gives them, else the run's."""
        own = self.worker_randomize[index].strip() if self.worker_randomize else ""
        return tuple(item.strip() for item in own.split(",")) if own else self.randomize

    def trained_ranges(self) -> tuple[str, ...]:
        return envelope([self.worker_ranges(i) for i in range(self.workers)]) if self.worker_randomize else \
            self.randomize
