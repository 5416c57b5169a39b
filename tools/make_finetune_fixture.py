"""Train the sim policy that the fine-tuning tests start from, and write its checkpoint and resume state.

The tests (tests/robopg/test_finetune_recovery.py and others) need a swing-up policy that solves the task in
simulation; training one takes minutes, more than the test suite can spend, so it is trained once, seeded, by
this tool and committed: the checkpoint (about 200 kB, the learner without its replay memory) and the run's
resume state (about 2 MB with the replay memory), which training on the robot's twin continues.

    python tools/make_finetune_fixture.py [--steps 30000] [--out tests/robopg/fixtures/swingup_ddpg.pt]

writes OUT and OUT's name with ``.resume.pt`` (swingup_ddpg.resume.pt).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from robopg.checkpoint import CHECKPOINT_FILE, RESUME_FILE
from robopg.registry import make_config
from robopg.training.run import train

ENV = "robopg/CartPoleSwingUp-v0"
# The committed fixture was trained before n-step targets and critic layer normalization were the defaults.
CONFIG = {"actor_hidden": [64, 64], "critic_hidden": [64, 64], "seed": 0, "n_step": 1, "critic_layer_norm": False}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "robopg" / "fixtures" / "swingup_ddpg.pt"


def resume_path(checkpoint: Path) -> Path:
    """Where the fixture's resume state sits beside its checkpoint."""
    return checkpoint.with_suffix(".resume.pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = make_config("ddpg", {**CONFIG, "total_steps": args.steps, "checkpoint_every": args.steps})
        result = train(ENV, config, Path(folder) / "run")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(folder) / "run" / CHECKPOINT_FILE, args.out)
        shutil.copyfile(Path(folder) / "run" / RESUME_FILE, resume_path(args.out))
    print(f"wrote {args.out} and {resume_path(args.out)}: final evaluation return {result.final_eval}")


if __name__ == "__main__":
    main()
