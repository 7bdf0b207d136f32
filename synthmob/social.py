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

import itertools
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_array

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
    """The ties of a social network as arrays: tie k joins ``a[k] < b[k]`` with strength ``weight[k]``."""

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
    """The social network of ``population`` (subscribers by index), as arrays of ties.

    Ties are kept in a list of insertion-ordered sets, one per subscriber (what a networkx graph keeps,
    without its cost per tie), so that a friend of a friend is drawn from the ties made so far in order.
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
    keep = targets != spatial
    # Each subscriber's contacts as a dict (ordered, no repeats), filled as if the spatial ties were made one
    # after the other: a subscriber's ends of ties, in the order the ties were drawn.
    i, j = spatial[keep], targets[keep]
    end, other = np.concatenate([i, j]), np.concatenate([j, i])
    step = np.concatenate([np.arange(len(i)), np.arange(len(i))])
    flat = other[np.lexsort((step, end))].tolist()
    bounds = np.concatenate([[0], np.cumsum(np.bincount(end, minlength=n))]).tolist()
    adj: list[dict[int, None]] = [dict.fromkeys(flat[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]

    def tie(i: int, j: int) -> None:
        adj[i][j] = None
        adj[j][i] = None

    # Triadic closure: a friend of a friend (or, with no such friend yet, anyone nearby as above).
    closers = owner[closing]
    u1, u2 = rng.random(len(closers)), rng.random(len(closers))
    for i, x, y in zip(closers.tolist(), u1.tolist(), u2.tolist()):
        friends = adj[i]
        if not friends:
            continue
        j = list(friends)[int(x * len(friends))]
        second = adj[j]
        k = list(second)[int(y * len(second))]
        if k != i:
            friends[k] = None
            adj[k][i] = None

    # Nobody is left without a contact.
    lonely = [i for i in range(n) if not adj[i]]
    for i, u in zip(lonely, rng.random(len(lonely)).tolist()):
        j = int(u * (n - 1))
        tie(i, j if j < i else j + 1)

    # Ties in the order a networkx graph lists them: by the lower end, then in the order they were made.
    # Every end of every tie at once (a dict's keys come in the order they were added), then the lower ends.
    sizes = np.fromiter(map(len, adj), np.int64, count=n)
    other = np.fromiter(itertools.chain.from_iterable(adj), np.int64, count=int(sizes.sum()))
    end = np.repeat(np.arange(n, dtype=np.int64), sizes)
    lower = other > end
    strengths = rng.lognormal(0.0, 1.0, int(lower.sum()))
    return SocialNetwork(n, end[lower], other[lower], strengths)


def build_social_network(population: Population, world: World, cfg: Events, *, rng: np.random.Generator) -> nx.Graph:
    """The social network of ``population`` as a networkx graph (nodes are subscriber ids; edges have
    ``weight``): :func:`social_network`, converted."""
    return social_network(population, world, cfg, rng=rng).graph()


def contacts(network: SocialNetwork | nx.Graph) -> Contacts:
    """Compressed adjacency of ``network`` for fast counterpart picks."""
    if isinstance(network, nx.Graph):
        network = SocialNetwork.from_graph(network)
    n = network.n
    rows = np.concatenate([network.a, network.b])
    cols = np.concatenate([network.b, network.a])
    matrix = coo_array((np.concatenate([network.weight, network.weight]), (rows, cols)), shape=(n, n)).tocsr()
    matrix.sum_duplicates()  # sorted column indices in each row
    indptr = matrix.indptr.astype(np.int64)
    weights = matrix.data.astype(np.float64)
    row = np.repeat(np.arange(n), np.diff(indptr))
    totals = np.bincount(row, weights, minlength=n)
    running = np.cumsum(weights)
    before = np.concatenate([[0.0], running])[indptr[:-1]]
    share = np.minimum((running - before[row]) / totals[row], 1.0)
    share[indptr[1:][np.diff(indptr) > 0] - 1] = 1.0  # each row ends exactly at 1
    return Contacts(indptr=indptr, indices=matrix.indices.astype(np.int64), keys=row + share)


def edges_table(network: SocialNetwork | nx.Graph) -> pa.Table:
    """The ``contacts`` table: one row per tie (a < b) with its strength."""
    if isinstance(network, nx.Graph):
        network = SocialNetwork.from_graph(network)
    order = np.lexsort((network.b, network.a))
    return pa.table(
        {"subscriber_a": network.a[order], "subscriber_b": network.b[order], "weight": network.weight[order]},
        schema=schema.CONTACTS,
    )
