"""Batch-1 policy latency: onnxruntime vs torch eager vs a plain numpy forward, on the same weights.

The policy is the exported graph at the default network size (DDPG's [256, 256] actor with observation
normalization and action scaling), for the swing-up (5 -> 1) and the KUKA reach (20 -> 7). Each backend
maps one raw float32 observation to one action, as the control loop does; p50 and p99 over ``--calls``
timed calls after a warm-up. onnxruntime runs through robopg's ``OnnxPolicy`` with its default settings (one
thread, no spinning), with ``threads=2, spinning=True``, and as onnxruntime's own defaults.

    python tools/bench_inference.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from robopg import __version__
from robopg.algos.ddpg import DDPGConfig
from robopg.export import OPSET, write_onnx
from robopg.registry import make_learner
from robopg.runtime.onnx_policy import OnnxPolicy, PolicyMetadata

TASKS = {"robopg/CartPoleSwingUp-v0": (5, 1), "robopg/KukaReach-v0": (20, 7)}


def deployable(obs_dim: int, act_dim: int, seed: int = 0) -> torch.nn.Module:
    """The default DDPG policy with non-trivial normalizer statistics (weights as initialized)."""
    torch.manual_seed(seed)
    low, high = -np.ones(act_dim, dtype=np.float32) * 2, np.ones(act_dim, dtype=np.float32) * 2
    learner = make_learner(DDPGConfig(), obs_dim, low, high, torch.Generator().manual_seed(seed))
    policy = learner.policy().eval()
    policy.normalizer.mean.copy_(torch.randn(obs_dim))
    policy.normalizer.var.copy_(torch.rand(obs_dim) + 0.5)
    return policy


def numpy_forward(policy: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """The same computation in numpy: normalize, Linear/ReLU layers, tanh, scale."""
    norm = policy.normalizer
    mean = norm.mean.numpy().astype(np.float32)
    inv_std = (1.0 / np.sqrt(norm.var.numpy() + norm.eps)).astype(np.float32)
    clip = np.float32(norm.clip)
    layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
              for m in policy.actor.net if isinstance(m, torch.nn.Linear)]
    center, half = policy.scaler.center.numpy(), policy.scaler.half_range.numpy()

    def forward(obs: np.ndarray) -> np.ndarray:
        x = np.clip((obs - mean) * inv_std, -clip, clip)
        for w, b in layers[:-1]:
            x = np.maximum(x @ w + b, 0.0)
        w, b = layers[-1]
        return center + half * np.tanh(x @ w + b)

    return forward


def torch_forward(policy: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def forward(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return policy(torch.from_numpy(obs)).numpy()

    return forward


def latencies(backends: dict[str, Callable[[np.ndarray], np.ndarray]], observations: np.ndarray,
              ) -> dict[str, tuple[float, float]]:
    """p50 and p99 in microseconds per backend; the backends take turns on each observation, so that whatever
    else the machine does slows them alike."""
    for obs in observations[:500]:
        for fn in backends.values():
            fn(obs)
    times = {name: np.empty(len(observations)) for name in backends}
    clock = time.perf_counter_ns
    for i, obs in enumerate(observations):
        for name, fn in backends.items():
            t = clock()
            fn(obs)
            times[name][i] = clock() - t
    return {name: (float(np.percentile(t, 50)) / 1e3, float(np.percentile(t, 99)) / 1e3) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    torch.set_num_threads(1)  # torch's fastest setting at batch 1 (a thread pool costs more than it saves)
    print(f"batch-1 latency, {args.calls} calls each, microseconds; torch {torch.__version__} (1 thread), "
          f"onnxruntime {ort.__version__}, numpy {np.__version__}")
    print(f"{'task':>28} {'backend':>24} {'p50':>8} {'p99':>8} {'p50 / numpy':>12} {'p50 / torch':>12}")
    for env_id, (obs_dim, act_dim) in TASKS.items():
        policy = deployable(obs_dim, act_dim)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "policy.onnx"
            metadata = PolicyMetadata(obs_dim, act_dim, (), (), (-2.0,) * act_dim, (2.0,) * act_dim, None, env_id,
                                      "ddpg", __version__, "", OPSET)
            write_onnx(policy, metadata, path)
            tuned = OnnxPolicy(path)
            default_session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

            def run_call(session: ort.InferenceSession) -> Callable[[np.ndarray], np.ndarray]:
                return lambda obs: session.run(None, {"observation": obs[None]})[0][0]

            observations = np.random.default_rng(0).normal(size=(args.calls, obs_dim)).astype(np.float32)
            backends = {"numpy": numpy_forward(policy), "torch eager": torch_forward(policy),
                        "ort OnnxPolicy": tuned, "ort OnnxPolicy 2t spin": OnnxPolicy(path, threads=2, spinning=True),
                        "ort defaults": run_call(default_session)}
            reference = backends["numpy"](observations[0])
            for name, fn in backends.items():  # the same weights: the same actions
                assert np.allclose(fn(observations[0]), reference, atol=1e-4), name
            results = latencies(backends, observations)
        for name, (p50, p99) in results.items():
            print(f"{env_id:>28} {name:>24} {p50:>8.1f} {p99:>8.1f} {p50 / results['numpy'][0]:>12.2f} "
                  f"{p50 / results['torch eager'][0]:>12.2f}")


if __name__ == "__main__":
    main()
