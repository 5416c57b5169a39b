"""A2C with self-imitation learning (Oh et al. 2018, "Self-Imitation Learning").

After each A2C update, ``sil_updates`` minibatches of past (s, a, R) drawn by priority (R − V(s))⁺:
    θ ← θ + η Σ ∇θ log πθ(a|s)(R − V(s))⁺        φ ← φ − η β_sil Σ ∇φ ((R − V(s))⁺)²
Only transitions whose return beat the current value estimate teach anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robopg.algos.a2c import A2C, A2CConfig
from robopg.config import MAX_BATCH, require_fits_in_memory
from robopg.core.losses import self_imitation_losses
from robopg.memory import transitions_bytes
from robopg.settings import setting


@dataclass(frozen=True, kw_only=True)
class SILConfig(A2CConfig):
    """A2C plus ``sil_updates`` prioritized minibatches of past (s, a, R) per A2C update, learning only where
    the return beat V(s)."""

    sil_updates: int = setting(2, "self-imitation minibatches per A2C update", ge=1, most=1000)
    sil_batch_size: int = setting(64, "transitions per self-imitation minibatch", ge=1, most=MAX_BATCH)
    sil_buffer_size: int = setting(100_000, "capacity of the self-imitation replay", ge=1, most=10**9)
    sil_value_coef: float = setting(0.01, "weight of the self-imitation value loss", gt=0, le=100)
    sil_alpha: float = setting(0.6, "prioritization exponent α", ge=0, le=1)
    sil_beta: float = setting(0.1, "importance-weight exponent β", ge=0, le=1)

    def check(self) -> None:
        super().check()
        require_fits_in_memory(self, transitions_bytes(self.sil_buffer_size))


class A2CSIL(A2C):
    config: SILConfig

    def imitate(
        self, obs: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor, weights: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One self-imitation step on normalized ``obs``; returns stats and the new priorities."""
        c = self.config
        log_prob = self.pi.log_prob(obs, actions)
        actor_loss, critic_loss, priorities = self_imitation_losses(log_prob, self.critic(obs), returns, weights)
        self.step(actor_loss + c.sil_value_coef * critic_loss)
        return ({"sil_actor_loss": actor_loss.detach(), "sil_critic_loss": critic_loss.detach(),
                 "sil_useful": (priorities > 0).float().mean()}, priorities)
