"""The ``robopg`` command: builds configs and calls library functions; no logic of its own.

Every error a user can cause ends in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer
import typer.core

from firmware_bridge.errors import LinkError
from robopg.errors import RobopgError


class Commands(typer.core.TyperGroup):
    """The commands, with two changes to click's ways: usage errors (a wrong choice, a number out of range, an
    unknown option) are one line and exit code 2, like every other error of the command, instead of a framed
    report; and the help of the options of :data:`DECLARED_CHOICES` lists the values declared where they are defined
    (which the library checks, with its own one-line errors)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command_name, command in self.commands.items():
            for param in command.params:
                read = DECLARED_CHOICES.get((command_name, param.name or ""))
                if read is not None:  # help shows the choices instead of <str>, read only when help is asked for
                    param.display_type = lambda _ctx, read=read: f"[{'|'.join(read())}]"  # type: ignore[method-assign]

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # click's usage errors, as typer ships them
            typer.echo(f"error: {exc.format_message()}", err=True)
            code = exc.exit_code
        except typer.Abort:
            typer.echo("aborted", err=True)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code or 0)


app = typer.Typer(cls=Commands, invoke_without_command=True, add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Policy-gradient RL from PyBullet simulation to robot hardware.")


def training_algorithms() -> Sequence[str]:
    from robopg.registry import names

    return names()


def finetuning_methods() -> Sequence[str]:
    from robopg.registry import names

    return names(robot=True)


def a3c_backends() -> Sequence[str]:
    from robopg.algos.a3c import Backend

    return typing.get_args(Backend)


def robot_modes() -> Sequence[str]:
    from sim.virtual_robot import Mode

    return typing.get_args(Mode)


# (command, option) -> where its choices are declared.
DECLARED_CHOICES: dict[tuple[str, str], Callable[[], Sequence[str]]] = {
    ("train-sim", "algo"): training_algorithms,
    ("train-sim", "backend"): a3c_backends,
    ("robot-sim", "mode"): robot_modes,
    ("finetune", "method"): finetuning_methods,
}


def run_settings_help() -> str:
    """The settings every algorithm has, with type, range and default, from their declaration."""
    from robopg.config import RunConfig
    from robopg.settings import describe, to_toml

    rows = [f"{name} ({kind}, default {to_toml({'v': default})[4:].strip()}): {meaning}"
            for name, kind, default, meaning in describe(RunConfig)]
    return ("Settings (--set KEY=VALUE, or in the --config file) of every algorithm:\n\n" + "\n\n".join(rows)
            + "\n\nEach algorithm's own settings: robopg config ALGO.")


@app.callback()
def root(ctx: typer.Context) -> None:
    """Train in simulation, export to ONNX, deploy to a robot over a serial link."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def warn_about_task(reference: str) -> None:
    """A declared task's warnings (a control rate its serial link cannot carry), one line each."""
    from robopg.envs import task_warnings

    for line in task_warnings(reference):
        warn(line)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's input errors into one clear line and exit code 2."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RobopgError as exc:
            fail(str(exc))
        except LinkError as exc:  # the serial link or the robot: a timeout, a closed port, a fault
            fail(f"robot link: {exc}")
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


@app.command("train-sim", epilog=run_settings_help())
@user_errors
def train_sim(
    env: Annotated[str | None, typer.Option("--env", "--task", help="Gymnasium id: ours (robopg/...), Gymnasium's, "
                                            "module:Id, or a task declaration robot.toml (default: the --config file's "
                                            "env).")] = None,
    algo: Annotated[str | None, typer.Option(
        help="The algorithm (default: the --config file's algo, else ddpg); `robopg config ALGO` lists its settings.")]
    = None,
    config: Annotated[Path | None, typer.Option(help="TOML file of config values; a run folder's config.toml "
                                                     "runs that run again.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE",
        help="A config value, repeatable (--set batch_size=64 --set actor_hidden=[64,64]); wins over --config. "
             "Listed below and by `robopg config ALGO`.")] = None,
    steps: Annotated[int | None, typer.Option(help="Total environment steps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder to create (default runs/ALGO-ENV-SEED).")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Continue the run in this folder from its last checkpoint; with --randomize or --init-range, on those "
             "ranges from there on (the nominal task first, then robustness; or the ranges `robopg identify` "
             "wrote); --set may change when it evaluates, checkpoints and logs (--set eval_episodes=20).")] = None,
    workers: Annotated[int | None, typer.Option(help="A3C: number of asynchronous workers.")] = None,
    backend: Annotated[str | None, typer.Option(help="A3C: local (processes) or ray.")] = None,
    address: Annotated[str | None, typer.Option(help="A3C on Ray: the cluster's address (default: start one).")]
    = None,
    randomize: Annotated[list[str] | None, typer.Option(
        metavar="KEY=LOW:HIGH", help="Domain randomization of a robopg task, repeatable: a range sampled at every "
        "reset (mass_scale=0.7:1.5, action_latency_steps=0:3) or a fixed value (actuator_gain=0.8); training and "
        "evaluation alike. Keys: mass_scale, friction_scale, damping_scale, actuator_gain, sensor_noise_std, "
        "action_latency_steps.")] = None,
    init_range: Annotated[float | None, typer.Option(help="Scale of a robopg task's random initial-state "
                                                          "perturbation (0: the nominal state; default 1).")] = None,
    video_every: Annotated[int | None, typer.Option(help="Record a video of an evaluation episode every N steps "
                                                         "(run folder's videos/).")] = None,
    track: Annotated[bool, typer.Option(help="Also log to Weights & Biases (pip install 'robopg\\[track]'; "
                                             "WANDB_MODE=offline keeps it local).")] = False,
    wandb_project: Annotated[str, typer.Option(help="W&B project of --track.")] = "robopg",
    quiet: Annotated[bool, typer.Option(help="No progress output.")] = False,
) -> None:
    """Train a policy in simulation; its deterministic part (the actor, or the Gaussian mean) is what deploys."""
    from robopg.registry import DEFAULT_ALGORITHM, make_config, read_config_file
    from robopg.settings import parse_assignments
    from robopg.training import run as training

    if resume is not None:
        if env or algo or config or seed is not None or track:
            fail("--resume continues a run with its own env and config: of the run's settings only --steps, "
                 "--randomize, --init-range, --video-every and --set of " + ", ".join(training.SCHEDULE_SETTINGS)
                 + " apply")
        schedule = parse_assignments(set_ or [], "--set") | (
            {"video_every": video_every} if video_every is not None else {})
        result = training.resume(resume, total_steps=steps, randomize=tuple(randomize) if randomize else None,
                                 init_range=init_range, schedule=schedule, show_progress=not quiet, warn=warn)
    else:
        file = read_config_file(config) if config is not None else None
        if file is not None:
            for difference in training.version_differences(file.versions):
                warn(difference)
        env = env or (file.env if file else None)
        if env is None:
            fail("--env is required (or --config of a run folder's config.toml, or --resume RUN_DIR)")
        name = file.algorithm(algo) if file else algo or DEFAULT_ALGORITHM
        given = {"total_steps": steps, "seed": seed, "workers": workers, "backend": backend, "ray_address": address,
                 "video_every": video_every, "randomize": tuple(randomize) if randomize else None,
                 "init_range": init_range}
        overrides = {**parse_assignments(set_ or [], "--set"), **{k: v for k, v in given.items() if v is not None}}
        cfg = make_config(name, {**(file.values if file else {}), **overrides})
        for warning in cfg.config_warnings():
            warn(warning)
        warn_about_task(env)
        run_dir = out or Path("runs") / f"{name}-{env.replace('/', '_').replace(':', '_')}-{cfg.seed}"
        result = training.train(env, cfg, run_dir, show_progress=not quiet,
                                wandb_project=wandb_project if track else None)
    typer.echo(f"trained {result.steps} steps in {result.seconds:.0f} s; "
               f"final evaluation return {result.final_eval}")
    typer.echo(f"best evaluation return {result.best_eval} at step {result.best_step}: {result.run_dir / 'best.pt'}")
    typer.echo(f"run folder: {result.run_dir} (config.toml, checkpoint.pt, best.pt, learning_curve.png, eval.csv, "
               "tb/)")


@app.command("export")
@user_errors
def export(
    source: Annotated[Path, typer.Argument(help="A run folder or checkpoint file.")],
    out: Annotated[Path | None, typer.Option(help="The ONNX file to write (default policy.onnx), or with --format c "
                                             "the folder for the C files (default policy_c).")] = None,
    format: Annotated[str, typer.Option(help="onnx, or c (float32 C for a microcontroller).")] = "onnx",
) -> None:
    """Write the deterministic policy (the actor, or a Gaussian policy's mean) to ONNX, verified against torch,
    or as C, verified against onnxruntime."""
    from robopg.errors import ExportError
    from robopg.export import TOLERANCE, export_c, export_policy

    if format == "c":
        c_report = export_c(source, out or Path("policy_c"))
        m = c_report.metadata
        typer.echo(f"wrote {c_report.directory}/robopg_policy.[ch] and robopg_policy_check.h: {m.algo} policy for "
                   f"{m.env_id}, {m.obs_dim} observations -> {m.action_dim} actions, "
                   f"{c_report.flash_bytes} bytes of constants")
        if c_report.max_normalized_error is None:
            typer.echo("not compiled here (no C compiler on the PATH): firmware/tests/test_policy.c checks it")
        else:
            typer.echo(f"compiled and checked against onnxruntime on {c_report.checked_observations} observations: "
                       f"largest difference {c_report.max_normalized_error:.3g} of the action range "
                       f"(limit {c_report.allowed:.3g})")
        return
    if format != "onnx":
        raise ExportError(f"unknown --format {format!r}: onnx or c")
    report = export_policy(source, out or Path("policy.onnx"))
    m = report.metadata
    history = f" + {m.history} steps of history" if m.history else ""
    typer.echo(f"wrote {report.path}: {m.algo} policy for {m.env_id}, {m.obs_dim} observations{history} -> "
               f"{m.action_dim} actions in [{', '.join(f'{v:g}' for v in m.action_low)}] .. "
               f"[{', '.join(f'{v:g}' for v in m.action_high)}], opset {m.opset}")
    typer.echo(f"verified with onnxruntime on {report.checked_observations} observations: largest difference "
               f"{report.max_abs_error:.3g} in actuator units, {report.max_normalized_error:.3g} of the action range "
               f"(limit {TOLERANCE:g})")


@app.command("eval")
@user_errors
def evaluate_policy(
    policy: Annotated[Path, typer.Option(help="policy.onnx (onnxruntime only, no torch), a run folder or checkpoint.")],
    env: Annotated[str | None, typer.Option("--env", "--task", help="Gymnasium id, module:Id or robot.toml "
                                                                   "(default: the one the policy was trained on).")]
    = None,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to run.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the first episode; the others follow.")] = 0,
    video: Annotated[Path | None, typer.Option(help="Also write the episodes to this video (.mp4, .gif).")] = None,
    gap: Annotated[list[str] | None, typer.Option(metavar="KEY=VALUE", help="Evaluate on fixed dynamics of a robopg "
                                                  "task, repeatable (actuator_gain=0.7).")] = None,
    randomize: Annotated[list[str] | None, typer.Option(metavar="KEY=LOW:HIGH", help="Evaluate over dynamics sampled "
                                                        "at every reset, as train-sim --randomize.")] = None,
) -> None:
    """Run a policy without exploration noise and print its mean ± std return."""
    from robopg.api import evaluate, load_policy

    parse_gap(gap or [])
    dynamics = [*(gap or []), *(randomize or [])]
    loaded = load_policy(policy)
    result = evaluate(loaded, env, episodes=episodes, seed=seed, video=video, randomize=dynamics)
    typer.echo(f"{env or loaded.env_id}" + (f" with {', '.join(dynamics)}" if dynamics else "") + f": return {result}")
    if video is not None:
        typer.echo(f"video: {video} ({sum(result.lengths) + len(result.lengths)} frames)")


def parse_gap(items: list[str]) -> dict[str, float]:
    """``--gap KEY=VALUE`` (repeatable): fixed dynamics, written as ``--randomize`` writes a value."""
    from sim.randomization import parse_randomize

    if any(":" in item.partition("=")[2] for item in items):
        fail("--gap takes KEY=VALUE, a fixed value; a range KEY=LOW:HIGH is --randomize")
    try:
        return parse_randomize(items)  # type: ignore[return-value]  (no ranges: checked above)
    except ValueError as exc:
        fail(f"--gap: {exc}")


@app.command("robot-sim")
@user_errors
def robot_sim(
    env: Annotated[str, typer.Option("--env", "--task", help="The task the virtual robot simulates: a robopg/... id, "
                                                             "module:Id or a task declaration robot.toml.")],
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
    plant_port: Annotated[str | None, typer.Option(
        help="Serve only the plant, on this port: the plant line of real firmware (the C host build's second "
             "pty, or UART1 of the board under QEMU), which keeps its own limits, latches and watchdog.")] = None,
    busy_poll: Annotated[bool, typer.Option(help="Poll the port instead of sleeping between frames: answers as "
                                                 "promptly as a microcontroller's interrupt, at the cost of a core.")]
    = False,
) -> None:
    """Serve a simulated robot behind a pseudo-terminal, speaking the serial protocol as firmware would.

    Prints the port as the first line, then serves until Ctrl-C or SIGTERM.
    """
    import signal

    from robopg.envs import make_env

    make_env(env).close()  # an unknown id is one clear error
    warn_about_task(env)
    gap_values = parse_gap(gap or [])
    if plant_port is not None:
        serve_plant(env, plant_port, mode, gap_values, rate, seed, log)
        return
    try:
        from sim.virtual_robot import RobotSimConfig, VirtualRobot

        robot = VirtualRobot(RobotSimConfig(env, mode=mode, baud=baud, gap=gap_values,  # type: ignore[arg-type]
                                            watchdog_ms=watchdog_ms, rate_hz=rate, seed=seed, log_path=log,
                                            busy_poll=busy_poll))
    except (ValueError, KeyError, OSError) as exc:
        fail(exc.args[0] if isinstance(exc, KeyError) else str(exc))  # a KeyError's str() is its message quoted
    typer.echo(robot.port)
    typer.echo(f"virtual robot: {env}, {mode}, {1 / robot.period:g} Hz, "
               f"{'no wire delay' if baud is None else f'{baud} baud'}, gap {gap_values or 'none'}, "
               f"watchdog {watchdog_ms} ms" + (f", log {log}" if log else ""))
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: robot.stop())
    with contextlib.suppress(KeyboardInterrupt):  # serve() closes the robot on its way out
        robot.serve()


def serve_plant(env: str, port: str, mode: str, gap: dict[str, Any], rate: float | None, seed: int,
                log: Path | None) -> None:
    """``robot-sim --plant-port``: the task served on a firmware's plant line until Ctrl-C or SIGTERM."""
    import signal

    from sim.plant_server import PlantServer
    from sim.virtual_robot import RobotSimConfig

    try:
        server = PlantServer(RobotSimConfig(env, mode=mode, gap=gap, rate_hz=rate, seed=seed,  # type: ignore[arg-type]
                                            log_path=log), port)
    except (ValueError, KeyError, OSError) as exc:
        fail(exc.args[0] if isinstance(exc, KeyError) else str(exc))
    typer.echo(f"plant: {env} on {port}, {mode}, {1 / server.period:g} Hz, gap {gap or 'none'}"
               + (f", log {log}" if log else ""))
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    with contextlib.suppress(KeyboardInterrupt):  # serve() closes the plant on its way out
        server.serve()


MaxFaults = Annotated[int, typer.Option(min=0, help="Link faults (a lost line, a corrupted frame, the watchdog "
                                                  "they trip) to ride out: the episode in flight is discarded, the "
                                                  "session handshakes again, releases the watchdog's latch and goes "
                                                  "on; one more ends it. 0: the first ends it.")]
ReconnectTimeout = Annotated[float, typer.Option(min=0.0, help="Seconds to wait for the line after a link fault.")]
PolicyTask = Annotated[str | None, typer.Option(help="The policy's task (robot.toml or module:Id) when the one its "
                                                     "metadata names is not found here; it must name the same "
                                                     "observations and actions.")]


def ask_operator_to_reset() -> None:
    """For a robot that cannot reset itself: wait for the operator to put it back."""
    typer.prompt("reset the robot to its start, then press Enter", default="", show_default=False)


@app.command("deploy")
@user_errors
def deploy(
    policy: Annotated[Path, typer.Option(help="The exported policy.onnx.")],
    port: Annotated[str, typer.Option(help="Serial port or pyserial URL of the robot (e.g. /dev/ttyUSB0).")],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to run.")] = 1,
    rate: Annotated[float | None, typer.Option(min=0, help="Pace a lockstep robot at this rate in Hz (default: the "
                                                           "policy's control rate; 0: as fast as the robot answers). "
                                                           "A real-time robot sets its own.")] = None,
    baud: Annotated[int, typer.Option(help="Baud rate of a real serial port.")] = 115200,
    max_delta: Annotated[float | None, typer.Option(help="Largest change of a command per step, actuator units.")]
    = None,
    lowpass: Annotated[float | None, typer.Option(help="Low-pass factor in (0, 1] on the commands.")] = None,
    log: Annotated[Path | None, typer.Option(help="Save the trajectory (observations, actions, commands) here, "
                                                  ".npz, rewritten as each episode completes.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Steps per episode (default: the task's episode length).")]
    = None,
    clear: Annotated[bool, typer.Option(help="Release an e-stop or fault latch before starting.")] = False,
    ort_threads: Annotated[int, typer.Option(min=1, help="onnxruntime threads for inference (1 leaves the other "
                                                         "cores to the rest of the robot).")] = 1,
    ort_spinning: Annotated[bool, typer.Option(help="Let onnxruntime's threads spin between calls: lower latency "
                                                    "with 2+ threads, for a core kept busy.")] = False,
    busy_poll: Annotated[bool, typer.Option(help="Poll the serial port instead of sleeping until bytes arrive: "
                                                 "tens of microseconds less per frame, for a core kept busy.")]
    = False,
    max_faults: MaxFaults = 10,
    reconnect_timeout: ReconnectTimeout = 10.0,
    task: PolicyTask = None,
) -> None:
    """Run an ONNX policy on a robot at a fixed rate, behind the safety layer (onnxruntime only: no torch)."""
    from robopg.runtime.deploy import ControlLoop, open_robot, robot_session, task_functions
    from robopg.runtime.onnx_policy import OnnxPolicy
    from robopg.runtime.safety import SafetyConfig, SafetyLayer

    act = OnnxPolicy(policy, threads=ort_threads, spinning=ort_spinning)
    meta = act.metadata
    safety = SafetyLayer(np.array(meta.action_low), np.array(meta.action_high), SafetyConfig(max_delta, lowpass))
    with open_robot(port, meta, baudrate=baud, clear=clear, busy_poll=busy_poll) as link, robot_session(link):
        warn_about_task(task or meta.env_id)
        functions = task_functions(task or meta.env_id, steps, need_reward=False, policy=meta)
        pace = meta.control_hz if rate is None else rate or None
        loop = ControlLoop(link, safety, functions, rate_hz=pace, wait_for_operator=ask_operator_to_reset,
                           keep_episodes=log is not None, max_faults=max_faults,
                           reconnect_timeout=reconnect_timeout, log=log, history=meta.history)
        typer.echo(f"robot {link.info.firmware_id}: {meta.algo} policy for {meta.env_id}"
                   + (f", {meta.history} steps of history" if meta.history else ""))
        typer.echo(f"pacing: {pacing(link.info.lockstep, 1 / link.info.control_period, pace, rate)}")
        returns = []
        for i in range(episodes):
            episode = loop.run_episode(act)
            returns.append(episode.ret)
            typer.echo(f"episode {i + 1}: return {episode.ret:.2f} over {len(episode)} steps"
                       + (" (ended by the safety layer's observation bounds)" if episode.stopped_by_safety else ""))
    typer.echo(f"return {np.mean(returns):.2f} ± {np.std(returns):.2f} over {len(returns)} episodes")
    typer.echo(f"timing: {loop.deadlines.summary()}; link round trip p50 {1e3 * link.stats.rtt.percentile(50):.2f} ms")
    typer.echo(f"link: {link_summary(loop)}")
    typer.echo(f"safety: {safety.counters}")
    if log is not None:
        typer.echo(f"trajectory: {log}")


@app.command("supervise")
@user_errors
def supervise(
    policy: Annotated[Path, typer.Option(help="The exported policy.onnx the firmware's C policy was exported with "
                                              "(for the rewards).")],
    port: Annotated[str, typer.Option(help="Serial port or pyserial URL of the robot.")],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to run.")] = 1,
    steps: Annotated[int | None, typer.Option(min=1, help="Steps per episode (default: the task's episode length).")]
    = None,
    baud: Annotated[int, typer.Option(help="Baud rate of a real serial port.")] = 115200,
    clear: Annotated[bool, typer.Option(help="Release an e-stop or fault latch before starting.")] = False,
) -> None:
    """Supervise a robot whose firmware runs the policy itself (POLICY mode, robopg export --format c): start each
    episode, read its observations, stop it on any trouble; the host sends no action."""
    from robopg.runtime.deploy import open_robot, task_functions
    from robopg.runtime.onnx_policy import OnnxPolicy
    from robopg.runtime.supervise import supervise_episode

    act = OnnxPolicy(policy)
    meta = act.metadata
    with open_robot(port, meta, baudrate=baud, clear=clear) as link:
        task = task_functions(meta.env_id, steps)
        typer.echo(f"robot {link.info.firmware_id}: runs its own policy for {meta.env_id}; supervising")
        returns = []
        for i in range(episodes):
            episode = supervise_episode(link, task, act, steps)
            returns.append(episode.ret)
            typer.echo(f"episode {i + 1}: return {episode.ret:.2f} over {episode.steps} steps")
    typer.echo(f"return {np.mean(returns):.2f} ± {np.std(returns):.2f} over {len(returns)} episodes")


def pacing(lockstep: bool, robot_hz: float, pace: float | None, rate: float | None) -> str:
    """What sets the control loop's rate, in words."""
    if not lockstep:
        return f"the robot's own {robot_hz:g} Hz (a real-time robot)"
    if pace is None:
        return "none: as fast as the robot answers (--rate 0)" if rate == 0 else \
            "none: the policy has no control rate and no --rate was given"
    source = "--rate" if rate else "the policy's control rate; --rate HZ to change it, --rate 0 for none"
    return f"{pace:g} Hz ({source})"


def link_summary(loop: Any) -> str:
    """Link faults ridden out, episodes they discarded, requests resent: one line."""
    return (f"{len(loop.faults)} faults ridden out, {loop.discarded} episodes discarded, "
            f"{loop.link.stats.resends} frames resent")


@app.command("finetune")
@user_errors
def finetune(
    policy: Annotated[Path, typer.Option(help="The deployed policy.onnx.")],
    checkpoint: Annotated[Path, typer.Option(help="The run folder or checkpoint it was exported from.")],
    port: Annotated[str, typer.Option(help="Serial port or pyserial URL of the robot.")],
    out: Annotated[Path, typer.Option(help="Folder for finetune.csv, and checkpoint.pt and policy.onnx when they "
                                           "beat the deployed policy.")] = Path("finetune"),
    episodes: Annotated[int | None, typer.Option(help="Robot episodes in all: baseline, exploring and evaluation "
                                                      "alike (default 50).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file of the session's and the method's settings "
                                                     "(`robopg config METHOD` lists them).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE",
        help="A session or method setting, repeatable (--set twin_jobs=0); wins over --config.")] = None,
    method: Annotated[str, typer.Option(help="Fine-tuning method (robopg/registry.py).")] = "cautious_a2c",
    baud: Annotated[int, typer.Option(help="Baud rate of a real serial port.")] = 115200,
    max_delta: Annotated[float | None, typer.Option(help="Largest change of a command per step, actuator units.")]
    = None,
    clear: Annotated[bool, typer.Option(help="Release an e-stop or fault latch before starting.")] = False,
    log: Annotated[Path | None, typer.Option(help="Save every completed robot episode here, .npz, rewritten as each "
                                                  "one completes.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Steps per episode, on the robot and its twin (default: the "
                                                          "task's episode length).")] = None,
    max_faults: MaxFaults = 10,
    reconnect_timeout: ReconnectTimeout = 10.0,
    task: PolicyTask = None,
) -> None:
    """Fine-tune the deployed policy on the robot (cautious online A2C by default); keeps the result only if it is
    clearly better."""
    from dataclasses import replace

    from robopg.checkpoint import RESUME_FILE, checkpoint_file, restore
    from robopg.finetune import finetune as run_finetune
    from robopg.finetune import finetune_configs
    from robopg.finetune.twin import simulated_twin
    from robopg.finetune.twin_training import require_run
    from robopg.registry import read_toml
    from robopg.runtime.deploy import ControlLoop, open_robot, robot_session, task_functions
    from robopg.runtime.onnx_policy import OnnxPolicy
    from robopg.runtime.safety import SafetyConfig, SafetyLayer
    from robopg.settings import parse_assignments

    fields: dict[str, Any] = {**(read_toml(config) if config is not None else {}),
                              **parse_assignments(set_ or [], "--set")}
    if episodes is not None:
        fields["episodes"] = episodes
    cfg, method_cfg = finetune_configs(fields, method)
    meta = OnnxPolicy(policy).metadata
    restored = restore(checkpoint)
    restored.check_source_of(meta.checkpoint_sha256, checkpoint)
    run_state = checkpoint_file(checkpoint).parent / RESUME_FILE
    if cfg.twin_training_steps:
        require_run(run_state)  # before the robot is opened
    out.mkdir(parents=True, exist_ok=True)
    safety_config = SafetyConfig(max_delta)
    safety = SafetyLayer(np.array(meta.action_low), np.array(meta.action_high), safety_config)
    warn_about_task(task or meta.env_id)
    with open_robot(port, meta, baudrate=baud, clear=clear) as link, robot_session(link):
        loop = ControlLoop(link, safety, task_functions(task or meta.env_id, steps, policy=meta),
                           wait_for_operator=ask_operator_to_reset, max_faults=max_faults,
                           reconnect_timeout=reconnect_timeout, log=log, history=meta.history)
        result = run_finetune(loop, restored.learner, restored.state, cfg, method_cfg, out, report=lambda r: typer.echo(
            f"{r.kind:>8} episode {r.episode:3d}: return {r.ret:8.2f}"
            + (f" ± {r.ret_std:.2f}" if r.ret_std == r.ret_std else "")
            + (f"  kl {r.kl:.4f} drift {r.drift:.3f}" if r.kl == r.kl else "") + (f"  {r.note}" if r.note else "")),
            twin=simulated_twin(replace(meta, env_id=task) if task else meta, safety_config, method_cfg.seed,
                                steps),
            run_state=run_state)
    typer.echo(f"link: {link_summary(loop)}")
    typer.echo(f"deployed policy {result.baseline:.2f}, best fine-tuned {result.best:.2f} "
               "(mean returns of noise-free episodes on the robot)")
    if result.improved:
        typer.echo(f"wrote {out / 'checkpoint.pt'} and {out / 'policy.onnx'}")
    else:
        typer.echo("no evaluation was clearly better than the deployed policy: nothing written but finetune.csv")


@app.command("identify")
@user_errors
def identify_dynamics(
    log: Annotated[Path, typer.Option(help="A robot trajectory log (.npz of `robopg deploy --log`).")],
    env: Annotated[str, typer.Option("--env", "--task", help="The simulated task the robot runs (robopg/..., "
                                                             "module:Id or robot.toml).")],
    params: Annotated[str, typer.Option(help="Comma-separated dynamics to fit: mass_scale, friction_scale, "
                                             "damping_scale, actuator_gain, action_latency_steps, and "
                                             "sensor_noise_std (estimated from the fitted model's one-step "
                                             "residuals).")],
    config: Annotated[Path | None, typer.Option(help="TOML file of identify settings (horizon, stride, ...).")]
    = None,
    out: Annotated[Path, typer.Option(help="TOML file to write: the estimates and a randomization range around "
                                           "each.")] = Path("identified.toml"),
) -> None:
    """Fit the simulator's dynamics parameters to the robot's logged trajectories (system identification)."""
    from robopg.atomic import atomic_path
    from robopg.identify import LATENCY, IdentifyConfig, identify, load_log
    from robopg.registry import read_toml
    from robopg.settings import build, to_toml
    from sim.randomization import format_dynamics, parse_dynamics

    cfg = build(IdentifyConfig, read_toml(config) if config is not None else {})
    episodes = load_log(log)
    names = [p.strip() for p in params.split(",") if p.strip()]
    result = identify(env, episodes, names, cfg)
    typer.echo(f"fitted {', '.join(names)} of {env} to {len(episodes)} logged episodes ({log})")
    for key, value in result.estimates.items():
        if key == LATENCY:
            tried = ", ".join(f"{k}: {c:.3g}" for k, c in result.latency_costs.items())
            typer.echo(f"  {key:<22} {value:.0f}  (prediction error by latency: {tried})")
        else:
            typer.echo(f"  {key:<22} {value:.4f} ± {result.standard_errors[key]:.4f}")
    typer.echo(f"prediction error (mean squared, each observation scaled by its spread): {result.nominal_cost:.4g} "
               f"with the nominal model, {result.cost:.4g} with the identified one")
    for a, b, r in result.confounded():
        typer.echo(f"warning: {a} and {b} are correlated (r = {r:+.2f}): the log determines mostly a combination "
                   "of the two; fix one of them or log more varied motion")
    ranges = result.randomization(cfg)
    randomize = format_dynamics(parse_dynamics(ranges))
    document = {"env": env, "log": str(log), "estimates": result.estimates,
                "standard_errors": result.standard_errors, "randomize": list(randomize),
                "dynamics": {k: [int(lo), int(hi)] if k == LATENCY else [lo, hi] for k, (lo, hi) in ranges.items()}}
    with atomic_path(out) as tmp:
        tmp.write_text(to_toml(document))
    typer.echo(f"wrote {out}: [dynamics] and randomize hold a range around each estimate to train on")
    typer.echo("train on it: robopg train-sim --resume RUN --steps N " + " ".join(f"--randomize {r}" for r in randomize)
               + " (the deployed policy's run continued; or a new run with the same --randomize)")


@app.command("config")
@user_errors
def show_config(
    algo: Annotated[str, typer.Argument(help="An algorithm (ddpg, a2c, ...) or a fine-tuning method (cautious_a2c).")],
) -> None:
    """Print every setting of ALGO with its default, type, range and meaning, as a TOML file to edit."""
    from robopg.finetune import FinetuneConfig
    from robopg.registry import ALGORITHMS
    from robopg.settings import describe, to_toml

    entry = ALGORITHMS.get(algo)
    if entry is None:
        fail(f"unknown algorithm or fine-tuning method {algo!r} (choose from {', '.join(ALGORITHMS)})")
    classes = [entry.config] if entry.trains_in_simulation else [FinetuneConfig, entry.config]
    typer.echo(f"# {algo}: {entry.summary}")
    if entry.trains_in_simulation:
        typer.echo(to_toml({"algo": algo}).rstrip())
    for cls in classes:
        for name, kind, default, meaning in describe(cls):
            typer.echo(f"\n# {meaning} ({kind})\n{to_toml({name: default}).rstrip()}")


@app.command("plot")
@user_errors
def plot(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to compare (their eval.csv).")],
    out: Annotated[Path, typer.Option(help="The picture to write (.png, .svg, .pdf).")] = Path("curves.png"),
) -> None:
    """Overlay the evaluation curves (mean ± std return against steps) of several runs on one picture."""
    from robopg.training.metrics import plot_runs

    typer.echo(f"wrote {plot_runs(runs, out)}: {len(runs)} run(s)")


def main() -> None:
    app(prog_name="robopg")


if __name__ == "__main__":
    sys.exit(main())
