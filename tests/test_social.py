"""The social network: shape (degrees, clustering, locality), counterpart picks, determinism, contacts table."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import synthmob
from synthmob import schema
from synthmob.pipeline import build_population, streams
from synthmob.scenario import Events, load_scenario
from synthmob.social import (
    SocialNetwork,
    _distinct,
    _neighbours,
    _ties,
    build_social_network,
    contacts,
    edges_table,
    social_network,
)
from synthmob.world import build_world

SUBSCRIBERS = 4000


# --- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def city_scenario():
    return load_scenario("city", overrides={"subscribers": SUBSCRIBERS})


@pytest.fixture(scope="module")
def city_world(city_scenario):
    return build_world(city_scenario.world, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def city_population(city_scenario, city_world):
    return build_population(city_scenario, city_world, streams(1))


@pytest.fixture(scope="module")
def city_graph(city_scenario, city_world, city_population):
    return build_social_network(city_population, city_world, city_scenario.events, rng=np.random.default_rng(2))


def _events(base: Events, **changes) -> Events:
    """``base`` with ``changes``, validated."""
    return Events.model_validate({**base.model_dump(), **changes})


def _build(population, world, cfg, seed=2):
    return build_social_network(population, world, cfg, rng=np.random.default_rng(seed))


def _clustering(graph: nx.Graph, sample: int = 1000, seed: int = 5) -> float:
    """Average clustering over a fixed random sample of nodes (clustering computed in the full graph)."""
    nodes = np.random.default_rng(seed).choice(graph.number_of_nodes(), sample, replace=False)
    return nx.average_clustering(graph, nodes=nodes.tolist())


def _contact_distance_km(graph: nx.Graph, population, world) -> np.ndarray:
    """Home-to-home distance of every tie."""
    e = np.array(list(graph.edges()), dtype=np.int64)
    h = population.home_cell
    return np.hypot(world.x_m[h[e[:, 0]]] - world.x_m[h[e[:, 1]]], world.y_m[h[e[:, 0]]] - world.y_m[h[e[:, 1]]]) / 1000


def _random_pair_distance_km(population, world, pairs: int = 20_000, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(population), (2, pairs))
    h = population.home_cell
    return np.hypot(world.x_m[h[a]] - world.x_m[h[b]], world.y_m[h[a]] - world.y_m[h[b]]) / 1000


# --- structure of the network ------------------------------------------------------------------------------
def test_nodes_are_the_subscribers(city_graph):
    assert sorted(city_graph.nodes()) == list(range(SUBSCRIBERS))


def test_no_self_loops(city_graph):
    assert nx.number_of_selfloops(city_graph) == 0


def test_every_subscriber_has_a_contact(city_graph):
    degree = np.array([d for _, d in city_graph.degree()])
    assert degree.min() >= 1


def test_every_edge_has_a_positive_weight(city_graph):
    weights = np.array([w for _, _, w in city_graph.edges(data="weight")], dtype=np.float64)
    assert len(weights) == city_graph.number_of_edges()
    assert np.all(np.isfinite(weights)) and np.all(weights > 0)


def test_mean_degree_near_contacts_mean(city_graph, city_scenario):
    degree = np.array([d for _, d in city_graph.degree()])
    target = city_scenario.events.contacts_mean
    assert abs(degree.mean() - target) <= 0.2 * target, (degree.mean(), target)


def test_degree_distribution_is_broad(city_graph):
    degree = np.array([d for _, d in city_graph.degree()])
    assert np.percentile(degree, 99) >= 2.5 * np.median(degree), (np.percentile(degree, 99), np.median(degree))


def test_clustering_well_above_random_graph(city_graph):
    # An Erdős–Rényi graph with the same nodes and edges has expected clustering equal to its density.
    clustering = _clustering(city_graph)
    density = nx.density(city_graph)
    assert clustering > 5 * density, (clustering, density)


def test_contacts_live_near_each_other(city_graph, city_population, city_world):
    ties = np.median(_contact_distance_km(city_graph, city_population, city_world))
    random_pairs = np.median(_random_pair_distance_km(city_population, city_world))
    assert ties < 0.75 * random_pairs, (ties, random_pairs)


def test_more_triadic_closure_more_clustering(city_scenario, city_world, city_population, city_graph):
    cfg = city_scenario.events
    assert cfg.triadic_closure == 0.3  # city_graph is the middle case
    clustering = [
        _clustering(_build(city_population, city_world, _events(cfg, triadic_closure=0.0))),
        _clustering(city_graph),
        _clustering(_build(city_population, city_world, _events(cfg, triadic_closure=0.6))),
    ]
    assert clustering[0] * 3 < clustering[1], clustering
    assert clustering[1] * 1.5 < clustering[2], clustering


def test_longer_contact_distance_weakens_locality(city_scenario, city_world, city_population, city_graph):
    cfg = city_scenario.events
    assert cfg.contact_distance_km == 2.0  # city_graph is the middle case
    graphs = [
        _build(city_population, city_world, _events(cfg, contact_distance_km=0.5)),
        city_graph,
        _build(city_population, city_world, _events(cfg, contact_distance_km=50.0)),
    ]
    medians = [np.median(_contact_distance_km(g, city_population, city_world)) for g in graphs]
    random_pairs = np.median(_random_pair_distance_km(city_population, city_world))
    assert medians[0] * 1.2 < medians[1], medians
    assert medians[1] * 1.3 < medians[2], medians
    # A very wide kernel makes contacts nearly as far apart as random pairs.
    assert medians[2] > 0.8 * random_pairs, (medians, random_pairs)


def test_small_populations(tiny_world, tiny_population, tiny_scenario):
    """Two subscribers: they are each other's only contact; one subscriber: no contacts, no error."""
    cfg = tiny_scenario.events
    two = tiny_population.slice(0, 2)
    graph = build_social_network(two, tiny_world, cfg, rng=np.random.default_rng(0))
    assert sorted(graph.nodes()) == [0, 1]
    assert sorted(tuple(sorted(e)) for e in graph.edges()) == [(0, 1)]
    one = tiny_population.slice(0, 1)
    graph = build_social_network(one, tiny_world, cfg, rng=np.random.default_rng(0))
    assert list(graph.nodes()) == [0] and graph.number_of_edges() == 0


def test_a_single_subscriber_run_generates(tmp_path):
    """``subscribers: 1`` is a valid scenario; the lone subscriber has nobody to call, which must not crash."""
    synthmob.generate("tiny", out=tmp_path / "one", subscribers=1)


# --- Contacts.pick -----------------------------------------------------------------------------------------
def _hand_graph() -> nx.Graph:
    """0 has contacts 1, 2, 3, 4 with weights 1, 2, 3, 4 (in scrambled insertion order); 5 – 6 is a lone tie;
    7 has contacts 0 (weight 0.01) and 6 (weight 100)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(8))
    graph.add_edge(0, 3, weight=3.0)
    graph.add_edge(6, 5, weight=2.5)
    graph.add_edge(4, 0, weight=4.0)
    graph.add_edge(0, 1, weight=1.0)
    graph.add_edge(2, 0, weight=2.0)
    graph.add_edge(7, 0, weight=0.01)
    graph.add_edge(7, 6, weight=100.0)
    return graph


def _assert_frequencies(picked: np.ndarray, graph: nx.Graph, caller: int) -> None:
    """Pick frequencies of ``caller``'s contacts match their weight shares within ~4 binomial standard errors."""
    n = len(picked)
    neighbours = list(graph.adj[caller])
    weights = np.array([graph.edges[caller, j]["weight"] for j in neighbours])
    share = weights / weights.sum()
    assert set(np.unique(picked).tolist()) <= set(neighbours)
    for j, p in zip(neighbours, share):
        observed = np.count_nonzero(picked == j) / n
        se = np.sqrt(p * (1 - p) / n)
        assert abs(observed - p) <= 4 * se + 1e-12, (caller, j, observed, p)


def test_contacts_arrays_are_consistent():
    graph = _hand_graph()
    c = contacts(graph)
    n = graph.number_of_nodes()
    assert c.indptr.shape == (n + 1,) and c.indptr[0] == 0 and c.indptr[-1] == len(c.indices) == len(c.keys)
    assert np.all(np.diff(c.keys) >= 0)
    for i in range(n):
        row = slice(c.indptr[i], c.indptr[i + 1])
        assert sorted(c.indices[row].tolist()) == sorted(graph.adj[i])
        assert c.keys[row][-1] == i + 1.0  # each row ends exactly at 1
        assert np.all(c.keys[row] > i)


def test_pick_frequencies_match_weight_shares():
    graph = _hand_graph()
    c = contacts(graph)
    rng = np.random.default_rng(11)
    for caller in (0, 7):
        _assert_frequencies(c.pick(np.full(40_000, caller), rng=rng), graph, caller)


def test_single_contact_always_picked():
    graph = _hand_graph()
    c = contacts(graph)
    rng = np.random.default_rng(12)
    assert np.all(c.pick(np.full(1000, 1), rng=rng) == 0)
    assert np.all(c.pick(np.full(1000, 4), rng=rng) == 0)
    assert np.all(c.pick(np.full(1000, 5), rng=rng) == 6)


def test_vectorised_picks_agree_with_one_at_a_time():
    graph = _hand_graph()
    c = contacts(graph)
    callers = np.array([0, 7, 2, 0, 6, 0, 5, 7] * 5000)
    together = c.pick(callers, rng=np.random.default_rng(13))
    one_by_one_rng = np.random.default_rng(14)
    alone = np.array([c.pick(np.array([i]), rng=one_by_one_rng)[0] for i in callers[:8000]])
    for caller in (0, 7, 6):
        _assert_frequencies(together[callers == caller], graph, caller)
        _assert_frequencies(alone[callers[:8000] == caller], graph, caller)
    # Callers with a single contact give the same answer whichever way.
    assert np.all(together[callers == 2] == 0) and np.all(alone[callers[:8000] == 2] == 0)
    assert np.all(together[callers == 5] == 6) and np.all(alone[callers[:8000] == 5] == 6)


def test_every_pick_is_a_contact_on_the_city_graph(city_graph):
    c = contacts(city_graph)
    rng = np.random.default_rng(15)
    callers = rng.integers(0, SUBSCRIBERS, 50_000)
    picked = c.pick(callers, rng=rng)
    assert all(city_graph.has_edge(int(a), int(b)) for a, b in zip(callers, picked))
    assert np.all(picked != callers)


def test_pick_frequencies_on_the_city_graph(city_graph):
    """A well-connected subscriber of the real graph: frequencies follow its tie strengths."""
    c = contacts(city_graph)
    caller = max(city_graph.degree(), key=lambda nd: nd[1])[0]
    _assert_frequencies(c.pick(np.full(50_000, caller), rng=np.random.default_rng(16)), city_graph, caller)


# --- determinism -------------------------------------------------------------------------------------------
def test_same_seed_same_graph(city_scenario, city_world, city_population, city_graph):
    # city_graph was built with seed 2
    again = _build(city_population, city_world, city_scenario.events, seed=2)
    assert edges_table(again).equals(edges_table(city_graph))


def test_different_seed_different_graph(city_scenario, city_world, city_population, city_graph):
    a = edges_table(city_graph)
    b = edges_table(_build(city_population, city_world, city_scenario.events, seed=22))
    assert not a.equals(b)
    pairs_a = set(zip(a["subscriber_a"].to_pylist(), a["subscriber_b"].to_pylist()))
    pairs_b = set(zip(b["subscriber_a"].to_pylist(), b["subscriber_b"].to_pylist()))
    assert pairs_a != pairs_b


# --- edges_table -------------------------------------------------------------------------------------------
def test_edges_table_shape(city_graph):
    table = edges_table(city_graph)
    assert table.schema.equals(schema.CONTACTS)
    assert table.num_rows == city_graph.number_of_edges()
    a = table["subscriber_a"].to_numpy()
    b = table["subscriber_b"].to_numpy()
    assert np.all(a < b)
    assert np.all((a[1:] > a[:-1]) | ((a[1:] == a[:-1]) & (b[1:] > b[:-1])))  # sorted, hence no duplicates
    assert len(set(zip(a.tolist(), b.tolist()))) == table.num_rows


def test_edges_table_weights_follow_the_graph(city_graph):
    table = edges_table(city_graph)
    for a, b, w in zip(*(table[k].to_pylist() for k in ("subscriber_a", "subscriber_b", "weight"))):
        assert city_graph.edges[a, b]["weight"] == w


def test_edges_table_of_hand_graph():
    table = edges_table(_hand_graph())
    assert table.to_pydict() == {
        "subscriber_a": [0, 0, 0, 0, 0, 5, 6],
        "subscriber_b": [1, 2, 3, 4, 7, 6, 7],
        "weight": [1.0, 2.0, 3.0, 4.0, 0.01, 2.5, 100.0],
    }


def test_edges_table_of_empty_graph():
    graph = nx.Graph()
    graph.add_node(0)
    table = edges_table(graph)
    assert table.schema.equals(schema.CONTACTS) and table.num_rows == 0


def test_the_arrays_and_the_graph_are_one_network(city_scenario, city_world, city_population, city_graph):
    network = social_network(city_population, city_world, city_scenario.events, rng=np.random.default_rng(2))
    assert network.n == city_graph.number_of_nodes() and len(network.a) == city_graph.number_of_edges()
    assert np.all(network.a < network.b)
    for a, b, w in zip(network.a[:500].tolist(), network.b[:500].tolist(), network.weight[:500].tolist()):
        assert city_graph.edges[a, b]["weight"] == w
    assert edges_table(network).equals(edges_table(city_graph))
    from_arrays, from_graph = contacts(network), contacts(city_graph)
    for name in ("indptr", "indices", "keys"):
        np.testing.assert_array_equal(getattr(from_arrays, name), getattr(from_graph, name))
    again = SocialNetwork.from_graph(network.graph())
    for name in ("a", "b", "weight"):
        np.testing.assert_array_equal(getattr(again, name), getattr(network, name))


def test_contacts_of_a_graph_without_weights_treat_every_tie_as_one():
    c = contacts(nx.path_graph(4))
    np.testing.assert_allclose(c.keys, [1.0, 1.5, 2.0, 2.5, 3.0, 4.0])


#: sha256 of the city network's ends and strengths (SUBSCRIBERS subscribers): pins its ties and the order
#: of their strengths, which the contacts file and every counterpart pick follow. Change it only with a
#: change of output (and of the package version).
NETWORK_DIGEST = "bbbd79bbdb203201983c3b8fdd1161658bdbc61aae6301483da2dccbaf39a7a7"


def test_the_network_of_a_known_population_is_unchanged(city_scenario, city_world, city_population):
    import hashlib

    net = social_network(city_population, city_world, city_scenario.events, rng=np.random.default_rng(2))
    assert np.all(net.a < net.b) and np.all(np.diff(net.a * SUBSCRIBERS + net.b) > 0)
    digest = hashlib.sha256()
    for column in (net.a, net.b, net.weight):
        digest.update(np.ascontiguousarray(column).tobytes())
    assert digest.hexdigest() == NETWORK_DIGEST


# --- invariants --------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(2, 120),
    closure=st.floats(0.0, 1.0),
    mean=st.floats(1.0, 40.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_network_is_sorted_distinct_and_leaves_nobody_alone(tiny_scenario, tiny_world, size, closure, mean, seed):
    """Whatever the size and parameters: ties a < b, strictly sorted by (a, b) (hence distinct), every
    subscriber in at least one, positive strengths; and the contacts arrays hold each tie from both ends."""
    population = build_population(
        tiny_scenario.model_copy(update={"subscribers": size}), tiny_world, streams(seed % 1000)
    ).slice(0, size)
    cfg = _events(tiny_scenario.events, triadic_closure=closure, contacts_mean=mean)
    net = social_network(population, tiny_world, cfg, rng=np.random.default_rng(seed))
    key = net.a * size + net.b
    assert np.all((0 <= net.a) & (net.a < net.b) & (net.b < size))
    assert np.all(np.diff(key) > 0)
    assert np.all(np.bincount(np.concatenate([net.a, net.b]), minlength=size) >= 1)
    assert np.all(net.weight > 0) and len(net.weight) == len(net.a)
    c = contacts(net)
    ends = np.repeat(np.arange(size), np.diff(c.indptr))
    assert sorted(zip(ends.tolist(), c.indices.tolist())) == sorted(
        list(zip(net.a.tolist(), net.b.tolist())) + list(zip(net.b.tolist(), net.a.tolist()))
    )


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=60))
def test_ties_of_drawn_pairs(pairs):
    """Each unordered pair once, self-pairs dropped, sorted; and each subscriber's neighbours in order."""
    i = np.array([p[0] for p in pairs], np.int64)
    j = np.array([p[1] for p in pairs], np.int64)
    ties = _ties(i, j, 10)
    expected = sorted({(min(x, y), max(x, y)) for x, y in pairs if x != y})
    assert [(int(k) // 10, int(k) % 10) for k in ties] == expected
    indptr, indices = _neighbours(ties, 10)
    for v in range(10):
        assert indices[indptr[v]:indptr[v + 1]].tolist() == sorted({b for a, b in expected if a == v} | {a for a, b in expected if b == v})


def test_distinct_is_numpys_unique():
    values = np.random.default_rng(4).integers(-50, 50, 1000)
    np.testing.assert_array_equal(_distinct(values), np.unique(values))
    assert len(_distinct(np.zeros(0, np.int64))) == 0
