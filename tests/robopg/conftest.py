import ast
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


def modules_loaded_by_cli(*args: str, modules: tuple[str, ...] = ("torch", "pybullet")) -> tuple[str, list[str]]:
    """Run ``robopg ARGS`` in a fresh interpreter; its output and which of ``modules`` it imported."""
    code = ("import sys; from robopg.cli import main\n"
            f"sys.argv = ['robopg', *{list(args)!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            f"print(sorted(m for m in {modules!r} if m in sys.modules))")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    output, _, loaded = ran.stdout.rstrip().rpartition("\n")
    return output, ast.literal_eval(loaded)
