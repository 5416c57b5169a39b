"""robopg's sessions on the C firmware with the swing-up plant in the loop, on the host build and on the Cortex-M
port under QEMU: a fine-tuning session (``robopg finetune``, unchanged: baseline, training and rehearsal on the
identified twin, exploring episodes, an evaluation), its safe stop on Ctrl-C, and POLICY mode (the firmware runs
the exported C policy itself; ``robopg supervise``). Episodes are 50 steps (1 s of plant time) or fewer."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from plant_rig import FIRMWARE, ROBOPG, SWING_UP, SWING_UP_FIXTURE, PlantInLoop, host_build_in_loop, make, qemu_in_loop

from firmware_bridge.codes import StatusFlags
from firmware_bridge.link import RobotLink
from firmware_bridge.qemu import QEMU, qemu_available
from robopg.checkpoint import CHECKPOINT_FILE, RESUME_FILE
from sim.virtual_robot import RobotSimConfig, in_memory_robot

STEPS = 50
# A session of 5 robot episodes: 2 baseline, 1 exploring, a 2-episode evaluation; the twin identified in the
# actuator gain from the baseline, the run trained on it for 200 steps (not trained anew: what the firmware sees is
# the same either way), 1 rehearsal episode (the method's warm-up).
SESSION = """baseline_episodes = 2
twin_scratch_runs = 0
eval_episodes = 2
eval_every = 1
warmup_episodes = 1
rehearsal_episodes = 1
twin_training_steps = 200
twin_eval_every = 100
twin_eval_episodes = 1
identify_params = ['actuator_gain']
"""


@dataclass(frozen=True)
class Firmware:
    """A built firmware: ``start(log, policy)`` runs it (POLICY mode with ``policy``) with the plant in the loop."""

    name: str
    policy_id: str
    start: Callable[[Path, bool], PlantInLoop]


def _host_build(policy_c: Path) -> Firmware:
    if shutil.which("make") is None or shutil.which("cc") is None:
        pytest.skip("needs make and a C compiler")
    make("all", "host-policy", f"POLICY={policy_c}")
    build = FIRMWARE / "build"
    return Firmware("host build", "robopg-ref-host-policy", lambda log, policy: host_build_in_loop(
        log, build / ("robopg-fw-host-policy" if policy else "robopg-fw-host")))


def _qemu(policy_c: Path) -> Firmware:
    if not qemu_available():
        pytest.skip(f"needs {QEMU} (Debian: qemu-system-arm)")
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs arm-none-eabi-gcc (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    make("port", "port-policy", f"POLICY={policy_c}")
    build = FIRMWARE / "build" / "mps2-an385"
    return Firmware("QEMU mps2-an385", "robopg-ref-mps2-policy", lambda log, policy: qemu_in_loop(
        build / ("robopg-fw-policy.elf" if policy else "robopg-fw.elf"), log))


@pytest.fixture(scope="module", params=[_host_build, _qemu], ids=["host", "qemu"])
def firmware(request: pytest.FixtureRequest, swingup_c: Path) -> Firmware:
    return request.param(swingup_c)


def _serving(firmware: Firmware, log: Path, policy: bool = False) -> PlantInLoop:
    """The firmware in the loop, past its HELLO (it serves once the plant has answered), its port free for a
    command to open."""
    loop = firmware.start(log, policy)
    try:
        loop.link.hello(timeout=3.0)
    except BaseException:
        loop.close()
        raise
    loop.link.close()
    return loop


def _finetune(port: str, policy: Path, folder: Path, episodes: int) -> list[str]:
    """The command of a session of ``episodes`` robot episodes; the run folder it starts from (the checkpoint and the
    resume state that training on the twin continues) and its settings written in ``folder``."""
    run = folder / "run"
    run.mkdir(exist_ok=True)
    shutil.copyfile(SWING_UP_FIXTURE, run / CHECKPOINT_FILE)
    shutil.copyfile(SWING_UP_FIXTURE.with_suffix(".resume.pt"), run / RESUME_FILE)
    (folder / "session.toml").write_text(SESSION)
    return [*ROBOPG, "finetune", "--policy", str(policy), "--checkpoint", str(run), "--port", port,
            "--out", str(folder / "ft"), "--episodes", str(episodes), "--steps", str(STEPS), "--config",
            str(folder / "session.toml")]


def test_a_finetuning_session_runs_on_the_firmware(firmware: Firmware, swingup_onnx: Path, tmp_path: Path) -> None:
    loop = _serving(firmware, tmp_path / "plant.csv")
    try:
        ran = subprocess.run(_finetune(loop.port, swingup_onnx, tmp_path, 5), capture_output=True, text=True,
                             timeout=180, check=False)
        commands = loop.commands()
    finally:
        loop.close()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "baseline episode   2" in ran.stdout and "twin: actuator_gain (" in ran.stdout
    assert "twin episode   2" in ran.stdout and "rehearsal episode   2" in ran.stdout
    assert "explore episode   3" in ran.stdout and "eval episode   5" in ran.stdout
    assert "link: 0 faults ridden out, 0 episodes discarded" in ran.stdout
    with (tmp_path / "ft" / "finetune.csv").open() as f:
        assert [row["kind"] for row in csv.DictReader(f)] == ["baseline", "twin", "rehearsal", "explore", "eval"]
    # What the plant applied: every step of the 5 episodes, inside ±10 N; the robot parked at the end.
    actions = [c for c in commands if c.cause == "action"]
    assert len(actions) == 5 * STEPS and all(abs(c.applied[0]) <= 10.0 for c in commands)
    assert commands[-1].cause == "safe"


def test_ctrl_c_leaves_the_firmware_latched_in_its_safe_state(
    firmware: Firmware, swingup_onnx: Path, tmp_path: Path
) -> None:
    loop = _serving(firmware, tmp_path / "plant.csv")
    try:
        session = subprocess.Popen(_finetune(loop.port, swingup_onnx, tmp_path, 50), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert session.stdout is not None
        for line in session.stdout:
            if "explore episode   3" in line:  # the robot runs the next exploring episode
                break
        session.send_signal(signal.SIGINT)
        _, err = session.communicate(timeout=30)
        link = RobotLink.open(loop.port)
        link.hello(timeout=3.0)
        flags = link.heartbeat().flags
        link.close()
        commands = loop.commands()
    finally:
        loop.close()
    assert session.returncode == 130 and err.strip().endswith("interrupted"), err
    assert StatusFlags.ESTOP in flags  # the session's way out: ESTOP, the latch left for the operator
    assert commands[-1].cause == "safe" and all(abs(c.applied[0]) <= 10.0 for c in commands)


def test_the_firmware_runs_the_policy_as_the_host_does(firmware: Firmware, swingup_onnx: Path, tmp_path: Path) -> None:
    from robopg.runtime.deploy import task_functions
    from robopg.runtime.onnx_policy import OnnxPolicy
    from robopg.runtime.supervise import supervise_episode

    act = OnnxPolicy(swingup_onnx)
    loop = firmware.start(tmp_path / "plant.csv", True)
    try:
        info = loop.link.hello(timeout=3.0)
        assert info.firmware_id == firmware.policy_id and not info.lockstep
        episode = supervise_episode(loop.link, task_functions(SWING_UP), act, steps=25)  # half a second at 50 Hz
        loop.link.estop()
        commands = loop.commands()
    finally:
        loop.close()
    # The host-side policy from the same initial state, on the virtual robot: the same trajectory, within
    # what 1e-5 of the action range moves it in 25 steps.
    virtual = in_memory_robot(RobotSimConfig(SWING_UP))
    virtual.hello()
    obs = virtual.reset().values
    np.testing.assert_array_equal(episode.observations[0], obs)
    for k in range(1, episode.steps + 1):
        obs = virtual.step(act(obs)).values
        np.testing.assert_allclose(episode.observations[k], obs, atol=1e-3)
    applied = [c for c in commands if c.cause == "action"]
    assert len(applied) >= episode.steps and all(-10.0 <= c.applied[0] <= 10.0 for c in applied)


def test_robopg_supervise_runs_the_firmwares_policy(firmware: Firmware, swingup_onnx: Path, tmp_path: Path) -> None:
    cli = [*ROBOPG, "supervise", "--policy", str(swingup_onnx), "--steps", "10", "--episodes", "2"]
    for policy, expected in ((True, 0), (False, 2)):
        loop = _serving(firmware, tmp_path / "plant.csv", policy)
        try:
            ran = subprocess.run([*cli, "--port", loop.port], capture_output=True, text=True, timeout=120,
                                 check=False)
        finally:
            loop.close()
        assert ran.returncode == expected, ran.stdout + ran.stderr
        if expected == 0:
            assert firmware.policy_id in ran.stdout and "over 2 episodes" in ran.stdout
            assert ran.stdout.count("over 10 steps") == 2
        else:  # a robot that waits for actions: one line, nothing moved
            assert ran.stderr.strip().splitlines()[-1].startswith("error: a POLICY-mode robot streams in real time")
