"""Resuming a run: an interrupted run, run again with ``resume=True``, ends with the output of one that never stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import synthmob
from synthmob import pipeline
from synthmob.cli import app
from synthmob.errors import OutputError
from synthmob.output import staged_folder
from synthmob.scenario import load_scenario

TABLES = ("stays", "trips", "events", "subscribers", "contacts", "cells")
TINY = {"seed": 9, "subscribers": 100, "shard_size": 25, "days": 2}  # four shards
CITY = {"seed": 7, "subscribers": 600, "shard_size": 100, "days": 2}  # six shards

SCRIPT = """\
import sys

import synthmob

if __name__ == "__main__":
    synthmob.generate("city", out=sys.argv[1], workers=1, resume=True, **{kwargs!r})
"""


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def partial(preset: str, out: Path, **kwargs) -> Path:
    return pipeline.partial_folder(load_scenario(preset, overrides={"out": out, **kwargs}))


def done(folder: Path, stage: str) -> set[int]:
    """Indices of the shards of ``stage`` marked complete in a partial run."""
    return {int(p.stem.split("-")[1]) for p in (folder / ".work" / "done").glob(f"{stage}-*.json")}


def assert_same_output(a: synthmob.Run, b: synthmob.Run) -> None:
    for name in TABLES:
        assert a.table(name).equals(b.table(name)), name
    assert tree(a.path) == tree(b.path)
    def essentials(manifest: dict) -> dict:  # all but the timing, where it ran, and the output folder
        return {**manifest, "run": None, "scenario": {**manifest["scenario"], "out": None}}

    assert essentials(a.manifest) == essentials(b.manifest)


@pytest.fixture
def spy(monkeypatch):
    """The shards each stage ran in this process, by stage."""
    calls: dict[str, list[int]] = {"shards": [], "events": []}
    for stage, name in (("shards", "run_shard"), ("events", "finish_shard")):
        real = getattr(pipeline, name)

        def recorded(job, index, real=real, stage=stage):
            calls[stage].append(index)
            return real(job, index)

        monkeypatch.setattr(pipeline, name, recorded)
    return calls


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The scenarios of this module, generated without interruption, in one folder each."""
    base = tmp_path_factory.mktemp("uninterrupted")
    return {
        "tiny": synthmob.generate("tiny", out=base / "tiny" / "run", **TINY),
        "city": synthmob.generate("city", out=base / "city" / "run", **CITY),
    }


def test_the_partial_folder_is_named_after_the_scenario(tmp_path):
    folder = partial("tiny", tmp_path / "run", **TINY)
    assert folder.parent == tmp_path
    assert re.fullmatch(r"\.run\.partial-[0-9a-f]{12}", folder.name)
    assert folder == partial("tiny", tmp_path / "run", **TINY)
    assert folder != partial("tiny", tmp_path / "run", **{**TINY, "seed": 10})
    assert folder != partial("tiny", tmp_path / "run", **{**TINY, "days": 3})


def test_a_partial_run_of_another_work_format_is_not_resumed(tmp_path, monkeypatch):
    """Intermediate files of another release (say, without the shards' identities) are never taken for these."""
    folder = partial("tiny", tmp_path / "run", **TINY)
    monkeypatch.setattr(pipeline, "WORK_FORMAT", pipeline.WORK_FORMAT + 1)
    assert partial("tiny", tmp_path / "run", **TINY) != folder


def test_an_error_keeps_the_partial_run_and_resuming_finishes_it(tmp_path, monkeypatch, spy, references):
    out = tmp_path / "run"
    folder = partial("tiny", out, **TINY)
    real = pipeline.finish_shard

    def failing(job, index):
        if index == 2:
            raise RuntimeError("disk full")
        return real(job, index)

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "finish_shard", failing)
        with pytest.raises(RuntimeError, match="disk full") as caught:
            synthmob.generate("tiny", out=out, workers=1, resume=True, **TINY)
    assert any("resume=True" in note and str(folder) in note for note in caught.value.__notes__)
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]
    assert done(folder, "shards") == {0, 1, 2, 3} and done(folder, "events") == {0, 1}

    # What an attempt killed while redoing a shard may leave: the shard's marker not yet written, a part file
    # in a partition the shard does not write, an unfinished routing of callee legs.
    (folder / ".work" / "done" / "shards-3.json").unlink()
    (folder / ".work" / "done" / "calls.json").unlink()
    stray = folder / "stays" / "date=2099-01-01" / "part-00003.parquet"
    stray.parent.mkdir()
    stray.write_bytes(b"half a file")
    (folder / ".work" / "incoming" / "shard=0").mkdir(parents=True, exist_ok=True)
    (folder / ".work" / "incoming" / "shard=0" / "half.parquet").write_bytes(b"half a file")
    spy["shards"].clear()
    spy["events"].clear()

    seen = []
    run = synthmob.generate("tiny", out=out, workers=1, resume=True, progress=lambda *s: seen.append(s), **TINY)
    assert spy == {"shards": [3], "events": [2, 3]}  # only what was not finished
    assert [s for s in seen if s[0] == "shards"] == [("shards", 3, 4), ("shards", 4, 4)]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # the partial folder became the run
    assert_same_output(references["tiny"], run)


def test_a_partial_run_of_another_scenario_is_left_alone(tmp_path, monkeypatch, references):
    out = tmp_path / "run"
    other = {**TINY, "seed": 10}
    def interrupted(job, index):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "run_shard", interrupted)
        with pytest.raises(KeyboardInterrupt):
            synthmob.generate("tiny", out=out, resume=True, **other)
    stale = partial("tiny", out, **other)
    before = tree(stale)
    run = synthmob.generate("tiny", out=out, resume=True, **TINY)
    assert_same_output(references["tiny"], run)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([stale.name, "run"])
    assert tree(stale) == before


def test_two_processes_cannot_resume_one_run(tmp_path):
    out = tmp_path / "run"
    folder = partial("tiny", out, **TINY)
    attempt = staged_folder(out, overwrite=False, partial=folder.name)  # another process's, still running
    with attempt, pytest.raises(OutputError, match="another process is writing this run"):
        synthmob.generate("tiny", out=out, resume=True, **TINY)


def test_without_resume_a_failed_run_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "finish_shard", lambda job, index: 1 / 0)
    with pytest.raises(ZeroDivisionError) as caught:
        synthmob.generate("tiny", out=tmp_path / "run", **TINY)
    assert not getattr(caught.value, "__notes__", None)
    assert tree(tmp_path) == []


@pytest.mark.slow
def test_a_killed_run_resumes_without_redoing_finished_shards(tmp_path, spy, references):
    out = tmp_path / "run"
    folder = partial("city", out, **CITY)
    script = tmp_path / "generate.py"
    script.write_text(SCRIPT.format(kwargs=CITY), encoding="utf-8")
    process = subprocess.Popen([sys.executable, str(script), str(out)], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while len(done(folder, "shards")) < 2:
            assert process.poll() is None, f"the run ended before it was killed: {process.stderr.read()!r}"
            assert time.monotonic() < deadline, "no shard finished in time"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    finished = done(folder, "shards")
    assert 2 <= len(finished) < 6
    assert {p.name for p in (folder / ".work" / "done").glob("*.json")} == {f"shards-{i}.json" for i in finished}

    seen = []
    run = synthmob.generate("city", out=out, workers=1, resume=True, progress=lambda *s: seen.append(s), **CITY)
    assert sorted(spy["shards"]) == sorted(set(range(6)) - finished)
    assert sorted(spy["events"]) == list(range(6))
    assert seen[[s[0] for s in seen].index("shards")] == ("shards", len(finished), 6)
    assert [p.name for p in tmp_path.iterdir() if p.name != script.name] == ["run"]
    assert_same_output(references["city"], run)


# --- the command line --------------------------------------------------------------------------------------------
def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_ctrl_c_with_resume_keeps_the_run_and_says_how_to_continue(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    flags = ["--seed", TINY["seed"], "--subscribers", TINY["subscribers"], "--days", TINY["days"]]
    real = pipeline.run_shard

    def interrupted(job, index):
        if index == 1:
            raise KeyboardInterrupt
        return real(job, index)

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "run_shard", interrupted)
        # the tiny preset's shard size is 50, so TINY's flags make two shards
        result = invoke("generate", "tiny", "--out", out, "--workers", "1", "--resume", *flags)
    assert result.exit_code == 130, (result.stderr, result.exception)
    folder = partial("tiny", str(out), seed=9, subscribers=100, days=2)
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        f"interrupted; the finished shards are kept in {folder}: run the same command with --resume to continue"
    )
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]

    result = invoke("generate", "tiny", "--out", out, "--workers", "1", "--resume", *flags)
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    reference = synthmob.generate("tiny", out=tmp_path / "ref", seed=9, subscribers=100, days=2)
    for name in TABLES:
        assert synthmob.Run(out).table(name).equals(reference.table(name)), name


def test_cli_error_with_resume_is_still_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"

    def refuse(job, index):
        raise OutputError(f"{job.staging}: disk quota exceeded; free some space")

    monkeypatch.setattr(pipeline, "finish_shard", refuse)
    result = invoke("generate", "tiny", "--out", out, "--workers", "1", "--resume")
    assert result.exit_code == 2 and result.stdout == "", (result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip() and "━" not in line]
    error = [line for line in lines if line.startswith("error: ")]
    assert len(error) == 1, result.stderr
    folder = partial("tiny", str(out))
    assert error[0] == (
        f"error: {folder}: disk quota exceeded; free some space; the finished shards are kept in {folder}: "
        "run the same command with --resume to continue"
    )
    assert os.listdir(tmp_path) == [folder.name]
