"""The fine-tuning session's training on the twin, its runs one after the other (twin_jobs = 1) against side by
side (twin_jobs = N): wall clock of each in one invocation, their ratio, and whether they found the same.

    python tools/bench_twin_jobs.py --run RUN [--twin action_latency_steps=3 actuator_gain=0.95:1.05] [--jobs 2]
        [--out runs/bench_twin_jobs]

RUN is a training run folder (its resume.pt: `robopg train-sim --out RUN`); the session's defaults otherwise
(`FinetuneConfig`: 10,000 steps of the run continued, two runs anew for the run's own steps, evaluations every
1,000 steps on 10 twin episodes, the best snapshots confirmed on 30 fresh ones).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from robopg.checkpoint import RESUME_FILE
from robopg.finetune.session import FinetuneConfig, train_on_session_twin
from sim.randomization import parse_randomize


def timed(run: Path, twin: dict, jobs: int, out: Path) -> tuple[float, str]:
    """The session's training on the twin with ``twin_jobs = jobs`` in a fresh ``out``: seconds, summary."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    found = train_on_session_twin(FinetuneConfig(twin_jobs=jobs), run / RESUME_FILE, twin, 0, out)
    return time.perf_counter() - started, found.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a training run folder (with its resume.pt)")
    parser.add_argument("--twin", nargs="+", default=["action_latency_steps=3", "actuator_gain=0.95:1.05"],
                        metavar="KEY=LOW:HIGH", help="the twin's dynamics, as identify writes them")
    parser.add_argument("--jobs", type=int, default=2, help="twin_jobs of the side-by-side session")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_twin_jobs"))
    args = parser.parse_args()
    if not (args.run / RESUME_FILE).is_file():
        parser.error(f"--run {args.run}: no {RESUME_FILE} there (a folder `robopg train-sim --out` wrote)")
    if args.jobs < 2:
        parser.error("--jobs must be at least 2 (1 is the session it is compared with)")
    twin = parse_randomize(args.twin)
    alone, alone_found = timed(args.run, twin, 1, args.out / "jobs1")
    print(f"twin_jobs 1: {alone:.1f} s; {alone_found}", flush=True)
    beside, beside_found = timed(args.run, twin, args.jobs, args.out / f"jobs{args.jobs}")
    print(f"twin_jobs {args.jobs}: {beside:.1f} s; {beside_found}", flush=True)
    print(f"side by side: {alone / beside:.2f}x less wall clock; the same results: {alone_found == beside_found}")


if __name__ == "__main__":
    main()
