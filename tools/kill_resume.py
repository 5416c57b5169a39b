"""Kill ``robopg train-sim`` at random moments and resume it each time: does every resume succeed, and are the final
weights those of an uninterrupted run?

For each algorithm, one uninterrupted run is the reference. Then the same run is started and killed (SIGKILL,
at a random moment: once the launch has written its first checkpoint, uniform over the training's time shared
among the kills left) and resumed with ``--resume``, again and again, until ``--kills`` kills have landed or it
finishes first; then it is resumed to the end. Each launch's start-up is waited for on its own, up to its first
checkpoint (which falls after its first update: after A3C's worker processes have started), so that neither a
machine slowed by other work nor a slow start-up makes every kill land before training. A run left
without a checkpoint (no launch got that far) is started afresh (counted). Every ``--resume`` must either
finish or be killed by the tool; any other exit is a failure. The final ``checkpoint.pt`` learner tensors are
compared with the reference's, bit for bit. A progress line goes to stderr every 10 kills.

DDPG and A2C are deterministic on one thread and their checkpoints hold everything a run goes on from (A2C's
simulators' episodes in flight too), so their weights must match exactly; so must A3C's when its local workers
take turns (``a3c-turns``). Racing A3C workers (``a3c``) make two uninterrupted runs differ too, so for them the
tool reports the largest difference and only requires the resumes to succeed.

    python -m tools.kill_resume [--algos ddpg a2c a3c a3c-turns] [--kills 100] [--steps 4000] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

ENV = "Pendulum-v1"
# Small networks and frequent checkpoints (every 200 steps, and every 0.5 s of training): kills land between
# checkpoints as often as at them.
A3C = "rollout_steps = 10\nworkers = 2\nactor_hidden = [32]\ncritic_hidden = [32]\n"
CONFIGS = {  # what the tool calls a run: (algorithm, its config)
    "ddpg": ("ddpg", "learning_starts = 200\nbatch_size = 32\nactor_hidden = [32]\ncritic_hidden = [32]\n"),
    "a2c": ("a2c", "rollout_steps = 10\nnum_envs = 2\nactor_hidden = [32]\ncritic_hidden = [32]\n"),
    "a3c": ("a3c", A3C),
    "a3c-turns": ("a3c", A3C + "take_turns = true\n"),
}
COMMON = "eval_every = 100000\neval_episodes = 1\nlog_every = 200\ncheckpoint_every = 200\ncheckpoint_seconds = 0.5\n"
EXACT = {"ddpg", "a2c", "a3c-turns"}


@dataclass
class KillReport:
    algo: str
    kills: int
    resumes: int
    fresh_starts: int  # launches with nothing to resume (no checkpoint yet)
    failures: list[str]  # resumes that ended on their own with an error
    max_weight_difference: float  # against the uninterrupted run; 0.0: bit-identical
    exact: bool  # whether the algorithm's weights must be bit-identical
    seconds: float


def train_command(algo: str, config: Path, run_dir: Path, steps: int, seed: int, resume: bool) -> list[str]:
    command = [sys.executable, "-m", "robopg.cli", "train-sim", "--quiet"]
    if resume:
        return [*command, "--resume", str(run_dir)]
    return [*command, "--env", ENV, "--algo", CONFIGS[algo][0], "--config", str(config), "--steps", str(steps),
            "--seed", str(seed), "--out", str(run_dir)]


def learner_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)["learner"]
    flat: dict[str, torch.Tensor] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, torch.Tensor):
            flat[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)

    walk("learner", state)
    return flat


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    if a.keys() != b.keys():
        return float("inf")
    return max((float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a),
               default=0.0)


def checkpoint_written(run_dir: Path) -> int | None:
    """When the run's ``resume.pt`` was last written (ns), ``None`` before it exists."""
    try:
        return (run_dir / "resume.pt").stat().st_mtime_ns
    except FileNotFoundError:
        return None


def wait_for_training(proc: subprocess.Popen, run_dir: Path, before: int | None) -> None:
    """Until the launched run has written its first checkpoint (``resume.pt`` anew) or ended."""
    while checkpoint_written(run_dir) == before and proc.poll() is None:
        time.sleep(0.02)


def kill_and_resume(algo: str, kills: int, steps: int, seed: int, root: Path) -> KillReport:
    config = root / f"{algo}.toml"
    config.write_text(CONFIGS[algo][1] + COMMON)
    started = time.monotonic()
    reference = root / f"{algo}-whole"
    proc = subprocess.Popen(train_command(algo, config, reference, steps, seed, False), stdout=subprocess.DEVNULL)
    wait_for_training(proc, reference, None)
    training_started = time.monotonic()
    if proc.wait() != 0:
        raise RuntimeError(f"the uninterrupted {algo} run failed")
    training_seconds = time.monotonic() - training_started
    rng = np.random.default_rng(seed)
    run_dir = root / f"{algo}-killed"
    landed = resumes = fresh = 0
    failures: list[str] = []
    while True:
        resume = (run_dir / "resume.pt").exists()
        if not resume and landed:
            fresh += 1
        resumes += resume
        before = checkpoint_written(run_dir)
        proc = subprocess.Popen(train_command(algo, config, run_dir, steps, seed, resume),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if landed < kills:  # after the start-up, the kills left spread over about the training's time
            wait_for_training(proc, run_dir, before)
            try:
                proc.wait(timeout=rng.uniform(0, training_seconds / (kills - landed + 1)))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                landed += 1
                if landed % 10 == 0:  # so that a long run shows how far it got
                    print(f"{algo}: {landed} kills, {resumes} resumes, {fresh} fresh starts, "
                          f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
                continue
        _, stderr = proc.communicate()
        if proc.returncode == 0:
            break
        failures.append(stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {proc.returncode}")
        if len(failures) > 3:
            break
    difference = max_difference(learner_tensors(reference), learner_tensors(run_dir)) if not failures else float(
        "nan")
    return KillReport(algo, landed, resumes, fresh, failures, difference, algo in EXACT, time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=["ddpg", "a2c", "a3c"], choices=sorted(CONFIGS))
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object per algorithm instead of text")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        for algo in args.algos:
            report = kill_and_resume(algo, args.kills, args.steps, args.seed, Path(folder))
            failed |= bool(report.failures) or (report.exact and report.max_weight_difference != 0.0)
            if args.json:
                print(json.dumps(asdict(report)), flush=True)
                continue
            print(f"{algo}: {report.kills} kills, {report.resumes} resumes, {report.fresh_starts} fresh starts, "
                  f"{len(report.failures)} failed resumes{': ' + report.failures[0] if report.failures else ''}; "
                  f"final weights {'bit-identical to' if report.max_weight_difference == 0 else 'differ from'} an "
                  f"uninterrupted run's (largest difference {report.max_weight_difference:.3g}) in "
                  f"{report.seconds:.0f} s", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
