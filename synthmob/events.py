"""The operator's view of a shard: voice, SMS, data sessions, handovers and location updates.

Records are sampled in numpy over a whole shard at once from the ground truth, never one SimPy event each:

1. :func:`positions` turns stays and trips into a timeline of (subscriber, time, cell) change points: where
   each subscriber's handset is served at any moment.
2. :func:`originating` draws the subscriber's own voice calls, SMS and data sessions: bursts from a Poisson
   process whose rate follows a weekly profile by local hour, scaled by a heavy-tailed per-subscriber
   activity; the counterpart of a call comes from the social network.
3. After every shard has run, each call's leg is routed to the callee's shard (:mod:`synthmob.terminating`),
   which finds the callee's cell at that instant in its timeline.
4. :func:`finish` adds handovers (a session in progress changing cell along a trip), location updates (an
   idle handset entering a new location area) and periodic updates (timer T3412 running out), moves a
   configurable share of records to a neighbouring cell (a handset camping for a while on a neighbour it
   hears well from where it is), and sorts the shard by subscriber and time.

Times are integer milliseconds since the horizon's start inside this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthmob import schema
from synthmob.calendar import Calendar
from synthmob.scenario import Events
from synthmob.social import Contacts

#: Relative activity by local hour (mean 1 over the day): a night trough, a daytime plateau and an evening
#: peak on weekdays; a later start and a flatter day at weekends. Shape after the Milan telecommunications
#: activity data (Barlacchi et al., Scientific Data 2, 2015), hour 0 first.
WEEKDAY_PROFILE = np.array(
    [0.35, 0.2, 0.12, 0.08, 0.08, 0.15, 0.4, 0.85, 1.25, 1.4, 1.45, 1.45,
     1.45, 1.4, 1.4, 1.4, 1.45, 1.55, 1.6, 1.6, 1.5, 1.3, 1.0, 0.65]
)
WEEKEND_PROFILE = np.array(
    [0.5, 0.35, 0.22, 0.14, 0.1, 0.1, 0.18, 0.35, 0.65, 0.95, 1.2, 1.35,
     1.45, 1.5, 1.5, 1.5, 1.5, 1.55, 1.6, 1.6, 1.55, 1.4, 1.15, 0.8]
)
WEEKDAY_PROFILE = WEEKDAY_PROFILE / WEEKDAY_PROFILE.mean()
WEEKEND_PROFILE = WEEKEND_PROFILE / WEEKEND_PROFILE.mean()

_SHIFT = np.int64(1) << np.int64(40)  # key = local subscriber index · 2^40 + ms (2^40 ms ≈ 35 years)


@dataclass(frozen=True)
class Positions:
    """Change points of where each subscriber of a shard is served, sorted by (subscriber, time)."""

    sub: np.ndarray  # int64, local index in the shard
    t_ms: np.ndarray  # int64, since the horizon's start
    cell: np.ndarray  # int32
    moving: np.ndarray  # bool: a point along a trip

    @property
    def keys(self) -> np.ndarray:
        return self.sub * _SHIFT + self.t_ms

    def cell_at(self, sub: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
        """The serving cell of each (subscriber, time) (vectorised as-of look-up)."""
        index = np.searchsorted(self.keys, np.asarray(sub) * _SHIFT + np.asarray(t_ms), side="right") - 1
        return self.cell[index]


#: Codes of ``event_type`` (index in :data:`schema.EVENT_TYPES`) and ``direction`` (in :data:`schema.DIRECTIONS`).
VOICE, SMS, DATA, HANDOVER, LOCATION_UPDATE, PERIODIC_UPDATE = range(6)
OUT, IN = range(2)
_TYPE_NAMES = pa.array(list(schema.EVENT_TYPES), pa.string())
_DIRECTION_NAMES = pa.array(list(schema.DIRECTIONS), pa.string())


@dataclass(frozen=True)
class Records:
    """Records of a shard as numpy columns, in the order of :data:`schema.EVENTS`.

    The string columns are codes (``kind`` into ``schema.EVENT_TYPES``, ``direction`` into
    ``schema.DIRECTIONS``); -1 (codes, ids, bytes) and NaN (durations) stand for null. Records are merged,
    sorted and displaced as arrays and become an Arrow table once, when written.
    """

    sub: np.ndarray  # int64, subscriber id
    t_ms: np.ndarray  # int64, since the horizon's start
    cell: np.ndarray  # int32
    kind: np.ndarray  # int8
    direction: np.ndarray  # int8
    counterpart: np.ndarray  # int64
    call_id: np.ndarray  # int64
    duration_s: np.ndarray  # float64
    bytes_up: np.ndarray  # int64
    bytes_down: np.ndarray  # int64

    @classmethod
    def of(
        cls, sub: np.ndarray, t_ms: np.ndarray, cell: np.ndarray, kind: int | np.ndarray, *,
        direction: int | np.ndarray = -1, counterpart: int | np.ndarray = -1, call_id: int | np.ndarray = -1,
        duration_s: float | np.ndarray = np.nan, bytes_up: int | np.ndarray = -1, bytes_down: int | np.ndarray = -1,
    ) -> "Records":
        """Records from columns; a scalar is repeated for every record."""
        n = len(t_ms)

        def column(values: int | float | np.ndarray, dtype: type) -> np.ndarray:
            return np.full(n, values, dtype) if np.ndim(values) == 0 else np.asarray(values, dtype=dtype)

        return cls(
            column(sub, np.int64), column(t_ms, np.int64), column(cell, np.int32), column(kind, np.int8),
            column(direction, np.int8), column(counterpart, np.int64), column(call_id, np.int64),
            column(duration_s, np.float64), column(bytes_up, np.int64), column(bytes_down, np.int64),
        )

    def __len__(self) -> int:
        return len(self.t_ms)

    def columns(self) -> list[np.ndarray]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]

    def take(self, index: np.ndarray) -> "Records":
        return Records(*(column[index] for column in self.columns()))

    def replace(self, **columns: np.ndarray) -> "Records":
        return dataclasses.replace(self, **columns)

    @staticmethod
    def concat(parts: list["Records"]) -> "Records":
        return Records(*(np.concatenate(columns) for columns in zip(*(part.columns() for part in parts))))

    def to_scratch(self) -> pa.Table:
        """The records as plain numeric columns (:data:`SCRATCH`), as a run keeps them between its stages:
        no strings or null masks to build now and decode when they are read back."""
        return pa.Table.from_arrays([pa.array(column) for column in self.columns()], schema=SCRATCH)

    @classmethod
    def from_scratch(cls, table: pa.Table) -> "Records":
        """The records of a table of :data:`SCRATCH` columns."""
        return cls(*(table[name].to_numpy() for name in SCRATCH.names))

    def to_table(self, epoch_s: int, *, coded: bool = False) -> pa.Table:
        """The records as a table of :data:`schema.EVENTS`.

        With ``coded``, ``event_type`` and ``direction`` are dictionaries over their codes instead of strings:
        what :func:`synthmob.output.write_table` writes fastest, and what reads back as :data:`schema.EVENTS`.
        """

        def nullable(values: np.ndarray, type: pa.DataType = pa.int64()) -> pa.Array:
            return pa.array(values, mask=values < 0, type=type)

        def strings(codes: pa.Array, names: pa.Array) -> pa.Array:
            return pa.DictionaryArray.from_arrays(codes, names) if coded else names.take(codes)

        stamps = pa.array(self.t_ms + epoch_s * 1000, type=pa.int64()).cast(schema.TIMESTAMP)
        columns = [
            pa.array(self.sub),
            stamps,
            pa.array(self.cell),
            strings(pa.array(self.kind), _TYPE_NAMES),
            strings(nullable(self.direction, pa.int8()), _DIRECTION_NAMES),
            nullable(self.counterpart),
            nullable(self.call_id),
            pa.array(self.duration_s, mask=np.isnan(self.duration_s), type=pa.float64()),
            nullable(self.bytes_up),
            nullable(self.bytes_down),
        ]
        if not coded:
            return pa.Table.from_arrays(columns, schema=schema.EVENTS)
        fields = [field.with_type(column.type) for field, column in zip(schema.EVENTS, columns)]
        return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=schema.EVENTS.metadata))


#: :class:`Records` as plain numeric columns, named after its fields (see :meth:`Records.to_scratch`).
SCRATCH = pa.schema(
    [
        ("sub", pa.int64()), ("t_ms", pa.int64()), ("cell", pa.int32()), ("kind", pa.int8()),
        ("direction", pa.int8()), ("counterpart", pa.int64()), ("call_id", pa.int64()),
        ("duration_s", pa.float64()), ("bytes_up", pa.int64()), ("bytes_down", pa.int64()),
    ]
)


def _ms(column: pa.ChunkedArray | pa.Array, epoch_ms: int) -> np.ndarray:
    return pc.cast(column, pa.int64()).to_numpy() - epoch_ms


def positions(stays: pa.Table, trips: pa.Table, first_id: int, epoch_s: int) -> Positions:
    """The timeline of a shard from its stays and trips (each sorted by subscriber and time)."""
    epoch_ms = epoch_s * 1000
    steps = pc.list_flatten(trips["path"])
    lengths = pc.list_value_length(trips["path"]).to_numpy()
    sub = np.concatenate(
        [stays[schema.SUBSCRIBER_ID].to_numpy(), np.repeat(trips[schema.SUBSCRIBER_ID].to_numpy(), lengths)]
    ) - first_id
    t = np.concatenate([_ms(stays["start"], epoch_ms), _ms(pc.struct_field(steps, "entered"), epoch_ms)])
    cell = np.concatenate(
        [stays[schema.CELL_ID].to_numpy(), pc.struct_field(steps, schema.CELL_ID).to_numpy()]
    ).astype(np.int32)
    moving = np.concatenate([np.zeros(stays.num_rows, bool), np.ones(len(t) - stays.num_rows, bool)])
    order = _by_subscriber_and_time(sub, t, moving)  # a stay's start comes before a trip point at the same instant
    return Positions(sub[order].astype(np.int64), t[order].astype(np.int64), cell[order], moving[order])


def _by_subscriber_and_time(sub: np.ndarray, t: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """The stable order by (sub, t, moving): one packed key where it fits (sub under 2^22, t in [0, 2^40)),
    which sorts in about half the time of a three-key lexsort.

    Examples
    --------
    >>> _by_subscriber_and_time(np.array([1, 0, 0, 0]), np.array([5, 9, 9, 2]), np.array([0, 1, 0, 0])).tolist()
    [3, 2, 1, 0]
    """
    if len(sub) and sub.min() >= 0 and sub.max() < 2**22 and t.min() >= 0 and t.max() < 2**40:
        key = (sub.astype(np.int64) << 41) | (t.astype(np.int64) << 1) | moving.astype(np.int64)
        return np.argsort(key, kind="stable")
    return np.lexsort((moving, t, sub))


def hour_bins(calendar: Calendar) -> tuple[np.ndarray, np.ndarray]:
    """Start (ms) and length (ms) of every local hour of the horizon, and its profile weight."""
    starts = [calendar.wall(d, h * 3600.0) for d in range(calendar.days) for h in range(24)]
    edges = np.append(np.array(starts), calendar.horizon_s)
    edges = np.round(edges * 1000.0).astype(np.int64)
    weekend = np.repeat(calendar.weekdays >= 5, 24)
    weights = np.where(weekend, np.tile(WEEKEND_PROFILE, calendar.days), np.tile(WEEKDAY_PROFILE, calendar.days))
    return edges, weights


def _bursts(rate_per_day: np.ndarray, calendar: Calendar, cfg: Events, rng: np.random.Generator):
    """Event times (ms) and owners (local index) of a bursty, weekly-modulated Poisson process."""
    edges, weights = hour_bins(calendar)
    length = np.diff(edges)
    expected = rate_per_day[:, None] * (weights * length / 86_400_000.0)[None, :] / cfg.burst_mean
    counts = rng.poisson(expected)
    owner_bin = np.nonzero(counts)
    repeat = counts[owner_bin]
    owner = np.repeat(owner_bin[0], repeat)
    hour = np.repeat(owner_bin[1], repeat)
    start = edges[hour] + (rng.random(len(owner)) * length[hour]).astype(np.int64)
    if len(owner) == 0:  # a shard of a few quiet subscribers can draw no burst at all
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    size = rng.geometric(1.0 / cfg.burst_mean, len(owner))
    burst = np.repeat(np.arange(len(owner)), size)
    gaps = rng.exponential(cfg.burst_gap_s * 1000.0, len(burst))
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    gaps[first] = 0.0
    running = np.cumsum(gaps)
    offset = running - running[first][burst]
    times = start[burst] + offset.astype(np.int64)
    keep = times < edges[-1]
    return owner[burst][keep].astype(np.int64), times[keep]


def originating(
    subscriber_ids: np.ndarray,
    calendar: Calendar,
    cfg: Events,
    contacts: Contacts,
    where: Positions,
    shard: int,
    *,
    rng: np.random.Generator,
) -> Records:
    """Voice calls and SMS made, and data sessions opened, by the subscribers of one shard."""
    n = len(subscriber_ids)
    sigma = cfg.activity_sigma
    talk_activity = rng.lognormal(-(sigma**2) / 2, sigma, n)
    data_activity = rng.lognormal(-(sigma**2) / 2, sigma, n)
    talk_rate = cfg.voice_per_day + cfg.sms_per_day

    talker, talk_t = _bursts(talk_rate * talk_activity, calendar, cfg, rng)
    reachable = contacts.degree(subscriber_ids[talker]) > 0  # nobody to call in a run of one
    talker, talk_t = talker[reachable], talk_t[reachable]
    is_voice = rng.random(len(talker)) < (cfg.voice_per_day / talk_rate if talk_rate > 0 else 0.0)
    talk_duration = np.where(is_voice, cfg.call_median_s * rng.lognormal(0.0, cfg.call_sigma, len(talker)), np.nan)
    counterpart = contacts.pick(subscriber_ids[talker], rng=rng) if len(talker) else np.empty(0, np.int64)

    user, data_t = _bursts(cfg.data_per_day * data_activity, calendar, cfg, rng)
    z = rng.standard_normal((2, len(user)))
    volume = cfg.data_median_kb * 1000.0 * np.exp(cfg.data_sigma * z[0])
    # A long session is closed by an interim record every hour (partial CDRs), so no record lasts longer.
    data_duration = np.minimum(cfg.data_median_s * np.exp(cfg.data_sigma * (0.6 * z[0] + 0.8 * z[1])), 3600.0)
    up = volume * cfg.uplink_ratio * rng.lognormal(0.0, 0.5, len(user))

    local = np.concatenate([talker, user])
    t = np.concatenate([talk_t, data_t])
    none = np.full(len(user), -1, np.int64)
    return Records.of(
        subscriber_ids[local],
        t,
        where.cell_at(local, t),
        np.concatenate([np.where(is_voice, VOICE, SMS), np.full(len(user), DATA)]),
        direction=np.concatenate([np.full(len(talker), OUT), np.full(len(user), -1)]),
        counterpart=np.concatenate([counterpart, none]),
        call_id=(np.int64(shard) << np.int64(32)) + np.arange(len(t), dtype=np.int64),
        duration_s=np.concatenate([talk_duration, data_duration]),
        bytes_up=np.concatenate([np.full(len(talker), -1), np.round(up)]),
        bytes_down=np.concatenate([np.full(len(talker), -1), np.round(volume)]),
    )


def finish(
    own: Records,
    incoming: pa.Table,
    where: Positions,
    first_id: int,
    calendar: Calendar,
    area_code: np.ndarray,
    neighbours: tuple[np.ndarray, np.ndarray],
    cfg: Events,
    *,
    salt: int,
    by_day: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Records:
    """All records of a shard: its own and incoming legs, plus handovers and location updates, sorted by
    subscriber, time, event type (in the order of ``schema.EVENT_TYPES``) and call id.

    ``salt`` keys the counter-based draws of :func:`_displaced` (one value per run, drawn from its generator).
    With ``by_day``, a function from times (ms since the horizon's start) to day numbers, records are first
    grouped by day, in that order within each.
    """
    # Incoming legs arrive in whatever order the routing wrote them. Nothing below depends on the order of the
    # legs (no draws; sessions are sorted where it matters), and the records are sorted once, at the end.
    legs = Records.concat([own, _terminating(incoming, where, first_id)])
    sub, t = legs.sub - first_id, legs.t_ms
    session = (legs.kind == VOICE) | (legs.kind == DATA)
    duration_ms = np.round(np.nan_to_num(legs.duration_s[session]) * 1000.0).astype(np.int64)
    s_sub, s_start = sub[session], t[session]
    s_end = s_start + duration_ms
    s_id = legs.call_id[session]

    keys = where.keys
    change = np.ones(len(keys), bool)
    change[1:] = (where.cell[1:] != where.cell[:-1]) | (where.sub[1:] != where.sub[:-1])
    first_point = np.ones(len(keys), bool)
    first_point[1:] = where.sub[1:] != where.sub[:-1]

    # Handovers: a session in progress while its subscriber enters another cell.
    lo = np.searchsorted(keys, s_sub * _SHIFT + s_start, side="right")
    hi = np.searchsorted(keys, s_sub * _SHIFT + s_end, side="left")
    span = np.maximum(hi - lo, 0)
    owner = np.repeat(np.arange(len(lo)), span)
    point = np.repeat(lo, span) + (np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
    real = change[point] & ~first_point[point]
    owner, point = owner[real], point[real]
    handovers = Records.of(
        where.sub[point] + first_id, where.t_ms[point], where.cell[point], HANDOVER, call_id=s_id[owner]
    )

    # Location updates: an idle handset entering a cell of another location area.
    area = area_code[where.cell]
    new_area = np.zeros(len(keys), bool)
    new_area[1:] = (area[1:] != area[:-1]) & (where.sub[1:] == where.sub[:-1])
    starts = s_sub * _SHIFT + s_start
    order = np.argsort(starts)  # sessions starting at one instant may come in any order: only maxima are used
    starts_sorted = starts[order]
    busy_until = np.maximum.accumulate(s_sub[order] * _SHIFT + s_end[order]) if len(order) else np.empty(0, np.int64)
    candidates = np.flatnonzero(new_area)
    before = np.searchsorted(starts_sorted, keys[candidates], side="right") - 1
    in_session = (before >= 0) & (busy_until[np.maximum(before, 0)] > keys[candidates])
    lu = candidates[~in_session]
    updates = Records.of(where.sub[lu] + first_id, where.t_ms[lu], where.cell[lu], LOCATION_UPDATE)

    records = Records.concat([legs, handovers, updates])
    order = _order(records.sub, records.t_ms, records.kind, records.call_id)
    # Periodic updates come from the records in order, and go after any record at the same instant (theirs is
    # the last event type): merged in, not sorted again with the rest.
    contacts = (records.sub[order] - first_id) * _SHIFT + records.t_ms[order]
    periodic = _periodic(contacts, where, calendar, cfg)
    at = np.searchsorted(contacts, periodic.sub * _SHIFT + periodic.t_ms, side="right")
    order = np.insert(order, at, len(records) + np.arange(len(periodic)))
    records = Records.concat([records, periodic.replace(sub=periodic.sub + first_id)])
    if by_day is not None:  # and then by local date, for the files: a stable sort keeps the order within a day
        order = order[_stable_order(by_day(records.t_ms[order]))]
    records = records.take(order)
    cell = _displaced(records.sub, records.t_ms + calendar.epoch_s * 1000, records.cell, neighbours, cfg, salt)
    return records.replace(cell=cell)


def _terminating(incoming: pa.Table, where: Positions, first_id: int) -> Records:
    """The callee's legs routed to this shard (:data:`synthmob.terminating.INCOMING`), each at the cell
    serving the callee at that instant."""
    sub, t = incoming["sub"].to_numpy(), incoming["t_ms"].to_numpy()
    return Records.of(
        sub, t, where.cell_at(sub - first_id, t), incoming["kind"].to_numpy(), direction=IN,
        counterpart=incoming["counterpart"].to_numpy(), call_id=incoming["call_id"].to_numpy(),
        duration_s=incoming["duration_s"].to_numpy(),
    )


def _periodic(contacts: np.ndarray, where: Positions, calendar: Calendar, cfg: Events) -> Records:
    """Periodic updates wherever a handset has been silent for a whole timer period (the timer restarts at
    every contact with the network, and the horizon's start counts as a first contact for everyone).

    ``contacts`` are the shard's records as sorted keys, local subscriber index · 2^40 + ms (times lie in
    [0, horizon), under 2^35 ms, so each key decodes to its subscriber and time). The updates come sorted by
    subscriber and time, with local subscriber indices.

    Examples
    --------
    >>> cal = Calendar.create(__import__("datetime").date(2026, 3, 23), 1, "UTC")
    >>> where = Positions(np.array([0, 1]), np.array([0, 0]), np.array([4, 7], np.int32), np.zeros(2, bool))
    >>> hour = 3_600_000
    >>> up = _periodic(np.array([10 * hour, _SHIFT + 23 * hour]), where, cal, Events(periodic_update_min=600))
    >>> up.sub.tolist(), (up.t_ms // hour).tolist(), up.cell.tolist()
    ([0, 1, 1], [20, 10, 20], [4, 7, 7])
    """
    period = int(round(cfg.periodic_update_min * 60_000))
    end = int(round(calendar.horizon_s * 1000))
    n = int(where.sub.max()) + 1 if len(where.sub) else 0
    starts = np.arange(n, dtype=np.int64) * _SHIFT
    contact = np.insert(contacts, np.searchsorted(contacts, starts), starts)
    sub, t = contact // _SHIFT, contact % _SHIFT
    last = np.ones(len(sub), bool)
    last[:-1] = sub[1:] != sub[:-1]
    following = np.where(last, end, np.roll(t, -1))
    count = np.maximum((following - t - 1) // period, 0)
    owner = np.repeat(np.arange(len(t)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + 1
    when = t[owner] + k * period
    who = sub[owner]
    return Records.of(who, when, where.cell_at(who, when), PERIODIC_UPDATE)


def _displaced(
    sub: np.ndarray, t_ms: np.ndarray, cell: np.ndarray, neighbours: tuple[np.ndarray, np.ndarray], cfg: Events,
    salt: int,
) -> np.ndarray:
    """The cells of records (subscriber, epoch ms, cell) after some are moved to a neighbouring cell whose
    coverage overlaps: the ping-pong real data has.

    A handset that stays put is served by its best cell most of the time, but now and then camps on a
    neighbouring one for a while, and from one spot it hears the same neighbours at the same strengths.
    So each subscriber's time is cut into windows of ``cfg.neighbour_dwell_min`` (starting at an offset of
    their own); in a share ``cfg.neighbour_probability`` of (window, serving cell) pairs, every record goes
    to one neighbour. The neighbours of a cell rank in a fixed order for each subscriber (their spot in it),
    and the k-th (k = 0, 1, …) is taken with probability ∝ ``cfg.neighbour_decay``^k.

    Every choice is a hash of (``salt``, subscriber, window, cell), and the ranking a hash of (``salt``,
    subscriber, cell, neighbour): counter-based draws, the same whichever shard or worker makes them, and
    whatever the order of the records.
    """
    indptr, indices = neighbours
    cell = np.array(cell, dtype=np.int32)
    if cfg.neighbour_probability == 0.0 or len(cell) == 0:
        return cell
    sub, t_ms = np.asarray(sub, np.int64), np.asarray(t_ms, np.int64)
    dwell_ms = max(1, int(round(cfg.neighbour_dwell_min * 60_000)))
    window = (t_ms + (_mix(salt, sub) % np.uint64(dwell_ms)).astype(np.int64)) // dwell_ms
    has_neighbours = indptr[cell + 1] > indptr[cell]
    moved = np.flatnonzero((_unit(_mix(salt, sub, window, cell, 1)) < cfg.neighbour_probability) & has_neighbours)
    if len(moved) == 0:
        return cell
    here, who = cell[moved], sub[moved]
    degree = indptr[here + 1] - indptr[here]
    rank = _truncated_geometric(_unit(_mix(salt, who, window[moved], here, 2)), cfg.neighbour_decay, degree)
    # A subscriber's ranking of a cell's neighbours is made once per (subscriber, cell) pair.
    if who.min() >= 0 and who.max() < 2**31:
        pairs, pair_of = np.unique((who << 32) | here.astype(np.int64), return_inverse=True)
        p_who, p_here = pairs >> 32, pairs & 0xFFFFFFFF
    else:
        pairs, pair_of = np.unique(np.stack([who, here.astype(np.int64)]), axis=1, return_inverse=True)
        p_who, p_here = pairs[0], pairs[1]
    p_degree = indptr[p_here + 1] - indptr[p_here]
    owner = np.repeat(np.arange(len(p_here)), p_degree)
    start = np.cumsum(p_degree) - p_degree
    candidate = indices[np.repeat(indptr[p_here] - start, p_degree) + np.arange(int(p_degree.sum()))]
    order = np.lexsort((_mix(salt, p_who[owner], p_here[owner], candidate), owner))
    cell[moved] = candidate[order[start[pair_of.ravel()] + rank]]
    return cell



def _truncated_geometric(u: np.ndarray, q: float, n: np.ndarray) -> np.ndarray:
    """Rank k in 0 … n-1 with P(k) ∝ q^k, by inversion of uniform ``u``.

    Examples
    --------
    >>> _truncated_geometric(np.array([0.0, 0.6, 0.7, 0.99]), 0.5, np.array([2, 2, 2, 2])).tolist()  # P = 2/3, 1/3
    [0, 0, 1, 1]
    >>> _truncated_geometric(np.array([0.0, 0.5, 0.99]), 1.0, np.array([4, 4, 4])).tolist()
    [0, 2, 3]
    """
    if q >= 1.0:
        k = np.floor(u * n)
    else:
        # P(K <= k) = (1 - q^(k+1)) / (1 - q^n)
        k = np.floor(np.log1p(-u * (1.0 - q ** n.astype(np.float64))) / math.log(q))
    return np.minimum(k.astype(np.int64), n - 1)


def _unit(h: np.ndarray) -> np.ndarray:
    """Uniform variates in [0, 1) from 64-bit hashes (their top 53 bits)."""
    return (h >> np.uint64(11)).astype(np.float64) / 2.0**53


def _mix(salt: int, *keys: np.ndarray | int) -> np.ndarray:
    """A 64-bit hash of integer keys, element-wise: SplitMix64's finaliser over a multiply-xor chain.

    Examples
    --------
    >>> h = _mix(7, np.array([1, 2, 1]), 5)
    >>> bool(h[0] == h[2]), bool(h[0] == h[1])
    (True, False)
    """
    size = max(np.size(key) for key in keys)
    with np.errstate(over="ignore"):
        h = np.full(size, np.uint64(salt % 2**64) * np.uint64(0x9E3779B97F4A7C15), np.uint64)
        for key in keys:
            h = (h ^ np.asarray(key, dtype=np.int64).astype(np.uint64)) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def _stable_order(day: np.ndarray) -> np.ndarray:
    """The stable order of small non-negative integers (a radix sort when they fit 16 bits)."""
    small = len(day) > 0 and day.min() >= 0 and day.max() < 2**15
    return np.argsort(day.astype(np.int16) if small else day, kind="stable")


def _order(sub: np.ndarray, t: np.ndarray, type_code: np.ndarray, call_id: np.ndarray) -> np.ndarray:
    """The stable order by (sub, t, type_code, call_id): what ``np.lexsort((call_id, type_code, t, sub))`` gives.

    Subscriber, time and type are packed into one int64 key where they fit (a shard's subscribers span
    under 2^20, its times under 2^35 ms, about a year; types under 8). The key is sorted alone (an unstable
    sort, several times faster than a lexsort), and only the rare runs of equal keys are then put in order
    of call id and original position; otherwise the lexsort.

    Examples
    --------
    >>> sub, t = np.array([5, 5, 4, 5, 5]), np.array([10, 10, 99, 3, 10])
    >>> _order(sub, t, np.array([1, 0, 0, 0, 0]), np.array([7, 8, 9, 1, 2])).tolist()
    [2, 3, 4, 1, 0]
    """
    if len(sub) == 0:
        return np.zeros(0, np.int64)
    sub = sub - sub.min()
    t = t - t.min()
    if sub.max() < 2**20 and t.max() < 2**35 and type_code.max() < 8:
        key = (sub.astype(np.int64) << 38) | (t.astype(np.int64) << 3) | type_code.astype(np.int64)
        order = np.argsort(key)
        ordered = key[order]
        tie = np.flatnonzero(ordered[1:] == ordered[:-1])
        if len(tie):
            runs = np.unique(np.concatenate([tie, tie + 1]))  # positions in runs of equal keys, each run contiguous
            within = order[runs]
            order[runs] = within[np.lexsort((within, call_id[within], ordered[runs]))]
        return order
    return np.lexsort((call_id, type_code, t, sub))
