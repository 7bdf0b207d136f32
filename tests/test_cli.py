"""The ``synthmob`` command line: user mistakes end in one ``error:`` line and status 2, and leave nothing behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from synthmob import Run, load_scenario
from synthmob.cli import app

TABLES = ("cells", "cells.geojson", "subscribers", "contacts", "stays", "trips", "events")


@pytest.fixture
def work(tmp_path, monkeypatch):
    """An empty working folder, also the current directory (so a default ``runs/<name>`` would land here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def tree(root: Path) -> list[str]:
    """Every path under ``root`` (hidden ones included), relative."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def staging_leftovers(root: Path) -> list[str]:
    return [p for p in tree(root) if re.search(r"(^|/)\.[^/]*\.(tmp|old)-", p)]


def config(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def user_error(result) -> str:
    """Check the shape of a user-mistake result; return its one error line."""
    details = (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.exit_code == 2, details
    # the command ended through typer.Exit, not through an escaped exception
    assert result.exception is None or isinstance(result.exception, SystemExit), details
    assert "Traceback" not in result.output
    assert result.stdout == "", details
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, details
    assert lines[0].startswith("error: "), details
    return lines[0]


# --- user mistakes: generate -------------------------------------------------------------------------------
def test_bad_yaml(work):
    path = config(work, "name: x\n  seed: 1\n")
    before = tree(work)
    line = user_error(invoke("generate", path, "--out", work / "out" / "run"))
    assert line == f"error: {path}: line 2, column 7: invalid YAML (mapping values are not allowed here); write 'key: value' pairs"
    assert tree(work) == before


def test_unknown_key(work):
    path = config(work, "name: x\nsubscriber: 5\n")
    before = tree(work)
    line = user_error(invoke("generate", path, "--out", work / "out"))
    assert line.startswith(f"error: {path}: subscriber: unknown field; valid fields here: ")
    assert "subscribers" in line and "days" in line
    assert tree(work) == before


def test_value_out_of_range_in_file(work):
    path = config(work, "name: x\nworld:\n  travel:\n    walk_share: 1.5\n")
    before = tree(work)
    line = user_error(invoke("generate", path, "--out", work / "out"))
    assert line == f"error: {path}: world.travel.walk_share: got 1.5; input should be less than or equal to 1"
    assert tree(work) == before


def test_impossible_date_in_file(work):
    """An unquoted impossible date is parsed by YAML itself; it must still end as a one-line error, status 2."""
    path = config(work, "name: x\nstart: 2026-02-30\n")
    before = tree(work)
    line = user_error(invoke("generate", path, "--out", work / "out"))
    assert str(path) in line
    assert tree(work) == before


def test_too_many_subscribers_for_fiction_numbers(work, monkeypatch):
    """Checked before any shard runs (the shards draw the identities), and nothing is left behind."""
    from synthmob import pipeline

    ran = []
    monkeypatch.setattr(pipeline, "_stage", lambda name: ran.append(name))
    path = config(work, "name: x\nsubscribers: 1200\nidentities:\n  msisdn_mode: fiction\n")
    before = tree(work)
    line = user_error(invoke("generate", path, "--out", work / "out"))
    assert line.startswith("error: scenario: identities.msisdn_mode: got 'fiction'; only 1,000 fiction mobile numbers")
    assert ran == [] and tree(work) == before


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--days", "zero", "input should be a valid integer"),
        ("--days", "0", "input should be greater than or equal to 1"),
        ("--days", "367", "input should be less than or equal to 366"),
        ("--days", "1.5", "input should be a valid integer"),
        ("--seed", "-3", "input should be greater than or equal to 0"),
        ("--seed", "abc", "input should be a valid integer"),
        ("--subscribers", "0", "input should be greater than or equal to 1"),
        ("--subscribers", "1e3", "input should be a valid integer"),
        ("--start", "2026-02-30", "input should be a valid date"),
        ("--start", "yesterday", "input should be a valid date"),
        ("--workers", "0", "give a whole number of processes, 1 or more"),
        ("--workers", "two", "give a whole number of processes, 1 or more"),
        ("--workers", "-1", "give a whole number of processes, 1 or more"),
        ("--workers", "1.5", "give a whole number of processes, 1 or more"),
    ],
)
def test_bad_flag_value(work, flag, value, expected):
    out = work / "deep" / "er" / "run"
    line = user_error(invoke("generate", "tiny", "--out", out, flag, value))
    assert line.startswith(f"error: command line: {flag}: got {value!r}; {expected}")
    assert tree(work) == []  # not even the parents of --out


def test_missing_config_file(work):
    path = work / "nowhere.yaml"
    line = user_error(invoke("generate", path, "--out", work / "out"))
    assert line == f"error: {path}: no such file; give a YAML file or a preset name (tiny, city, region)"
    assert tree(work) == []


def test_config_is_a_folder(work):
    folder = work / "configs"
    folder.mkdir()
    line = user_error(invoke("generate", folder, "--out", work / "out"))
    assert line == f"error: {folder}: is a folder; give a YAML scenario file"
    assert tree(work) == ["configs"]


def test_output_folder_not_empty_without_overwrite(work):
    out = work / "run"
    out.mkdir()
    (out / "manifest.json").write_text("{}")  # an earlier run
    (out / "precious.txt").write_text("keep me")
    line = user_error(invoke("generate", "tiny", "--out", out))
    assert line == (
        f"error: {out}: folder exists and is not empty; pass --overwrite to replace it, or choose another --out"
    )
    assert tree(work) == ["run", "run/manifest.json", "run/precious.txt"]
    assert (out / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("flags", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_a_folder_of_other_files_is_never_replaced(work, flags):
    out = work / "docs"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    line = user_error(invoke("generate", "tiny", "--out", out, *flags))
    assert line == (
        f"error: {out}: folder exists, is not empty and holds no earlier output (manifest.json); "
        "choose another --out (--overwrite only replaces an earlier output)"
    )
    assert tree(work) == ["docs", "docs/precious.txt"]


def test_an_empty_out_is_the_current_folder_and_is_refused(work, monkeypatch):
    monkeypatch.chdir(work)
    (work / "notes.txt").write_text("mine")
    line = user_error(invoke("generate", "tiny", "--out", "", "--overwrite"))
    assert line == f"error: {work}: is the current folder or one of its parents; give --out a new folder"
    assert tree(work) == ["notes.txt"]


def test_output_path_under_a_regular_file(work):
    blocker = work / "file.txt"
    blocker.write_text("not a folder")
    out = blocker / "sub" / "run"
    line = user_error(invoke("generate", "tiny", "--out", out))
    assert line.startswith(f"error: {out}: {blocker} is a file, not a folder")
    assert "--out" in line
    assert tree(work) == ["file.txt"]
    assert blocker.read_text() == "not a folder"


def test_output_path_is_a_regular_file(work):
    out = work / "file.txt"
    out.write_text("not a folder")
    line = user_error(invoke("generate", "tiny", "--out", out))
    assert line == f"error: {out}: is a file, not a folder; give --out a folder path"
    assert tree(work) == ["file.txt"]
    assert out.read_text() == "not a folder"


@pytest.mark.parametrize("mistake", ["config", "output"])
def test_error_is_the_only_line_on_stderr(work, mistake):
    """Nothing but the error line on stderr: no blank line, no progress output before it."""
    if mistake == "config":
        args = ["generate", "tiny", "--days", "0", "--out", work / "out"]
    else:
        (work / "out").mkdir()
        (work / "out" / "x").write_text("x")
        args = ["generate", "tiny", "--out", work / "out"]
    result = invoke(*args)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1, repr(result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.endswith("\n")


# --- user mistakes: validate -------------------------------------------------------------------------------
def test_validate_bad_yaml(work):
    path = config(work, "seed: [1, 2\n")
    line = user_error(invoke("validate", path))
    assert line.startswith(f"error: {path}: line 2, column 1: invalid YAML")


def test_validate_missing_file(work):
    path = work / "nowhere.yaml"
    line = user_error(invoke("validate", path))
    assert line == f"error: {path}: no such file; give a YAML file or a preset name (tiny, city, region)"


def test_validate_out_of_range(work):
    path = config(work, "days: 400\n")
    line = user_error(invoke("validate", path))
    assert line == f"error: {path}: days: got 400; input should be less than or equal to 366"


# --- the real process: no traceback, status 2 --------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "piece"),
    [
        ("name: x\nsubscriber: 5\n", "subscriber: unknown field"),
        ("name: x\nstart: 2026-02-30\n", "2026-02-30"),
    ],
    ids=["unknown-key", "impossible-yaml-date"],
)
def test_console_script_prints_one_line_and_exits_2(work, text, piece):
    path = config(work, text, name="a-rather-long-scenario-file-name-to-make-the-error-line-long.yaml")
    env = {**os.environ, "COLUMNS": "40", "TERM": "dumb"}
    proc = subprocess.run(
        [sys.executable, "-m", "synthmob.cli", "generate", str(path), "--out", str(work / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=120,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr  # not wrapped at COLUMNS=40
    assert lines[0].startswith(f"error: {path}")
    assert piece in lines[0]
    assert tree(work) == [path.name]


# --- happy paths -------------------------------------------------------------------------------------------
def test_generate_tiny_writes_a_run_and_prints_a_summary(work):
    out = work / "runs" / "tiny"
    result = invoke("generate", "tiny", "--out", out)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["tables"]) == set(TABLES)

    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"wrote {out} in ")
    assert "100 subscribers x 1 day " in lines[0] and "1 worker)" in lines[0]
    summary = {}
    for line in lines[1:]:
        name, count, unit = line.split()
        summary[name] = (int(count.replace(",", "")), unit)
    assert summary == {
        name: (info["rows"], "features" if name == "cells.geojson" else "rows")
        for name, info in manifest["tables"].items()
    }
    assert all(count > 0 for count, _ in summary.values())
    assert staging_leftovers(work) == []
    assert Run(out).table("subscribers").num_rows == 100


def test_generate_passes_flags_to_the_scenario(work):
    out = work / "run"
    result = invoke(
        "generate", "tiny", "--out", out, "--seed", "5", "--days", "2", "--subscribers", "60",
        "--start", "2026-03-28", "--workers", "1",
    )
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    run = Run(out)
    scenario = run.manifest["scenario"]
    assert (scenario["seed"], scenario["days"], scenario["subscribers"], scenario["start"]) == (5, 2, 60, "2026-03-28")
    assert scenario["out"] == str(out)
    assert run.table("subscribers").num_rows == 60
    assert sorted(p.name for p in (out / "stays").iterdir()) == ["date=2026-03-28", "date=2026-03-29"]
    assert "60 subscribers x 2 days" in result.stdout


def test_generate_overwrite_replaces_existing_folder(work):
    out = work / "run"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    (out / "old.txt").write_text("old")
    result = invoke("generate", "tiny", "--out", out, "--overwrite")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert not (out / "old.txt").exists()
    assert (out / "manifest.json").is_file()
    assert staging_leftovers(work) == []
    assert sorted(p for p in tree(work) if "/" not in p) == ["run"]


def test_generate_preset_into_a_folder_named_like_the_preset_twice(work):
    """`synthmob generate tiny --out tiny`, then again with --overwrite: the preset must not be shadowed."""
    first = invoke("generate", "tiny", "--out", "tiny")
    assert first.exit_code == 0, (first.stderr, first.exception)
    second = invoke("generate", "tiny", "--out", "tiny", "--overwrite")
    assert second.exit_code == 0, second.stderr
    assert Run(work / "tiny").manifest["scenario"]["name"] == "tiny"


def test_validate_preset(work):
    result = invoke("validate", "tiny")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stdout.startswith("tiny: valid. scenario 'tiny': 100 subscribers, 1 day from 2026-03-23")
    assert result.stdout.count("\n") == 1
    assert tree(work) == []  # validate writes nothing


def test_validate_file(work):
    path = config(work, "name: mine\nsubscribers: 2500\ndays: 3\nshard_size: 1000\n")
    result = invoke("validate", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{path}: valid. scenario 'mine': 2,500 subscribers, 3 days")
    assert "3 shards of 1000" in result.stdout


@pytest.mark.parametrize("preset", ["tiny", "city", "region"])
def test_validate_show_round_trips(work, preset):
    result = invoke("validate", "--show", preset)
    assert result.exit_code == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["name"] == preset and "world" in shown and "behaviour" in shown
    path = config(work, result.stdout, name="shown.yaml")
    assert load_scenario(path) == load_scenario(preset)


def test_validate_show_round_trips_a_customised_file(work):
    path = config(
        work,
        "name: custom\nseed: 8\nout: somewhere/else\ntimezone: America/New_York\n"
        "world:\n  network:\n    radio_mix: {LTE: 0.5, NR: 0.5}\n",
    )
    result = invoke("validate", "--show", path)
    assert result.exit_code == 0, result.stderr
    again = config(work, result.stdout, name="again.yaml")
    assert load_scenario(again) == load_scenario(path)
    assert load_scenario(again).out == Path("somewhere/else")


def test_no_arguments_shows_help():
    result = invoke()
    assert result.exit_code != 0
    assert "generate" in result.output and "validate" in result.output
    assert "Traceback" not in result.output


def test_ctrl_c_during_generation_leaves_no_output(work, monkeypatch):
    import importlib

    generate_module = importlib.import_module("synthmob.pipeline")
    real = generate_module.run_shard

    def interrupted(job, index):
        if index == 1:
            raise KeyboardInterrupt
        return real(job, index)

    monkeypatch.setattr(generate_module, "run_shard", interrupted)
    result = invoke("generate", "tiny", "--out", work / "a" / "run", "--workers", "1")
    assert result.exit_code == 130, (result.stderr, result.exception)
    assert "Traceback" not in result.output
    assert "interrupted; no output was left behind" in result.stderr
    assert tree(work) == []


# --- export ---------------------------------------------------------------------------------------------------
def test_export_writes_a_format_and_lists_its_files(work, tiny_run):
    result = invoke("export", tiny_run.path, "--format", "movingpandas", "--out", work / "mp")
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert result.stdout.startswith(f"wrote movingpandas export of {tiny_run.path} to {work / 'mp'}")
    assert "  points.parquet" in result.stdout and "  export.json" in result.stdout
    assert (work / "mp" / "points.csv").is_file()


def test_export_unknown_format_is_one_line_and_writes_nothing(work, tiny_run):
    line = user_error(invoke("export", tiny_run.path, "--format", "gpx", "--out", work / "x"))
    assert line == ("error: export format: got 'gpx'; valid formats are csv, flowkit, movingpandas, pseudonymous, "
                    "skmob, trackintel")
    assert tree(work) == []


def test_export_pseudonymous_with_a_key_file_is_reproducible(work, tiny_run):
    key = work / "release.key"
    key.write_bytes(bytes(range(32)))
    for name in ("a", "b"):
        result = invoke("export", tiny_run.path, "-f", "pseudonymous", "--key-file", key, "--out", work / name)
        assert result.exit_code == 0, (result.stderr, result.exception)
    files = sorted(p.relative_to(work / "a") for p in (work / "a").rglob("*.parquet"))
    assert files and all((work / "a" / f).read_bytes() == (work / "b" / f).read_bytes() for f in files)


def test_export_key_file_that_cannot_be_read(work, tiny_run):
    line = user_error(invoke("export", tiny_run.path, "-f", "pseudonymous", "--key-file", work / "missing.key",
                             "--out", work / "x"))
    assert line.startswith("error: --key-file: cannot read") and "missing.key" in line
    assert tree(work) == []


def test_export_of_a_folder_that_is_not_a_run(work):
    (work / "nothing").mkdir()
    line = user_error(invoke("export", work / "nothing", "--format", "csv"))
    assert line == (
        f"error: {work / 'nothing'}: not a synthmob run (no manifest.json); give a folder made by 'synthmob generate'"
    )
    assert tree(work) == ["nothing"]


# --- realism ----------------------------------------------------------------------------------------------------
def test_realism_prints_the_scorecard_and_writes_it(tmp_path):
    import synthmob

    run = synthmob.generate("tiny", out=tmp_path / "run")
    result = invoke("realism", run.path)
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "jump length" in result.stdout and "published" in result.stdout
    assert f"wrote {run.path / 'realism.json'}" in result.stdout
    assert (run.path / "realism.json").is_file()
    assert "records" in result.stderr and "2/2" in result.stderr  # progress over the run's two shards


@pytest.mark.parametrize("within", [True, False, None])
def test_realism_strict_fails_only_on_a_statistic_out_of_range(tmp_path, monkeypatch, within):
    import synthmob
    import synthmob.realism as realism

    run = synthmob.generate("tiny", out=tmp_path / "run")
    row = realism.Row("made-up statistic", 1.0, 2.0, "1 ± 0.1", 0.9, 1.1, "nobody", within, "")
    monkeypatch.setattr(realism, "scorecard", lambda handle, progress=None: [row])
    result = invoke("realism", run.path, "--strict")
    if within is False:
        assert result.exit_code == 1
        assert result.stderr.strip() == "out of range: made-up statistic"
    else:
        assert result.exit_code == 0, (result.stderr, result.exception)


def test_realism_of_a_folder_that_is_not_a_run(work):
    (work / "nothing").mkdir()
    line = user_error(invoke("realism", work / "nothing"))
    assert line.startswith(f"error: {work / 'nothing'}: not a synthmob run")


# --- insights and audit --------------------------------------------------------------------------------------
@pytest.fixture
def run_copy(tmp_path, tiny_run):
    """A writable copy of the tiny run (insights and audits write into the run folder)."""
    import shutil

    return Path(shutil.copytree(tiny_run.path, tmp_path / "tiny"))


def test_insights_then_audit_pass(run_copy):
    result = invoke("insights", run_copy, "--zones", "area", "-k", "5")
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert result.stdout.startswith(f"wrote insights of {run_copy} to {run_copy / 'insights'}")
    for name in ("footfall", "od", "dwell", "catchment"):
        assert f"  {name} " in result.stdout
        assert (run_copy / "insights" / f"{name}.parquet").is_file()
    result = invoke("audit", run_copy, "--sample", "50")
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert (run_copy / "audit.json").is_file()
    assert json.loads((run_copy / "audit.json").read_text())["passed"] is True


def test_audit_fails_with_status_1_on_a_leaky_table(run_copy):
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert invoke("insights", run_copy, "-k", "5").exit_code == 0
    leaky = pa.table({"zone_id": [1, 1, 1], "age_band": ["all", "25-34", "35-44"], "gender": ["all", "female", "male"],
                      "count": pa.array([40, 38, None], pa.int64())})
    pq.write_table(leaky, run_copy / "insights" / "footfall.parquet")
    sidecar = run_copy / "insights" / "footfall.json"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "keys": ["zone_id"], "k": 5}))
    result = invoke("audit", run_copy, "--sample", "20")
    assert result.exit_code == 1
    assert "audit failed" in result.stderr
    assert json.loads((run_copy / "audit.json").read_text())["passed"] is False


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (("-k", "many"), "error: command line: -k: got 'many'; give a whole number, 0 or more"),
        (("--epsilon", "x"), "error: command line: --epsilon: got 'x'; give a number > 0"),
        (("--zones", "hexagons"), "error: "),
        (("--source", "rumour"), "error: "),
    ],
)
def test_insights_bad_arguments_are_one_line_and_write_nothing(run_copy, args, start):
    line = user_error(invoke("insights", run_copy, *args))
    assert line.startswith(start)
    assert not (run_copy / "insights").exists() and staging_leftovers(run_copy) == []


def test_insights_and_audit_of_a_folder_that_is_not_a_run(work):
    (work / "nothing").mkdir()
    for command in ("insights", "audit"):
        line = user_error(invoke(command, work / "nothing"))
        assert "not a synthmob run" in line
    assert tree(work) == ["nothing"]
