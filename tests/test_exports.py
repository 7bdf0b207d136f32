"""Exports: each format writes what its tool reads, and the real tools load it."""

from __future__ import annotations

import csv
import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import synthmob
from synthmob import exports as export_module
from synthmob.errors import OutputError, SynthmobError
from synthmob.exports import FORMATS, export

# FlowDB's columns in FlowDB's order, copied from Flowminder/FlowKit flowdb/sql/02_schema_events.sql and
# 01_schema_infrastructure.sql (without the generated BIGSERIAL keys).
FLOWDB = {
    "calls": "id outgoing datetime duration network msisdn msisdn_counterpart location_id imsi imei tac "
    "operator_code country_code",
    "sms": "id outgoing datetime network msisdn msisdn_counterpart location_id imsi imei tac "
    "operator_code country_code",
    "mds": "id datetime duration volume_total volume_upload volume_download msisdn location_id imsi imei tac "
    "operator_code country_code",
    "cells": "id version site_id name type msc bsc_rnc antenna_type status lac height azimuth transmitter max_range "
    "min_range electrical_tilt mechanical_downtilt date_of_first_service date_of_last_service geom_point geom_polygon",
    "sites": "id version name type status structure_type is_cow date_of_first_service date_of_last_service "
    "geom_point geom_polygon",
}
# FlowKit's Arrow types for events: PARQUET_COL_DTYPE_MAPPING in
# flowdb/testdata/test_data/py/zz_convert_events_to_parquet.py.
FLOWKIT_PARQUET = {
    "datetime": pa.timestamp("ns", tz="UTC"), "duration": pa.int64(), "outgoing": pa.bool_(),
    "volume_total": pa.int64(), "volume_upload": pa.int64(), "volume_download": pa.int64(), "msisdn": pa.string(),
    "location_id": pa.string(), "imsi": pa.string(), "imei": pa.string(), "tac": pa.int64(), "network": pa.string(),
    "operator_code": pa.int64(), "country_code": pa.int64(),
}


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """Every format of the tiny run, exported once."""
    root = tmp_path_factory.mktemp("exports")
    return {name: export(tiny_run, name, out=root / name) for name in FORMATS}


def header(path):
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f))


def csv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return sum(1 for _ in f) - 1  # no field of these exports holds a line break


def events_of(run, kind):
    events = run.table("events")
    return events.filter(pc.equal(events["event_type"], kind))


def test_every_format_is_documented():
    for name in FORMATS:
        assert f"``{name}``" in export_module.__doc__


def test_flowkit_tables_have_flowdbs_columns_and_one_row_per_leg(tiny_run, exported):
    folder = exported["flowkit"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{t}.{ext}" for t in FLOWDB for ext in ("csv", "parquet")] + ["export.json", "load_flowdb.sql"]
    )
    tables = {name: pq.read_table(folder / f"{name}.parquet") for name in FLOWDB}
    for name, columns in FLOWDB.items():
        assert tables[name].column_names == columns.split(), name
        assert header(folder / f"{name}.csv") == columns.split(), name
        assert csv_rows(folder / f"{name}.csv") == tables[name].num_rows, name
        for field in tables[name].schema:
            assert field.type == FLOWKIT_PARQUET.get(field.name, field.type), (name, field)

    calls, sms, mds = tables["calls"], tables["sms"], tables["mds"]
    assert calls.num_rows == events_of(tiny_run, "voice").num_rows > 0
    assert sms.num_rows == events_of(tiny_run, "sms").num_rows > 0
    assert mds.num_rows == events_of(tiny_run, "data").num_rows > 0
    assert tables["cells"].num_rows == tiny_run.table("cells").num_rows
    assert tables["sites"].num_rows == len(set(tiny_run.table("cells")["site_id"].to_pylist()))

    for legs in (calls, sms):  # both legs of a call share its id, one outgoing, the parties crossed
        frame = legs.to_pandas().sort_values(["id", "outgoing"])
        assert (frame.groupby("id").size() == 2).all()
        out, into = frame[frame.outgoing].set_index("id"), frame[~frame.outgoing].set_index("id")
        assert (out.msisdn == into.msisdn_counterpart.loc[out.index]).all()
        assert (out.datetime == into.datetime.loc[out.index]).all()
    subscribers = tiny_run.table("subscribers")
    assert set(calls["msisdn"].to_pylist()) <= set(subscribers["msisdn"].to_pylist())
    assert set(calls["imsi"].to_pylist()) <= set(subscribers["imsi"].to_pylist())
    assert set(mds["location_id"].to_pylist()) <= set(tables["cells"]["id"].to_pylist())
    assert pc.all(pc.equal(mds["volume_total"], pc.add(mds["volume_upload"], mds["volume_download"]))).as_py()
    assert tables["cells"]["geom_point"][0].as_py().startswith("SRID=4326;POINT (")
    assert tables["cells"]["geom_polygon"][0].as_py().startswith("SRID=4326;MULTIPOLYGON (((")


def test_flowkit_loader_copies_every_table_into_daily_partitions(exported):
    script = (exported["flowkit"] / "load_flowdb.sql").read_text(encoding="utf-8")
    calls = pq.read_table(exported["flowkit"] / "calls.parquet")
    for name, columns in FLOWDB.items():
        schema_name = "events" if name in ("calls", "sms", "mds") else "infrastructure"
        assert f"\\copy {schema_name}.{name} ({', '.join(columns.split())}) FROM '{name}.csv'" in script
    for day in set(calls["datetime"].cast(pa.date32()).to_pylist()):
        assert f"events.calls_{day:%Y%m%d} PARTITION OF events.calls" in script


def test_skmob_matches_the_trajdataframe_contract(tiny_run, exported):
    frame = pd.read_parquet(exported["skmob"] / "trajectories.parquet")
    assert list(frame.columns) == ["uid", "datetime", "lat", "lng"]
    assert frame.dtypes.to_dict() == {
        "uid": np.dtype("int64"), "datetime": np.dtype("datetime64[ns]"),
        "lat": np.dtype("float64"), "lng": np.dtype("float64"),
    }
    events = tiny_run.table("events")
    assert len(frame) == events.num_rows
    first = events.slice(0, 1).to_pylist()[0]
    assert frame.datetime.iloc[0] == pd.Timestamp(first["timestamp"]).tz_convert("UTC").tz_localize(None)
    cell = tiny_run.table("cells").to_pandas().set_index("cell_id").loc[first["cell_id"]]
    assert (frame.lat.iloc[0], frame.lng.iloc[0]) == (cell.lat, cell.lon)
    assert frame.equals(frame.sort_values(["uid", "datetime"], kind="stable"))

    path = exported["skmob"] / "trajectories.csv"
    assert header(path) == ["uid", "datetime", "lat", "lng"]
    text = pd.read_csv(path, dtype={"datetime": str})
    assert len(text) == len(frame)
    assert not text.datetime.str.contains(r"Z|\+").any()  # naive: wall time in UTC
    assert (pd.to_datetime(text.datetime) == frame.datetime).all()


def test_trackintel_reads_the_export(tiny_run, exported):
    import geopandas as gpd
    import trackintel as ti

    folder = exported["trackintel"]
    stays, trips = tiny_run.table("stays"), tiny_run.table("trips")
    moved = int(pc.sum(pc.greater_equal(pc.list_value_length(trips["path"]), 2)).as_py())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 deprecations inside trackintel
        sp = ti.io.read_staypoints_csv(folder / "staypoints.csv", index_col="id", crs="EPSG:4326")
        tpls = ti.io.read_triplegs_csv(folder / "triplegs.csv", index_col="id", crs="EPSG:4326")
        tr = ti.io.read_trips_csv(folder / "trips.csv", index_col="id")
        sp.as_staypoints.validate(sp)
        tpls.as_triplegs.validate(tpls)
        tr.as_trips.validate(tr)
        geo = {name: gpd.read_parquet(folder / f"{name}.parquet").set_index("id")
               for name in ("staypoints", "triplegs")}
        sp_geo = ti.io.read_staypoints_gpd(geo["staypoints"], geom_col="geom")
        tpls_geo = ti.io.read_triplegs_gpd(geo["triplegs"], geom_col="geom")

    assert len(sp) == len(sp_geo) == stays.num_rows
    assert len(tr) == trips.num_rows
    assert len(tpls) == len(tpls_geo) == moved
    assert str(sp.started_at.dt.tz) == "UTC" and str(tpls.finished_at.dt.tz) == "UTC"
    assert sp_geo.crs.to_epsg() == 4326 or sp_geo.crs.to_string() == "OGC:CRS84"
    assert set(sp.purpose) <= set(synthmob.schema.ACTIVITIES)
    assert (tr.origin_staypoint_id >= 0).all() and (tr.destination_staypoint_id >= 0).all()
    # a trip leaves its origin staypoint when that stay ends, and reaches its destination when the next begins
    assert (sp.finished_at.loc[tr.origin_staypoint_id].to_numpy() == tr.started_at.to_numpy()).all()
    assert (sp.started_at.loc[tr.destination_staypoint_id].to_numpy() == tr.finished_at.to_numpy()).all()
    assert (sp.user_id.loc[tr.origin_staypoint_id].to_numpy() == tr.user_id.to_numpy()).all()
    assert (tpls.geometry.geom_type == "LineString").all() and tpls.geometry.is_valid.all()


def test_movingpandas_builds_one_trajectory_per_trip_that_moved(tiny_run, exported):
    trips = tiny_run.table("trips")
    steps = int(pc.sum(pc.list_value_length(trips["path"])).as_py())
    moved = int(pc.sum(pc.greater_equal(pc.list_value_length(trips["path"]), 2)).as_py())
    frame = pd.read_parquet(exported["movingpandas"] / "points.parquet")
    assert list(frame.columns) == ["trip_id", "subscriber_id", "t", "lon", "lat", "cell_id", "mode"]
    assert len(frame) == steps
    text = pd.read_csv(exported["movingpandas"] / "points.csv", parse_dates=["t"])
    pd.testing.assert_frame_equal(text, frame, check_dtype=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optional-dependency notice; the timezone is dropped with a warning
        import movingpandas as mpd

        collection = mpd.TrajectoryCollection(
            frame, traj_id_col="trip_id", obj_id_col="subscriber_id", t="t", x="lon", y="lat", crs="EPSG:4326"
        )
        assert len(collection) == moved
        first = collection.trajectories[0]
        assert first.obj_id == trips["subscriber_id"][first.id].as_py()
        assert first.get_length() > 0


def test_csv_has_every_table_with_its_rows(tiny_run, exported):
    folder = exported["csv"]
    for name in ("cells", "subscribers", "contacts", "stays", "events"):
        table = tiny_run.table(name)
        assert header(folder / f"{name}.csv") == table.column_names
        assert csv_rows(folder / f"{name}.csv") == table.num_rows
    trips = tiny_run.table("trips")
    assert header(folder / "trips.csv") == ["trip_id"] + [c for c in trips.column_names if c != "path"]
    assert csv_rows(folder / "trips.csv") == trips.num_rows
    path = pd.read_csv(folder / "trip_path.csv")
    assert list(path.columns) == ["trip_id", "step", "cell_id", "entered"]
    assert len(path) == int(pc.sum(pc.list_value_length(trips["path"])).as_py())
    first = trips["path"][0].as_py()
    assert path[path.trip_id == 0].cell_id.tolist() == [step["cell_id"] for step in first]
    stays = pd.read_csv(folder / "stays.csv", parse_dates=["start", "end"])
    assert str(stays.start.dt.tz) == "UTC"


def test_default_folder_is_inside_the_run(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    written = export(str(run), "skmob")
    assert written == run / "exports" / "skmob"
    assert (written / "trajectories.parquet").is_file()
    assert synthmob.Run(run).table("stays").num_rows == tiny_run.table("stays").num_rows


def test_unknown_format_lists_the_valid_ones_and_writes_nothing(tiny_run, tmp_path):
    with pytest.raises(SynthmobError) as info:
        export(tiny_run, "gpx", out=tmp_path / "deep" / "out")
    message = str(info.value)
    assert "\n" not in message and "'gpx'" in message
    for name in FORMATS:
        assert name in message
    assert not (tmp_path / "deep").exists()


def test_overwrite_replaces_an_earlier_export_and_nothing_else(tiny_run, tmp_path):
    out = tmp_path / "out"
    export(tiny_run, "movingpandas", out=out)
    with pytest.raises(OutputError, match="not empty"):
        export(tiny_run, "movingpandas", out=out)
    (out / "stale.txt").write_text("from the earlier export")
    export(tiny_run, "movingpandas", out=out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "points.csv", "points.parquet"]
    record = json.loads((out / "export.json").read_text())
    assert record["format"] == "movingpandas" and record["rows"]["points.parquet"] > 0

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="not empty"):
            export(tiny_run, "movingpandas", out=mine, overwrite=overwrite)
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(SynthmobError, match="not a synthmob run"):
        export(tmp_path, "csv")
    assert list(tmp_path.iterdir()) == []
