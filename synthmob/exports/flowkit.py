"""FlowKit / FlowDB: ``events.calls``, ``events.sms``, ``events.mds``, ``infrastructure.cells`` and ``sites``."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from synthmob import schema
from synthmob.exports.files import Files, events_table, index_of
from synthmob.run import Run

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


def flowkit(run: Run, out: Files) -> None:
    cells = run.table("cells")
    first_day = _first_service(run)
    location = pc.cast(cells["cgi"], pa.string())
    tables = {"sites": _flowdb_sites(cells, first_day), "cells": _flowdb_cells(cells, first_day)}

    subs = run.table("subscribers")
    sub_ids = subs[schema.SUBSCRIBER_ID].to_numpy()
    tac = pc.cast(subs["tac"], pa.int64())
    columns = [schema.SUBSCRIBER_ID, "timestamp", schema.CELL_ID, "event_type", "direction", "counterpart_id",
               "call_id", "duration_s", "bytes_up", "bytes_down"]
    events = events_table(run, columns, ("voice", "sms", "data"), order=None)
    kinds = events["event_type"]
    numbers = events.drop_columns(["event_type", "direction"])  # sorting moves numbers only: fast
    numbers = numbers.append_column("outgoing", pc.equal(events["direction"], "out"))
    for name, kind in (("calls", "voice"), ("sms", "sms"), ("mds", "data")):
        part = numbers.filter(pc.equal(kinds, kind)).combine_chunks()
        part = part.sort_by([("timestamp", "ascending"), ("call_id", "ascending"), ("outgoing", "descending")])
        who = index_of(sub_ids, part[schema.SUBSCRIBER_ID].to_numpy(), "subscriber_id", run)
        where = index_of(cells[schema.CELL_ID].to_numpy(), part[schema.CELL_ID].to_numpy(), "cell_id", run)
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
            other = index_of(sub_ids, party, "counterpart_id", run)
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




def _table(values: dict[str, pa.Array | pa.ChunkedArray], name: str) -> pa.Table:
    """A FlowDB table in FlowDB's column order and Arrow types; columns not given are null."""
    target = FLOWDB_SCHEMAS[name]
    n = len(next(iter(values.values())))
    arrays = [values[f.name].cast(f.type) if f.name in values else pa.nulls(n, f.type) for f in target]
    return pa.Table.from_arrays(arrays, schema=target)
