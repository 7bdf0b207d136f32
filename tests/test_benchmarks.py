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


def test_generate_reports_each_speed_up_and_the_dask_ratio():
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_benchmark", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    runs = [(1, None), (2, None), (2, "local")]
    labels = [(label, num, den) for label, num, den in script.ratios(runs)]
    assert labels == [
        ("speed-up of 2 workers (pool) over 1", (1, None), (2, None)),
        ("speed-up of 2 workers (dask) over 1", (1, None), (2, "local")),
        ("Dask LocalCluster over the process pool, 2 workers", (2, "local"), (2, None)),
    ]
    results = [
        {"round": k, "workers": w, "executor": e, "wall_s": s}
        for k, w, e, s in [(1, 1, "serial", 200.0), (1, 2, "pool", 100.0), (2, 1, "serial", 180.0), (2, 2, "pool", 120.0)]
    ]
    assert script.wall(results, 2, 2, None) == 120.0
    assert script.wall(results, 1, 1, None) / script.wall(results, 1, 2, None) == 2.0
