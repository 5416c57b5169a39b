"""Does an algorithm solve a task within a budget? Trains several seeds and reports, per seed, the
final deterministic evaluation return, and the first step and training time at which an
evaluation reached the task's solve threshold.

usage: python tools/bench_solve.py --env ID --algo ALGO --steps N [--seeds 0 1 2]
                                   [--config FILE.toml] [--threshold R] [--out-root runs/solve]

Tuned settings for the swing-up: tools/configs/ (e.g. --algo a2c --config tools/configs/a2c_swingup.toml).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robopg.registry import load_config, make_config
from robopg.training.metrics import first_reaching, read_evaluations
from robopg.training.run import train
from sim.spec import task_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--algo", default="ddpg")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", type=Path)
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--out-root", type=Path, default=Path("runs/solve"))
    args = parser.parse_args()
    threshold = args.threshold if args.threshold is not None else task_spec(args.env).solved_return
    print(f"{args.algo} on {args.env}, budget {args.steps} steps, threshold {threshold}")
    solved = best_solved = 0
    for seed in args.seeds:
        overrides = {"total_steps": args.steps, "seed": seed}
        config = load_config(args.algo, args.config, overrides) if args.config else make_config(args.algo, overrides)
        run_dir = args.out_root / f"{args.algo}-{args.env.replace('/', '_')}-{args.steps}-s{seed}"
        result = train(args.env, config, run_dir, show_progress=False)
        reached = first_reaching(threshold, read_evaluations(run_dir))
        solved += result.final_eval.mean >= threshold
        best_solved += result.best_eval.mean >= threshold
        when = "never" if reached is None else f"step {reached[0]} after {reached[1]:.0f} s of training"
        print(f"seed {seed}: final return {result.final_eval}; best {result.best_eval.mean:.2f} at step "
              f"{result.best_step} ({run_dir / 'best.pt'}); threshold first reached {when}; "
              f"{result.steps / result.train_seconds:.0f} steps/s", flush=True)
    print(f"final evaluation >= {threshold} on {solved}/{len(args.seeds)} seeds; best.pt >= {threshold} on "
          f"{best_solved}/{len(args.seeds)}")


if __name__ == "__main__":
    main()
