"""Training on the robot's twin: the deployed policy's own training run, continued on the identified dynamics.

The simulator already learns far faster than the robot can: the swing-up's DDPG reaches the gapped robot's
oracle within tens of simulated episodes, where cautious A2C on the robot needs hundreds. So once the robot's
dynamics are identified from its baseline episodes (``twin.identified_dynamics``), the checkpoint's run is
resumed (its algorithm, settings, optimizers and, for DDPG/TD3, its replay memory) on the task's simulator
randomized over the identified ranges, for ``steps`` more steps. Keeping the simulation's replay is what keeps
it stable: prior data mixed into the new data's updates, as RLPD (Ball et al. 2023) does with demonstrations;
from an empty replay the same continuation collapsed (docs/design.md).

Its evaluations run on the twin too, from the same initial states and dynamics draws each time (common random
numbers), so the snapshots and the deployed policy are compared on equal terms. The best of a dozen snapshots on
ten episodes is flattered by its selection (the winner's curse: on the swing-up, whose returns spread by ±65, a
snapshot chosen at 130 against the deployed 105 then averaged 106 over 10 robot episodes), so the chosen
snapshot and the deployed policy are evaluated again on ``confirm_episodes`` fresh episodes of the twin,
paired, and the snapshot becomes the candidate only if it beats the deployed policy there too. The robot still
has the last word (the session's evaluations): the twin is a model of the robot, not the robot.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from robopg import checkpoint
from robopg.checkpoint import Restored
from robopg.config import RunConfig
from robopg.core.nets import torch_policy_fn
from robopg.envs import make_env
from robopg.errors import ConfigError
from robopg.evaluation import evaluate
from robopg.registry import config_from_dict
from robopg.training.loop import EVAL_SEED_OFFSET
from robopg.training.run import make_trainer
from sim.randomization import format_dynamics, parse_dynamics

CONFIRM_SEED_OFFSET = 2 * EVAL_SEED_OFFSET  # past the run's training and evaluation episodes' seeds


@dataclass(frozen=True)
class TwinTraining:
    """What training on the twin found: the deployed policy's and the best snapshot's mean return on the twin's
    evaluation episodes, and the snapshot's checkpoint (None when no snapshot beat the deployed policy)."""

    deployed: float
    best: float
    best_step: int  # steps of twin training before the best snapshot
    candidate: Restored | None
    confirmed: tuple[float, float] | None = None  # the deployed policy's and the snapshot's fresh-episode means


def require_run(resume_file: Path | None) -> None:
    """Refuse, in one line, training on the twin without the run it continues."""
    if resume_file is None or not resume_file.is_file():
        raise ConfigError(f"training on the twin continues the policy's run, and {resume_file or 'its resume.pt'} is "
                          "missing (the run folder's resume.pt, beside checkpoint.pt); set twin_training_steps = 0 "
                          "to go without")


def train_on_twin(resume_file: Path, dynamics: dict[str, Any], steps: int, eval_every: int, eval_episodes: int,
                  out_dir: Path, confirm_episodes: int = 30) -> TwinTraining:
    """Resume the run of ``resume_file`` on the task randomized over ``dynamics`` for ``steps`` steps in
    ``out_dir`` (a run folder of its own: eval.csv, best.pt), evaluating every ``eval_every`` steps on
    ``eval_episodes`` episodes of the same twin; the best snapshot is confirmed on ``confirm_episodes`` fresh
    ones."""
    require_run(resume_file)
    state = checkpoint.load(resume_file)
    start = int(state["step"])
    config = replace(config_from_dict(state["config"]), total_steps=start + steps, eval_every=eval_every,
                     eval_episodes=eval_episodes, randomize=format_dynamics(parse_dynamics(dynamics)),
                     checkpoint_every=start + steps, video_every=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = make_trainer(state["env_id"], config, out_dir, show_progress=False)
    try:
        trainer.restore(state)
        trainer.best_eval = None  # the simulation's best is no reference on the twin; the deployed policy is
        deployed = trainer.evaluate().mean  # best.pt until a snapshot beats it
        deployed_policy = copy.deepcopy(trainer.learner.policy()).eval()
    except BaseException:
        trainer.close()  # run() closes it otherwise
        raise
    result = trainer.run()
    if result.best_step <= start:
        return TwinTraining(deployed, result.best_eval.mean, 0, None)
    snapshot = checkpoint.restore(out_dir / checkpoint.BEST_FILE)
    confirmed = paired_means(state["env_id"], config, (deployed_policy, snapshot.policy()), confirm_episodes)
    return TwinTraining(deployed, result.best_eval.mean, result.best_step - start,
                        snapshot if confirmed[1] > confirmed[0] else None, confirmed)


def paired_means(env_id: str, config: RunConfig, policies: tuple[torch.nn.Module, ...],
                 episodes: int) -> tuple[float, ...]:
    """Each policy's mean return on the same ``episodes`` fresh episodes of the twin (initial states and dynamics
    draws seeded alike, none of them a training or selection episode's)."""
    env = make_env(env_id, **config.env_options())
    try:
        return tuple(evaluate(torch_policy_fn(policy), env, episodes, config.seed + CONFIRM_SEED_OFFSET).mean
                     for policy in policies)
    finally:
        env.close()
