"""The ground-truth simulation of one shard: a SimPy process per subscriber, stays and trips as tables.

A subscriber's days are one generator function, :func:`live`, in the shard's SimPy environment. It waits
(``env.timeout``) through each stay and each trip, a handful of events per subscriber-day, and records them
in column buffers; the buffers become Arrow tables once, at the end of the shard. Stays and trips tile each
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
from synthmob.behaviour import HOUR, MIN_STAY_S, Person, Places, Stream, Trip, choose_mode, plan_day
from synthmob.calendar import Calendar
from synthmob.cellgraph import speeds_mps
from synthmob.population import Population
from synthmob.scenario import Scenario
from synthmob.world import World

#: A planned departure missed by more than this (an earlier stay ran long) is dropped, unless it is home.
_GIVE_UP_S = HOUR
_ACTIVITY_CODE = {a: i for i, a in enumerate(schema.ACTIVITIES)}
_MODE_CODE = {m: i for i, m in enumerate(schema.MODES)}


class Router:
    """Trips between cells: durations and paths from the world's shortest-time tables, cached per shard."""

    def __init__(self, world: World, scenario: Scenario) -> None:
        self.world = world
        self.travel = scenario.world.travel
        self._x, self._y = world.x_m, world.y_m
        self._cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        # Inside one cell: half the side of a square of the cell's area, at the local speed of each mode.
        local_m = 0.5 * np.sqrt(world.coverage_m2) * self.travel.detour_factor
        speeds = speeds_mps(self.travel, world.density_per_km2)
        self._local_s = {mode: local_m / speeds[mode] for mode in schema.MODES}
        self._local_m = local_m
        self._overhead = {"walk": 0.0, "car": self.travel.car_overhead_s, "transit": self.travel.transit_overhead_s}

    def distance_m(self, src: int, dst: int) -> float:
        if src == dst:
            return float(self._local_m[src])
        return math.hypot(self._x[src] - self._x[dst], self._y[src] - self._y[dst])

    def usual_time_s(self, person: Person, src: int, dst: int) -> float:
        """Expected door-to-door time by the mode a person would usually take (for planning departures)."""
        if self.distance_m(src, dst) < self.travel.walk_max_km * 1000.0:
            mode = "walk"
        else:
            mode = "car" if person.car else "transit"
        base = self._local_s[mode][src] if src == dst else float(self.world.routes[mode].time_s[src, dst])
        return self._overhead[mode] + base

    def trip(self, person: Person, src: int, dst: int, s: Stream) -> Trip:
        mode = choose_mode(person, self.distance_m(src, dst), self.travel, s)
        noise = math.exp(self.travel.time_noise * s.normal())
        overhead = self._overhead[mode]
        if src == dst:
            return Trip(mode, overhead + self._local_s[mode][src] * noise, np.array([src], np.int32), np.zeros(1))
        key = (_MODE_CODE[mode], src, dst)
        cached = self._cache.get(key)
        if cached is None:
            routes = self.world.routes[mode]
            cells = routes.path(src, dst)
            at = routes.time_s[src, cells].astype(np.float64)
            entered = np.concatenate([[0.0], (at[:-1] + at[1:]) / 2.0])  # a cell is entered mid-edge
            cached = (cells, entered, float(at[-1]))
            self._cache[key] = cached
        cells, entered, total = cached
        offsets = entered * noise
        offsets[1:] += overhead
        return Trip(mode, overhead + total * noise, cells, offsets)


class Recorder:
    """Column buffers for the stays and trips of one shard."""

    def __init__(self) -> None:
        self.stay_sub, self.stay_cell = array("q"), array("i")
        self.stay_start, self.stay_end, self.stay_act = array("d"), array("d"), array("b")
        self.trip_sub, self.trip_from, self.trip_to = array("q"), array("q"), array("q")
        self.trip_depart, self.trip_arrive, self.trip_mode = array("d"), array("d"), array("b")
        self.path_len, self.path_cells, self.path_entered = array("q"), array("i"), array("d")

    def stay(self, sub: int, cell: int, start: float, end: float, activity: str) -> None:
        self.stay_sub.append(sub)
        self.stay_cell.append(cell)
        self.stay_start.append(start)
        self.stay_end.append(end)
        self.stay_act.append(_ACTIVITY_CODE[activity])

    def trip(self, sub: int, src: int, dst: int, depart: float, trip: Trip) -> None:
        self.trip_sub.append(sub)
        self.trip_from.append(src)
        self.trip_to.append(dst)
        self.trip_depart.append(depart)
        self.trip_arrive.append(depart + trip.duration_s)
        self.trip_mode.append(_MODE_CODE[trip.mode])
        self.path_len.append(len(trip.cells))
        self.path_cells.extend(trip.cells.tolist())
        self.path_entered.extend((depart + trip.offsets_s).tolist())

    def tables(self, epoch_s: int) -> dict[str, pa.Table]:
        """Stays and trips as Arrow tables sorted by (subscriber, time)."""

        def ts(seconds: array) -> pa.Array:
            ms = np.round(np.frombuffer(seconds, dtype=np.float64) * 1000.0).astype(np.int64) + epoch_s * 1000
            return pa.array(ms, type=pa.int64()).cast(schema.TIMESTAMP)

        stays = pa.Table.from_arrays(
            [
                pa.array(np.frombuffer(self.stay_sub, dtype=np.int64)),
                pa.array(np.frombuffer(self.stay_cell, dtype=np.int32)),
                ts(self.stay_start),
                ts(self.stay_end),
                pa.array(schema.ACTIVITIES).take(pa.array(np.frombuffer(self.stay_act, dtype=np.int8))),
            ],
            schema=schema.STAYS,
        )
        lengths = np.frombuffer(self.path_len, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        steps = pa.StructArray.from_arrays(
            [pa.array(np.frombuffer(self.path_cells, dtype=np.int32)), ts(self.path_entered)],
            fields=list(schema.PATH_STEP),
        )
        trips = pa.Table.from_arrays(
            [
                pa.array(np.frombuffer(self.trip_sub, dtype=np.int64)),
                pa.array(np.frombuffer(self.trip_from, dtype=np.int64).astype(np.int32)),
                pa.array(np.frombuffer(self.trip_to, dtype=np.int64).astype(np.int32)),
                ts(self.trip_depart),
                ts(self.trip_arrive),
                pa.array(schema.MODES).take(pa.array(np.frombuffer(self.trip_mode, dtype=np.int8))),
                pa.ListArray.from_arrays(pa.array(offsets), steps),
            ],
            schema=schema.TRIPS,
        )
        stay_order = np.lexsort((np.frombuffer(self.stay_start), np.frombuffer(self.stay_sub, dtype=np.int64)))
        trip_order = np.lexsort((np.frombuffer(self.trip_depart), np.frombuffer(self.trip_sub, dtype=np.int64)))
        return {"stays": stays.take(stay_order), "trips": trips.take(trip_order)}


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
    """A subscriber's whole horizon: stays and trips, day after day, in local time."""
    cfg, cal, s, rec = ctx.scenario.behaviour, ctx.calendar, ctx.stream, ctx.recorder
    horizon = cal.horizon_s
    here, activity, since = person.home, "home", 0.0
    anchor = person.work if person.work >= 0 else person.home
    commute_s = ctx.router.usual_time_s(person, person.home, anchor)
    for day in range(cal.days):
        for leg in plan_day(person, day, cal, cfg, commute_s, s):
            if leg.at_s is None:
                depart = max(env.now, since + leg.stay_s)
            else:
                planned = cal.wall(day, leg.at_s)
                if planned < env.now - _GIVE_UP_S and leg.activity != "home":
                    continue
                depart = max(planned, since + MIN_STAY_S, env.now)
            if leg.activity == "home":
                target = person.home
            elif leg.activity in ("work", "school"):
                target = person.work
            else:
                target = -1
            if target == here and leg.activity == activity:
                continue
            if depart >= horizon:
                break
            if depart > env.now:
                yield env.timeout(depart - env.now)
            if target < 0:
                target = ctx.places.choose(person, here, s)
            trip = ctx.router.trip(person, here, target, s)
            if env.now + trip.duration_s >= horizon:
                break
            rec.stay(person.subscriber_id, here, since, env.now, activity)
            rec.trip(person.subscriber_id, here, target, env.now, trip)
            yield env.timeout(trip.duration_s)
            here, activity, since = target, leg.activity, env.now
    rec.stay(person.subscriber_id, here, since, horizon, activity)


def simulate_shard(
    scenario: Scenario, world: World, population: Population, calendar: Calendar, *, rng: np.random.Generator
) -> dict[str, pa.Table]:
    """Simulate the subscribers of one shard; return its ``stays`` and ``trips`` tables.

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
    env = simpy.Environment()
    stream = Stream(rng)
    rota = rng.integers(0, 21, size=len(population))
    ctx = ShardContext(
        scenario=scenario,
        calendar=calendar,
        router=Router(world, scenario),
        places=Places(world.x_m, world.y_m, world.jobs, scenario.behaviour),
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
    return ctx.recorder.tables(calendar.epoch_s)
