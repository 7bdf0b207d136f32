"""Measures of mobility over whole tables, to compare a run with published statistics.

Every measure takes plain arrays (one row per record or visit, in any order) and works on all subscribers at
once with numpy sorting and grouping; none loops over subscribers in Python. Times are integer milliseconds
since the Unix epoch (UTC), positions are planar metres (the cells' ``x_m``/``y_m``), distances come out in
kilometres and durations in hours unless the name says otherwise.

Each statistic can be measured twice, as ``/work/shared/REALISM.md`` asks: on the ground truth
(:func:`truth_visits`, one visit per stay; :func:`truth_samples`, the serving cell every hour) and on what
the operator records (:func:`record_visits`, consecutive records at one cell merged into a visit).
:func:`measure` does both for a :class:`~synthmob.run.Run`.

Examples
--------
>>> import numpy as np
>>> ids, rg = radius_of_gyration(np.array([7, 7]), np.array([0.0, 2000.0]), np.array([0.0, 0.0]))
>>> ids.tolist(), rg.tolist()
([7], [1.0])
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthmob import schema
from synthmob.errors import SynthmobError

if TYPE_CHECKING:
    from synthmob.run import Run

_MS_PER_H = 3_600_000.0
_MS_PER_DAY = 86_400_000
#: Local hours of a night (22:00-07:00) and a working day (09:00-17:00), as REALISM.md defines home and work.
NIGHT_H = (22, 7)
DAY_H = (9, 17)


# --- small vectorised building blocks --------------------------------------------------------------------
def _arrays(*columns: Any) -> list[np.ndarray]:
    arrays = [np.asarray(c) for c in columns]
    if len({len(a) for a in arrays}) > 1:
        raise SynthmobError(f"metrics: input arrays differ in length ({', '.join(str(len(a)) for a in arrays)}); give one value per row")
    return arrays


def _heads(*keys: np.ndarray) -> np.ndarray:
    """True where a row starts a new run of equal keys (the arrays already sorted)."""
    n = len(keys[0])
    head = np.zeros(n, dtype=bool)
    if n:
        head[0] = True
        for k in keys:
            head[1:] |= k[1:] != k[:-1]
    return head


def _by_time(subscriber: np.ndarray, time: np.ndarray) -> np.ndarray | slice:
    """The order by (subscriber, time); a no-op slice when the rows already are (as in a run's tables)."""
    step, same = subscriber[1:] > subscriber[:-1], subscriber[1:] == subscriber[:-1]
    if np.all(step | (same & (time[1:] >= time[:-1]))):
        return slice(None)
    return np.lexsort((time, subscriber))


def _day_groups(subscriber: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (subscriber, day) pairs, sorted, and the pair of each row (one int64 key, no 2-D unique)."""
    ids, sub_index = np.unique(subscriber, return_inverse=True)
    low = day.min() if len(day) else 0
    span = (day.max() - low + 1) if len(day) else 1
    keys, inverse = np.unique(sub_index.reshape(-1) * span + (day - low), return_inverse=True)
    return ids[keys // span], (keys % span + low).astype("datetime64[D]"), inverse.reshape(-1)


def to_ms(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Integer epoch milliseconds of an Arrow timestamp column."""
    return pc.cast(column, pa.int64()).to_numpy()


def local_ms(time: np.ndarray, timezone: str) -> np.ndarray:
    """Local wall-clock milliseconds (as if the local time were UTC) of epoch milliseconds.

    The UTC offset is looked up once per distinct quarter-hour (offsets change only on quarter-hours in
    every IANA zone), so the cost is a few thousand look-ups per year of data whatever the row count.
    """
    time = np.asarray(time, dtype=np.int64)
    quarter, inverse = np.unique(time // 900_000, return_inverse=True)
    zone = ZoneInfo(timezone)
    offsets = np.array(
        [dt.datetime.fromtimestamp(int(q) * 900, tz=zone).utcoffset().total_seconds() * 1000 for q in quarter],
        dtype=np.int64,
    )
    return time + offsets[inverse.reshape(-1)] if len(time) else time


def _local_parts(time: np.ndarray, timezone: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local day (days since 1970-01-01), weekday (0 = Monday) and hour of each timestamp."""
    local = local_ms(time, timezone)
    day = local // _MS_PER_DAY
    return day, (day + 3) % 7, (local % _MS_PER_DAY) // 3_600_000


# --- the measures ------------------------------------------------------------------------------------------
def radius_of_gyration(subscriber, x, y, weight=None) -> tuple[np.ndarray, np.ndarray]:
    """Radius of gyration of each subscriber, sqrt(Σw·|r - r_cm|² / Σw), in km.

    Parameters
    ----------
    subscriber, x, y : array_like
        One row per visit; ``x``, ``y`` in metres.
    weight : array_like, optional
        Non-negative weight of each visit (default 1).

    Returns
    -------
    ids, rg_km : numpy.ndarray
        Sorted subscriber ids and their radius of gyration.

    Examples
    --------
    >>> ids, rg = radius_of_gyration([1, 1, 2, 2, 2], [0, 6000, 0, 0, 0], [0, 8000, 0, 0, 3000])
    >>> ids.tolist(), rg.round(4).tolist()
    ([1, 2], [5.0, 1.4142])
    """
    sub, x, y = _arrays(subscriber, x, y)
    w = np.ones(len(sub)) if weight is None else _arrays(weight, sub)[0].astype(np.float64)
    if np.any(w < 0):
        raise SynthmobError("radius_of_gyration: weights must be non-negative")
    ids, inv = np.unique(sub, return_inverse=True)
    total = np.bincount(inv, w, minlength=len(ids))
    if np.any(total <= 0):
        raise SynthmobError("radius_of_gyration: every subscriber needs a positive total weight")
    cx = np.bincount(inv, w * x, minlength=len(ids)) / total
    cy = np.bincount(inv, w * y, minlength=len(ids)) / total
    d2 = (x - cx[inv]) ** 2 + (y - cy[inv]) ** 2
    return ids, np.sqrt(np.bincount(inv, w * d2, minlength=len(ids)) / total) / 1000.0


def jump_lengths(subscriber, time, cell, x, y, *, end=None, window_s: float = 600.0) -> tuple[np.ndarray, np.ndarray]:
    """Distances (km) between consecutive distinct locations of each subscriber, ping-pong removed.

    Rows are sorted by (subscriber, time); consecutive rows at one cell form a *visit*, which lasts from
    its first ``time`` to its last ``end``. A visit to B is *ping-pong* when the visits before and after it
    are both at the same cell A and the subscriber is seen back at A no more than ``window_s`` after last
    being seen there (next A visit's start − previous A visit's end ≤ ``window_s``): a phone flipping
    between two cells without moving. Ping-pong visits are dropped in one pass (decided on the original
    sequence, not repeated), the two A visits merge, and the jumps are the distances between the
    remaining consecutive visits, in time order.

    Parameters
    ----------
    subscriber, time, cell, x, y : array_like
        One row per record or stay; ``time`` in epoch ms, ``x``/``y`` the cell's position in metres.
    end : array_like, optional
        When each row ends (epoch ms; default ``time``): the end of a stay, or the record time.
    window_s : float
        Longest excursion, in seconds, treated as ping-pong (default 10 minutes).

    Returns
    -------
    subscriber, km : numpy.ndarray
        The subscriber of each jump and its length.

    Examples
    --------
    A→B→A within 2 minutes is ping-pong; B→C is not (C is not sandwiched), so one jump of 1 km remains:

    >>> s = [0, 0, 0, 0]; t = [0, 60_000, 120_000, 3_600_000]; c = [1, 2, 1, 3]
    >>> jump_lengths(s, t, c, [0, 500, 0, 1000], [0, 0, 0, 0])[1].tolist()
    [1.0]
    """
    sub, t, c, x, y = _arrays(subscriber, time, cell, x, y)
    e = t if end is None else _arrays(end, t)[0]
    order = _by_time(sub, t)
    sub, t, e, c, x, y = sub[order], t[order], e[order], c[order], x[order], y[order]
    first = np.flatnonzero(_heads(sub, c))
    if len(first) == 0:
        return sub[:0], np.zeros(0)
    vs, vc, vt, vx, vy = sub[first], c[first], t[first], x[first], y[first]
    ve = np.maximum.reduceat(e, first)
    drop = np.zeros(len(first), dtype=bool)
    drop[1:-1] = (
        (vs[:-2] == vs[1:-1])
        & (vs[2:] == vs[1:-1])
        & (vc[:-2] == vc[2:])
        & (vt[2:] - ve[:-2] <= window_s * 1000)
    )
    vs, vc, vx, vy = vs[~drop], vc[~drop], vx[~drop], vy[~drop]
    keep = _heads(vs, vc)
    vs, vx, vy = vs[keep], vx[keep], vy[keep]
    same = vs[1:] == vs[:-1]
    km = np.hypot(np.diff(vx), np.diff(vy))[same] / 1000.0
    return vs[1:][same], km


def waiting_times(subscriber, start, end) -> tuple[np.ndarray, np.ndarray]:
    """Duration (hours) of each stay, in (subscriber, start) order: the ground-truth waiting times.

    Examples
    --------
    >>> waiting_times([0, 0], [0, 7_200_000], [3_600_000, 9_000_000])[1].tolist()
    [1.0, 0.5]
    """
    sub, start, end = _arrays(subscriber, start, end)
    order = _by_time(sub, start)
    return sub[order], (end[order] - start[order]) / _MS_PER_H


def record_gaps(subscriber, time, cell) -> tuple[np.ndarray, np.ndarray]:
    """Gaps (hours) between consecutive records of a subscriber at the same cell: the CDR waiting times.

    Examples
    --------
    >>> record_gaps([0, 0, 0, 1], [0, 3_600_000, 5_400_000, 0], [4, 4, 5, 4])[1].tolist()
    [1.0]
    """
    sub, t, c = _arrays(subscriber, time, cell)
    order = _by_time(sub, t)
    sub, t, c = sub[order], t[order], c[order]
    pair = (sub[1:] == sub[:-1]) & (c[1:] == c[:-1])
    return sub[1:][pair], np.diff(t)[pair] / _MS_PER_H


def distinct_places(subscriber, time, cell, *, bins) -> np.ndarray:
    """Mean number of distinct places S(t) visited by t hours after each subscriber's first record.

    A place counts from its first visit (S(0) = 1); the mean is over all subscribers in the input.

    Examples
    --------
    >>> distinct_places([0, 0, 0, 0], [0, 3_600_000, 7_200_000, 10_800_000], [1, 2, 1, 3], bins=[0, 1, 2.5, 3])
    array([1., 2., 2., 3.])
    """
    sub, t, c = _arrays(subscriber, time, cell)
    if len(sub) == 0:
        return np.zeros(len(np.atleast_1d(bins)))
    order = np.lexsort((t, c, sub))
    sub, t, c = sub[order], t[order], c[order]
    ids, inv = np.unique(sub, return_inverse=True)
    t0 = np.full(len(ids), np.iinfo(np.int64).max)
    np.minimum.at(t0, inv, t.astype(np.int64))
    head = _heads(sub, c)
    rel = np.sort((t[head] - t0[inv[head]]) / _MS_PER_H)
    return np.searchsorted(rel, np.asarray(bins, dtype=np.float64), side="right") / len(ids)


def visit_frequency_by_rank(subscriber, cell, *, max_rank: int | None = None) -> np.ndarray:
    """Mean share f_k of a subscriber's visits at their k-th most visited place, for k = 1, 2, ….

    Subscribers with fewer than k places contribute 0 to f_k, so the values sum to 1. Ties in count are
    ranked by cell id.

    Examples
    --------
    >>> visit_frequency_by_rank([0, 0, 0, 0, 1, 1], [5, 5, 5, 6, 7, 8])
    array([0.625, 0.375])
    """
    sub, c = _arrays(subscriber, cell)
    if len(sub) == 0:
        return np.zeros(0)
    order = np.lexsort((c, sub))
    sub, c = sub[order], c[order]
    first = np.flatnonzero(_heads(sub, c))
    count = np.diff(np.append(first, len(sub)))
    psub, pcell = sub[first], c[first]
    ids, inv = np.unique(psub, return_inverse=True)
    share = count / np.bincount(inv, count)[inv]
    ranked = np.lexsort((pcell, -count, psub))
    group_start = np.flatnonzero(_heads(psub[ranked]))
    rank = np.arange(len(ranked)) - np.repeat(group_start, np.diff(np.append(group_start, len(ranked))))
    freq = np.bincount(rank, share[ranked]) / len(ids)
    return freq if max_rank is None else freq[:max_rank]


def exploration(subscriber, time, cell) -> tuple[np.ndarray, np.ndarray]:
    """For every visit after each subscriber's first: places seen before it (S) and whether it is new.

    Fit P_new = ρ S^−γ (Song et al. 2010) by grouping ``new`` by ``S``.

    Examples
    --------
    >>> S, new = exploration([0, 0, 0, 0], [0, 1, 2, 3], [1, 2, 1, 3])
    >>> S.tolist(), new.tolist()
    ([1, 2, 2], [True, False, True])
    """
    sub, t, c = _arrays(subscriber, time, cell)
    order = _by_time(sub, t)
    sub, c = sub[order], c[order]
    n = len(sub)
    by_place = np.lexsort((np.arange(n), c, sub))
    new = np.zeros(n, dtype=bool)
    new[by_place[_heads(sub[by_place], c[by_place])]] = True
    seen = np.cumsum(new)
    start = _heads(sub)
    group = np.maximum.accumulate(np.where(start, np.arange(n), 0)) if n else np.zeros(0, int)
    before = seen - new - (seen[group] - new[group])
    return before[~start], new[~start]


def home_and_work(subscriber, time, cell, *, timezone: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Home and work cell of each subscriber, as REALISM.md defines them.

    Home is the cell with most rows on weekday nights, 22:00–07:00 local time, where a weekday night is
    one that ends on a Monday to Friday morning (Sunday 22:00 to Monday 07:00 counts, Friday 22:00 to
    Saturday 07:00 does not). Work is the cell with most rows on Monday to Friday, 09:00–17:00 local,
    other than home. Ties go to the lower cell id; -1 when there is no such row.

    Examples
    --------
    Monday 2026-03-30 in Berlin, summer time: 04:30 UTC is 06:30 local (night), 05:30 UTC is 07:30 (neither
    night nor working hours), 13:30 UTC is 15:30 (working hours; cell 3 is home, so not work):

    >>> t = [1774845000000, 1774848600000, 1774877400000, 1774877400000, 1774877400000]
    >>> ids, home, work = home_and_work([0] * 5, t, [3, 9, 4, 4, 3], timezone="Europe/Berlin")
    >>> home.tolist(), work.tolist()
    ([3], [4])
    """
    sub, t, c = _arrays(subscriber, time, cell)
    ids = np.unique(sub)
    _, weekday, hour = _local_parts(t, timezone)
    shifted_weekday = np.where(hour >= NIGHT_H[0], (weekday + 1) % 7, weekday)
    night = ((hour >= NIGHT_H[0]) | (hour < NIGHT_H[1])) & (shifted_weekday < 5)
    home = _mode(ids, sub[night], c[night])
    working = (hour >= DAY_H[0]) & (hour < DAY_H[1]) & (weekday < 5)
    working &= c != home[np.searchsorted(ids, sub)]
    return ids, home, _mode(ids, sub[working], c[working])


def _mode(ids: np.ndarray, sub: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """The most frequent cell of each subscriber in ``ids`` (-1 when none; ties to the lower cell)."""
    result = np.full(len(ids), -1, dtype=np.int64)
    if len(sub) == 0:
        return result
    order = np.lexsort((cell, sub))
    sub, cell = sub[order], cell[order]
    first = np.flatnonzero(_heads(sub, cell))
    count = np.diff(np.append(first, len(sub)))
    psub, pcell = sub[first], cell[first]
    ranked = np.lexsort((pcell, -count, psub))
    best = ranked[_heads(psub[ranked])]
    result[np.searchsorted(ids, psub[best])] = pcell[best]
    return result


def home_work_distance_km(home, work, cell_id, x, y) -> np.ndarray:
    """Distance (km) between each home and work cell; NaN where either is -1.

    Examples
    --------
    >>> home_work_distance_km([0, 1], [1, -1], [0, 1], [0, 3000], [0, 4000]).tolist()
    [5.0, nan]
    """
    home, work = _arrays(home, work)
    cell_id, x, y = _arrays(cell_id, x, y)
    order = np.argsort(cell_id)
    cell_id, x, y = cell_id[order], x[order], y[order]
    known = (home >= 0) & (work >= 0)
    h = np.searchsorted(cell_id, np.where(known, home, cell_id[0]))
    w = np.searchsorted(cell_id, np.where(known, work, cell_id[0]))
    return np.where(known, np.hypot(x[h] - x[w], y[h] - y[w]) / 1000.0, np.nan)


def travel_time_per_day(subscriber, depart, arrive, *, timezone: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hours spent travelling per subscriber and local date (trips counted on the date they depart).

    Only subscriber-days with at least one trip appear.

    Examples
    --------
    >>> s, d, h = travel_time_per_day([0, 0], [0, 7_200_000], [1_800_000, 9_000_000], timezone="UTC")
    >>> s.tolist(), d.astype(str).tolist(), h.tolist()
    ([0], ['1970-01-01'], [1.0])
    """
    sub, depart, arrive = _arrays(subscriber, depart, arrive)
    day = local_ms(depart, timezone) // _MS_PER_DAY
    ids, days, inverse = _day_groups(sub, day)
    return ids, days, np.bincount(inverse, (arrive - depart) / _MS_PER_H, minlength=len(ids))


def commuting_trips(subscriber, from_cell, to_cell, people, home, work) -> np.ndarray:
    """Which trips go straight between a subscriber's home and work (or school) cell, either way.

    ``people``, ``home`` and ``work`` describe the subscribers (``work`` < 0 or NaN: none); every trip's
    subscriber must be among ``people``.

    Examples
    --------
    Subscriber 7 lives in cell 1 and works in cell 2; subscriber 8 has no work place:

    >>> commuting_trips([7, 7, 7, 8], [1, 2, 3, 1], [2, 1, 1, 2], [7, 8], [1, 1], [2, -1]).tolist()
    [True, True, False, False]
    """
    sub, origin, destination = _arrays(subscriber, from_cell, to_cell)
    ids = np.asarray(people)
    order = np.argsort(ids, kind="stable")
    where = order[np.searchsorted(ids, sub, sorter=order)]
    h = np.asarray(home, dtype=np.float64)[where]
    w = np.nan_to_num(np.asarray(work, dtype=np.float64), nan=-1.0)[where]
    return (w >= 0) & (((origin == h) & (destination == w)) | ((origin == w) & (destination == h)))


def records_per_subscriber_day(subscriber, time, *, timezone: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Number of records per subscriber and local date (only days with records).

    Examples
    --------
    >>> s, d, n = records_per_subscriber_day([0, 0, 0], [0, 1, 90_000_000], timezone="UTC")
    >>> s.tolist(), d.astype(str).tolist(), n.tolist()
    ([0, 0], ['1970-01-01', '1970-01-02'], [2, 1])
    """
    sub, t = _arrays(subscriber, time)
    day = local_ms(t, timezone) // _MS_PER_DAY
    ids, days, inverse = _day_groups(sub, day)
    return ids, days, np.bincount(inverse, minlength=len(ids))


def weekly_profile(time, *, timezone: str) -> np.ndarray:
    """Share of records in each local hour of the week: 168 values, index 0 = Monday 00:00–01:00.

    Examples
    --------
    >>> p = weekly_profile([0, 3_600_000], timezone="UTC")  # Thursday 1970-01-01, 00:00 and 01:00
    >>> len(p), p[3 * 24 : 3 * 24 + 3].tolist()
    (168, [0.5, 0.5, 0.0])
    """
    t = np.asarray(time)
    return weekly_counts(t, timezone=timezone).astype(np.float64) / max(len(t), 1)


def weekly_counts(time, *, timezone: str) -> np.ndarray:
    """Records in each local hour of the week: 168 counts, index 0 = Monday 00:00–01:00.

    Counts of parts of a table add up to those of the whole, so a table can be counted part by part.

    Examples
    --------
    >>> c = weekly_counts([0, 3_600_000, 3_700_000], timezone="UTC")  # Thursday 1970-01-01
    >>> len(c), c[3 * 24 : 3 * 24 + 3].tolist()
    (168, [1, 2, 0])
    """
    _, weekday, hour = _local_parts(np.asarray(time), timezone)
    return np.bincount(weekday * 24 + hour, minlength=168)


def inter_event_times(subscriber, time) -> np.ndarray:
    """Seconds between consecutive records of each subscriber.

    Examples
    --------
    >>> inter_event_times([0, 1, 0, 0], [0, 5000, 3000, 1000]).tolist()
    [1.0, 2.0]
    """
    sub, t = _arrays(subscriber, time)
    order = _by_time(sub, t)
    sub, t = sub[order], t[order]
    return (np.diff(t)[sub[1:] == sub[:-1]]) / 1000.0


# --- arrays from a run -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Visits:
    """One row per visit to a cell, sorted by (subscriber, start); times in epoch ms, positions in metres."""

    subscriber: np.ndarray
    start_ms: np.ndarray
    end_ms: np.ndarray
    cell: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray


def cell_xy(run: Run, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The planar position (``x_m``, ``y_m``) of each of ``cell``, from the run's cells table."""
    cells = run.table("cells")
    ids = cells[schema.CELL_ID].to_numpy()
    index = np.searchsorted(ids, cell)
    return cells["x_m"].to_numpy()[index], cells["y_m"].to_numpy()[index]


def truth_visits(run: Run) -> Visits:
    """The ground truth: one visit per stay, at the cell's ``x_m``/``y_m``."""
    stays = run.table("stays")
    cell = stays[schema.CELL_ID].to_numpy()
    x, y = cell_xy(run, cell)
    return Visits(stays[schema.SUBSCRIBER_ID].to_numpy(), to_ms(stays["start"]), to_ms(stays["end"]), cell, x, y)


def record_visits(run: Run, *, events: pa.Table | None = None) -> Visits:
    """The operator's view: consecutive records of a subscriber at one cell merged into one visit.

    ``events`` is the run's events table, when already read.
    """
    events = run.table("events") if events is None else events  # sorted by subscriber and time
    sub, start, end, cell = merge_visits(
        events[schema.SUBSCRIBER_ID].to_numpy(), to_ms(events["timestamp"]), events[schema.CELL_ID].to_numpy()
    )
    x, y = cell_xy(run, cell)
    return Visits(sub, start, end, cell, x, y)


def merge_visits(subscriber, time, cell) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Consecutive records of a subscriber at one cell merged into a visit: its subscriber, first and last
    record time, and cell. The records must be sorted by (subscriber, time).

    Examples
    --------
    >>> sub, start, end, cell = merge_visits([0, 0, 0, 1], [0, 5, 9, 2], [4, 4, 5, 4])
    >>> sub.tolist(), start.tolist(), end.tolist(), cell.tolist()
    ([0, 0, 1], [0, 9, 2], [5, 9, 2], [4, 5, 4])
    """
    sub, t, c = _arrays(subscriber, time, cell)
    first = np.flatnonzero(_heads(sub, c))
    end = np.maximum.reduceat(t, first) if len(first) else t[:0]
    return sub[first], t[first], end, c[first]


def truth_samples(run: Run, *, step_s: int = 3600) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The true serving cell of every subscriber every ``step_s`` seconds: (subscriber, epoch ms, cell).

    Sampling on a regular clock weighs places by time spent, as records do on average; one row per stay
    would count a night at home once.
    """
    from synthmob.events import positions

    stays, trips = run.table("stays"), run.table("trips")
    start, stop = to_ms(stays["start"]), to_ms(stays["end"])
    if len(start) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
    epoch_ms = int(start.min()) // 1000 * 1000
    ids = np.unique(stays[schema.SUBSCRIBER_ID].to_numpy())
    where = positions(stays, trips, int(ids[0]), epoch_ms // 1000)
    grid = np.arange(0, int(stop.max()) - epoch_ms, step_s * 1000, dtype=np.int64)
    sub = np.repeat(ids, len(grid))
    t = np.tile(grid, len(ids))
    return sub, t + epoch_ms, where.cell_at(sub - ids[0], t)


def measure(run: Run, *, bins_h=None) -> dict[str, dict[str, Any]]:
    """Every measure of this module on a run, from the ground truth and from the records.

    Returns ``{"truth": {...}, "records": {...}}`` with the same keys in both.
    """
    timezone = run.manifest["scenario"]["timezone"]
    bins = np.arange(0, 24 * run.manifest["scenario"]["days"] + 1, 1.0) if bins_h is None else np.asarray(bins_h)
    events, trips = run.table("events"), run.table("trips")
    e_sub, e_t, e_cell = events[schema.SUBSCRIBER_ID].to_numpy(), to_ms(events["timestamp"]), events[schema.CELL_ID].to_numpy()
    samples = truth_samples(run)
    cells = run.table("cells")
    cell_positions = (cells[schema.CELL_ID].to_numpy(), cells["x_m"].to_numpy(), cells["y_m"].to_numpy())
    out: dict[str, dict[str, Any]] = {}
    for name, v, located in (("truth", truth_visits(run), samples), ("records", record_visits(run, events=events), (e_sub, e_t, e_cell))):
        ids, home, work = home_and_work(*located, timezone=timezone)
        out[name] = {
            "radius_of_gyration": radius_of_gyration(v.subscriber, v.x_m, v.y_m),
            "jump_lengths": jump_lengths(v.subscriber, v.start_ms, v.cell, v.x_m, v.y_m, end=v.end_ms),
            "waiting_times": waiting_times(v.subscriber, v.start_ms, v.end_ms)
            if name == "truth"
            else record_gaps(e_sub, e_t, e_cell),
            "distinct_places": distinct_places(v.subscriber, v.start_ms, v.cell, bins=bins),
            "visit_frequency_by_rank": visit_frequency_by_rank(v.subscriber, v.cell),
            "exploration": exploration(v.subscriber, v.start_ms, v.cell),
            "home_and_work": (ids, home, work),
            "home_work_distance_km": home_work_distance_km(home, work, *cell_positions),
        }
    out["truth"]["travel_time_per_day"] = travel_time_per_day(
        trips[schema.SUBSCRIBER_ID].to_numpy(), to_ms(trips["depart"]), to_ms(trips["arrive"]), timezone=timezone
    )
    out["records"]["records_per_subscriber_day"] = records_per_subscriber_day(e_sub, e_t, timezone=timezone)
    out["records"]["weekly_profile"] = weekly_profile(e_t, timezone=timezone)
    out["records"]["inter_event_times"] = inter_event_times(e_sub, e_t)
    return out
