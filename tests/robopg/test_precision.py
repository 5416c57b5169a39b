"""bf16 matrix products in the DDPG update (``matmul_precision = "bfloat16"``)."""

import numpy as np
import pytest
import torch

from robopg.algos import ddpg as config_module
from robopg.algos.base import matmul_precision
from robopg.core.buffers import Batch
from robopg.core.nets import mlp
from robopg.errors import ConfigError
from robopg.registry import make_config, make_learner

needs_bf16 = pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="no bf16 on this CPU")


@needs_bf16
def test_hidden_products_run_in_bf16_and_the_output_layer_in_float32():
    net = mlp(5, 1, [32, 32])
    hidden_dtypes = []
    net[0].register_forward_hook(lambda module, args, out: hidden_dtypes.append(out.dtype))
    x = torch.randn(8, 5)
    with matmul_precision("bfloat16"):
        out = net(x)
    assert hidden_dtypes == [torch.bfloat16] and out.dtype == torch.float32
    with matmul_precision("float32"):
        exact = net(x)
    assert hidden_dtypes[-1] == torch.float32 and exact.dtype == torch.float32
    assert torch.allclose(out, exact, atol=0.02)  # bf16 keeps 8 bits of mantissa in the hidden layers


def _learner(precision: str):
    config = make_config("ddpg", {"matmul_precision": precision, "actor_hidden": [64, 64],
                                  "critic_hidden": [64, 64]})
    return make_learner(config, 5, -np.ones(1, np.float32), np.ones(1, np.float32), torch.Generator().manual_seed(0))


@needs_bf16
def test_a_bf16_update_learns_what_the_float32_update_learns():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(4):  # a reward the critic can learn: a smooth function of the state and the action
        obs, action = torch.randn(64, 5, generator=g), torch.rand(64, 1, generator=g) * 2 - 1
        batches.append(Batch(obs, action, obs[:, 0] - action[:, 0] ** 2, torch.randn(64, 5, generator=g),
                             torch.zeros(64)))
    losses = {}
    for precision in ("float32", "bfloat16"):
        torch.manual_seed(0)
        learner = _learner(precision)
        losses[precision] = np.array([float(learner.update(batches[i % 4])["critic_loss"]) for i in range(200)])
        assert all(p.dtype == torch.float32 for p in learner.critic.parameters())  # master weights stay float32
    exact, bf16 = losses["float32"], losses["bfloat16"]
    assert bf16[-20:].mean() < 0.5 * bf16[:20].mean()  # it learns
    np.testing.assert_allclose(bf16[:20], exact[:20], rtol=0.02)  # and the same thing, to bf16's precision
    assert bf16[-20:].mean() == pytest.approx(exact[-20:].mean(), rel=0.05)


def test_bf16_is_refused_on_a_cpu_without_it(monkeypatch):
    monkeypatch.setattr(config_module, "_cpu_has_bf16", lambda: False)
    with pytest.raises(ConfigError, match="needs a CPU with bf16 instructions"):
        make_config("ddpg", {"matmul_precision": "bfloat16"})
    with pytest.raises(ConfigError, match="matmul_precision must be 'float32' or 'bfloat16'"):
        make_config("ddpg", {"matmul_precision": "float16"})
