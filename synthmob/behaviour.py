"""What a subscriber decides: the plan of a day, where to go next, and how to get there.

A day is planned as a list of *legs*: "leave for ``activity`` at local time ``at`` (or after staying
``stay_s`` where you are)". Anchored personas (commuters, students, shift workers) build their days around a
work or school stay; everybody fills free time with home-based tours of outings. Where an outing goes is
decided when the subscriber leaves, by exploration and preferential return (EPR; Song et al., Nature
Physics 6, 2010): with S distinct places known, a new one is explored with probability ρ·S^-γ, chosen by
attractiveness (jobs) × (d + d0)^-β from the current cell; otherwise a known place is revisited in
proportion to past visits.

All draws come from a :class:`Stream` over the shard's generator, which hands out buffered variates so that
the many scalar decisions inside SimPy processes cost array reads, not generator calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import math
import threading

import numpy as np

from synthmob.calendar import Calendar
from synthmob.scenario import Behaviour, Travel

HOUR = 3600.0
MIN_STAY_S = 300.0
#: Free-time outings do not start after this local hour.
_LAST_OUTING_H = 22.0
#: Shift start hours of a three-shift rotation (early, late, night).
_SHIFT_STARTS_H = (6.0, 14.0, 22.0)
_SHIFT_HOURS = 8.0


class Stream:
    """Buffered variates from one :class:`numpy.random.Generator` (uniform and standard normal).

    Each kind is drawn ``chunk`` at a time and handed out from a list iterator: a scalar draw costs a
    ``next`` on Python floats, not a numpy scalar read. Variates come out in the generator's order, a new
    chunk being drawn when one runs out.
    """

    def __init__(self, rng: np.random.Generator, chunk: int = 8192) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, not {chunk}")
        self._rng = rng
        self._chunk = chunk
        self._u = iter(rng.random(chunk).tolist())
        self._z = iter(rng.standard_normal(chunk).tolist())

    def uniform(self) -> float:
        try:
            return next(self._u)
        except StopIteration:
            self._u = iter(self._rng.random(self._chunk).tolist())
            return next(self._u)

    def normal(self) -> float:
        try:
            return next(self._z)
        except StopIteration:
            self._z = iter(self._rng.standard_normal(self._chunk).tolist())
            return next(self._z)

    def poisson(self, mean: float) -> int:
        """Poisson variate by inversion (means here are small)."""
        u, k, p = self.uniform(), 0, math.exp(-mean)
        cdf = p
        while u > cdf and k < 100:
            k += 1
            p *= mean / k
            cdf += p
        return k


@dataclass
class Person:
    """A subscriber's state during the simulation."""

    subscriber_id: int
    persona: str
    home: int
    work: int  # -1 when none
    car: bool
    rota: int  # shift workers: offset of their rotation and days off
    visits: dict[int, int] = field(default_factory=dict)  # non-anchor places visited -> count


class Leg(NamedTuple):
    """Leave for ``activity`` at local ``at_s`` of the day (None: after ``stay_s`` where you are).

    A named tuple: a few are made for every subscriber-day, at a third of a frozen dataclass's cost.
    """

    activity: str
    at_s: float | None
    stay_s: float = MIN_STAY_S


def plan_day(person: Person, day: int, calendar: Calendar, cfg: Behaviour, commute_s: float, s: Stream) -> list[Leg]:
    """The legs of one local day, by persona and weekday."""
    weekend = calendar.weekdays[day] >= 5
    persona = person.persona
    if persona == "shift_worker":
        shift = _shift(person, day, calendar)
        if shift is not None:
            start = shift * HOUR + 0.25 * HOUR * s.normal()
            legs = [Leg("work", start - commute_s)]
            return legs + _after_anchor(start + _SHIFT_HOURS * HOUR, cfg, s, late=shift >= 22.0)
        return _free_day(cfg.outings_weekend if weekend else cfg.outings_weekday, cfg, s)
    if persona in ("commuter", "student") and not weekend and s.uniform() >= cfg.absence_rate:
        if persona == "commuter":
            start_h, hours, activity = cfg.work_start_h, cfg.work_hours, "work"
        else:
            start_h, hours, activity = cfg.school_start_h, cfg.school_hours, "school"
        start = _clip(start_h + cfg.work_start_sd_h * s.normal(), 4.0, 14.0) * HOUR
        duration = _clip(hours * math.exp(0.15 * s.normal()), 2.0, 14.0) * HOUR
        return [Leg(activity, start - commute_s)] + _after_anchor(start + duration, cfg, s, late=False)
    if persona == "visitor":
        return _free_day(cfg.outings_visitor, cfg, s)
    return _free_day(cfg.outings_weekend if weekend else cfg.outings_weekday, cfg, s)


def _shift(person: Person, day: int, calendar: Calendar) -> float | None:
    """Start hour of the shift worked on ``day``, or None on a day off.

    Five days on, two off, the shift (early, late, night) rotating weekly; a day that would start early
    right after a night shift is taken off.
    """

    def start(d: int) -> float | None:
        if (d + person.rota) % 7 >= 5:
            return None
        return _SHIFT_STARTS_H[((d + person.rota) // 7 + person.rota) % 3]

    today = start(day)
    if today is not None and today < 22.0 and start(day - 1) == 22.0:
        return None
    return today


def _after_anchor(end_s: float, cfg: Behaviour, s: Stream, *, late: bool) -> list[Leg]:
    """Legs after a work or school stay ending at ``end_s``: maybe a stop, then home, maybe an evening out."""
    legs: list[Leg] = []
    if not late and s.uniform() < cfg.after_work_outing:
        legs += [Leg("other", end_s), Leg("home", None, other_stay_s(cfg, s))]
    else:
        legs.append(Leg("home", end_s))
    if not late and end_s < 18.5 * HOUR and s.uniform() < cfg.evening_outing:
        legs += [Leg("other", (19.0 + 1.5 * s.uniform()) * HOUR), Leg("home", None, other_stay_s(cfg, s))]
    return legs


def _free_day(mean_outings: float, cfg: Behaviour, s: Stream) -> list[Leg]:
    """Home-based tours: outings from home, sometimes chained, until the evening."""
    tours = s.poisson(mean_outings)
    if tours == 0:
        return []
    clock = (9.0 + 3.0 * s.uniform()) * HOUR
    legs: list[Leg] = [Leg("other", clock)]
    done = 1
    while True:
        stay = other_stay_s(cfg, s)
        clock += stay
        if done < tours and s.uniform() < cfg.chain_probability and clock < _LAST_OUTING_H * HOUR:
            legs.append(Leg("other", None, stay))
            done += 1
            continue
        legs.append(Leg("home", None, stay))
        if done >= tours:
            return legs
        gap = _clip(1.5 * math.exp(0.7 * s.normal()), 0.25, 6.0) * HOUR
        clock += gap
        if clock >= _LAST_OUTING_H * HOUR:
            return legs
        legs.append(Leg("other", None, gap))
        done += 1


def other_stay_s(cfg: Behaviour, s: Stream) -> float:
    """Time spent at a non-anchor place: log-normal, between 10 minutes and 8 hours."""
    hours = cfg.other_stay_median_h * math.exp(cfg.other_stay_sigma * s.normal())
    return _clip(hours, 1.0 / 6.0, 8.0) * HOUR


def _clip(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


class Places:
    """Where outings go: exploration of new cells and preferential return to known ones.

    Parameters
    ----------
    x_m, y_m : numpy.ndarray
        Reference points of the cells.
    attraction : numpy.ndarray
        How much there is to do in each cell (jobs stand in for shops, services and leisure).
    cfg : Behaviour
        Exploration and distance-kernel parameters.
    """

    def __init__(self, x_m: np.ndarray, y_m: np.ndarray, attraction: np.ndarray, cfg: Behaviour,
                 cache_bytes: int = 128 * 2**20):
        self._x = x_m
        self._y = y_m
        self._attraction = np.asarray(attraction, dtype=np.float64)
        self._cfg = cfg
        self._rho, self._minus_gamma = cfg.exploration_rho, -cfg.exploration_gamma
        # Kernels by origin cell, kept for the life of the object (a worker's, across its shards), up to
        # ``cache_bytes``; beyond that the oldest is dropped.
        self._cdfs: dict[int, np.ndarray] = {}
        self._cache = max(1, cache_bytes // (8 * max(1, len(x_m))))
        self._lock = threading.Lock()

    def _cdf(self, here: int) -> np.ndarray:
        cdf = self._cdfs.get(here)
        if cdf is None:
            d_km = np.hypot(self._x - self._x[here], self._y - self._y[here]) / 1000.0
            w = self._attraction * (d_km + self._cfg.distance_offset_km) ** -self._cfg.distance_exponent
            w[here] = 0.0
            cdf = np.cumsum(w)
            cdf /= cdf[-1]
            with self._lock:  # shards of one process may share this object from several threads
                if len(self._cdfs) >= self._cache:
                    del self._cdfs[next(iter(self._cdfs))]
                self._cdfs[here] = cdf
        return cdf

    def choose(self, person: Person, here: int, s: Stream) -> int:
        """The next non-anchor place of ``person``, who is now at ``here``."""
        known = person.visits
        anchors = 2 if person.work >= 0 else 1
        p_new = self._rho * (len(known) + anchors) ** self._minus_gamma
        count_here = known.get(here, 0)
        others = len(known) - (here in known)  # known places other than here
        if not others or s.uniform() < p_new:
            cdf = self._cdf(here)
            for _ in range(20):
                cell = int(cdf.searchsorted(s.uniform(), side="right"))
                cell = min(cell, len(cdf) - 1)
                if cell not in known and cell != person.home and cell != person.work:
                    break
            known[cell] = known.get(cell, 0) + 1
            return cell
        u = s.uniform() * (sum(known.values()) - count_here)
        last = here
        for cell, count in known.items():  # in the order the places were first visited
            if cell == here:
                continue
            last = cell
            u -= count
            if u < 0:
                break
        else:
            cell = last
        known[cell] += 1
        return cell


def choose_mode(person: Person, distance_m: float, travel: Travel, s: Stream) -> str:
    """Walk short distances mostly; otherwise car for those who have one, else public transport."""
    if distance_m < travel.walk_max_km * 1000.0 and s.uniform() < travel.walk_share:
        return "walk"
    if person.car and s.uniform() < travel.car_share:
        return "car"
    return "transit"
