"""Self-imitation on a sparse reward: A2C against A2C+SIL, same seeds, budget and settings.

The sparse task pays 1 for a step whose dense reward reaches ``--level`` and 0 otherwise, so a policy
hears about success only once it has stumbled on it: the case SIL (Oh et al. 2018) was made for.
Evaluation uses the sparse reward. On the swing-up, level 0.2 asks for the pole swung at least 53°
from hanging (more when the cart is off centre, fast or pushing hard); 0.8 for it held near upright.

usage: python tools/bench_sil_sparse.py [--env ID] [--level 0.2] [--steps 300000] [--seeds 0 1 2 3 4]
                                        [--config tools/configs/a2c_swingup.toml]

``--config`` gives both algorithms the same settings; its ``sil_*`` keys, if any, are SIL's alone.
"""

from __future__ import annotations

import argparse
import tempfile
import tomllib
from pathlib import Path

import gymnasium as gym
import numpy as np

from robopg.envs import make_env
from robopg.registry import make_config
from robopg.training.run import train

SPARSE_ID = "SparseTask-v0"


class SparseReward(gym.RewardWrapper):
    """1 when the wrapped task's reward reaches ``level``, else 0."""

    def __init__(self, env: gym.Env, level: float) -> None:
        super().__init__(env)
        self.level = level

    def reward(self, reward: float) -> float:
        return float(reward >= self.level)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="robopg/CartPoleSwingUp-v0")
    parser.add_argument("--level", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--config", type=Path, default=Path(__file__).parent / "configs" / "a2c_swingup.toml",
                        help="TOML settings shared by both algorithms")
    args = parser.parse_args()
    gym.register(SPARSE_ID, entry_point=lambda: SparseReward(make_env(args.env), args.level))

    settings = tomllib.loads(args.config.read_text())
    shared = {key: value for key, value in settings.items() if not key.startswith("sil_")}
    results: dict[str, list[float]] = {"a2c": [], "a2c_sil": []}
    print(f"sparse {args.env} (reward 1 when dense >= {args.level}), {args.steps} steps per run, "
          f"settings {args.config}")
    for seed in args.seeds:
        for algo in results:
            overrides = {"total_steps": args.steps, "seed": seed, "eval_every": args.steps,
                         "log_every": args.steps, "checkpoint_every": args.steps, "eval_episodes": 10}
            config = make_config(algo, {**(settings if algo == "a2c_sil" else shared), **overrides})
            with tempfile.TemporaryDirectory() as tmp:
                result = train(SPARSE_ID, config, Path(tmp) / "run", show_progress=False)
            results[algo].append(result.final_eval.mean)
            print(f"seed {seed} {algo:8s}: final sparse return {result.final_eval}", flush=True)
    for algo, returns in results.items():
        print(f"{algo:8s} mean over seeds {np.mean(returns):7.2f} (per seed {', '.join(f'{r:.1f}' for r in returns)})")
    wins = sum(s > a for s, a in zip(results["a2c_sil"], results["a2c"], strict=True))
    print(f"A2C+SIL beat A2C on {wins}/{len(args.seeds)} seeds")


if __name__ == "__main__":
    main()
