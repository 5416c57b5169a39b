"""The bias/variance trade-off of policy-gradient estimators, measured at one policy.

Loads the Gaussian policy and value function of an A2C run (or trains one briefly), then draws B
independent batches of M whole episodes from that same policy and computes on each batch the policy
gradient ∇θJ = 1/M Σ_i Σ_t ∇θ log πθ(a_t|s_t) ψ_t of each estimator ψ:

    return        R(τ)                      REINFORCE
    baseline      R(τ) − mean R             REINFORCE with a mean-return baseline
    reward_to_go  Σ_{k≥t} γ^(k−t) r_k        REINFORCE with causality
    nstep         n-step return − V(s_t)     A2C, n = 5
    gae           GAE(λ = 0.95)
    td            r + γV(s') − V(s)          GAE(λ = 0)

Prints, per estimator, the total variance across batches (the trace of the gradients' covariance),
its ratio to reward-to-go's, and a bias proxy: the distance of its mean gradient from the mean of the
unbiased reward-to-go estimate, relative to that mean's norm.

usage: python tools/bench_gradient_variance.py [--env ID] [--run A2C_RUN_DIR | --train-steps N]
                                               [--batches 30] [--episodes 4]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from robopg import checkpoint
from robopg.algos.a2c import A2C, A2CConfig
from robopg.algos.reinforce import reinforce_psi
from robopg.core.buffers import Episode
from robopg.core.returns import gae_advantages, n_step_returns
from robopg.envs import make_env
from robopg.registry import config_from_dict, make_config
from robopg.training.rollouts import sample_episodes
from robopg.training.run import train


def load_a2c(run_dir: Path) -> A2C:
    state = checkpoint.load(run_dir)
    config = config_from_dict(state["config"])
    if not isinstance(config, A2CConfig):
        raise SystemExit(f"{run_dir} is a {state['algo']} run; this tool needs an A2C run (policy and V)")
    learner = A2C(config, state["obs_dim"], state["action_low"].numpy(), state["action_high"].numpy(),
                  torch.Generator().manual_seed(0))
    learner.load_state_dict(state["learner"])
    return learner


def critic_psi(episodes: list[Episode], learner: A2C, gamma: float, kind: str) -> list[torch.Tensor]:
    """Advantage estimates over whole episodes: the episode's end is its end (no bootstrap)."""
    out = []
    with torch.no_grad():
        for e in episodes:
            values = learner.value(e.obs)
            dones = torch.zeros_like(e.rewards)
            dones[-1] = 1.0
            last = torch.zeros(())
            if kind == "nstep":
                out.append(n_step_returns(e.rewards, dones, values, last, gamma, 5) - values)
            else:
                out.append(gae_advantages(e.rewards, dones, values, last, gamma, 0.95 if kind == "gae" else 0.0))
    return out


def gradient(learner: A2C, episodes: list[Episode], psi: list[torch.Tensor]) -> torch.Tensor:
    obs = torch.cat([e.obs for e in episodes])
    log_prob = learner.pi.log_prob(obs, torch.cat([e.actions for e in episodes]))
    surrogate = (log_prob * torch.cat(psi)).sum() / len(episodes)
    grads = torch.autograd.grad(surrogate, list(learner.pi.parameters()))
    return torch.cat([g.flatten() for g in grads])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="robopg/CartPoleSwingUp-v0")
    parser.add_argument("--run", type=Path, help="an A2C run folder; default: train one for --train-steps")
    parser.add_argument("--train-steps", type=int, default=30_000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run
        if run_dir is None:
            run_dir = Path(tmp) / "a2c"
            config = make_config("a2c", {"total_steps": args.train_steps, "seed": args.seed, "log_every": 10_000,
                                         "eval_every": args.train_steps, "checkpoint_every": args.train_steps})
            print(f"training A2C on {args.env} for {args.train_steps} steps to get a policy and V ...", flush=True)
            train(args.env, config, run_dir, show_progress=False)
        learner = load_a2c(run_dir)
        env_id = checkpoint.load(run_dir)["env_id"]
    gamma = learner.config.gamma
    envs = [make_env(env_id) for _ in range(args.episodes)]
    learner.generator.manual_seed(args.seed)
    estimators = ("return", "baseline", "reward_to_go", "nstep", "gae", "td")
    samples: dict[str, list[torch.Tensor]] = {name: [] for name in estimators}
    for batch in range(args.batches):
        episodes, _, _ = sample_episodes(envs, learner, first_seed=10_000 + batch * args.episodes)
        for name in estimators:
            psi = (reinforce_psi(episodes, name, gamma) if name in ("return", "baseline", "reward_to_go")
                   else critic_psi(episodes, learner, gamma, name))
            samples[name].append(gradient(learner, episodes, psi))

    stacked = {name: torch.stack(grads) for name, grads in samples.items()}
    reference_mean = stacked["reward_to_go"].mean(0)
    reference_var = stacked["reward_to_go"].var(0).sum()
    print(f"{env_id}: {args.batches} batches of {args.episodes} episodes from one policy, γ = {gamma}, "
          f"{reference_mean.numel()} policy parameters")
    print(f"{'estimator':14s} {'total variance':>15s} {'vs reward-to-go':>16s} {'bias proxy':>11s}")
    for name, grads in stacked.items():
        variance = grads.var(0).sum()
        bias = (grads.mean(0) - reference_mean).norm() / reference_mean.norm()
        print(f"{name:14s} {variance.item():15.4g} {(variance / reference_var).item():15.3f}x {bias.item():11.3f}")


if __name__ == "__main__":
    main()
