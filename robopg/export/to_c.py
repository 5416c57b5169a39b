"""Export a trained policy as C for a microcontroller: float32 constants and one function, no allocation.

``robopg export RUN --format c --out DIR`` writes, into ``DIR``:

- ``robopg_policy.h``: ``void robopg_policy(const float *obs, float *action)`` and the sizes and limits;
- ``robopg_policy.c``: the normalizer (mean, standard deviation, clip), the MLP's weights and biases as
  ``static const float`` (flash on a microcontroller), the output squashing (the deterministic actor's tanh,
  or a Gaussian policy's mean clipped to [-1, 1]) and the scaling to actuator units; two static scratch
  vectors of the widest layer are its only RAM;
- ``robopg_policy_check.h``: the export's verification observations (those of the ONNX export,
  :func:`~robopg.export.to_onnx.verification_observations`) with onnxruntime's actions for them, the half
  action range and the tolerance, for a test program to run the C on (``firmware/tests/test_policy.c``, on
  the host and on the board).

The arithmetic is the graph's, in float32: ``(obs - mean) / sqrt(var + eps)`` with the square root taken here
in float32 as torch takes it, clipped; each layer ``W x + b`` summed in index order; ReLU between layers.
When a C compiler is on the PATH (``cc``), the export compiles the check and refuses to write if the C
differs from onnxruntime by more than :data:`~robopg.export.to_onnx.TOLERANCE` of the action range (or the
ONNX export's own float32 allowance, :func:`~robopg.export.to_onnx.reference_actions`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robopg import checkpoint
from robopg.atomic import atomic_write_text
from robopg.core.nets import Actor, DeployablePolicy, GaussianPolicy, RunningNormalizer
from robopg.errors import ExportError
from robopg.export.to_onnx import metadata_for, reference_actions, verification_observations, write_onnx
from robopg.runtime.onnx_policy import OnnxPolicy, PolicyMetadata

NAME = "robopg_policy"
FIRMWARE_TESTS = Path(__file__).resolve().parents[2] / "firmware_bridge" / "firmware" / "tests"


@dataclass(frozen=True)
class CPolicy:
    """The numbers of a deployable policy, as the C computes with them (float32)."""

    mean: np.ndarray  # (obs_dim,)
    std: np.ndarray  # (obs_dim,): sqrt(var + eps) in float32
    clip: float  # normalized observations are clipped to [-clip, clip]; inf: no normalizer
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (weight (out, in), bias (out,)), ReLU between them
    output: str  # "tanh" (a deterministic actor) or "clip" (a Gaussian policy's mean)
    center: np.ndarray  # (action_dim,)
    half_range: np.ndarray

    @property
    def widest(self) -> int:
        return max(w.shape[0] for w, _ in self.layers)


@dataclass(frozen=True)
class CExportReport:
    directory: Path
    metadata: PolicyMetadata
    flash_bytes: int  # the constants: normalizer, weights, biases, scaling
    checked_observations: int
    max_normalized_error: float | None  # against onnxruntime, when the check was compiled (None: no cc)
    allowed: float


def _f32(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).numpy().copy()


def c_policy(policy: nn.Module) -> CPolicy:
    """The C's numbers from a :class:`DeployablePolicy`; :class:`ExportError` for any other shape of module."""
    if not isinstance(policy, DeployablePolicy):
        raise ExportError(f"cannot write {type(policy).__name__} as C: not a normalizer, MLP and scaling")
    actor = policy.actor
    if isinstance(actor, Actor):
        net, output = actor.net, "tanh"
    elif isinstance(actor, GaussianPolicy):
        net, output = actor.mean, "clip"
    else:
        raise ExportError(f"cannot write a {type(actor).__name__} actor as C: an MLP actor is needed")
    modules = list(net)
    linears = modules[0::2]
    activations = modules[1::2]
    if not all(isinstance(m, nn.Linear) for m in linears) or not all(isinstance(m, nn.ReLU) for m in activations):
        raise ExportError("cannot write the actor as C: only Linear layers with ReLU between them are supported")
    obs_dim = linears[0].in_features
    normalizer = policy.normalizer
    if isinstance(normalizer, RunningNormalizer):
        std = torch.sqrt(normalizer.var.to(torch.float32) + normalizer.eps)
        mean, clip = _f32(normalizer.mean), float(normalizer.clip)
    elif isinstance(normalizer, nn.Identity):
        mean, std, clip = torch.zeros(obs_dim).numpy(), torch.ones(obs_dim), float("inf")
    else:
        raise ExportError(f"cannot write the normalizer {type(normalizer).__name__} as C")
    layers = tuple((_f32(m.weight), _f32(m.bias)) for m in linears)
    return CPolicy(mean, _f32(std), clip, layers, output, _f32(policy.scaler.center), _f32(policy.scaler.half_range))


def _literal(value: float) -> str:
    """A float32 as a C literal that reads back bit for bit (9 significant digits)."""
    text = f"{value:.9g}"
    return text + ("f" if "." in text or "e" in text else ".0f")


def _floats(values: np.ndarray) -> str:
    """A C initializer of float32 values: nested braces for each row of a 2-D array."""
    values = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(values)):
        raise ExportError("the policy holds non-finite numbers; nothing written")
    if values.ndim == 2:
        return "{\n    " + ",\n    ".join(_floats(row) for row in values) + "\n}"
    items = [_literal(float(v)) for v in values.ravel()]
    return "{" + ", ".join(items) + "}"


def _array(name: str, values: np.ndarray) -> str:
    return f"static const float {name}[{np.asarray(values).size}] = {_floats(np.asarray(values).ravel())};\n"


def header(p: CPolicy, metadata: PolicyMetadata) -> str:
    obs_dim, action_dim = p.mean.size, p.center.size
    return f"""/*
 * {NAME}.h - {metadata.algo} policy for {metadata.env_id}, written by robopg {metadata.robopg_version}
 * (robopg export --format c) from checkpoint sha256 {metadata.checkpoint_sha256[:16]}.
 *
 * robopg_policy(obs, action): a raw observation (sensor units) to an action in actuator units, within
 * [ROBOPG_POLICY_ACTION_LOW, ROBOPG_POLICY_ACTION_HIGH]. float32, no allocation, no state between calls;
 * it uses two static scratch vectors, so it is not reentrant (call it from one context).
 */
#ifndef ROBOPG_POLICY_H
#define ROBOPG_POLICY_H

#define ROBOPG_POLICY_OBS_DIM {obs_dim}
#define ROBOPG_POLICY_ACTION_DIM {action_dim}
#define ROBOPG_POLICY_HIDDEN "{", ".join(str(w.shape[0]) for w, _ in p.layers[:-1])}"
#define ROBOPG_POLICY_CONTROL_HZ {metadata.control_hz if metadata.control_hz is not None else 0}

extern const float robopg_policy_action_low[ROBOPG_POLICY_ACTION_DIM];
extern const float robopg_policy_action_high[ROBOPG_POLICY_ACTION_DIM];

void robopg_policy(const float *obs, float *action);

#endif /* ROBOPG_POLICY_H */
"""


def source(p: CPolicy, metadata: PolicyMetadata) -> str:
    arrays = [_array("obs_mean", p.mean), _array("obs_std", p.std)]
    table = []
    for i, (w, b) in enumerate(p.layers):
        arrays += [_array(f"w{i}", w), _array(f"b{i}", b)]
        table.append(f"    {{w{i}, b{i}, {w.shape[1]}, {w.shape[0]}}},")
    arrays += [_array("act_center", p.center), _array("act_half_range", p.half_range)]
    low, high = p.center - p.half_range, p.center + p.half_range
    squash = "tanhf(s)" if p.output == "tanh" else "s < -1.0f ? -1.0f : s > 1.0f ? 1.0f : s"
    bound = _literal(p.clip) if np.isfinite(p.clip) else ""
    clip = f"        x[i] = x[i] < -{bound} ? -{bound} : x[i] > {bound} ? {bound} : x[i];\n" if bound else ""
    return f"""/* {NAME}.c - written by robopg export --format c; see {NAME}.h. */
#include "{NAME}.h"
{"" if p.output != "tanh" else chr(10) + "#include <math.h>" + chr(10)}
typedef struct layer {{
    const float *w; /* out x in, row-major */
    const float *b;
    unsigned short in, out;
}} layer;

{"".join(arrays)}
const float robopg_policy_action_low[ROBOPG_POLICY_ACTION_DIM] = {_floats(low)};
const float robopg_policy_action_high[ROBOPG_POLICY_ACTION_DIM] = {_floats(high)};

static const layer layers[{len(p.layers)}] = {{
{chr(10).join(table)}
}};

static float scratch_a[{p.widest}], scratch_b[{p.widest}];

void robopg_policy(const float *obs, float *action)
{{
    float *x = scratch_a, *y = scratch_b, *t;
    unsigned i, o, k;
    for (i = 0; i < ROBOPG_POLICY_OBS_DIM; ++i) {{
        x[i] = (obs[i] - obs_mean[i]) / obs_std[i];
{clip}    }}
    for (k = 0; k < {len(p.layers)}u; ++k) {{
        const layer *l = &layers[k];
        const float *w = l->w;
        for (o = 0; o < l->out; ++o) {{
            float s = l->b[o];
            for (i = 0; i < l->in; ++i) {{
                s += w[i] * x[i];
            }}
            w += l->in;
            y[o] = k + 1u < {len(p.layers)}u && s < 0.0f ? 0.0f : s; /* ReLU between layers */
        }}
        t = x;
        x = y;
        y = t;
    }}
    for (o = 0; o < ROBOPG_POLICY_ACTION_DIM; ++o) {{
        float s = x[o];
        action[o] = act_center[o] + act_half_range[o] * ({squash});
    }}
}}
"""


def check_header(observations: np.ndarray, expected: np.ndarray, half_range: np.ndarray, allowed: float) -> str:
    return f"""/* {NAME}_check.h - the export's verification observations and onnxruntime's actions for them, for
 * firmware/tests/test_policy.c. Written by robopg export --format c. */
#ifndef ROBOPG_POLICY_CHECK_H
#define ROBOPG_POLICY_CHECK_H

#define ROBOPG_CHECK_COUNT {len(observations)}
#define ROBOPG_CHECK_TOLERANCE {allowed:.9g} /* of the half action range */

static const float check_half_range[ROBOPG_POLICY_ACTION_DIM] = {_floats(half_range)};
static const float check_obs[ROBOPG_CHECK_COUNT][ROBOPG_POLICY_OBS_DIM] = {_floats(observations)};
static const float check_action[ROBOPG_CHECK_COUNT][ROBOPG_POLICY_ACTION_DIM] = {_floats(expected)};

#endif /* ROBOPG_POLICY_CHECK_H */
"""


def flash_bytes(p: CPolicy) -> int:
    """Bytes of the constants (normalizer, weights, biases, scaling and limits)."""
    weights = sum(w.size + b.size for w, b in p.layers)
    return 4 * (2 * p.mean.size + weights + 4 * p.center.size)


def compile_check(directory: Path, compiler: str, extra: Sequence[str] = ()) -> float:
    """Compile ``firmware/tests/test_policy.c`` with the policy in ``directory``, run it, and return the largest
    difference from onnxruntime in normalized action units (:class:`ExportError` if it does not build or run)."""
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "test_policy"
        cmd = [
            compiler,
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            str(directory),
            *extra,
            str(FIRMWARE_TESTS / "test_policy.c"),
            str(directory / f"{NAME}.c"),
            "-lm",
            "-o",
            str(binary),
        ]
        built = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if built.returncode != 0:
            raise ExportError(f"the generated C does not compile: {built.stderr.strip().splitlines()[-1:]}")
        ran = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60, check=False)
    for line in ran.stdout.splitlines():
        if line.startswith("test_policy:"):
            return float(line.split("largest difference")[1].split()[0])
    raise ExportError(f"the policy check printed no result: {(ran.stdout + ran.stderr).strip()[-200:]}")


def export_c(source_path: Path, out: Path) -> CExportReport:
    """Write ``source_path``'s policy (a run folder or checkpoint) as C into the folder ``out``."""
    restored = checkpoint.restore(Path(source_path))
    return write_c(restored.policy(), metadata_for(restored), Path(out))


def write_c(policy: nn.Module, metadata: PolicyMetadata, out: Path) -> CExportReport:
    """Write ``policy`` as C into ``out`` (created if its parent exists); see the module docstring."""
    if not out.parent.is_dir():
        raise ExportError(f"cannot write {out}: folder {out.parent} does not exist")
    if out.exists() and not out.is_dir():
        raise ExportError(f"cannot write C into {out}: it is a file (--out names a folder for --format c)")
    if metadata.history:
        raise ExportError(f"cannot write a policy with a history input (history = {metadata.history}) as C: the "
                          "firmware's POLICY mode feeds it the observation alone; export it to ONNX")
    p = c_policy(policy)
    observations = verification_observations(policy, metadata.env_id, metadata.input_dim)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_report = write_onnx(policy, metadata, Path(tmp) / "policy.onnx")
        expected = OnnxPolicy(onnx_report.path)(observations)
    _, allowed = reference_actions(policy, observations)
    files = {
        f"{NAME}.h": header(p, metadata),
        f"{NAME}.c": source(p, metadata),
        f"{NAME}_check.h": check_header(observations, expected, p.half_range, allowed),
    }
    error = None
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is not None:
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in files.items():
                (Path(tmp) / name).write_text(text)
            error = compile_check(Path(tmp), compiler)
        if not error <= allowed:
            raise ExportError(
                f"the C policy and onnxruntime differ by {error:.3g} of the action range "
                f"(> {allowed:.3g}); nothing written"
            )
    out.mkdir(exist_ok=True)
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return CExportReport(out, metadata, flash_bytes(p), len(observations), error, allowed)
