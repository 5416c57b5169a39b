"""How much of a reality gap does `robopg finetune` recover, within how many robot episodes?

For each task and seed: a policy trained in simulation (nominal; the task's recipe below: DDPG on the swing-up,
TD3 on the reacher), and for each gap an oracle trained the same way (same recipe and budget, seed 0) on the
gapped simulator. Every return below is the mean over 20 fresh initial states of the gapped simulator, states
fine-tuning never saw:

  R_sim  the nominal policy in the nominal simulator;
  R0     the nominal policy on the gapped robot (what deploying it gives);
  R*     the oracle on the gapped robot;
  R*+    the nominal policy's own run continued on the exact gapped dynamics as training on the twin continues
         it on the identified ones (same steps, snapshot chosen and confirmed the same way): what the session's
         twin training would find with a perfect identification, a second reference where a from-scratch oracle
         is weaker than the nominal policy;
  R*h    on a gap with a latency of L steps, an oracle trained the same way with L steps of history in its input
         (its last observations and commands: the commands still in flight), as the session's run from scratch
         gets on a delayed twin: the stricter reference there;
  R1@k   the policy a fine-tuning session would keep if it stopped after k robot episodes in total
         (baseline, exploring and evaluation episodes alike): the deployed one unless one was saved;
  Rtwin  the session's run from scratch on the twin identified from its 10 baseline episodes, final policy:
         a policy trained on the identified dynamics at the oracle's budget, against the oracle.

The recovered fraction is (R1 − R0) / (R* − R0); a gap where R* − R0 is within two standard errors of the
difference has nothing to recover and is reported as such (n/a). The table gives it against R*+ and R*h as well.
The robot is the virtual robot in this process (``sim.virtual_robot.in_memory_robot``): the same plant, gap,
firmware state machine, serial protocol, host link, safety layer and control loop as ``robopg robot-sim`` +
``robopg finetune``, without the pty. Its command log is checked: 0 commands outside the limits or the rate
limit.

    python tools/bench_finetune.py [--envs ...] [--gaps latency gain mass friction noise] [--seeds 0 1 2]
        [--methods [cautious_ddpg cautious_a2c]] [--budget 50] [--out runs/bench_finetune]
        [--train-set critic_layer_norm=true]

Trained policies are kept in --out and reused by later runs. Results: --out/results.json and a table.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robopg import checkpoint
from robopg.checkpoint import restore
from robopg.core.nets import torch_policy_fn
from robopg.envs import make_env
from robopg.evaluation import EvalResult, evaluate
from robopg.export.to_onnx import metadata_for
from robopg.finetune import finetune, finetune_configs
from robopg.finetune.session import FinetuneConfig, PolicySnapshot
from robopg.finetune.twin import simulated_twin
from robopg.finetune.twin_training import FROM_SCRATCH, run_folder, train_on_twin
from robopg.registry import make_config
from robopg.runtime.deploy import ControlLoop, prepare_robot, robot_session, task_functions
from robopg.runtime.episode import PolicyFn
from robopg.runtime.safety import SafetyConfig, SafetyLayer
from robopg.training.run import train
from sim.virtual_robot import RobotSimConfig, in_memory_robot

GAPS: dict[str, dict[str, float]] = {
    "latency": {"action_latency_steps": 3},
    "gain": {"actuator_gain": 0.7},
    "mass": {"mass_scale": 1.5},
    "friction": {"friction_scale": 3.0, "damping_scale": 3.0},
    "noise": {},  # sensor_noise_std at 5 % of the observations' typical range, measured per task
}


@dataclass(frozen=True)
class Recipe:
    """How a task's nominal policy and its oracles are trained: algorithm, settings, steps."""

    algo: str
    steps: int
    settings: dict[str, Any]


# Swing-up: DDPG's defaults but for [64, 64] networks (four times cheaper updates) with layer normalization in
# the critic, which solved it at 30k steps on 5 of 5 seeds where without it seed 1 collapsed (docs/benchmarks.md).
# Reacher: TD3's defaults, which reached its threshold by 20k steps on 3 of 3 seeds (with bf16 products) where
# [64, 64] DDPG does not reach it at 30k; in float32, so that every CPU runs it (bf16 needs the CPU's bf16 units).
RECIPES = {
    "robopg/CartPoleSwingUp-v0": Recipe("ddpg", 30_000, {"actor_hidden": [64, 64], "critic_hidden": [64, 64],
                                                          "critic_layer_norm": True}),
    "robopg/Reacher2D-v0": Recipe("td3", 40_000, {}),
}
REFERENCES = (("Rstar", "R*"), ("Rstar_plus", "R*+"), ("Rstar_history", "R*h"))  # what R1 is a share of
EVAL_EVERY = 5000
EVAL_EPISODES = 20
EVAL_SEED = 50_000  # initial states of the independent evaluations: no training, robot or oracle episode has them
ROBOT_SEED = 20_000  # the robot's first episode's initial state; each later episode its own
TWIN_SEED = 90_000  # the simulated twin's first initial state
MAX_DELTA_SHARE = 0.4  # the rate limit of the safety layer: this share of the action range per step


def gapped_id(env_id: str, name: str, dynamics: dict[str, float]) -> str:
    """A Gymnasium id for ``env_id`` with fixed ``dynamics`` (registered on first use)."""
    gapped = f"bench/{env_id.split('/')[-1].removesuffix('-v0')}-{name}-v0"
    if gapped in gym.registry and gym.spec(gapped).kwargs["dynamics"] != dynamics:
        raise ValueError(f"{gapped} is registered with {gym.spec(gapped).kwargs['dynamics']}, not {dynamics}")
    if gapped not in gym.registry:
        spec = gym.spec(env_id)
        gym.register(gapped, entry_point=spec.entry_point, max_episode_steps=spec.max_episode_steps,
                     kwargs={**spec.kwargs, "dynamics": dynamics})
    return gapped


def trained_run(env_id: str, recipe: Recipe, seed: int, out: Path, randomize: tuple[str, ...] = (),
                name: str = "", history: int = 0, steps: int | None = None) -> Path:
    """A run of ``recipe`` on ``env_id`` (kept in ``out`` under ``name``, reused when it is there and finished;
    one killed before its end is trained again), with ``randomize``, ``history`` steps of history in the
    policy's input and ``steps`` instead of the recipe's."""
    steps = steps or recipe.steps
    run = out / f"{env_id.replace('/', '_')}{name}-s{seed}"
    if not finished(run, steps):
        shutil.rmtree(run, ignore_errors=True)
        config = make_config(recipe.algo, {**recipe.settings, "eval_every": EVAL_EVERY, "total_steps": steps,
                                           "seed": seed, "checkpoint_every": steps, "randomize": list(randomize),
                                           "history": history})
        started = time.perf_counter()
        train(env_id, config, run, show_progress=False)
        print(f"  trained {run.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return run


def finished(run: Path, steps: int) -> bool:
    """Whether ``run`` holds a run trained to ``steps`` (one killed before its end does not)."""
    last = run / checkpoint.CHECKPOINT_FILE
    return last.exists() and int(checkpoint.load(last)["step"]) >= steps


def independent_evaluation(act: PolicyFn, env_id: str, history: int = 0) -> EvalResult:
    """``act``'s episodes from the fresh initial states (``history``: the policy's, fed as in training)."""
    env = make_env(env_id, history=history)
    try:
        return evaluate(act, env, EVAL_EPISODES, EVAL_SEED)
    finally:
        env.close()


def independent_return(policy: torch.nn.Module, env_id: str, history: int = 0) -> tuple[float, float]:
    """Mean and standard error over the fresh initial states (``history``: the policy's, fed as in training)."""
    result = independent_evaluation(torch_policy_fn(policy.eval()), env_id, history)
    return result.mean, float(np.std(result.returns, ddof=1) / math.sqrt(EVAL_EPISODES))


def noise_gap(env_id: str, run: Path) -> dict[str, float]:
    """sensor_noise_std at 5 % of the median over observations of their typical range (5th to 95th
    percentile of the nominal policy's observations in simulation)."""
    policy = restore(run).policy()
    env = make_env(env_id)
    observations = []
    for episode in range(5):
        obs, _ = env.reset(seed=EVAL_SEED + 1000 + episode)
        done = False
        while not done:
            observations.append(obs)
            with torch.no_grad():
                action = policy(torch.as_tensor(obs)).numpy()
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    env.close()
    spread = np.percentile(observations, 95, axis=0) - np.percentile(observations, 5, axis=0)
    return {"sensor_noise_std": round(float(0.05 * np.median(spread)), 4)}


def continued_oracle(run: Path, dynamics: dict[str, float], gapped: str, out: Path) -> tuple[float, float]:
    """R*+: the run continued on the exact gapped dynamics with the session's twin-training defaults; the
    deployed policy where no snapshot is confirmed better."""
    defaults = FinetuneConfig()
    found = train_on_twin(run / checkpoint.RESUME_FILE, dynamics, defaults.twin_training_steps,
                          defaults.twin_eval_every, defaults.twin_eval_episodes, out, defaults.twin_confirm_episodes)
    restored = found.candidate or restore(run)
    return independent_return(restored.policy(), gapped, restored.history)


def fine_tune(env_id: str, gapped: str, run: Path, dynamics: dict[str, float], method: str, budget: int, seed: int,
              marks: list[int], scratch: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """One session on the in-memory robot; the kept policy's independent return at each mark."""
    restored = restore(run)
    deployed = PolicySnapshot(copy.deepcopy(restored.policy()), restored.history)
    meta = metadata_for(restored)
    link = in_memory_robot(RobotSimConfig(env_id, gap=dynamics, seed=ROBOT_SEED + 1000 * seed, watchdog_ms=250))
    core = link.transport.core
    half_range = (np.array(meta.action_high) - np.array(meta.action_low)) / 2
    max_delta = MAX_DELTA_SHARE * 2 * half_range
    safety_config = SafetyConfig(tuple(max_delta))
    safety = SafetyLayer(np.array(meta.action_low), np.array(meta.action_high), safety_config)
    session, method_config = finetune_configs({"episodes": budget, "seed": seed, **settings}, method)
    snapshots: list[tuple[int, PolicySnapshot | None, PolicySnapshot]] = []  # robot episodes, kept, current
    started = time.perf_counter()
    with prepare_robot(link, meta) as ready, robot_session(ready):
        loop = ControlLoop(ready, safety, task_functions(env_id), history=meta.history)
        result = finetune(loop, restored.learner, restored.state, session, method_config, scratch,
                          watch=lambda total, kept, current: snapshots.append((total, kept, current)),
                          twin=simulated_twin(meta, safety_config, TWIN_SEED + seed),
                          run_state=run / "resume.pt")
    seconds = time.perf_counter() - started
    at: dict[str, float] = {}
    learned: dict[str, float] = {}
    for mark in marks:
        kept, current = next(((k, c) for total, k, c in reversed(snapshots) if total <= mark), (None, deployed))
        for policy, into in ((kept or deployed, at), (current, learned)):
            into[str(mark)] = independent_return(policy.policy, gapped, policy.history)[0]
    # "learned": the learner's policy at that point, kept or not: what learning achieved before any decision.
    return {"R1": at, "learned": learned, "improved": result.improved, "seconds": seconds,
            "violations": limit_violations(core.log, meta.action_low, meta.action_high, max_delta),
            "R_twin_scratch": twin_scratch_return(scratch, gapped)}


def twin_scratch_return(scratch: Path, gapped: str) -> float | None:
    """The independent return of the session's run from scratch on the identified twin, its final policy as the
    oracle's (None when the session trained none): a policy trained on dynamics identified from the 10 baseline
    episodes, against the oracle trained on the true ones."""
    run = run_folder(scratch / "twin", FROM_SCRATCH)
    if not (run / checkpoint.CHECKPOINT_FILE).exists():
        return None
    restored = restore(run)
    return independent_return(restored.policy(), gapped, restored.history)[0]


def limit_violations(log: list, low: tuple[float, ...], high: tuple[float, ...], max_delta: np.ndarray) -> int:
    """Commands the robot applied outside the limits, or further than the rate limit from the previous action
    (each episode starts from the safe command after its RESET)."""
    count, previous = 0, None
    for command in log:
        applied = np.asarray(command.applied)
        count += int(np.any(applied < np.asarray(low) - 1e-6) or np.any(applied > np.asarray(high) + 1e-6))
        if command.cause == "action" and previous is not None:
            count += int(np.any(np.abs(applied - previous) > max_delta + 1e-5))
        previous = applied
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--gaps", nargs="+", default=list(GAPS), choices=list(GAPS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="*", default=["cautious_ddpg", "cautious_a2c"],
                        help="none: the policies and references only")
    parser.add_argument("--budget", type=int, default=50, help="robot episodes per session, all kinds counted")
    parser.add_argument("--marks", nargs="+", type=int, default=[10, 25, 50])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_finetune"))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="fine-tuning settings for every session (TOML values), e.g. eval_episodes=8")
    parser.add_argument("--tag", default="", help="a name for this variant in results.json and the table")
    parser.add_argument("--train-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="training settings of the nominal policies and the oracles (TOML values), e.g. "
                             "critic_layer_norm=true; give them their own --out, as trained policies are reused")
    args = parser.parse_args()
    settings = tomllib.loads("\n".join(args.set))
    extra = tomllib.loads("\n".join(args.train_set))
    recipes = {env_id: replace(recipe, settings={**recipe.settings, **extra}) for env_id, recipe in RECIPES.items()}
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for env_id in args.envs:
        for gap in args.gaps:
            # One noise level per task, from seed 0's policy: every seed's robot, oracle and evaluations share it.
            dynamics = GAPS[gap] or noise_gap(env_id, trained_run(env_id, recipes[env_id], 0, args.out / "policies"))
            gapped = gapped_id(env_id, gap, dynamics)
            oracle = trained_run(gapped, recipes[env_id], 0, args.out / "policies")
            for seed in args.seeds:
                nominal = trained_run(env_id, recipes[env_id], seed, args.out / "policies")
                key = f"{env_id}|{gap}|{seed}"
                folder = key.replace("/", "_").replace("|", "-")
                entry = results.setdefault(key, {"dynamics": dynamics})
                nominal_policy = restore(nominal).policy()
                entry["R_sim"] = independent_return(nominal_policy, env_id)[0]
                entry["R0"], entry["R0_se"] = independent_return(nominal_policy, gapped)
                entry["Rstar"], entry["Rstar_se"] = independent_return(restore(oracle).policy(), gapped)
                latency = int(dynamics.get("action_latency_steps", 0))
                if latency:
                    with_history = trained_run(gapped, recipes[env_id], 0, args.out / "policies", name=f"-h{latency}",
                                               history=latency)
                    entry["Rstar_history"], entry["Rstar_history_se"] = independent_return(
                        restore(with_history).policy(), gapped, latency)
                if "Rstar_plus" not in entry:
                    entry["Rstar_plus"], entry["Rstar_plus_se"] = continued_oracle(
                        nominal, dynamics, gapped, args.out / "continued" / folder)
                for method in args.methods:
                    name = method + (f"+{args.tag}" if args.tag else "")
                    scratch = args.out / "sessions" / f"{folder}-{name}"
                    scratch.mkdir(parents=True, exist_ok=True)
                    entry[name] = fine_tune(env_id, gapped, nominal, dynamics, method, args.budget, seed, args.marks,
                                            scratch, settings)
                    print(f"{key} {name}: {summary(entry, name, args.marks)}", flush=True)
                results_path.write_text(json.dumps(results, indent=1))
    methods = [m + (f"+{args.tag}" if args.tag else "") for m in args.methods] or sorted(
        {name for entry in results.values() for name, value in entry.items() if isinstance(value, dict)
         and "R1" in value})  # without --methods: every session in results.json
    print_table(results, methods, args.marks)


def recoverable(entry: dict[str, Any], reference: str = "Rstar") -> bool:
    """Whether ``reference`` (R* or R*+) is above R0 by more than two standard errors of the difference."""
    return entry[reference] - entry["R0"] > 2 * math.hypot(entry["R0_se"], entry[reference + "_se"])


def fraction(entry: dict[str, Any], r1: float, reference: str = "Rstar") -> float:
    return (r1 - entry["R0"]) / (entry[reference] - entry["R0"])


def share(entry: dict[str, Any], r1: float, reference: str) -> str:
    if reference not in entry:  # results of a version without R*+
        return "-"
    return f"{100 * fraction(entry, r1, reference):.0f} %" if recoverable(entry, reference) else "n/a"


def summary(entry: dict[str, Any], method: str, marks: list[int]) -> str:
    run = entry[method]
    text = (f"R_sim {entry['R_sim']:.1f} R0 {entry['R0']:.1f} R* {entry['Rstar']:.1f} R*+ {entry['Rstar_plus']:.1f}; "
            "R1 " + " ".join(f"@{m} {run['R1'][str(m)]:.1f}" for m in marks))
    for reference, name in REFERENCES:
        text += f" (recovered of {name}: " + ", ".join(share(entry, run["R1"][str(m)], reference) for m in marks) + ")"
    text += "; learned (not yet kept) " + " ".join(f"@{m} {run['learned'][str(m)]:.1f}" for m in marks)
    if run.get("R_twin_scratch") is not None:
        twin = run["R_twin_scratch"]
        text += (f"; trained anew on the twin {twin:.1f} (recovered of R*: {share(entry, twin, 'Rstar')}, of R*h: "
                 f"{share(entry, twin, 'Rstar_history')})")
    return text + f"; {run['violations']} commands outside the limits; {run['seconds']:.0f} s"


def print_table(results: dict[str, Any], methods: list[str], marks: list[int]) -> None:
    marks_header = " | ".join(f"R1@{m} (of R*, of R*+, of R*h)" for m in marks)
    print(f"\n| task | gap | seed | method | R_sim | R0 | R* | R*+ | R*h | {marks_header} | saved | out of limits |")
    print("|" + " --- |" * (11 + len(marks)))
    for key, entry in results.items():
        env_id, gap, seed = key.split("|")
        for method in methods:
            if method not in entry:
                continue
            run = entry[method]
            cells = [f"{r1:.1f} (" + ", ".join(share(entry, r1, reference) for reference, _ in REFERENCES) + ")"
                     for r1 in (run["R1"][str(m)] for m in marks)]
            print(f"| {env_id.split('/')[-1]} | {gap} | {seed} | {method} | {entry['R_sim']:.1f} | {entry['R0']:.1f} | "
                  f"{entry['Rstar']:.1f} | {entry.get('Rstar_plus', math.nan):.1f} | "
                  f"{entry.get('Rstar_history', math.nan):.1f} | {' | '.join(cells)} | "
                  f"{'yes' if run['improved'] else 'no'} | {run['violations']} |")


if __name__ == "__main__":
    main()
