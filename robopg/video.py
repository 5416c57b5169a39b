"""Videos of a policy's episodes, from the env's ``rgb_array`` frames through imageio's ffmpeg writer."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np

from robopg.atomic import atomic_path
from robopg.envs import make_env
from robopg.errors import EnvError

DEFAULT_FPS = 30


def make_render_env(env_id: str, **options: Any) -> gym.Env:
    """The env of ``env_id`` rendering RGB frames, checked by rendering one (some envs need a package to draw,
    e.g. Gymnasium's classic control needs pygame); one clear error for an env that cannot."""
    try:
        env = make_env(env_id, render_mode="rgb_array", **options)
    except (EnvError, ImportError) as exc:
        raise EnvError(f"cannot record a video of {env_id}: {exc}") from None
    try:
        env.reset(seed=0)
        frame = env.render()
    except (gym.error.Error, ImportError) as exc:
        env.close()
        raise EnvError(f"cannot record a video of {env_id}: {exc}") from None
    if not (isinstance(frame, np.ndarray) and frame.ndim == 3):
        env.close()
        raise EnvError(f"cannot record a video of {env_id}: it renders no RGB frames")
    return env


@contextlib.contextmanager
def video_writer(path: Path, fps: float) -> Iterator[Callable[[np.ndarray], None]]:
    """A function that appends a frame to the video at ``path`` (format from its suffix: .mp4, .gif, ...),
    which appears, whole, when the block ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, imageio.get_writer(tmp, fps=fps) as writer:
        yield writer.append_data


def frame_rate(env: gym.Env) -> float:
    """The env's real-time frame rate (our tasks': their control rate)."""
    return float(env.metadata.get("render_fps") or DEFAULT_FPS)
