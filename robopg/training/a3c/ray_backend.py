"""A3C across machines on Ray: each worker is a Ray actor with its own simulators; the driver holds the global
networks and applies each worker's gradients as they arrive (asynchronous, parameter-server style).

- Weights and gradients cross as one flat array each (``GlobalNets.weights``, ``GlobalNets.gradient``): Ray
  serializes, and the driver copies, one buffer per message rather than one per tensor.
- Weights below Ray's inline size (``INLINE_BYTES``) travel inside each request, as Ray sends any small argument:
  no object-store round trip, which cost more than the rest of the call. Larger weights go through Ray's object
  store: one ``ray.put`` per weights version, whose reference every request made at that version shares (a node
  fetches it once for all the workers it hosts).
- Each request asks for ``gradients_per_request`` gradients, of consecutive rollouts from the weights it
  carries: one Ray round trip, one weights fetch and one answer for all of them, which the driver then applies
  one by one (as many optimizer steps as gradients, the same work as one per request, a little staler).
- Each worker has ``PIPELINE_DEPTH`` requests in flight: while the driver applies one request's gradients, the
  worker is already computing the next from the weights it was sent, so it never waits for the round trip.
- A gradient is ``lag`` global updates behind: the updates applied since the weights it was computed from.
  One further behind than ``max_staleness`` is dropped, not applied; the ledger counts both and reports the
  lag of the applied ones.
- A worker that dies (its process, or its node) loses the requests it had in flight; it is started again,
  from the current weights, wherever the cluster has a CPU free.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robopg.algos.a2c import A2C
from robopg.algos.a3c import A3CConfig
from robopg.errors import BackendError
from robopg.training.a3c.ledger import APPLIED, LOST, STALE, GradientLedger
from robopg.training.a3c.worker import GlobalNets, GradientWorker, WorkerReport, WorkerSpec, check_restarts

PIPELINE_DEPTH = 2  # requests in flight per worker: one being computed, the next queued behind it
WORKER_CPUS = 1  # what each worker actor asks the cluster for
# Ray runs its workers at niceness 15; here they run at the trainer's own priority, as the local backend's do, so
# that the background evaluator (niceness 10, robopg.training.evaluator) yields to them rather than they to it.
WORKER_NICENESS = 0
INLINE_BYTES = 100 * 1024  # Ray's max_direct_call_object_size: an argument below it is sent inside the call


def import_ray():
    try:
        import ray
    except ImportError:
        raise BackendError("--backend ray needs Ray, an optional extra: pip install 'robopg[ray]'") from None
    return ray


@dataclass
class Gradient:
    """A worker actor's answer to one request."""

    number: int  # the worker's numbering of its gradients, which the driver gave with the request
    produced: int  # gradients this actor has computed, this one included
    node: str  # the Ray node it ran on
    # Tensors cross Ray as numpy arrays: Ray serializes those out of band, without a copy, where a torch tensor
    # goes through torch.save.
    gradient: np.ndarray
    report: WorkerReport


def staleness_warning(config: A3CConfig) -> str | None:
    """What a ``max_staleness`` below the lag the pipeline gives costs (0, deliberately strict, is not warned of)."""
    per_request, workers, bound = config.gradients_per_request, config.workers, config.max_staleness
    lag = PIPELINE_DEPTH * workers * per_request - 1
    if lag > bound > 0:
        return (f"max_staleness {bound} is below the lag of up to {lag} updates that {workers} workers with "
                f"{PIPELINE_DEPTH} requests of {per_request} gradients in flight give: gradients will be dropped; "
                f"raise max_staleness or lower gradients_per_request")
    return None


class RemoteWorker:
    """The body of a Ray actor: a ``GradientWorker`` that takes weights and returns gradients."""

    def __init__(self, *args: Any) -> None:
        import ray

        self.worker = GradientWorker(*args)
        self.node = ray.get_runtime_context().get_node_id()
        self.produced = 0

    def gradients_from(self, weights: np.ndarray, number: int, count: int) -> list[Gradient]:
        """``count`` gradients, numbered from ``number``, of consecutive rollouts from ``weights``."""
        self.worker.load(weights)
        answer = []
        for offset in range(count):
            gradient, report = self.worker.gradients()
            self.produced += 1
            answer.append(Gradient(number + offset, self.produced, self.node, gradient.numpy(), report))
        return answer


@dataclass
class Request:
    number: int  # of its first gradient
    count: int  # gradients asked for
    ref: Any
    version: int  # the global update count of the weights it carries

    def numbers(self) -> range:
        return range(self.number, self.number + self.count)


@dataclass
class Slot:
    """One worker: its current actor and the requests in flight to it."""

    actor: Any
    first: int  # the number of this actor's first gradient
    in_flight: deque[Request] = field(default_factory=deque)
    nodes: list[str] = field(default_factory=list)  # the nodes its actors ran on, in order


class RayWorkers:
    def __init__(self, env_id: str, config: A3CConfig, learner: A2C, space: tuple[int, np.ndarray, np.ndarray],
                 ledger: GradientLedger):
        self.ray = import_ray()
        self.env_id, self.config, self.space, self.ledger = env_id, config, space, ledger
        self.nets = GlobalNets.of(learner)
        self.started_ray = False
        self.actor_class: Any = None
        self.slots: list[Slot] = []
        self.restarts = [0] * config.workers
        self.messages: list[str] = []
        self.weights: tuple[int, Any] | None = None  # (version, arrays or object ref) of the last weights sent
        self.inline = self.nets.weights().numpy().nbytes < INLINE_BYTES

    @property
    def version(self) -> int:
        """The global networks' update count: every gradient applied, in this run and the runs it resumes."""
        return self.ledger.applied

    def start(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            if self.config.ray_address:
                ray.init(address=self.config.ray_address, log_to_driver=False)
            else:  # a small local instance: one CPU per worker, its workers at the driver's priority
                ray.init(num_cpus=self.config.workers * WORKER_CPUS, include_dashboard=False, log_to_driver=False,
                         _system_config={"worker_niceness": WORKER_NICENESS})
            self.started_ray = True
        # SPREAD: the workers go to different nodes where there are CPUs on several.
        self.actor_class = ray.remote(num_cpus=WORKER_CPUS, max_restarts=0, scheduling_strategy="SPREAD")(
            RemoteWorker)
        self.slots = [self.new_slot(index) for index in range(self.config.workers)]
        self.top_up()
        warning = staleness_warning(self.config)
        if warning:
            print(f"warning: {warning}", file=sys.stderr, flush=True)

    def new_slot(self, index: int) -> Slot:
        spec = WorkerSpec.for_worker(self.config, index, self.restarts[index])
        actor = self.actor_class.remote(self.env_id, self.config, spec, *self.space)
        nodes = self.slots[index].nodes if index < len(self.slots) else []
        return Slot(actor, self.ledger.settled(index), nodes=nodes)

    def weights_arg(self) -> Any:
        """The current weights for a request, made once per version: the array itself when small enough to go
        inside the call (Ray serializes it as the call is made), else its object-store reference."""
        if self.weights is None or self.weights[0] != self.version:
            weights = self.nets.weights().numpy()
            self.weights = (self.version, weights if self.inline else self.ray.put(weights))
        return self.weights[1]

    def top_up(self) -> None:
        """Give every worker requests up to ``PIPELINE_DEPTH``, with the current weights."""
        count = self.config.gradients_per_request
        for index, slot in enumerate(self.slots):
            while len(slot.in_flight) < PIPELINE_DEPTH:
                # the settled ones, then those in flight
                number = self.ledger.settled(index) + sum(request.count for request in slot.in_flight)
                ref = slot.actor.gradients_from.remote(self.weights_arg(), number, count)
                slot.in_flight.append(Request(number, count, ref, self.version))

    def collect(self, timeout: float) -> list[WorkerReport]:
        """Apply (or drop as stale) the gradients that arrived, at least one unless ``timeout`` passes first or a
        worker dies; each worker's in the order it was asked for them."""
        heads = {slot.in_flight[0].ref: index for index, slot in enumerate(self.slots) if slot.in_flight}
        ready, _ = self.ray.wait(list(heads), num_returns=1, timeout=timeout)
        if ready:  # take every other worker's that is ready too, and send all of them one weights version
            ready, _ = self.ray.wait(list(heads), num_returns=len(heads), timeout=0)
        reports = []
        for ref in ready:
            index = heads[ref]
            request = self.slots[index].in_flight.popleft()
            try:
                gradients = self.ray.get(ref)
            except self.ray.exceptions.RayError as exc:
                self.replace(index, request, exc)
                continue
            if [gradient.number for gradient in gradients] != list(request.numbers()):
                raise BackendError(f"A3C worker {index} answered the request for gradients {list(request.numbers())} "
                                   f"with {[gradient.number for gradient in gradients]}")
            for gradient in gradients:
                self.settle(index, request, gradient)
                reports.append(gradient.report)
        self.top_up()
        return reports

    def settle(self, index: int, request: Request, gradient: Gradient) -> None:
        slot = self.slots[index]
        if gradient.number != slot.first + gradient.produced - 1:
            raise BackendError(f"A3C worker {index} sent gradient {gradient.number} as its {gradient.produced}th: "
                               f"the gradients are out of step")
        if not slot.nodes or slot.nodes[-1] != gradient.node:
            slot.nodes.append(gradient.node)
        lag = self.version - request.version
        if lag > self.config.max_staleness:
            self.ledger.record(index, gradient.number, STALE)
        else:
            self.nets.apply(torch.tensor(gradient.gradient))  # a copy: what Ray gives is read-only
            self.ledger.record(index, gradient.number, APPLIED, lag)
        self.nets.absorb(gradient.report)  # a stale gradient's observations still count

    def replace(self, index: int, failed: Request, exc: Exception) -> None:
        """A worker's request failed: its actor is gone (or broken), and with it every request it had; start
        another from the current weights."""
        slot = self.slots[index]
        for request in [failed, *slot.in_flight]:
            for number in request.numbers():
                self.ledger.record(index, number, LOST)
        slot.in_flight.clear()
        self.ray.kill(slot.actor)
        self.restarts[index] += 1
        why = type(exc).__name__
        check_restarts(index, self.restarts[index], why)
        self.messages.append(f"A3C worker {index} failed ({why}, on node {slot.nodes[-1][:8] if slot.nodes else '?'}); "
                             f"restarted from the current weights ({self.restarts[index]} restart(s) so far)")
        self.slots[index] = self.new_slot(index)

    def nodes(self) -> list[list[str]]:
        """Each worker's nodes, in the order its actors ran on them."""
        return [list(slot.nodes) for slot in self.slots]

    def restart_dead(self) -> list[str]:
        messages, self.messages = self.messages, []
        return messages

    def close(self) -> None:
        for slot in self.slots:
            self.ray.kill(slot.actor)
        if self.started_ray:
            self.ray.shutdown()
