"""A2C with self-imitation learning (Oh et al. 2018, "Self-Imitation Learning").

After each A2C update, ``sil_updates`` minibatches of past (s, a, R) drawn by priority (R − V(s))⁺:
    θ ← θ + η Σ ∇θ log πθ(a|s)(R − V(s))⁺        φ ← φ − η β_sil Σ ∇φ ((R − V(s))⁺)²
Only transitions whose return beat the current value estimate teach anything.
"""

from __future__ import annotations

import torch

from robopg.algos.a2c import A2C
from robopg.algos.gaussian import clipped_step
from robopg.config import SILConfig
from robopg.losses import self_imitation_losses


class A2CSIL(A2C):
    config: SILConfig

    def imitate(
        self, obs: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor, weights: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One self-imitation step on normalized ``obs``; returns stats and the new priorities."""
        c = self.config
        log_prob = self.pi.log_prob(obs, actions)
        actor_loss, critic_loss, priorities = self_imitation_losses(log_prob, self.value(obs), returns, weights)
        self.actor_optimizer.zero_grad(set_to_none=True)
        self.critic_optimizer.zero_grad(set_to_none=True)
        (actor_loss + c.sil_value_coef * critic_loss).backward()
        clipped_step(self.actor_optimizer, self.pi.parameters(), c.max_grad_norm)
        clipped_step(self.critic_optimizer, self.value.parameters(), c.max_grad_norm)
        return ({"sil_actor_loss": actor_loss.detach(), "sil_critic_loss": critic_loss.detach(),
                 "sil_useful": (priorities > 0).float().mean()}, priorities)
