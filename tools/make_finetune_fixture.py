"""Train the sim policy that the fine-tuning end-to-end test starts from, and write its checkpoint.

The test (tests/robopg/test_finetune_recovery.py) needs a swing-up policy that solves the task in simulation;
training one takes minutes, more than the test suite can spend, so it is trained once, seeded, by this tool
and committed (about 200 kB: the learner without its replay memory).

    python tools/make_finetune_fixture.py [--steps 30000] [--out tests/robopg/fixtures/swingup_ddpg.pt]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from robopg.checkpoint import CHECKPOINT_FILE
from robopg.registry import make_config
from robopg.training.run import train

ENV = "robopg/CartPoleSwingUp-v0"
CONFIG = {"actor_hidden": [64, 64], "critic_hidden": [64, 64], "seed": 0}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "robopg" / "fixtures" / "swingup_ddpg.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = train(ENV, make_config("ddpg", {**CONFIG, "total_steps": args.steps}), Path(folder) / "run")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(folder) / "run" / CHECKPOINT_FILE, args.out)
    print(f"wrote {args.out}: final evaluation return {result.final_eval}")


if __name__ == "__main__":
    main()
