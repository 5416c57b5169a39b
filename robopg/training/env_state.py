"""A simulator's state in the middle of an episode, saved and restored exactly: what lets a run resumed from a
checkpoint taken between two rollouts go on as if it had never stopped.

A simulator's state is that of each layer of its wrapper chain: the plain attributes of the layer (numbers,
strings, numpy arrays and scalars, its random generator: a time limit's step count, a classic-control task's
state vector) and what a layer keeps outside Python, which it provides itself through ``external_state()`` and
``restore_external_state(state)`` (the PyBullet tasks save their physics world; a history wrapper its inputs).
A layer with other attributes that does not provide them (a MuJoCo or Box2D world) cannot be captured:
:func:`env_state` returns ``None`` for it, and the caller starts fresh episodes instead. Gymnasium's own wrappers
keep only their construction arguments and the checker's last data in containers, which are left out.

States hold tensors and plain Python values only, so a checkpoint holding them loads with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec

PLAIN = (bool, int, float, str, type(None))
MADE_ONCE = (gym.Space, EnvSpec)  # made by the constructor, never changed by an episode
UNSUPPORTED = object()

LayerState = dict[str, Any]


def layers(env: gym.Env) -> Iterator[gym.Env]:
    """The wrappers of ``env`` from the outermost in, then the environment itself."""
    yield env
    while isinstance(env, gym.Wrapper):
        env = env.env
        yield env


def encode(value: Any) -> Any:
    """A plain value as it is, a numpy array, scalar or generator as a tagged tensor or state; ``UNSUPPORTED``
    for anything else."""
    if isinstance(value, np.generic):  # before the plain values: numpy's float64 is a float
        return {"scalar": torch.from_numpy(np.asarray(value).copy())} if value.dtype.kind in "biuf" else UNSUPPORTED
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"ndarray": torch.from_numpy(value.copy())}
    if isinstance(value, np.random.Generator):
        return {"generator": value.bit_generator.state}
    return UNSUPPORTED


def decode(value: Any) -> Any:
    """The value :func:`encode` was given."""
    if not isinstance(value, dict):
        return value
    if "ndarray" in value:
        return value["ndarray"].numpy().copy()
    if "scalar" in value:
        return value["scalar"].numpy()[()]
    state = value["generator"]
    generator = np.random.Generator(getattr(np.random, state["bit_generator"])())
    generator.bit_generator.state = state
    return generator


def layer_state(layer: gym.Env) -> LayerState | None:
    """One layer's attributes and external state; ``None`` if it holds state this module cannot capture."""
    vouched = hasattr(layer, "external_state") or type(layer).__module__.startswith("gymnasium.wrappers")
    attributes = {}
    for name, value in vars(layer).items():
        if name == "env" or isinstance(value, MADE_ONCE):
            continue
        encoded = encode(value)
        if encoded is not UNSUPPORTED:
            attributes[name] = encoded
        elif not vouched:
            return None
    external = layer.external_state() if hasattr(layer, "external_state") else None
    return {"type": type(layer).__qualname__, "attributes": attributes, "external": external}


def env_state(env: gym.Env) -> list[LayerState] | None:
    """The state of ``env`` and its wrappers, to continue its episode exactly (also in another process);
    ``None`` if some layer's state cannot be captured."""
    states = []
    for layer in layers(env):
        state = layer_state(layer)
        if state is None:
            return None
        states.append(state)
    return states


def load_env_state(env: gym.Env, states: list[LayerState]) -> None:
    """Put ``env`` (made with the same id and options as the one saved) in the state :func:`env_state` saved."""
    chain = list(layers(env))
    if [type(layer).__qualname__ for layer in chain] != [state["type"] for state in states]:
        raise ValueError("the saved simulator state is of another wrapper chain: "
                         f"{[s['type'] for s in states]}, not {[type(layer).__qualname__ for layer in chain]}")
    for layer, state in zip(chain, states, strict=True):
        for name, value in state["attributes"].items():
            setattr(layer, name, decode(value))
        if state["external"] is not None:
            layer.restore_external_state(state["external"])
