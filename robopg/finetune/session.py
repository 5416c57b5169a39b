"""A fine-tuning session on the robot, from the deployed deterministic policy.

A baseline evaluation of the deployed policy, whose episodes also identify the robot's dynamics
(``twin.py``); then, by default, work on the robot's simulated twin while the robot is parked: the policy's
own training run continued on the identified dynamics (``twin_training.py``), whose best snapshot on the twin
is evaluated on the robot as the first candidate (kept if clearly better, dropped as soon as it is no better
than the deployed policy), and a rehearsal (the learner's first exploring episodes on the twin). Then
exploring episodes on the robot, each handed to the learner, with a noise-free evaluation every
``eval_every`` of them after the warm-up. Each evaluation is judged against the best so far and the deployed
policy (``decide.verdict``): a clearly better one is saved (checkpoint and ONNX), a clearly worse one is
rolled back. Every command goes through the same safety
layer as ``robopg deploy``; rewards are the task's reward function of the robot's observations.
"""

from __future__ import annotations

import copy
import csv
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from robopg.atomic import atomic_path
from robopg.config import MAX_EPISODES
from robopg.errors import ConfigError
from robopg.finetune.decide import Evaluation, Predict, no_better, save_finetuned, verdict
from robopg.finetune.twin import Twin, identified_dynamics, return_predictor
from robopg.finetune.twin_training import TwinTraining, require_run, train_on_twin
from robopg.identify import IDENTIFIABLE, LATENCY, check_params
from robopg.registry import algorithm, name_of
from robopg.runtime.episode import PolicyFn, RobotEpisode
from robopg.settings import Settings, build, require, setting


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig(Settings):
    """How many robot episodes a session takes and how it evaluates; the learner's own settings are its
    method's config."""

    label = "finetune config"

    episodes: int = setting(50, "robot episodes of the whole session: baseline, exploring and evaluation alike", ge=1,
                            most=10**6)
    baseline_episodes: int = setting(10, "noise-free episodes of the deployed policy first: the reference of "
                                         "every comparison, so the longest evaluation", ge=2, most=MAX_EPISODES)
    eval_every: int = setting(10, "exploring episodes between noise-free evaluations", ge=1, most=MAX_EPISODES)
    eval_episodes: int = setting(5, "episodes per evaluation", ge=2, most=MAX_EPISODES)
    twin_training_steps: int = setting(10_000, "steps of the policy's own training run continued on the robot's "
                                               "simulated twin before the robot explores; its best snapshot is "
                                               "the first candidate (0: none)", ge=0, most=10**9)
    twin_scratch_runs: int = setting(2, "runs of the run's algorithm trained anew on the twin beside the "
                                        "continuation, with the run's own settings and steps, seeds the run's, +1, "
                                        "...; the best of all runs' snapshots on the twin is the candidate (0: none)",
                                     ge=0, most=16)
    twin_jobs: int = setting(1, "runs on the twin trained at a time, each in a process of its own (0: one per CPU "
                                "core; 1: one after the other in this process; more than 1 from Python needs the "
                                "script's code under `if __name__ == '__main__':`)", ge=0, most=256)
    twin_history_for_latency: bool = setting(True, "on a twin whose commands act L >= 1 control steps late, give "
                                                   "the policy trained anew at least L steps of history (its last "
                                                   "observations and commands: what is still in flight)")
    twin_eval_every: int = setting(1_000, "steps of twin training between its evaluations on the twin", ge=1,
                                   most=10**9)
    twin_eval_episodes: int = setting(10, "episodes per evaluation on the twin", ge=1, most=MAX_EPISODES)
    twin_confirm_episodes: int = setting(30, "fresh episodes on the twin on which the best snapshot must beat the "
                                             "deployed policy again (its selection flatters it) to be the candidate",
                                         ge=1, most=MAX_EPISODES)
    candidate_evals: int = setting(3, "evaluations (eval_episodes each, pooled) of the twin's candidate on the "
                                      "robot at most, before it is kept or dropped", ge=1, most=MAX_EPISODES)
    rehearsal_episodes: int = setting(100, "exploring episodes on the robot's simulated twin, identified from the "
                                           "baseline's episodes, before the first on the robot (0: none)", ge=0,
                                  most=MAX_EPISODES)
    identify_params: tuple[str, ...] = setting(IDENTIFIABLE, "dynamics parameters the twin is identified in")
    confidence_z: float = setting(2.0, "'better' means a mean return higher by this many standard errors", ge=0, le=10)
    adjust_for_initial_states: bool = setting(True, "compare evaluations after removing the share of their returns "
                                                    "that each evaluated policy's return on the twin from each "
                                                    "episode's initial state predicts (regression adjustment)")

    def check(self) -> None:
        if self.uses_twin:
            check_params(self.identify_params)
        require(self.episodes >= self.baseline_episodes + 1 + self.eval_episodes,
                f"episodes ({self.episodes}) must leave room for the baseline ({self.baseline_episodes}), one "
                f"exploring episode and one evaluation ({self.eval_episodes})")

    @property
    def uses_twin(self) -> bool:
        """Whether the session identifies the robot and works on its simulated twin."""
        return bool(self.rehearsal_episodes or self.twin_training_steps)


class Robot(Protocol):
    """What a session needs of the robot: episodes of a policy fed ``history`` steps of history
    (``robopg.runtime.deploy.ControlLoop``)."""

    def run_episode(self, policy: PolicyFn, history: int | None = None) -> RobotEpisode: ...


def finetune_configs(values: dict[str, Any], method: str = "cautious_ddpg") -> tuple[FinetuneConfig, Any]:
    """The session's config and the method's, from one flat table of values (a TOML file and the command line):
    each key goes to the config that declares it, and a key that neither declares is refused by name."""
    own = {f.name for f in fields(FinetuneConfig)}
    method_class = algorithm(method, robot=True).config
    unknown = sorted(set(values) - own - {f.name for f in fields(method_class)})  # type: ignore[arg-type]
    require(not unknown, f"unknown finetune config key(s) for {method}: {', '.join(unknown)}")
    session = build(FinetuneConfig, {k: v for k, v in values.items() if k in own})
    learner_config = build(method_class, {k: v for k, v in values.items() if k not in own})
    on_robot = robot_warmup_episodes(session, learner_config)
    require(session.episodes > session.baseline_episodes + on_robot,
            f"episodes ({session.episodes}) must exceed baseline_episodes + the warm-up episodes left after the "
            f"rehearsal ({session.baseline_episodes} + {on_robot})")
    return session, learner_config


def robot_warmup_episodes(config: FinetuneConfig, method_config: Settings) -> int:
    """Exploring episodes on the robot before the method's first update (no evaluation is due before it has
    learned): its warm-up, less what the rehearsal on the twin took."""
    return max(getattr(method_config, "warmup_episodes", 0) - config.rehearsal_episodes, 0)


@dataclass(frozen=True)
class FinetuneRecord:
    """One line of finetune.csv."""

    episode: int  # robot episodes so far, of every kind
    kind: str  # "baseline", "rehearsal" (on the twin: no robot episode), "explore", "eval"
    ret: float  # an evaluation's: the mean over its episodes
    ret_std: float = math.nan  # an evaluation's: the standard deviation over its episodes
    kl: float = math.nan
    drift: float = math.nan
    note: str = ""


@dataclass
class FinetuneResult:
    baseline: float  # the deployed policy's mean evaluation return on the robot
    best: float  # the kept policy's (the deployed one's unless another was clearly better)
    records: list[FinetuneRecord]
    improved: bool


def evaluate_on_robot(robot: Robot, learner: Any, history: int, episodes: int) -> list[RobotEpisode]:
    """Noise-free episodes of the learner's policy (``history``: its input's); the learner sees them too (an
    off-policy learner learns from every transition)."""
    done = []
    for _ in range(episodes):
        episode = robot.run_episode(learner.deterministic_policy(), history)
        learner.observe(episode, exploring=False)
        done.append(episode)
    return done


def returns_of(episodes: list[RobotEpisode]) -> list[float]:
    return [episode.ret for episode in episodes]


def evaluation_of(episodes: list[RobotEpisode], predict: Predict | None) -> Evaluation:
    """The episodes' returns and first observations, with ``predict`` for the policy that ran them."""
    return Evaluation(tuple(returns_of(episodes)), tuple(np.asarray(ep.observations[0]) for ep in episodes), predict)


def rehearse(twin: Twin, dynamics: dict[str, Any], learner: Any, history: int, episodes: int) -> list[float]:
    """``episodes`` exploring episodes of the learner (``history``: its input's) on a twin with ``dynamics``; their
    returns."""
    returns = []
    with twin(dynamics) as simulated:
        for _ in range(episodes):
            episode = simulated.run_episode(learner.exploring_policy(), history)
            learner.observe(episode, exploring=True)
            returns.append(episode.ret)
    return returns


@dataclass(frozen=True)
class PolicySnapshot:
    """A policy of the session as it was at one point: a copy of its deployable module (raw input -> actuator
    units, eval mode) and the steps of history its input takes."""

    policy: torch.nn.Module
    history: int


def snapshot(trained: Any, policy_state: dict[str, Any], history: int) -> PolicySnapshot:
    """The deployable policy of ``trained``'s kind with ``policy_state`` (a learner's ``policy_state()``)."""
    policy = copy.deepcopy(trained.policy()).eval()
    policy.load_state_dict(policy_state)
    return PolicySnapshot(policy, history)


Watch = Callable[[int, PolicySnapshot | None, PolicySnapshot], None]


def train_on_session_twin(config: FinetuneConfig, resume_file: Path, dynamics: Mapping[str, Any], history: int,
                          out_dir: Path) -> TwinTraining:
    """``train_on_twin`` as a session with ``config`` runs it: the run of ``resume_file`` (whose policy takes
    ``history`` steps of history) on the twin of ``dynamics`` (values or ranges); on a twin whose commands act up to
    L control steps late, the runs anew get at least L steps of history (``twin_history_for_latency``)."""
    latency = 0
    if config.twin_history_for_latency:
        value = dynamics.get(LATENCY, 0)
        latency = int(max(value) if isinstance(value, tuple) else value)
    return train_on_twin(resume_file, dict(dynamics), config.twin_training_steps, config.twin_eval_every,
                         config.twin_eval_episodes, out_dir, config.twin_confirm_episodes, config.twin_scratch_runs,
                         max(history, latency), config.twin_jobs)


def finetune(robot: Robot, trained: Any, state: dict[str, Any], config: FinetuneConfig, method_config: Settings,
             out_dir: Path, report: Callable[[FinetuneRecord], None] = lambda r: None,
             watch: Watch | None = None, twin: Twin | None = None,
             run_state: Path | None = None) -> FinetuneResult:
    """Fine-tune ``trained`` (the learner of checkpoint ``state``, whose policy is deployed) on ``robot`` with the
    method of ``method_config``, within ``config.episodes`` robot episodes in all. Writes out_dir/finetune.csv after
    every episode, and checkpoint.pt and policy.onnx each time an evaluation is clearly better than the deployed
    policy's and the best so far. ``twin`` makes the robot's simulated twin for a rehearsal; ``run_state`` is the
    deployed policy's run (its resume.pt), which training on the twin continues (out_dir/twin: the continued run
    and the one from scratch).
    ``watch(total, kept, current)`` is told, after each robot episode or evaluation, the robot episodes so far,
    the policy that would be kept if the session stopped there (None: the deployed one) and the learner's."""
    # Refused before the robot runs an episode.
    if config.rehearsal_episodes and twin is None:
        raise ConfigError("a rehearsal needs the robot's simulated twin: pass twin=, or set rehearsal_episodes = 0")
    if config.twin_training_steps:
        require_run(run_state)
    make_learner = algorithm(name_of(method_config), robot=True).learner
    learner = make_learner(trained, method_config)
    warmup = robot_warmup_episodes(config, method_config)
    records: list[FinetuneRecord] = []

    def log(record: FinetuneRecord) -> None:
        records.append(record)
        report(record)
        write_records(records, out_dir / "finetune.csv")  # a crash or Ctrl-C keeps what happened so far
        if watch is not None:
            watch(total, None if kept is None else snapshot(trained, kept, history),
                  snapshot(trained, learner.policy_state(), history))

    best_state, kept = learner.policy_state(), None  # the deployed policy, before any learner sees an episode
    history = int(state["config"].get("history", 0))  # the learner's policy's: the deployed one's or a candidate's
    baseline_episodes = evaluate_on_robot(robot, learner, history, config.baseline_episodes)
    baseline_returns = returns_of(baseline_episodes)
    total = config.baseline_episodes
    log(FinetuneRecord(total, "baseline", float(np.mean(baseline_returns)), float(np.std(baseline_returns, ddof=1))))
    dynamics = identified_dynamics(state["env_id"], baseline_episodes, config.identify_params,
                                   getattr(method_config, "seed", 0)) if config.uses_twin else {}
    steps = max(len(ep) for ep in baseline_episodes)

    def predictor(policy: PolicyFn, history: int) -> Predict | None:
        """``policy``'s return on the twin from a first observation (decide.adjusted), when the session adjusts."""
        return return_predictor(state["env_id"], dynamics, policy, history, steps) \
            if config.adjust_for_initial_states else None

    baseline = best = evaluation_of(baseline_episodes, predictor(learner.frozen_policy(), history))
    twin_note = "twin: " + ", ".join(f"{k} {v}" for k, v in dynamics.items())
    if config.twin_training_steps and run_state is not None:  # one without its run is refused above
        found = train_on_session_twin(config, run_state, dynamics, history, out_dir / "twin")
        log(FinetuneRecord(total, "twin", max(mean for mean, _ in found.best.values()),
                           note=f"{twin_note}; {found.summary()}"))
        if found.candidate is not None:
            candidate = make_learner(found.candidate.learner, method_config)
            tried = Evaluation((), (), predictor(candidate.frozen_policy(), found.candidate.history))
            while len(tried.returns) < config.candidate_evals * config.eval_episodes and \
                    config.episodes - total >= config.eval_episodes:
                tried += evaluation_of(evaluate_on_robot(robot, candidate, found.candidate.history,
                                                         config.eval_episodes), tried.predict)
                total += config.eval_episodes
                note = ""
                if verdict(tried, best, baseline, config.confidence_z) == "best, saved":
                    note = "best, saved"  # and the session goes on from the candidate, its run's checkpoint
                    learner, trained = candidate, found.candidate.learner
                    state, history = found.candidate.state, found.candidate.history
                    best, best_state = tried, learner.policy_state()
                    kept = best_state
                    save_finetuned(trained, state, out_dir)
                elif no_better(tried, baseline):
                    note = "dropped"  # no better than the deployed policy so far: more episodes will not show it
                log(FinetuneRecord(total, "candidate", tried.mean, tried.std, note=note))
                if note:
                    break
    if config.rehearsal_episodes and twin is not None:  # one without a twin is refused above
        rehearsed = rehearse(twin, dynamics, learner, history, config.rehearsal_episodes)
        log(FinetuneRecord(total, "rehearsal", float(np.mean(rehearsed)), float(np.std(rehearsed)), note=twin_note))
    explored = 0
    while config.episodes - total > config.eval_episodes:  # room for an exploring episode and the last evaluation
        ep = robot.run_episode(learner.exploring_policy(), history)
        total, explored = total + 1, explored + 1
        kl, drift = learner.observe(ep, exploring=True)
        log(FinetuneRecord(total, "explore", ep.ret, kl=kl, drift=drift))
        left = config.episodes - total
        # Every eval_every exploring episodes, while room is left for the last evaluation, which ends the budget.
        periodic = (explored - warmup) % config.eval_every == 0 and left >= 2 * config.eval_episodes + 1
        if explored > warmup and (periodic or left == config.eval_episodes):
            evaluated = evaluation_of(evaluate_on_robot(robot, learner, history, config.eval_episodes),
                                      predictor(learner.frozen_policy(), history))
            total += config.eval_episodes
            note = verdict(evaluated, best, baseline, config.confidence_z)
            if note == "best, saved":
                best, best_state = evaluated, learner.policy_state()
                kept = best_state
                save_finetuned(trained, state, out_dir)
            elif note == "rolled back":
                learner.restore(best_state)
            log(FinetuneRecord(total, "eval", evaluated.mean, evaluated.std, note=note))
    learner.restore(best_state)
    return FinetuneResult(baseline.mean, best.mean, records, kept is not None)


def write_records(records: list[FinetuneRecord], path: Path) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["episode", "kind", "return", "return_std", "kl", "drift", "note"])
        for r in records:
            writer.writerow([r.episode, r.kind, f"{r.ret:.4f}", f"{r.ret_std:.4f}", f"{r.kl:.5f}", f"{r.drift:.4f}",
                             r.note])
