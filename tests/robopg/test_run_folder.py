"""What a run leaves behind and what reads it: a config.toml that runs it again, files with the user's umask,
TensorBoard's hparams, Weights & Biases offline, videos, and the comparison plot."""

import os
import subprocess
import sys
import tomllib

import imageio.v3 as iio
import matplotlib.image
import pytest
from conftest import invoke
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import robopg
from robopg.training.run import versions

ENV = "robopg/CartPoleSwingUp-v0"
ROBOPG = [sys.executable, "-m", "robopg.cli"]
# Two evaluations and two videos of a 250-step task in a few seconds.
TINY = ["--set", "learning_starts=100", "--set", "batch_size=16", "--set", "actor_hidden=[8]",
        "--set", "critic_hidden=[8]", "--set", "eval_every=250", "--set", "eval_episodes=2",
        "--set", "checkpoint_every=250", "--set", "log_every=250"]


def train(*args, umask=None):
    return subprocess.run([*ROBOPG, "train-sim", "--quiet", *args], capture_output=True, text=True, timeout=300,
                          preexec_fn=None if umask is None else lambda: os.umask(umask))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small TD3 run with videos, made under umask 027."""
    folder = tmp_path_factory.mktemp("runs") / "td3"
    result = train("--env", ENV, "--algo", "td3", "--steps", "500", "--seed", "3", "--video-every", "250",
                   "--out", str(folder), *TINY, umask=0o027)
    assert result.returncode == 0, result.stderr
    return folder


def test_config_toml_holds_the_env_algorithm_every_setting_seed_and_versions(run):
    recorded = tomllib.loads((run / "config.toml").read_text())
    assert (recorded["env"], recorded["algo"], recorded["seed"], recorded["total_steps"]) == (ENV, "td3", 3, 500)
    assert recorded["batch_size"] == 16 and recorded["twin_critics"] is True and recorded["video_every"] == 250
    assert recorded["versions"] == versions() and set(recorded["versions"]) >= {"robopg", "torch", "gymnasium",
                                                                                 "pybullet"}


def test_training_again_from_config_toml_reproduces_the_run(run, tmp_path):
    again = tmp_path / "again"
    result = train("--config", str(run / "config.toml"), "--out", str(again))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # same versions: no warning
    first = (run / "eval.csv").read_text().splitlines()[1].split(",")
    repeated = (again / "eval.csv").read_text().splitlines()[1].split(",")
    assert first[0] == repeated[0] == "250"
    assert (first[2], first[3]) == (repeated[2], repeated[3])  # the first evaluation's mean and std, digit for digit
    assert (run / "episodes.csv").read_text() == (again / "episodes.csv").read_text()


def test_a_config_toml_from_other_versions_is_run_with_one_warning_per_difference(run, tmp_path):
    recorded = (run / "config.toml").read_text().replace(f'torch = "{versions()["torch"]}"', 'torch = "1.0"')
    config = tmp_path / "old.toml"
    config.write_text(recorded)
    result = train("--config", str(config), "--steps", "1", "--set", "learning_starts=0", "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "torch" in line] == [
        f"warning: the run was made with torch 1.0, this is {versions()['torch']}: results may differ"]


def test_run_files_are_written_with_the_users_umask(run):
    for name in ("config.toml", "checkpoint.pt", "best.pt", "resume.pt", "eval.csv", "learning_curve.png",
                 "videos/step-250.mp4"):
        assert oct((run / name).stat().st_mode & 0o777) == oct(0o640), name  # 0666 less umask 027


def test_tensorboard_has_the_hparams_and_the_evaluation_std(run):
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    assert {"eval/return_mean", "eval/return_std", "final/return_mean", "final/best_return_mean"} <= set(
        events.Tags()["scalars"])
    hparams = events.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(hparams)
    assert b"batch_size" in hparams["_hparams_/session_start_info"] and ENV.encode() in \
        hparams["_hparams_/session_start_info"]


def test_videos_are_recorded_during_training(run):
    frames = iio.imread(run / "videos" / "step-500.mp4")
    assert frames.ndim == 4 and frames.shape[1:] == (240, 320, 3) and len(frames) >= 2


def test_eval_writes_a_video_with_one_frame_per_step_and_reset(run, tmp_path):
    steps = sum(robopg.evaluate(robopg.load_policy(run / "best.pt"), episodes=2).lengths)
    video = tmp_path / "eval.mp4"
    result = invoke("eval", "--policy", str(run / "best.pt"), "--episodes", "2", "--video", str(video))
    assert result.returncode == 0, result.stderr
    assert f"video: {video} ({steps + 2} frames)" in result.stdout
    frames = iio.imread(video)
    assert len(frames) == steps + 2 and frames.shape[1:] == (240, 320, 3)


def test_plot_overlays_runs_and_refuses_a_folder_without_evaluations(run, tmp_path):
    out = tmp_path / "curves.png"
    result = invoke("plot", str(run), str(run), "--out", str(out))
    assert result.returncode == 0 and result.stdout.strip() == f"wrote {out}: 2 run(s)"
    assert matplotlib.image.imread(out).shape[:2] == (400, 700)
    result = invoke("plot", str(tmp_path))
    assert result.returncode == 2 and result.stderr == f"error: no eval.csv in {tmp_path}: not a robopg run folder\n"


def test_track_logs_to_weights_and_biases_offline(tmp_path):
    pytest.importorskip("wandb")
    result = subprocess.run([*ROBOPG, "train-sim", "--quiet", "--env", "Pendulum-v1", "--steps", "400", "--track",
                             "--wandb-project", "robopg-test", "--out", str(tmp_path / "run"), *TINY[:8],
                             "--set", "eval_every=200", "--set", "eval_episodes=1"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    assert result.returncode == 0, result.stderr
    # Offline, W&B keeps the run in one binary log of protocol buffers (``wandb sync`` uploads it), whose
    # strings are stored as they are: the config's values and every metric's name are in it.
    (log,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    recorded = log.read_bytes()
    for text in (b"Pendulum-v1", b"batch_size", b"rollout/episode_return", b"eval/return_mean", b"eval/return_std",
                 b"final/return_mean", b"final/best_return_mean"):
        assert text in recorded, text


def test_track_without_wandb_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    result = invoke("train-sim", "--env", "Pendulum-v1", "--track", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr == ("error: --track logs to Weights & Biases, which is not installed: "
                             "pip install 'robopg[track]'\n")
    assert not (tmp_path / "run").exists()


def test_track_without_a_wandb_login_is_one_line(tmp_path):
    pytest.importorskip("wandb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path), "WANDB_MODE": "online", "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config")}
    result = subprocess.run([*ROBOPG, "train-sim", "--quiet", "--env", "Pendulum-v1", "--steps", "200", "--track",
                             "--out", str(tmp_path / "run"), *TINY], capture_output=True, text=True, timeout=300,
                            env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("error: Weights & Biases: No API key configured")
    assert len([line for line in result.stderr.splitlines() if line.startswith("error")]) == 1
