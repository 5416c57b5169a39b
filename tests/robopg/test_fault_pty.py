"""tools/fault_pty.py in small: deploy and robot-sim as real processes over ptys, through a noisy line."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_rides_out_a_noisy_line_and_a_cut_between_real_processes():
    result = subprocess.run([sys.executable, "-m", "tools.fault_pty", "--episodes", "2", "--drop", "0.01", "--flip",
                             "--cuts", "1", "--cut-every", "4000", "--json"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    dropped, cut = (json.loads(line) for line in result.stdout.splitlines())
    assert dropped["episodes_completed"] == 2 and dropped["frames_resent"] > 0
    # Resending rides out the drops: on an idle machine with no fault at all. Under load (the suite's other
    # processes on the same cores) a frame and its resends can go unanswered past the robot's watchdog: that fault
    # is ridden out like the cut's, its episode discarded and run again, and nothing else may go wrong.
    assert dropped["link_faults"] <= 1 and dropped["episodes_started"] == 2 + dropped["link_faults"]
    # the cut (2 s, in the second episode) trips the watchdog: that episode is discarded and run again
    assert cut["episodes_completed"] == 2 and cut["episodes_started"] == 3 and cut["link_faults"] == 1
    assert cut["watchdog_trips"] >= 1 and 0.25 <= cut["worst_seconds_to_safe"] < 0.5  # 250 ms, plus polling
    assert dropped["commands_out_of_limits"] == cut["commands_out_of_limits"] == 0
    assert dropped["deploy_exit"] == cut["deploy_exit"] == 0
