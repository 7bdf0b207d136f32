"""Insights: hand-computed stops, trips, dwell and homes; exact counts checked independently; release rules."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import defaultdict
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import synthmob
from synthmob import disclosure, schema
from synthmob.errors import OutputError, SynthmobError
from synthmob.insights import INDEX, INSIGHTS, insights, measures
from synthmob.insights.measures import ACTIVITY_EVENTS, CAPS, KEYS, MEASURES, connect
from synthmob.insights.zones import assign_zones, parse_zones
from synthmob.scenario import World as WorldConfig
from synthmob.world import to_latlon

BERLIN = ZoneInfo("Europe/Berlin")
MIN = 60_000


def ms(*args: int, tz=BERLIN) -> int:
    """Epoch ms of a local wall-clock time (year, month, day, hour, minute)."""
    return int(dt.datetime(*args, tzinfo=tz).timestamp() * 1000)


def events_table(rows) -> pa.Table:
    """Events from (subscriber, epoch ms, cell, event_type) tuples."""
    sub, t, cell, kind = zip(*rows) if rows else ((), (), (), ())
    return pa.table(
        {
            "subscriber_id": pa.array(sub, pa.int64()),
            "timestamp": pa.array(t, pa.int64()).cast(schema.TIMESTAMP),
            "cell_id": pa.array(cell, pa.int32()),
            "event_type": pa.array(kind, pa.string()),
        }
    )


def subscribers_table(n: int, home_cell=None) -> pa.Table:
    return pa.table(
        {
            "subscriber_id": pa.array(range(n), pa.int64()),
            "age_band": ["25-34", "65+", "25-34", "35-44", "15-24"][:n] + ["25-34"] * max(0, n - 5),
            "gender": (["female", "male"] * n)[:n],
            "home_cell": pa.array(home_cell if home_cell is not None else [0] * n, pa.int32()),
        }
    )


def identity_zones(n_cells: int) -> pa.Table:
    ids = pa.array(range(n_cells), pa.int32())
    return pa.table({"cell_id": ids, "zone_id": ids})


def open_inputs(events=None, *, n_subscribers=2, timezone="Europe/Berlin", **kw):
    return connect(
        cell_zone=identity_zones(10), subscribers=subscribers_table(n_subscribers), events=events, timezone=timezone,
        **kw,
    )


def totals(table: pa.Table, keys) -> pd.DataFrame:
    """Per group: the released total and the sum of its cells."""
    df = table.to_pandas()
    is_total = (df["age_band"] == "all") & (df["gender"] == "all")
    total = df[is_total].set_index(list(keys))["count"]
    cells = df[~is_total].groupby(list(keys))["count"].sum()
    return pd.DataFrame({"total": total, "cells": cells})


def epoch_ms(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)


def zone_polygons(zones: pa.Table) -> dict:
    geometries = shapely.from_wkt(zones["geometry_wkt"].to_numpy(zero_copy_only=False))
    return dict(zip(zones["zone_id"].to_pylist(), geometries))


def copy_run(run, tmp_path, name="run"):
    return synthmob.Run(shutil.copytree(run.path, tmp_path / name))


# --- stops, trips, dwell: hand-computed ---------------------------------------------------------------------
T0 = ms(2026, 3, 23, 8, 0)  # Monday 08:00 local (CET)


def test_stops_merge_and_drop_short_visits():
    rows = [
        (0, T0, 1, "voice"),
        (0, T0 + 10 * MIN, 1, "data"),
        (0, T0 + 25 * MIN, 1, "sms"),  # visit at 1: 25 min -> stop
        (0, T0 + 30 * MIN, 2, "data"),
        (0, T0 + 35 * MIN, 2, "data"),  # visit at 2: 5 min -> dropped (ping-pong)
        (0, T0 + 40 * MIN, 1, "data"),
        (0, T0 + 70 * MIN, 1, "data"),  # visit at 1: 30 min -> stop, merges with the first: 08:00-09:10
        (0, T0 + 75 * MIN, 3, "location_update"),  # not an activity record: ignored by stops
        (0, T0 + 80 * MIN, 4, "voice"),
        (0, T0 + 110 * MIN, 4, "voice"),  # visit at 4: 30 min -> stop
        (0, T0 + 120 * MIN, 5, "voice"),  # one record: a visit of 0 min, no stop
        (1, T0, 6, "data"),
        (1, T0 + 19 * MIN, 6, "data"),  # 19 min: no stop
    ]
    with open_inputs(events_table(rows)) as inputs:
        stops = measures.stops(inputs).to_pylist()
        trips = measures.inferred_trips(inputs).to_pylist()
        dwell = measures.dwell(inputs)
    assert [(s["subscriber_id"], s["zone_id"], epoch_ms(s["start"]), epoch_ms(s["end"])) for s in stops] == [
        (0, 1, T0, T0 + 70 * MIN),
        (0, 4, T0 + 80 * MIN, T0 + 110 * MIN),
    ]
    assert [(t["origin_zone"], t["destination_zone"], epoch_ms(t["depart"])) for t in trips] == [(1, 4, T0 + 70 * MIN)]
    got = {(r["zone_id"], r["dwell_band"], r["age_band"]): r["count"] for r in dwell.to_pylist()}
    assert got == {(1, "1-2h", "all"): 1, (1, "1-2h", "25-34"): 1, (4, "30m-1h", "all"): 1, (4, "30m-1h", "25-34"): 1}


def test_stop_threshold_is_configurable_and_ties_are_deterministic():
    rows = [(0, T0, 1, "data"), (0, T0 + 10 * MIN, 1, "data")]
    rows += [(0, T0 + 10 * MIN, 2, "data"), (0, T0 + 30 * MIN, 2, "data")]
    with open_inputs(events_table(rows), min_stop_s=600) as inputs:
        trips = measures.inferred_trips(inputs)
    # at 08:10 both zones have a record; (time, zone) order puts zone 1 first: 1 [08:00-08:10], 2 [08:10-08:30]
    assert trips["origin_zone"].to_pylist() == [1] and trips["destination_zone"].to_pylist() == [2]


def test_dwell_bands():
    starts = [0, 29, 30, 59, 60, 119, 120, 239, 240, 479, 480, 1000]
    rows = []
    for i, minutes in enumerate(starts):  # one subscriber per stop, each a stay of `minutes` (truth)
        rows.append((i, minutes))
    stays = pa.table(
        {
            "subscriber_id": pa.array([i for i, _ in rows], pa.int64()),
            "cell_id": pa.array([1] * len(rows), pa.int32()),
            "start": pa.array([T0] * len(rows), pa.int64()).cast(schema.TIMESTAMP),
            "end": pa.array([T0 + m * MIN for _, m in rows], pa.int64()).cast(schema.TIMESTAMP),
        }
    )
    subscribers = subscribers_table(len(rows))
    with connect(cell_zone=identity_zones(3), subscribers=subscribers, stays=stays, timezone="UTC") as inputs:
        table = measures.dwell(inputs, source="truth")
    got = {r["dwell_band"]: r["count"] for r in table.to_pylist() if r["age_band"] == "all"}
    assert got == {"<30m": 2, "30m-1h": 2, "1-2h": 2, "2-4h": 2, "4-8h": 2, ">=8h": 2}


def reference_trips(rows, min_stop_ms=measures.MIN_STOP_S * 1000):
    """The stop and trip rule, written out plainly: (subscriber, origin, destination, depart ms)."""
    by_subscriber = defaultdict(list)
    for sub, t, zone, kind in rows:
        if kind in ACTIVITY_EVENTS:
            by_subscriber[sub].append((t, zone))
    out = []
    for sub, records in sorted(by_subscriber.items()):
        visits = []
        for t, zone in sorted(records):
            if visits and visits[-1][0] == zone:
                visits[-1][2] = t
            else:
                visits.append([zone, t, t])
        stops = []
        for zone, first, last in visits:
            if last - first >= min_stop_ms:
                if stops and stops[-1][0] == zone:
                    stops[-1][2] = last
                else:
                    stops.append([zone, first, last])
        out += [(sub, a[0], b[0], a[2]) for a, b in zip(stops, stops[1:])]
    return out


def test_od_total_equals_inferred_trips_and_a_plain_reference():
    rng = np.random.default_rng(3)
    kinds = list(schema.EVENT_TYPES)
    rows = []
    for sub in range(5):
        t = T0
        for _ in range(150):
            t += int(rng.integers(1, 15)) * MIN
            zone = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
            rows.append((sub, t, zone, kinds[int(rng.integers(0, len(kinds)))]))
    rows.sort(key=lambda r: -r[1])  # any input order
    with open_inputs(events_table(rows), n_subscribers=5) as inputs:
        trips = measures.inferred_trips(inputs)
        od = measures.od(inputs)
    got = [tuple(r.values())[:3] + (epoch_ms(r["depart"]),) for r in trips.to_pylist()]
    expected = reference_trips(rows)
    assert got == expected and len(expected) > 10
    check = totals(od, KEYS["od"])
    assert (check["total"] == check["cells"]).all()
    assert check["total"].sum() == trips.num_rows


def test_od_days_and_bands_are_local_across_the_change_to_summer_time():
    utc = dt.timezone.utc
    departs = [ms(2026, 3, 28, 23, 30, tz=utc), ms(2026, 3, 29, 0, 30, tz=utc)]
    departs += [ms(2026, 3, 29, 5, 0, tz=utc), ms(2026, 3, 29, 22, 30, tz=utc)]
    n = len(departs)
    trips = pa.table(
        {
            "subscriber_id": pa.array(range(n), pa.int64()),
            "from_cell": pa.array([1] * n, pa.int32()),
            "to_cell": pa.array([2] * n, pa.int32()),
            "depart": pa.array(departs, pa.int64()).cast(schema.TIMESTAMP),
            "arrive": pa.array([d + 10 * MIN for d in departs], pa.int64()).cast(schema.TIMESTAMP),
            "path": pa.array([[]] * n, pa.list_(schema.PATH_STEP)),
        }
    )
    with connect(cell_zone=identity_zones(3), subscribers=subscribers_table(n), trips=trips,
                 timezone="Europe/Berlin") as inputs:
        table = measures.od(inputs, source="truth")
    got = {(str(r["day"]), r["time_band"]): r["count"] for r in table.to_pylist() if r["age_band"] == "all"}
    # 00:30 CET, 01:30 CET, 07:00 CEST (summer time from 03:00), 00:30 CEST the next day
    assert got == {("2026-03-29", "00-06"): 2, ("2026-03-29", "06-10"): 1, ("2026-03-30", "00-06"): 1}


# --- homes and catchment ---------------------------------------------------------------------------------------
def test_home_is_the_most_frequent_weekday_night_zone():
    rows = [
        # subscriber 0: Monday 23:00 (a weekday night) twice at 1, Friday 23:00 and Saturday 03:00 (weekend) at 2
        (0, ms(2026, 3, 23, 23, 0), 1, "data"), (0, ms(2026, 3, 24, 6, 59), 1, "periodic_update"),
        (0, ms(2026, 3, 27, 23, 0), 2, "data"), (0, ms(2026, 3, 28, 3, 0), 2, "data"),
        (0, ms(2026, 3, 28, 4, 0), 2, "data"),
        (0, ms(2026, 3, 24, 12, 0), 2, "data"),  # daytime: ignored
        # subscriber 1: a tie between 3 and 2 on Sunday night -> the smaller zone; 07:00 is not night
        (1, ms(2026, 3, 22, 22, 0), 3, "data"), (1, ms(2026, 3, 23, 1, 0), 2, "data"),
        (1, ms(2026, 3, 23, 7, 0), 3, "data"),
        # subscriber 2: only weekend nights -> no home
        (2, ms(2026, 3, 28, 23, 0), 4, "data"),
    ]
    with open_inputs(events_table(rows), n_subscribers=3) as inputs:
        homes = measures.homes(inputs).to_pylist()
    assert homes == [{"subscriber_id": 0, "home_zone": 1}, {"subscriber_id": 1, "home_zone": 2}]


def test_home_matches_the_metrics_rule_on_cells(tiny_run):
    events = tiny_run.table("events")
    ids, home, _ = synthmob.metrics.home_and_work(
        events["subscriber_id"].to_numpy(), synthmob.metrics.to_ms(events["timestamp"]), events["cell_id"].to_numpy(),
        timezone=tiny_run.manifest["scenario"]["timezone"],
    )
    cell_zone, _ = assign_zones(tiny_run.table("cells"), "cell")
    with measures.connect_run(tiny_run, cell_zone) as inputs:
        got = measures.homes(inputs).to_pandas().set_index("subscriber_id")["home_zone"]
    expected = pd.Series(home, index=ids)
    expected = expected[expected >= 0]
    assert got.to_dict() == expected.to_dict()


def test_catchment_counts_distinct_visitors_by_home():
    night = ms(2026, 3, 23, 23, 0)
    rows = [(s, night, home, "data") for s, home in ((0, 1), (1, 1), (2, 2))]
    stay = lambda s, zone, start: [(s, start, zone, "data"), (s, start + 30 * MIN, zone, "data")]  # noqa: E731
    for day in (24, 25):  # two stops on two days: one visitor
        rows += stay(0, 5, ms(2026, 3, day, 10, 0)) + stay(0, 1, ms(2026, 3, day, 12, 0))
    rows += stay(1, 5, ms(2026, 3, 24, 10, 0)) + stay(2, 5, ms(2026, 3, 24, 10, 0)) + stay(3, 5, ms(2026, 3, 24, 10, 0))
    with open_inputs(events_table(rows), n_subscribers=4) as inputs:
        table = measures.catchment(inputs)
    got = {(r["zone_id"], r["home_zone"]): r["count"] for r in table.to_pylist() if r["age_band"] == "all"}
    # subscriber 3 has no home: left out; subscriber 0 is a resident visiting its own zone 1
    assert got == {(5, 1): 2, (5, 2): 1, (1, 1): 1}


# --- caps for differential privacy ----------------------------------------------------------------------------
def test_footfall_cap_keeps_the_earliest_zone_hours_per_day():
    rows = [(0, ms(2026, 3, 23, h, 0), 1 + h % 2, "data") for h in (8, 9, 10)] + [(0, ms(2026, 3, 24, 8, 0), 1, "data")]
    with open_inputs(events_table(rows)) as inputs:
        capped = measures.footfall(inputs, cap=2)
        full = measures.footfall(inputs)

    def hours(table):
        rows = zip(table["hour"].to_pylist(), table["age_band"].to_pylist())
        return sorted(h.astimezone(BERLIN).strftime("%d %H") for h, age in rows if age == "all")

    assert hours(full) == ["23 08", "23 09", "23 10", "24 08"]
    assert hours(capped) == ["23 08", "23 09", "24 08"]
    assert measures.sensitivity("footfall", CAPS["footfall"]) == 2 * CAPS["footfall"]


# --- on generated runs ---------------------------------------------------------------------------------------
def test_footfall_totals_equal_distinct_subscribers_on_tiny(tiny_run, tmp_path):
    folder = insights(tiny_run, zones="area", k=0, out=tmp_path / "ins")
    table = pq.read_table(folder / "footfall.parquet")
    assert table.column_names == ["zone_id", "hour", "age_band", "gender", "count"]
    assert table.schema.field("hour").type == schema.TIMESTAMP and table["count"].null_count == 0
    check = totals(table, ["zone_id", "hour"])
    assert (check["total"] == check["cells"]).all()
    # independently: distinct subscribers per location area and UTC hour, with pandas
    events = tiny_run.pandas("events").merge(tiny_run.pandas("cells")[["cell_id", "area_code"]], on="cell_id")
    events["hour"] = events["timestamp"].dt.floor("h")
    expected = events.groupby(["area_code", "hour"])["subscriber_id"].nunique()
    got = check["total"]
    got.index = got.index.set_names(["area_code", "hour"])
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()


def test_od_total_equals_inferred_trips_on_tiny(tiny_run):
    cell_zone, _ = assign_zones(tiny_run.table("cells"), "cell")
    with measures.connect_run(tiny_run, cell_zone) as inputs:
        trips = measures.inferred_trips(inputs)
        od = measures.od(inputs)
    events = tiny_run.table("events")
    rows = list(zip(*(events[c].to_pylist() for c in ("subscriber_id", "timestamp", "cell_id", "event_type"))))
    rows = [(s, epoch_ms(t), c, e) for s, t, c, e in rows]
    assert trips.num_rows == len(reference_trips(rows)) > 0
    assert totals(od, KEYS["od"])["total"].sum() == trips.num_rows


def test_truth_source(tiny_run, tmp_path):
    folder = insights(tiny_run, zones="area", k=0, source="truth", out=tmp_path / "ins")
    sidecar = json.loads((folder / "od.json").read_text())
    assert sidecar["source"] == "truth" and sidecar["keys"] == list(KEYS["od"])
    od = pq.read_table(folder / "od.parquet")
    trips = tiny_run.pandas("trips")
    area = tiny_run.pandas("cells").set_index("cell_id")["area_code"]
    moving = (trips["from_cell"].map(area) != trips["to_cell"].map(area)).sum()
    assert totals(od, KEYS["od"])["total"].sum() == moving
    catchment = pq.read_table(folder / "catchment.parquet").to_pandas()
    subscribers = tiny_run.pandas("subscribers")
    homes = set(subscribers["home_cell"].map(area))
    assert set(catchment["home_zone"]) <= homes
    footfall = totals(pq.read_table(folder / "footfall.parquet"), ["zone_id", "hour"])
    assert (footfall["total"] == footfall["cells"]).all()
    # every hour of the day has everyone somewhere: the zone totals of an hour add up to at least the population
    per_hour = footfall["total"].groupby(level="hour").sum()
    assert len(per_hour) == 24 and (per_hour >= len(subscribers)).all()


def test_zone_kinds(tiny_run):
    cells = tiny_run.table("cells")
    world = WorldConfig.model_validate(tiny_run.manifest["scenario"]["world"])
    cell_zone, zones = assign_zones(cells, "cell", world=world)
    assert cell_zone["zone_id"].to_pylist() == cells["cell_id"].to_pylist()
    assert zones["geometry_wkt"].to_pylist() == cells.sort_by("cell_id")["coverage_wkt"].to_pylist()

    cell_zone, zones = assign_zones(cells, "area", world=world)
    assert sorted(zones["zone_id"].to_pylist()) == sorted(set(cells["area_code"].to_pylist()))
    polygons = zone_polygons(zones)
    for area, lon, lat in zip(*(cells[c].to_pylist() for c in ("area_code", "centroid_lon", "centroid_lat"))):
        assert polygons[area].buffer(1e-6).contains(shapely.Point(lon, lat))

    cell_zone, zones = assign_zones(cells, "grid:1000", world=world)
    assert zones.column_names == ["zone_id", "centroid_lat", "centroid_lon", "geometry_wkt"]
    polygons = zone_polygons(zones)
    lat, lon = to_latlon(world, cells["x_m"].to_numpy(), cells["y_m"].to_numpy())
    xy = (cells["x_m"].to_pylist(), cells["y_m"].to_pylist())
    for zone, x, y, la, lo in zip(cell_zone["zone_id"].to_pylist(), *xy, lat, lon):
        assert zone == f"g{int(x // 1000)}_{int(y // 1000)}"
        assert polygons[zone].buffer(1e-9).contains(shapely.Point(lo, la))
    assert len(set(cell_zone["zone_id"].to_pylist())) == zones.num_rows <= 16  # a 4 km x 4 km region


def test_grid_insights_and_manifest(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    lines = []
    folder = insights(run, zones="grid:1000", k=0, progress=lines.append)
    assert folder == run.path / "insights" and lines == list(INSIGHTS)
    index = json.loads((folder / INDEX).read_text())
    assert index["insights"] == {name: f"{name}.json" for name in INSIGHTS}
    assert index["rows"] == {name: pq.read_metadata(folder / f"{name}.parquet").num_rows for name in INSIGHTS}
    assert index["zones"]["spec"] == "grid:1000" and index["k"] == 0 and index["dp_budget"] is None
    zone_ids = set(pq.read_table(folder / "zones.parquet")["zone_id"].to_pylist())
    assert set(pq.read_table(folder / "footfall.parquet")["zone_id"].to_pylist()) <= zone_ids
    assert run.manifest["insights"] == {
        "folder": str(folder), "source": "records", "zones": "grid:1000", "k": 0,
        "epsilon": dict.fromkeys(INSIGHTS), "epsilon_total": None,
    }
    with pytest.raises(OutputError, match="--overwrite"):
        insights(run, zones="grid:1000")
    insights(run, zones="cell", overwrite=True)
    assert json.loads((run.path / "manifest.json").read_text())["insights"]["zones"] == "cell"
    assert not [p for p in run.path.iterdir() if p.name.startswith(".")]


def test_epsilon_records_caps_sensitivity_and_budget(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    folder = insights(run, epsilon=0.5)
    for name in INSIGHTS:
        sidecar = json.loads((folder / f"{name}.json").read_text())
        assert sidecar["epsilon"] == 0.5 and sidecar["contribution_cap"]["max"] == CAPS[name]
        assert sidecar["sensitivity"] == measures.sensitivity(name, CAPS[name]) == sidecar["noise"]["sensitivity"]
        assert disclosure.findings(pq.read_table(folder / f"{name}.parquet"), keys=KEYS[name], k=15) == []
    assert json.loads((folder / INDEX).read_text())["dp_budget"]["epsilon_total"] == 2.0
    assert run.manifest["insights"]["epsilon_total"] == 2.0


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"zones": "hex:7"}, ["zones", "'hex:7'", "grid:<metres>"]),
        ({"zones": "grid:0"}, ["zones", "'grid:0'", "1 metre"]),
        ({"zones": "grid:-5"}, ["zones", "'grid:-5'", "grid:<metres>"]),
        ({"zones": 5}, ["zones", "5", "cell"]),
        ({"k": -1}, ["k", "-1", ">= 1", "0 for no suppression"]),
        ({"k": 1.5}, ["k", "1.5", "whole number"]),
        ({"k": True}, ["k", "True", "whole number"]),
        ({"source": "gps"}, ["source", "'gps'", "records, truth"]),
        ({"epsilon": 0}, ["epsilon", "0", "> 0"]),
        ({"epsilon": -1.0}, ["epsilon", "-1.0", "> 0"]),
        ({"epsilon": float("nan")}, ["epsilon", "nan", "> 0"]),
        ({"memory_limit": "lots"}, ["memory_limit", "'lots'", "2GB"]),
        ({"progress": 3}, ["progress", "3", "function"]),
    ],
)
def test_bad_arguments(tiny_run, kwargs, words):
    with pytest.raises(SynthmobError) as error:
        insights(tiny_run, **kwargs)
    message = str(error.value)
    assert "\n" not in message and all(word in message for word in words), message
    assert not (tiny_run.path / "insights").exists()


def test_not_a_run_folder(tmp_path):
    with pytest.raises(SynthmobError, match="not a synthmob run"):
        insights(tmp_path)


def test_parse_zones_forms():
    assert parse_zones("CELL").kind == "cell" and str(parse_zones("grid:250.5")) == "grid:250.5"


def test_failure_mid_write_leaves_nothing(tiny_run, tmp_path, monkeypatch):
    run = copy_run(tiny_run, tmp_path)
    manifest = (run.path / "manifest.json").read_text()

    def broken(inputs, **kw):
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(MEASURES, "dwell", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        insights(run, k=0)
    assert not (run.path / "insights").exists()
    assert not [p for p in run.path.iterdir() if p.name.startswith(".")]
    assert (run.path / "manifest.json").read_text() == manifest


def test_week_default_k_releases_nothing_small(week_run, tmp_path):
    run = copy_run(week_run, tmp_path)
    folder = insights(run, zones="area")  # location areas: big enough zones for counts above 15
    for name in INSIGHTS:
        table = pq.read_table(folder / f"{name}.parquet")
        assert disclosure.findings(table, keys=KEYS[name], k=15) == []
        released = table["count"].drop_null()
        assert len(released) == 0 or pc.min(released).as_py() > 15
        if name in ("footfall", "catchment"):
            assert len(released) > 0, f"a week of 300 subscribers releases some {name}"


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), subscribers=st.integers(60, 200), k=st.integers(1, 20),
       zones=st.sampled_from(["cell", "area", "grid:700"]))
def test_random_small_runs_release_nothing_small_or_recoverable(tmp_path_factory, seed, subscribers, k, zones):
    run = synthmob.generate("tiny", out=tmp_path_factory.mktemp("prop") / "run", seed=seed, subscribers=subscribers)
    folder = insights(run, zones=zones, k=k)
    for name in INSIGHTS:
        table = pq.read_table(folder / f"{name}.parquet")
        assert disclosure.findings(table, keys=KEYS[name], k=k) == []
        frame = table.to_pandas()
        assert not (frame["count"].dropna() <= k).any()
        # linear differencing within a group: total minus the released cells never pins down a suppressed cell
        total = (frame.age_band == disclosure.TOTAL) & (frame.gender == disclosure.TOTAL)
        for _, group in frame.groupby(list(KEYS[name]), dropna=False, observed=True):
            head, cells = group[total.loc[group.index]], group[~total.loc[group.index]]
            if len(head) and head["count"].notna().all():
                hidden = cells["count"].isna().sum()
                residual = head["count"].iloc[0] - cells["count"].sum()
                assert hidden == 0 or (hidden >= 2 and residual > k)


def test_a_release_names_its_run_by_folder_only(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "home" / "someone")
    folder = insights(run, k=0)
    for path in folder.glob("*.json"):
        text = path.read_text(encoding="utf-8")
        assert "someone" not in text and str(tmp_path) not in text
    assert json.loads((folder / INDEX).read_text())["run"] == run.path.name
