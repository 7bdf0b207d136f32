"""trackintel: staypoints, triplegs and trips of the ground truth."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from synthmob import schema
from synthmob.exports.files import Files, index_of, path_steps
from synthmob.run import Run


# --- trackintel --------------------------------------------------------------------------------------------
# Layout: trackintel.io.file.read_staypoints_csv / read_triplegs_csv / read_trips_csv (pd.read_csv with
# index_col, pd.to_datetime of started_at/finished_at, geometry from WKT in 'geom') and the required columns of
# trackintel/model/staypoints.py, triplegs.py and trips.py ('user_id', 'started_at', 'finished_at'; trips also
# 'origin_staypoint_id', 'destination_staypoint_id'; timezone-aware times; Point/LineString geometries).
# GeoParquet: geoparquet.org spec 1.0.0 (WKB; a column without "crs" is OGC:CRS84, i.e. lon/lat WGS84).
def trackintel(run: Run, out: Files) -> None:
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

    stay_cell = index_of(cell_ids, stays[schema.CELL_ID].to_numpy(), "cell_id", run)
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

    owner, step_cell, _ = path_steps(run, trips, cells)
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
