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
``pseudonymous``
    A release of the operator's records without identities: ``events/date=YYYY-MM-DD/part-0.parquet``, every
    event except periodic updates (whose fixed timer would link one day's last record to the next day's
    first), with ``subscriber_id`` replaced by a ``pseudonym`` that changes at local midnight (HMAC-SHA256 of
    the id and the local date under a secret key, 16 hex digits), ``counterpart_id`` by the other party's
    pseudonym of that day and ``call_id`` by a keyed ``call_token``; times cut to the start of their minute;
    cells, types, durations and volumes as they are; plus ``cells.parquet``. ``export.json`` names the run by
    its folder name only. ``key`` (bytes, at least 16) makes it reproducible; without one a fresh
    random key is used and forgotten. The key, the seed and the subscribers are never written: see
    :mod:`synthmob.exports.pseudonymous` for what this does and does not protect.
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

import json
from collections.abc import Callable
from pathlib import Path

from synthmob.errors import SynthmobError
from synthmob.exports.files import Files, version
from synthmob.exports.flowkit import FLOWDB_COLUMNS, FLOWDB_SCHEMAS, flowkit
from synthmob.exports.movingpandas import movingpandas
from synthmob.exports.plain import csv
from synthmob.exports.pseudonymous import pseudonymous, release_key
from synthmob.exports.skmob import SKMOB_SCHEMA, skmob
from synthmob.exports.trackintel import trackintel
from synthmob.output import staged_folder
from synthmob.run import Run

__all__ = ["FLOWDB_COLUMNS", "FLOWDB_SCHEMAS", "FORMATS", "MARKER", "SKMOB_SCHEMA", "export"]

FORMATS = {
    "csv": "every table of the run as CSV (trip paths as a trip_path table)",
    "flowkit": "FlowDB events.calls/sms/mds and infrastructure.cells/sites, Parquet and CSV, with a psql loader",
    "movingpandas": "one point per cell entered along each trip, for movingpandas.TrajectoryCollection",
    "pseudonymous": "the operator's records under daily keyed-hash pseudonyms, without identities, and the cells",
    "skmob": "a scikit-mobility TrajDataFrame of the operator's records at cell antennas",
    "trackintel": "trackintel staypoints, triplegs and trips, CSV and GeoParquet",
}
#: Written last into every export folder: format, source run, synthmob version and the rows of every table
#: file. ``overwrite`` replaces only a folder that holds one.
MARKER = "export.json"


def export(
    run: Run | str | Path,
    format: str,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    key: bytes | None = None,
) -> Path:
    """Write ``run`` in ``format`` (one of :data:`FORMATS`) into ``out``; return the folder written.

    ``key`` is for ``pseudonymous`` only: the secret of its keyed hashes (bytes, at least 16), never written.

    Raises
    ------
    SynthmobError
        ``format`` is unknown, ``run`` is not a run folder, or ``key`` is given with another format or is not
        bytes of at least 16.
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
    if key is not None and format != "pseudonymous":
        raise SynthmobError(f"export format {format!r}: takes no key; only 'pseudonymous' does")
    options = {"key": release_key(key)} if format == "pseudonymous" else {}
    run = run if isinstance(run, Run) else Run(run)
    target = Path(out if out is not None else run.path / "exports" / format).absolute()
    with staged_folder(target, overwrite=overwrite, marker=MARKER) as folder:
        files = Files(folder)
        _WRITERS[format](run, files, **options)
        # A release to publish names its run by folder only: an absolute path can hold a user's name.
        source = run.path.resolve().name if format == "pseudonymous" else str(run.path.absolute())
        record = {"format": format, "run": source, "synthmob": version(), "rows": files.rows}
        (folder / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target




_WRITERS: dict[str, Callable[..., None]] = {
    "csv": csv,
    "flowkit": flowkit,
    "movingpandas": movingpandas,
    "pseudonymous": pseudonymous,
    "skmob": skmob,
    "trackintel": trackintel,
}
