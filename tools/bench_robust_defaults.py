"""Which DDPG/TD3 options make learning robust across seeds? A baseline config against the same config with
``--variant`` options, on several tasks and seeds, every run to the same budget in this invocation.

Per task and seed: the final deterministic evaluation (the run's last, ``eval_episodes`` episodes) of each side;
then the mean over seeds, the worst seed, the seeds that collapsed (below half the side's mean) and the seeds at
or above the task's threshold (our tasks' solved return, a Gymnasium task's ``reward_threshold``, or
``--threshold``). Runs go ``--jobs`` at a time, each in its own process with one torch thread.

usage: python tools/bench_robust_defaults.py [--algo ddpg] [--envs robopg/CartPoleSwingUp-v0 ...]
           [--seeds 0 1 2 3 4] [--steps 30000] [--base KEY=VALUE ...] [--variant critic_layer_norm=false ...]
           [--jobs 2] [--out results.json]

Gymnasium's MuJoCo tasks need ``pip install -e ".[mujoco]"``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from robopg.settings import parse_assignments


def run_one(algo: str, env_id: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One training run in this process: its final and best evaluation and training seconds."""
    from robopg.registry import make_config
    from robopg.training.run import train

    config = make_config(algo, settings)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(env_id, config, Path(tmp) / "run", show_progress=False)
    return {"final": result.final_eval.mean, "best": result.best_eval.mean, "train_seconds": result.train_seconds}


def threshold_of(env_id: str, given: float | None) -> float | None:
    if given is not None:
        return given
    import gymnasium as gym

    import sim

    spec = sim.spec.task_spec(env_id) if env_id.startswith("robopg/") else None
    return spec.solved_return if spec is not None else gym.spec(env_id).reward_threshold


def summary(finals: list[float], threshold: float | None) -> str:
    mean = statistics.fmean(finals)
    collapsed = sum(f < 0.5 * mean for f in finals) if mean > 0 else 0
    solved = "" if threshold is None else f", {sum(f >= threshold for f in finals)}/{len(finals)} at {threshold:g}"
    return f"mean {mean:9.1f}, worst {min(finals):9.1f}, collapsed {collapsed}{solved}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", default="ddpg", choices=["ddpg", "td3"])
    parser.add_argument("--envs", nargs="+", default=["robopg/CartPoleSwingUp-v0"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--base", nargs="*", default=[], metavar="KEY=VALUE", help="settings of both sides")
    parser.add_argument("--variant", nargs="+", default=["critic_layer_norm=false"], metavar="KEY=VALUE",
                        help="settings of the variant only")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:  # one run, its settings as JSON
        job = json.loads(args.worker)
        print(json.dumps(run_one(job["algo"], job["env"], job["settings"])))
        return

    base = {"total_steps": args.steps, "checkpoint_every": args.steps, **parse_assignments(args.base, "--base")}
    sides = {"base": base, "variant": {**base, **parse_assignments(args.variant, "--variant")}}
    jobs = [(env, seed, side) for env in args.envs for seed in args.seeds for side in sides]

    def launch(job: tuple[str, int, str]) -> dict[str, Any]:
        env, seed, side = job
        spec = json.dumps({"algo": args.algo, "env": env, "settings": {**sides[side], "seed": seed}})
        out = subprocess.run([sys.executable, __file__, "--worker", spec], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"error: {side} run on {env}, seed {seed} failed:\n{out.stderr[-2000:]}")
        record = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{env} seed {seed} {side:7s}: final {record['final']:9.1f}, best {record['best']:9.1f} "
              f"({record['train_seconds']:.0f} s)", flush=True)
        return {"env": env, "seed": seed, "side": side, **record}

    print(f"{args.algo}, {args.steps} steps; both: {args.base or 'defaults'}; variant: {args.variant}")
    with ThreadPoolExecutor(args.jobs) as pool:
        records = list(pool.map(launch, jobs))
    for env in args.envs:
        threshold = threshold_of(env, args.threshold)
        print(f"\n{env}")
        for side in sides:
            finals = [r["final"] for r in records if r["env"] == env and r["side"] == side]
            print(f"  {side:7s}: {summary(finals, threshold)}; seeds {', '.join(f'{f:.1f}' for f in finals)}")
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "records": records}, indent=1))


if __name__ == "__main__":
    main()
