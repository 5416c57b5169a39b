"""robopg DDPG against Stable-Baselines3 DDPG: same env, nets, batch, learning rate, noise, warm-up,
updates per step and budget, both run here in the same invocation over several seeds.

Prints, per seed and as geometric means, the ratios robopg / SB3 of
  - training steps per second (evaluation time excluded on both sides),
  - wall-clock training time to the solve threshold (first deterministic evaluation at or above it),
  - final deterministic evaluation return.
Both sides are evaluated with the same function, episodes and seeds.

``--precision bfloat16`` runs robopg's updates with bf16 matrix products (``matmul_precision``): the same
networks, batch and updates, in cheaper arithmetic on a CPU with bf16 units. SB3 runs float32 as it ships.

usage: python tools/bench_ddpg_vs_sb3.py [--env ID] [--steps N] [--seeds 0 1 2] [--hidden 256,256]
                                         [--threads 1] [--precision float32] [--n-step 1] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMON = {"learning_rate": 1e-3, "batch_size": 256, "buffer_size": 200_000, "learning_starts": 2_000,
          "tau": 0.005, "gamma": 0.99, "noise_std": 0.2, "eval_every": 2_500, "eval_episodes": 5}


def run_robopg(env_id: str, steps: int, seed: int, hidden: list[int], threads: int, precision: str,
               n_step: int) -> dict:
    from robopg.registry import make_config
    from robopg.training.metrics import read_evaluations
    from robopg.training.run import train

    config = make_config("ddpg", {
        "total_steps": steps, "seed": seed, "actor_hidden": hidden, "critic_hidden": hidden,
        "actor_lr": COMMON["learning_rate"], "critic_lr": COMMON["learning_rate"], "torch_threads": threads,
        **{k: COMMON[k] for k in ("batch_size", "buffer_size", "learning_starts", "tau", "gamma", "noise_std",
                                  "eval_every", "eval_episodes")},
        "checkpoint_every": steps, "log_every": steps, "matmul_precision": precision, "n_step": n_step,
        "critic_layer_norm": False,  # SB3's critic has none: equal work
    })
    with tempfile.TemporaryDirectory() as tmp:
        result = train(env_id, config, Path(tmp) / "run", show_progress=False)
        evals = read_evaluations(Path(tmp) / "run")
    return {"train_seconds": result.train_seconds, "evals": evals, "final_return": result.final_eval.mean}


def run_sb3(env_id: str, steps: int, seed: int, hidden: list[int], threads: int, n_step: int) -> dict:
    import numpy as np
    import torch
    from stable_baselines3 import DDPG
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    from robopg.envs import make_env
    from robopg.evaluation import evaluate
    from robopg.training.loop import EVAL_SEED_OFFSET

    torch.set_num_threads(threads)
    env, eval_env = make_env(env_id), make_env(env_id)
    act_dim = env.action_space.shape[0]
    model = DDPG(
        "MlpPolicy", env, learning_rate=COMMON["learning_rate"], buffer_size=COMMON["buffer_size"],
        learning_starts=COMMON["learning_starts"], batch_size=COMMON["batch_size"], tau=COMMON["tau"],
        gamma=COMMON["gamma"], train_freq=1, gradient_steps=1, n_steps=n_step,
        action_noise=NormalActionNoise(np.zeros(act_dim), COMMON["noise_std"] * np.ones(act_dim)),
        policy_kwargs={"net_arch": hidden}, seed=seed, device="cpu",
    )

    class Evaluations(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.evals: list[tuple[int, float, float]] = []
            self.started = time.perf_counter()
            self.eval_seconds = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps % COMMON["eval_every"] == 0 or self.num_timesteps == steps:
                t = time.perf_counter()
                result = evaluate(lambda obs: model.predict(obs, deterministic=True)[0], eval_env,
                                  COMMON["eval_episodes"], seed=seed + EVAL_SEED_OFFSET)
                self.eval_seconds += time.perf_counter() - t
                self.evals.append((self.num_timesteps, time.perf_counter() - self.started - self.eval_seconds,
                                   result.mean))
            return True

    callback = Evaluations()
    model.learn(steps, callback=callback)
    train_seconds = time.perf_counter() - callback.started - callback.eval_seconds
    return {"train_seconds": train_seconds, "evals": callback.evals, "final_return": callback.evals[-1][2]}


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="robopg/CartPoleSwingUp-v0")
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                        help="robopg's matmul_precision")
    parser.add_argument("--threshold", type=float, default=None, help="default: the task's solved_return")
    parser.add_argument("--n-step", type=int, default=1,
                        help="n-step critic targets on both sides (default 1, SB3's; robopg's DDPG defaults to 3)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", choices=["robopg", "sb3"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    hidden = [int(h) for h in args.hidden.split(",")]

    if args.worker:  # one training run in its own process, so neither side inherits the other's state
        record = (run_robopg(args.env, args.steps, args.seed, hidden, args.threads, args.precision, args.n_step)
                  if args.worker == "robopg"
                  else run_sb3(args.env, args.steps, args.seed, hidden, args.threads, args.n_step))
        print(json.dumps(record))
        return

    import sim
    from robopg.training.metrics import first_reaching

    threshold = args.threshold if args.threshold is not None else sim.spec.task_spec(args.env).solved_return
    print(f"env {args.env}, {args.steps} steps, nets {hidden}, batch {COMMON['batch_size']}, 1 update/step, "
          f"{args.threads} torch thread(s), robopg matmul precision {args.precision}, {args.n_step}-step targets, "
          f"threshold {threshold}")
    results: dict[str, list[dict]] = {"robopg": [], "sb3": []}
    for seed in args.seeds:
        for side in ("robopg", "sb3"):
            out = subprocess.run(
                [sys.executable, __file__, "--worker", side, "--seed", str(seed), "--env", args.env,
                 "--steps", str(args.steps), "--hidden", args.hidden, "--threads", str(args.threads),
                 "--precision", args.precision, "--n-step", str(args.n_step)],
                capture_output=True, text=True, check=True,
            )
            record = json.loads(out.stdout.strip().splitlines()[-1])
            record["steps_per_s"] = args.steps / record["train_seconds"]
            reached = first_reaching(threshold, record["evals"])
            record["time_to_threshold"] = None if reached is None else reached[1]
            results[side].append(record)
            ttt = record["time_to_threshold"]
            print(f"seed {seed} {side:6s}: {record['steps_per_s']:7.1f} steps/s, time to threshold "
                  f"{'not reached' if ttt is None else f'{ttt:6.1f} s'}, final return {record['final_return']:8.2f}",
                  flush=True)

    speed = [r["steps_per_s"] / s["steps_per_s"] for r, s in zip(results["robopg"], results["sb3"], strict=True)]
    both = [(r["time_to_threshold"], s["time_to_threshold"]) for r, s in zip(results["robopg"], results["sb3"],
                                                                            strict=True)]
    solved_ratio = [r / s for r, s in both if r is not None and s is not None]
    returns = [(r["final_return"], s["final_return"]) for r, s in zip(results["robopg"], results["sb3"], strict=True)]
    print(f"steps/s ratio robopg/SB3: {geomean(speed):.2f}x (per seed {', '.join(f'{x:.2f}' for x in speed)})")
    print(f"time-to-threshold ratio robopg/SB3: {geomean(solved_ratio):.2f}x over {len(solved_ratio)} seed(s) "
          f"where both reached it; robopg reached it on {sum(r is not None for r, _ in both)}/{len(both)}, "
          f"SB3 on {sum(s is not None for _, s in both)}/{len(both)}")
    mean_robopg, mean_sb3 = (sum(side) / len(side) for side in zip(*returns, strict=True))
    print("final return robopg vs SB3: " + ", ".join(f"{r:.1f} vs {s:.1f}" for r, s in returns)
          + f" (means {mean_robopg:.1f} vs {mean_sb3:.1f})")
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "threshold": threshold,
                                        "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
