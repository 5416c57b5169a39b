"""Every config field, given a hostile value through the command line, is refused by name in one line.

The walk reads the declarations (``robopg.settings.setting``), so a field added later is walked too.
"""

import math
import typing
from collections import defaultdict
from dataclasses import fields

import pytest
import tomli_w
from conftest import invoke

from robopg import memory
from robopg.errors import ConfigError
from robopg.finetune import FinetuneConfig, finetune_configs
from robopg.registry import ALGORITHMS, make_config
from robopg.settings import Settings, bounds_of

FINETUNE_METHOD = "cautious_a2c"  # the method whose settings share the file with FinetuneConfig's


def numeric(hint) -> type | None:
    """int or float for a numeric field (a list of them, or either or none), else None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        return numeric(args[0])
    if len(args) == 2 and type(None) in args:
        return numeric(next(a for a in args if a is not type(None)))
    return hint if hint in (int, float) else None


def hostile_values(kind: type | None, bounds) -> list:
    """nan, inf, negative, huge and wrong-type values for a field of this kind."""
    if kind is None:  # text, a choice or a switch: only the wrong type
        return [12345]
    negative = -1 if not bounds.contains(-1) else -1e30
    huge = 10**30 if kind is int else 1e300
    return [math.nan, math.inf, -math.inf, negative, huge, "many"]


def walked() -> list[tuple[str, type[Settings], str, object]]:
    """(algorithm, config class, field, value) for every field of every config and each hostile value."""
    cases = []
    configs = [(name, a.config) for name, a in ALGORITHMS.items()] + [(FINETUNE_METHOD, FinetuneConfig)]
    for algo, cls in configs:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):  # type: ignore[arg-type]
            tuple_field = typing.get_origin(hints[f.name]) is tuple
            for value in hostile_values(numeric(hints[f.name]), bounds_of(f)):
                cases.append((algo, cls, f.name, [value] if tuple_field else value))
    return cases


CASES = walked()


def each_field_once(cases: list) -> list:
    """One case per field, the hostile values taking turns from field to field."""
    by_field: dict[tuple, list] = defaultdict(list)
    for case in cases:
        by_field[case[1], case[2]].append(case)
    return [group[i % len(group)] for i, group in enumerate(by_field.values())]


# The command line reads each field once (the whole walk runs below it, on the path it calls).
CLI_CASES = each_field_once(CASES)


def write(folder, values: dict):
    """A config file of these values."""
    path = folder / "config.toml"
    path.write_text(tomli_w.dumps(values))
    return path


def case_id(case) -> str:
    return f"{case[1].__name__}.{case[2]}={case[3]!r}"


def build_config(algo: str, cls: type[Settings], values: dict) -> None:
    """Build the configs from values read from a file, as ``train-sim --config`` or ``finetune --config`` does."""
    if cls is FinetuneConfig or not ALGORITHMS[algo].trains_in_simulation:
        finetune_configs(values, algo)
    else:
        make_config(algo, values)


def test_every_numeric_field_has_an_upper_bound():
    """A range that bounds memory and time: no numeric field is left open above."""
    open_above = []
    for cls in {a.config for a in ALGORITHMS.values()} | {FinetuneConfig}:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            b = bounds_of(f)
            if numeric(hints[f.name]) and b.le is None and b.lt is None and b.most is None:
                open_above.append(f"{cls.__name__}.{f.name}")
    assert not open_above


@pytest.mark.parametrize(("algo", "cls", "name", "value"), CASES, ids=[case_id(c) for c in CASES])
def test_a_hostile_value_is_refused_by_name(algo, cls, name, value):
    with pytest.raises(ConfigError) as refused:
        build_config(algo, cls, {name: value})
    assert str(refused.value).startswith(f"{name} must be") and "\n" not in str(refused.value)


@pytest.mark.parametrize(("algo", "cls", "name", "value"), CLI_CASES, ids=[case_id(c) for c in CLI_CASES])
def test_a_hostile_value_is_one_error_line_and_exit_2(algo, cls, name, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, {name: value})
    if cls is FinetuneConfig or not ALGORITHMS[algo].trains_in_simulation:
        result = invoke("finetune", "--method", algo, "--config", str(path), "--policy", "policy.onnx",
                        "--checkpoint", "run", "--port", "loop://")
    else:
        result = invoke("train-sim", "--env", "robopg/CartPoleSwingUp-v0", "--algo", algo, "--config", str(path),
                        "--quiet")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: {name} must be"), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"], "a refused config leaves nothing behind"


def test_networks_and_replay_are_checked_against_available_memory(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 * 10**9)
    make_config("ddpg", {"actor_hidden": [4096, 4096], "buffer_size": 10**6})  # 0.27 GB + 0.02 GB: fits
    with pytest.raises(ValueError, match=r"actor_hidden, critic_hidden and the replay memory would take 8.6 GB of "
                                         r"memory, more than the 2 GB available"):
        make_config("ddpg", {"actor_hidden": [16_384, 16_384, 16_384]})
    with pytest.raises(ValueError, match="the replay memory would take 21 GB"):
        make_config("ddpg", {"buffer_size": 10**9})
    with pytest.raises(ValueError, match="actor_hidden and critic_hidden would take"):
        make_config("a2c", {"critic_hidden": [16_384] * 4})


def test_the_trainer_checks_the_replay_with_the_tasks_dimensions(monkeypatch, tmp_path):
    """2·10⁷ transitions pass the config's lower bound (0.42 GB) but CartPole's take 1.06 GB: refused before any
    allocation, in one line."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**9)
    monkeypatch.chdir(tmp_path)
    result = invoke("train-sim", "--env", "robopg/CartPoleSwingUp-v0", "--config", str(write(tmp_path, {
        "buffer_size": 2 * 10**7})), "--out", "run", "--quiet")
    assert result.returncode == 2
    assert result.stderr == "error: buffer_size would take 1.06 GB of memory, more than the 1 GB available\n"
