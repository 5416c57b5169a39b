"""Cautious online A2C fine-tuning on the robot, starting from the deployed deterministic policy.

The exploring policy is a Gaussian N(μθ(s), σ²) in normalized action units whose mean μθ is the deployed
actor (same normalizer and scaling) and whose σ is small and bounded. Caution comes from:

- a critic warm-up: the value function V(s) is fitted on the robot's returns before any actor update;
- A2C updates (Mnih et al. 2016) with GAE advantages (Schulman et al. 2016) and gradient clipping, on
  batches of several episodes (with two, the gradient's direction is mostly noise: the cosine between
  gradients of disjoint batches was 0.1), a few steps per batch;
- by default only the actor's output layer changes: a correction of the deployed behaviour (such as a
  lower gain while balancing, for a robot whose actuation lags) lives there, and updates of the whole
  network moved the noise-free policy in directions that did not help;
- a trust region per update: KL(π_old ‖ π_new) on the batch's states at most ``max_kl``, by backtracking
  the step (the idea of TRPO, Schulman et al. 2015, as a line search on the parameter change);
- a bound on the total drift from the deployed policy: max over the states seen of |μθ(s) − μ₀(s)|, in
  normalized action units, at most ``max_drift``, by pulling the parameters back towards the deployed ones;
- evaluation episodes without noise, compared by a significance test (``clearly_better``): a rollback to the
  best policy so far when an evaluation is clearly worse, and a new checkpoint and ONNX written only when the
  fine-tuned policy is clearly better than the deployed one on the robot.

Every command goes through the same safety layer as ``robopg deploy``; rewards are the task's reward
function of the robot's observations.
"""

from __future__ import annotations

import copy
import csv
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robopg import checkpoint
from robopg.atomic import atomic_path
from robopg.deploy import ControlLoop, Episode
from robopg.errors import ConfigError, PolicyFileError
from robopg.export import checkpoint_sha256, export_policy
from robopg.losses import policy_gradient_loss, value_loss
from robopg.nets import DeployablePolicy, ValueNet
from robopg.returns import discounted_returns, gae_advantages

DRIFT_EPISODES = 50  # the drift bound holds on the states of this many most recent episodes


@dataclass(frozen=True)
class FinetuneConfig:
    episodes: int = 150  # exploring episodes on the robot, warm-up included
    warmup_episodes: int = 6  # critic only
    episodes_per_update: int = 8  # with fewer, the gradient is mostly noise
    eval_every: int = 24  # exploring episodes between noise-free evaluations
    eval_episodes: int = 10  # 5 could not tell a 15-point gain from the spread of latency-3 episodes
    baseline_episodes: int = 20  # the deployed policy's evaluation: every comparison uses it, so it is longer
    confidence_z: float = 2.0  # "better" means a mean return higher by z standard errors (see ``clearly_better``)
    std: float = 0.2  # exploration, normalized action units ([-1, 1] spans the actuator range)
    max_std: float = 0.2
    actor_lr: float = 1e-2
    actor_steps: int = 5  # A2C steps per batch, each backtracked to KL(batch policy ‖ new) <= max_kl
    train_output_layer_only: bool = True  # fine-tune only the actor's last linear layer
    critic_lr: float = 1e-3
    critic_epochs: int = 20
    critic_episodes: int = 8  # the critic fits the returns of this many most recent episodes
    critic_hidden: tuple[int, ...] = (64, 64)
    value_scale: float = 50.0  # the critic predicts returns / value_scale
    gamma: float = 0.99
    gae_lambda: float = 0.95
    max_grad_norm: float = 0.5
    max_kl: float = 0.02
    max_drift: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "episodes must be > warmup_episodes >= 0": self.episodes > self.warmup_episodes >= 0,
            "episodes_per_update and eval_every must be >= 1": min(self.episodes_per_update, self.eval_every) >= 1,
            "eval_episodes and baseline_episodes must be >= 2 (a comparison needs a spread)":
                min(self.eval_episodes, self.baseline_episodes) >= 2,
            "confidence_z must be >= 0": self.confidence_z >= 0,
            "0 < std <= max_std <= 1 is required": 0 < self.std <= self.max_std <= 1,
            "learning rates must be > 0": self.actor_lr > 0 and self.critic_lr > 0,
            "0 < gamma <= 1 and 0 <= gae_lambda <= 1 are required": 0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1,
            "max_grad_norm, max_kl and max_drift must be > 0": min(self.max_grad_norm, self.max_kl, self.max_drift) > 0,
            "critic_epochs and critic_episodes must be >= 1": min(self.critic_epochs, self.critic_episodes) >= 1,
            "actor_steps must be >= 1 and value_scale > 0": self.actor_steps >= 1 and self.value_scale > 0,
        }
        for message, ok in checks.items():
            if not ok:
                raise ConfigError(f"finetune: {message}")


@dataclass(frozen=True)
class FinetuneRecord:
    """One line of finetune.csv."""

    episode: int  # exploring episodes so far
    kind: str  # "baseline", "eval", "explore"
    ret: float  # an evaluation's: the mean over its episodes
    ret_std: float = math.nan  # an evaluation's: the standard deviation over its episodes
    kl: float = math.nan
    drift: float = math.nan
    note: str = ""


class CautiousA2C:
    """The fine-tuning learner: the deployed actor as a Gaussian's mean, a fresh critic, and the safeguards."""

    def __init__(self, policy: DeployablePolicy, config: FinetuneConfig) -> None:
        self.config = config
        self.policy = policy  # its actor is trained in place; normalizer and scaler stay as deployed
        self.normalizer, self.actor = policy.normalizer, policy.actor
        for p in self.normalizer.parameters():
            p.requires_grad_(False)
        self.deployed = copy.deepcopy(self.actor).requires_grad_(False)
        obs_dim = self.normalizer.mean.numel()
        torch.manual_seed(config.seed)
        self.critic = ValueNet(obs_dim, config.critic_hidden)
        trained = {id(p) for p in self.trained_parameters()}
        for p in self.actor.parameters():
            p.requires_grad_(id(p) in trained)
        self.actor_optimizer = torch.optim.Adam(self.trained_parameters(), lr=config.actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.seen: deque[np.ndarray] = deque(maxlen=DRIFT_EPISODES)  # observations for the drift bound

    # ----- acting --------------------------------------------------------------------------------------

    def unit_mean(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.normalizer(obs))

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.unit_mean(obs), self.config.std)  # std <= max_std, checked

    def exploring_policy(self) -> Callable[[np.ndarray], np.ndarray]:
        """Samples μ(s) + σε in unit space, sends it in actuator units; the unit sample is kept for log π."""
        self.unit_actions: list[np.ndarray] = []

        @torch.no_grad()
        def act(obs: np.ndarray) -> np.ndarray:
            mean = self.unit_mean(torch.tensor(obs, dtype=torch.float32))
            unit = mean + self.config.std * torch.randn(mean.shape, generator=self.generator)
            self.unit_actions.append(unit.numpy())
            return self.policy.scaler(unit.clamp(-1.0, 1.0)).numpy()

        return act

    def deterministic_policy(self) -> Callable[[np.ndarray], np.ndarray]:
        @torch.no_grad()
        def act(obs: np.ndarray) -> np.ndarray:
            return self.policy(torch.tensor(obs, dtype=torch.float32)).numpy()

        return act

    # ----- learning ------------------------------------------------------------------------------------

    def fit_critic(self, episodes: list[Episode]) -> float:
        """Regress V(s) on discounted Monte Carlo returns of ``episodes``; the final loss."""
        obs, targets = [], []
        for ep in episodes:
            states, rewards, terminated = episode_tensors(ep)
            bootstrap = self.value(ep.observations[-1:])[0] * (1.0 - terminated[-1])
            targets.append(discounted_returns(rewards, terminated, self.config.gamma, bootstrap))
            obs.append(states)
        x, y = self.normalizer(torch.cat(obs)), torch.cat(targets) / self.config.value_scale
        for _ in range(self.config.critic_epochs):
            loss = value_loss(self.critic(x), y)
            self.critic_optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.critic.parameters(), self.config.max_grad_norm)
            self.critic_optimizer.step()
        return loss.item()

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> torch.Tensor:
        return self.critic(self.normalizer(torch.tensor(obs, dtype=torch.float32))) * self.config.value_scale

    def actor_update(self, episodes: list[Episode], unit_actions: list[np.ndarray]) -> tuple[float, float]:
        """``actor_steps`` A2C steps on ``episodes``, each backtracked into the trust region around the policy
        that collected them, then the drift bound; returns (KL, drift)."""
        c = self.config
        obs, actions, advantages = [], [], []
        for ep, units in zip(episodes, unit_actions, strict=True):
            states, rewards, terminated = episode_tensors(ep)
            values = self.value(ep.observations)
            advantages.append(gae_advantages(rewards, terminated, values[:-1], values[-1], c.gamma, c.gae_lambda))
            obs.append(states)
            actions.append(torch.as_tensor(np.asarray(units), dtype=torch.float32))
        x, a, adv = torch.cat(obs), torch.cat(actions), torch.cat(advantages)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        with torch.no_grad():
            old = self.distribution(x)
        kl = 0.0
        for _ in range(c.actor_steps):
            before = [p.detach().clone() for p in self.actor.parameters()]
            loss = policy_gradient_loss(self.distribution(x).log_prob(a).sum(-1), adv)
            self.actor_optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.trained_parameters(), c.max_grad_norm)
            self.actor_optimizer.step()
            kl = self._backtrack_to_trust_region(x, old, before)
        self.seen.extend(ep.observations for ep in episodes)
        drift = self._bound_drift()
        return kl, drift

    def _kl(self, x: torch.Tensor, old: torch.distributions.Normal) -> float:
        with torch.no_grad():
            return float(torch.distributions.kl_divergence(old, self.distribution(x)).sum(-1).mean())

    def _backtrack_to_trust_region(self, x: torch.Tensor, old: torch.distributions.Normal,
                                   before: list[torch.Tensor]) -> float:
        after = [p.detach().clone() for p in self.actor.parameters()]
        scale = 1.0
        kl = self._kl(x, old)
        for _ in range(10):
            if kl <= self.config.max_kl:
                return kl
            scale /= 2
            self._interpolate(before, after, scale)
            kl = self._kl(x, old)
        self._interpolate(before, after, 0.0)  # no step is small enough: back to where this step started
        return self._kl(x, old)

    @torch.no_grad()
    def _interpolate(self, start: list[torch.Tensor], end: list[torch.Tensor], t: float) -> None:
        for p, s, e in zip(self.actor.parameters(), start, end, strict=True):
            p.copy_(s + t * (e - s))

    def drift(self) -> float:
        """max over the recent states seen of |μθ(s) − μ₀(s)|, normalized action units."""
        return self._drift_on(self._seen_states()) if self.seen else 0.0

    def _seen_states(self) -> torch.Tensor:
        return self.normalizer(torch.as_tensor(np.concatenate(self.seen), dtype=torch.float32))

    @torch.no_grad()
    def _drift_on(self, x: torch.Tensor) -> float:
        return float((self.actor(x) - self.deployed(x)).abs().max())

    def _bound_drift(self) -> float:
        x = self._seen_states()
        drift = self._drift_on(x)
        if drift <= self.config.max_drift:
            return drift
        start = [p.detach().clone() for p in self.deployed.parameters()]
        end = [p.detach().clone() for p in self.actor.parameters()]
        low, high = 0.0, 1.0  # bisection on the share of the change from the deployed parameters kept
        for _ in range(12):
            mid = (low + high) / 2
            self._interpolate(start, end, mid)
            low, high = (mid, high) if self._drift_on(x) <= self.config.max_drift else (low, mid)
        self._interpolate(start, end, low)
        return self._drift_on(x)

    def trained_parameters(self) -> list[nn.Parameter]:
        """The actor parameters fine-tuning changes: all of them, or only the output layer's."""
        params = list(self.actor.parameters())
        return params[-2:] if self.config.train_output_layer_only else params

    def actor_state(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.actor.state_dict().items()}

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.actor.load_state_dict(state)
        self.actor_optimizer = torch.optim.Adam(self.trained_parameters(), lr=self.config.actor_lr)


def episode_tensors(ep: Episode) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An episode's states s_0..s_{T-1}, rewards and termination flags (only the last step can terminate)."""
    rewards = torch.as_tensor(ep.rewards, dtype=torch.float32)
    terminated = torch.zeros_like(rewards)
    terminated[-1] = float(ep.terminated)
    return torch.as_tensor(ep.observations[:-1], dtype=torch.float32), rewards, terminated


def check_policy_matches_checkpoint(policy_sha256: str, source: Path) -> None:
    if checkpoint_sha256(source) != policy_sha256:
        raise PolicyFileError(f"the policy was not exported from {source} (checkpoint hash differs); "
                              "fine-tuning must start from the checkpoint of the deployed policy")


@dataclass
class FinetuneResult:
    baseline: float  # the deployed policy's mean evaluation return on the robot
    best: float  # the kept policy's (the deployed one's unless another was clearly better)
    records: list[FinetuneRecord]
    improved: bool


def clearly_better(new: Sequence[float], old: Sequence[float], z: float) -> bool:
    """Whether returns ``new`` beat ``old`` by more than ``z`` standard errors of the difference of the means.

    Robot episodes start where they start, so two evaluations differ by their initial states as much as by
    their policies; picking the higher mean of a few episodes would keep lucky draws (a winner's curse).
    The test is Welch's: (mean_new − mean_old) / sqrt(s²_new/n + s²_old/m) > z; with z = 2 a policy that is
    no better passes about 2 % of the time.
    """
    new_a, old_a = np.asarray(new, dtype=np.float64), np.asarray(old, dtype=np.float64)
    if min(len(new_a), len(old_a)) < 2:
        raise ValueError("a comparison needs at least 2 returns on each side")
    diff = new_a.mean() - old_a.mean()
    standard_error = math.sqrt(new_a.var(ddof=1) / len(new_a) + old_a.var(ddof=1) / len(old_a))
    return bool(diff > z * standard_error)


def evaluate_on_robot(loop: ControlLoop, policy: Callable[[np.ndarray], np.ndarray], episodes: int) -> list[float]:
    return [loop.run_episode(policy).ret for _ in range(episodes)]


def finetune(loop: ControlLoop, learner_obj: object, state: dict, config: FinetuneConfig, out_dir: Path,
             report: Callable[[FinetuneRecord], None] = lambda r: None) -> FinetuneResult:
    """Fine-tune on the robot behind ``loop``; writes out_dir/finetune.csv after every episode, and checkpoint.pt
    and policy.onnx each time an evaluation is clearly better than the deployed policy's and the best so far."""
    learner = CautiousA2C(learner_obj.policy(), config)
    records: list[FinetuneRecord] = []

    def log(record: FinetuneRecord) -> None:
        records.append(record)
        report(record)
        write_records(records, out_dir / "finetune.csv")  # a crash or Ctrl-C keeps what happened so far

    baseline = best = evaluate_on_robot(loop, learner.deterministic_policy(), config.baseline_episodes)
    log(FinetuneRecord(0, "baseline", float(np.mean(baseline)), float(np.std(baseline, ddof=1))))
    best_state, improved = learner.actor_state(), False
    batch: list[Episode] = []
    units: list[list[np.ndarray]] = []
    recent: deque[Episode] = deque(maxlen=config.critic_episodes)
    for episode in range(1, config.episodes + 1):
        act = learner.exploring_policy()
        ep = loop.run_episode(act)
        recent.append(ep)
        learner.fit_critic(list(recent))  # the actor changes little per update: recent returns stay relevant
        kl = drift = math.nan
        if episode > config.warmup_episodes:
            batch.append(ep)
            units.append(learner.unit_actions)
        if len(batch) == config.episodes_per_update:
            kl, drift = learner.actor_update(batch, units)
            batch, units = [], []
        log(FinetuneRecord(episode, "explore", ep.ret, kl=kl, drift=drift))
        if episode > config.warmup_episodes and (episode - config.warmup_episodes) % config.eval_every == 0:
            returns = evaluate_on_robot(loop, learner.deterministic_policy(), config.eval_episodes)
            note = ""
            if clearly_better(returns, best, config.confidence_z) and clearly_better(returns, baseline,
                                                                                     config.confidence_z):
                best, best_state, note = returns, learner.actor_state(), "best, saved"
                save_finetuned(learner_obj, state, out_dir)
                improved = True
            elif clearly_better(best, returns, config.confidence_z):
                learner.restore(best_state)
                note = "rolled back"
            log(FinetuneRecord(episode, "eval", float(np.mean(returns)), float(np.std(returns, ddof=1)), note=note))
    learner.restore(best_state)
    return FinetuneResult(float(np.mean(baseline)), float(np.mean(best)), records, improved)


def save_finetuned(learner_obj: object, state: dict, out_dir: Path) -> None:
    """The fine-tuned learner as a checkpoint of the original's kind, then its verified ONNX."""
    new_state = dict(state, learner=learner_obj.state_dict())
    checkpoint.save(out_dir / checkpoint.CHECKPOINT_FILE, new_state)
    export_policy(out_dir / checkpoint.CHECKPOINT_FILE, out_dir / "policy.onnx")


def write_records(records: list[FinetuneRecord], path: Path) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["episode", "kind", "return", "return_std", "kl", "drift", "note"])
        for r in records:
            writer.writerow([r.episode, r.kind, f"{r.ret:.4f}", f"{r.ret_std:.4f}", f"{r.kl:.5f}", f"{r.drift:.4f}",
                             r.note])
