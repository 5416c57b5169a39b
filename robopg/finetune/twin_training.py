"""Training on the robot's twin: the deployed policy's own training run, continued on the identified dynamics.

The simulator already learns far faster than the robot can: the swing-up's DDPG reaches the gapped robot's
oracle within tens of simulated episodes, where cautious A2C on the robot needs hundreds. So once the robot's
dynamics are identified from its baseline episodes (``twin.identified_dynamics``), the checkpoint's run is
resumed (its algorithm, settings, optimizers and, for DDPG/TD3, its replay memory) on the task's simulator
randomized over the identified ranges, for ``steps`` more steps. Keeping the simulation's replay is what keeps
it stable: prior data mixed into the new data's updates, as RLPD (Ball et al. 2023) does with demonstrations;
from an empty replay the same continuation collapsed (docs/design.md). A continuation stays near the deployed
policy, and where the gap calls for a different one (a heavier or weaker cart-pole) it can stall below what the
same algorithm learns from scratch on the gapped dynamics; so the run's algorithm can also be trained anew on the
twin, with the run's settings and steps (``scratch_runs``): the real-to-sim-to-real loop of identification and
retraining (Chebotar et al. 2019), every run's best snapshot then judged alike. Where one seed of an off-policy
learner collapses or stalls (the swing-up's DDPG on a weak actuator ended at 67 where another seed reached 154),
several runs from scratch, each with its own seed, spend simulation time, which is cheap, to spare robot time.
A policy trained anew need not take the deployed one's input: on a robot whose commands act ``L`` control steps
late, the last ``L`` commands are part of its state, and a policy that sees only the current observation cannot
know what is still in flight; the runs from scratch can be given that history (``scratch_history``,
``robopg.core.history``), which on the reacher's latency gap took them past the oracle of the observation alone
(docs/benchmarks.md).

Its evaluations run on the twin too, from the same initial states and dynamics draws each time (common random
numbers), so the snapshots and the deployed policy are compared on equal terms. The best of a dozen snapshots on
ten episodes is flattered by its selection (the winner's curse: on the swing-up, whose returns spread by ±65, a
snapshot chosen at 130 against the deployed 105 then averaged 106 over 10 robot episodes), so the chosen
snapshots and the deployed policy are evaluated again on ``confirm_episodes`` fresh episodes of the twin,
paired, and the best of them becomes the candidate only if it beats the deployed policy there too. The robot still
has the last word (the session's evaluations): the twin is a model of the robot, not the robot.

The runs are independent, each seeded as its run is, so they can train at the same time, each in a process of its
own (``jobs``): the same results, in less of the time the robot waits.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from robopg import checkpoint
from robopg.checkpoint import Restored
from robopg.config import RunConfig
from robopg.core.nets import torch_policy_fn
from robopg.envs import make_env
from robopg.errors import ConfigError, WorkerFailure
from robopg.evaluation import EvalResult, evaluate
from robopg.registry import config_from_dict
from robopg.training.loop import EVAL_SEED_OFFSET
from robopg.training.run import make_trainer
from sim.randomization import format_dynamics, parse_dynamics

CONFIRM_SEED_OFFSET = 2 * EVAL_SEED_OFFSET  # past the run's training and evaluation episodes' seeds
CONTINUED, FROM_SCRATCH = "continued", "from scratch"  # the runs on the twin
DEPLOYED = "deployed"  # the deployed policy, beside the runs' snapshots in the confirmation


@dataclass(frozen=True)
class TwinTraining:
    """What training on the twin found. ``deployed``: the deployed policy's mean return on the twin's evaluation
    episodes; ``best``: each run's best snapshot there and the steps of that run before it (0: no snapshot beat the
    deployed policy); ``confirmed``: the deployed policy's and those snapshots' means on the fresh episodes;
    ``candidate``: the snapshot that did best there, if it beat the deployed policy again (from run ``source``)."""

    deployed: float
    best: dict[str, tuple[float, int]]
    candidate: Restored | None
    confirmed: dict[str, float] = field(default_factory=dict)
    confirm_episodes: int = 0
    source: str = ""

    def summary(self) -> str:
        """One line: what each run found and what the confirmation chose."""
        runs = ", ".join(f"{name} best {mean:.1f} after {steps} steps" if steps else f"{name} never better"
                         for name, (mean, steps) in self.best.items())
        line = f"deployed {self.deployed:.1f} on the twin, {runs}"
        if self.confirmed:
            line += (f"; on {self.confirm_episodes} fresh twin episodes "
                     + ", ".join(f"{name} {mean:.1f}" for name, mean in self.confirmed.items()))
            line += f"; candidate {self.source}" if self.candidate is not None else "; not confirmed"
        return line


def require_run(resume_file: Path | None) -> None:
    """Refuse, in one line, training on the twin without the run it continues."""
    if resume_file is None or not resume_file.is_file():
        raise ConfigError(f"training on the twin continues the policy's run, and {resume_file or 'its resume.pt'} is "
                          "missing (the run folder's resume.pt, beside checkpoint.pt); set twin_training_steps = 0 "
                          "to go without")


def train_on_twin(resume_file: Path, dynamics: dict[str, Any], steps: int, eval_every: int, eval_episodes: int,
                  out_dir: Path, confirm_episodes: int = 30, scratch_runs: int = 0,
                  scratch_history: int | None = None, jobs: int = 1) -> TwinTraining:
    """Resume the run of ``resume_file`` on the task randomized over ``dynamics`` for ``steps`` steps in
    ``out_dir``/continued (a run folder of its own: eval.csv, best.pt), evaluating every ``eval_every`` steps on
    ``eval_episodes`` episodes of the same twin; also train the run's algorithm and settings anew on the twin
    ``scratch_runs`` times for the run's own steps, with seeds the run's, +1, ... (``out_dir``/from-scratch,
    from-scratch-seed-N, each evaluated on its own schedule on the same episodes), their policies fed
    ``scratch_history`` steps of history (None: the run's). The snapshots that beat the deployed policy there are
    confirmed on ``confirm_episodes`` fresh ones. ``jobs``: runs trained at a time, each in a process of its own
    (0: one per CPU core; 1: one after the other in this process)."""
    require_run(resume_file)
    restored = checkpoint.restore(resume_file)
    state = restored.state
    start = int(state["step"])
    run_config = config_from_dict(state["config"])
    scratch_seeds = {scratch_name(run_config.seed + k, run_config.seed): run_config.seed + k
                     for k in range(scratch_runs)}
    for name in (CONTINUED, *scratch_seeds):
        run_folder(out_dir, name).mkdir(parents=True, exist_ok=True)
    twin = replace(run_config, eval_episodes=eval_episodes, randomize=format_dynamics(parse_dynamics(dynamics)),
                   video_every=0)
    continuation = replace(twin, total_steps=start + steps, eval_every=eval_every, checkpoint_every=start + steps)
    deployed_policy = restored.policy()
    deployed = evaluate_on_twin(state["env_id"], continuation, deployed_policy, twin.history, eval_episodes,
                                run_config.seed + EVAL_SEED_OFFSET)  # the continuation's evaluation episodes
    history = twin.history if scratch_history is None else scratch_history
    runs = {CONTINUED: TwinRun(state["env_id"], continuation, run_folder(out_dir, CONTINUED), deployed,
                               deployed_policy, twin.history, resume_file)}
    runs.update({name: TwinRun(state["env_id"], replace(twin, seed=seed, checkpoint_every=run_config.total_steps,
                                                        history=history),
                               run_folder(out_dir, name), deployed if seed == run_config.seed else None,
                               deployed_policy, twin.history)
                 for name, seed in scratch_seeds.items()})
    processes = min(parallel_jobs(jobs), len(runs))
    if processes > 1:
        try:
            with ProcessPoolExecutor(processes, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(train_twin_run, run) for run in runs.values()]
                best = dict(zip(runs, (future.result() for future in futures), strict=True))
        except BrokenProcessPool:
            raise WorkerFailure(
                "a process training on the twin ended abruptly: killed, out of memory, or started from a script "
                "without `if __name__ == \"__main__\":` around its code, which processes of their own need "
                "(twin_jobs = 1 trains in this process instead)") from None
    else:
        best = {name: train_twin_run(run) for name, run in runs.items()}
    snapshots = {name: checkpoint.restore(run_folder(out_dir, name) / checkpoint.BEST_FILE)
                 for name, (_, steps_before) in best.items() if steps_before > 0}
    if not snapshots:
        return TwinTraining(deployed.mean, best, None)
    means = paired_means(state["env_id"], twin, ((deployed_policy, twin.history),
                                                 *((s.policy(), s.history) for s in snapshots.values())),
                         confirm_episodes)
    confirmed = dict(zip((DEPLOYED, *snapshots), means, strict=True))
    source = confirmed_best(confirmed)
    return TwinTraining(deployed.mean, best, snapshots.get(source), confirmed, confirm_episodes, source)


@dataclass(frozen=True)
class TwinRun:
    """A run on the twin, as a process of its own can train it: ``reference`` is what its snapshots must beat to be
    its best.pt, the deployed policy's evaluation on its episodes (None: evaluate ``deployed_policy``, fed
    ``deployed_history``, on them first); ``resume_file``: the run it continues (None: a run anew)."""

    env_id: str
    config: RunConfig
    folder: Path
    reference: EvalResult | None
    deployed_policy: torch.nn.Module
    deployed_history: int
    resume_file: Path | None = None


def train_twin_run(run: TwinRun) -> tuple[float, int]:
    """Train ``run``; its best evaluation's mean and its steps before it (0: no snapshot beat the reference)."""
    c = run.config
    trainer = make_trainer(run.env_id, c, run.folder, show_progress=False)
    try:
        if run.resume_file is not None:
            trainer.restore(checkpoint.load(run.resume_file))
        reference = run.reference if run.reference is not None else evaluate_on_twin(
            run.env_id, c, run.deployed_policy, run.deployed_history, c.eval_episodes, c.seed + EVAL_SEED_OFFSET)
        first = trainer.step
        if run.resume_file is not None:  # the simulation's best is no reference on the twin; the deployed policy,
            trainer.best_eval = None  # restored here, is best.pt until a snapshot beats it
            trainer.record_evaluation(first, reference, trainer.policy_checkpoint)
        else:
            trainer.best_eval, trainer.best_step = reference, first
    except BaseException:
        trainer.close()  # run() closes it otherwise
        raise
    result = trainer.run()
    return result.best_eval.mean, max(result.best_step - first, 0)


def parallel_jobs(jobs: int) -> int:
    """``jobs``, or for 0 the CPU cores this process may use."""
    if jobs:
        return jobs
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def scratch_name(seed: int, run_seed: int) -> str:
    """The name of the run from scratch with ``seed`` on the twin of the run of ``run_seed``: ``FROM_SCRATCH`` for
    the run's own seed, "from scratch, seed N" for the others."""
    return FROM_SCRATCH if seed == run_seed else f"{FROM_SCRATCH}, seed {seed}"


def run_folder(out_dir: Path, name: str) -> Path:
    """The run folder of twin-training run ``name`` (``CONTINUED``, ``scratch_name``) in ``out_dir``: from-scratch,
    from-scratch-seed-N."""
    return out_dir / name.replace(",", "").replace(" ", "-")


def confirmed_best(confirmed: dict[str, float]) -> str:
    """The run whose snapshot did best on the fresh episodes, if it beat the deployed policy there; "" if none."""
    source = max((name for name in confirmed if name != DEPLOYED), key=lambda name: confirmed[name], default="")
    return source if source and confirmed[source] > confirmed[DEPLOYED] else ""


def paired_means(env_id: str, config: RunConfig, policies: tuple[tuple[torch.nn.Module, int], ...],
                 episodes: int) -> tuple[float, ...]:
    """The mean return of each (policy, its steps of history) on the same ``episodes`` fresh episodes of the twin
    (initial states and dynamics draws seeded alike, none of them a training or selection episode's)."""
    return tuple(evaluate_on_twin(env_id, config, policy, history, episodes, config.seed + CONFIRM_SEED_OFFSET).mean
                 for policy, history in policies)


def evaluate_on_twin(env_id: str, config: RunConfig, policy: torch.nn.Module, history: int, episodes: int,
                     seed: int) -> EvalResult:
    """``policy``, fed ``history`` steps of history, on ``episodes`` episodes of ``config``'s twin from ``seed``."""
    env = make_env(env_id, **replace(config, history=history).env_options())
    try:
        return evaluate(torch_policy_fn(policy), env, episodes, seed)
    finally:
        env.close()
