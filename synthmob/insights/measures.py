"""The four insight measures, as DuckDB SQL over Parquet files (or Arrow tables), out of core.

Every measure returns exact counts in the shape :func:`synthmob.disclosure.protect` takes: the key columns,
``age_band``, ``gender`` and ``count`` (int64), one row per non-empty age × gender cell of each group plus the
group's total, whose breakdown columns are ``"all"``, in no particular order. Totals are counted on their own
(distinct subscribers, trips or stops per group), not summed from the cells; they agree because every subscriber
has exactly one age band and gender, from the ``subscribers`` table.

Two sources: ``"records"`` (the operator's view, ``events``) and ``"truth"`` (``stays`` and ``trips``).

Stops and trips from records (stay-point detection, as in Li et al., ACM GIS 2008, and trackintel's
``generate_staypoints``, simplified to zones and to the sparse timing of call detail records):

1. Activity records (``voice``, ``sms``, ``data``: those a subscriber's own use makes) are mapped to zones and
   ordered by time; consecutive records in one zone form a *visit*, lasting from its first to its last record.
2. A visit lasting at least ``MIN_STOP_S`` (20 minutes) is a *stop*. Shorter visits (passing through, or a
   phone flipping to a neighbouring cell) are dropped, and consecutive stops in the same zone merge into one.
3. A *trip* is the move between two consecutive stops (always in different zones after the merge). It departs
   at the last record of its origin stop and belongs to that moment's local day and time band.

From the truth, stops are the stays and trips are the true trips between cells of different zones.

With differential privacy each measure caps what one subscriber-day contributes (:data:`CAPS`, keeping the
earliest contributions, deterministically), so the L1 sensitivity per subscriber-day is bounded
(:func:`sensitivity`); without it nothing is capped. A contribution belongs to one local day: a zone-hour to the
day of its start, a trip to its departure, a stop to its start (user-day contribution bounding, as in Google's
COVID-19 Community Mobility Reports, Aktay et al., arXiv:2004.04145).

Examples
--------
>>> import pathlib, tempfile, synthmob
>>> from synthmob.insights.zones import assign_zones
>>> run = synthmob.generate("tiny", out=pathlib.Path(tempfile.mkdtemp()) / "t")
>>> cell_zone, _ = assign_zones(run.table("cells"), "area")
>>> with connect_run(run, cell_zone) as inputs:
...     table = footfall(inputs)
>>> table.column_names
['zone_id', 'hour', 'age_band', 'gender', 'count']
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from synthmob import schema
from synthmob.errors import SynthmobError
from synthmob.metrics import NIGHT_H, local_ms

if TYPE_CHECKING:
    from synthmob.run import Run

SOURCES = ("records", "truth")
#: Event types a subscriber's own activity makes; stops and trips are inferred from these only.
ACTIVITY_EVENTS = ("voice", "sms", "data")
#: Shortest visit that counts as a stop: 20 minutes, the time threshold of scikit-mobility's ``stay_locations``
#: (``minutes_for_a_stop``), after the stay-point detection of Li et al., ACM GIS 2008.
MIN_STOP_S = 1200
#: Local time bands of the OD matrix: night, morning peak, daytime, evening peak, evening.
TIME_BANDS = (("00-06", 0), ("06-10", 6), ("10-16", 10), ("16-20", 16), ("20-24", 20))
#: Dwell bands (label, lower bound in minutes).
DWELL_BANDS = (("<30m", 0), ("30m-1h", 30), ("1-2h", 60), ("2-4h", 120), ("4-8h", 240), (">=8h", 480))
#: Key columns of each insight.
KEYS = {
    "footfall": ("zone_id", "hour"),
    "od": ("origin_zone", "destination_zone", "day", "time_band"),
    "dwell": ("zone_id", "dwell_band"),
    "catchment": ("zone_id", "home_zone"),
}
#: Most contributions kept per subscriber-day when noise is added (catchment: per subscriber over the run).
CAPS = {"footfall": 24, "od": 10, "dwell": 10, "catchment": 10}
#: What a contribution is, for each cap.
CAP_UNITS = {
    "footfall": "zone-hours per subscriber and local day (of the hour's start), earliest first",
    "od": "trips per subscriber and local day of departure, earliest first",
    "dwell": "stops per subscriber and local day of the stop's start, earliest first",
    "catchment": "visited zones per subscriber over the run, in order of first stop",
}
_H_MS = 3_600_000
_Q_MS = 900_000
_DAY_MS = 86_400_000
_MEMORY = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)", re.IGNORECASE)


def sensitivity(name: str, cap: int | None) -> float | None:
    """L1 sensitivity of insight ``name`` per subscriber-day when contributions are capped at ``cap``.

    A contribution changes one cell row and its group's total by 1, so a subscriber-day moves the table by at
    most ``2 * cap``. Catchment is ``4 * cap``: one day can also change the subscriber's home zone, which moves
    every one of their contributions from one group to another.

    Examples
    --------
    >>> sensitivity("od", 10), sensitivity("catchment", 10), sensitivity("od", None)
    (20.0, 40.0, None)
    """
    if cap is None:
        return None
    return float((4 if name == "catchment" else 2) * cap)


def check_memory_limit(memory_limit: str) -> None:
    """Raise :class:`SynthmobError` unless ``memory_limit`` is an amount DuckDB reads, such as ``"1GB"``."""
    if not isinstance(memory_limit, str) or not _MEMORY.fullmatch(memory_limit.strip()):
        raise SynthmobError(f"memory_limit: got {memory_limit!r}; give an amount such as '512MB' or '2GB'")


@dataclass(frozen=True)
class Inputs:
    """An open DuckDB connection with the views the measures read, and the scenario's time zone.

    Views: ``events``, ``stays``, ``trips``, ``subscribers`` and ``cell_zone`` (``cell_id`` → ``zone_id``).
    """

    con: duckdb.DuckDBPyConnection
    timezone: str
    min_stop_s: float = MIN_STOP_S


_COLUMNS = {
    "events": (schema.EVENTS, ("subscriber_id", "timestamp", "cell_id", "event_type")),
    "stays": (schema.STAYS, ("subscriber_id", "cell_id", "start", "end")),
    "trips": (schema.TRIPS, ("subscriber_id", "from_cell", "to_cell", "depart", "arrive", "path")),
    "subscribers": (schema.SUBSCRIBERS, ("subscriber_id", "age_band", "gender", "home_cell")),
}


@contextmanager
def connect(
    *,
    cell_zone: pa.Table,
    subscribers: str | Path | pa.Table,
    events: str | Path | pa.Table | None = None,
    stays: str | Path | pa.Table | None = None,
    trips: str | Path | pa.Table | None = None,
    timezone: str,
    span_ms: tuple[int, int] | None = None,
    memory_limit: str = "1GB",
    threads: int = 2,
    min_stop_s: float = MIN_STOP_S,
) -> Iterator[Inputs]:
    """Open DuckDB over the given tables: each a Parquet file, a folder of them (read recursively), or Arrow.

    DuckDB spills to a private temporary folder beyond ``memory_limit`` (e.g. ``"1GB"``); the folder is removed
    when the block ends. A missing table (None) is empty. Arrow tables need only the columns the measures
    read (events: subscriber_id, timestamp, cell_id, event_type; stays: subscriber_id, cell_id, start, end;
    trips: those and from_cell, to_cell, depart, arrive, path; subscribers: subscriber_id, age_band, gender,
    home_cell). ``span_ms`` is the first and last instant of the data (epoch ms; default: read from it), over
    which local time is computed from the time zone's UTC offsets.
    """
    with session(memory_limit=memory_limit, threads=threads) as con:
        con.register("_cell_zone", cell_zone.select([schema.CELL_ID, "zone_id"]))
        con.execute("CREATE VIEW cell_zone AS SELECT * FROM _cell_zone")
        given = {"events": events, "stays": stays, "trips": trips, "subscribers": subscribers}
        for name, source in given.items():
            _view(con, name, source)
        _local_time(con, timezone, span_ms)
        _breakdown_tables(con)
        yield Inputs(con, timezone, float(min_stop_s))


@contextmanager
def session(*, memory_limit: str = "1GB", threads: int = 2) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection that holds at most ``memory_limit`` and spills beyond it to a private
    temporary folder, removed with the connection when the block ends; times in UTC, no progress output."""
    check_memory_limit(memory_limit)
    with tempfile.TemporaryDirectory(prefix="synthmob-duckdb-") as spill:
        con = duckdb.connect()
        try:
            for setting in (
                f"SET memory_limit = '{memory_limit.strip()}'",
                f"SET temp_directory = '{_quote(spill)}'",
                f"SET threads = {int(threads)}",
                "SET preserve_insertion_order = false",
                "SET TimeZone = 'UTC'",
            ):
                con.execute(setting)
            try:
                con.execute("SET enable_progress_bar = false")  # a library never prints
            except duckdb.InvalidInputException:  # pragma: no cover - in Jupyter without ipywidgets
                pass
            yield con
        finally:
            con.close()


@contextmanager
def connect_run(run: Run, cell_zone: pa.Table, *, memory_limit: str = "1GB", threads: int = 2) -> Iterator[Inputs]:
    """:func:`connect` over a run folder's Parquet files, in the run's time zone and over its horizon."""
    paths = {name: run.path / (name if name in schema.DATASETS else f"{name}.parquet") for name in _COLUMNS}
    calendar = run.manifest.get("calendar", {})
    span_ms = None
    if "horizon_start_utc" in calendar and "horizon_end_utc" in calendar:
        ends = (calendar["horizon_start_utc"], calendar["horizon_end_utc"])
        span_ms = tuple(int(dt.datetime.fromisoformat(end).timestamp() * 1000) for end in ends)
    timezone = run.manifest["scenario"]["timezone"]
    options = {"timezone": timezone, "span_ms": span_ms, "memory_limit": memory_limit, "threads": threads}
    with connect(cell_zone=cell_zone, **options, **paths) as inputs:
        yield inputs


def _local_time(con: duckdb.DuckDBPyConnection, timezone: str, span_ms: tuple[int, int] | None) -> None:
    """Create the macro ``local_ms(ms)``: local wall-clock epoch ms, from the zone's offsets over the span.

    The offsets are those :func:`synthmob.metrics.local_ms` finds (one look-up per quarter-hour, a day's margin
    each side); in SQL they become one CASE over the few changes, far cheaper than a time-zone conversion of
    every row.
    """
    if span_ms is None:
        first, last = con.execute(
            """SELECT min(a), max(b) FROM (
                   SELECT min(epoch_ms("timestamp")) AS a, max(epoch_ms("timestamp")) AS b FROM events
                   UNION ALL SELECT min(epoch_ms("start")), max(epoch_ms("end")) FROM stays
                   UNION ALL SELECT min(epoch_ms(depart)), max(epoch_ms(arrive)) FROM trips)"""
        ).fetchall()[0]
        span_ms = (first or 0, last or 0)
    quarters = np.arange(span_ms[0] // _Q_MS - 96, span_ms[1] // _Q_MS + 97, dtype=np.int64) * _Q_MS
    offsets = local_ms(quarters, timezone) - quarters
    change = np.flatnonzero(np.diff(offsets)) + 1
    whens = " ".join(f"WHEN ms < {quarters[i]} THEN {offsets[i - 1]}" for i in change)
    shift = f"CASE {whens} ELSE {offsets[-1]} END" if len(change) else str(offsets[-1])
    con.execute(f"CREATE MACRO local_ms(ms) AS ms + {shift}")


def _quote(text: str | Path) -> str:
    return str(text).replace("'", "''")


def _view(con: duckdb.DuckDBPyConnection, name: str, source: str | Path | pa.Table | None) -> None:
    table_schema, columns = _COLUMNS[name]
    select = ", ".join(f'"{c}"' for c in columns)
    if isinstance(source, (str, Path)):
        path = Path(source)
        files = sorted(path.rglob("*.parquet")) if path.is_dir() else ([path] if path.is_file() else [])
        if files:
            pattern = (path / "**" / "*.parquet") if path.is_dir() else path
            files_sql = f"read_parquet('{_quote(pattern.as_posix())}', hive_partitioning = false)"
            con.execute(f"CREATE VIEW {name} AS SELECT {select} FROM {files_sql}")
            return
        source = None
    if source is None:
        source = table_schema.empty_table()
    con.register(f"_{name}", source)
    con.execute(f"CREATE VIEW {name} AS SELECT {select} FROM _{name}")


# --- SQL building blocks -------------------------------------------------------------------------------------
def _arrow(inputs: Inputs, sql: str) -> pa.Table:
    relation = inputs.con.sql(sql)
    return relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()  # DuckDB < 1.4


def _local_day(ms: str) -> str:
    return f"(DATE '1970-01-01' + CAST(local_ms({ms}) // {_DAY_MS} AS INTEGER))"


def _local_hour(ms: str) -> str:
    return f"(local_ms({ms}) % {_DAY_MS} // {_H_MS})"


def _bands(value: str, bands: tuple[tuple[str, int], ...]) -> str:
    whens = " ".join(f"WHEN {value} < {upper} THEN '{label}'" for (label, _), (_, upper) in zip(bands, bands[1:]))
    return f"CASE {whens} ELSE '{bands[-1][0]}' END"


def _capped(sql: str, *, cap: int | None, partition: str, order: str) -> str:
    if cap is None:
        return sql
    rank = f"row_number() OVER (PARTITION BY {partition} ORDER BY {order})"
    return f"SELECT * FROM ({sql}) QUALIFY {rank} <= {int(cap)}"


def _breakdown(inputs: Inputs, contributions: str, keys: tuple[str, ...]) -> pa.Table:
    """Count rows of ``contributions`` (keys + subscriber_id) per group: in total and per age × gender cell.

    One aggregation per group (far fewer groups than groups × cells): ``count(*)`` for the total and one
    filtered count per age × gender combination, unpivoted into rows afterwards; empty cells get no row.
    """
    k = ", ".join(keys)
    combos = inputs.con.execute("SELECT count(*) FROM breakdown").fetchall()[0][0]
    columns = ["n_all"] + [f"n_{i}" for i in range(combos)]
    counts = ", ".join(f"count(*) FILTER (WHERE b.combo = {i}) AS n_{i}" for i in range(combos))
    sql = f"""
        WITH wide AS (
            SELECT {k}, count(*) AS n_all{', ' if combos else ''}{counts}
            FROM ({contributions}) AS c JOIN subscriber_combo AS b USING (subscriber_id)
            GROUP BY {k}
        ), long AS (
            UNPIVOT wide ON {', '.join(columns)} INTO NAME cell VALUE count
        )
        SELECT {k}, l.age_band, l.gender, long.count
        FROM long JOIN breakdown_labels AS l USING (cell)
        WHERE long.count > 0
    """
    table = _arrow(inputs, sql)
    fields = [pa.field(f.name, _TYPES.get(f.name, pa.string() if _is_text(f.type) else f.type)) for f in table.schema]
    return table.cast(pa.schema(fields))


def _breakdown_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Number the age band × gender combinations of the subscribers, for :func:`_breakdown`."""
    con.execute("CREATE TEMP TABLE breakdown AS SELECT DISTINCT age_band, gender FROM subscribers ORDER BY ALL")
    con.execute("""CREATE TEMP TABLE breakdown_labels AS
                   SELECT 'n_' || (row_number() OVER (ORDER BY age_band, gender) - 1) AS cell, age_band, gender
                   FROM breakdown UNION ALL SELECT 'n_all', 'all', 'all'""")
    con.execute("""CREATE TEMP TABLE subscriber_combo AS
                   SELECT s.subscriber_id, b.combo FROM subscribers AS s
                   JOIN (SELECT *, row_number() OVER (ORDER BY age_band, gender) - 1 AS combo FROM breakdown) AS b
                   USING (age_band, gender)""")


_TYPES = {"hour": schema.TIMESTAMP, "day": pa.date32(), "count": pa.int64()}


def _is_text(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_)


# --- stops and trips -----------------------------------------------------------------------------------------
def _record_stops(inputs: Inputs) -> str:
    """The name of a temporary table of stops inferred from records, built on first use."""
    activity = ", ".join(f"'{t}'" for t in ACTIVITY_EVENTS)
    inputs.con.execute(f"""
        CREATE TEMP TABLE IF NOT EXISTS record_stops AS
        WITH r AS (
            SELECT e.subscriber_id, epoch_ms(e."timestamp") AS t_ms, z.zone_id
            FROM events AS e JOIN cell_zone AS z USING (cell_id)
            WHERE e.event_type IN ({activity})
        ), edges AS (  -- the first and last record of every visit (a run of records in one zone)
            SELECT *, row_number() OVER w AS i,
                   lag(zone_id) OVER w IS DISTINCT FROM zone_id AS opens,
                   lead(zone_id) OVER w IS DISTINCT FROM zone_id AS closes
            FROM r WINDOW w AS (PARTITION BY subscriber_id ORDER BY t_ms, zone_id)
        ), visits AS (
            SELECT subscriber_id, zone_id, t_ms AS first_ms,
                   CASE WHEN closes THEN t_ms ELSE lead(t_ms) OVER (PARTITION BY subscriber_id ORDER BY i)
                   END AS last_ms
            FROM edges WHERE opens OR closes
            QUALIFY opens
        ), long AS (
            SELECT * FROM visits WHERE last_ms - first_ms >= {round(inputs.min_stop_s * 1000)}
        ), marked AS (
            SELECT *, lag(zone_id) OVER (PARTITION BY subscriber_id ORDER BY first_ms) IS DISTINCT FROM zone_id AS new
            FROM long
        ), numbered AS (  -- consecutive stops in one zone merge
            SELECT *, sum(new::INTEGER) OVER (PARTITION BY subscriber_id ORDER BY first_ms
                                               ROWS UNBOUNDED PRECEDING) AS stop_no
            FROM marked
        )
        SELECT subscriber_id, any_value(zone_id) AS zone_id, min(first_ms) AS first_ms, max(last_ms) AS last_ms
        FROM numbered GROUP BY subscriber_id, stop_no
    """)
    return "record_stops"


def _stops_sql(inputs: Inputs, source: str) -> str:
    """SQL of stops: subscriber_id, zone_id, first_ms, last_ms."""
    _check_source(source)
    if source == "records":
        return f"SELECT * FROM {_record_stops(inputs)}"
    return """SELECT s.subscriber_id, z.zone_id, epoch_ms(s."start") AS first_ms, epoch_ms(s."end") AS last_ms
              FROM stays AS s JOIN cell_zone AS z USING (cell_id)"""


def _trips_sql(inputs: Inputs, source: str) -> str:
    """SQL of trips between zones: subscriber_id, origin_zone, destination_zone, depart_ms."""
    if source == "records":
        return f"""
            SELECT * FROM (
                SELECT subscriber_id, zone_id AS origin_zone, last_ms AS depart_ms,
                       lead(zone_id) OVER (PARTITION BY subscriber_id ORDER BY first_ms) AS destination_zone
                FROM {_record_stops(inputs)}
            ) WHERE destination_zone IS NOT NULL"""
    _check_source(source)
    return """
        SELECT t.subscriber_id, a.zone_id AS origin_zone, epoch_ms(t.depart) AS depart_ms, b.zone_id AS destination_zone
        FROM trips AS t JOIN cell_zone AS a ON t.from_cell = a.cell_id JOIN cell_zone AS b ON t.to_cell = b.cell_id
        WHERE a.zone_id <> b.zone_id"""


def stops(inputs: Inputs, *, source: str = "records") -> pa.Table:
    """Stops (records: inferred as the module describes; truth: the stays), sorted by subscriber and start.

    Columns: ``subscriber_id``, ``zone_id``, ``start``, ``end`` (UTC).
    """
    sql = f"""SELECT subscriber_id, zone_id, first_ms AS "start", last_ms AS "end"
              FROM ({_stops_sql(inputs, source)}) ORDER BY subscriber_id, "start" """
    table = _arrow(inputs, sql)
    for i, name in ((2, "start"), (3, "end")):
        table = table.set_column(i, name, table[name].cast(schema.TIMESTAMP))
    return table


def inferred_trips(inputs: Inputs, *, source: str = "records") -> pa.Table:
    """One row per trip between zones (what :func:`od` counts), sorted by subscriber and departure.

    Columns: ``subscriber_id``, ``origin_zone``, ``destination_zone``, ``depart`` (UTC).
    """
    sql = f"""SELECT subscriber_id, origin_zone, destination_zone, depart_ms AS depart
              FROM ({_trips_sql(inputs, source)}) ORDER BY subscriber_id, depart"""
    table = _arrow(inputs, sql)
    return table.set_column(3, "depart", table["depart"].cast(schema.TIMESTAMP))


def homes(inputs: Inputs, *, source: str = "records") -> pa.Table:
    """Home zone of each subscriber: ``subscriber_id``, ``home_zone``.

    Records: the zone with most records (all event types) on weekday nights, 22:00–07:00 local, a night
    belonging to the weekday its morning falls on (Sunday 22:00 to Friday 07:00), ties to the smaller zone id:
    REALISM.md's rule, as :func:`synthmob.metrics.home_and_work` applies it to cells. Subscribers without such
    records have no home and no row. Truth: the zone of the subscriber's ``home_cell``.
    """
    return _arrow(inputs, f"SELECT * FROM ({_homes_sql(inputs, source)}) ORDER BY subscriber_id")


def _homes_sql(inputs: Inputs, source: str) -> str:
    _check_source(source)
    if source == "truth":
        return """SELECT s.subscriber_id, z.zone_id AS home_zone
                  FROM subscribers AS s JOIN cell_zone AS z ON s.home_cell = z.cell_id"""
    hour = _local_hour("t_ms")
    weekday = f"((local_ms(t_ms) + {2 * _H_MS}) // {_DAY_MS} + 3) % 7"  # 0 = Monday; 22:00-24:00 is the next day's
    return f"""
        SELECT subscriber_id, zone_id AS home_zone FROM (
            SELECT subscriber_id, zone_id, count(*) AS n
            FROM (SELECT e.subscriber_id, z.zone_id, epoch_ms(e."timestamp") AS t_ms
                  FROM events AS e JOIN cell_zone AS z USING (cell_id))
            WHERE ({hour} >= {NIGHT_H[0]} OR {hour} < {NIGHT_H[1]}) AND {weekday} < 5
            GROUP BY subscriber_id, zone_id
        ) QUALIFY row_number() OVER (PARTITION BY subscriber_id ORDER BY n DESC, zone_id) = 1"""


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise SynthmobError(f"source: got {source!r}; valid sources are {', '.join(SOURCES)}")


# --- the measures --------------------------------------------------------------------------------------------
def footfall(inputs: Inputs, *, source: str = "records", cap: int | None = None) -> pa.Table:
    """Distinct subscribers present in each zone in each UTC hour (``hour`` = the hour's start).

    Records: present when they have any record (every event type) at a cell of the zone in the hour. Truth:
    when their true serving cell was in the zone at some moment of the hour, at a stay or along a trip's path
    (each path cell from the moment it was entered until the next, or the arrival).
    """
    _check_source(source)
    if source == "records":
        presence = f"""SELECT DISTINCT e.subscriber_id, z.zone_id, epoch_ms(e."timestamp") // {_H_MS} AS hour_n
                       FROM events AS e JOIN cell_zone AS z USING (cell_id)"""
    else:
        presence = f"""
            WITH spans AS (
                SELECT subscriber_id, cell_id, epoch_ms("start") AS a_ms, epoch_ms("end") AS b_ms FROM stays
                UNION ALL
                SELECT subscriber_id, path[i].cell_id, epoch_ms(path[i].entered),
                       epoch_ms(coalesce(path[i + 1].entered, arrive))
                FROM (SELECT subscriber_id, path, arrive, unnest(range(1, len(path) + 1)) AS i FROM trips)
            ), hours AS (
                SELECT s.subscriber_id, z.zone_id,
                       unnest(range(a_ms // {_H_MS}, greatest(a_ms // {_H_MS}, (b_ms - 1) // {_H_MS}) + 1)) AS hour_n
                FROM spans AS s JOIN cell_zone AS z USING (cell_id)
            )
            SELECT DISTINCT subscriber_id, zone_id, hour_n FROM hours"""
    day = _local_day(f"hour_n * {_H_MS}")
    presence = _capped(presence, cap=cap, partition=f"subscriber_id, {day}", order="hour_n, zone_id")
    contributions = f"SELECT subscriber_id, zone_id, hour_n * {_H_MS} AS hour FROM ({presence})"
    return _breakdown(inputs, contributions, KEYS["footfall"])


def od(inputs: Inputs, *, source: str = "records", cap: int | None = None) -> pa.Table:
    """Trips from zone to zone per local day and local time band of departure (:data:`TIME_BANDS`)."""
    band = _bands(_local_hour("depart_ms"), TIME_BANDS)
    trips = f"""SELECT *, {_local_day('depart_ms')} AS day, {band} AS time_band FROM ({_trips_sql(inputs, source)})"""
    trips = _capped(trips, cap=cap, partition="subscriber_id, day", order="depart_ms, origin_zone, destination_zone")
    return _breakdown(inputs, trips, KEYS["od"])


def dwell(inputs: Inputs, *, source: str = "records", cap: int | None = None) -> pa.Table:
    """Stops per zone by duration band (:data:`DWELL_BANDS`).

    The duration is the last record of a stop minus its first (records) or a stay's end minus its start (truth,
    as cut by the simulated horizon).
    """
    band = _bands("(last_ms - first_ms) / 60000.0", DWELL_BANDS)
    stop = f"SELECT *, {_local_day('first_ms')} AS day, {band} AS dwell_band FROM ({_stops_sql(inputs, source)})"
    stop = _capped(stop, cap=cap, partition="subscriber_id, day", order="first_ms, zone_id")
    return _breakdown(inputs, stop, KEYS["dwell"])


def catchment(inputs: Inputs, *, source: str = "records", cap: int | None = None) -> pa.Table:
    """Distinct visitors of each zone over the run, by their home zone (:func:`homes`).

    A visitor is a subscriber with a stop in the zone (residents in their own zone included); subscribers
    without a home are left out.
    """
    stops_sql = _stops_sql(inputs, source)
    visits = f"SELECT subscriber_id, zone_id, min(first_ms) AS first_ms FROM ({stops_sql}) GROUP BY ALL"
    visits = _capped(visits, cap=cap, partition="subscriber_id", order="first_ms, zone_id")
    contributions = f"""SELECT v.subscriber_id, v.zone_id, h.home_zone
                        FROM ({visits}) AS v JOIN ({_homes_sql(inputs, source)}) AS h USING (subscriber_id)"""
    return _breakdown(inputs, contributions, KEYS["catchment"])


MEASURES = {"footfall": footfall, "od": od, "dwell": dwell, "catchment": catchment}
