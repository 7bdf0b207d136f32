"""The synthetic world: settlements, the radio network, the cell graph and the tables that describe them.

:func:`build_world` is a pure function of the scenario's world section and a random generator. A world is
built once per run and shared by every shard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pyarrow as pa
import shapely
from scipy.spatial import cKDTree

from synthmob import schema
from synthmob.cellgraph import Routes, build_graph, start_all_pairs, trunk_edges
from synthmob.network import RadioNetwork, build_network, neighbours, raster
from synthmob.scenario import World as WorldConfig
from synthmob.settlements import Settlements, place_settlements

#: Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8
#: Jobs per resident in the region as a whole (Germany: ~46 M employed / ~84 M residents, Destatis 2023).
JOBS_PER_RESIDENT = 0.55


@dataclass(frozen=True)
class World:
    """Everything about the region that does not depend on who lives in it."""

    config: WorldConfig
    settlements: Settlements
    network: RadioNetwork
    graph: nx.Graph
    routes: dict[str, Routes]
    density_per_km2: np.ndarray  # mean residential density over each cell's coverage
    residents: np.ndarray  # modelled residents in each cell's coverage
    jobs: np.ndarray  # job opportunities in each cell's coverage
    lat: np.ndarray  # of each cell's antenna
    lon: np.ndarray

    @property
    def n_cells(self) -> int:
        return self.network.n_cells

    @property
    def coverage_m2(self) -> np.ndarray:
        """Area of each cell's coverage polygon."""
        return shapely.area(self.network.coverage)

    @property
    def x_m(self) -> np.ndarray:
        return self.network.cell_x_m

    @property
    def y_m(self) -> np.ndarray:
        return self.network.cell_y_m

    def neighbour_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The cell graph's adjacency as (indptr, indices): the neighbours of cell i are
        ``indices[indptr[i]:indptr[i + 1]]``."""
        matrix = nx.to_scipy_sparse_array(self.graph, nodelist=range(self.n_cells), format="csr")
        return matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64)

    def to_latlon(self, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 latitude and longitude of region coordinates (local equirectangular projection)."""
        return to_latlon(self.config, x_m, y_m)

    def cells_table(self) -> pa.Table:
        """The ``cells`` table (see :data:`synthmob.schema.CELLS`)."""
        net = self.network
        centroids = shapely.centroid(net.coverage)
        cx, cy = shapely.get_x(centroids), shapely.get_y(centroids)
        clat, clon = self.to_latlon(cx, cy)
        n = self.n_cells
        azimuth = pa.array(net.azimuth_deg, mask=np.isnan(net.azimuth_deg), type=pa.float64())
        columns = {
            schema.CELL_ID: pa.array(np.arange(n, dtype=np.int32)),
            schema.SITE_ID: pa.array(net.cell_site.astype(np.int32)),
            "mcc": pa.array([schema.MCC] * n),
            "mnc": pa.array([schema.MNC] * n),
            "area_code": pa.array(net.area_code.astype(np.int32)),
            "ci": pa.array(net.ci.astype(np.int64)),
            "cgi": pa.array(net.cgi.tolist(), type=pa.string()),
            "radio": pa.array(net.radio.tolist(), type=pa.string()),
            "lat": pa.array(self.lat),
            "lon": pa.array(self.lon),
            "centroid_lat": pa.array(clat),
            "centroid_lon": pa.array(clon),
            "x_m": pa.array(net.cell_x_m),
            "y_m": pa.array(net.cell_y_m),
            "azimuth_deg": azimuth,
            "range_m": pa.array(net.range_m),
            "coverage_km2": pa.array(shapely.area(net.coverage) / 1e6),
            "urban": pa.array(net.urban),
            "residents": pa.array(self.residents),
            "jobs": pa.array(self.jobs),
            "coverage_wkt": pa.array(shapely.to_wkt(self.coverage_lonlat(), rounding_precision=6).tolist()),
        }
        return pa.Table.from_pydict(columns, schema=schema.CELLS)

    def coverage_lonlat(self) -> np.ndarray:
        """Coverage polygons in WGS84 (lon, lat) coordinates."""
        return shapely.transform(self.network.coverage, lambda xy: np.column_stack(self.to_latlon(xy[:, 0], xy[:, 1])[::-1]))


def to_latlon(config: WorldConfig, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 latitude and longitude of region coordinates (metres from the south-west corner)."""
    deg = 180.0 / np.pi / EARTH_RADIUS_M
    lat = config.origin.lat + np.asarray(y_m) * deg
    mid_lat = np.radians(config.origin.lat + config.height_km * 500.0 * deg)
    lon = config.origin.lon + np.asarray(x_m) * deg / np.cos(mid_lat)
    return lat, lon


def build_world(
    config: WorldConfig, *, rng: np.random.Generator, executor: Executor | None = None, parts: int = 1
) -> World:
    """Build the region described by ``config``.

    With an ``executor`` of worker processes, the route tables are computed in ``parts`` blocks side by
    side (the same tables: see :func:`synthmob.cellgraph.all_pairs`).

    Examples
    --------
    >>> from synthmob.scenario import load_scenario
    >>> world = build_world(load_scenario("tiny").world, rng=np.random.default_rng(1))
    >>> world.graph.number_of_nodes() == world.n_cells
    True
    """
    return start_world(config, rng=rng, executor=executor, parts=parts).result()


@dataclass(frozen=True)
class PendingWorld:
    """A world whose route tables are still being computed (by :func:`start_world`)."""

    layout: World  # everything but the route tables (``routes`` is empty)
    _join: Callable[[], dict[str, Routes]]

    def result(self) -> World:
        """The world with its route tables (waiting for them)."""
        return dataclasses.replace(self.layout, routes=self._join())


def start_world(
    config: WorldConfig, *, rng: np.random.Generator, executor: Executor | None = None, parts: int = 1,
    folder: Path | None = None,
) -> PendingWorld:
    """:func:`build_world`, with the route tables left to compute: everything else about the world is ready
    in ``layout``, which is all the population and the social network need, while ``executor``'s workers
    work on the tables. The world and its draws are those of :func:`build_world`. With a ``folder``, the
    tables are written there and memory-mapped (see :func:`synthmob.cellgraph.start_all_pairs`).
    """
    settlements = place_settlements(config, rng=rng)
    network = build_network(config, settlements, rng=rng)
    n = network.n_cells

    # Residents and jobs: average the density over the raster pixels each cell serves.
    px, py, _ = raster(config)
    pixel_density = settlements.density(px, py)
    _, owner = cKDTree(np.column_stack([network.cell_x_m, network.cell_y_m])).query(np.column_stack([px, py]))
    count = np.bincount(owner, minlength=n)
    centroids = shapely.centroid(network.coverage)
    at_centroid = settlements.density(shapely.get_x(centroids), shapely.get_y(centroids))
    mean_density = np.where(count > 0, np.bincount(owner, pixel_density, minlength=n) / np.maximum(count, 1), at_centroid)
    mean_jobs_density = np.where(
        count > 0,
        np.bincount(owner, pixel_density**config.jobs_exponent, minlength=n) / np.maximum(count, 1),
        at_centroid**config.jobs_exponent,
    )
    area_km2 = shapely.area(network.coverage) / 1e6
    residents = mean_density * area_km2
    jobs = mean_jobs_density * area_km2
    jobs *= JOBS_PER_RESIDENT * residents.sum() / jobs.sum()

    pairs = neighbours(network.coverage)
    x, y = network.cell_x_m, network.cell_y_m
    mid_density = settlements.density((x[pairs[:, 0]] + x[pairs[:, 1]]) / 2, (y[pairs[:, 0]] + y[pairs[:, 1]]) / 2)
    lat, lon = to_latlon(config, network.site_x_m[network.cell_site], network.site_y_m[network.cell_site])
    towns = np.flatnonzero(settlements.kind != "village")  # largest first
    _, hubs = cKDTree(np.column_stack([x, y])).query(np.column_stack([settlements.x_m[towns], settlements.y_m[towns]]))
    graph = build_graph(
        x,
        y,
        pairs,
        mid_density,
        config.travel,
        {
            "x_m": x,
            "y_m": y,
            "lat": lat,
            "lon": lon,
            "site_id": network.cell_site,
            "radio": network.radio,
            "area_code": network.area_code,
            "urban": network.urban,
            "residents": residents,
            "jobs": jobs,
        },
        trunk=trunk_edges(x, y, pairs, np.asarray(hubs)),
    )
    layout = World(
        config=config,
        settlements=settlements,
        network=network,
        graph=graph,
        routes={},
        density_per_km2=mean_density,
        residents=residents,
        jobs=jobs,
        lat=lat,
        lon=lon,
    )
    # Walking is only chosen for trips shorter than walk_max_km (see synthmob.behaviour.choose_mode).
    walk_reach = {"walk": config.travel.walk_max_km * 1000.0}
    return PendingWorld(layout, start_all_pairs(graph, executor=executor, parts=parts, folder=folder, reach_m=walk_reach))
