"""Write a run in the shapes other mobility tools read.

:func:`export` writes one format into ``out`` (default ``<run>/exports/<format>``), atomically like a run:
into a hidden folder that is renamed into place only when complete (:func:`synthmob.output.staged_folder`),
with an ``export.json`` that records the format, the run, the synthmob version and the rows of every file.
Times are UTC and timezone-aware (CSV: ``2026-03-23 07:01:54.648Z``) unless the format forbids it (skmob).
Ground-truth positions (trackintel, movingpandas) are the centroid of a cell's coverage; the operator's view
(skmob, FlowKit) places a record at the cell's antenna, as a real operator's cell list would.

``flowkit``
    FlowDB's tables, as Parquet and CSV: ``calls``, ``sms``, ``mds`` (events.*), ``cells`` and ``sites``
    (infrastructure.*), with FlowDB's column names in FlowDB's order, plus ``load_flowdb.sql``. One row per
    leg for calls and SMS (``outgoing`` true for the caller's leg, false for the callee's; both legs share
    ``id`` = the call_id), ``location_id`` = the cell's ``id`` (its CGI), ``msisdn``/``imsi``/``imei``/``tac``
    from the subscribers table, ``operator_code``/``country_code`` = MNC/MCC. ``mds`` has one row per data
    session, volumes in bytes (FlowDB's NUMERIC names no unit). Durations are whole seconds. Handovers and
    location updates have no FlowDB table and are left out. Geometries are EWKT (``SRID=4326;POINT (lon
    lat)``), which PostGIS casts into FlowDB's ``geometry(POINT, 4326)``/``geometry(MULTIPOLYGON, 4326)``
    columns on ``COPY``. To load into a FlowDB (the events tables partitioned by day, as FlowETL makes them),
    from inside the export folder::

        psql "$FLOWDB_URI" -v ON_ERROR_STOP=1 -f load_flowdb.sql

    which copies ``sites``/``cells`` with ``\\copy ... (columns) FROM '....csv' WITH (FORMAT csv, HEADER)``,
    creates one partition per UTC day (``events.calls_YYYYMMDD``), copies the events and registers them in
    ``available_tables`` and ``etl.etl_records`` as FlowKit's own test-data loader does. The Parquet files
    have the Arrow types FlowKit uses when it mounts events as Parquet foreign tables.
``skmob``
    ``trajectories.csv``/``.parquet``: a scikit-mobility TrajDataFrame, one row per record of the operator
    (every event), at the serving cell's antenna, sorted by uid and time: ``uid`` int64, ``datetime``
    naive ``datetime64[ns]`` holding UTC wall time, ``lat``/``lng`` float64. Load with
    ``skmob.TrajDataFrame(pd.read_parquet(path))``.
``trackintel``
    ``staypoints``, ``triplegs`` and ``trips`` as trackintel reads them, e.g.
    ``trackintel.io.read_staypoints_csv(path, index_col="id", crs="EPSG:4326")``; staypoints and triplegs also
    as GeoParquet (WKB, lon/lat) for ``read_*_gpd(geopandas.read_parquet(path).set_index("id"), geom_col="geom")``.
    Staypoints are the ground-truth stays (``purpose`` = activity, ``is_activity``, ``cell_id``,
    ``prev_trip_id``/``next_trip_id``); a tripleg is a trip's line through the coverage centroids of the cells
    it crossed (``mode``, ``trip_id``); a trip that never left one cell has no line at cell resolution, so it
    is in ``trips`` but not in ``triplegs``. Trips carry ``origin_staypoint_id``, ``destination_staypoint_id``
    and ``primary_mode``.
``movingpandas``
    ``points.csv``/``.parquet``: one row per cell entered along each trip (``trip_id``, ``subscriber_id``,
    ``t``, ``lon``, ``lat`` of the coverage centroid, ``cell_id``, ``mode``), for
    ``TrajectoryCollection(df, traj_id_col="trip_id", obj_id_col="subscriber_id", t="t", x="lon", y="lat",
    crs="EPSG:4326")``. movingpandas keeps trips with at least two points.
``csv``
    Every table of the run as CSV, in its canonical order. A trip's path (a list) is written as its own
    table, ``trip_path`` (``trip_id``, ``step``, ``cell_id``, ``entered``), which joins ``trips.trip_id``:
    flat rows that every spreadsheet, SQL engine and dataframe reads without parsing JSON.

``trip_id`` is the same everywhere: a trip's position in ``run.table("trips")`` (sorted by subscriber, depart).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import shapely

from synthmob import schema
from synthmob.errors import SynthmobError
from synthmob.output import staged_folder, write_table
from synthmob.run import Run

#: Export formats and what each writes (see the module docstring).
FORMATS = {
    "csv": "every table of the run as CSV (trip paths as a trip_path table)",
    "flowkit": "FlowDB events.calls/sms/mds and infrastructure.cells/sites, Parquet and CSV, with a psql loader",
    "movingpandas": "one point per cell entered along each trip, for movingpandas.TrajectoryCollection",
    "skmob": "a scikit-mobility TrajDataFrame of the operator's records at cell antennas",
    "trackintel": "trackintel staypoints, triplegs and trips, CSV and GeoParquet",
}
#: Written last into every export folder: format, source run, synthmob version and the rows of every table
#: file. ``overwrite`` replaces only a folder that holds one.
MARKER = "export.json"


def export(run: Run | str | Path, format: str, *, out: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write ``run`` in ``format`` (one of :data:`FORMATS`) into ``out``; return the folder written.

    Raises
    ------
    SynthmobError
        ``format`` is unknown or ``run`` is not a run folder.
    OutputError
        ``out`` is a non-empty folder that is not an earlier export (:data:`MARKER`), or is one and
        ``overwrite`` is false.

    Examples
    --------
    >>> import pathlib, tempfile, synthmob
    >>> run = synthmob.generate("tiny", out=pathlib.Path(tempfile.mkdtemp()) / "tiny")
    >>> folder = export(run, "trackintel")
    >>> folder.relative_to(run.path).as_posix()
    'exports/trackintel'
    >>> sorted(path.name for path in folder.glob("*.csv"))
    ['staypoints.csv', 'triplegs.csv', 'trips.csv']
    """
    if not isinstance(format, str) or format not in FORMATS:
        raise SynthmobError(f"export format: got {format!r}; valid formats are {', '.join(sorted(FORMATS))}")
    run = run if isinstance(run, Run) else Run(run)
    target = Path(out if out is not None else run.path / "exports" / format).absolute()
    with staged_folder(target, overwrite=overwrite, marker=MARKER) as folder:
        files = _Files(folder)
        _WRITERS[format](run, files)
        record = {"format": format, "run": str(run.path.absolute()), "synthmob": _version(), "rows": files.rows}
        (folder / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target


class _Files:
    """The staging folder of an export, and the rows of every table written into it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rows: dict[str, int] = {}

    def csv(self, name: str, table: pa.Table) -> None:
        """CSV with a header; times to the millisecond (``2026-03-23 07:01:54.648Z``), nulls as empty fields."""
        for i, field in enumerate(table.schema):
            if pa.types.is_timestamp(field.type):
                # Arrow formats zoned times ~15x slower than naive ones; a naive cast keeps the UTC wall time.
                text = pc.cast(pc.cast(table[field.name], pa.timestamp("ms"), safe=False), pa.string())
                if field.type.tz is not None:
                    text = pc.binary_join_element_wise(text, "Z", "")
                table = table.set_column(i, field.name, text)
        pcsv.write_csv(table, self.folder / f"{name}.csv")
        self.rows[f"{name}.csv"] = table.num_rows

    def parquet(self, name: str, table: pa.Table, metadata: dict[str, str] | None = None) -> None:
        self.rows[f"{name}.parquet"] = write_table(table, self.folder / f"{name}.parquet", metadata=metadata)

    def both(self, name: str, table: pa.Table) -> None:
        self.csv(name, table)
        self.parquet(name, table)


def _version() -> str:
    from synthmob import __version__

    return __version__


# --- FlowKit -----------------------------------------------------------------------------------------------
# Column names and order: FlowDB's DDL, Flowminder/FlowKit flowdb/sql/02_schema_events.sql (events.calls, sms,
# mds) and flowdb/sql/01_schema_infrastructure.sql (infrastructure.sites, cells; the BIGSERIAL surrogate keys
# of newer FlowDB are generated on insert and not written). Arrow types: PARQUET_COL_DTYPE_MAPPING in
# flowdb/testdata/test_data/py/zz_convert_events_to_parquet.py (datetime timestamp[ns, UTC]; duration, volumes,
# tac, operator_code, country_code int64; TEXT as string; outgoing bool).
_FLOWDB_LEG = ["msisdn", "location_id", "imsi", "imei", "tac", "operator_code", "country_code"]
FLOWDB_COLUMNS = {
    "calls": ["id", "outgoing", "datetime", "duration", "network", "msisdn", "msisdn_counterpart", *_FLOWDB_LEG[1:]],
    "sms": ["id", "outgoing", "datetime", "network", "msisdn", "msisdn_counterpart", *_FLOWDB_LEG[1:]],
    "mds": ["id", "datetime", "duration", "volume_total", "volume_upload", "volume_download", *_FLOWDB_LEG],
    "sites": ["id", "version", "name", "type", "status", "structure_type", "is_cow",
              "date_of_first_service", "date_of_last_service", "geom_point", "geom_polygon"],
    "cells": ["id", "version", "site_id", "name", "type", "msc", "bsc_rnc", "antenna_type", "status", "lac",
              "height", "azimuth", "transmitter", "max_range", "min_range", "electrical_tilt",
              "mechanical_downtilt", "date_of_first_service", "date_of_last_service", "geom_point", "geom_polygon"],
}
_FLOWDB_TYPES = {  # every other column is TEXT: string
    "outgoing": pa.bool_(), "is_cow": pa.bool_(), "datetime": pa.timestamp("ns", tz="UTC"), "version": pa.int32(),
    **dict.fromkeys(["duration", "volume_total", "volume_upload", "volume_download", "tac", "operator_code",
                     "country_code"], pa.int64()),
    **dict.fromkeys(["height", "azimuth", "max_range", "min_range", "electrical_tilt", "mechanical_downtilt"],
                    pa.float64()),
    **dict.fromkeys(["date_of_first_service", "date_of_last_service"], pa.date32()),
}
FLOWDB_SCHEMAS = {
    name: pa.schema([(c, _FLOWDB_TYPES.get(c, pa.string())) for c in cols]) for name, cols in FLOWDB_COLUMNS.items()
}


def _flowkit(run: Run, out: _Files) -> None:
    cells = run.table("cells")
    first_day = _first_service(run)
    location = pc.cast(cells["cgi"], pa.string())
    tables = {"sites": _flowdb_sites(cells, first_day), "cells": _flowdb_cells(cells, first_day)}

    subs = run.table("subscribers")
    sub_ids = subs[schema.SUBSCRIBER_ID].to_numpy()
    tac = pc.cast(subs["tac"], pa.int64())
    columns = [schema.SUBSCRIBER_ID, "timestamp", schema.CELL_ID, "event_type", "direction", "counterpart_id",
               "call_id", "duration_s", "bytes_up", "bytes_down"]
    events = _events(run, columns, ("voice", "sms", "data"), order=None)
    kinds = events["event_type"]
    numbers = events.drop_columns(["event_type", "direction"])  # sorting moves numbers only: fast
    numbers = numbers.append_column("outgoing", pc.equal(events["direction"], "out"))
    for name, kind in (("calls", "voice"), ("sms", "sms"), ("mds", "data")):
        part = numbers.filter(pc.equal(kinds, kind)).combine_chunks()
        part = part.sort_by([("timestamp", "ascending"), ("call_id", "ascending"), ("outgoing", "descending")])
        who = _index(sub_ids, part[schema.SUBSCRIBER_ID].to_numpy(), "subscriber_id", run)
        where = _index(cells[schema.CELL_ID].to_numpy(), part[schema.CELL_ID].to_numpy(), "cell_id", run)
        n = part.num_rows
        values = {
            "id": pc.cast(part["call_id"], pa.string()),
            "datetime": part["timestamp"],
            "duration": _whole_seconds(part["duration_s"]),
            "network": pa.nulls(n, pa.string()),
            "msisdn": subs["msisdn"].take(who),
            "location_id": location.take(where),
            "imsi": subs["imsi"].take(who),
            "imei": subs["imei"].take(who),
            "tac": tac.take(who),
            "operator_code": pa.array(np.full(n, int(schema.MNC)), pa.int64()),
            "country_code": pa.array(np.full(n, int(schema.MCC)), pa.int64()),
        }
        if kind == "data":
            up, down = part["bytes_up"], part["bytes_down"]
            values |= {"volume_total": pc.add(up, down), "volume_upload": up, "volume_download": down}
        else:
            known = pc.is_valid(part["counterpart_id"])  # null would be a party outside the network
            party = pc.fill_null(part["counterpart_id"], int(sub_ids[0]) if len(sub_ids) else 0).to_numpy()
            other = _index(sub_ids, party, "counterpart_id", run)
            values |= {
                "outgoing": part["outgoing"],
                "msisdn_counterpart": pc.if_else(known, subs["msisdn"].take(other), pa.scalar(None, pa.string())),
            }
        tables[name] = _table(values, name)

    for name, table in tables.items():
        out.both(name, table)
    (out.folder / "load_flowdb.sql").write_text(_flowdb_loader(tables), encoding="utf-8")


def _flowdb_cells(cells: pa.Table, first_day: dt.date) -> pa.Table:
    n = cells.num_rows
    points = shapely.points(cells["lon"].to_numpy(), cells["lat"].to_numpy())
    coverage = shapely.from_wkt(cells["coverage_wkt"].to_numpy(zero_copy_only=False))
    single = shapely.get_type_id(coverage) == shapely.GeometryType.POLYGON
    coverage[single] = shapely.multipolygons(coverage[single], indices=np.arange(int(single.sum())))
    return _table(
        {
            "id": cells["cgi"],
            "version": pa.array(np.zeros(n, np.int32)),
            "site_id": pc.cast(cells[schema.SITE_ID], pa.string()),
            "name": pc.cast(cells[schema.CELL_ID], pa.string()),  # synthmob's cell_id, to join the ground truth
            "type": cells["radio"],
            "antenna_type": pc.if_else(pc.is_null(cells["azimuth_deg"]), "omni", "sector"),
            "status": pa.array(["active"] * n),
            "lac": pc.cast(cells["area_code"], pa.string()),
            "azimuth": cells["azimuth_deg"],
            "max_range": cells["range_m"],
            "date_of_first_service": pa.array([first_day] * n, pa.date32()),
            "geom_point": _ewkt(points),
            "geom_polygon": _ewkt(coverage),
        },
        "cells",
    )


def _flowdb_sites(cells: pa.Table, first_day: dt.date) -> pa.Table:
    site, first = np.unique(cells[schema.SITE_ID].to_numpy(), return_index=True)
    n = len(site)
    points = shapely.points(cells["lon"].to_numpy()[first], cells["lat"].to_numpy()[first])
    return _table(
        {
            "id": pa.array(site.astype(str)),
            "version": pa.array(np.zeros(n, np.int32)),
            "status": pa.array(["active"] * n),
            "is_cow": pa.array(np.zeros(n, bool)),
            "date_of_first_service": pa.array([first_day] * n, pa.date32()),
            "geom_point": _ewkt(points),
        },
        "sites",
    )


def _flowdb_loader(tables: dict[str, pa.Table]) -> str:
    """psql script that loads the CSV files of a FlowKit export into an existing FlowDB."""

    def copy(schema_name: str, name: str) -> str:
        columns = ", ".join(FLOWDB_COLUMNS[name])
        return f"\\copy {schema_name}.{name} ({columns}) FROM '{name}.csv' WITH (FORMAT csv, HEADER true)"

    lines = [
        "-- Load this synthmob FlowKit export into FlowDB. Run it from this folder:",
        "--   psql \"$FLOWDB_URI\" -v ON_ERROR_STOP=1 -f load_flowdb.sql",
        "-- Tables and columns: FlowKit flowdb/sql/01_schema_infrastructure.sql and 02_schema_events.sql.",
        "BEGIN;",
        copy("infrastructure", "sites"),
        copy("infrastructure", "cells"),
    ]
    for name in ("calls", "sms", "mds"):
        days = sorted(pc.unique(tables[name]["datetime"].cast(pa.date32())).to_pylist())
        for day in days:
            nxt = day + dt.timedelta(days=1)
            lines.append(
                f"CREATE TABLE IF NOT EXISTS events.{name}_{day:%Y%m%d} PARTITION OF events.{name} "
                f"FOR VALUES FROM ('{day} 00:00:00+00') TO ('{nxt} 00:00:00+00');"
            )
        lines.append(copy("events", name))
        flags = ["has_locations", "has_subscribers"] + (["has_counterparts"] if name != "mds" else [])
        lines.append(
            f"INSERT INTO available_tables (table_name, {', '.join(flags)}) VALUES ('{name}'{', true' * len(flags)}) "
            f"ON CONFLICT (table_name) DO UPDATE SET {', '.join(f'{f} = EXCLUDED.{f}' for f in flags)};"
        )
        if days:
            rows = ", ".join(f"('{name}', '{day}'::date, 'ingested', NOW())" for day in days)
            lines.append(f"INSERT INTO etl.etl_records (cdr_type, cdr_date, state, timestamp) VALUES {rows};")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def _first_service(run: Run) -> dt.date:
    """The UTC date of the horizon's start: every record falls on or after it."""
    start = run.manifest.get("calendar", {}).get("horizon_start_utc")
    if start:
        return dt.datetime.fromisoformat(start).astimezone(dt.timezone.utc).date()
    return dt.date.fromisoformat(run.manifest["scenario"]["start"]) - dt.timedelta(days=1)


def _whole_seconds(seconds: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(pc.round(seconds), pa.int64())


def _ewkt(geometries: np.ndarray) -> pa.Array:
    return pa.array(np.char.add("SRID=4326;", shapely.to_wkt(geometries, rounding_precision=7).astype(str)))


# --- scikit-mobility ---------------------------------------------------------------------------------------
# Column names: skmob/utils/constants.py (UID = 'uid', DATETIME = 'datetime', LATITUDE = 'lat',
# LONGITUDE = 'lng'). Dtypes: TrajDataFrame._is_trajdataframe/_set_traj in skmob/core/trajectorydataframe.py
# require a datetime64 'datetime' and float 'lat'/'lng' and coerce anything else with pd.to_datetime and
# astype('float'); scikit-mobility 1.3 pins pandas 1.x, whose datetimes are naive datetime64[ns].
SKMOB_SCHEMA = pa.schema(
    [("uid", pa.int64()), ("datetime", pa.timestamp("ns")), ("lat", pa.float64()), ("lng", pa.float64())]
)


def _skmob(run: Run, out: _Files) -> None:
    cells = run.table("cells")
    events = _events(run, [schema.SUBSCRIBER_ID, "timestamp", schema.CELL_ID])
    where = _index(cells[schema.CELL_ID].to_numpy(), events[schema.CELL_ID].to_numpy(), "cell_id", run)
    naive = events["timestamp"].cast(pa.timestamp("ms")).cast(pa.timestamp("ns"))  # UTC wall time, no zone
    table = pa.table(
        [events[schema.SUBSCRIBER_ID], naive, cells["lat"].take(where), cells["lon"].take(where)], schema=SKMOB_SCHEMA
    )
    out.both("trajectories", table)


# --- trackintel --------------------------------------------------------------------------------------------
# Layout: trackintel.io.file.read_staypoints_csv / read_triplegs_csv / read_trips_csv (pd.read_csv with
# index_col, pd.to_datetime of started_at/finished_at, geometry from WKT in 'geom') and the required columns of
# trackintel/model/staypoints.py, triplegs.py and trips.py ('user_id', 'started_at', 'finished_at'; trips also
# 'origin_staypoint_id', 'destination_staypoint_id'; timezone-aware times; Point/LineString geometries).
# GeoParquet: geoparquet.org spec 1.0.0 (WKB; a column without "crs" is OGC:CRS84, i.e. lon/lat WGS84).
def _trackintel(run: Run, out: _Files) -> None:
    cells = run.table("cells")
    cell_ids = cells[schema.CELL_ID].to_numpy()
    lon, lat = cells["centroid_lon"].to_numpy(), cells["centroid_lat"].to_numpy()
    stays, trips = run.table("stays"), run.table("trips")

    # Stays and trips tile each subscriber's horizon: a trip departs when a stay ends, arrives when one starts.
    stay_sub = stays[schema.SUBSCRIBER_ID].to_numpy()
    trip_sub = trips[schema.SUBSCRIBER_ID].to_numpy()
    origin = _match(stay_sub, _ms(stays["end"]), trip_sub, _ms(trips["depart"]))
    destination = _match(stay_sub, _ms(stays["start"]), trip_sub, _ms(trips["arrive"]))
    trip_id = np.arange(trips.num_rows)
    prev_trip = np.full(stays.num_rows, -1)
    next_trip = np.full(stays.num_rows, -1)
    prev_trip[destination[destination >= 0]] = trip_id[destination >= 0]
    next_trip[origin[origin >= 0]] = trip_id[origin >= 0]

    stay_cell = _index(cell_ids, stays[schema.CELL_ID].to_numpy(), "cell_id", run)
    staypoints = pa.table(
        {
            "id": np.arange(stays.num_rows),
            "user_id": stays[schema.SUBSCRIBER_ID],
            "started_at": stays["start"],
            "finished_at": stays["end"],
            "purpose": stays["activity"],
            "is_activity": np.ones(stays.num_rows, bool),
            "cell_id": stays[schema.CELL_ID],
            "prev_trip_id": pa.array(prev_trip, mask=prev_trip < 0),
            "next_trip_id": pa.array(next_trip, mask=next_trip < 0),
        }
    )
    trips_out = pa.table(
        {
            "id": trip_id,
            "user_id": trips[schema.SUBSCRIBER_ID],
            "started_at": trips["depart"],
            "finished_at": trips["arrive"],
            "origin_staypoint_id": pa.array(origin, mask=origin < 0),
            "destination_staypoint_id": pa.array(destination, mask=destination < 0),
            "primary_mode": trips["mode"],
        }
    )

    owner, step_cell, _ = _path_steps(run, trips, cells)
    owner = owner.to_numpy()
    moved = pc.list_value_length(trips["path"]).to_numpy() >= 2  # one cell only: no line at cell resolution
    keep = moved[owner]
    _, line_of = np.unique(owner[keep], return_inverse=True)
    lines = np.empty(0, object)
    if keep.any():
        lines = shapely.linestrings(lon[step_cell[keep]], lat[step_cell[keep]], indices=line_of)
    mask = pa.array(moved)
    triplegs = pa.table(
        {
            "id": trip_id[moved],
            "user_id": trips[schema.SUBSCRIBER_ID].filter(mask),
            "started_at": trips["depart"].filter(mask),
            "finished_at": trips["arrive"].filter(mask),
            "mode": trips["mode"].filter(mask),
            "trip_id": trip_id[moved],
        }
    )

    points = shapely.points(lon[stay_cell], lat[stay_cell])
    for name, table, geoms in (("staypoints", staypoints, points), ("triplegs", triplegs, lines)):
        wkt = pa.array(shapely.to_wkt(geoms, rounding_precision=7), pa.string())
        out.csv(name, table.add_column(4, "geom", wkt))
        wkb = pa.array(shapely.to_wkb(geoms), pa.binary())
        out.parquet(name, table.add_column(4, "geom", wkb), metadata=_geoparquet(geoms))
    out.both("trips", trips_out)


_SHIFT = np.int64(1) << np.int64(42)  # ms since 1970 stay below 2^42 until 2109


def _match(sub: np.ndarray, ms: np.ndarray, want_sub: np.ndarray, want_ms: np.ndarray) -> np.ndarray:
    """Row of the sorted keys (sub, ms) equal to each (want_sub, want_ms); -1 where there is none."""
    keys = sub.astype(np.int64) * _SHIFT + ms
    want = want_sub.astype(np.int64) * _SHIFT + want_ms
    if not len(keys):
        return np.full(len(want), -1)
    row = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    return np.where(keys[row] == want, row, -1)


def _ms(column: pa.ChunkedArray) -> np.ndarray:
    return pc.cast(column, pa.int64()).to_numpy()


def _geoparquet(geoms: np.ndarray) -> dict[str, str]:
    """GeoParquet 1.0.0 file metadata for a WKB column ``geom`` in lon/lat (no "crs": OGC:CRS84)."""
    names = {int(shapely.GeometryType.POINT): "Point", int(shapely.GeometryType.LINESTRING): "LineString"}
    column = {"encoding": "WKB", "geometry_types": sorted({names[k] for k in shapely.get_type_id(geoms).tolist()})}
    if len(geoms):
        column["bbox"] = [float(v) for v in shapely.total_bounds(geoms)]
    return {"geo": json.dumps({"version": "1.0.0", "primary_column": "geom", "columns": {"geom": column}})}


# --- movingpandas ------------------------------------------------------------------------------------------
# movingpandas.TrajectoryCollection(data, traj_id_col, obj_id_col, t, x, y, crs) groups a plain DataFrame by
# traj_id_col, makes points from the x/y columns and skips groups of fewer than two rows
# (movingpandas/trajectory_collection.py, _df_to_trajectories; trajectory.py, _prepare_dataframe). A
# timezone-aware t is converted to naive (tz_localize(None)) with a TimeZoneWarning and kept as df_orig_tz.
def _movingpandas(run: Run, out: _Files) -> None:
    cells, trips = run.table("cells"), run.table("trips")
    owner, where, steps = _path_steps(run, trips, cells)
    table = pa.table(
        {
            "trip_id": pc.cast(owner, pa.int64()),
            "subscriber_id": trips[schema.SUBSCRIBER_ID].take(owner),
            "t": pc.struct_field(steps, "entered"),
            "lon": cells["centroid_lon"].take(where),
            "lat": cells["centroid_lat"].take(where),
            "cell_id": pc.struct_field(steps, schema.CELL_ID),
            "mode": trips["mode"].take(owner),
        }
    )
    out.both("points", table)


# --- plain CSV ---------------------------------------------------------------------------------------------
def _csv(run: Run, out: _Files) -> None:
    for name in ("cells", "subscribers", "contacts", "stays"):
        out.csv(name, run.table(name))
    trips = run.table("trips")
    trip_id = pa.array(np.arange(trips.num_rows))
    out.csv("trips", trips.drop_columns(["path"]).add_column(0, "trip_id", trip_id))
    owner, _, steps = _path_steps(run, trips, run.table("cells"))
    lengths = pc.list_value_length(trips["path"]).to_numpy()
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)  # row of the first step of each step's trip
    path = pa.table(
        {
            "trip_id": pc.cast(owner, pa.int64()),
            "step": pa.array(np.arange(len(steps)) - first, pa.int32()),
            schema.CELL_ID: pc.struct_field(steps, schema.CELL_ID),
            "entered": pc.struct_field(steps, "entered"),
        }
    )
    out.csv("trip_path", path)
    out.csv("events", run.table("events"))


# --- shared ------------------------------------------------------------------------------------------------
_BY_SUBSCRIBER = [(schema.SUBSCRIBER_ID, "ascending"), ("timestamp", "ascending")]


def _events(
    run: Run, columns: list[str], event_types: tuple[str, ...] | None = None, *, order: list | None = _BY_SUBSCRIBER
) -> pa.Table:
    """Some columns of the events (of some types only), in the canonical schema, sorted by ``order``."""
    target = pa.schema([schema.EVENTS.field(c) for c in columns])
    if not (run.path / "events").is_dir():
        return target.empty_table()
    where = pc.field("event_type").isin(list(event_types)) if event_types else None
    table = run.dataset("events").to_table(columns=columns, filter=where).cast(target)
    return table.sort_by(order) if order else table


def _path_steps(run: Run, trips: pa.Table, cells: pa.Table) -> tuple[pa.Array, np.ndarray, pa.Array]:
    """Every step of every trip's path: the row of its trip, the row of its cell in ``cells``, the steps."""
    steps = pc.list_flatten(trips["path"])
    where = _index(cells[schema.CELL_ID].to_numpy(), pc.struct_field(steps, schema.CELL_ID).to_numpy(), "cell_id", run)
    return pc.list_parent_indices(trips["path"]), where, steps


def _index(sorted_ids: np.ndarray, ids: np.ndarray, what: str, run: Run) -> np.ndarray:
    """Positions of ``ids`` in ``sorted_ids``, a table's unique sorted key (vectorised look-up)."""
    n = len(sorted_ids)
    if not len(ids):
        return np.zeros(0, np.int64)
    if n and sorted_ids[0] == 0 and sorted_ids[-1] == n - 1:  # the key is 0..n-1, as synthmob numbers things
        row, found = ids, ids.min() >= 0 and ids.max() < n
    else:
        row = np.minimum(np.searchsorted(sorted_ids, ids), max(n - 1, 0))
        found = n > 0 and np.array_equal(sorted_ids[row], ids)
    if not found:
        raise SynthmobError(f"{run.path}: a {what} in the records is missing from its table; regenerate the run")
    return row.astype(np.int64, copy=False)


def _table(values: dict[str, pa.Array | pa.ChunkedArray], name: str) -> pa.Table:
    """A FlowDB table in FlowDB's column order and Arrow types; columns not given are null."""
    target = FLOWDB_SCHEMAS[name]
    n = len(next(iter(values.values())))
    arrays = [values[f.name].cast(f.type) if f.name in values else pa.nulls(n, f.type) for f in target]
    return pa.Table.from_arrays(arrays, schema=target)


_WRITERS: dict[str, Callable[[Run, _Files], None]] = {
    "csv": _csv,
    "flowkit": _flowkit,
    "movingpandas": _movingpandas,
    "skmob": _skmob,
    "trackintel": _trackintel,
}
