"""Zones: the spatial units insights are counted in, and which cell belongs to which.

Three kinds, named by a short text (the ``zones`` argument of :func:`synthmob.insights.insights`):

``cell``
    Every radio cell is a zone; ``zone_id`` is the ``cell_id`` and the zone's polygon is the cell's coverage.
``area``
    The location (tracking) area: ``zone_id`` is the cells' ``area_code`` (LAC/TAC); the polygon is the union
    of its cells' coverage. The coarsest unit an operator sees for idle phones.
``grid:<metres>``
    A square grid of ``<metres>`` sides anchored at the region's south-west corner, as Smart Steps and
    FlowKit aggregate to regular grids or admin units. A cell belongs to the square holding its reference point
    (``x_m``, ``y_m``); ``zone_id`` is ``"g<column>_<row>"`` (column = ``floor(x_m / size)``, row =
    ``floor(y_m / size)``), the same for every run of the same world. Only squares that hold a cell are zones.

A zone's ``centroid_lat``/``centroid_lon`` is the centroid of its polygon; polygons are WGS84 (lon, lat) WKT.

Examples
--------
>>> str(parse_zones("grid:500")), parse_zones("grid:500").size_m
('grid:500', 500.0)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from synthmob import schema
from synthmob.errors import SynthmobError
from synthmob.scenario import World as WorldConfig
from synthmob.world import to_latlon

#: The valid forms of a zone specification, for error messages and the command line's help.
FORMS = ('"cell"', '"area"', '"grid:<metres>" (e.g. "grid:1000")')
#: Columns of ``zones.parquet``, in order (``zone_id`` is int32 for cell and area, a string for grid).
ZONE_COLUMNS = ("zone_id", "centroid_lat", "centroid_lon", "geometry_wkt")
_GRID = re.compile(r"grid:(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class ZoneSpec:
    """A parsed zone specification: ``kind`` is ``cell``, ``area`` or ``grid``; ``size_m`` the grid's side."""

    kind: str
    size_m: float | None = None

    def __str__(self) -> str:
        if self.kind != "grid":
            return self.kind
        size = self.size_m
        return f"grid:{int(size)}" if float(size).is_integer() else f"grid:{size}"


def parse_zones(spec: str | ZoneSpec) -> ZoneSpec:
    """Parse ``"cell"``, ``"area"`` or ``"grid:<metres>"``.

    Raises
    ------
    SynthmobError
        The text is none of these, or the grid size is not a positive number of metres.

    Examples
    --------
    >>> parse_zones("area")
    ZoneSpec(kind='area', size_m=None)
    >>> parse_zones("hex:7")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    synthmob.errors.SynthmobError: zones: got 'hex:7'; valid forms are "cell", "area", "grid:<metres>" ...
    """
    if isinstance(spec, ZoneSpec):
        return spec
    text = spec.strip().lower() if isinstance(spec, str) else None
    if text in ("cell", "area"):
        return ZoneSpec(text)
    match = _GRID.fullmatch(text) if text is not None else None
    if match is None:
        raise SynthmobError(f"zones: got {spec!r}; valid forms are {', '.join(FORMS)}")
    size = float(match.group(1))
    if not (math.isfinite(size) and size >= 1.0):
        raise SynthmobError(f"zones: got {spec!r}; a grid's side must be at least 1 metre, e.g. \"grid:1000\"")
    return ZoneSpec("grid", size)


def assign_zones(
    cells: pa.Table, spec: str | ZoneSpec, *, world: WorldConfig | None = None
) -> tuple[pa.Table, pa.Table]:
    """The zone of every cell, and the zones themselves.

    Parameters
    ----------
    cells : pyarrow.Table
        The run's ``cells`` table (``cell_id``, ``area_code``, ``x_m``, ``y_m``, ``coverage_wkt``).
    spec : str or ZoneSpec
        ``"cell"``, ``"area"`` or ``"grid:<metres>"``.
    world : synthmob.scenario.World, optional
        The run's world section (``Run.manifest["scenario"]["world"]``); needed for grid squares, whose corners
        are converted to WGS84 with :func:`synthmob.world.to_latlon`, the projection the run itself used.

    Returns
    -------
    cell_zone : pyarrow.Table
        ``cell_id`` (int32) and ``zone_id``, one row per cell.
    zones : pyarrow.Table
        One row per zone: ``zone_id``, ``centroid_lat``, ``centroid_lon``, ``geometry_wkt``, sorted by ``zone_id``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> cells = pa.table({"cell_id": pa.array([0, 1, 2], pa.int32()), "area_code": pa.array([7, 7, 9], pa.int32()),
    ...                   "x_m": [100.0, 900.0, 1500.0], "y_m": [100.0, 300.0, 200.0],
    ...                   "coverage_wkt": ["POLYGON ((0 0, 1 0, 1 1, 0 0))"] * 3})
    >>> cell_zone, zones = assign_zones(cells, "area")
    >>> cell_zone["zone_id"].to_pylist(), zones["zone_id"].to_pylist()
    ([7, 7, 9], [7, 9])
    >>> assign_zones(cells, "grid:1000", world=None)[0]["zone_id"].to_pylist()
    ['g0_0', 'g0_0', 'g1_0']
    """
    spec = parse_zones(spec)
    cell_id = pc.cast(cells[schema.CELL_ID], pa.int32())
    if spec.kind == "cell":
        zone = cell_id
    elif spec.kind == "area":
        zone = pc.cast(cells["area_code"], pa.int32())
    else:
        col = np.floor(cells["x_m"].to_numpy() / spec.size_m).astype(np.int64)
        row = np.floor(cells["y_m"].to_numpy() / spec.size_m).astype(np.int64)
        zone = pa.array([f"g{c}_{r}" for c, r in zip(col.tolist(), row.tolist())], pa.string())
    cell_zone = pa.table({schema.CELL_ID: cell_id, "zone_id": zone})
    return cell_zone, _zone_polygons(cells, cell_zone, spec, world)


def _zone_polygons(cells: pa.Table, cell_zone: pa.Table, spec: ZoneSpec, world: WorldConfig | None) -> pa.Table:
    zone = cell_zone["zone_id"].combine_chunks()
    ids = pc.unique(zone).sort()
    if spec.kind == "grid" and world is not None:
        col_row = np.array([text[1:].split("_") for text in ids.to_pylist()], dtype=np.int64).reshape(-1, 2)
        x0, y0 = col_row[:, 0] * spec.size_m, col_row[:, 1] * spec.size_m
        corners_x = np.stack([x0, x0 + spec.size_m, x0 + spec.size_m, x0, x0], axis=1)
        corners_y = np.stack([y0, y0, y0 + spec.size_m, y0 + spec.size_m, y0], axis=1)
        lat, lon = to_latlon(world, corners_x, corners_y)
        polygons = shapely.polygons(np.stack([lon, lat], axis=2))
    else:  # a cell's coverage, or the union of its zone's cells (a grid without its world: the same)
        coverage = shapely.from_wkt(cells["coverage_wkt"].to_numpy(zero_copy_only=False))
        index = pc.index_in(zone, ids).to_numpy()
        if spec.kind == "cell":
            polygons = np.empty(len(ids), dtype=object)
            polygons[index] = coverage
        else:
            order = np.argsort(index, kind="stable")
            members = np.split(coverage[order], np.cumsum(np.bincount(index, minlength=len(ids)))[:-1])
            polygons = np.array([shapely.union_all(group) for group in members], dtype=object)
    centroid = shapely.centroid(polygons)
    return pa.table(
        {
            "zone_id": ids,
            "centroid_lat": pa.array(shapely.get_y(centroid), pa.float64()),
            "centroid_lon": pa.array(shapely.get_x(centroid), pa.float64()),
            "geometry_wkt": pa.array(shapely.to_wkt(polygons, rounding_precision=6).tolist(), pa.string()),
        }
    )
