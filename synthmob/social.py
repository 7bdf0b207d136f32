"""Who calls whom: a synthetic social network of the subscribers.

Ties between subscribers (by index), each with a strength (``weight``), as arrays (:class:`SocialNetwork`;
:meth:`SocialNetwork.graph` gives a networkx graph for analysis):

- degrees are log-normal around ``contacts_mean`` (broad, as in mobile-phone call graphs: Onnela et al.,
  PNAS 104, 2007);
- most contacts are made by distance: a contact's home cell is drawn with weight
  residents × (d + d0)^-2 from one's own home cell, so people mostly call people who live near them
  (Lambiotte et al., Physica A 387, 2008: call probability falls off as d^-2);
- a share ``triadic_closure`` of contacts is made through a friend of a friend, which gives the graph its
  clustering;
- tie strengths are log-normal, so a few contacts take most of one's calls.

Picking the counterpart of a call reads compressed adjacency arrays (:class:`Contacts`), vectorised over a
shard.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pyarrow as pa

from synthmob import schema
from synthmob.population import Population
from synthmob.scenario import Events
from synthmob.world import World


@dataclass(frozen=True)
class Contacts:
    """Compressed adjacency of the social network, for picking counterparts.

    The contacts of subscriber i are ``indices[indptr[i]:indptr[i + 1]]``; ``keys`` holds, for each of them,
    i plus the cumulative share of i's tie strength up to and including that contact, so that one
    ``searchsorted`` of ``i + u`` (u uniform in [0, 1)) picks a contact of i in proportion to tie strength.
    """

    indptr: np.ndarray  # int64 (n + 1)
    indices: np.ndarray  # int64
    keys: np.ndarray  # float64, increasing

    def degree(self, subscribers: np.ndarray) -> np.ndarray:
        """Number of contacts of each subscriber."""
        subscribers = np.asarray(subscribers, dtype=np.int64)
        return self.indptr[subscribers + 1] - self.indptr[subscribers]

    def pick(self, callers: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
        """One contact of each caller, in proportion to tie strength (vectorised).

        Raises
        ------
        ValueError
            A caller has no contact at all.
        """
        callers = np.asarray(callers, dtype=np.int64)
        if np.any(self.degree(callers) == 0):
            raise ValueError("a caller has no contact to call")
        index = np.searchsorted(self.keys, callers + rng.random(len(callers)), side="right")
        index = np.clip(index, self.indptr[callers], self.indptr[callers + 1] - 1)
        return self.indices[index]


@dataclass(frozen=True)
class SocialNetwork:
    """The ties of a social network as arrays: tie k joins ``a[k] < b[k]`` with strength ``weight[k]``; no pair
    is tied twice."""

    n: int
    a: np.ndarray  # int64
    b: np.ndarray  # int64
    weight: np.ndarray  # float64

    def graph(self) -> nx.Graph:
        """The same network as a networkx graph (nodes 0 … n-1, edges with ``weight``), for analysis."""
        graph = nx.Graph()
        graph.add_nodes_from(range(self.n))
        graph.add_weighted_edges_from(zip(self.a.tolist(), self.b.tolist(), self.weight.tolist()))
        return graph

    @classmethod
    def from_graph(cls, graph: nx.Graph) -> "SocialNetwork":
        edges = np.array([(min(u, v), max(u, v)) for u, v in graph.edges()], dtype=np.int64).reshape(-1, 2)
        weight = np.array([w for _, _, w in graph.edges(data="weight", default=1.0)], dtype=np.float64)
        return cls(graph.number_of_nodes(), edges[:, 0], edges[:, 1], weight)


def social_network(population: Population, world: World, cfg: Events, *, rng: np.random.Generator) -> SocialNetwork:
    """The social network of ``population`` (subscribers by index), as arrays of ties sorted by (a, b).

    Each subscriber draws about half their degree as stubs. A share ``triadic_closure`` of the stubs close
    a triangle: the subscriber ties to a friend of a friend, both drawn uniformly among the ties the other
    stubs made by distance. Then anyone left without a contact gets one, anyone at random. A tie drawn
    twice is kept once. Every step works on arrays of ties, without a Python object per tie, so that a
    network of millions of subscribers takes seconds.
    """
    n = len(population)
    if n < 2:
        return SocialNetwork(n, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    sigma = cfg.contacts_sigma
    degree = np.maximum(1, np.round(cfg.contacts_mean * rng.lognormal(-sigma**2 / 2, sigma, n))).astype(np.int64)
    stubs = np.maximum(1, np.round(degree / 2)).astype(np.int64)  # each edge adds to two degrees
    owner = np.repeat(np.arange(n, dtype=np.int64), stubs)
    closing = rng.random(len(owner)) < cfg.triadic_closure

    home = population.home_cell
    order = np.argsort(home, kind="stable")
    counts = np.bincount(home, minlength=world.n_cells)
    starts = np.concatenate([[0], np.cumsum(counts)])
    living = counts.astype(np.float64)

    # Spatial contacts, drawn per home cell in one batch each.
    spatial = owner[~closing]
    targets = np.empty(len(spatial), dtype=np.int64)
    spatial_home = home[spatial]
    by_home = np.argsort(spatial_home, kind="stable")  # positions grouped by home cell, ascending within
    cells, first = np.unique(spatial_home[by_home], return_index=True)
    for cell, members in zip(cells.tolist(), np.split(by_home, first[1:])):
        d_km = np.hypot(world.x_m - world.x_m[cell], world.y_m - world.y_m[cell]) / 1000.0
        w = living * (d_km + cfg.contact_distance_km) ** -2.0
        cdf = np.cumsum(w)
        picked_cell = np.searchsorted(cdf / cdf[-1], rng.random(len(members)), side="right")
        picked_cell = np.minimum(picked_cell, world.n_cells - 1)
        offset = (rng.random(len(members)) * counts[picked_cell]).astype(np.int64)
        targets[members] = order[starts[picked_cell] + offset]
    ties = _ties(spatial, targets, n)

    # Triadic closure: a friend of a friend, among the spatial ties (dropped for whoever has none).
    indptr, indices = _neighbours(ties, n)
    closers = owner[closing]
    u1, u2 = rng.random(len(closers)), rng.random(len(closers))
    friends = np.diff(indptr)
    known = friends[closers] > 0
    closers, u1, u2 = closers[known], u1[known], u2[known]
    friend = indices[indptr[closers] + np.minimum((u1 * friends[closers]).astype(np.int64), friends[closers] - 1)]
    other = indices[indptr[friend] + np.minimum((u2 * friends[friend]).astype(np.int64), friends[friend] - 1)]
    ties = _distinct(np.concatenate([ties, _ties(closers, other, n)]))

    # Nobody is left without a contact.
    lonely = np.flatnonzero(np.bincount(np.concatenate([ties // n, ties % n]), minlength=n) == 0)
    anyone = (rng.random(len(lonely)) * (n - 1)).astype(np.int64)
    ties = _distinct(np.concatenate([ties, _ties(lonely, anyone + (anyone >= lonely), n)]))

    return SocialNetwork(n, ties // n, ties % n, rng.lognormal(0.0, 1.0, len(ties)))


def _ties(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """The distinct ties among pairs (``i``, ``j``) of subscribers, self-pairs left out, as sorted keys
    ``a * n + b`` with ``a < b`` (``n`` is at most 10^8, so a key fits an int64)."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    apart = i != j
    i, j = i[apart], j[apart]
    return _distinct(np.minimum(i, j) * n + np.maximum(i, j))


def _distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct values of ``keys``, sorted: a sort and a comparison of neighbours, several times faster on
    millions of keys than ``np.unique`` (which hashes integers since numpy 2.3)."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


def _neighbours(ties: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Compressed adjacency (``indptr``, ``indices``) of the ties in sorted keys: each subscriber's
    contacts in increasing order."""
    a, b = ties // n, ties % n
    indptr = np.concatenate([[0], np.cumsum(np.bincount(a, minlength=n) + np.bincount(b, minlength=n))])
    return indptr, np.sort(np.concatenate([ties, b * n + a])) % n  # each tie from both ends, by (end, contact)


def build_social_network(population: Population, world: World, cfg: Events, *, rng: np.random.Generator) -> nx.Graph:
    """The social network of ``population`` as a networkx graph (nodes are subscriber ids; edges have
    ``weight``): :func:`social_network`, converted."""
    return social_network(population, world, cfg, rng=rng).graph()


def contacts(network: SocialNetwork | nx.Graph) -> Contacts:
    """Compressed adjacency of ``network`` for fast counterpart picks."""
    if isinstance(network, nx.Graph):
        network = SocialNetwork.from_graph(network)
    n = network.n
    rows = np.concatenate([network.a, network.b]).astype(np.int64)
    cols = np.concatenate([network.b, network.a]).astype(np.int64)
    order = np.argsort(rows * n + cols)  # by (subscriber, contact): the ties are distinct, so is each key
    row, indices = rows[order], cols[order]
    weights = np.concatenate([network.weight, network.weight]).astype(np.float64)[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))]).astype(np.int64)
    totals = np.bincount(row, weights, minlength=n)
    running = np.cumsum(weights)
    before = np.concatenate([[0.0], running])[indptr[:-1]]
    share = np.minimum((running - before[row]) / totals[row], 1.0)
    share[indptr[1:][np.diff(indptr) > 0] - 1] = 1.0  # each row ends exactly at 1
    return Contacts(indptr=indptr, indices=indices, keys=row + share)


def edges_table(network: SocialNetwork | nx.Graph) -> pa.Table:
    """The ``contacts`` table: one row per tie (a < b) with its strength."""
    if isinstance(network, nx.Graph):
        network = SocialNetwork.from_graph(network)
    a, b, weight = network.a, network.b, network.weight
    if len(a) > 1 and not np.all((a[1:] > a[:-1]) | ((a[1:] == a[:-1]) & (b[1:] > b[:-1]))):
        order = np.lexsort((b, a))  # from a graph; social_network's ties come sorted
        a, b, weight = a[order], b[order], weight[order]
    return pa.table({"subscriber_a": a, "subscriber_b": b, "weight": weight}, schema=schema.CONTACTS)
