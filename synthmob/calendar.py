"""The scenario's clock: local days in a time zone, mapped onto simulation seconds.

People live by local time (they leave for work at 08:00 whatever the UTC offset), while every timestamp is
stored in UTC. A :class:`Calendar` holds, for each local day of the horizon, the UTC instant of its local
midnight and the shift of the UTC offset during that day (non-zero only on daylight-saving days), so that
turning a local wall-clock time into simulation seconds is two array look-ups.

Simulation time is seconds since the local midnight that starts the horizon.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

import numpy as np

#: Daylight-saving changes happen at or before 03:00 local time in every zone that has them in Europe and
#: North America; wall-clock times from this hour on see the new offset.
_DST_SETTLED_S = 3 * 3600


@dataclass(frozen=True)
class Calendar:
    """Local days of a horizon.

    Attributes
    ----------
    start : datetime.date
        The first local day.
    days : int
        Number of local days.
    timezone : str
        IANA name of the zone people live in.
    midnights : numpy.ndarray
        ``days + 1`` UTC epoch seconds (int64) of the local midnights bounding the days.
    shifts : numpy.ndarray
        For each day, the UTC offset at noon minus the offset at midnight, in seconds.
    weekdays : numpy.ndarray
        For each day, 0 for Monday to 6 for Sunday.
    """

    start: dt.date
    days: int
    timezone: str
    midnights: np.ndarray
    shifts: np.ndarray
    weekdays: np.ndarray

    @classmethod
    def create(cls, start: dt.date, days: int, timezone: str) -> "Calendar":
        zone = ZoneInfo(timezone)
        dates = [start + dt.timedelta(days=d) for d in range(days + 1)]
        midnights = np.array(
            [int(dt.datetime.combine(d, dt.time(0), tzinfo=zone).timestamp()) for d in dates], dtype=np.int64
        )
        shifts = np.array(
            [
                int(dt.datetime.combine(d, dt.time(12), tzinfo=zone).utcoffset().total_seconds())
                - int(dt.datetime.combine(d, dt.time(0), tzinfo=zone).utcoffset().total_seconds())
                for d in dates[:-1]
            ],
            dtype=np.int64,
        )
        weekdays = np.array([d.weekday() for d in dates[:-1]], dtype=np.int8)
        return cls(start, days, timezone, midnights, shifts, weekdays)

    @property
    def epoch_s(self) -> int:
        """UTC epoch seconds of simulation time zero."""
        return int(self.midnights[0])

    @property
    def horizon_s(self) -> float:
        """Length of the horizon in seconds (a multiple of 24 h except across daylight-saving changes)."""
        return float(self.midnights[-1] - self.midnights[0])

    def wall(self, day: int, seconds: float) -> float:
        """Simulation time of local wall-clock ``seconds`` after midnight of ``day``.

        ``seconds`` may exceed 24 h (a night shift ending the next morning); the result is then taken on the
        following days' clocks.
        """
        while seconds >= 86400.0 and day + 1 < self.days:
            day += 1
            seconds -= 86400.0
        base, shift = self._wall_terms[day]
        if seconds >= _DST_SETTLED_S:
            return base + seconds - shift
        return base + seconds

    @cached_property
    def _wall_terms(self) -> list[tuple[float, float]]:
        """For each day, its midnight in simulation seconds and its shift, as Python floats (for :meth:`wall`,
        called for every planned departure)."""
        base = (self.midnights[:-1] - self.midnights[0]).astype(np.float64)
        return list(zip(base.tolist(), self.shifts.astype(np.float64).tolist()))

    def day_of(self, sim_s: np.ndarray) -> np.ndarray:
        """Index of the local day that contains each simulation time (vectorised)."""
        epoch = np.asarray(sim_s, dtype=np.float64) + self.epoch_s
        return np.searchsorted(self.midnights, epoch, side="right").astype(np.int64) - 1

    def date_of_day(self, day: int) -> dt.date:
        return self.start + dt.timedelta(days=int(day))
