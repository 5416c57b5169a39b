"""The ``robopg`` command: builds configs and calls library functions; no logic of its own.

Every error a user can cause ends in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
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


@app.command("export")
@user_errors
def export(
    source: Annotated[Path, typer.Argument(help="A run folder or checkpoint file.")],
    out: Annotated[Path, typer.Option(help="The ONNX file to write.")] = Path("policy.onnx"),
) -> None:
    """Write the deterministic policy (the actor, or a Gaussian policy's mean) to ONNX, verified against torch."""
    from robopg.export import TOLERANCE, export_policy

    report = export_policy(source, out)
    m = report.metadata
    typer.echo(f"wrote {report.path}: {m.algo} policy for {m.env_id}, {m.obs_dim} observations -> {m.action_dim} "
               f"actions in [{', '.join(f'{v:g}' for v in m.action_low)}] .. "
               f"[{', '.join(f'{v:g}' for v in m.action_high)}], opset {m.opset}")
    typer.echo(f"verified with onnxruntime on {report.checked_observations} observations: largest difference "
               f"{report.max_abs_error:.3g} in actuator units, {report.max_normalized_error:.3g} of the action range "
               f"(limit {TOLERANCE:g})")


@app.command("eval")
@user_errors
def evaluate_policy(
    policy: Annotated[Path, typer.Option(help="policy.onnx (onnxruntime only, no torch), a run folder or checkpoint.")],
    env: Annotated[str | None, typer.Option(help="Gymnasium id (default: the one the policy was trained on).")]
    = None,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to run.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the first episode; the others follow.")] = 0,
) -> None:
    """Run a policy without exploration noise and print its mean ± std return."""
    from robopg.envs import make_env
    from robopg.evaluation import evaluate
    from robopg.onnx_policy import OnnxPolicy, check_fits

    if policy.suffix == ".onnx":  # onnxruntime alone: what runs on a robot
        act = OnnxPolicy(policy)
        m = act.metadata
        trained_on, obs_dim, low, high = m.env_id, m.obs_dim, m.action_low, m.action_high
    else:
        from robopg.export import load_policy
        from robopg.trainer import torch_policy_fn

        module, state = load_policy(policy)
        act = torch_policy_fn(module)
        trained_on, obs_dim = state["env_id"], state["obs_dim"]
        low, high = state["action_low"].numpy(), state["action_high"].numpy()
    env_id = env or trained_on
    environment = make_env(env_id)
    space = environment.action_space
    check_fits(obs_dim, np.asarray(low), np.asarray(high), environment.observation_space.shape[0], space.low,
               space.high, f"environment {env_id}")
    result = evaluate(act, environment, episodes, seed)
    typer.echo(f"{env_id}: return {result}")


def parse_gap(items: list[str]) -> dict[str, float]:
    gap: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            gap[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            fail(f"--gap takes KEY=NUMBER (e.g. mass_scale=1.3), got {item!r}")
    return gap


@app.command("robot-sim")
@user_errors
def robot_sim(
    env: Annotated[str, typer.Option(help="The task the virtual robot simulates (a robopg/... id).")],
    mode: Annotated[str, typer.Option(help="lockstep (physics steps once per ACTION) or realtime.")] = "lockstep",
    baud: Annotated[int | None, typer.Option(help="Emulate a UART at this baud rate (default: no wire delay).")]
    = None,
    gap: Annotated[list[str] | None, typer.Option(
        help="Reality gap, repeatable: mass_scale, friction_scale, damping_scale, actuator_gain, "
             "sensor_noise_std, action_latency_steps = a number.")] = None,
    watchdog_ms: Annotated[int, typer.Option(help="Safe state and FAULT after this long without an ACTION; 0: off.")]
    = 250,
    rate: Annotated[float | None, typer.Option(help="Control rate in Hz (default: the task's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first episode's initial state.")] = 0,
    log: Annotated[Path | None, typer.Option(help="CSV log of every actuator command the robot applied.")] = None,
) -> None:
    """Serve a simulated robot behind a pseudo-terminal, speaking the serial protocol as firmware would.

    Prints the port as the first line, then serves until Ctrl-C or SIGTERM.
    """
    import signal

    from robopg.envs import make_env

    make_env(env).close()  # an unknown id is one clear error
    try:
        from sim.virtual_robot import RobotSimConfig, VirtualRobot

        robot = VirtualRobot(RobotSimConfig(env, mode=mode, baud=baud, gap=parse_gap(gap or []),  # type: ignore[arg-type]
                                            watchdog_ms=watchdog_ms, rate_hz=rate, seed=seed, log_path=log))
    except (ValueError, KeyError, OSError) as exc:
        fail(str(exc).strip("'\""))
    typer.echo(robot.port)
    typer.echo(f"virtual robot: {env}, {mode}, {1 / robot.period:g} Hz, "
               f"{'no wire delay' if baud is None else f'{baud} baud'}, gap {parse_gap(gap or []) or 'none'}, "
               f"watchdog {watchdog_ms} ms" + (f", log {log}" if log else ""))
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: robot.stop())
    with contextlib.suppress(KeyboardInterrupt):  # serve() closes the robot on its way out
        robot.serve()


def main() -> None:
    app(prog_name="robopg")


if __name__ == "__main__":
    sys.exit(main())
