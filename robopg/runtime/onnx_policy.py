"""Run an exported policy with onnxruntime alone: no torch, no pybullet (what a robot's computer needs).

``OnnxPolicy`` loads a file written by ``robopg export``, reads what a robot checks before it moves
from the model's metadata, and maps raw observations to actions in actuator units.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from robopg.core.history import history_input_dim
from robopg.errors import PolicyFileError

META_PREFIX = "robopg."


@dataclass(frozen=True)
class PolicyMetadata:
    """What ``robopg export`` records in the model's ``metadata_props`` (docs/export.md)."""

    obs_dim: int
    action_dim: int
    obs_names: tuple[str, ...]
    action_names: tuple[str, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    control_hz: float | None
    env_id: str
    algo: str
    robopg_version: str
    checkpoint_sha256: str
    opset: int
    randomize: tuple[str, ...] = ()  # the dynamics training sampled (train-sim --randomize); () for the nominal model
    history: int = 0  # steps of history in the input (robopg.core.history); 0: the observation alone

    @property
    def input_dim(self) -> int:
        """The width of the graph's input: one observation, or the history's layout."""
        return history_input_dim(self.obs_dim, self.action_dim, self.history)

    def to_props(self) -> dict[str, str]:
        return {META_PREFIX + key: json.dumps(value) for key, value in self.__dict__.items()}

    @staticmethod
    def from_props(props: dict[str, str], source: str) -> PolicyMetadata:
        fields = PolicyMetadata.__dataclass_fields__
        required = [key for key, f in fields.items() if f.default is MISSING]
        optional = [key for key in fields if key not in required and META_PREFIX + key in props]
        try:
            values = {key: json.loads(props[META_PREFIX + key]) for key in [*required, *optional]}
        except KeyError as missing:
            raise PolicyFileError(f"{source} is not a robopg policy (metadata {missing.args[0]} missing)") from None
        except json.JSONDecodeError:
            raise PolicyFileError(f"{source} has unreadable robopg metadata") from None
        return PolicyMetadata(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def session_options(threads: int = 1, spinning: bool = False) -> ort.SessionOptions:
    """Tuned for batch-1 latency on a small MLP: by default one thread, no inter-op pool, no spinning, basic
    graph optimization.

    One thread without spinning leaves the other cores to the rest of the robot; ``threads=2, spinning=True``
    (onnxruntime's default threading on 2 cores) is about 1.7× faster at batch 1 and keeps a second core
    spinning between calls. The basic level (constant folding, redundant nodes) ran the [256, 256] actors
    12-15 % faster than the full level, whose extra fusions and layouts do not pay at batch 1.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return options


class OnnxPolicy:
    """An exported policy under onnxruntime: ``policy(obs)`` for one input or a batch; the input is the observation,
    or with a history (``metadata.history``) the layout of :class:`robopg.core.history.History`.

    ``threads`` and ``spinning`` as in :func:`session_options` (docs/export.md).
    """

    def __init__(self, path: Path | str, *, threads: int = 1, spinning: bool = False) -> None:
        path = Path(path)
        if not path.is_file():
            raise PolicyFileError(f"no policy file at {path}")
        options = session_options(threads, spinning)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise PolicyFileError(f"{path} is not a loadable ONNX model ({type(exc).__name__})") from None
        self.metadata = PolicyMetadata.from_props(self.session.get_modelmeta().custom_metadata_map, str(path))
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Raw input(s) -> action(s) in actuator units; a single vector gives a single action."""
        obs = np.asarray(obs, dtype=np.float32)
        (action,) = self.session.run(None, {self.input_name: obs[None] if obs.ndim == 1 else obs})
        return action[0] if obs.ndim == 1 else action


def check_fits(policy_obs_dim: int, policy_low: np.ndarray, policy_high: np.ndarray, obs_dim: int,
               action_low: np.ndarray, action_high: np.ndarray, what: str) -> None:
    """Sizes and action limits of a policy against those of the env or robot it is about to drive."""
    low, high = np.asarray(action_low, dtype=np.float64), np.asarray(action_high, dtype=np.float64)
    if (obs_dim, len(low)) != (policy_obs_dim, len(policy_low)):
        raise PolicyFileError(f"the policy takes {policy_obs_dim} observations and gives {len(policy_low)} actions; "
                              f"{what} has {obs_dim} observations and {len(low)} actions")
    if not (np.allclose(low, policy_low) and np.allclose(high, policy_high)):
        limits = f"{np.asarray(policy_low).tolist()}..{np.asarray(policy_high).tolist()}"
        env_limits = f"{low.tolist()}..{high.tolist()}"
        raise PolicyFileError(f"the policy's action limits {limits} differ from {what}'s {env_limits}")
