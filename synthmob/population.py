"""Synthetic subscribers: who they are, where they live, where they work or study.

Everything here is vectorised over the whole population and drawn from one generator, so the population is
a pure function of the scenario and its seed, whatever the number of workers later used to simulate it.

- Age band and gender come from the scenario's population pyramid; the persona from weights per age band.
- A resident's home cell is drawn in proportion to the residents of each cell's coverage; a visitor's
  lodging in proportion to jobs (hotels and sights cluster where jobs do).
- Work places (commuters, shift workers) are drawn from job opportunities and school or university places
  (students) from residents, by a gravity model (the default) or by the radiation model (Simini, González,
  Maritan & Barabási, Nature 484, 2012).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from synthmob import schema
from synthmob.cellgraph import urbanity
from synthmob.scenario import Scenario
from synthmob.world import World

NO_CELL = -1


@dataclass(frozen=True)
class Population:
    """Subscribers as columns; row i is subscriber i."""

    subscriber_id: np.ndarray  # int64
    age_band: np.ndarray  # str
    gender: np.ndarray  # str
    persona: np.ndarray  # str
    home_cell: np.ndarray  # int32
    work_cell: np.ndarray  # int32, NO_CELL when none
    car: np.ndarray  # bool
    shard: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.subscriber_id)

    def slice(self, start: int, stop: int) -> "Population":
        """Subscribers ``start`` to ``stop`` (exclusive)."""
        return Population(**{k: getattr(self, k)[start:stop] for k in self.__dataclass_fields__})

    def to_table(self) -> pa.Table:
        """The model's part of the ``subscribers`` table (see :data:`synthmob.schema.POPULATION`)."""
        work = pa.array(self.work_cell, mask=self.work_cell == NO_CELL, type=pa.int32())
        return pa.Table.from_pydict(
            {
                schema.SUBSCRIBER_ID: pa.array(self.subscriber_id, type=pa.int64()),
                "shard": pa.array(self.shard, type=pa.int32()),
                "age_band": pa.array(self.age_band.tolist(), type=pa.string()),
                "gender": pa.array(self.gender.tolist(), type=pa.string()),
                "persona": pa.array(self.persona.tolist(), type=pa.string()),
                "home_cell": pa.array(self.home_cell, type=pa.int32()),
                "work_cell": work,
                "car": pa.array(self.car, type=pa.bool_()),
            },
            schema=schema.POPULATION,
        )


def synthesise(
    scenario: Scenario,
    world: World,
    *,
    rng: np.random.Generator,
    first: int = 0,
    count: int | None = None,
    places: "Destinations | None" = None,
) -> Population:
    """Draw subscribers ``first`` to ``first + count`` (default: all of the scenario's) from ``rng``.

    A run draws its population shard by shard, each block from its own stream, so that a subscriber does
    not depend on how many others are generated after it. Pass the same ``places`` to every block to
    share its cache of destination distributions.

    Examples
    --------
    >>> from synthmob.scenario import load_scenario
    >>> from synthmob.world import build_world
    >>> s = load_scenario("tiny")
    >>> pop = synthesise(s, build_world(s.world, rng=np.random.default_rng(0)), rng=np.random.default_rng(1))
    >>> len(pop) == s.subscribers
    True
    """
    places = places or Destinations(world, scenario)
    population, unplaced = draw_people(scenario, world, rng=rng, first=first, count=count)
    return place(population, unplaced, places)


def draw_people(
    scenario: Scenario, world: World, *, rng: np.random.Generator, first: int = 0, count: int | None = None,
) -> tuple[Population, list[Unplaced]]:
    """:func:`synthesise` without looking up the places of work and study: the population (``work_cell``
    still :data:`NO_CELL`) and what :func:`place` needs to fill them in. The draws are those of
    :func:`synthesise`."""
    n = scenario.subscribers - first if count is None else count
    cfg = scenario.population
    bands = [b.age_band for b in cfg.pyramid]
    joint = np.array([[b.female, b.male] for b in cfg.pyramid], dtype=np.float64).ravel()
    pick = rng.choice(len(joint), size=n, p=joint / joint.sum())
    age_band = np.array(bands, dtype=object)[pick // 2]
    gender = np.array(schema.GENDERS, dtype=object)[pick % 2]

    persona = np.empty(n, dtype=object)
    u = rng.random(n)
    for band in bands:
        weights = cfg.personas[band]
        names = list(weights)
        cdf = np.cumsum(np.array([weights[k] for k in names], dtype=np.float64))
        members = age_band == band
        index = np.searchsorted(cdf / cdf[-1], u[members], side="right")
        persona[members] = np.array(names, dtype=object)[np.minimum(index, len(names) - 1)]
    persona[rng.random(n) < cfg.visitor_share] = "visitor"

    visitor = persona == "visitor"
    home = np.empty(n, dtype=np.int32)
    home[~visitor] = _draw(world.residents, int((~visitor).sum()), rng)
    home[visitor] = _draw(world.jobs, int(visitor.sum()), rng)

    travel = scenario.world.travel
    car_share = travel.car_ownership_rural + (travel.car_ownership_urban - travel.car_ownership_rural) * urbanity(
        world.density_per_km2[home]
    )
    car = (rng.random(n) < car_share) & ~visitor & (persona != "student")  # students: bike, bus, parents

    # Where workers work and students study: the variates are drawn here, the places looked up by the caller
    # (for a whole population at once, in build_population).
    unplaced = []
    for kind, who in (("jobs", np.isin(persona, ("commuter", "shift_worker"))), ("schools", persona == "student")):
        index = np.flatnonzero(who)
        unplaced.append(Unplaced(kind, index, rng.random(len(index))))

    ids = np.arange(first, first + n, dtype=np.int64)
    population = Population(
        subscriber_id=ids,
        age_band=age_band,
        gender=gender,
        persona=persona,
        home_cell=home,
        work_cell=np.full(n, NO_CELL, dtype=np.int32),
        car=car,
        shard=(ids // scenario.shard_size).astype(np.int32),
    )
    return population, unplaced


@dataclass(frozen=True)
class Unplaced:
    """Subscribers (by position) whose place of ``kind`` (``jobs`` or ``schools``) is still to be looked up,
    with the uniform variate that picks it."""

    kind: str
    index: np.ndarray
    u: np.ndarray

    def moved(self, offset: int) -> "Unplaced":
        return Unplaced(self.kind, self.index + offset, self.u)


def place(population: Population, unplaced: list[Unplaced], places: "Destinations") -> Population:
    """Fill in ``population``'s work and study places (in place, and return it)."""
    for want in unplaced:
        population.work_cell[want.index] = places.place(want.kind, population.home_cell[want.index], want.u)
    return population


def concat(blocks: list[Population]) -> Population:
    """One population from consecutive blocks."""
    return Population(**{k: np.concatenate([getattr(b, k) for b in blocks]) for k in Population.__dataclass_fields__})


def _draw(weights: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=size, p=p / p.sum()).astype(np.int32)


class Destinations:
    """Where people from each home cell go to work (``jobs``) or study (``schools``), by the work model.

    The distribution from an origin is computed once and kept: a run asks for the same origins again and
    again, block after block.
    """

    def __init__(self, world: World, scenario: Scenario) -> None:
        self._world = world
        self._cfg = scenario.population
        # Job opportunities follow jobs; school and university places follow residents.
        self._opportunities = {"jobs": world.jobs, "schools": world.residents}
        self._cdfs: dict[tuple[str, int], np.ndarray] = {}

    def cdf(self, kind: str, src: int) -> np.ndarray:
        key = (kind, src)
        cdf = self._cdfs.get(key)
        if cdf is None:
            world, opportunities = self._world, self._opportunities[kind]
            d = np.hypot(world.x_m - world.x_m[src], world.y_m - world.y_m[src])
            if self._cfg.work_model == "radiation":
                p = radiation(src, d, opportunities)
            else:
                p = opportunities * (d / 1000.0 + self._cfg.gravity_offset_km) ** -self._cfg.gravity_exponent
                p[src] = 0.0  # as in the radiation model: work is somewhere else than home
            cdf = np.cumsum(p)
            cdf /= cdf[-1]
            self._cdfs[key] = cdf
        return cdf

    def draw(self, kind: str, origins: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
        """A destination cell for each origin cell."""
        return self.place(kind, origins, rng.random(len(origins)))

    def place(self, kind: str, origins: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The destination cell that uniform variate ``u`` picks for each origin cell."""
        out = np.empty(len(origins), dtype=np.int32)
        by_origin = np.argsort(origins, kind="stable")  # members of each origin, one slice each
        sources, first = np.unique(origins[by_origin], return_index=True)
        for src, members in zip(sources.tolist(), np.split(by_origin, first[1:])):
            cdf = self.cdf(kind, src)
            out[members] = np.minimum(cdf.searchsorted(u[members], side="right"), len(cdf) - 1)
        return out


def radiation(src: int, distance: np.ndarray, opportunities: np.ndarray) -> np.ndarray:
    """Unnormalised radiation-model probabilities of going from ``src`` to each cell (Simini et al. 2012).

    ``P(j | i) ∝ m_i n_j / ((m_i + s_ij)(m_i + n_j + s_ij))``, with ``s_ij`` the opportunities strictly
    closer to i than j is, i and j excluded. ``P(i | i) = 0``.

    Examples
    --------
    Three cells on a line with equal opportunities: the nearer cell is likelier.

    >>> p = radiation(0, np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 1.0]))
    >>> p.round(4).tolist()  # 1/(1*2) and 1/(2*3)
    [0.0, 0.5, 0.1667]
    """
    own = float(opportunities[src])
    m = max(own, 1e-3 * float(opportunities.mean()))  # an empty origin still sends its residents somewhere
    order = np.argsort(distance, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(opportunities[order])])
    # opportunities strictly closer to i than j is (ties are not "closer"), less i's own
    s = cumulative[np.searchsorted(distance[order], distance, side="left")] - own
    s[src] = 0.0
    n = opportunities
    p = m * n / ((m + s) * (m + n + s))
    p[src] = 0.0
    return np.maximum(p, 0.0)
