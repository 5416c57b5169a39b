"""What crosses between the A3C trainer and its workers: the weights and the gradient as one flat vector each,
the gradient's clipping on that vector, and the reports' observations folded into the normalizer in batches."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from robopg.algos.a2c import A2C
from robopg.core.nets import NORMALIZER_FLUSH
from robopg.registry import make_config
from robopg.training.a3c.worker import GlobalNets, WorkerReport, clip_by_norm_, flatten, unflatten_into


def learner(seed: int) -> A2C:
    config = make_config("a3c", {"actor_hidden": [8], "critic_hidden": [8], "max_grad_norm": 0.5})
    low, high = -np.ones(2, np.float32), np.ones(2, np.float32)
    return A2C(config, 3, low, high, torch.Generator().manual_seed(seed))


def test_clip_by_norm_scales_a_vector_longer_than_the_bound_and_leaves_a_shorter_one():
    long = torch.tensor([3.0, 4.0])  # norm 5
    assert clip_by_norm_(long, 1.0).item() == pytest.approx(5.0)
    assert long.tolist() == pytest.approx([3.0 / (5.0 + 1e-6), 4.0 / (5.0 + 1e-6)])
    short = torch.tensor([0.3, 0.4])  # norm 0.5
    clip_by_norm_(short, 1.0)
    assert short.tolist() == pytest.approx([0.3, 0.4])


def test_flatten_and_unflatten_into_round_trip_in_order():
    tensors = [torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([5.0])]
    flat = flatten(tensors)
    assert flat.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    targets = [torch.zeros(2, 2), torch.zeros(1)]
    read_only = flat.numpy().copy()
    read_only.flags.writeable = False  # as Ray hands arrays over
    unflatten_into(read_only, targets)
    assert targets[0].tolist() == [[1.0, 2.0], [3.0, 4.0]] and targets[1].tolist() == [5.0]
    with pytest.raises(ValueError, match="a flat vector of 5 values was expected, got shape \\(4,\\)"):
        unflatten_into(flat[:4], targets)


def test_a_worker_loads_the_global_weights_normalizer_included():
    global_nets, worker_nets = GlobalNets.of(learner(0)), GlobalNets.of(learner(1))
    global_nets.normalizer.update(torch.randn(50, 3, generator=torch.Generator().manual_seed(2)) * 3 + 1)
    worker_nets.load(global_nets.weights())
    obs = torch.randn(4, 3, generator=torch.Generator().manual_seed(3))
    for name in ("normalizer", "value"):
        assert torch.equal(worker_nets.modules()[name](obs), global_nets.modules()[name](obs)), name
    assert torch.equal(worker_nets.pi.mean(obs), global_nets.pi.mean(obs))


def test_applying_a_flat_gradient_steps_as_per_tensor_clipping_does():
    """The flat step against torch's own: clip_grad_norm_ on each network's gradients, then Adam."""
    flat_learner = learner(0)
    reference = copy.deepcopy(flat_learner)
    nets, ref = GlobalNets.of(flat_learner), GlobalNets.of(reference)
    generator = torch.Generator().manual_seed(4)
    for _ in range(3):
        parts = [torch.randn(p.shape, generator=generator) for p in (*ref.pi.parameters(), *ref.value.parameters())]
        nets.apply(flatten(copy.deepcopy(parts)))
        actor_count = len(list(ref.pi.parameters()))
        for params, grads, optimizer in ((list(ref.pi.parameters()), parts[:actor_count], ref.actor_optimizer),
                                         (list(ref.value.parameters()), parts[actor_count:], ref.critic_optimizer)):
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
            nn.utils.clip_grad_norm_(params, ref.max_grad_norm)
            optimizer.step()
    for mine, theirs in zip(nets.weight_tensors(), ref.weight_tensors(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


def test_reports_observations_are_folded_into_the_normalizer_256_at_a_time():
    nets = GlobalNets.of(learner(0))
    assert nets.normalize_obs
    observations = np.random.default_rng(5).normal(2.0, 3.0, (NORMALIZER_FLUSH, 3)).astype(np.float32)
    reports = [WorkerReport(0, 16, [], {}, chunk, []) for chunk in np.split(observations, NORMALIZER_FLUSH // 16)]
    for report in reports[:-1]:
        nets.absorb(report)
    assert nets.normalizer.count.item() == 0.0  # not folded yet, but kept for a checkpoint
    assert np.array_equal(nets.pending_obs(), observations[:-16])
    nets.absorb(reports[-1])
    assert nets.normalizer.count.item() == NORMALIZER_FLUSH and nets.pending_obs().shape == (0, 3)
    np.testing.assert_allclose(nets.normalizer.mean.numpy(), observations.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(nets.normalizer.var.numpy(), observations.var(axis=0), rtol=1e-4)
