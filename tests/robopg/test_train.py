import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from robopg import checkpoint
from robopg.core.nets import torch_policy_fn
from robopg.envs import EnvError, make_env
from robopg.errors import ConfigError
from robopg.evaluation import evaluate
from robopg.registry import make_config
from robopg.training.loop import EVAL_SEED_OFFSET
from robopg.training.run import RunDirError, resume, train


@pytest.mark.parametrize("algo", ["ddpg", "td3", "dpg"])
def test_every_algorithm_trains_and_writes_a_run(tmp_path, tiny, algo):
    if algo == "dpg":
        tiny["value_hidden"] = tiny.pop("critic_hidden")
    result = train("Pendulum-v1", make_config(algo, tiny), tmp_path / "run", show_progress=False)
    assert result.steps == 800 and len(result.final_eval.returns) == 1
    for name in ("checkpoint.pt", "best.pt", "resume.pt", "config.toml", "progress.csv", "episodes.csv", "eval.csv",
                 "learning_curve.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0, name
    saved = checkpoint.load(tmp_path / "run")
    assert saved["algo"] == algo and saved["env_id"] == "Pendulum-v1" and saved["step"] == 800
    assert len((tmp_path / "run" / "episodes.csv").read_text().splitlines()) == 1 + 4


def test_best_pt_holds_the_policy_of_the_best_evaluation(tmp_path, tiny):
    run = tmp_path / "run"
    config = make_config("ddpg", {**tiny, "total_steps": 1200, "eval_every": 200})
    result = train("Pendulum-v1", config, run, show_progress=False)
    evals = np.genfromtxt(run / "eval.csv", delimiter=",", names=True)
    best_row = evals[np.argmax(evals["return_mean"])]
    assert len(evals) == 6 and evals["return_mean"].max() > evals["return_mean"].min()
    assert result.best_step == best_row["step"] and result.best_eval.mean == pytest.approx(best_row["return_mean"])
    best = checkpoint.load(run / "best.pt")
    assert best["step"] == result.best_step and np.mean(best["eval_returns"]) == pytest.approx(result.best_eval.mean)
    # It is a checkpoint like any other: its policy, evaluated again, scores what it scored in training.
    policy = checkpoint.restore(run / "best.pt").policy()
    again = evaluate(torch_policy_fn(policy), make_env("Pendulum-v1"), 1, seed=config.seed + EVAL_SEED_OFFSET)
    assert again.mean == pytest.approx(result.best_eval.mean, rel=1e-4)


OFF_POLICY = ("learning_starts", "batch_size", "buffer_size")
ROLLOUTS = {"rollout_steps": 10, "num_envs": 2, "eval_every": 100}  # the split run evaluates where it stops


def tensors(tree: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a nested state dict, by its path."""
    found = {}
    for key, value in tree.items():
        if isinstance(value, torch.Tensor):
            found[f"{prefix}{key}"] = value
        elif isinstance(value, dict):
            found.update(tensors(value, f"{prefix}{key}."))
    return found


@pytest.mark.parametrize(("algo", "options", "split"), [
    ("ddpg", {}, 400),  # an episode boundary: DDPG checkpoints only there
    ("ddpg", {"n_step": 3}, 400),  # n-step targets read the episode ends kept in the checkpointed replay
    ("a2c", ROLLOUTS, 300),  # 150 steps into each simulator's 200-step episode
    ("a2c_sil", {**ROLLOUTS, "sil_batch_size": 16}, 300),
    # a PyBullet task's physics, sensor noise drawn from the simulators' generators, and a history wrapper
    ("a2c", {**ROLLOUTS, "randomize": ["sensor_noise_std=0.01"], "history": 1, "env": "robopg/CartPoleSwingUp-v0"},
     300),
])
def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path, tiny, algo, options, split):
    tiny = {key: value for key, value in {**tiny, **options}.items() if algo == "ddpg" or key not in OFF_POLICY}
    env = tiny.pop("env", "Pendulum-v1")
    whole = train(env, make_config(algo, tiny), tmp_path / "whole", show_progress=False)
    train(env, make_config(algo, {**tiny, "total_steps": split}), tmp_path / "split", show_progress=False)
    resumed = resume(tmp_path / "split", total_steps=800, show_progress=False)
    a, b = checkpoint.load(tmp_path / "whole"), checkpoint.load(tmp_path / "split")
    whole_tensors, split_tensors = tensors(a["learner"]), tensors(b["learner"])
    assert whole_tensors.keys() == split_tensors.keys()
    for name, tensor in whole_tensors.items():
        assert torch.equal(tensor, split_tensors[name]), name
    assert resumed.final_eval.returns == whole.final_eval.returns
    assert (resumed.best_eval, resumed.best_step) == (whole.best_eval, whole.best_step)
    assert (tmp_path / "whole" / "episodes.csv").read_text() == (tmp_path / "split" / "episodes.csv").read_text()


def test_a_resumed_run_evaluates_on_its_new_schedule_and_learns_exactly_as_before(tmp_path, tiny):
    whole = train("Pendulum-v1", make_config("ddpg", tiny), tmp_path / "whole", show_progress=False)
    train("Pendulum-v1", make_config("ddpg", {**tiny, "total_steps": 400}), tmp_path / "split", show_progress=False)
    resumed = resume(tmp_path / "split", total_steps=800, schedule={"eval_episodes": 3, "eval_every": 200},
                     show_progress=False)
    split = tensors(checkpoint.load(tmp_path / "split")["learner"])
    assert all(torch.equal(tensor, split[name]) for name, tensor in tensors(checkpoint.load(tmp_path / "whole")[
        "learner"]).items())
    assert len(whole.final_eval.returns) == 1 and len(resumed.final_eval.returns) == 3
    evals = np.genfromtxt(tmp_path / "split" / "eval.csv", delimiter=",", names=True)
    assert list(evals["step"][-2:]) == [600, 800]  # every 200 steps from the resume on
    assert "eval_episodes = 3" in (tmp_path / "split" / "config.toml").read_text()
    with pytest.raises(ConfigError, match="cannot change gamma"):
        resume(tmp_path / "split", schedule={"gamma": 0.9}, show_progress=False)
    with pytest.raises(ConfigError, match="eval_episodes must be"):
        resume(tmp_path / "split", schedule={"eval_episodes": 0}, show_progress=False)


def test_a_kill_between_the_last_resume_pt_and_checkpoint_pt_is_repaired_by_the_resume(tmp_path, tiny):
    run, older = tmp_path / "run", tmp_path / "older"
    train("Pendulum-v1", make_config("ddpg", {**tiny, "total_steps": 400}), run, show_progress=False)
    final = tensors(checkpoint.load(run)["learner"])
    train("Pendulum-v1", make_config("ddpg", {**tiny, "total_steps": 200}), older, show_progress=False)
    shutil.copy(older / "checkpoint.pt", run / "checkpoint.pt")  # the final resume.pt written, checkpoint.pt not
    resume(run, show_progress=False)
    repaired = checkpoint.load(run)
    assert repaired["step"] == 400
    assert all(torch.equal(tensor, final[name]) for name, tensor in tensors(repaired["learner"]).items())


def test_a_run_folder_is_never_overwritten(tmp_path, tiny):
    train("Pendulum-v1", make_config("ddpg", {**tiny, "total_steps": 200}), tmp_path / "run", show_progress=False)
    with pytest.raises(RunDirError, match="already holds a run"):
        train("Pendulum-v1", make_config("ddpg", tiny), tmp_path / "run", show_progress=False)


def test_unwritable_output_folder(tmp_path, tiny):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RunDirError, match="cannot write to output folder"):
        train("Pendulum-v1", make_config("ddpg", tiny), blocker / "run", show_progress=False)


@pytest.mark.parametrize(
    ("env_id", "message"),
    [
        ("NoSuchEnv-v0", "unknown environment 'NoSuchEnv-v0'"),
        ("CartPole-v1", "Discrete action space"),
        ("no_such_module:Env-v0", "no_such_module"),
    ],
)
def test_environment_errors_name_the_problem(env_id, message):
    with pytest.raises(EnvError, match=message):
        make_env(env_id)


def test_corrupt_and_foreign_checkpoints(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00garbage")
    with pytest.raises(checkpoint.CheckpointError, match="not a readable robopg checkpoint"):
        checkpoint.load(tmp_path)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(checkpoint.CheckpointError, match="not a robopg checkpoint"):
        checkpoint.load(tmp_path / "other.pt")
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
        checkpoint.load(tmp_path / "missing")


def test_a_checkpoint_saved_before_a_default_changed_is_rebuilt_with_the_settings_it_ran_with():
    fixture = Path(__file__).parent / "fixtures" / "swingup_ddpg.pt"
    saved = torch.load(fixture, weights_only=True)["config"]
    assert saved["algo"] == "ddpg" and "n_step" not in saved and "critic_layer_norm" not in saved
    migrated = checkpoint.load(fixture)["config"]
    assert migrated["n_step"] == 1 and migrated["critic_layer_norm"] is False
    assert make_config("ddpg", {}).n_step == 3 and make_config("td3", {}).n_step == 3
    assert make_config("ddpg", {}).critic_layer_norm and not make_config("td3", {}).critic_layer_norm


def test_policy_acts_in_actuator_units(tmp_path, tiny):
    train("Pendulum-v1", make_config("ddpg", {**tiny, "total_steps": 200}), tmp_path / "run", show_progress=False)
    from robopg.registry import make_learner

    saved = checkpoint.load(tmp_path / "run")
    learner = make_learner(make_config("ddpg", tiny), 3, saved["action_low"].numpy(), saved["action_high"].numpy(),
                           torch.Generator())
    learner.load_state_dict(saved["learner"])
    actions = learner.policy()(torch.randn(1000, 3) * 5).detach().numpy()
    assert np.all(actions <= 2.0) and np.all(actions >= -2.0) and actions.std() > 0


def test_a_full_disk_during_a_checkpoint_is_one_clear_error_and_the_previous_checkpoint_stays(tmp_path, tiny,
                                                                                               monkeypatch):
    real_save, saves = torch.save, []

    def fills_the_disk(payload, path):  # the third file written (resume.pt of the second checkpoint) fills it
        saves.append(path)
        if len(saves) == 3:
            with open(path, "wb") as f:
                f.write(b"PK\x03\x04 half a file")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
        real_save(payload, path)

    monkeypatch.setattr(torch, "save", fills_the_disk)
    with pytest.raises(checkpoint.CheckpointError) as caught:
        train("Pendulum-v1", make_config("ddpg", {**tiny, "eval_every": 10_000}), tmp_path / "run", show_progress=False)
    message = str(caught.value)
    resume_file = tmp_path / "run" / "resume.pt"
    assert "\n" not in message and message.startswith(f"cannot write {resume_file} (the write failed")
    assert "MB free on its disk); resume.pt is as it was before" in message
    monkeypatch.setattr(torch, "save", real_save)
    previous = checkpoint.load(tmp_path / "run" / "resume.pt")  # the first checkpoint, whole
    assert previous["step"] == 200 and checkpoint.load(tmp_path / "run")["step"] == 200
    assert sorted(p.name for p in (tmp_path / "run").glob(".*.tmp")) == []  # no half file left behind
