"""The privacy audit: released tables checked against their sidecars, and the unicity of the records."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from synthmob import schema
from synthmob.audit import audit
from synthmob.disclosure import TOTAL, protect
from synthmob.errors import SynthmobError
from synthmob.run import Run


def _footfall(run: Run) -> pa.Table:
    """Distinct subscribers per cell by age band and gender, with totals: exact counts."""
    events = run.table("events").select([schema.SUBSCRIBER_ID, schema.CELL_ID]).group_by(
        [schema.SUBSCRIBER_ID, schema.CELL_ID]).aggregate([])
    people = run.table("subscribers").select([schema.SUBSCRIBER_ID, "age_band", "gender"])
    seen = events.join(people, schema.SUBSCRIBER_ID)
    cells = seen.group_by([schema.CELL_ID, "age_band", "gender"]).aggregate([(schema.SUBSCRIBER_ID, "count")])
    totals = seen.group_by([schema.CELL_ID]).aggregate([(schema.SUBSCRIBER_ID, "count")])
    totals = totals.append_column("age_band", pa.array([TOTAL] * totals.num_rows)).append_column(
        "gender", pa.array([TOTAL] * totals.num_rows))
    both = pa.concat_tables([t.select([schema.CELL_ID, "age_band", "gender", "subscriber_id_count"])
                             for t in (cells, totals)])
    return both.rename_columns(["zone_id", "age_band", "gender", "count"])


def _release(folder, name: str, table: pa.Table, *, keys, k) -> None:
    folder.mkdir(exist_ok=True)
    pq.write_table(table, folder / f"{name}.parquet")
    (folder / f"{name}.json").write_text(json.dumps({"keys": keys, "k": k}))


@pytest.fixture
def released_run(tiny_run, tmp_path):
    """A copy of the tiny run with one correctly protected table and a zones file."""
    path = shutil.copytree(tiny_run.path, tmp_path / "run")
    run = Run(path)
    table, _ = protect(_footfall(run), keys=["zone_id"], k=3)
    _release(path / "insights", "footfall", table, keys=["zone_id"], k=3)
    pq.write_table(pa.table({"zone_id": [1], "geometry_wkt": ["POINT (0 0)"]}), path / "insights" / "zones.parquet")
    return run


def test_a_protected_table_passes(released_run):
    result = audit(released_run, points=(1, 2), sample=50)
    assert list(result.tables) == ["footfall"]
    footfall = result.tables["footfall"]
    assert footfall.findings == () and footfall.rows == pq.read_metadata(
        released_run.path / "insights" / "footfall.parquet").num_rows
    assert footfall.keys == ("zone_id",) and footfall.k == 3
    assert result.passed
    text = result.format_table()
    assert text.splitlines()[0].split() == ["table", "rows", "k", "findings", "verdict"]
    assert text.splitlines()[1].split()[-1] == "pass"


def test_a_leaky_table_fails_and_names_the_group(released_run):
    leaky = pa.table({"zone_id": [1, 1, 1, 2, 2, 2], "hour": [8] * 6,
                      "age_band": ["all", "18-29", "30-44", "all", "18-29", "30-44"],
                      "gender": ["all", "female", "male", "all", "female", "male"],
                      "count": pa.array([40, None, 25, 30, 3, 27], pa.int64())})
    _release(released_run.path / "insights", "od", leaky, keys=["zone_id", "hour"], k=15)
    result = audit(released_run, points=(1,), sample=10)
    assert not result.passed
    assert result.tables["footfall"].passed and not result.tables["od"].passed
    rules = sorted((f.rule, tuple(f.group.items())) for f in result.tables["od"].findings)
    assert rules == [("differencing", (("zone_id", 1), ("hour", 8))), ("small_count", (("zone_id", 2), ("hour", 8)))]
    assert "FAIL" in result.format_table()
    data = result.to_json()
    assert data["passed"] is False
    od = next(t for t in data["tables"] if t["name"] == "od")
    assert od["verdict"] == "fail" and {f["rule"] for f in od["findings"]} == {"differencing", "small_count"}
    assert od["findings"][0]["group"] == {"zone_id": 1, "hour": 8}


def test_a_table_without_a_sidecar_is_a_finding(released_run):
    (released_run.path / "insights" / "footfall.json").unlink()
    pq.write_table(pa.table({"x": [1]}), released_run.path / "insights" / "dwell.parquet")
    (released_run.path / "insights" / "dwell.json").write_text(json.dumps({"keys": ["zone_id"], "k": 15}))
    (released_run.path / "insights" / "od.parquet").write_bytes(b"not parquet")
    (released_run.path / "insights" / "od.json").write_text("{not json")
    result = audit(released_run, points=(1,), sample=10)
    assert not result.passed
    found = {name: [(f.rule, f.detail) for f in t.findings] for name, t in result.tables.items()}
    assert found["footfall"][0][0] == "sidecar" and "no sidecar footfall.json" in found["footfall"][0][1]
    assert found["od"][0][0] == "sidecar" and "not readable JSON" in found["od"][0][1]
    assert found["dwell"][0][0] == "malformed" and "no column" in found["dwell"][0][1]


def test_no_insights_passes_with_a_note(tiny_run):
    result = audit(tiny_run, points=(1, 2, 3, 4, 5), sample=2000)
    assert result.passed and result.tables == {}
    assert any("no released tables" in note for note in result.notes)
    assert "no released tables" in result.format_table()
    shares = [result.unicity[p] for p in (1, 2, 3, 4, 5)]
    assert all(0.0 <= s <= 1.0 for s in shares)
    assert shares == sorted(shares)  # nested draws: more points never single out fewer people here
    active = pc.count_distinct(tiny_run.table("events")[schema.SUBSCRIBER_ID]).as_py()
    assert result.unicity_sample[1] == active and all(0 < n <= active for n in result.unicity_sample.values())


def test_unicity_is_seeded(tiny_run):
    first = audit(tiny_run, points=(2, 3), sample=20, seed=7)
    again = audit(tiny_run, points=(3, 2), sample=20, seed=7)
    assert first.unicity == again.unicity and first.unicity_sample == {2: 20, 3: 20}


def test_unicity_counts_in_duckdb_within_the_memory_limit(week_run, tmp_path, monkeypatch):
    import tempfile

    from synthmob.insights import measures

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # DuckDB's private spill folder goes here
    seen = []
    opened = measures.session

    @contextmanager
    def spy(**options):
        with opened(**options) as con:
            settings = "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
            limit, spill = con.execute(settings).fetchall()[0]
            seen.append((limit, Path(spill).parent == tmp_path and Path(spill).is_dir()))
            yield con

    monkeypatch.setattr(measures, "session", spy)
    roomy = audit(week_run, points=(1, 3), sample=100, memory_limit="2GB")
    tight = audit(week_run, points=(1, 3), sample=100, memory_limit="8MB")
    assert [(limit.split()[-1], private) for limit, private in seen] == [("GiB", True), ("MiB", True)]
    assert tight.unicity == roomy.unicity and tight.unicity_sample == roomy.unicity_sample == {1: 100, 3: 100}
    assert list(tmp_path.iterdir()) == []  # the spill folder is gone with the connection


def test_write_json(released_run):
    result = audit(released_run, points=(1,), sample=10)
    path = result.write_json(released_run)
    assert path == released_run.path / "audit.json"
    data = json.loads(path.read_text())
    assert data["passed"] is True and data["unicity"][0]["points"] == 1 and "de Montjoye" in data["unicity_source"]
    assert [p.name for p in released_run.path.glob(".audit.*")] == []


# --- unicity on a hand-made set of records ---------------------------------------------------------------
def _events_run(tmp_path, points: dict[int, list[tuple[int, str]]]):
    """A folder with a manifest and events only: ``{subscriber: [(cell, "HH:MM"), ...]}`` on one day."""
    day = datetime(2026, 3, 23, tzinfo=UTC)
    rows = [(sub, day + timedelta(hours=int(t[:2]), minutes=int(t[3:])), cell)
            for sub, items in points.items() for cell, t in items]
    columns = {schema.SUBSCRIBER_ID: [r[0] for r in rows], "timestamp": [r[1] for r in rows],
               schema.CELL_ID: [r[2] for r in rows], "event_type": ["data"] * len(rows)}
    table = pa.table({f.name: pa.array(columns.get(f.name, [None] * len(rows)), f.type) for f in schema.EVENTS})
    folder = tmp_path / "handmade"
    (folder / "events" / "date=2026-03-23").mkdir(parents=True)
    pq.write_table(table, folder / "events" / "date=2026-03-23" / "part-00000.parquet")
    (folder / "manifest.json").write_text("{}")
    return folder


def test_unicity_known_answer(tmp_path):
    # Points are (cell, hour): 1 and 2 share theirs; 3 has two records in one point; 4 has three points.
    # Cell 1 at 11h (3's) shares its cell with a point of 1 and 2 and its hour with another: not theirs.
    folder = _events_run(tmp_path, {
        1: [(1, "10:00"), (2, "11:30")],
        2: [(1, "10:45"), (2, "11:01"), (1, "10:10")],
        3: [(1, "11:05"), (1, "11:55"), (3, "10:20")],
        4: [(2, "10:59"), (3, "11:00"), (1, "12:00")],
    })
    result = audit(folder, points=(1, 2, 3, 4))
    assert result.unicity == {1: 0.5, 2: 0.5, 3: 1.0, 4: None}
    assert result.unicity_sample == {1: 4, 2: 4, 3: 1, 4: 0}
    small = audit(folder, points=(1,), sample=2)
    assert small.unicity_sample == {1: 2} and small.unicity[1] in (0.0, 0.5, 1.0)
    assert "—" in result.format_table().splitlines()[-1]


def test_no_events(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    result = audit(tmp_path)
    assert result.passed and set(result.unicity.values()) == {None}
    assert any("no events" in note for note in result.notes)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"points": (0, 1)}, "points: got (0, 1)"),
    ({"points": ()}, "points: got ()"),
    ({"points": "12"}, "points: got '12'"),
    ({"sample": 0}, "sample: got 0"),
    ({"seed": -1}, "seed: got -1"),
    ({"memory_limit": "lots"}, "memory_limit: got 'lots'"),
])
def test_bad_arguments(tiny_run, kwargs, message):
    with pytest.raises(SynthmobError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        audit(tiny_run, **kwargs)


def test_not_a_run(tmp_path):
    with pytest.raises(SynthmobError, match="not a synthmob run"):
        audit(tmp_path)


def test_counts_are_unchanged_by_the_audit(released_run):
    before = pq.read_table(released_run.path / "insights" / "footfall.parquet")
    audit(released_run, points=(1,), sample=5)
    assert pq.read_table(released_run.path / "insights" / "footfall.parquet").equals(before)
    assert pc.min(before["count"]).as_py() > 3


def test_the_audit_names_its_run_by_folder_only(released_run):
    report = audit(released_run, sample=20)
    assert report.run == released_run.path.name
    assert str(released_run.path.parent) not in json.dumps(report.to_json())
