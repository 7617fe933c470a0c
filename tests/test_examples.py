"""The example programs under examples/ run as a user would run them, as their own
processes, and print a correct result."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_parallel_sum():
    proc = subprocess.run([sys.executable, str(EXAMPLES / "parallel_sum.py"), "--workers", "3",
                           "--n", "3000"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "sum of squares 1..3000 = 9004500500 (correct)" in proc.stdout
    assert sorted(line.split(":")[0] for line in proc.stdout.splitlines()
                  if line.startswith("worker")) == ["worker 0 on node 0", "worker 1 on node 1",
                                                    "worker 2 on node 2"]


def test_parallel_sum_refuses_a_sum_too_big():
    proc = subprocess.run([sys.executable, str(EXAMPLES / "parallel_sum.py"), "--n", "9000000"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--n from 1 to 2000000" in proc.stderr
