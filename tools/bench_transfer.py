"""How well does `robopg identify` recover a robot's dynamics from its deploy logs?

For each task, gap and seed: the nominal DDPG policy of tools/bench_finetune.py (trained, or reused from its
--out) is deployed for --episodes episodes on the virtual robot with the gap (in this process: the same plant,
firmware state machine, protocol, link, safety layer and control loop as `robot-sim` + `deploy --log`), and
`identify` fits the gap's parameters plus the latency (which must come out 0 when the gap has none) to that
log, and estimates the sensor noise (which must come out near 0 without --noise). With --noise, the robot's
sensors carry the benchmark's noise gap (5 % of each observation's typical range): the replay starts from
noisy observations. Reported: each estimate against the true value (relative error, absolute for a true value
of 0; the latency exactly) and the fit's prediction error against the nominal model's.

    python tools/bench_transfer.py [--envs ...] [--gaps latency gain mass friction] [--seeds 0 1 2]
        [--episodes 10] [--noise] [--out runs/bench_finetune]

Results: --out/identify.json and a table.

With --randomized [K ...]: instead, policies trained with randomization over all five gaps at once (1.5 times
the nominal policy's steps), one per K steps of history in their input (0: the observation alone), against the
nominal policy (R0) and each gap's oracle (R*), on each gap and on the nominal task, by the fine-tuning
benchmark's independent evaluation (20 fresh initial states); --weights best takes each run's best evaluated
snapshot instead of its final policy, --jobs N trains N runs at a time.

    python tools/bench_transfer.py --randomized 0 4 --weights best --jobs 2 --envs robopg/CartPoleSwingUp-v0

With --continued [STEPS] (beside --randomized; with no K given, in place of the runs from scratch): a run trained
on the nominal task for STEPS (default: the nominal run itself) and continued from its last checkpoint with that
randomization to 1.5 times the nominal run's steps, as `robopg train-sim --resume RUN --randomize ... --steps N`
continues it: the nominal task learned first, then made robust.

    python tools/bench_transfer.py --randomized --continued --weights best --jobs 2 --envs robopg/CartPoleSwingUp-v0

--eval-episodes and --eval-every set the continued run's evaluations (`--resume RUN --set eval_episodes=N`), which
choose its best snapshot.

With --identified: instead, for each of --gaps (noise included) and seed, the nominal policy deployed for --episodes
episodes on the gapped robot, `identify` fitted to that log, and the fine-tuning session's training on the twin
(its defaults: the nominal run continued over the range `identify` writes around its estimates, two runs of its
algorithm anew there, the best snapshot confirmed on fresh twin episodes; robopg.finetune.twin_training) against
the gap's oracle: what a session offers the robot before the robot's own episodes judge it.

    python tools/bench_transfer.py --identified --gaps latency gain mass friction noise --jobs 2
        --envs robopg/CartPoleSwingUp-v0

With --history K: instead, two policies per seed trained with randomization over the latency and the gain
(action_latency_steps=0:3, actuator_gain=0.7:1), one on the current observation alone and one with K steps of
history in its input, at the nominal policy's budget, against the nominal policy (R0) and each gap's oracle
(R*), on the latency gap, the gain gap and the nominal task, by the same independent evaluation.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing
import shutil
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from bench_finetune import (
    GAPS,
    MAX_DELTA_SHARE,
    RECIPES,
    ROBOT_SEED,
    finished,
    gapped_id,
    independent_evaluation,
    independent_return,
    noise_gap,
    trained_run,
)

from robopg import checkpoint
from robopg.atomic import atomic_write_text
from robopg.checkpoint import restore
from robopg.core.nets import torch_policy_fn
from robopg.envs import make_env
from robopg.export.to_onnx import metadata_for
from robopg.finetune import FinetuneConfig
from robopg.finetune.session import train_on_session_twin
from robopg.finetune.twin_training import CONTINUED, run_folder
from robopg.identify import LATENCY, NOISE, IdentifyConfig, identify
from robopg.runtime.deploy import ControlLoop, prepare_robot, robot_session, task_functions
from robopg.runtime.safety import SafetyConfig, SafetyLayer
from robopg.training.run import resume
from sim.randomization import format_dynamics, parse_dynamics
from sim.virtual_robot import RobotSimConfig, in_memory_robot

PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def training_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` processes that train runs, each ending with this process (a killed benchmark leaves no run training
    on, into a folder its rerun would also write)."""
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent)


def die_with_parent() -> None:
    """Have the kernel send this process SIGTERM when its parent ends (Linux's PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def deploy_log(env_id: str, run: Path, dynamics: dict[str, float], episodes: int,
               seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(observations, commands) of ``episodes`` deployed episodes of the run's policy on the gapped robot."""
    restored = restore(run)
    meta = metadata_for(restored)
    link = in_memory_robot(RobotSimConfig(env_id, gap=dynamics, seed=ROBOT_SEED + 1000 * seed, watchdog_ms=250))
    max_delta = MAX_DELTA_SHARE * (np.array(meta.action_high) - np.array(meta.action_low))
    safety = SafetyLayer(np.array(meta.action_low), np.array(meta.action_high), SafetyConfig(tuple(max_delta)))
    policy = torch_policy_fn(restored.policy().eval())
    with prepare_robot(link, meta) as ready, robot_session(ready):
        loop = ControlLoop(ready, safety, task_functions(env_id), history=meta.history)
        for _ in range(episodes):
            loop.run_episode(policy)
    return [(ep.observations.astype(np.float64), ep.commands.astype(np.float64)) for ep in loop.trajectory]


def all_gaps(noise: dict[str, float]) -> tuple[str, ...]:
    """Ranges that span the nominal model and every gap of the benchmark."""
    return ("mass_scale=1:1.5", "friction_scale=1:3", "damping_scale=1:3", "actuator_gain=0.7:1",
            f"sensor_noise_std=0:{noise['sensor_noise_std']}", "action_latency_steps=0:3")


def randomized_versus_oracles(env_id: str, seeds: list[int], histories: list[int], continue_from: int | None,
                              continued_history: int, schedule: dict[str, int], weights: str, jobs: int,
                              out: Path) -> None:
    """A policy randomized over every gap for each of ``histories`` (steps of history in its input) and, with
    ``continue_from``, a run trained that many steps on the nominal task and continued with that randomization
    to 1.5 times the nominal policy's steps (`train-sim --resume --randomize`; 0: the nominal run's steps), with
    ``continued_history`` steps of history in its input from the start (0: the nominal run itself), the
    nominal one and each gap's oracle on each gap (and the nominal task), each policy's ``weights`` snapshot
    (``schedule``: the continued run's evaluation settings, as ``--resume RUN --set`` changes them);
    each return also as a share of the oracle's (``share_of_oracle``). The runs train ``jobs`` at a time, then are
    evaluated."""
    recipe = RECIPES[env_id]
    policies = out / "policies"
    steps = recipe.steps * 3 // 2
    labels = [f"randomized{f', history {k}' if k else ''}" for k in histories]  # a column per kind of run
    fixed_gaps = [gap for gap, dynamics in GAPS.items() if dynamics]
    with training_pool(jobs) as pool:
        nominal_seeds = sorted({0, *seeds})  # seed 0's nominal policy sets the noise gap, as for the oracles
        first = [(env_id, None, seed, policies) for seed in nominal_seeds]
        first += [(env_id, (gap, GAPS[gap]), 0, policies) for gap in fixed_gaps]
        trained = list(pool.map(train_job, first))
        nominal = dict(zip(nominal_seeds, trained[:len(nominal_seeds)], strict=True))
        oracles = dict(zip(fixed_gaps, trained[len(nominal_seeds):], strict=True))
        noise = noise_gap(env_id, nominal[0])
        then = [(env_id, ("noise", noise), 0, policies)]
        then += [(env_id, None, seed, policies, all_gaps(noise), "-randomized" + (f"-history{k}" if k else ""), k,
                  steps) for seed in seeds for k in histories]
        trained = list(pool.map(train_job, then))
        oracles["noise"] = trained[0]
        runs = {(label, seed): run for (seed, label), run in
                zip([(seed, label) for seed in seeds for label in labels], trained[1:], strict=True)}
        if continue_from is not None:
            first_steps = continue_from or recipe.steps
            label = f"nominal for {first_steps}, then randomized" + (
                f", history {continued_history}" if continued_history else "")
            labels.append(label)
            name = (f"-first{first_steps}" if first_steps != recipe.steps else "") + (
                f"-history{continued_history}" if continued_history else "")
            first_part = nominal if not name else dict(zip(seeds, pool.map(train_job, [
                (env_id, None, seed, policies, (), name, continued_history, first_steps) for seed in seeds]),
                strict=True))
            tag = "continued" + "".join(f"-{key}{value}" for key, value in sorted(schedule.items()))
            continuations = [(first_part[seed], all_gaps(noise), steps, schedule, tag) for seed in seeds]
            runs |= {(label, seed): run for seed, run in zip(seeds, pool.map(continue_job, continuations),
                                                                  strict=True)}
    header = "| task | seed | evaluated on | random policy | nominal policy (R0) | oracle (R*) |"
    header += "".join(f" {label} | share of R* |" for label in labels)
    print("\n" + header + "\n" + "| --- " * (header.count("|") - 1) + "|")
    simulators = {"nominal": env_id, **{gap: gapped_id(env_id, gap, GAPS[gap] or noise) for gap in GAPS}}
    floors = {name: random_return(evaluated_on) for name, evaluated_on in simulators.items()}
    # The oracles are seed 0's, the same for every seed: evaluated once (on the nominal task, the nominal policy).
    stars = {name: snapshot_return(oracles[name], weights, evaluated_on)
             for name, evaluated_on in simulators.items() if name in oracles}
    for seed in seeds:
        for name, evaluated_on in simulators.items():
            floor = floors[name]
            r0, *rand = (snapshot_return(run, weights, evaluated_on)
                         for run in (nominal[seed], *(runs[label, seed] for label in labels)))
            star = stars.get(name, r0)
            cells = "".join(f" {r:.1f} | {share_of_oracle(r, star, floor):.0f} % |" for r in rand)
            print(f"| {env_id.split('/')[-1]} | {seed} | {name} | {floor:.1f} | {r0:.1f} | {star:.1f} |{cells}",
                  flush=True)


def continue_job(job: tuple[Path, tuple[str, ...], int, dict[str, int], str]) -> Path:
    """(nominal run, randomize, total steps, schedule, tag): the run continued to the total with ``randomize`` from
    its last checkpoint, as `robopg train-sim --resume RUN --randomize ... --steps N --set KEY=VALUE` (of
    ``schedule``) does, in a copy of its folder (``-TAG`` beside it); reused when finished."""
    nominal, randomize, steps, schedule, tag = job
    name, seed = nominal.name.rsplit("-s", 1)
    run = nominal.with_name(f"{name}-{tag}-s{seed}")
    if not finished(run, steps):
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(nominal, run)
        started = time.perf_counter()
        resume(run, total_steps=steps, randomize=randomize, schedule=schedule, show_progress=False)
        print(f"  continued {run.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return run


def twin_job(job: tuple[Path, dict[str, tuple[float, float]], Path]) -> dict[str, str]:
    """(nominal run, identified dynamics, folder): the fine-tuning session's training on the twin with its defaults
    (``FinetuneConfig``: the run continued, runs of its algorithm anew, the best snapshot confirmed on fresh twin
    episodes), as ``robopg finetune`` runs it; {"source": the candidate's run ("": none beat the deployed policy),
    "runs": each run's folder, "summary": ...}, reused from the folder's twin.json when finished."""
    nominal, dynamics, out = job
    done = out / "twin.json"
    if done.is_file():
        return json.loads(done.read_text())
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    found = train_on_session_twin(FinetuneConfig(), nominal / checkpoint.RESUME_FILE, dynamics,
                                  restore(nominal).history, out)
    record = {"source": found.source, "runs": {name: str(run_folder(out, name)) for name in found.best},
              "summary": found.summary()}
    atomic_write_text(done, json.dumps(record, indent=1))
    print(f"  {out.name} in {time.perf_counter() - started:.0f} s: {found.summary()}", flush=True)
    return record


def identified_versus_oracles(env_id: str, gaps: list[str], seeds: list[int], episodes: int, jobs: int,
                              out: Path) -> None:
    """For each gap and seed: the nominal policy deployed for ``episodes`` episodes on the gapped robot, `identify`
    fitted to that log (the gap's parameters, the latency and the sensor noise), and the fine-tuning session's
    training on the twin over the range `identify` writes around the estimates (``twin_job``): each run's best
    snapshot and the session's candidate (the nominal policy if none) on the gapped simulator, against the nominal
    policy (R0) and the gap's oracle (R*), the candidate also as a share of the oracle's (``share_of_oracle``)."""
    policies = out / "policies"
    with training_pool(jobs) as pool:
        nominal_seeds = sorted({0, *seeds})
        trained = list(pool.map(train_job, [(env_id, None, seed, policies) for seed in nominal_seeds]))
        nominal = dict(zip(nominal_seeds, trained, strict=True))
        noise = noise_gap(env_id, nominal[0])
        gapped = {gap: GAPS[gap] or noise for gap in gaps}
        oracles = dict(zip(gaps, pool.map(train_job, [(env_id, (gap, gapped[gap]), 0, policies) for gap in gaps]),
                           strict=True))
        config = IdentifyConfig()
        ranges: dict[tuple[str, int], dict[str, tuple[float, float]]] = {}
        for gap in gaps:
            for seed in seeds:
                log = deploy_log(env_id, nominal[seed], gapped[gap], episodes, seed)
                fit = identify(env_id, log, list(dict.fromkeys([*GAPS[gap], LATENCY, NOISE])), config)
                ranges[gap, seed] = fit.randomization(config)
                print(f"  {gap} seed {seed}: --randomize "
                      + " --randomize ".join(format_dynamics(parse_dynamics(ranges[gap, seed]))), flush=True)
        jobs_list = [(nominal[seed], ranges[gap, seed], nominal[seed].with_name(f"{nominal[seed].name}-twin-{gap}"))
                     for gap, seed in ranges]
        twins = dict(zip(ranges, pool.map(twin_job, jobs_list), strict=True))
    print("\n| task | gap | seed | random policy | nominal policy (R0) | oracle (R*) | continued | anew (each seed) | "
          "the session's candidate | share of R* |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for gap in gaps:
        evaluated_on = gapped_id(env_id, gap, gapped[gap])
        star = snapshot_return(oracles[gap], "best", evaluated_on)
        floor = random_return(evaluated_on)
        for seed in seeds:
            r0 = snapshot_return(nominal[seed], "best", evaluated_on)
            # a run none of whose snapshots beat the deployed policy on the twin has no best.pt (None)
            runs = {name: snapshot_return(Path(folder), "best", evaluated_on)
                    if (Path(folder) / checkpoint.BEST_FILE).is_file() else None
                    for name, folder in twins[gap, seed]["runs"].items()}
            cells = {name: "never better" if r is None else f"{r:.1f}" for name, r in runs.items()}
            source = twins[gap, seed]["source"]
            chosen = runs[source] if source else r0
            anew = ", ".join(cell for name, cell in cells.items() if name != CONTINUED)
            print(f"| {env_id.split('/')[-1]} | {gap} | {seed} | {floor:.1f} | {r0:.1f} | {star:.1f} | "
                  f"{cells[CONTINUED]} | {anew} | {source or 'the nominal policy'}: {chosen:.1f} | "
                  f"{share_of_oracle(chosen, star, floor):.0f} % |", flush=True)


def share_of_oracle(r: float, star: float, floor: float) -> float:
    """A return as a percentage of the oracle's above a uniformly random policy's, 100 (R - Rrandom) / (R* -
    Rrandom): what R / R* says for positive returns, kept meaningful for negative ones."""
    return 100 * (r - floor) / (star - floor)


def random_return(env_id: str) -> float:
    """The mean return of uniformly random actions on the independent evaluation's initial states."""
    env = make_env(env_id)
    low, high = env.action_space.low, env.action_space.high
    env.close()
    rng = np.random.default_rng(0)
    return independent_evaluation(lambda _: rng.uniform(low, high).astype(np.float32), env_id).mean


def train_job(job: tuple) -> Path:
    """trained_run for a process pool: (env_id, (gap, dynamics) or None, seed, out, *trained_run's others);
    a gap's env is registered in the process that trains on it."""
    env_id, gap, *rest = job
    return trained_run(gapped_id(env_id, *gap) if gap else env_id, RECIPES[env_id], *rest)


def snapshot_return(run: Path, weights: str, env_id: str) -> float:
    """The independent return on ``env_id`` of the run's final policy or its best evaluated one."""
    restored = restore(run / (checkpoint.BEST_FILE if weights == "best" else checkpoint.CHECKPOINT_FILE))
    return independent_return(restored.policy(), env_id, restored.history)[0]


LATENCY_AND_GAIN = ("action_latency_steps=0:3", "actuator_gain=0.7:1")


def history_versus_none(env_id: str, seeds: list[int], history: int, out: Path) -> None:
    """Randomized over the latency and the gain, with and without ``history``, on those gaps and the nominal
    task, beside the nominal policy and each gap's oracle."""
    recipe = RECIPES[env_id]
    print(f"\n| task | seed | evaluated on | nominal policy (R0) | oracle (R*) | randomized | randomized, "
          f"history {history} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for seed in seeds:
        nominal = trained_run(env_id, recipe, seed, out / "policies")
        without = trained_run(env_id, recipe, seed, out / "policies", LATENCY_AND_GAIN, "-latency-gain")
        with_history = trained_run(env_id, recipe, seed, out / "policies", LATENCY_AND_GAIN,
                                   f"-latency-gain-history{history}", history)
        rows = [("nominal", env_id, nominal)]
        for gap in ("latency", "gain"):
            gapped = gapped_id(env_id, gap, GAPS[gap])
            rows.append((gap, gapped, trained_run(gapped, recipe, 0, out / "policies")))
        for name, evaluated_on, oracle in rows:
            r0, star, rand = (independent_return(restore(run).policy(), evaluated_on)[0]
                              for run in (nominal, oracle, without))
            rand_history = independent_return(restore(with_history).policy(), evaluated_on, history)[0]
            print(f"| {env_id.split('/')[-1]} | {seed} | {name} | {r0:.1f} | {star:.1f} | {rand:.1f} | "
                  f"{rand_history:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(RECIPES))
    parser.add_argument("--gaps", nargs="+", default=["latency", "gain", "mass", "friction"],
                        choices=list(GAPS), help="noise: with --identified (elsewhere --noise adds it to every gap)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_finetune"))
    parser.add_argument("--noise", action="store_true", help="add the sensor-noise gap to every gap")
    parser.add_argument("--randomized", nargs="*", type=int, metavar="K",
                        help="measure policies trained with randomization over every gap instead, one per K steps "
                        "of history in the input (none given: 0, the observation alone)")
    parser.add_argument("--history", type=int, default=0, metavar="K",
                        help="measure randomization over latency and gain with K steps of history against without; "
                        "with --continued: the continued run's history, from its first step")
    parser.add_argument("--continued", nargs="?", type=int, const=0, metavar="STEPS",
                        help="with --randomized: also a run of STEPS nominal steps (default: the nominal run's) "
                        "continued with that randomization to 1.5 times the nominal run's steps (train-sim --resume "
                        "--randomize); --randomized with no K: this alone")
    parser.add_argument("--eval-episodes", type=int, metavar="N",
                        help="with --continued: the continued run's episodes per evaluation (default: the run's)")
    parser.add_argument("--eval-every", type=int, metavar="STEPS",
                        help="with --continued: the continued run's steps between evaluations (default: the run's)")
    parser.add_argument("--identified", action="store_true",
                        help="measure the fine-tuning session's training on the twin over the ranges identify writes "
                        "for each gap's robot")
    parser.add_argument("--jobs", type=int, default=1, help="with --randomized or --identified: runs trained at a "
                        "time")
    parser.add_argument("--weights", choices=["final", "best"], default="final",
                        help="with --randomized: evaluate each run's final policy or its best evaluated snapshot")
    args = parser.parse_args()
    if "noise" in args.gaps and not args.identified:
        parser.error("--gaps noise is for --identified; --noise adds the sensor noise to every gap")
    torch.set_num_threads(1)
    schedule = {key: value for key, value in (("eval_episodes", args.eval_episodes), ("eval_every", args.eval_every))
                if value is not None}
    if schedule and args.continued is None:
        parser.error("--eval-episodes and --eval-every set the continued run's evaluations: they need --continued")
    if args.randomized is not None:
        for env_id in args.envs:
            histories = args.randomized or ([] if args.continued is not None else [0])
            randomized_versus_oracles(env_id, args.seeds, histories, args.continued, args.history, schedule,
                                      args.weights, args.jobs, args.out)
        return
    if args.identified:
        for env_id in args.envs:
            identified_versus_oracles(env_id, args.gaps, args.seeds, args.episodes, args.jobs, args.out)
        return
    if args.history:
        for env_id in args.envs:
            history_versus_none(env_id, args.seeds, args.history, args.out)
        return
    config = IdentifyConfig()
    results: dict[str, dict] = {}
    for env_id in args.envs:
        run = trained_run(env_id, RECIPES[env_id], 0, args.out / "policies")
        noise = noise_gap(env_id, run) if args.noise else {}
        for gap in args.gaps:
            truth = {LATENCY: 0, **GAPS[gap], NOISE: noise.get(NOISE, 0.0)}
            for seed in args.seeds:
                log = deploy_log(env_id, run, {**GAPS[gap], **noise}, args.episodes, seed)
                started = time.perf_counter()
                fit = identify(env_id, log, list(truth), config)
                key = f"{env_id}|{gap}{'+noise' if noise else ''}|{seed}"
                results[key] = {"truth": truth, "estimates": fit.estimates, "errors": fit.standard_errors,
                                "cost": fit.cost, "nominal_cost": fit.nominal_cost,
                                "seconds": time.perf_counter() - started}
                print(f"{key}: " + ", ".join(f"{k} {fit.estimates[k]:.3f} (true {v})" for k, v in truth.items())
                      + f"; prediction error {fit.nominal_cost:.3g} -> {fit.cost:.3g}; "
                      f"{results[key]['seconds']:.0f} s", flush=True)
    (args.out / f"identify{'-noise' if args.noise else ''}.json").write_text(json.dumps(results, indent=1))
    print("\n| task | gap | seed | parameter | true | estimate ± s.e. | error | prediction error nominal → fit |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, r in results.items():
        env_id, gap, seed = key.split("|")
        for name, true in r["truth"].items():
            estimate = r["estimates"][name]
            error = "exact" if name == LATENCY and estimate == true else (
                f"{estimate - true:+.0f} steps" if name == LATENCY else
                f"{100 * (estimate - true) / true:+.1f} %" if true else f"{estimate - true:+.4f}")
            print(f"| {env_id.split('/')[-1]} | {gap} | {seed} | {name} | {true} | {estimate:.3f} ± "
                  f"{r['errors'][name]:.3f} | {error} | {r['nominal_cost']:.3g} → {r['cost']:.3g} |")


if __name__ == "__main__":
    main()
