"""Run: opening a run folder, reading its tables in canonical form, and the manifest's bookkeeping."""

from __future__ import annotations

import json
import shutil
import zoneinfo
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import synthmob
from synthmob import Run, SynthmobError, schema

SCHEMAS = {**schema.SINGLE_FILES, **schema.DATASETS}
KEYS = {
    "cells": ("cell_id",),
    "subscribers": ("subscriber_id",),
    "stays": ("subscriber_id", "start"),
    "trips": ("subscriber_id", "depart"),
    "events": ("subscriber_id", "timestamp"),
    "contacts": ("subscriber_a", "subscriber_b"),
}


@pytest.fixture(scope="module")
def two_day_run(tmp_path_factory):
    """tiny over two local days, so partitioned tables span several date folders and part files."""
    return synthmob.generate("tiny", out=tmp_path_factory.mktemp("runs") / "two", days=2)


# --- opening -----------------------------------------------------------------------------------------------
def test_empty_folder_is_not_a_run(tmp_path):
    with pytest.raises(SynthmobError) as info:
        Run(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: not a synthmob run (no manifest.json); give a folder made by 'synthmob generate'"
    )
    assert info.value.exit_code == 2


def test_missing_folder_is_not_a_run(tmp_path):
    with pytest.raises(SynthmobError, match=r"no manifest\.json"):
        Run(str(tmp_path / "nowhere"))


def test_folder_with_manifest_json_folder_is_not_a_run(tmp_path):
    (tmp_path / "manifest.json").mkdir()
    with pytest.raises(SynthmobError, match=r"not a synthmob run"):
        Run(tmp_path)


def test_opens_from_str_and_path(tiny_run):
    again = Run(str(tiny_run.path))
    assert again.path == tiny_run.path
    assert again.manifest == tiny_run.manifest
    assert repr(again) == f"Run({str(tiny_run.path)!r})"


# --- unknown tables ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["table", "dataset", "pandas"])
@pytest.mark.parametrize("name", ["stay", "cells.geojson", "manifest", ""])
def test_unknown_table_lists_the_valid_ones(tiny_run, method, name):
    with pytest.raises(SynthmobError) as info:
        getattr(tiny_run, method)(name)
    assert str(info.value) == (
        f"{tiny_run.path}: no table {name!r}; tables are cells, contacts, events, stays, subscribers, trips"
    )


def test_tables_are_the_schema_tables(tiny_run):
    assert tiny_run.tables == ("cells", "contacts", "events", "stays", "subscribers", "trips")
    assert set(tiny_run.tables) == set(SCHEMAS)


# --- tables ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_table_has_canonical_schema(two_day_run, name):
    table = two_day_run.table(name)
    expected = SCHEMAS[name]
    assert table.schema.equals(expected), f"{table.schema}\n!=\n{expected}"
    assert table.column_names == expected.names  # in particular no `date` partition column
    assert table.num_rows > 0


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_table_is_sorted_by_its_key(two_day_run, name):
    table = two_day_run.table(name)
    keys = list(zip(*(table.column(k).to_pylist() for k in KEYS[name])))
    assert keys == sorted(keys)
    if name in ("cells", "subscribers", "contacts"):
        assert len(set(keys)) == len(keys)  # a unique key


def test_partitioned_table_is_sorted_although_files_are_not(two_day_run):
    """Rows come back sorted by subscriber and time even though the files are grouped by date first."""
    raw = two_day_run.dataset("stays").to_table()
    raw_keys = list(zip(raw.column("subscriber_id").to_pylist(), raw.column("start").to_pylist()))
    table = two_day_run.table("stays")
    keys = list(zip(table.column("subscriber_id").to_pylist(), table.column("start").to_pylist()))
    assert raw_keys != sorted(raw_keys)  # the files alone are not in key order ...
    assert keys == sorted(raw_keys)  # ... but table() is, with the same rows


def test_pandas_matches_table(tiny_run):
    frame = tiny_run.pandas("subscribers")
    table = tiny_run.table("subscribers")
    assert list(frame.columns) == table.column_names
    assert frame["subscriber_id"].tolist() == table.column("subscriber_id").to_pylist()


def test_missing_partitioned_folder_reads_as_empty_table(tiny_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run.path, copy)
    shutil.rmtree(copy / "trips")
    table = Run(copy).table("trips")
    assert table.num_rows == 0
    assert table.schema.equals(schema.TRIPS)


# --- datasets ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(schema.DATASETS))
def test_dataset_exposes_date_partition(two_day_run, name):
    dataset = two_day_run.dataset(name)
    assert dataset.schema.field("date").type == pa.string()
    time_column = {"stays": "start", "trips": "depart", "events": "timestamp"}[name]
    rows = dataset.to_table(columns=[time_column, "date"]).to_pylist()
    assert {row["date"] for row in rows} == {"2026-03-23", "2026-03-24"}
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    for row in rows:
        assert row[time_column].astimezone(berlin).date().isoformat() == row["date"]


def test_dataset_filters_on_date(two_day_run):
    import pyarrow.dataset as ds

    dataset = two_day_run.dataset("stays")
    first = dataset.to_table(filter=ds.field("date") == "2026-03-23").num_rows
    second = dataset.to_table(filter=ds.field("date") == "2026-03-24").num_rows
    assert first > 0 and second > 0
    assert first + second == two_day_run.table("stays").num_rows


def test_single_file_dataset_has_no_date(tiny_run):
    dataset = tiny_run.dataset("cells")
    assert "date" not in dataset.schema.names
    assert dataset.count_rows() == tiny_run.table("cells").num_rows


# --- manifest ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["tiny_run", "two_day_run"])
def test_manifest_row_counts_match_tables(request, fixture):
    run = request.getfixturevalue(fixture)
    tables = run.manifest["tables"]
    assert set(tables) == set(run.tables) | {"cells.geojson"}
    for name in run.tables:
        assert tables[name]["rows"] == run.table(name).num_rows, name
        assert tables[name]["rows"] == sum(tables[name]["files"].values()), name
    geojson = json.loads((run.path / "cells.geojson").read_text())
    assert tables["cells.geojson"]["rows"] == len(geojson["features"])
    assert tables["cells"]["rows"] == sum(f["properties"]["kind"] == "cell" for f in geojson["features"])
    assert tables["subscribers"]["rows"] == run.manifest["scenario"]["subscribers"]


@pytest.mark.parametrize("fixture", ["tiny_run", "two_day_run"])
def test_every_file_in_the_manifest_exists_with_its_row_count(request, fixture):
    run = request.getfixturevalue(fixture)
    listed = set()
    for info in run.manifest["tables"].values():
        for relative, rows in info["files"].items():
            path = run.path / relative
            assert path.is_file(), relative
            listed.add(relative)
            if path.suffix == ".parquet":
                assert pq.ParquetFile(path).metadata.num_rows == rows, relative
    on_disk = {p.relative_to(run.path).as_posix() for p in run.path.rglob("*") if p.is_file()}
    assert on_disk == listed | {"manifest.json"}  # and nothing unlisted


def test_manifest_scenario_round_trips(two_day_run):
    scenario = synthmob.load_scenario(two_day_run.manifest["scenario"])
    assert scenario == synthmob.load_scenario("tiny", overrides={"days": 2, "out": two_day_run.path})
    assert two_day_run.manifest["calendar"]["days"] == 2
    assert two_day_run.manifest["calendar"]["start"] == "2026-03-23"


def test_partition_folders_match_the_calendar(two_day_run):
    for name in schema.DATASETS:
        folders = sorted(p.name for p in (two_day_run.path / name).iterdir())
        assert folders == ["date=2026-03-23", "date=2026-03-24"]
        parts = sorted(p.name for p in (two_day_run.path / name).glob("date=*/*.parquet"))
        assert parts and all(Path(p).stem.startswith("part-") for p in parts)
