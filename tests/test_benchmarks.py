"""The benchmark scripts run, and print what their docstrings promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "generate.py"


@pytest.mark.slow
def test_generate_runs_each_configuration_once_per_round():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "tiny", "--workers", "1", "--rounds", "2"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("tiny ")]
    assert [(row[3], row[4], row[5]) for row in rows] == [("1", "serial", "1"), ("1", "serial", "2")]
    assert all(float(row[6]) > 0 for row in rows)  # wall seconds


def test_generate_refuses_fewer_than_one_round():
    done = subprocess.run([sys.executable, str(SCRIPT), "tiny", "--rounds", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--rounds must be at least 1, not 0" in done.stderr
