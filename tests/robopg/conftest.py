import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

# Worker processes (A3C's local workers, Ray actors) import the toy task by module name.
HERE = str(Path(__file__).parent)
sys.path.insert(0, HERE)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))

import toy_envs  # noqa: E402, F401  (registers PointToOrigin-v0 in this process too)

# Small enough to train in seconds on Pendulum-v1 (200-step episodes), big enough to exercise every phase.
TINY = {
    "total_steps": 800, "learning_starts": 200, "batch_size": 32, "buffer_size": 5000,
    "eval_every": 400, "eval_episodes": 1, "checkpoint_every": 200, "log_every": 100,
    "actor_hidden": [16], "critic_hidden": [16],
}


@pytest.fixture
def tiny():
    return dict(TINY)


def invoke(*args: str) -> subprocess.CompletedProcess:
    """``robopg ARGS`` in this process (the CLI's imports are paid once per session, not per call)."""
    from robopg.cli import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)
