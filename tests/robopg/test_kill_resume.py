"""Kills at random moments, a resume after each: tools/kill_resume.py at 5 kills of a DDPG and of an A2C run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("algo", ["ddpg", "a2c"])
def test_five_kills_and_resumes_end_in_the_weights_of_an_uninterrupted_run(algo):
    result = subprocess.run([sys.executable, "-m", "tools.kill_resume", "--algos", algo, "--kills", "5", "--steps",
                             "1000", "--json"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["failures"] == [] and report["kills"] >= 3 and report["resumes"] >= 1
    assert report["max_weight_difference"] == 0.0  # bit-identical
