"""The cell graph and its shortest-time tables: connectivity, edges, paths and urbanity."""

from __future__ import annotations

import errno
import os
import pickle
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from synthmob.cellgraph import (
    Routes, all_pairs, build_graph, speeds_mps, start_all_pairs, trunk_edges, urbanity,
)
from synthmob.executors import local_processes
from synthmob.network import neighbours
from synthmob.scenario import Travel, load_scenario
from synthmob.schema import MODES
from synthmob.world import build_world, start_world


@pytest.fixture(scope="module")
def city_world():
    return build_world(load_scenario("city").world, rng=np.random.default_rng(1))


@pytest.fixture(scope="module", params=["tiny", "city"])
def world(request, tiny_world, city_world):
    return tiny_world if request.param == "tiny" else city_world


# --- the graph -----------------------------------------------------------------------------------------------
def test_graph_is_connected_with_one_node_per_cell(world):
    g = world.graph
    assert g.number_of_nodes() == world.n_cells
    assert sorted(g.nodes) == list(range(world.n_cells))
    assert nx.is_connected(g)
    for c in (0, world.n_cells // 2, world.n_cells - 1):
        attrs = g.nodes[c]
        assert attrs["x_m"] == world.x_m[c] and attrs["y_m"] == world.y_m[c]
        assert attrs["residents"] == world.residents[c] and attrs["site_id"] == world.network.cell_site[c]


def test_edges_join_touching_cells(world):
    g = world.graph
    cov = world.network.coverage
    edges = np.array(sorted((min(u, v), max(u, v)) for u, v in g.edges()))
    np.testing.assert_array_equal(edges, neighbours(cov)[np.lexsort(neighbours(cov).T[::-1])])
    shared = shapely.length(shapely.intersection(shapely.boundary(cov[edges[:, 0]]), shapely.boundary(cov[edges[:, 1]])))
    assert np.all(shared > 0)


def test_edge_distances_and_times(world):
    travel = world.config.travel
    x, y = world.x_m, world.y_m
    for u, v, e in world.graph.edges(data=True):
        assert e["distance_m"] > 0
        assert e["distance_m"] == pytest.approx(np.hypot(x[u] - x[v], y[u] - y[v]) * travel.detour_factor, rel=1e-12)
        times = {m: e[f"time_{m}_s"] for m in MODES}
        assert all(t > 0 for t in times.values())
        assert times["walk"] > times["car"] and times["walk"] > times["transit"]
        assert times["walk"] == pytest.approx(e["distance_m"] / (travel.walk_kmh / 3.6), rel=1e-12)
        # Speeds lie between their rural and urban values, or up to the trunk speed on a trunk corridor.
        car_kmh = e["distance_m"] / times["car"] * 3.6
        lo, hi = sorted((travel.car_urban_kmh, travel.car_rural_kmh))
        hi = max(hi, travel.trunk_car_kmh) if e["trunk"] else hi
        assert lo - 1e-9 <= car_kmh <= hi + 1e-9


def test_build_graph_known_answer():
    """Two cells 1 km apart in an empty countryside: rural speeds over 1.3 km."""
    travel = Travel()
    g = build_graph(
        np.array([0.0, 1000.0]),
        np.array([0.0, 0.0]),
        np.array([[0, 1]]),
        np.array([10.0]),
        travel,
        {"residents": np.array([1.0, 2.0])},
    )
    e = g.edges[0, 1]
    assert e["distance_m"] == pytest.approx(1300.0)
    assert e["time_walk_s"] == pytest.approx(1300.0 / (4.8 / 3.6))
    assert e["time_car_s"] == pytest.approx(1300.0 / (70.0 / 3.6))
    assert e["time_transit_s"] == pytest.approx(1300.0 / (45.0 / 3.6))
    assert g.nodes[1]["residents"] == 2.0 and e["trunk"] is False


def test_trunk_edges_are_fast_outside_cores_and_slowed_in_them():
    travel = Travel()
    g = build_graph(np.array([0.0, 1000.0, 2000.0]), np.zeros(3), np.array([[0, 1], [1, 2]]),
                    np.array([10.0, 1e6]), travel, {}, trunk=np.array([True, True]))
    assert g.edges[0, 1]["time_car_s"] == pytest.approx(1300.0 / (95.0 / 3.6))
    assert g.edges[0, 1]["time_transit_s"] == pytest.approx(1300.0 / (65.0 / 3.6))
    # in a dense core, half the trunk speed, but never slower than the ordinary urban speed
    assert g.edges[1, 2]["time_car_s"] == pytest.approx(1300.0 / (47.5 / 3.6))
    assert g.edges[1, 2]["time_walk_s"] == pytest.approx(1300.0 / (4.8 / 3.6))


def test_trunk_corridors_link_towns_along_neighbouring_cells():
    # a 5 x 1 strip and a side cell: the corridor from cell 0 to cell 4 runs along the strip only
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 2.0]); y = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    pairs = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [2, 5]])
    assert trunk_edges(x, y, pairs, np.array([0, 4])).tolist() == [True, True, True, True, False]
    assert not trunk_edges(x, y, pairs, np.array([2])).any()  # one town: no corridor


# --- routes --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_time_table_symmetric_with_zero_diagonal(world, mode):
    t = world.routes[mode].time_s
    assert t.dtype == np.float32 and t.shape == (world.n_cells, world.n_cells)
    assert np.all(np.diag(t) == 0)
    if mode == "walk":  # computed within walk_max_km only (see test_a_reach_keeps_every_pair_within_it_exact)
        x, y = world.x_m, world.y_m
        assert np.isfinite(t[np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) < _walk_reach(world)["walk"]]).all()
    else:
        assert np.all(np.isfinite(t))
    off = ~np.eye(world.n_cells, dtype=bool)
    assert np.all(t[off] > 0)
    both = np.isfinite(t) & np.isfinite(t.T)
    np.testing.assert_allclose(t[both], t.T[both], rtol=1e-6)
    p = world.routes[mode].predecessor
    assert np.all(np.diag(p) < 0)


def test_time_table_is_a_shortest_path_metric(world):
    t = world.routes["car"].time_s.astype(np.float64)
    rng = np.random.default_rng(0)
    i, j, k = rng.integers(0, world.n_cells, (3, 2000))
    assert np.all(t[i, k] <= t[i, j] + t[j, k] + 1e-3)
    for u, v, e in world.graph.edges(data=True):  # never slower than the direct edge
        assert t[u, v] <= e["time_car_s"] * (1 + 1e-6)


def edge_time(graph, mode, a, b):
    return graph.edges[int(a), int(b)][f"time_{mode}_s"]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_paths_follow_edges_and_add_up(data, tiny_world, city_world):
    world = data.draw(st.sampled_from([tiny_world, city_world]))
    mode = data.draw(st.sampled_from(MODES))
    n = world.n_cells
    src = data.draw(st.integers(0, n - 1))
    routes = world.routes[mode]
    dst = data.draw(st.sampled_from(np.flatnonzero(np.isfinite(routes.time_s[src])).tolist()))  # walk: within reach
    path = routes.path(src, dst)
    assert path[0] == src and path[-1] == dst
    assert len(set(path.tolist())) == len(path)  # no cycles
    total = 0.0
    for a, b in zip(path[:-1], path[1:]):
        assert world.graph.has_edge(int(a), int(b))
        total += edge_time(world.graph, mode, a, b)
        # Along a shortest path from src, time_s[src, k] is when k is passed.
        assert routes.time_s[src, b] == pytest.approx(total, rel=1e-5)
    assert total == pytest.approx(float(routes.time_s[src, dst]), rel=1e-5, abs=1e-3)
    if src == dst:
        assert path.tolist() == [src]


def test_all_pairs_on_a_known_graph():
    """A square with a slow diagonal: the route goes round."""
    g = nx.Graph()
    g.add_nodes_from(range(4))
    for u, v, t in [(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0), (3, 0, 1.0), (0, 2, 5.0)]:
        g.add_edge(u, v, distance_m=t, **{f"time_{m}_s": t * (k + 1) for k, m in enumerate(MODES)})
    routes = all_pairs(g)
    assert set(routes) == set(MODES)
    r = routes["walk"]
    assert r.time_s[0, 2] == 2.0
    assert r.path(0, 2).tolist() in ([0, 1, 2], [0, 3, 2])
    assert r.path(3, 3).tolist() == [3]
    assert routes["transit"].time_s[1, 3] == 6.0  # two edges of 3 s
    assert isinstance(r, Routes)


def _walk_reach(world):
    return {"walk": world.config.travel.walk_max_km * 1000.0}


def test_a_reach_keeps_every_pair_within_it_exact(city_world):
    """The world's walking table is exact between cells closer than walk_max_km (and on their paths), and
    the other modes are untouched: against tables computed in full."""
    full = all_pairs(city_world.graph)
    x, y = city_world.x_m, city_world.y_m
    near = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) < _walk_reach(city_world)["walk"]
    for mode in ("car", "transit"):
        np.testing.assert_array_equal(city_world.routes[mode].time_s, full[mode].time_s)
        np.testing.assert_array_equal(city_world.routes[mode].predecessor, full[mode].predecessor)
    walk = city_world.routes["walk"]
    np.testing.assert_array_equal(walk.time_s[near], full["walk"].time_s[near])
    np.testing.assert_array_equal(walk.predecessor[near], full["walk"].predecessor[near])
    finite = np.isfinite(walk.time_s)
    assert finite[near].all() and not finite.all()  # some pairs beyond the reach were left out
    np.testing.assert_array_equal(walk.time_s[finite], full["walk"].time_s[finite])  # what is there is exact
    for src, dst in np.argwhere(near)[:: max(1, int(near.sum()) // 200)]:
        assert walk.path(src, dst).tolist() == full["walk"].path(src, dst).tolist()


def test_a_pair_within_reach_but_far_along_the_graph_is_computed_in_full():
    """A ring of 12 cells 1 km apart: the two ends of the open ring are 1 km apart in a straight line but
    11 km along it, past where Dijkstra stops, so their rows are computed again without the limit."""
    n = 12
    angle = 2 * np.pi * np.arange(n) / n
    radius = 1000.0 / (2 * np.sin(np.pi / n))
    g = nx.Graph()
    g.add_nodes_from((i, {"x_m": radius * np.cos(a), "y_m": radius * np.sin(a)}) for i, a in enumerate(angle))
    for i in range(n - 1):
        g.add_edge(i, i + 1, distance_m=1000.0, **{f"time_{m}_s": 1000.0 for m in MODES})
    reached = all_pairs(g, reach_m={"walk": 1500.0})["walk"]
    assert reached.time_s[0, n - 1] == reached.time_s[n - 1, 0] == pytest.approx(11_000.0, rel=1e-6)
    assert reached.path(0, n - 1).tolist() == list(range(n))
    assert np.isfinite(reached.time_s[0]).all()  # the row computed again is whole
    assert np.isinf(reached.time_s[n // 2, 0])  # a cell whose neighbours within reach are near along the ring


def test_a_pair_exactly_at_the_reach_is_kept():
    """A caller decides "within reach" with its own arithmetic; a pair at the reach itself, to the last bit,
    is kept too, so that a rounding the other way never meets a missing route."""
    n = 12
    angle = 2 * np.pi * np.arange(n) / n
    radius = 1000.0 / (2 * np.sin(np.pi / n))
    x, y = radius * np.cos(angle), radius * np.sin(angle)
    g = nx.Graph()
    g.add_nodes_from((i, {"x_m": x[i], "y_m": y[i]}) for i in range(n))
    for i in range(n - 1):
        g.add_edge(i, i + 1, distance_m=1000.0, **{f"time_{m}_s": 1000.0 for m in MODES})
    reach = float(np.hypot(x[0] - x[n - 1], y[0] - y[n - 1]))  # the open ring's two ends, exactly
    reached = all_pairs(g, reach_m={"walk": reach})["walk"]
    assert np.isfinite(reached.time_s[0, n - 1]) and np.isfinite(reached.time_s[n - 1, 0])


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_all_pairs_in_blocks_is_the_same(city_world, parts):
    """Sources cut into blocks computed by an executor give the same tables as one call."""
    with ThreadPoolExecutor(2) as pool:
        blocks = all_pairs(city_world.graph, executor=pool, parts=parts, min_cells=0, reach_m=_walk_reach(city_world))
    for mode in MODES:
        np.testing.assert_array_equal(blocks[mode].time_s, city_world.routes[mode].time_s)
        np.testing.assert_array_equal(blocks[mode].predecessor, city_world.routes[mode].predecessor)


def test_started_tables_are_computed_meanwhile_and_joined_when_asked(city_world):
    """The blocks go to the executor from a thread (one per mode with one part): the caller does not wait
    for the submissions (a process pool starts its workers on the first), and gets the tables when it asks."""
    submitted, release = [], threading.Event()

    class Slow(ThreadPoolExecutor):
        def submit(self, *args, **kwargs):
            assert release.wait(30)
            submitted.append(args[2:4])  # the block's (lo, hi)
            return super().submit(*args, **kwargs)

    with Slow(1) as pool:
        join = start_all_pairs(city_world.graph, executor=pool, parts=1, min_cells=0, reach_m=_walk_reach(city_world))
        assert submitted == []  # returned while the first submission still waits
        release.set()
        routes = join()
    assert submitted == [(0, city_world.n_cells)] * len(MODES)
    for mode in MODES:
        np.testing.assert_array_equal(routes[mode].time_s, city_world.routes[mode].time_s)
        np.testing.assert_array_equal(routes[mode].predecessor, city_world.routes[mode].predecessor)


@pytest.mark.parametrize("started", [0, 1, 4, 9])
@pytest.mark.parametrize("into_folder", [False, True])
def test_join_computes_the_blocks_no_worker_has_started(city_world, tmp_path, started, into_folder):
    """The caller takes over the blocks still waiting for a worker: the first ``started`` submissions run,
    the rest never would; join() cancels those and computes them itself, and the tables are the same."""
    futures = []

    class Busy(Executor):
        def submit(self, fn, *args, **kwargs):
            future = Future()
            if len(futures) < started:
                future.set_result(fn(*args, **kwargs))
            else:  # a join that waited for it would fail, not hang
                timer = threading.Timer(10, lambda: future.cancelled() or future.set_exception(
                    TimeoutError("join() waited for a block that no worker will start")))
                timer.daemon = True
                timer.start()
            futures.append(future)
            return future

    join = start_all_pairs(city_world.graph, executor=Busy(), parts=3, min_cells=0, reach_m=_walk_reach(city_world),
                           folder=tmp_path / "routes" if into_folder else None)
    routes = join()
    assert len(futures) == 3 * len(MODES)
    assert [f.cancelled() for f in futures] == [i >= started for i in range(len(futures))]
    for mode in MODES:
        np.testing.assert_array_equal(routes[mode].time_s, city_world.routes[mode].time_s)
        np.testing.assert_array_equal(routes[mode].predecessor, city_world.routes[mode].predecessor)


def test_a_failed_submission_is_raised_by_join(city_world):
    class Broken(ThreadPoolExecutor):
        def submit(self, *args, **kwargs):
            raise RuntimeError("the pool is gone")

    with Broken(1) as pool:
        join = start_all_pairs(city_world.graph, executor=pool, parts=2, min_cells=0)
        with pytest.raises(RuntimeError, match="the pool is gone"):
            join()


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_tables_written_into_a_folder_are_mapped_and_the_same(city_world, tmp_path, workers):
    """With a folder, blocks write their rows into the files (from worker processes too) and the tables come
    back memory-mapped from there, as :meth:`Routes.to_files` would have saved them."""
    with local_processes(workers) as pool:
        routes = all_pairs(city_world.graph, executor=pool, parts=3, min_cells=0, folder=tmp_path / "routes",
                           reach_m=_walk_reach(city_world))
    for mode in MODES:
        assert routes[mode].files == tuple(str(tmp_path / "routes" / f"{mode}-{t}.npy") for t in ("time_s", "predecessor"))
        copy = pickle.loads(pickle.dumps(routes[mode]))
        for table in (routes[mode], copy):
            np.testing.assert_array_equal(table.time_s, city_world.routes[mode].time_s)
            np.testing.assert_array_equal(table.predecessor, city_world.routes[mode].predecessor)
            assert table.time_s.dtype == np.float32 and table.predecessor.dtype == np.int32


def test_started_world_is_the_built_world():
    config = load_scenario("city").world
    with ThreadPoolExecutor(2) as pool:
        pending = start_world(config, rng=np.random.default_rng(1), executor=pool, parts=2)
        assert pending.layout.routes == {}  # the layout is ready before the tables
        started = pending.result()
    built = build_world(config, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(started.x_m, built.x_m)
    np.testing.assert_array_equal(started.jobs, built.jobs)
    assert started.cells_table().equals(built.cells_table())
    for mode in MODES:
        np.testing.assert_array_equal(started.routes[mode].time_s, built.routes[mode].time_s)


def test_small_graphs_are_routed_in_one_call(city_world):
    class Refusing(ThreadPoolExecutor):
        def submit(self, *args, **kwargs):
            raise AssertionError("a graph under min_cells needs no workers")

    with Refusing(1) as pool:
        routes = all_pairs(city_world.graph, executor=pool, parts=2)
    np.testing.assert_array_equal(routes["car"].time_s, city_world.routes["car"].time_s)


# --- urbanity and speeds -------------------------------------------------------------------------------------
def test_urbanity_known_values():
    d = np.array([0.0, 1.0, 50.0, 100.0, np.sqrt(100.0 * 8000.0), 8000.0, 20_000.0, 1e9])
    np.testing.assert_allclose(urbanity(d), [0, 0, 0, 0, 0.5, 1, 1, 1], atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(a=st.floats(0.0, 1e6), b=st.floats(0.0, 1e6))
def test_urbanity_is_monotone_and_bounded(a, b):
    lo, hi = sorted((a, b))
    u = urbanity(np.array([lo, hi]))
    assert 0.0 <= u[0] <= u[1] <= 1.0
    if 100.0 < lo < hi < 8000.0:
        assert u[0] < u[1]


def test_speeds_move_from_rural_to_urban():
    travel = Travel()
    s = speeds_mps(travel, np.array([10.0, 8000.0]))
    assert s["walk"] * 3.6 == pytest.approx([4.8, 4.8])
    assert s["car"] * 3.6 == pytest.approx([travel.car_rural_kmh, travel.car_urban_kmh])
    assert s["transit"] * 3.6 == pytest.approx([travel.transit_rural_kmh, travel.transit_urban_kmh])


def test_new_tables_do_not_overwrite_a_file_still_mapped(tmp_path):
    """A resumed run writes new files: a shard of an earlier attempt that still maps the old ones keeps them."""
    from synthmob.cellgraph import _create_files

    old = Routes(np.ones((3, 3), np.float32), np.zeros((3, 3), np.int32)).to_files(tmp_path, "walk")
    paths = _create_files(tmp_path, "walk", 3)
    assert paths == old.files
    assert (old.time_s == 1).all()  # not truncated under the old mapping
    assert (np.load(paths[0]) == 0).all()


@pytest.mark.parametrize("code, raised", [(errno.ENOSPC, True), (errno.EOPNOTSUPP, False)])
def test_a_full_disk_fails_when_the_tables_are_created(tmp_path, monkeypatch, code, raised):
    from synthmob import cellgraph

    def fallocate(fd, offset, length):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(cellgraph.os, "posix_fallocate", fallocate, raising=False)
    if raised:
        with pytest.raises(OSError, match=os.strerror(code)):
            cellgraph._create_files(tmp_path, "car", 4)
    else:  # a filesystem without fallocate: the blocks come as they are written
        assert len(cellgraph._create_files(tmp_path, "car", 4)) == 2


def test_saved_tables_do_not_overwrite_a_file_still_mapped(tmp_path):
    old = Routes(np.ones((2, 2), np.float32), np.zeros((2, 2), np.int32)).to_files(tmp_path, "car")
    new = Routes(np.full((2, 2), 7, np.float32), np.zeros((2, 2), np.int32)).to_files(tmp_path, "car")
    assert new.files == old.files and (old.time_s == 1).all() and (new.time_s == 7).all()
