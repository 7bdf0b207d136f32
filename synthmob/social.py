"""Who calls whom: a synthetic social network of the subscribers.

A networkx graph whose nodes are subscriber ids and whose edges carry a tie strength (``weight``):

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


def build_social_network(population: Population, world: World, cfg: Events, *, rng: np.random.Generator) -> nx.Graph:
    """The social network of ``population`` (nodes are subscriber ids; edges have ``weight``)."""
    n = len(population)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    if n < 2:
        return graph
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
    for cell in np.unique(home[spatial]):
        members = np.flatnonzero(home[spatial] == cell)
        d_km = np.hypot(world.x_m - world.x_m[cell], world.y_m - world.y_m[cell]) / 1000.0
        w = living * (d_km + cfg.contact_distance_km) ** -2.0
        cdf = np.cumsum(w)
        picked_cell = np.searchsorted(cdf / cdf[-1], rng.random(len(members)), side="right")
        picked_cell = np.minimum(picked_cell, world.n_cells - 1)
        offset = (rng.random(len(members)) * counts[picked_cell]).astype(np.int64)
        targets[members] = order[starts[picked_cell] + offset]
    keep = targets != spatial
    graph.add_edges_from(zip(spatial[keep].tolist(), targets[keep].tolist()))

    # Triadic closure: a friend of a friend (or, with no such friend yet, anyone nearby as above).
    closers = owner[closing]
    u1, u2 = rng.random(len(closers)), rng.random(len(closers))
    for i, a, b in zip(closers.tolist(), u1.tolist(), u2.tolist()):
        friends = list(graph.adj[i])
        if not friends:
            continue
        j = friends[int(a * len(friends))]
        second = list(graph.adj[j])
        k = second[int(b * len(second))]
        if k != i:
            graph.add_edge(i, k)

    # Nobody is left without a contact.
    lonely = [i for i in range(n) if graph.degree(i) == 0]
    for i, u in zip(lonely, rng.random(len(lonely)).tolist()):
        j = int(u * (n - 1))
        graph.add_edge(i, j if j < i else j + 1)

    edges = list(graph.edges())
    strengths = rng.lognormal(0.0, 1.0, len(edges))
    nx.set_edge_attributes(graph, dict(zip(edges, strengths.tolist())), "weight")
    return graph


def contacts(graph: nx.Graph) -> Contacts:
    """Compressed adjacency of ``graph`` for fast counterpart picks."""
    n = graph.number_of_nodes()
    matrix = nx.to_scipy_sparse_array(graph, nodelist=range(n), weight="weight", format="csr")
    indptr = matrix.indptr.astype(np.int64)
    weights = matrix.data.astype(np.float64)
    row = np.repeat(np.arange(n), np.diff(indptr))
    totals = np.bincount(row, weights, minlength=n)
    running = np.cumsum(weights)
    before = np.concatenate([[0.0], running])[indptr[:-1]]
    share = np.minimum((running - before[row]) / totals[row], 1.0)
    share[indptr[1:][np.diff(indptr) > 0] - 1] = 1.0  # each row ends exactly at 1
    return Contacts(indptr=indptr, indices=matrix.indices.astype(np.int64), keys=row + share)


def edges_table(graph: nx.Graph) -> pa.Table:
    """The ``contacts`` table: one row per tie (a < b) with its strength."""
    edges = np.array([(min(u, v), max(u, v)) for u, v in graph.edges()], dtype=np.int64).reshape(-1, 2)
    weight = np.array([w for _, _, w in graph.edges(data="weight")], dtype=np.float64)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    return pa.table(
        {"subscriber_a": edges[order, 0], "subscriber_b": edges[order, 1], "weight": weight[order]},
        schema=schema.CONTACTS,
    )
