"""robopg DDPG against Stable-Baselines3 DDPG: same env, nets, batch, learning rate, noise, warm-up,
updates per step and budget, both run here in the same invocation over several seeds.

Prints, per seed and as geometric means, the ratios robopg / SB3 of
  - training steps per second (evaluation time excluded on both sides),
  - wall-clock training time to the solve threshold (first deterministic evaluation at or above it),
  - final deterministic evaluation return.
Both sides are evaluated with the same function, episodes and seeds.

``--precision bfloat16`` runs robopg's updates with bf16 matrix products (``matmul_precision``): the same
networks, batch and updates, in cheaper arithmetic on a CPU with bf16 units. SB3 runs float32 as it ships.

``--zoo`` compares what each side's user gets on Gymnasium's MuJoCo tasks instead of equal work: SB3 with
rl-baselines3-zoo's published hyperparameters for them (``hyperparams/ddpg.yml``, ``HalfCheetah-v4:
&mujoco-defaults``), robopg with the same networks, batch, replay, learning rate, warm-up, noise and updates
per step and its own defaults otherwise (3-step targets, a layer-normalized critic, observation
normalization); the threshold is the zoo's published score for the task.

usage: python tools/bench_ddpg_vs_sb3.py [--env ID] [--steps N] [--seeds 0 1 2] [--hidden 256,256]
                                         [--threads 1] [--precision float32] [--n-step 1] [--zoo]
                                         [--out results.json]
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
# rl-baselines3-zoo's hyperparameters for DDPG and TD3 on the MuJoCo tasks (net_arch [400, 300], the rest SB3's
# defaults: tau 0.005, gamma 0.99, a replay of 1M).
ZOO_MUJOCO = COMMON | {"buffer_size": 1_000_000, "learning_starts": 10_000, "noise_std": 0.1}
# The zoo's published scores at 1M steps (benchmark.md, TD3 on the v3 tasks: it publishes none for DDPG there).
ZOO_SCORES = {"HalfCheetah": 9655.7, "Hopper": 3606.4, "Walker2d": 4717.8, "Ant": 5813.3, "Swimmer": 359.1}


def zoo_score(env_id: str) -> float:
    """The zoo's published score for ``env_id``'s task (any version), or a clear exit if it has none."""
    name = env_id.split("-v")[0]
    if name not in ZOO_SCORES:
        raise SystemExit(f"--zoo: no published zoo score for {env_id}; tasks: {', '.join(ZOO_SCORES)} "
                         "(or give --threshold)")
    return ZOO_SCORES[name]


def run_robopg(env_id: str, steps: int, seed: int, hidden: list[int], threads: int, precision: str,
               n_step: int, zoo: bool) -> dict:
    from robopg.registry import make_config
    from robopg.training.metrics import read_evaluations
    from robopg.training.run import train

    common = ZOO_MUJOCO if zoo else COMMON
    # Equal work leaves out what SB3 has not (its critic has no normalization); the zoo comparison keeps
    # robopg's own defaults for both.
    equal_work = {} if zoo else {"n_step": n_step, "critic_layer_norm": False}
    config = make_config("ddpg", {
        "total_steps": steps, "seed": seed, "actor_hidden": hidden, "critic_hidden": hidden,
        "actor_lr": common["learning_rate"], "critic_lr": common["learning_rate"], "torch_threads": threads,
        **{k: common[k] for k in ("batch_size", "buffer_size", "learning_starts", "tau", "gamma", "noise_std",
                                  "eval_every", "eval_episodes")},
        "checkpoint_every": steps, "log_every": steps, "matmul_precision": precision, **equal_work,
    })
    with tempfile.TemporaryDirectory() as tmp:
        result = train(env_id, config, Path(tmp) / "run", show_progress=False)
        evals = read_evaluations(Path(tmp) / "run")
    return {"train_seconds": result.train_seconds, "evals": evals, "final_return": result.final_eval.mean}


def run_sb3(env_id: str, steps: int, seed: int, hidden: list[int], threads: int, n_step: int, zoo: bool) -> dict:
    import numpy as np
    import torch
    from stable_baselines3 import DDPG
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    from robopg.envs import make_env
    from robopg.evaluation import evaluate
    from robopg.training.loop import EVAL_SEED_OFFSET

    torch.set_num_threads(threads)
    common = ZOO_MUJOCO if zoo else COMMON
    env, eval_env = make_env(env_id), make_env(env_id)
    act_dim = env.action_space.shape[0]
    model = DDPG(
        "MlpPolicy", env, learning_rate=common["learning_rate"], buffer_size=common["buffer_size"],
        learning_starts=common["learning_starts"], batch_size=common["batch_size"], tau=common["tau"],
        gamma=common["gamma"], train_freq=1, gradient_steps=1, n_steps=n_step,
        action_noise=NormalActionNoise(np.zeros(act_dim), common["noise_std"] * np.ones(act_dim)),
        policy_kwargs={"net_arch": hidden}, seed=seed, device="cpu",
    )

    class Evaluations(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.evals: list[tuple[int, float, float]] = []
            self.started = time.perf_counter()
            self.eval_seconds = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps % common["eval_every"] == 0 or self.num_timesteps == steps:
                t = time.perf_counter()
                result = evaluate(lambda obs: model.predict(obs, deterministic=True)[0], eval_env,
                                  common["eval_episodes"], seed=seed + EVAL_SEED_OFFSET)
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
    parser.add_argument("--hidden", default=None, help="default 256,256; 400,300 with --zoo")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                        help="robopg's matmul_precision")
    parser.add_argument("--threshold", type=float, default=None, help="default: the task's solved_return")
    parser.add_argument("--n-step", type=int, default=1,
                        help="n-step critic targets on both sides (default 1, SB3's; robopg's DDPG defaults to 3); "
                             "with --zoo SB3's only, robopg at its default")
    parser.add_argument("--zoo", action="store_true",
                        help="SB3 with the zoo's MuJoCo hyperparameters, robopg with its own defaults besides them")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", choices=["robopg", "sb3"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.hidden = args.hidden or ("400,300" if args.zoo else "256,256")
    hidden = [int(h) for h in args.hidden.split(",")]

    if args.worker:  # one training run in its own process, so neither side inherits the other's state
        record = (run_robopg(args.env, args.steps, args.seed, hidden, args.threads, args.precision, args.n_step,
                             args.zoo)
                  if args.worker == "robopg"
                  else run_sb3(args.env, args.steps, args.seed, hidden, args.threads, args.n_step, args.zoo))
        print(json.dumps(record))
        return

    import sim
    from robopg.training.metrics import first_reaching

    if args.threshold is not None:
        threshold = args.threshold
    else:
        threshold = zoo_score(args.env) if args.zoo else sim.spec.task_spec(args.env).solved_return
    common = ZOO_MUJOCO if args.zoo else COMMON
    settings = (f"zoo's hyperparameters (warm-up {common['learning_starts']}, noise {common['noise_std']}, "
                f"replay {common['buffer_size']}), robopg's defaults otherwise" if args.zoo
                else f"{args.n_step}-step targets")
    print(f"env {args.env}, {args.steps} steps, nets {hidden}, batch {common['batch_size']}, 1 update/step, "
          f"{args.threads} torch thread(s), robopg matmul precision {args.precision}, {settings}, "
          f"threshold {threshold}")
    results: dict[str, list[dict]] = {"robopg": [], "sb3": []}
    for seed in args.seeds:
        for side in ("robopg", "sb3"):
            out = subprocess.run(
                [sys.executable, __file__, "--worker", side, "--seed", str(seed), "--env", args.env,
                 "--steps", str(args.steps), "--hidden", args.hidden, "--threads", str(args.threads),
                 "--precision", args.precision, "--n-step", str(args.n_step), *(["--zoo"] if args.zoo else [])],
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
    for side, mean in (("robopg", mean_robopg), ("SB3", mean_sb3)):
        collapsed = [seed for seed, record in zip(args.seeds, results[side.lower()], strict=True)
                     if record["final_return"] < 0.5 * mean]
        print(f"{side}: seeds below half its mean final return: {collapsed or 'none'}")
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "threshold": threshold,
                                        "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
