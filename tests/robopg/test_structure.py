"""The package's shape: imports inside robopg/ run one way (no cycle between modules, none between the
sub-packages), and an algorithm is added through the registry alone."""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from robopg import checkpoint
from robopg.algos.a2c import A2C
from robopg.config import OnPolicyConfig
from robopg.core.buffers import Rollout
from robopg.core.losses import policy_gradient_loss, value_loss
from robopg.core.returns import gae_advantages
from robopg.errors import ConfigError
from robopg.registry import ALGORITHMS, Algorithm, algorithm, make_config, register
from robopg.settings import setting
from robopg.training.run import resume, train

PACKAGE = Path(__file__).parents[2] / "robopg"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The robopg modules a file imports, anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "robopg":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def group(module: str) -> str:
    """robopg.training.a3c.worker -> robopg.training; top-level modules are their own group."""
    return ".".join(module.split(".")[:2])


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_robopg_imports_itself_back():
    assert cycles(import_graph()) == []


def test_the_subpackages_depend_on_each_other_one_way():
    graph: dict[str, set[str]] = {}
    for module, imports in import_graph().items():
        graph.setdefault(group(module), set()).update(group(m) for m in imports if group(m) != group(module))
    assert cycles(graph) == []
    assert "robopg.training" not in graph["robopg.runtime"] and "robopg.finetune" not in graph["robopg.training"]


# ---- a toy algorithm, added through the registry alone -----------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ToyConfig(OnPolicyConfig):
    rollout_steps: int = setting(8, "steps per simulator per update", ge=1)


class ToyLearner(A2C):
    """A2C's networks and critic with an update of its own: Monte Carlo advantages (GAE with λ = 1)."""

    def update(self, rollout: Rollout) -> dict[str, torch.Tensor]:
        advantages = gae_advantages(rollout.rewards, rollout.dones, rollout.values, rollout.last_value,
                                    self.config.gamma, 1.0)
        obs = rollout.obs.flatten(0, 1)
        log_prob = self.pi.log_prob(obs, rollout.actions.flatten(0, 1))
        loss = policy_gradient_loss(log_prob, advantages.flatten()) + value_loss(
            self.critic(obs), (advantages + rollout.values).flatten())
        self.step(loss)
        return {"loss": loss.detach()}


@pytest.fixture
def toy_algorithm(monkeypatch):
    monkeypatch.setattr("robopg.registry.ALGORITHMS", dict(ALGORITHMS))
    register(Algorithm("toy", ToyConfig, ToyLearner, "rollouts", "a toy advantage actor-critic"))
    return algorithm("toy")


def test_a_registered_algorithm_trains_resumes_and_restores(toy_algorithm, tmp_path):
    config = make_config("toy", {"total_steps": 640, "num_envs": 2, "eval_every": 320, "eval_episodes": 2,
                                 "checkpoint_every": 160, "actor_hidden": [8], "critic_hidden": [8]})
    run = tmp_path / "run"
    first = train("PointToOrigin-v0", config, run, show_progress=False)
    assert first.steps == 640 and (run / "checkpoint.pt").exists()
    assert "algo = \"toy\"" in (run / "config.toml").read_text()
    longer = resume(run, total_steps=960, show_progress=False)
    assert longer.steps == 960
    restored = checkpoint.restore(run)
    assert isinstance(restored.learner, ToyLearner) and restored.state["algo"] == "toy"
    assert restored.policy()(torch.zeros(1, 1)).shape == (1, 1)


def test_a_name_is_registered_once_and_looked_up_by_kind(toy_algorithm):
    with pytest.raises(ValueError, match="registered already"):
        register(toy_algorithm)
    with pytest.raises(ConfigError, match="unknown fine-tuning method 'toy'"):
        algorithm("toy", robot=True)
    with pytest.raises(ConfigError, match="fine-tunes a deployed policy on the robot"):
        make_config("cautious_a2c")
