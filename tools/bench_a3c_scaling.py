"""A3C scaling on this machine: environment steps per second and time to the solve threshold with 1 and
2 local workers (same total budget and settings), and the Ray backend against the local one at 2.

usage: python tools/bench_a3c_scaling.py [--env ID] [--steps 200000] [--seed 0] [--no-ray]
(``--steps 40000``: a quick run, about a minute a case; the threshold is then not reached, the rates compare.)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from robopg.registry import make_config
from robopg.training.metrics import first_reaching, read_evaluations
from robopg.training.run import train
from sim.spec import task_spec


def run(env_id: str, steps: int, seed: int, workers: int, backend: str) -> tuple[float, float | None, float]:
    """Steps/s, training seconds to the threshold (or None), final return."""
    config = make_config("a3c", {"total_steps": steps, "seed": seed, "workers": workers, "backend": backend,
                                 "eval_every": max(steps // 20, 1), "log_every": max(steps // 20, 1),
                                 "checkpoint_every": steps, "eval_episodes": 5})
    with tempfile.TemporaryDirectory() as tmp:
        result = train(env_id, config, Path(tmp) / "run", show_progress=False)
        reached = first_reaching(task_spec(env_id).solved_return, read_evaluations(Path(tmp) / "run"))
    return result.steps / result.train_seconds, None if reached is None else reached[1], result.final_eval.mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="robopg/CartPoleSwingUp-v0")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    cases = [(1, "local"), (2, "local")] + ([] if args.no_ray else [(2, "ray")])
    rates = {}
    for workers, backend in cases:
        rate, to_threshold, final = run(args.env, args.steps, args.seed, workers, backend)
        rates[(workers, backend)] = rate
        when = "not reached" if to_threshold is None else f"{to_threshold:.0f} s"
        print(f"{workers} worker(s), {backend:5s}: {rate:7.0f} steps/s, threshold {when}, final return {final:.1f}",
              flush=True)
    print(f"2 vs 1 local workers: {rates[(2, 'local')] / rates[(1, 'local')]:.2f}x steps/s")
    if (2, "ray") in rates:
        print(f"Ray vs local at 2 workers: {rates[(2, 'ray')] / rates[(2, 'local')]:.2f}x steps/s")


if __name__ == "__main__":
    main()
