"""Shared by the firmware_bridge tests: a point-mass plant, a hand-set clock and a firmware core over them; the
trained swing-up policy exported as ONNX and as C."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.codes import Capabilities
from firmware_bridge.device import DeviceConfig, FirmwareCore

# The test modules import plant_rig from here (appended: tests/robopg's conftest stays the one `conftest` names).
sys.path.append(str(Path(__file__).parent))
from plant_rig import SWING_UP_FIXTURE


class PointMass:
    """x'' = u, one period per advance; terminal beyond |x| > 1."""

    def __init__(self) -> None:
        self.x = self.v = self.u = 0.0
        self.terminated = False
        self.resets = 0

    def observe(self) -> np.ndarray:
        return np.array([self.x, self.v], dtype=np.float32)

    def apply(self, action: np.ndarray) -> None:
        self.u = float(action[0])

    def advance(self) -> None:
        self.v += 0.1 * self.u
        self.x += 0.1 * self.v
        self.terminated = abs(self.x) > 1.0

    def reset(self) -> None:
        self.x = self.v = 0.0
        self.terminated = False
        self.resets += 1


class Clock:
    """The firmware's millisecond clock; tests move it by hand."""

    def __init__(self) -> None:
        self.ms = 1000

    def __call__(self) -> int:
        return self.ms


Core = tuple[FirmwareCore, PointMass, Clock]


@pytest.fixture
def make_core() -> Callable[..., Core]:
    """``make_core(capabilities=CAN_RESET | LOCKSTEP, watchdog_ms=100)``: a core over a new plant and clock.

    The robot: observation [x, v], one action in [-1, 1], 20 ms control period, firmware id "test".
    """

    def make(capabilities: Capabilities = Capabilities.CAN_RESET | Capabilities.LOCKSTEP,
             watchdog_ms: int = 100) -> Core:
        plant, clock = PointMass(), Clock()
        config = DeviceConfig(obs_dim=2, action_low=(-1.0,), action_high=(1.0,), control_period_us=20_000,
                              watchdog_ms=watchdog_ms, firmware_id="test", capabilities=capabilities)
        return FirmwareCore(config, plant, clock), plant, clock

    return make


@pytest.fixture(scope="session")
def swingup_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained swing-up fixture's policy as ONNX: the host side's."""
    from robopg.export import export_policy

    return export_policy(SWING_UP_FIXTURE, tmp_path_factory.mktemp("onnx") / "policy.onnx").path


@pytest.fixture(scope="session")
def swingup_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same [64, 64] actor exported as C: the folder to build firmware with (POLICY=DIR)."""
    from robopg.export import export_c

    return export_c(SWING_UP_FIXTURE, tmp_path_factory.mktemp("policy") / "policy_c").directory
