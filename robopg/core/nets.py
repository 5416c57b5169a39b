"""Networks: MLP actors and critics, and the policy that goes to the robot.

Learning happens in normalized units: observations through a running normalizer, actions in
[-1, 1]. ``DeployablePolicy`` wraps the learned actor with both conversions so that it takes raw
observations and returns actuator units: the module that export writes to ONNX.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn


class OutputLinear(nn.Linear):
    """The output layer: float32 even under bf16 autocast. Its values need more than bf16's 8-bit mantissa
    (a Q-value near 100 would be rounded to a multiple of 0.5, as large as the TD errors it learns from); it
    is one narrow product, so keeping it exact costs nothing measurable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int], activation: type[nn.Module] = nn.ReLU, *,
        layer_norm: bool = False) -> nn.Sequential:
    """A fully connected network: ``in -> hidden... -> out`` with no output activation; ``layer_norm`` puts a
    layer normalization (Ba et al. 2016) before each hidden activation."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), *([nn.LayerNorm(h)] if layer_norm else []), activation()]
        width = h
    layers.append(OutputLinear(width, out_dim))
    return nn.Sequential(*layers)


class RunningNormalizer(nn.Module):
    """Observation normalization from running mean and variance (Chan et al. parallel update).

    Statistics are buffers, so they are saved in checkpoints and baked into the exported graph.
    """

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.clip = clip
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.tensor(0.0, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        batch = batch.reshape(-1, self.mean.shape[0])
        n = batch.shape[0]
        batch_mean = batch.mean(0)
        batch_var = batch.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        new_mean = self.mean + delta * (n / total)
        m2 = self.var * self.count + batch_var * n + delta.square() * (self.count * n / total)
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return ((obs - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)


NORMALIZER_FLUSH = 256  # observations gathered before one normalizer update: one torch call, not one per step


class PendingObservations:
    """Observations gathered for a ``RunningNormalizer`` and folded into it ``NORMALIZER_FLUSH`` at a time, in one
    update. Those not yet folded are a trainer's state (:meth:`rows`, :meth:`load`), saved as they are: folding
    them early would change the run wherever a checkpoint fell."""

    def __init__(self, normalizer: RunningNormalizer, enabled: bool = True) -> None:
        self.normalizer, self.enabled = normalizer, enabled
        self.batches: list[np.ndarray] = []
        self.count = 0

    def add(self, rows: np.ndarray) -> None:
        """Gather ``rows`` (observations × dimensions); fold everything gathered once there are enough."""
        self.batches.append(rows)
        self.count += len(rows)
        if self.count >= NORMALIZER_FLUSH:
            if self.enabled:
                self.normalizer.update(torch.from_numpy(np.concatenate(self.batches).astype(np.float32, copy=False)))
            self.batches.clear()
            self.count = 0

    def rows(self) -> np.ndarray:
        """The observations gathered and not yet folded in (none: zero rows)."""
        if not self.batches:
            return np.zeros((0, self.normalizer.mean.numel()), np.float32)
        return np.concatenate(self.batches).astype(np.float32, copy=False)

    def load(self, rows: np.ndarray) -> None:
        """Go on from :meth:`rows` of a saved run."""
        self.batches = [rows] if len(rows) else []
        self.count = len(rows)


class Actor(nn.Module):
    """Deterministic policy μθ(s): normalized observation -> action in [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.net = mlp(obs_dim, act_dim, hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))


class Critic(nn.Module):
    """Q(s, a) with one or two independent heads (two for TD3's clipped double-Q).

    Returns a tensor of shape ``(heads, batch)``.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], heads: int = 1, *,
                 layer_norm: bool = False) -> None:
        super().__init__()
        self.heads = nn.ModuleList(mlp(obs_dim + act_dim, 1, hidden, layer_norm=layer_norm) for _ in range(heads))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, action], dim=-1)
        return torch.stack([head(x).squeeze(-1) for head in self.heads])

    def first(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q₁(s, a) alone, shape ``(batch,)``: what the deterministic actor's loss needs (TD3's actor follows the first
        critic). The other head's forward and backward passes are not computed, where ``forward(...)[0]`` would
        compute them and back-propagate zeros through them."""
        return self.heads[0](torch.cat([obs, action], dim=-1)).squeeze(-1)


class ActionScaler(nn.Module):
    """Maps [-1, 1] to the action space's [low, high] in actuator units."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        low_t = torch.as_tensor(np.asarray(low, dtype=np.float32))
        high_t = torch.as_tensor(np.asarray(high, dtype=np.float32))
        self.register_buffer("center", (high_t + low_t) / 2)
        self.register_buffer("half_range", (high_t - low_t) / 2)

    def forward(self, unit_action: torch.Tensor) -> torch.Tensor:
        return self.center + self.half_range * unit_action

    def to_unit(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.center) / self.half_range


class DeployablePolicy(nn.Module):
    """Raw observation -> action in actuator units: normalizer, actor and scaling in one module."""

    def __init__(self, normalizer: nn.Module, actor: nn.Module, scaler: ActionScaler) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.actor = actor
        self.scaler = scaler

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.scaler(self.actor(self.normalizer(obs)))


def torch_policy_fn(policy: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """A raw-observation -> actuator-units module as a numpy function (the observation is copied: a robot's may
    be a read-only buffer)."""

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        return policy(torch.tensor(obs, dtype=torch.float32)).numpy()

    return act


class GaussianPolicy(nn.Module):
    """π(a|s) = N(μθ(s), diag σ²) in [-1, 1] action units.

    The mean μθ(s) = mlp(s) is unbounded, as in Stable-Baselines3: a tanh there saturates once the policy
    prefers a bound (a pre-activation of 3 leaves 1 % of the gradient), and the policy can no longer
    leave it. The deterministic policy that export writes (``forward``) is the mean clipped to [-1, 1].
    log σ is learned and state-independent, clamped to [min_log_std, max_log_std] so exploration neither
    vanishes nor explodes. Samples are clipped to [-1, 1] when sent to the env; their log-probability is
    that of the unclipped sample, which keeps the score function unbiased.
    """

    def __init__(
        self, obs_dim: int, act_dim: int, hidden: Sequence[int], init_log_std: float,
        min_log_std: float = -5.0, max_log_std: float = 1.0,
    ) -> None:
        super().__init__()
        self.mean = mlp(obs_dim, act_dim, hidden)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))
        self.min_log_std, self.max_log_std = min_log_std, max_log_std

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        mean = self.mean(obs)
        std = self.log_std.clamp(self.min_log_std, self.max_log_std).exp().expand_as(mean)
        return torch.distributions.Normal(mean, std)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log π(a|s), summed over action dimensions."""
        return self.distribution(obs).log_prob(action).sum(-1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mean(obs).clamp(-1.0, 1.0)


class ValueNet(nn.Module):
    """State value V(s): normalized observation -> scalar."""

    def __init__(self, obs_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.net = mlp(obs_dim, 1, hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)
