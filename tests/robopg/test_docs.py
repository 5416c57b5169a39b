"""The Python examples of README.md and docs/api.md run as they are written, in order, one namespace a page."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGES = ("README.md", "docs/api.md")


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("page", PAGES)
def test_the_python_examples_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(ROOT / page)
    assert blocks, f"{page} has no python example"
    monkeypatch.chdir(tmp_path)  # the examples' runs/ folder
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, f"{page} example", "exec"), namespace)
    if page == "docs/api.md":
        assert namespace["result"].mean == pytest.approx(sum(namespace["result"].returns) / 3)
        assert (tmp_path / "runs" / "api-td3" / "episode.mp4").stat().st_size > 0


def test_import_robopg_registers_the_tasks_and_imports_no_torch():
    code = ("import sys, gymnasium, robopg\n"
            "gymnasium.make('robopg/Reacher2D-v0').close()\n"
            "print(sorted(m for m in ('torch', 'pybullet', 'onnxruntime') if m in sys.modules))")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "['pybullet']"  # making the env loads its physics; torch stays out
