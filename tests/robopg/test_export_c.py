"""C export: the policy as float32 C, compiled here against onnxruntime's actions, a Gaussian policy's mean,
bad input in one line. (On the board: tests/firmware_bridge/test_qemu_port.py.)"""

import shutil
from pathlib import Path

import pytest
from conftest import invoke

from robopg.errors import ExportError
from robopg.export import TOLERANCE, export_c
from robopg.export.to_c import compile_check
from robopg.registry import make_config
from robopg.training.run import train

FIXTURE = Path(__file__).parent / "fixtures" / "swingup_ddpg.pt"  # DDPG, [64, 64] actor, trained

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


@pytest.fixture(scope="module")
def swingup_c(tmp_path_factory):
    return export_c(FIXTURE, tmp_path_factory.mktemp("export") / "policy_c")


def test_the_c_matches_onnxruntime(swingup_c):
    assert swingup_c.max_normalized_error is not None and swingup_c.max_normalized_error <= TOLERANCE
    assert swingup_c.checked_observations > 256
    assert swingup_c.flash_bytes == 4 * (2 * 5 + (5 * 64 + 64) + (64 * 64 + 64) + (64 + 1) + 4)
    names = sorted(p.name for p in swingup_c.directory.iterdir())
    assert names == ["robopg_policy.c", "robopg_policy.h", "robopg_policy_check.h"]
    source = (swingup_c.directory / "robopg_policy.c").read_text()
    assert "alloc" not in source and "tanhf" in source


def test_the_c_is_clean_under_the_sanitizers(swingup_c):
    error = compile_check(swingup_c.directory, "cc", ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
    assert error == swingup_c.max_normalized_error


def test_a_gaussian_policy_exports_its_clipped_mean(tmp_path):
    config = make_config(
        "a2c",
        {
            "total_steps": 320,
            "num_envs": 2,
            "actor_hidden": [16, 16],
            "critic_hidden": [16],
            "eval_every": 320,
            "eval_episodes": 1,
        },
    )
    train("Pendulum-v1", config, tmp_path / "a2c", show_progress=False)
    report = export_c(tmp_path / "a2c", tmp_path / "c")
    assert report.max_normalized_error is not None and report.max_normalized_error <= report.allowed
    source = (tmp_path / "c" / "robopg_policy.c").read_text()
    assert "tanhf" not in source and "s < -1.0f ? -1.0f" in source


def test_bad_input_is_one_line(tmp_path):
    result = invoke("export", str(FIXTURE), "--format", "tflite")
    assert result.returncode != 0 and result.stdout.strip() + result.stderr.strip() == (
        "error: unknown --format 'tflite': onnx or c"
    )
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="it is a file"):
        export_c(FIXTURE, tmp_path / "file")
    with pytest.raises(ExportError, match="does not exist"):
        export_c(FIXTURE, tmp_path / "missing" / "c")
