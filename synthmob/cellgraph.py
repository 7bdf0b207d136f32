"""The cell graph and travel on it.

Cells are nodes (with position and attributes); an edge joins two cells whose coverage polygons share a
boundary and carries its road distance and a travel time for each mode. Speeds move from rural to urban
values with the logarithm of density at the edge's midpoint. Edges on a *trunk corridor* (the shortest
chain of cells between two nearby towns, or a town and the largest city: where motorways and regional
rail run) are faster, so that long trips are not made at country-lane and bus speeds. Shortest-time paths between every pair of
cells are computed once per world with scipy's sparse-graph Dijkstra (much faster than per-query networkx);
a trip reads its duration and route from those tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

import errno
import os
import threading

import networkx as nx
import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components, dijkstra

from synthmob.scenario import Travel
from synthmob.schema import MODES

#: Densities (residents/km²) at which speeds are fully rural and fully urban.
_RURAL_DENSITY = 100.0
_CORE_DENSITY = 8000.0


def urbanity(density_per_km2: np.ndarray) -> np.ndarray:
    """0 in the countryside, 1 in a dense centre, log-linear in between."""
    lo, hi = np.log(_RURAL_DENSITY), np.log(_CORE_DENSITY)
    return np.clip((np.log(np.maximum(density_per_km2, 1e-9)) - lo) / (hi - lo), 0.0, 1.0)


def speeds_mps(travel: Travel, density_per_km2: np.ndarray) -> dict[str, np.ndarray]:
    """Speed of each mode (m/s) at the given densities."""
    u = urbanity(density_per_km2)
    kmh = {
        "walk": np.full_like(u, travel.walk_kmh),
        "car": travel.car_rural_kmh + (travel.car_urban_kmh - travel.car_rural_kmh) * u,
        "transit": travel.transit_rural_kmh + (travel.transit_urban_kmh - travel.transit_rural_kmh) * u,
    }
    return {mode: v / 3.6 for mode, v in kmh.items()}


def trunk_edges(x_m: np.ndarray, y_m: np.ndarray, pairs: np.ndarray, hubs: np.ndarray, *, nearest: int = 3) -> np.ndarray:
    """Which edges (rows of ``pairs``) lie on a trunk corridor between hub cells.

    Each hub is linked to its ``nearest`` nearest hubs and to the first hub (the largest settlement); a
    link follows the shortest-distance chain of neighbouring cells.

    Examples
    --------
    Four cells in a row; a corridor between the two ends covers every edge:

    >>> x = np.array([0.0, 1.0, 2.0, 3.0]); y = np.zeros(4)
    >>> trunk_edges(x, y, np.array([[0, 1], [1, 2], [2, 3]]), np.array([0, 3])).tolist()
    [True, True, True]
    """
    n = len(x_m)
    on = np.zeros(len(pairs), dtype=bool)
    hubs = np.asarray(hubs, dtype=np.int64)
    hubs = hubs[np.sort(np.unique(hubs, return_index=True)[1])]  # distinct, in the order given
    if len(hubs) < 2 or len(pairs) == 0:
        return on
    i, j = pairs[:, 0], pairs[:, 1]
    length = np.hypot(x_m[i] - x_m[j], y_m[i] - y_m[j])
    matrix = csr_array((np.maximum(length, 1e-3), (i, j)), shape=(n, n))
    _, pred = dijkstra(matrix, directed=False, indices=hubs, return_predecessors=True)
    gap = np.hypot(x_m[hubs][:, None] - x_m[hubs][None, :], y_m[hubs][:, None] - y_m[hubs][None, :])
    np.fill_diagonal(gap, np.inf)
    links = {(a, b) for a in range(len(hubs)) for b in np.argsort(gap[a])[: min(nearest, len(hubs) - 1)]}
    links |= {(a, 0) for a in range(1, len(hubs))}
    index = {(int(a), int(b)): k for k, (a, b) in enumerate(pairs)}
    for a, b in links:
        node, row = int(hubs[b]), pred[a]
        while node != hubs[a] and node >= 0:
            prev = int(row[node])
            k = index.get((prev, node), index.get((node, prev)))
            if k is not None:
                on[k] = True
            node = prev
    return on


@dataclass(frozen=True)
class Routes:
    """All-pairs shortest-time tables for one mode.

    ``time_s[i, j]`` is the fastest travel time from cell i to cell j; ``predecessor[i, j]`` is the cell
    before j on that path (-1 on the diagonal). Along a shortest path from i, ``time_s[i, k]`` is the time
    at which cell k's reference point is passed. A mode computed only within a reach (see
    :func:`start_all_pairs`) has ``inf`` and -9999 for some pairs beyond it.
    """

    time_s: np.ndarray  # float32 (n, n)
    predecessor: np.ndarray  # int32 (n, n)
    files: tuple[str, str] | None = field(default=None, compare=False)  # when memory-mapped: where from

    def to_files(self, folder: Path, name: str) -> "Routes":
        """The same tables saved under ``folder`` and memory-mapped from there.

        A mapped :class:`Routes` pickles as its file names, so worker processes map the files, sharing one
        copy in the page cache, instead of each receiving and holding its own (hundreds of MB on a region).

        Examples
        --------
        >>> import pickle, tempfile
        >>> routes = Routes(np.zeros((2, 2), np.float32), np.full((2, 2), -1, np.int32))
        >>> mapped = routes.to_files(Path(tempfile.mkdtemp()), "walk")
        >>> copy = pickle.loads(pickle.dumps(mapped))
        >>> len(pickle.dumps(mapped)) < 1000, copy.files == mapped.files, bool((copy.time_s == 0).all())
        (True, True, True)
        """
        paths = _new_files(folder, name)
        np.save(paths[0], self.time_s)
        np.save(paths[1], self.predecessor)
        return _mapped(*paths)

    def __reduce__(self):
        if self.files is not None:
            return (_mapped, self.files)
        return (Routes, (self.time_s, self.predecessor))

    def path(self, src: int, dst: int) -> np.ndarray:
        """Cells from ``src`` to ``dst`` inclusive, along the fastest path."""
        row = self.predecessor[src]
        out = [dst]
        node = dst
        while node != src:
            node = int(row[node])
            out.append(node)
        out.reverse()
        return np.asarray(out, dtype=np.int32)


def _mapped(time_path: str, predecessor_path: str) -> Routes:
    # Plain ndarray views of the maps: indexing a np.memmap subclass costs far more per element access.
    time_s = np.load(time_path, mmap_mode="r").view(np.ndarray)
    predecessor = np.load(predecessor_path, mmap_mode="r").view(np.ndarray)
    return Routes(time_s, predecessor, files=(time_path, predecessor_path))


def build_graph(
    x_m: np.ndarray,
    y_m: np.ndarray,
    pairs: np.ndarray,
    edge_density_per_km2: np.ndarray,
    travel: Travel,
    node_attributes: dict[str, np.ndarray],
    trunk: np.ndarray | None = None,
) -> nx.Graph:
    """The cell graph: nodes with attributes, edges with ``distance_m``, ``trunk`` and ``time_<mode>_s``.

    On a ``trunk`` edge cars and public transport go at the trunk speeds of ``travel``, slowed in dense
    centres (to half in a core) but never below the ordinary speed there.
    """
    graph = nx.Graph()
    n = len(x_m)
    names = list(node_attributes)
    columns = [node_attributes[k].tolist() for k in names]
    graph.add_nodes_from((i, dict(zip(names, values))) for i, values in zip(range(n), zip(*columns)))
    i, j = pairs[:, 0], pairs[:, 1]
    distance = np.hypot(x_m[i] - x_m[j], y_m[i] - y_m[j]) * travel.detour_factor
    speeds = speeds_mps(travel, edge_density_per_km2)
    trunk = np.zeros(len(pairs), dtype=bool) if trunk is None else np.asarray(trunk, dtype=bool)
    slow = 1.0 - 0.5 * urbanity(edge_density_per_km2)
    for mode, kmh in (("car", travel.trunk_car_kmh), ("transit", travel.trunk_transit_kmh)):
        speeds[mode] = np.where(trunk, np.maximum(speeds[mode], kmh / 3.6 * slow), speeds[mode])
    times = {mode: distance / speeds[mode] for mode in MODES}
    graph.add_edges_from(
        (int(a), int(b), {"distance_m": float(d), "trunk": bool(trunk[k]),
                          **{f"time_{m}_s": float(times[m][k]) for m in MODES}})
        for k, (a, b, d) in enumerate(zip(i, j, distance))
    )
    return graph


def all_pairs(
    graph: nx.Graph, *, executor: Executor | None = None, parts: int = 1, min_cells: int = 1500,
    folder: Path | None = None, reach_m: Mapping[str, float] | None = None,
) -> dict[str, Routes]:
    """Shortest-time tables for every mode, from the graph's ``time_<mode>_s`` edge weights.

    With an ``executor`` (worker processes: scipy's Dijkstra holds the GIL) and at least ``min_cells`` cells
    (below that, starting the workers costs more than they save: ``city``'s 738 cells take 0.3 s), each
    mode's sources are cut into ``parts`` blocks computed by the executor; a source's row does not depend
    on the others, so the tables are the same. With a ``folder``, the tables are saved there and come back
    memory-mapped (see :func:`start_all_pairs`, also for ``reach_m``).
    """
    return start_all_pairs(graph, executor=executor, parts=parts, min_cells=min_cells, folder=folder,
                           reach_m=reach_m)()


def start_all_pairs(
    graph: nx.Graph, *, executor: Executor | None = None, parts: int = 1, min_cells: int = 1500,
    folder: Path | None = None, reach_m: Mapping[str, float] | None = None,
) -> Callable[[], dict[str, Routes]]:
    """:func:`all_pairs`, started: the blocks are submitted to ``executor`` now, so the caller can do other work
    meanwhile. The function returned computes itself the blocks no worker has started yet (the last first,
    as the workers go on from the first), waits for the others and joins the tables. Without an executor (or
    for a small graph) the tables are computed when the function is called.

    The blocks are submitted from a thread: a pool of processes starts its workers on the first submission,
    which the caller need not wait for. With a ``folder``, each block writes its rows straight into the
    tables' files there (as :meth:`Routes.to_files` would save them) and the tables come back memory-mapped,
    so that hundreds of MB are neither sent back from the workers nor written again.

    ``reach_m`` gives modes that are only ever taken between cells less than so many metres apart in a
    straight line (walking): their tables are exact for every such pair (and along its path), and may hold
    ``inf`` beyond. Dijkstra then stops at twice the time the reach takes at the graph's slowest speed of
    the mode; a source row that leaves a pair within reach unreached is computed again in full. On
    ``region`` the walking table then costs about a quarter of each of the others (0.4 s against 1.4 s).
    """
    n = graph.number_of_nodes()
    xy = (np.array([graph.nodes[i]["x_m"] for i in range(n)]), np.array([graph.nodes[i]["y_m"] for i in range(n)])) \
        if reach_m else None
    edges = np.array([(u, v) for u, v in graph.edges()], dtype=np.int64).reshape(-1, 2)
    matrices = {}
    for mode in MODES:
        w = np.array([graph.edges[u, v][f"time_{mode}_s"] for u, v in edges], dtype=np.float64)
        matrix = csr_array((w, (edges[:, 0], edges[:, 1])), shape=(n, n))
        count, _ = connected_components(matrix, directed=False)
        if count != 1:  # pragma: no cover - a Voronoi tiling of a rectangle is always connected
            raise RuntimeError(f"the cell graph has {count} separate parts; it must be connected")
        matrices[mode] = matrix
    reach = {mode: _Reach.of(matrices[mode], edges, xy, metres) for mode, metres in (reach_m or {}).items()}
    if executor is None or n < min_cells:

        def compute() -> dict[str, Routes]:
            routes = {mode: Routes(*_shortest(matrix, 0, n, reach=reach.get(mode))) for mode, matrix in matrices.items()}
            return routes if folder is None else {mode: r.to_files(folder, mode) for mode, r in routes.items()}

        return compute
    files = {mode: _create_files(folder, mode, n) for mode in MODES} if folder is not None else dict.fromkeys(MODES)
    bounds = np.linspace(0, n, max(1, min(parts, n)) + 1).astype(int)
    ranges = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    blocks: dict[str, list[Future]] = {}
    failed: list[BaseException] = []

    def submit() -> None:
        try:
            for mode, matrix in matrices.items():
                blocks[mode] = [
                    executor.submit(_shortest, matrix, lo, hi, files[mode], reach=reach.get(mode)) for lo, hi in ranges
                ]
        except BaseException as exc:  # raised to the caller by join()
            failed.append(exc)

    submitter = threading.Thread(target=submit, name="synthmob-routes", daemon=True)
    submitter.start()

    def join() -> dict[str, Routes]:
        submitter.join()
        if failed:
            raise failed[0]
        # This process helps: it takes the blocks that no worker has started, the last first, while the
        # workers go on from the first. A block is computed once, here or there.
        here: dict[tuple[str, int], tuple[np.ndarray, np.ndarray] | None] = {}
        for mode in reversed(MODES):
            for (lo, hi), future in zip(reversed(ranges), reversed(blocks[mode])):
                if future.cancel():
                    here[mode, lo] = _shortest(matrices[mode], lo, hi, files[mode], reach=reach.get(mode))
        routes = {}
        for mode in MODES:
            futures = blocks.pop(mode)  # each block is dropped once joined
            rows = [here.pop((mode, lo)) if future.cancelled() else future.result()
                    for (lo, _), future in zip(ranges, futures)]
            if files[mode] is not None:
                routes[mode] = _mapped(*files[mode])
            else:
                routes[mode] = Routes(np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows]))
            del rows, futures
        return routes

    return join


def _create_files(folder: Path, name: str, n: int) -> tuple[str, str]:
    """Empty ``n`` × ``n`` tables in the files :meth:`Routes.to_files` would write, for blocks to fill."""
    paths = _new_files(folder, name)
    for path, dtype in zip(paths, (np.float32, np.int32)):
        np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n, n)).flush()
        _reserve(path)
    return paths


def _new_files(folder: Path, name: str) -> tuple[str, str]:
    """Where a mode's tables are saved in ``folder``, with any earlier files there unlinked: the tables are
    written into new files, as a shard of an interrupted attempt may still map the old ones."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = (str(folder / f"{name}-time_s.npy"), str(folder / f"{name}-predecessor.npy"))
    for path in paths:
        Path(path).unlink(missing_ok=True)
    return paths


def _reserve(path: str) -> None:
    """Allocate a sparse file's blocks now, so that a full disk is an OSError here, not a signal that kills the
    worker writing into its mapping."""
    if not hasattr(os, "posix_fallocate"):  # pragma: no cover - not POSIX
        return
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            # a filesystem without fallocate: the blocks are allocated as they are written


@dataclass(frozen=True)
class _Reach:
    """Which pairs a mode's table must hold: those less than ``metres`` apart; Dijkstra stops at ``limit_s``."""

    metres: float
    limit_s: float
    x_m: np.ndarray
    y_m: np.ndarray

    @classmethod
    def of(cls, matrix: csr_array, edges: np.ndarray, xy: tuple[np.ndarray, np.ndarray], metres: float) -> "_Reach":
        x, y = xy
        length = np.hypot(x[edges[:, 0]] - x[edges[:, 1]], y[edges[:, 0]] - y[edges[:, 1]])
        weight = matrix[edges[:, 0], edges[:, 1]]
        slowest = float(np.max(weight / np.maximum(length, 1e-9))) if len(edges) else 0.0  # s per straight metre
        return cls(float(metres), 2.0 * metres * slowest, x, y)

    def missed(self, lo: int, time_s: np.ndarray) -> np.ndarray:
        """Rows (from ``lo``) of ``time_s`` that leave a pair within reach unreached."""
        missed = []
        for first in range(0, len(time_s), 256):  # 256 rows at a time: a few MB, not the whole block's
            rows = np.arange(lo + first, lo + min(first + 256, len(time_s)))
            dx, dy = self.x_m[rows, None] - self.x_m[None, :], self.y_m[rows, None] - self.y_m[None, :]
            # A hair beyond the reach too: a caller's own distance (math.hypot) may round the other way.
            unreached = (np.hypot(dx, dy) <= self.metres * (1 + 1e-9)) & np.isinf(time_s[rows - lo])
            missed.append(rows[unreached.any(axis=1)] - lo)
        return np.concatenate(missed) if missed else np.zeros(0, np.int64)


def _shortest(
    matrix: csr_array, lo: int, hi: int, files: tuple[str, str] | None = None, *, reach: _Reach | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows ``lo`` to ``hi`` of the shortest-time and predecessor tables of an undirected graph: returned,
    or written into the tables' ``files`` (from :func:`_create_files`). With a ``reach``, exact for the pairs
    within it (see :func:`start_all_pairs`)."""
    indices = np.arange(lo, hi)
    if reach is None:
        time_s, pred = dijkstra(matrix, directed=False, indices=indices, return_predecessors=True)
    else:
        time_s, pred = dijkstra(matrix, directed=False, indices=indices, return_predecessors=True, limit=reach.limit_s)
        again = reach.missed(lo, time_s)
        if len(again):
            time_s[again], pred[again] = dijkstra(matrix, directed=False, indices=indices[again], return_predecessors=True)
    if files is None:
        return time_s.astype(np.float32), pred.astype(np.int32)
    for path, rows in zip(files, (time_s, pred)):
        table = np.load(path, mmap_mode="r+")
        table[lo:hi] = rows
        table.flush()
        del table
    return None
