"""The output folder appears complete or not at all; existing content is only replaced after success."""

from __future__ import annotations

import os
from contextlib import contextmanager

import importlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import synthmob
from synthmob import ConfigError, OutputError, Run
from synthmob.output import staged_folder

generate_module = importlib.import_module("synthmob.pipeline")


class Boom(Exception):
    pass


def tree(root: Path) -> list[str]:
    """Every path under ``root`` (hidden ones included), relative."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def fill(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


OLD = {"manifest.json": "{}", "old.txt": "old run", "nested/part.bin": "old part"}


def old_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    fill(folder, OLD)
    return folder


def assert_old_intact(folder: Path) -> None:
    assert tree(folder) == ["manifest.json", "nested", "nested/part.bin", "old.txt"]
    assert (folder / "old.txt").read_text() == "old run"
    assert (folder / "nested" / "part.bin").read_text() == "old part"


# --- staged_folder -----------------------------------------------------------------------------------------
def test_success_moves_content_into_target(tmp_path):
    target = tmp_path / "run"
    with staged_folder(target, overwrite=False) as staging:
        # the block writes elsewhere: beside the target, hidden, and the target does not exist yet
        assert staging.parent == tmp_path
        assert staging.name.startswith(".run.tmp-")
        assert not target.exists()
        fill(staging, {"a.txt": "A", "sub/b.txt": "B"})
    assert tree(tmp_path) == ["run", "run/a.txt", "run/sub", "run/sub/b.txt"]
    assert (target / "a.txt").read_text() == "A"
    assert (target / "sub" / "b.txt").read_text() == "B"


def test_success_creates_missing_parents(tmp_path):
    target = tmp_path / "a" / "b" / "run"
    with staged_folder(target, overwrite=False) as staging:
        fill(staging, {"x": "1"})
    assert tree(tmp_path) == ["a", "a/b", "a/b/run", "a/b/run/x"]


def test_relative_target_is_resolved_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with staged_folder(Path("rel"), overwrite=False) as staging:
        assert staging.is_absolute()
        fill(staging, {"x": "1"})
    assert tree(tmp_path) == ["rel", "rel/x"]


def test_exception_leaves_nothing(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(Boom):
        with staged_folder(target, overwrite=False) as staging:
            fill(staging, {"half.txt": "half written"})
            raise Boom
    assert tree(tmp_path) == []


def test_exception_removes_parent_folders_it_created(tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    target = existing / "new1" / "new2" / "run"
    with pytest.raises(Boom):
        with staged_folder(target, overwrite=False) as staging:
            fill(staging, {"half.txt": "x"})
            raise Boom
    # only what staged_folder made is gone; the folder that was there before stays
    assert tree(tmp_path) == ["existing"]


def test_exception_keeps_parent_folders_that_gained_other_content(tmp_path):
    target = tmp_path / "made" / "run"
    with pytest.raises(Boom):
        with staged_folder(target, overwrite=False) as staging:
            fill(staging, {"half.txt": "x"})
            (tmp_path / "made" / "someone-else.txt").write_text("not ours")
            raise Boom
    assert tree(tmp_path) == ["made", "made/someone-else.txt"]


def test_keyboard_interrupt_leaves_nothing(tmp_path):
    target = tmp_path / "p" / "run"
    with pytest.raises(KeyboardInterrupt):
        with staged_folder(target, overwrite=False) as staging:
            fill(staging, {"half.txt": "x"})
            raise KeyboardInterrupt
    assert tree(tmp_path) == []


def test_non_empty_target_without_overwrite_is_refused_and_untouched(tmp_path):
    target = old_run(tmp_path / "run")
    entered = False
    with pytest.raises(OutputError) as info:
        with staged_folder(target, overwrite=False):
            entered = True
    assert not entered
    assert str(info.value) == (
        f"{target}: folder exists and is not empty; pass --overwrite to replace it, or choose another --out"
    )
    assert info.value.exit_code == 2
    assert_old_intact(target)
    assert tree(tmp_path) == ["run", "run/manifest.json", "run/nested", "run/nested/part.bin", "run/old.txt"]


def test_empty_existing_target_is_used_without_overwrite(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    with staged_folder(target, overwrite=False) as staging:
        fill(staging, {"new.txt": "new"})
    assert tree(tmp_path) == ["run", "run/new.txt"]


def test_overwrite_replaces_old_content_after_success(tmp_path):
    target = old_run(tmp_path / "run")
    with staged_folder(target, overwrite=True) as staging:
        fill(staging, {"new.txt": "new run"})
        # while the block runs, the old run is still in place
        assert_old_intact(target)
    assert tree(tmp_path) == ["run", "run/new.txt"]  # no old files mixed in, no trash left beside it
    assert (target / "new.txt").read_text() == "new run"


def test_overwrite_keeps_old_content_when_the_block_raises(tmp_path):
    target = old_run(tmp_path / "run")
    with pytest.raises(Boom):
        with staged_folder(target, overwrite=True) as staging:
            fill(staging, {"new.txt": "half"})
            raise Boom
    assert_old_intact(target)
    assert tree(tmp_path) == ["run", "run/manifest.json", "run/nested", "run/nested/part.bin", "run/old.txt"]


def test_target_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "run"
    target.write_text("a file")
    with pytest.raises(OutputError) as info:
        with staged_folder(target, overwrite=True):
            pytest.fail("block must not run")
    assert str(info.value) == f"{target}: is a file, not a folder; give --out a folder path"
    assert target.read_text() == "a file"
    assert tree(tmp_path) == ["run"]


def test_target_below_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file")
    target = blocker / "deeper" / "run"
    with pytest.raises(OutputError) as info:
        with staged_folder(target, overwrite=False):
            pytest.fail("block must not run")
    assert str(info.value) == f"{target}: {blocker} is a file, not a folder; give --out a path inside a folder"
    assert tree(tmp_path) == ["file"]


# --- generate(): failures leave nothing behind -------------------------------------------------------------
@pytest.fixture
def second_shard_fails(monkeypatch):
    """Make shard 1 (the second of tiny's two) raise, after shard 0 has written its part files."""
    real = generate_module.run_shard
    calls = []

    def flaky(job, index):
        calls.append(index)
        if index == 1:
            # the first shard's files are really in the staging folder by now
            assert list(job.staging.glob("stays/date=*/part-00000.parquet"))
            raise Boom("shard 1 failed")
        return real(job, index)

    monkeypatch.setattr(generate_module, "run_shard", flaky)
    return calls


def test_generate_failing_shard_leaves_nothing_in_parent(tmp_path, second_shard_fails):
    parent = tmp_path / "runs"
    parent.mkdir()
    with pytest.raises(Boom, match="shard 1 failed"):
        synthmob.generate("tiny", out=parent / "tiny", workers=1)
    assert second_shard_fails == [0, 1]
    assert tree(parent) == []


def test_generate_failing_shard_removes_parents_it_created(tmp_path, second_shard_fails):
    with pytest.raises(Boom):
        synthmob.generate("tiny", out=tmp_path / "a" / "b" / "tiny")
    assert second_shard_fails == [0, 1]
    assert tree(tmp_path) == []


def test_generate_failing_shard_with_overwrite_keeps_the_previous_run(tmp_path, monkeypatch):
    out = tmp_path / "tiny"
    synthmob.generate("tiny", out=out)
    before = {p: (out / p).read_bytes() for p in tree(out) if (out / p).is_file()}
    assert "manifest.json" in before

    real = generate_module.run_shard

    def flaky(job, index):
        if index == 1:
            raise Boom
        return real(job, index)

    monkeypatch.setattr(generate_module, "run_shard", flaky)
    with pytest.raises(Boom):
        synthmob.generate("tiny", out=out, seed=99, overwrite=True)
    assert tree(tmp_path) == ["tiny"] + [f"tiny/{p}" for p in tree(out)]  # nothing hidden beside it
    assert {p: (out / p).read_bytes() for p in tree(out) if (out / p).is_file()} == before
    assert Run(out).manifest["scenario"]["seed"] == 1


def test_generate_refuses_non_empty_folder_and_keeps_it(tmp_path):
    out = old_run(tmp_path / "run")
    with pytest.raises(OutputError, match="pass --overwrite"):
        synthmob.generate("tiny", out=out)
    assert_old_intact(out)
    assert tree(tmp_path) == ["run", "run/manifest.json", "run/nested", "run/nested/part.bin", "run/old.txt"]


def test_generate_overwrite_replaces_folder(tmp_path):
    out = old_run(tmp_path / "run")
    run = synthmob.generate("tiny", out=out, overwrite=True)
    assert run.path == out
    assert not (out / "old.txt").exists() and not (out / "nested").exists()
    assert json.loads((out / "manifest.json").read_text())["scenario"]["name"] == "tiny"
    assert [p for p in tree(tmp_path) if "/" not in p] == ["run"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "argument: days: got 0; input should be greater than or equal to 1"),
        ({"workers": 0}, "argument: workers: got 0; give a whole number of processes, 1 or more"),
        ({"workers": True}, "argument: workers: got True; give a whole number of processes, 1 or more"),
        ({"workers": 1.5}, "argument: workers: got 1.5; give a whole number of processes, 1 or more"),
    ],
)
def test_generate_bad_arguments_create_nothing(tmp_path, kwargs, message):
    with pytest.raises(ConfigError) as info:
        synthmob.generate("tiny", out=tmp_path / "a" / "run", **kwargs)
    assert str(info.value) == message
    assert tree(tmp_path) == []


# --- what --overwrite may replace ------------------------------------------------------------------------------
def test_overwrite_never_replaces_a_folder_that_is_not_an_earlier_run(tmp_path):
    target = tmp_path / "docs"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(OutputError) as info:
        with staged_folder(target, overwrite=True):
            raise AssertionError("must not be reached")
    assert "holds no earlier output (manifest.json)" in str(info.value)
    assert (target / "notes.txt").read_text() == "mine"
    assert tree(tmp_path) == ["docs", "docs/notes.txt"]


@pytest.mark.parametrize("where", ["here", "parent"])
def test_the_current_folder_and_its_parents_are_refused(tmp_path, monkeypatch, where):
    work = tmp_path / "project"
    work.mkdir()
    (work / "manifest.json").write_text("{}")  # even if it looks like a run
    monkeypatch.chdir(work)
    target = work if where == "here" else tmp_path
    with pytest.raises(OutputError) as info:
        with staged_folder(target, overwrite=True):
            raise AssertionError("must not be reached")
    assert "is the current folder or one of its parents" in str(info.value)
    assert (work / "manifest.json").exists()


def test_an_impossible_name_is_an_output_error(tmp_path):
    with pytest.raises(OutputError) as info:
        with staged_folder(tmp_path / ("x" * 300) / "run", overwrite=False):
            raise AssertionError("must not be reached")
    assert "File name too long" in str(info.value)
    assert tree(tmp_path) == []


def test_the_run_folder_is_readable_like_any_new_folder(tmp_path):
    import os
    import stat

    with staged_folder(tmp_path / "run", overwrite=False) as staging:
        (staging / "a").write_text("x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o777 & ~mask


@contextmanager
def _unprivileged():
    """Run the block without the rights to enter a 0o000 folder (as root, by dropping to 'nobody')."""
    if os.geteuid() == 0:
        os.seteuid(65534)
        try:
            yield
        finally:
            os.seteuid(0)
    else:  # pragma: no cover - CI runs as root
        yield


def test_a_folder_we_may_not_enter_is_an_output_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    try:
        with _unprivileged(), pytest.raises(OutputError) as info:
            with staged_folder(locked / "run", overwrite=False):
                raise AssertionError("must not be reached")
    finally:
        locked.chmod(0o700)
    assert "Permission denied" in str(info.value)
    assert tree(tmp_path) == ["locked"]


# --- date-partitioned and intermediate files -----------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(hours=st.lists(st.integers(0, 4 * 24 - 1), min_size=1, max_size=60))
def test_partitioned_files_hold_each_days_rows_in_their_order(tmp_path_factory, hours):
    """Rows in any order of days: one file per local date, each with that date's rows in the table's order."""
    import datetime as dt

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synthmob.calendar import Calendar
    from synthmob.output import local_days, write_partitioned

    calendar = Calendar.create(dt.date(2026, 3, 28), 4, "Europe/Berlin")  # a DST change on the 29th
    ms = (calendar.epoch_s + np.array(hours, dtype=np.int64) * 3600) * 1000
    table = pa.table({"t": pa.array(ms).cast(pa.timestamp("ms", tz="UTC")), "row": np.arange(len(hours))})
    folder = tmp_path_factory.mktemp("parts") / "things"
    rows = write_partitioned(table, folder, time_column="t", calendar=calendar, part="part-00000")
    day = local_days(ms, calendar)
    expected = {f"things/date={calendar.date_of_day(d).isoformat()}/part-00000.parquet": np.flatnonzero(day == d)
                for d in np.unique(day)}
    assert rows == {path: len(index) for path, index in expected.items()}
    for path, index in expected.items():
        assert pq.read_table(folder.parent / path)["row"].to_pylist() == index.tolist()


def test_scratch_files_read_back_as_written(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synthmob.output import read_scratch, write_scratch

    table = pa.table({"kind": ["a", "b", "a", "a"], "n": [1, None, 3, 4]})
    assert write_scratch(table, tmp_path / "deep" / "x.parquet") == 4
    assert pq.read_table(tmp_path / "deep" / "x.parquet").equals(table)  # DuckDB reads these
    assert write_scratch(table, tmp_path / "deep" / "x.arrow") == 4
    assert read_scratch(tmp_path / "deep" / "x.arrow").equals(table)
    assert pa.ipc.open_file(pa.OSFile(str(tmp_path / "deep" / "x.arrow"))).read_all().equals(table)


def test_an_intermediate_file_of_another_kind_is_refused(tmp_path):
    import pyarrow as pa

    from synthmob.output import read_scratch, write_scratch

    with pytest.raises(ValueError, match=r"x\.feather: an intermediate file is \.arrow or \.parquet, not \.feather"):
        write_scratch(pa.table({"n": [1]}), tmp_path / "x.feather")
    with pytest.raises(ValueError, match="not without suffix"):
        read_scratch(tmp_path / "x")
    assert not (tmp_path / "x.feather").exists()


# --- Parquet files ---------------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 2), st.one_of(st.none(), st.integers(0, 1)), st.integers(0, 2**40)),
                     max_size=40))
def test_dictionary_columns_read_back_as_the_strings_they_code(tmp_path_factory, rows):
    """Codes into a few names, written from their codes, read back as the plain strings, metadata kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synthmob.output import write_table

    kinds, directions, ms = (list(column) for column in zip(*rows)) if rows else ([], [], [])
    names, sides = pa.array(["voice", "sms", "data"]), pa.array(["out", "in"])
    plain = pa.schema([
        pa.field("kind", pa.string(), nullable=False), pa.field("direction", pa.string()),
        pa.field("at", pa.timestamp("ms", tz="UTC"), nullable=False),
    ])
    codes = pa.array(kinds, pa.int8()), pa.array(directions, pa.int8())
    coded = pa.table(
        [pa.DictionaryArray.from_arrays(codes[0], names), pa.DictionaryArray.from_arrays(codes[1], sides),
         pa.array(ms, pa.int64()).cast(plain.field("at").type)],
        schema=pa.schema([plain.field("kind").with_type(pa.dictionary(pa.int8(), pa.string())),
                          plain.field("direction").with_type(pa.dictionary(pa.int8(), pa.string())), plain.field("at")]),
    )
    path = tmp_path_factory.mktemp("coded") / "deep" / "x.parquet"
    assert write_table(coded, path, metadata={"synthmob": "{}"}) == len(rows)
    back = pq.read_table(path)
    assert back.schema.equals(plain)
    assert back.schema.metadata == {b"synthmob": b"{}"}
    assert back["kind"].to_pylist() == [["voice", "sms", "data"][k] for k in kinds]
    assert back["direction"].to_pylist() == [None if d is None else ["out", "in"][d] for d in directions]
    assert back["at"].cast(pa.int64()).to_pylist() == ms


def test_a_nested_table_with_dictionary_columns_is_refused(tmp_path):
    import pyarrow as pa

    from synthmob.output import write_table

    table = pa.table({"kind": pa.array(["a", "b"]).dictionary_encode(), "path": [[1], [2, 3]]})
    with pytest.raises(ValueError, match="dictionary columns need a flat table of plain types"):
        write_table(table, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_timestamps_and_subscriber_ids_are_written_as_deltas(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synthmob.output import write_table

    step = pa.struct([("cell_id", pa.int32()), ("entered", pa.timestamp("ms", tz="UTC"))])
    table = pa.table({
        "subscriber_id": pa.array([1, 1, 2], pa.int64()),
        "depart": pa.array([5, 9, 2], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "cell_id": pa.array([3, 4, 5], pa.int32()),
        "path": pa.array([[{"cell_id": 1, "entered": 5}], [], [{"cell_id": 2, "entered": 7}]], pa.list_(step)),
    })
    write_table(table, tmp_path / "x.parquet")
    meta = pq.ParquetFile(tmp_path / "x.parquet").metadata.row_group(0)
    delta = {meta.column(i).path_in_schema for i in range(meta.num_columns)
             if "DELTA_BINARY_PACKED" in meta.column(i).encodings}
    assert delta == {"subscriber_id", "depart", "path.list.element.entered"}
    assert pq.read_table(tmp_path / "x.parquet").equals(table)
