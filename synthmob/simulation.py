"""The ground-truth simulation of one shard: a SimPy process per subscriber, stays and trips as tables.

A subscriber's days are one generator function, :func:`live`, in the shard's SimPy environment. It wakes
(``env.timeout``) once per day, at local midnight or at its last arrival if that is later, lives the day's
stays and trips and records them in column buffers; the buffers become Arrow tables once, at the end of the
shard. Subscribers never interact, so when a process wakes only fixes the order in which the shard's
random draws are taken: waking once per day rather than at every arrival costs SimPy one event a day
instead of one per trip, and the simulation about a quarter less CPU. Stays and trips tile each
subscriber's horizon exactly: every stay ends where a trip departs, every trip arrives where a stay starts,
the first stay starts at the horizon's start and the last ends at its end.
"""

from __future__ import annotations

from array import array
from collections.abc import Generator
from dataclasses import dataclass

import math

import numpy as np
import pyarrow as pa
import simpy

from synthmob import schema
from synthmob.behaviour import HOUR, MIN_STAY_S, Person, Places, Stream, choose_mode, plan_day
from synthmob.calendar import Calendar
from synthmob.cellgraph import Routes, speeds_mps
from synthmob.population import Population
from synthmob.scenario import Scenario
from synthmob.world import World

#: A planned departure missed by more than this (an earlier stay ran long) is dropped, unless it is home.
_GIVE_UP_S = HOUR
_ACTIVITY_CODE = {a: i for i, a in enumerate(schema.ACTIVITIES)}
_MODE_CODE = {m: i for i, m in enumerate(schema.MODES)}


class Router:
    """Trips between cells: mode, duration and the parameters to rebuild the path, from the world's tables.

    Inside the simulation a trip costs a few scalar look-ups; the cells it crosses are rebuilt for a whole
    shard at once by :func:`trip_paths` when the shard's tables are made.
    """

    def __init__(self, world: World, scenario: Scenario) -> None:
        self.travel = scenario.world.travel
        # Python lists: a trip reads a few scalars, which is faster from a list than from an array.
        self._x, self._y = world.x_m.tolist(), world.y_m.tolist()
        # Inside one cell: half the side of a square of the cell's area, at the local speed of each mode.
        local_m = 0.5 * np.sqrt(world.coverage_m2) * self.travel.detour_factor
        speeds = speeds_mps(self.travel, world.density_per_km2)
        self._local_s = {mode: (local_m / speeds[mode]).tolist() for mode in schema.MODES}
        self._local_m = local_m.tolist()
        self._walk_max_m = self.travel.walk_max_km * 1000.0
        self._overhead = {"walk": 0.0, "car": self.travel.car_overhead_s, "transit": self.travel.transit_overhead_s}
        self._time_s = {mode: world.routes[mode].time_s for mode in schema.MODES}
        self._time_noise = self.travel.time_noise

    def distance_m(self, src: int, dst: int) -> float:
        if src == dst:
            return self._local_m[src]
        return math.hypot(self._x[src] - self._x[dst], self._y[src] - self._y[dst])

    def usual_time_s(self, person: Person, src: int, dst: int) -> float:
        """Expected door-to-door time by the mode a person would usually take (for planning departures)."""
        if self.distance_m(src, dst) < self._walk_max_m:
            mode = "walk"
        else:
            mode = "car" if person.car else "transit"
        base = self._local_s[mode][src] if src == dst else self._time_s[mode].item(src, dst)
        return self._overhead[mode] + base

    def trip(self, person: Person, src: int, dst: int, s: Stream) -> tuple[str, float, float]:
        """A trip's mode, door-to-door duration (s) and time noise factor (which scales its path)."""
        mode = choose_mode(person, self.distance_m(src, dst), self.travel, s)
        noise = math.exp(self._time_noise * s.normal())
        base = self._local_s[mode][src] if src == dst else self._time_s[mode].item(src, dst)
        return mode, self._overhead[mode] + base * noise, noise

    @property
    def overheads_s(self) -> np.ndarray:
        """Fixed time per trip of each mode, indexed by mode code (walking to the car, waiting for a bus)."""
        return np.array([self._overhead[mode] for mode in schema.MODES])


def trip_paths(
    routes: dict[str, Routes], mode: np.ndarray, src: np.ndarray, dst: np.ndarray, depart: np.ndarray,
    noise: np.ndarray, overhead: np.ndarray, *, chunk: int = 100_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells every trip crosses and when each is entered, for many trips at once.

    A trip follows its mode's fastest path from ``src`` to ``dst`` (the predecessor tables walked back from
    ``dst``, all trips in step); a cell is entered halfway along the edge into it, at its time from ``src``
    scaled by the trip's ``noise``, plus the trip's ``overhead`` after the first cell. A trip inside one
    cell crosses just that cell, entered at departure. Trips are taken ``chunk`` at a time, so that memory
    follows the cells crossed by a chunk, not by a whole shard.

    Returns
    -------
    lengths : numpy.ndarray
        Cells per trip (int64).
    cells : numpy.ndarray
        The cells of all trips, trip after trip, from ``src`` to ``dst`` (int32).
    entered : numpy.ndarray
        When each cell is entered, in the units of ``depart`` (float64).
    """
    n = len(src)
    if n > chunk:
        parts = [trip_paths(routes, mode[i:i + chunk], src[i:i + chunk], dst[i:i + chunk], depart[i:i + chunk],
                            noise[i:i + chunk], overhead[i:i + chunk], chunk=chunk) for i in range(0, n, chunk)]
        return tuple(np.concatenate(arrays) for arrays in zip(*parts))  # type: ignore[return-value]
    # Walk back from dst, keeping only the trips not yet at src: (trip, cell, steps from dst) per cell.
    trips, cells_back, steps_back = [], [], []
    for code, name in enumerate(schema.MODES):
        alive = np.flatnonzero(mode == code)
        pred = routes[name].predecessor
        cur = dst[alive].astype(np.int64)
        step = 0
        while len(alive):
            trips.append(alive)
            cells_back.append(cur)
            steps_back.append(np.full(len(alive), step, np.int64))
            going = cur != src[alive]
            alive, cur = alive[going], pred[src[alive[going]], cur[going]].astype(np.int64)
            step += 1
    trip = np.concatenate(trips) if trips else np.zeros(0, np.int64)
    back = np.concatenate(steps_back) if steps_back else np.zeros(0, np.int64)
    lengths = np.bincount(trip, minlength=n).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    where = starts[trip] + lengths[trip] - 1 - back  # position in the output, src first
    cells = np.empty(len(trip), np.int32)
    cells[where] = np.concatenate(cells_back) if cells_back else np.zeros(0, np.int64)
    owner = np.repeat(np.arange(n), lengths)
    at = np.empty(len(cells), np.float64)
    for code, name in enumerate(schema.MODES):
        within = np.flatnonzero(mode[owner] == code)
        at[within] = routes[name].time_s[src[owner[within]], cells[within]]
    later = np.flatnonzero(np.arange(len(cells)) != starts[owner])  # every cell but a trip's first
    entered = np.zeros(len(cells), np.float64)
    entered[later] = (at[later - 1] + at[later]) / 2.0
    offsets = entered * noise[owner]
    offsets[later] += overhead[owner[later]]
    return lengths, cells, depart[owner] + offsets


class Recorder:
    """Column buffers for the stays and trips of one shard.

    A leg (a stay, then the trip that ends it) is one row of :data:`LEG_FIELDS` appended to a flat float64
    buffer by a single ``extend``; the last stay of each subscriber is a row of :data:`STAY_FIELDS` in
    another. Ids, cells and codes are integers well under 2^53, so float64 holds them exactly.
    """

    LEG_FIELDS = ("sub", "cell", "start", "depart", "activity", "to", "arrive", "mode", "noise")
    STAY_FIELDS = ("sub", "cell", "start", "end", "activity")

    def __init__(self) -> None:
        self.legs, self.last = array("d"), array("d")

    def leg(self, row: tuple[float, ...]) -> None:
        """Record a leg: a tuple in the order of :data:`LEG_FIELDS`."""
        self.legs.extend(row)

    def stay(self, sub: int, cell: int, start: float, end: float, activity: str) -> None:
        """Record a subscriber's last stay, which no trip ends."""
        self.last.extend((sub, cell, start, end, _ACTIVITY_CODE[activity]))

    def tables(self, epoch_s: int, routes: dict[str, Routes], overheads_s: np.ndarray) -> dict[str, pa.Table]:
        """Stays and trips as Arrow tables sorted by (subscriber, time), with every trip's path."""

        def ts(seconds: np.ndarray) -> pa.Array:
            ms = np.round(np.asarray(seconds, dtype=np.float64) * 1000.0).astype(np.int64) + epoch_s * 1000
            return pa.array(ms, type=pa.int64()).cast(schema.TIMESTAMP)

        legs = np.frombuffer(self.legs, dtype=np.float64).reshape(-1, len(self.LEG_FIELDS))
        last = np.frombuffer(self.last, dtype=np.float64).reshape(-1, len(self.STAY_FIELDS))
        leg = dict(zip(self.LEG_FIELDS, legs.T))
        stay = {name: np.concatenate([leg[k], last[:, i]]) for i, (name, k) in
                enumerate(zip(self.STAY_FIELDS, ("sub", "cell", "start", "depart", "activity")))}
        stay_sub, stay_start = stay["sub"].astype(np.int64), stay["start"]

        stays = pa.Table.from_arrays(
            [
                pa.array(stay_sub),
                pa.array(stay["cell"].astype(np.int32)),
                ts(stay_start),
                ts(stay["end"]),
                pa.array(schema.ACTIVITIES).take(pa.array(stay["activity"].astype(np.int8))),
            ],
            schema=schema.STAYS,
        )
        src, dst = leg["cell"].astype(np.int64), leg["to"].astype(np.int64)
        depart, mode = np.ascontiguousarray(leg["depart"]), leg["mode"].astype(np.int8)
        trip_sub = leg["sub"].astype(np.int64)
        lengths, cells, entered = trip_paths(
            routes, mode, src, dst, depart, np.ascontiguousarray(leg["noise"]), overheads_s[mode]
        )
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        steps = pa.StructArray.from_arrays([pa.array(cells), ts(entered)], fields=list(schema.PATH_STEP))
        trips = pa.Table.from_arrays(
            [
                pa.array(trip_sub),
                pa.array(src.astype(np.int32)),
                pa.array(dst.astype(np.int32)),
                ts(depart),
                ts(leg["arrive"]),
                pa.array(schema.MODES).take(pa.array(mode)),
                pa.ListArray.from_arrays(pa.array(offsets), steps),
            ],
            schema=schema.TRIPS,
        )
        stay_order = np.lexsort((stay_start, stay_sub))
        trip_order = np.lexsort((depart, trip_sub))
        return {"stays": stays.take(stay_order), "trips": trips.take(trip_order)}


def places_for(scenario: Scenario, world: World) -> Places:
    """Where the outings of ``scenario``'s subscribers go in ``world``."""
    return Places(world.x_m, world.y_m, world.jobs, scenario.behaviour)


@dataclass
class ShardContext:
    """What every subscriber process of a shard shares."""

    scenario: Scenario
    calendar: Calendar
    router: Router
    places: Places
    stream: Stream
    recorder: Recorder


def live(env: simpy.Environment, person: Person, ctx: ShardContext) -> Generator[simpy.Event, None, None]:
    """A subscriber's whole horizon: stays and trips, day after day, in local time.

    One SimPy timeout per day: at local midnight (or at the day's first moment after the last arrival,
    when a trip ran past midnight) the subscriber plans the day, then lives its legs: on arriving somewhere
    it decides when to leave, where to go and how (a stay and a trip). ``now`` is the time of the last
    arrival, kept exactly so that every stay starts where the trip before it ends.
    """
    cfg, cal, s, rec = ctx.scenario.behaviour, ctx.calendar, ctx.stream, ctx.recorder
    trip, choose, wall, record = ctx.router.trip, ctx.places.choose, cal.wall, rec.leg
    horizon = cal.horizon_s
    sub, home, work = person.subscriber_id, person.home, person.work
    here, activity, now = home, "home", 0.0
    commute_s = ctx.router.usual_time_s(person, home, work if work >= 0 else home)
    for day in range(cal.days):
        yield env.timeout(max(0.0, max(wall(day, 0.0), now) - env.now))  # 0.0: never a rounding step below
        for leg in plan_day(person, day, cal, cfg, commute_s, s):
            going = leg.activity
            if leg.at_s is None:
                depart = now + leg.stay_s
            else:
                planned = wall(day, leg.at_s)
                if planned < now - _GIVE_UP_S and going != "home":
                    continue
                depart = max(planned, now + MIN_STAY_S)
            if going == "home":
                target = home
            elif going == "work" or going == "school":
                target = work
            else:
                target = -1
            if target == here and going == activity:
                continue
            if depart >= horizon:
                break
            if target < 0:
                target = choose(person, here, s)
            mode, duration_s, noise = trip(person, here, target, s)
            arrive = depart + duration_s
            if arrive >= horizon:
                break
            record((sub, here, now, depart, _ACTIVITY_CODE[activity], target, arrive, _MODE_CODE[mode], noise))
            here, activity, now = target, going, arrive
    rec.stay(sub, here, now, horizon, activity)


def simulate_shard(
    scenario: Scenario, world: World, population: Population, calendar: Calendar, *, rng: np.random.Generator,
    places: Places | None = None,
) -> dict[str, pa.Table]:
    """Simulate the subscribers of one shard; return its ``stays`` and ``trips`` tables.

    ``places`` (from :func:`places_for`) may be shared by the shards a process runs, so that the kernels it
    keeps are computed once per process; it holds no state of any subscriber, so results do not depend on
    which shards shared it.

    Examples
    --------
    >>> from synthmob.scenario import load_scenario
    >>> from synthmob.world import build_world
    >>> from synthmob.population import synthesise
    >>> s = load_scenario("tiny")
    >>> w = build_world(s.world, rng=np.random.default_rng(0))
    >>> pop = synthesise(s, w, rng=np.random.default_rng(1)).slice(0, 10)
    >>> tables = simulate_shard(s, w, pop, Calendar.create(s.start, s.days, s.timezone), rng=np.random.default_rng(2))
    >>> sorted(tables), tables["stays"].num_rows >= 10
    (['stays', 'trips'], True)
    """
    if len(population) and int(population.subscriber_id.max()) >= 2**53:  # the Recorder keeps ids as float64
        raise ValueError("subscriber ids must be below 2**53 to be recorded exactly")
    env = simpy.Environment()
    stream = Stream(rng)
    rota = rng.integers(0, 21, size=len(population))
    ctx = ShardContext(
        scenario=scenario,
        calendar=calendar,
        router=Router(world, scenario),
        places=places_for(scenario, world) if places is None else places,
        stream=stream,
        recorder=Recorder(),
    )
    for i in range(len(population)):
        person = Person(
            subscriber_id=int(population.subscriber_id[i]),
            persona=str(population.persona[i]),
            home=int(population.home_cell[i]),
            work=int(population.work_cell[i]),
            car=bool(population.car[i]),
            rota=int(rota[i]),
        )
        env.process(live(env, person, ctx))
    env.run()
    return ctx.recorder.tables(calendar.epoch_s, world.routes, ctx.router.overheads_s)
