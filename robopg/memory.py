"""What a config's buffers and networks will take in memory, checked against what this machine has free.

A size field's ``most`` caps it whatever the machine; these checks refuse, with one line, a combination that
fits the caps but not the memory (a replay of 10⁹ transitions, a dozen layers 16,384 wide) before anything is
allocated, instead of a ``MemoryError`` or the kernel's OOM killer hours into a run.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import psutil

from robopg.settings import require

FLOAT_BYTES = 4  # float32 everywhere: replay memories, weights, optimizer moments
# Copies of every network parameter a learner holds: the weights, their gradients and Adam's two moments.
COPIES_PER_PARAMETER = 4


def available_bytes() -> int:
    """Memory the system can give this process now without swapping."""
    return int(psutil.virtual_memory().available)


def network_bytes(widths: Sequence[int]) -> int:
    """At least what a network with these hidden widths takes while it trains (its first and last layers,
    which depend on the task's dimensions, are left out, so this holds for every task)."""
    weights = sum(a * b for a, b in itertools.pairwise(widths)) + sum(widths)  # the products and the biases
    return weights * FLOAT_BYTES * COPIES_PER_PARAMETER


def transitions_bytes(capacity: int, obs_dim: int = 1, act_dim: int = 1) -> int:
    """A replay memory of ``capacity`` transitions (observation, action, reward, next observation, termination
    flag as floats; an episode-end byte)."""
    return capacity * ((2 * obs_dim + act_dim + 2) * FLOAT_BYTES + 1)


def require_memory(what: str, nbytes: int) -> None:
    """Refuse, naming ``what``, anything that would need more memory than is available."""
    available = available_bytes()
    require(nbytes <= available, f"{what} would take {_gigabytes(nbytes)} of memory, more than the "
                                 f"{_gigabytes(available)} available")


def _gigabytes(nbytes: float) -> str:
    return f"{nbytes / 1e9:.3g} GB"
