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


def _load(path: Path):
    """A benchmark script as a module, for its functions."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{path.stem}_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_reports_each_speed_up_and_the_dask_ratio():
    script = _load(SCRIPT)
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


VERSUS = SCRIPT.parent / "versus.py"


def test_versus_refuses_a_revision_that_is_not_there():
    done = subprocess.run(
        [sys.executable, str(VERSUS), "no-such-revision-anywhere"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "REV: got 'no-such-revision-anywhere'; give a commit, tag or branch of" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("option", ["--subscribers", "--days", "--workers", "--pairs"])
def test_versus_refuses_a_count_below_one_before_touching_the_repository(option, tmp_path):
    versus = SCRIPT.parents[1] / ".versus"
    before = sorted(versus.iterdir()) if versus.exists() else None
    done = subprocess.run(
        [sys.executable, str(VERSUS), "no-such-revision-anywhere", option, "0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert f"{option} must be at least 1, not 0" in done.stderr and "Traceback" not in done.stderr
    assert (sorted(versus.iterdir()) if versus.exists() else None) == before


def test_versus_stops_when_the_sides_ran_other_libraries():
    script = _load(VERSUS)
    same = {"versions": {"synthmob": "0.1.0", "numpy": "2.4.6"}}
    script.check_versions(same, {"versions": {"synthmob": "0.2.0", "numpy": "2.4.6"}})  # synthmob may differ
    with pytest.raises(SystemExit, match="error: the sides ran different libraries: numpy 2.4.6 against 2.5.0"):
        script.check_versions(same, {"versions": {"synthmob": "0.2.0", "numpy": "2.5.0"}})


def test_versus_gives_this_checkouts_time_over_the_revisions_per_pair():
    script = _load(VERSUS)
    pairs = [({"wall_s": 100.0}, {"wall_s": 90.0}), ({"wall_s": 120.0}, {"wall_s": 96.0})]
    assert script.ratios(pairs) == [0.9, 0.8]
    line = script.row(2, "this", {"wall_s": 96.04, "seconds": {"summed over shards": {"simulation": 60.0, "events": 50.0}}})
    assert line.split() == ["2", "this", "96.0", "60.0", "50.0", "0.0"]


def test_versus_makes_again_what_an_interrupted_invocation_left(tmp_path, monkeypatch):
    script = _load(VERSUS)
    monkeypatch.setattr(script, "ROOT", tmp_path)
    home = tmp_path / ".versus" / "abc123"
    (home / "src").mkdir(parents=True)
    (home / "src" / "half-written").write_text("")  # killed during the checkout: no marker
    calls = []

    def run(command, **kwargs):
        calls.append(command[:4] if command[0] == "git" else command[1:3])
        if command[:3] == ["git", "worktree", "add"]:
            assert not (home / "src").exists()  # the leftover is gone first
            (home / "src").mkdir()
        if command[1:3] == ["-m", "venv"]:
            (home / "venv" / "bin").mkdir(parents=True)
            (home / "venv" / "bin" / "python").write_text("")
        return subprocess.CompletedProcess(command, 0, stdout="numpy==2.4.6\nsynthmob==0.2.0\n")

    monkeypatch.setattr(script.subprocess, "run", run)
    source, python = script.prepare("abc123")
    assert source == home / "src" and python == home / "venv" / "bin" / "python"
    assert calls == [
        ["git", "worktree", "prune"], ["git", "worktree", "add", "--detach"], ["-m", "venv"], ["-m", "pip"], ["-m", "pip"]
    ]
    assert (home / "constraints.txt").read_text() == "numpy==2.4.6\n"  # this environment's libraries, not synthmob
    calls.clear()
    script.prepare("abc123")  # both steps done: nothing to do
    assert calls == []
    (home / "venv" / "bin" / "python").unlink()  # the environment removed since: made again
    script.prepare("abc123")
    assert calls == [["-m", "venv"], ["-m", "pip"], ["-m", "pip"]]


def test_versus_reports_a_failed_install_in_one_line(tmp_path, monkeypatch):
    script = _load(VERSUS)
    monkeypatch.setattr(script, "ROOT", tmp_path)

    def run(command, **kwargs):
        if "pip" in command:
            raise subprocess.CalledProcessError(1, command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(script.subprocess, "run", run)
    with pytest.raises(SystemExit) as info:
        script.prepare("abc123")
    assert str(info.value).startswith("error: could not prepare abc123 in ")
    assert not (tmp_path / ".versus" / "abc123" / "installed").exists()  # made again next time
