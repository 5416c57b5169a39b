"""Export a trained policy to ONNX, verified against torch before the file appears.

The exported graph is the learner's ``policy()``: observation normalization, the deterministic actor
(or a Gaussian policy's mean) and the scaling to actuator units, so it takes raw observations and
returns actions within the action space's bounds. The batch dimension is dynamic. A policy with a history
(``history = k``) takes one stacked input, the layout of ``robopg.core.history`` (docs/design.md says why).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from robopg import checkpoint
from robopg.atomic import atomic_path
from robopg.core.nets import RunningNormalizer
from robopg.envs import make_env, spec_of
from robopg.errors import EnvError, ExportError
from robopg.runtime.onnx_policy import OnnxPolicy, PolicyMetadata
from robopg.version import __version__

OPSET = 18
# Largest difference allowed between onnxruntime and torch, in normalized action units (the error divided by
# half the actuator range). The reference is torch in float64, the exact function of the weights: torch's
# own float32 result moves by up to ~1e-5 of the range with its thread count (summation order), which would
# otherwise be charged to the export. onnxruntime's float32 error against it is 2e-6 to 6e-6 at [256, 256].
TOLERANCE = 1e-5
# A policy whose own float32 arithmetic is less exact than that (large weights after fine-tuning, observations
# far out) is held to this multiple of torch's float32 error on the same observations instead: onnxruntime's
# kernels sum in another order and were measured at 4.6 times torch's error (1.06e-5 against 2.3e-6, a [256, 256]
# swing-up actor trained on a twin), while a conversion error is orders of magnitude larger than either.
FLOAT32_MARGIN = 10.0


@dataclass(frozen=True)
class ExportReport:
    path: Path
    metadata: PolicyMetadata
    max_abs_error: float  # actuator units
    max_normalized_error: float  # divided by half the actuator range
    checked_observations: int


def metadata_for(restored: checkpoint.Restored) -> PolicyMetadata:
    state = restored.state
    spec = spec_of(state["env_id"])
    if spec is not None:
        obs_names, action_names, control_hz = spec.obs_names, spec.action_names, spec.control_hz
    else:  # not one of our tasks: no names; the env's own rate if it states one
        obs_names, action_names, control_hz = (), (), None
    return PolicyMetadata(
        obs_dim=restored.obs_dim, action_dim=len(state["action_low"]),
        obs_names=tuple(obs_names), action_names=tuple(action_names),
        action_low=tuple(float(v) for v in state["action_low"]),
        action_high=tuple(float(v) for v in state["action_high"]),
        control_hz=control_hz, env_id=state["env_id"], algo=state["algo"], robopg_version=__version__,
        checkpoint_sha256=restored.sha256, opset=OPSET, randomize=restored.learner.config.trained_ranges(),
        history=restored.history,
    )


def verification_observations(policy: torch.nn.Module, env_id: str, input_dim: int, history: int = 0,
                              seed: int = 0) -> np.ndarray:
    """Inputs recorded from one episode of the policy (with a history, the sequence of its inputs as training
    and the runtime build them), plus random ones around the normalizer's statistics, out to ten standard
    deviations so that the clipping is exercised too."""
    rng = np.random.default_rng(seed)
    recorded = []
    try:
        env = make_env(env_id, history=history)
    except EnvError:
        env = None
    if env is not None:
        obs, _ = env.reset(seed=seed)
        for _ in range(200):
            recorded.append(np.asarray(obs, dtype=np.float32))
            with torch.no_grad():
                action = policy(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        env.close()
    normalizer = policy.normalizer  # a RunningNormalizer, or Identity when normalization is off
    mean = normalizer.mean.numpy() if isinstance(normalizer, RunningNormalizer) else np.zeros(input_dim)
    std = np.sqrt(normalizer.var.numpy()) if isinstance(normalizer, RunningNormalizer) else np.ones(input_dim)
    spread = rng.choice([0.5, 1.0, 3.0, 10.0], size=(256, 1))
    random = (mean + std * spread * rng.normal(size=(256, input_dim))).astype(np.float32)
    return np.concatenate([np.stack(recorded), random]) if recorded else random


@contextlib.contextmanager
def exporter_quiet() -> Iterator[None]:
    """The torch.export-based exporter logs about optional packages (torchvision) and warns about its own
    internals; neither concerns the user, whose console should show the export's result only."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def export_policy(source: Path, out: Path) -> ExportReport:
    """Write ``source``'s policy (a run folder or checkpoint) to ``out`` as ONNX; see :func:`write_onnx`."""
    restored = checkpoint.restore(Path(source))
    return write_onnx(restored.policy(), metadata_for(restored), Path(out))


def write_onnx(policy: torch.nn.Module, metadata: PolicyMetadata, out: Path) -> ExportReport:
    """Write ``policy`` (raw observation -> actuator units) with ``metadata`` to ``out``; fails, leaving ``out``
    untouched, if the graph does not pass the ONNX checker or differs from torch by more than :func:`limit`."""
    out = Path(out)
    if not out.parent.is_dir():
        raise ExportError(f"cannot write {out}: folder {out.parent} does not exist")
    dummy = torch.zeros(1, metadata.input_dim)
    with atomic_path(out) as tmp:
        with exporter_quiet():
            program = torch.onnx.export(policy, (dummy,), input_names=["observation"], output_names=["action"],
                                        dynamic_shapes={"obs": {0: torch.export.Dim("batch")}}, opset_version=OPSET,
                                        dynamo=True, verbose=False)
        model = program.model_proto
        onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **metadata.to_props()})
        model.doc_string = f"robopg {metadata.algo} policy for {metadata.env_id}: raw observation" + (
            f" and its last {metadata.history} observations and commands" if metadata.history else "") + " -> action"
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp))
        observations = verification_observations(policy, metadata.env_id, metadata.input_dim, metadata.history)
        expected, allowed = reference_actions(policy, observations)
        actual = OnnxPolicy(tmp)(observations)
        error = np.abs(actual - expected)
        normalized = float(np.max(error / policy.scaler.half_range.numpy()))
        if not normalized <= allowed:
            raise ExportError(f"onnxruntime and torch differ by {normalized:.3g} of the action range "
                              f"(> {allowed:.3g}); nothing written")
    return ExportReport(out, metadata, float(error.max()), normalized, len(observations))


def reference_actions(policy: torch.nn.Module, observations: np.ndarray) -> tuple[np.ndarray, float]:
    """torch's actions in float64 (the exact function of the weights) for ``observations``, and the error an
    exported policy may make against them, in normalized action units (:func:`limit` of torch's own
    float32 error on them)."""
    with torch.no_grad():
        expected = copy.deepcopy(policy).double()(torch.from_numpy(observations).double()).numpy()
        torch_float32 = policy(torch.from_numpy(observations)).numpy()
    half_range = policy.scaler.half_range.numpy()
    return expected, limit(float(np.max(np.abs(torch_float32 - expected) / half_range)))


def limit(torch_float32_error: float) -> float:
    """The largest error onnxruntime may make, in normalized action units: ``TOLERANCE``, or ``FLOAT32_MARGIN``
    times torch's own float32 error on the same observations where that is larger."""
    return max(TOLERANCE, FLOAT32_MARGIN * torch_float32_error)
