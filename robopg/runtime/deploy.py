"""The on-robot runtime: a policy at a fixed control rate over the serial link, behind the safety layer.

Imports neither torch nor pybullet (a robot's computer needs onnxruntime, numpy and pyserial only). The
loop reads an observation, asks the policy, passes the safety layer and sends the command:

- to a **lockstep** robot (a simulator) each ACTION is answered by the observation one control period
  later; the host paces the loop at ``rate_hz`` if given, else runs as fast as the robot answers;
- to a **real-time** robot the firmware streams an observation every control period and applies an ACTION
  at once; an ACTION that reaches it after the next tick is a deadline miss (the next observation does
  not acknowledge it).

Whatever ends the run early (Ctrl-C, a fault, a lost link, any exception) sends ESTOP first, so the robot
is left in its safe state. Every episode ends by parking the robot (RESET where it can, ESTOP otherwise),
so that the host may pause between episodes without the firmware's watchdog tripping.

A **link fault** (no answer after the link's resends, a frame the line corrupted past its CRC, the
watchdog's FAULT or the latch it left) discards the episode in flight: nobody learns from it or logs it.
The loop then waits for the line, handshakes again, releases the watchdog's latch and starts the next
episode, up to ``max_faults`` times; a fault of the plant itself always ends the run.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from firmware_bridge.clock import sleep_until
from firmware_bridge.codes import FaultReason, StatusFlags
from firmware_bridge.errors import LinkError, LinkTimeout, ProtocolError, RobotFault
from firmware_bridge.link import Observation, RobotInfo, RobotLink
from firmware_bridge.stats import LatencyStats
from robopg.atomic import atomic_path
from robopg.core.history import History
from robopg.errors import RobopgError
from robopg.runtime.episode import PolicyFn, RobotEpisode
from robopg.runtime.onnx_policy import PolicyMetadata, check_fits
from robopg.runtime.safety import SafetyLayer

StepRewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], float]  # one step's reward r(obs, command, next_obs)
TerminatedFn = Callable[[np.ndarray], bool]
LATCHES = StatusFlags.ESTOP | StatusFlags.FAULT


class RobotError(RobopgError, RuntimeError):
    """The robot cannot run this policy or stopped running it."""


def check_robot(info: RobotInfo, policy: PolicyMetadata) -> None:
    """Refuse a robot whose sizes, action limits or control rate differ from what the policy was trained for."""
    try:
        check_fits(policy.obs_dim, np.array(policy.action_low), np.array(policy.action_high), info.obs_dim,
                   info.action_low, info.action_high, f"the robot ({info.firmware_id})")
    except RobopgError as exc:
        raise RobotError(f"{exc}; nothing was sent") from None
    if policy.control_hz is not None and abs(1 / policy.control_hz - info.control_period) > 1e-3 * info.control_period:
        raise RobotError(f"the policy was trained at {policy.control_hz:g} Hz; the robot runs at "
                         f"{1 / info.control_period:g} Hz; nothing was sent")


@dataclass
class DeadlineStats:
    """Timing of the control loop: achieved periods, their jitter, and deadline misses. Constant memory however
    long the run: running sums, and the percentiles of the latest window of periods."""

    target_period: float | None  # None: unpaced (as fast as a lockstep robot answers)
    periods: LatencyStats = field(default_factory=LatencyStats)
    misses: int = 0
    steps: int = 0

    def record(self, period: float) -> None:
        self.periods.record(period)

    @property
    def jitter(self) -> float:
        """Standard deviation of the periods in seconds (the target is a constant: it does not change it)."""
        return self.periods.std

    def summary(self) -> str:
        if not self.periods.count:
            return "no steps"
        p = self.periods
        text = f"{self.steps} steps at {1 / p.mean:.1f} Hz (period p50 {1e3 * p.percentile(50):.2f} ms, p99 " \
               f"{1e3 * p.percentile(99):.2f} ms"
        if self.target_period is not None:
            text += f", jitter {1e3 * self.jitter:.3f} ms, {self.misses} deadline misses"
        return text + ")"


@dataclass
class TaskFunctions:
    """What the robot side computes from sensor data: reward, termination, episode length."""

    reward: StepRewardFn
    terminated: TerminatedFn
    max_steps: int


def task_functions(env_id: str, max_steps: int | None = None, *, need_reward: bool = True,
                   policy: PolicyMetadata | None = None) -> TaskFunctions:
    """Reward, termination and episode length of one of our tasks (an id, ``module:Id`` or a ``robot.toml``
    declaration), computed from observations on the host.

    For another env (no task spec) deploying still works without rewards (NaN) given ``max_steps``. With
    ``policy``, the task must name the observations and actions the policy was exported with (a task given
    in place of the policy's own, e.g. a declaration that moved).
    """
    from robopg.envs import spec_of  # numpy only: sim's physics is not imported

    spec = spec_of(env_id)
    if spec is not None and policy is not None:
        for what, ours, theirs in (("observations", spec.obs_names, policy.obs_names),
                                   ("actions", spec.action_names, policy.action_names)):
            if ours != theirs:
                raise RobotError(f"task {env_id} names the {what} {', '.join(ours)}; the policy was exported with "
                                 f"{', '.join(theirs) or 'no names'}; nothing was sent")
    if spec is None:
        if need_reward:
            raise RobotError(f"no robopg task spec for {env_id!r}: the robot side needs the task's reward function")
        if max_steps is None:
            raise RobotError(f"{env_id} is not a robopg task, so its episode length is unknown: give --steps") from None
        return TaskFunctions(lambda *_: math.nan, lambda _: False, max_steps)

    def reward(obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> float:
        return float(spec.reward(obs, action, next_obs))

    def terminated(obs: np.ndarray) -> bool:
        return bool(spec.terminated(obs))

    return TaskFunctions(reward, terminated, max_steps or spec.max_episode_steps)


def open_robot(port: str, policy: PolicyMetadata, *, baudrate: int = 115200, clear: bool = False,
               busy_poll: bool = False) -> RobotLink:
    """Connect, handshake and check the robot against the policy before anything moves."""
    return prepare_robot(RobotLink.open(port, baudrate=baudrate, busy_poll=busy_poll), policy, clear=clear)


def prepare_robot(link: RobotLink, policy: PolicyMetadata, *, clear: bool = False) -> RobotLink:
    """Handshake on an open link and check the robot against the policy (and its latches) before anything moves;
    closes the link if the robot does not fit."""
    try:
        check_robot(link.hello(), policy)
        flags = link.heartbeat().flags
        if flags & LATCHES:
            if not clear:
                raise RobotError(f"the robot is latched ({flags!r}); check it, then run again with --clear")
            link.clear()
    except BaseException:
        link.close()
        raise
    return link


# Refusals the host never causes itself (it checks sizes, values and capabilities before sending): a frame
# the line corrupted past its CRC, or, LATCHED, the latch a watchdog left whose FAULT was lost.
_LINE_REFUSALS = frozenset({FaultReason.WATCHDOG, FaultReason.LATCHED, FaultReason.UNSUPPORTED_VERSION,
                            FaultReason.BAD_TYPE, FaultReason.BAD_LENGTH, FaultReason.BAD_VALUE,
                            FaultReason.RESET_UNSUPPORTED})


def is_link_fault(error: BaseException) -> bool:
    """Whether ``error`` comes from the line rather than the robot: a session may ride it out."""
    if isinstance(error, RobotFault):
        return error.reason in _LINE_REFUSALS
    return isinstance(error, LinkTimeout | ProtocolError)


class ControlLoop:
    """Runs episodes of a policy on a robot through ``link`` (already past :meth:`RobotLink.hello`).

    ``max_faults``: link faults the loop rides out before it stops (0: the first one stops it);
    ``reconnect_timeout``: seconds it waits for the line after each; ``log``: the .npz that holds every
    completed episode, rewritten (atomically) as each one ends. With ``keep_episodes`` (the default) every
    episode stays in :attr:`trajectory` for :meth:`save_trajectory`; without (and without ``log``), the loop's
    memory stays flat however many episodes it runs. ``history``: the policy's (``PolicyMetadata.history``);
    the loop feeds it the last ``history`` observations and commands sent, in training's layout
    (:class:`robopg.core.history.History`), started afresh at each episode's first observation; an episode may
    run a policy of another history (:meth:`run_episode`'s, as a fine-tuning session's candidate can be).
    """

    def __init__(self, link: RobotLink, safety: SafetyLayer, task: TaskFunctions, *, rate_hz: float | None = None,
                 wait_for_operator: Callable[[], None] | None = None, keep_episodes: bool = True, max_faults: int = 0,
                 reconnect_timeout: float = 10.0, log: Path | None = None, history: int = 0) -> None:
        if link.info is None:
            raise ValueError("call link.hello() before running a control loop")
        self.link, self.info, self.safety, self.task = link, link.info, safety, task
        self.history = History(history, link.info.obs_dim, link.info.action_dim)
        period = link.info.control_period if not link.info.lockstep else (None if rate_hz is None else 1 / rate_hz)
        self.deadlines = DeadlineStats(period)
        self.wait_for_operator = wait_for_operator
        self.keep_episodes = keep_episodes or log is not None
        self.max_faults, self.reconnect_timeout, self.log = max_faults, reconnect_timeout, log
        self.trajectory: list[RobotEpisode] = []
        self.faults: list[str] = []  # each link fault ridden out, as its message
        self.discarded = 0  # episodes a link fault interrupted

    def start_episode(self) -> Observation:
        """RESET where the robot can; otherwise the operator puts it back, and CLEAR releases the parking e-stop."""
        if self.info.can_reset:
            first = self.link.reset()
        else:
            if self.wait_for_operator is None:
                raise RobotError("this robot cannot reset itself and no operator is there to do it")
            self.wait_for_operator()
            self.link.clear()
            first = self.link.step(self.safety.safe_action) if self.info.lockstep else self.link.read_observation()
        if first.flags & LATCHES:
            raise RobotError(f"the robot is latched ({first.flags!r}); release it with CLEAR after checking it")
        self.safety.reset()
        return first

    def park(self) -> None:
        """Safe state between episodes, so that the host may think (learn, export) without the watchdog tripping:
        RESET where the robot can, else ESTOP (which the next episode's start releases)."""
        if self.info.can_reset:
            self.link.reset()
        else:
            self.link.estop()

    def run_episode(self, policy: PolicyFn, history: int | None = None) -> RobotEpisode:
        """One complete episode of ``policy``, fed ``history`` steps of history (None: the loop's); an episode a
        link fault interrupts is discarded and run again."""
        feed = self.history if history in (None, self.history.k) else \
            History(history, self.info.obs_dim, self.info.action_dim)
        while True:
            try:
                episode = self._episode(policy, feed)
            except (LinkError, RobotError) as exc:
                if not is_link_fault(exc):
                    raise
                self.discarded += 1
                self.faults.append(str(exc))
                if len(self.faults) > self.max_faults:
                    if not self.max_faults:
                        raise
                    raise RobotError(f"stopped after {len(self.faults)} link faults (at most {self.max_faults}); "
                                     f"the last: {exc}") from None
                self.reconnect()
                continue
            if self.keep_episodes:
                self.trajectory.append(episode)
            if self.log is not None:
                self.save_trajectory(self.log)
            return episode

    def reconnect(self) -> None:
        """After a link fault: wait for the line, handshake, check it is the same robot, release the latch the
        watchdog left (or park a robot still mid-episode); :class:`RobotError` if the line stays dead."""
        deadline = self.link.clock() + self.reconnect_timeout
        while True:
            try:
                info = self.link.hello()
                if not same_robot(info, self.info):
                    raise RobotError(f"another robot answered after the link came back ({info.firmware_id}, "
                                     f"expected {self.info.firmware_id}); nothing more was sent")
                if not self.link.heartbeat().flags & LATCHES:
                    self.park()
                elif self.info.can_reset:  # a robot that cannot reset has its latch released by the next start
                    self.link.clear()
                return
            except LinkError as exc:
                if not is_link_fault(exc) or self.link.clock() >= deadline:
                    raise RobotError(f"the link did not come back within {self.reconnect_timeout:g} s after a "
                                     f"fault ({self.faults[-1]}); the last try: {exc}") from None

    def _episode(self, policy: PolicyFn, feed: History) -> RobotEpisode:
        obs = self.start_episode().values
        policy_input = feed.start(obs)
        observations, actions, commands, rewards, inputs = [obs], [], [], [], [policy_input]
        terminated = stopped = False
        paced = self.deadlines.target_period is not None and self.info.lockstep  # the host keeps the time
        next_deadline = time.monotonic()
        last_sent: float | None = None
        for _ in range(self.task.max_steps):
            if paced:
                sleep_until(next_deadline)
            action = np.asarray(policy(policy_input), dtype=np.float32)
            command = self.safety.filter(action)
            sent = time.monotonic()
            reply = self._send(command)
            if last_sent is not None:
                self.deadlines.record(sent - last_sent)
            last_sent = sent
            self.deadlines.steps += 1
            if paced:
                next_deadline += self.deadlines.target_period
                if time.monotonic() > next_deadline:
                    self.deadlines.misses += 1
                    next_deadline = time.monotonic()
            if reply.flags & LATCHES:
                raise RobotError(f"the robot went to its safe state during the episode ({reply.flags!r})")
            next_obs = reply.values
            rewards.append(float(self.task.reward(obs, command, next_obs)))
            observations.append(next_obs)
            actions.append(action)
            commands.append(command)
            policy_input = feed.step(command, next_obs)
            inputs.append(policy_input)
            obs = next_obs
            terminated = bool(self.task.terminated(next_obs)) or StatusFlags.TERMINATED in reply.flags
            stopped = not self.safety.observation_ok(next_obs)
            if terminated or stopped:
                break
        self.park()
        return RobotEpisode(np.asarray(observations), np.asarray(actions), np.asarray(commands),
                            np.asarray(rewards, dtype=np.float64), terminated, stopped,
                            np.asarray(inputs) if feed.k else None)

    def _send(self, command: np.ndarray) -> Observation:
        if self.info.lockstep:
            return self.link.step(command)
        seq = self.link.send_action(command)
        give_up = self.link.clock() + self.link.command_timeout()
        timeout = max(self.link.timeout, 3 * self.info.control_period)
        reply = self.link.read_observation(timeout)
        if reply.ack_seq != seq:  # the command missed the tick it was meant for: skip to the tick that applied it
            self.deadlines.misses += 1
            ticks = 0
            while reply.ack_seq != seq:
                ticks += 1
                if ticks % 2 == 0:  # two ticks without it: it was lost; the firmware applies a resend once
                    if self.link.clock() > give_up:
                        raise LinkTimeout(f"ACTION #{seq} not applied within {self.link.command_timeout():g} s")
                    self.link.resend(seq)
                reply = self.link.read_observation(timeout)
        return reply

    def save_trajectory(self, path: Path) -> None:
        """Every episode's arrays in one .npz (written atomically): obs_<i>, action_<i>, command_<i>, reward_<i>."""
        arrays: dict[str, np.ndarray] = {}
        for i, ep in enumerate(self.trajectory):
            arrays |= {f"obs_{i}": ep.observations, f"action_{i}": ep.actions, f"command_{i}": ep.commands,
                       f"reward_{i}": ep.rewards}
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(f, **arrays)


def same_robot(a: RobotInfo, b: RobotInfo) -> bool:
    """Whether two INFOs describe the same robot (sizes, limits, timing, identity)."""
    return ((a.firmware_id, a.obs_dim, a.action_dim, a.control_period, a.watchdog_timeout, a.capabilities)
            == (b.firmware_id, b.obs_dim, b.action_dim, b.control_period, b.watchdog_timeout, b.capabilities)
            and np.array_equal(a.action_low, b.action_low) and np.array_equal(a.action_high, b.action_high))


@contextlib.contextmanager
def robot_session(link: RobotLink) -> Iterator[RobotLink]:
    """ESTOP on any way out but a normal one (a normal one leaves the robot parked by the last episode)."""
    try:
        yield link
    except BaseException:
        with contextlib.suppress(LinkError):
            link.estop(timeout=0.25)
        raise
