"""Tasks declared in a robot.toml: the example's env and spec, every actuator mode and observation term, and a
bad declaration refused in one line that names the problem."""

import itertools
import re
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robopg.envs import make_env, spec_of, task_warnings
from robopg.errors import EnvError
from sim.declared import DeclarationError, read_declaration, resolve_task
from sim.spec import task_spec

ROOT = Path(__file__).parents[2]
FURUTA = ROOT / "examples" / "furuta"
EXAMPLE = str(FURUTA / "robot.toml")


@pytest.fixture
def declare(tmp_path):
    """Write a declaration beside a copy of the example's model and reward; returns its path as a reference."""
    (tmp_path / "furuta.urdf").write_text((FURUTA / "furuta.urdf").read_text())
    (tmp_path / "reward.py").write_text((FURUTA / "reward.py").read_text())

    def write(text: str, name: str = "robot.toml") -> str:
        (tmp_path / name).write_text(text)
        return str(tmp_path / name)

    return write


_IDS = itertools.count()


def base(id_: str | None = None, **overrides: str) -> str:
    """A valid declaration's top level (its id unique in the session unless given); each override replaces a line
    (or adds one)."""
    lines = {"id": f'"{id_ or f"test/Declared{next(_IDS)}-v0"}"', "model": '"furuta.urdf"', "control_hz": "50.0",
             "episode_steps": "20", "reward": '"reward:balance"', "solved_return": "10.0", **overrides}
    return "".join(f"{key} = {value}\n" for key, value in lines.items() if value)


TORQUE = '[[actuators]]\njoint = "arm"\nmode = "torque"\nlow = -0.1\nhigh = 0.1\n'
FURUTA_OBS = "".join(f'[[observations]]\nquantity = "{q}"\njoint = "{j}"\n' for q, j in
                     (("cos_sin", "arm"), ("cos_sin", "pendulum"), ("velocity", "arm"), ("velocity", "pendulum")))


def test_the_example_is_a_gymnasium_env_with_the_declared_spec():
    env_id = resolve_task(EXAMPLE)
    assert env_id == "furuta/FurutaBalance-v0" and resolve_task(EXAMPLE) == env_id  # loaded once
    spec = task_spec(EXAMPLE)
    assert spec is task_spec(env_id)
    assert spec.obs_names == ("arm_cos", "arm_sin", "pendulum_cos", "pendulum_sin", "arm_velocity",
                              "pendulum_velocity")
    assert spec.action_names == ("arm_torque",) and (spec.action_low, spec.action_high) == ((-0.1,), (0.1,))
    assert (spec.control_hz, spec.max_episode_steps, spec.solved_return) == (50.0, 250, 225.0)
    env = make_env(EXAMPLE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unbounded observation space, as every robopg task's
        check_env(env.unwrapped)
    first = [env.reset(seed=3)[0], *(env.step(np.array([0.05]))[0] for _ in range(5))]
    again = [env.reset(seed=3)[0], *(env.step(np.array([0.05]))[0] for _ in range(5))]
    np.testing.assert_array_equal(first, again)
    env.close()


def test_reward_and_termination_are_the_declared_functions_on_what_the_env_observes():
    env = make_env(EXAMPLE, init_range=0.0)
    spec = task_spec(EXAMPLE)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs, [1, 0, 1, 0, 0, 0], atol=1e-6)  # the nominal state: all at 0, upright
    next_obs, reward, terminated, _, _ = env.step(np.array([0.1]))
    assert reward == float(spec.reward(obs, np.array([0.1]), next_obs)) and not terminated
    assert next_obs[4] > 0  # a positive torque turns the arm the positive way
    assert spec.terminated(np.array([[1, 0, -0.1, 1, 0, 0], [1, 0, 0.1, 1, 0, 0]])).tolist() == [True, False]
    env.close()


def test_randomization_and_set_state_work_as_on_the_built_in_tasks():
    env = make_env(EXAMPLE, dynamics={"mass_scale": (0.5, 2.0), "action_latency_steps": 1}).unwrapped
    env.reset(seed=0)
    assert 0.5 <= env.dynamics.mass_scale <= 2.0 and env.dynamics.action_latency_steps == 1
    state = np.array([np.cos(0.3), np.sin(0.3), np.cos(-0.2), np.sin(-0.2), 0.5, -1.0])
    env.set_state(state, pending_actions=[np.array([0.05])])
    np.testing.assert_allclose(env._obs, state, atol=1e-6)
    first = env.step(np.zeros(1))[0]
    env.set_state(state, pending_actions=[np.array([0.05])])
    np.testing.assert_array_equal(env.step(np.zeros(1))[0], first)
    env.close()


def test_velocity_and_position_servos_a_link_position_and_a_target(declare):
    text = base("test/Servos-v0", reward='"target:reach"', episode_steps="100") + (
        '[[actuators]]\njoint = "arm"\nmode = "position"\nlow = -1.0\nhigh = 1.0\nmax_force = 1.0\n'
        'position_gain = 0.3\n'
        '[[actuators]]\njoint = "pendulum"\nmode = "velocity"\nlow = -2.0\nhigh = 2.0\nmax_force = 1.0\n'
        '[[observations]]\nquantity = "angle"\njoint = "arm"\n'
        '[[observations]]\nquantity = "velocity"\njoint = "pendulum"\n'
        '[[observations]]\nquantity = "position"\nlink = "tip"\naxes = "xy"\n'
        '[[observations]]\nquantity = "target"\n'
        '[target]\nlow = [0.1, -0.1]\nhigh = [0.2, 0.1]\naxes = "xy"\n')
    path = declare(text, "servos.toml")
    (Path(path).parent / "target.py").write_text(
        "import numpy as np\n\ndef reach(obs, action, next_obs):\n"
        "    return -np.linalg.norm(np.asarray(next_obs)[..., 2:4] - np.asarray(next_obs)[..., 4:6], axis=-1)\n")
    spec = task_spec(path)
    assert spec.obs_names == ("arm_angle", "pendulum_velocity", "tip_x", "tip_y", "target_x", "target_y")
    assert spec.action_names == ("arm_position", "pendulum_velocity")
    env = make_env(path, target=[0.15, 0.05])
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs[4:], [0.15, 0.05], atol=1e-6)
    np.testing.assert_allclose(obs[2:4], [0.16, 0.0], atol=1e-3)  # the tip, upright over the arm's end at 0
    for _ in range(50):
        obs, *_ = env.step(np.array([0.5, 1.5]))
    assert obs[0] == pytest.approx(0.5, abs=0.05) and obs[1] == pytest.approx(1.5, abs=0.05)
    # The tip swings across the arm: along the arm it stays at the pendulum's joint, 0.16 m out.
    assert obs[2:4] @ [np.cos(obs[0]), np.sin(obs[0])] == pytest.approx(0.16, abs=1e-3)
    with pytest.raises(ValueError, match="target must be None or a point of 2 values"):
        env.reset(options={"target": [1.0, 0.0]})
    env.close()


@pytest.mark.parametrize(("edit", "message"), [
    ({"model": '"missing.urdf"'}, r"model file .*missing\.urdf does not exist"),
    ({"reward": '"nowhere:balance"'}, r"reward: cannot import 'nowhere'"),
    ({"reward": '"reward:absent"'}, r"reward 'reward:absent': reward has no function 'absent'"),
    ({"reward": '"reward:MAX_TORQUE"'}, r"reward 'reward:MAX_TORQUE': reward has no function 'MAX_TORQUE'"),
    ({"reward": '"reward"'}, r"reward must be 'module:function', got 'reward'"),
    ({"terminated": '"reward:balance"'}, r"reward:balance fails on one transition of zero observations: TypeError"),
    ({"control_hz": "0"}, r"control_hz must be a positive finite number, got 0"),
    ({"colour": '"red"'}, r"unknown key\(s\) colour in the top level"),
    ({"reward": ""}, r"the top level needs reward$"),
])
def test_a_bad_declaration_is_one_line_naming_the_problem(declare, edit, message):
    path = declare(base(**edit) + TORQUE + FURUTA_OBS)
    with pytest.raises(EnvError) as error:
        make_env(path)
    text = str(error.value)
    assert "\n" not in text and text.startswith(path) and re.search(message, text), text


def test_a_reward_of_the_wrong_shape_is_refused(declare, tmp_path):
    (tmp_path / "flat.py").write_text("import numpy as np\n\ndef reward(obs, action, next_obs):\n"
                                      "    return np.zeros(4)\n")
    path = declare(base(reward='"flat:reward"') + TORQUE + FURUTA_OBS)
    with pytest.raises(DeclarationError, match=r"flat:reward returns shape \(4,\) for one transition"):
        read_declaration(Path(path)).spec()


@pytest.mark.parametrize(("table", "message"), [
    (TORQUE.replace('"arm"', '"elbow"') + FURUTA_OBS, r"actuator: joint 'elbow' is not in furuta\.urdf "
                                                      r"\(movable joints: arm, pendulum\)"),
    (TORQUE + FURUTA_OBS + '[[observations]]\nquantity = "velocity"\njoint = "wrist"\n',
     r"observation velocity: joint 'wrist' is not in furuta\.urdf"),
    (TORQUE + FURUTA_OBS + '[[observations]]\nquantity = "position"\nlink = "hand"\n',
     r"observation position: link 'hand' is not in furuta\.urdf \(links: arm_link, base, pendulum_link, tip\)"),
    (TORQUE + FURUTA_OBS + '[[observations]]\nquantity = "torque"\njoint = "arm"\n',
     r"unknown observation quantity 'torque' \(known: angle, cos_sin, velocity, position, target\)"),
    (TORQUE + FURUTA_OBS + '[[observations]]\nquantity = "velocity"\njoint = "arm"\nscale = 2\n',
     r"unknown key\(s\) scale in \[\[observations\]\] 5"),
    (TORQUE.replace("torque", "velocity") + FURUTA_OBS, r"actuator arm: a velocity servo needs max_force"),
    (FURUTA_OBS, r"declare 1 to 16 actuators"),
])
def test_a_bad_joint_link_or_observation_is_one_line(declare, table, message):
    path = declare(base() + table)
    with pytest.raises(EnvError) as error:
        make_env(path)
    assert "\n" not in str(error.value) and re.search(message, str(error.value)), str(error.value)


def test_a_control_rate_the_link_cannot_carry_is_a_warning_with_the_figure(declare):
    assert task_warnings(EXAMPLE) == []  # 50 Hz over 115200 baud: 15 + 43 bytes, at most 199 exchanges/s
    path = declare(base("test/Fast-v0", control_hz="250.0") + TORQUE + FURUTA_OBS)
    (warning,) = task_warnings(path)
    assert warning == ("test/Fast-v0: 250 Hz exceeds what 115200 baud carries: 15 + 43 bytes per exchange allow at "
                       "most 199 exchanges/s (docs/own-robot.md, choosing the rate)")
    assert task_warnings(declare(base("test/Faster-v0", control_hz="250.0", baud="1000000") + TORQUE + FURUTA_OBS,
                                 "fast.toml")) == []


def test_a_module_that_declares_a_task_on_import_names_it_as_module_id(declare, tmp_path, monkeypatch):
    path = declare(base("test/ByModule-v0") + TORQUE + FURUTA_OBS)
    (tmp_path / "my_robot_task.py").write_text(f"from sim.declared import load_declaration\n\n"
                                               f"load_declaration({path!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert spec_of("my_robot_task:test/ByModule-v0").env_id == "test/ByModule-v0"
    make_env("my_robot_task:test/ByModule-v0").close()
    assert spec_of("Pendulum-v1") is None
    with pytest.raises(EnvError, match="cannot import the module of task 'no_such_module:X-v0'"):
        spec_of("no_such_module:X-v0")
    sys.modules.pop("my_robot_task", None)


def test_one_id_declared_by_two_files_is_refused(declare):
    first = declare(base("test/Twice-v0") + TORQUE + FURUTA_OBS, "one.toml")
    resolve_task(first)
    second = declare(base("test/Twice-v0") + TORQUE + FURUTA_OBS, "two.toml")
    with pytest.raises(DeclarationError, match=r"id 'test/Twice-v0' is already declared by .*one\.toml"):
        resolve_task(second)
    with pytest.raises(DeclarationError, match="'robopg/Reacher2D-v0' is already a registered environment"):
        resolve_task(declare(base("robopg/Reacher2D-v0") + TORQUE + FURUTA_OBS, "three.toml"))
    assert "test/Twice-v0" in gym.registry


def test_an_mjcf_model_is_loaded_with_loadmjcf_and_its_robot_found_by_joint_name(declare, tmp_path):
    import pybullet_data

    model = Path(pybullet_data.getDataPath()) / "mjcf" / "reacher.xml"  # an arena, the arm, a target body
    arm = "".join(f'[[actuators]]\njoint = "{j}"\nmode = "torque"\nlow = -0.05\nhigh = 0.05\n' for j in
                  ("joint0", "joint1"))
    obs = "".join(f'[[observations]]\nquantity = "{q}"\njoint = "{j}"\n' for q, j in
                  (("cos_sin", "joint0"), ("cos_sin", "joint1"), ("velocity", "joint0"), ("velocity", "joint1")))
    (tmp_path / "tip.py").write_text("import numpy as np\n\ndef distance(obs, action, next_obs):\n"
                                     "    return -np.linalg.norm(np.asarray(next_obs)[..., 6:8], axis=-1)\n")
    path = declare(base(model=f'"{model}"', reward='"tip:distance"') + arm + obs +
                   '[[observations]]\nquantity = "position"\nlink = "fingertip"\naxes = "xy"\n', "reacher.toml")
    env = make_env(path, init_range=0.0)
    first, _ = env.reset(seed=0)
    np.testing.assert_allclose(first[6:8], [0.21, 0.0], atol=1e-6)  # links of 0.1 and 0.11 m along +x
    obs_after, *_ = env.step(np.array([0.05, 0.0]))
    assert obs_after[4] > 0  # the shoulder turns the positive way
    env.close()
