"""The ``robopg`` command: builds configs and calls library functions; no logic of its own.

Every error a user can cause ends in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from robopg.errors import RobopgError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Policy-gradient RL from PyBullet simulation to robot hardware.")


@app.callback()
def root() -> None:
    """Train in simulation, export to ONNX, deploy to a robot over a serial link."""


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's input errors into one clear line and exit code 2."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RobopgError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


@app.command("train-sim")
@user_errors
def train_sim(
    env: Annotated[str | None, typer.Option(help="Gymnasium id: ours (robopg/...), Gymnasium's, or module:Id.")] = None,
    algo: Annotated[str, typer.Option(
        help="ddpg, td3, dpg (deterministic); reinforce, ac, a2c, a2c_sil, offpac, a3c (Gaussian policies).")] = "ddpg",
    config: Annotated[Path | None, typer.Option(help="TOML file of config values.")] = None,
    steps: Annotated[int | None, typer.Option(help="Total environment steps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder to create (default runs/ALGO-ENV-SEED).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder from its last checkpoint.")]
    = None,
    workers: Annotated[int | None, typer.Option(help="A3C: number of asynchronous workers.")] = None,
    backend: Annotated[str | None, typer.Option(help="A3C: local (processes) or ray.")] = None,
    address: Annotated[str | None, typer.Option(help="A3C on Ray: the cluster's address (default: start one).")]
    = None,
    quiet: Annotated[bool, typer.Option(help="No progress output.")] = False,
) -> None:
    """Train a policy in simulation; its deterministic part (the actor, or the Gaussian mean) is what deploys."""
    from robopg import train as training
    from robopg.config import load_config, make_config

    if resume is not None:
        result = training.resume(resume, total_steps=steps, show_progress=not quiet)
    else:
        if env is None:
            fail("--env is required (or --resume RUN_DIR)")
        given = {"total_steps": steps, "seed": seed, "workers": workers, "backend": backend, "ray_address": address}
        overrides = {k: v for k, v in given.items() if v is not None}
        cfg = load_config(algo, config, overrides) if config else make_config(algo, overrides)
        run_dir = out or Path("runs") / f"{algo}-{env.replace('/', '_').replace(':', '_')}-{cfg.seed}"
        result = training.train(env, cfg, run_dir, show_progress=not quiet)
    typer.echo(f"trained {result.steps} steps in {result.seconds:.0f} s; "
               f"final evaluation return {result.final_eval}")
    typer.echo(f"run folder: {result.run_dir} (checkpoint.pt, learning_curve.png, progress.csv, tb/)")


def main() -> None:
    app(prog_name="robopg")


if __name__ == "__main__":
    sys.exit(main())
