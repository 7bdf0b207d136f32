"""The operator's records against the ground truth they are derived from."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import synthmob
from synthmob import schema
from synthmob.calendar import Calendar
from synthmob.events import WEEKDAY_PROFILE, WEEKEND_PROFILE, _displaced, _mix, _order, hour_bins, positions
from synthmob.pipeline import child, streams
from synthmob.scenario import Events, load_scenario
from synthmob.world import build_world

P = 0.2  # neighbour probability used below: large enough to measure


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return synthmob.generate(
        "tiny",
        out=tmp_path_factory.mktemp("events") / "run",
        days=3,
        subscribers=150,
        shard_size=60,
        events={"neighbour_probability": P},
    )


@pytest.fixture(scope="module")
def truth(run):
    """Where every subscriber really was: the timeline of the whole run, and the cell graph."""
    scenario = load_scenario(run.manifest["scenario"])
    world = build_world(scenario.world, rng=child(streams(scenario.seed), 0))
    calendar = Calendar.create(scenario.start, scenario.days, scenario.timezone)
    where = positions(run.table("stays"), run.table("trips"), 0, calendar.epoch_s)
    return scenario, world, calendar, where


def _ms(table: pa.Table, column: str, epoch_s: int) -> np.ndarray:
    return pc.cast(table[column], pa.int64()).to_numpy() - epoch_s * 1000


def test_every_record_is_at_the_true_cell_or_a_neighbour(run, truth):
    scenario, world, calendar, where = truth
    events = run.table("events")
    sub = events["subscriber_id"].to_numpy()
    t = _ms(events, "timestamp", calendar.epoch_s)
    true_cell = where.cell_at(sub, t)
    cell = events["cell_id"].to_numpy()
    away = cell != true_cell
    assert all(world.graph.has_edge(int(a), int(b)) for a, b in zip(cell[away], true_cell[away]))
    share = away.mean()
    # Records are displaced a whole (subscriber, window, cell) at a time: those are the trials, of unequal
    # sizes, so the share's variance is P(1 - P) Σw² / (Σw)² over trials of w records.
    salt = int(child(streams(scenario.seed), 5).integers(2**63))
    dwell = int(scenario.events.neighbour_dwell_min * 60_000)
    t_abs = t + calendar.epoch_s * 1000
    window = (t_abs + (_mix(salt, sub) % np.uint64(dwell)).astype(np.int64)) // dwell
    _, w = np.unique(np.column_stack([sub, window, true_cell]), axis=0, return_counts=True)
    n_eff = w.sum() ** 2 / (w.astype(np.float64) ** 2).sum()
    assert abs(share - P) < 4 * np.sqrt(P * (1 - P) / n_eff), (share, P, n_eff)


def test_no_neighbour_noise_when_disabled(tmp_path):
    quiet = synthmob.generate("tiny", out=tmp_path / "q", events={"neighbour_probability": 0.0})
    scenario = load_scenario(quiet.manifest["scenario"])
    calendar = Calendar.create(scenario.start, scenario.days, scenario.timezone)
    where = positions(quiet.table("stays"), quiet.table("trips"), 0, calendar.epoch_s)
    events = quiet.table("events")
    t = _ms(events, "timestamp", calendar.epoch_s)
    assert np.array_equal(events["cell_id"].to_numpy(), where.cell_at(events["subscriber_id"].to_numpy(), t))


def test_every_call_has_exactly_one_terminating_leg(run, truth):
    _, world, calendar, where = truth
    events = run.table("events").to_pandas()
    legs = events[events.event_type.isin(["voice", "sms"])]
    out, inc = legs[legs.direction == "out"], legs[legs.direction == "in"]
    assert len(out) > 100
    assert out.call_id.is_unique and inc.call_id.is_unique
    pair = out.merge(inc, on="call_id", suffixes=("_o", "_i"), how="outer", indicator=True)
    assert (pair["_merge"] == "both").all(), "a leg without its other half"
    assert (pair.timestamp_o == pair.timestamp_i).all()
    assert (pair.event_type_o == pair.event_type_i).all()
    voice = pair.event_type_o == "voice"
    assert (pair.duration_s_o[voice] == pair.duration_s_i[voice]).all()
    assert pair.duration_s_o[~voice].isna().all()
    assert (pair.counterpart_id_o == pair.subscriber_id_i).all()
    assert (pair.counterpart_id_i == pair.subscriber_id_o).all()
    assert (pair.subscriber_id_o != pair.subscriber_id_i).all()
    # The callee's leg is at the callee's true cell at that instant (or, as any record, a neighbour).
    t = pair.timestamp_i.dt.as_unit("ms").astype("int64").to_numpy() - calendar.epoch_s * 1000
    true_cell = where.cell_at(pair.subscriber_id_i.to_numpy(), t)
    cell = pair.cell_id_i.to_numpy()
    assert all(c == s or world.graph.has_edge(int(c), int(s)) for c, s in zip(cell, true_cell))
    assert (cell == true_cell).mean() > 1 - P - 0.1


def test_callers_call_their_contacts(run):
    events = run.table("events").to_pandas()
    out = events[(events.direction == "out")]
    ties = run.table("contacts").to_pandas()
    known = set(zip(ties.subscriber_a, ties.subscriber_b))
    pairs = zip(out.subscriber_id.clip(upper=out.counterpart_id), out.subscriber_id.clip(lower=out.counterpart_id))
    assert all(p in known for p in pairs)


def test_records_stay_inside_the_horizon_and_are_sorted(run, truth):
    _, _, calendar, _ = truth
    events = run.table("events")
    t = _ms(events, "timestamp", calendar.epoch_s)
    assert t.min() >= 0 and t.max() < calendar.horizon_s * 1000
    for fragment in ds.dataset(run.path / "events", format="parquet").get_fragments():
        part = fragment.to_table()
        key = part["subscriber_id"].to_numpy() * 2**40 + pc.cast(part["timestamp"], pa.int64()).to_numpy()
        assert np.all(np.diff(key) >= 0), fragment.path
    assert set(events["event_type"].to_pylist()) <= set(schema.EVENT_TYPES)


def test_records_of_one_instant_are_ordered_by_type_and_call(run):
    """Within each file, records come by (subscriber, time, event type in schema order, call id): periodic
    updates, merged into the sorted records, after anything else at their instant."""
    types = {name: code for code, name in enumerate(schema.EVENT_TYPES)}
    checked = 0
    for fragment in ds.dataset(run.path / "events", format="parquet").get_fragments():
        part = fragment.to_table()
        sub = part["subscriber_id"].to_numpy()
        t = pc.cast(part["timestamp"], pa.int64()).to_numpy()
        kind = np.array([types[name] for name in part["event_type"].to_pylist()])
        call = pc.fill_null(part["call_id"], -1).to_numpy()
        assert np.array_equal(np.lexsort((call, kind, t, sub)), np.arange(len(sub))), fragment.path
        checked += int(np.sum((kind[1:] == types["periodic_update"]) & (sub[1:] == sub[:-1])))
    assert checked > 0  # periodic updates do follow other records of their subscriber


def test_data_sessions_have_volumes_and_others_do_not(run):
    events = run.table("events").to_pandas()
    data = events[events.event_type == "data"]
    assert (data.bytes_down > 0).all() and (data.bytes_up > 0).all() and (data.duration_s > 0).all()
    assert data.direction.isna().all() and data.counterpart_id.isna().all()
    others = events[events.event_type != "data"]
    assert others.bytes_down.isna().all() and others.bytes_up.isna().all()


def test_handovers_happen_inside_sessions_on_the_move(run, truth):
    _, _, calendar, where = truth
    events = run.table("events").to_pandas()
    sessions = events[events.event_type.isin(["voice", "data"])]
    sessions = sessions.assign(end=sessions.timestamp + pd_seconds(sessions.duration_s))
    handovers = events[events.event_type == "handover"]
    assert len(handovers) > 0
    joined = handovers.merge(sessions, on=["subscriber_id", "call_id"], suffixes=("", "_s"))
    assert len(joined) == len(handovers), "a handover without its session"
    assert ((joined.timestamp > joined.timestamp_s) & (joined.timestamp < joined.end)).all()


def pd_seconds(seconds):
    import pandas as pd

    return pd.to_timedelta(seconds, unit="s")


def test_location_updates_are_at_area_changes(run, truth):
    _, world, calendar, where = truth
    events = run.table("events")
    lu = events.filter(pc.equal(events["event_type"], "location_update"))
    assert lu.num_rows > 0
    sub = lu["subscriber_id"].to_numpy()
    t = _ms(lu, "timestamp", calendar.epoch_s)
    area = world.network.area_code
    now = where.cell_at(sub, t)
    before = where.cell_at(sub, t - 1)
    assert np.all(area[now] != area[before])


def test_no_silence_longer_than_the_periodic_timer(run, truth):
    scenario, _, calendar, _ = truth
    events = run.table("events")
    period = scenario.events.periodic_update_min * 60_000
    sub = events["subscriber_id"].to_numpy()
    t = _ms(events, "timestamp", calendar.epoch_s)
    same = sub[1:] == sub[:-1]
    assert np.all(np.diff(t)[same] <= period)
    first = np.r_[True, ~same]
    assert np.all(t[first] <= period)
    periodic = events.filter(pc.equal(events["event_type"], "periodic_update"))
    assert periodic.num_rows > 0


def test_weekly_profile_bins_cover_the_horizon():
    calendar = Calendar.create(load_scenario("tiny").start, 7, "Europe/Berlin")
    edges, weights = hour_bins(calendar)
    assert edges[0] == 0 and edges[-1] == calendar.horizon_s * 1000
    assert np.all(np.diff(edges) >= 0)
    assert len(weights) == 7 * 24
    assert WEEKDAY_PROFILE.mean() == pytest.approx(1.0) and WEEKEND_PROFILE.mean() == pytest.approx(1.0)
    assert WEEKDAY_PROFILE[3] < 0.2 * WEEKDAY_PROFILE[19]  # night trough, evening peak


@pytest.mark.slow
def test_records_per_subscriber_day_and_rhythm(tmp_path):
    """Voice+SMS per active subscriber-day in single digits to low tens, heavy-tailed; data several times
    more; a night trough and a daytime plateau by local hour."""
    run = synthmob.generate("city", out=tmp_path / "c", subscribers=1500, shard_size=500, days=7)
    events = run.table("events").to_pandas()
    events["local"] = events.timestamp.dt.tz_convert("Europe/Berlin")
    events["day"] = events.local.dt.date
    own = events[(events.direction == "out") | (events.event_type == "data")]
    talk = own[own.event_type.isin(["voice", "sms"])].groupby(["subscriber_id", "day"]).size()
    data = own[own.event_type == "data"].groupby(["subscriber_id", "day"]).size()
    assert 2 <= talk.median() <= 12
    assert talk.quantile(0.99) >= 3 * talk.median()
    assert data.median() >= 3 * talk.median()
    hourly = own.groupby(own.local.dt.hour).size()
    assert hourly.loc[2:4].mean() < 0.2 * hourly.loc[10:17].mean()


def test_a_shard_that_draws_no_burst_has_no_activity_records():
    from synthmob.events import _bursts

    scenario = load_scenario("tiny")
    calendar = Calendar.create(scenario.start, 1, scenario.timezone)
    owner, times = _bursts(np.zeros(3), calendar, scenario.events, np.random.default_rng(0))
    assert owner.shape == (0,) and times.shape == (0,) and owner.dtype == times.dtype == np.int64


def test_a_last_shard_of_one_subscriber_generates(tmp_path):
    run = synthmob.generate("tiny", out=tmp_path / "run", subscribers=101, seed=0)  # shards of 100 and of 1
    assert run.manifest["tables"]["subscribers"]["rows"] == 101


# --- displacement to neighbouring cells ------------------------------------------------------------------------


def _star(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell 0 with neighbours 1 … degree (each of which has cell 0 as its only neighbour)."""
    indptr = np.concatenate([[0, degree], degree + np.arange(1, degree + 1)]).astype(np.int64)
    indices = np.concatenate([np.arange(1, degree + 1), np.zeros(degree)]).astype(np.int64)
    return indptr, indices


def _records(sub, cell, minute) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Records as (subscriber, epoch ms, cell) columns."""
    return np.asarray(sub, np.int64), np.asarray(minute, np.int64) * 60_000, np.asarray(cell, np.int32)


def _displace(records, neighbours, cfg, salt) -> np.ndarray:
    """The cells of ``records`` after displacement."""
    return _displaced(*records, neighbours, cfg, salt)


def _cfg(**fields) -> Events:
    return Events(**fields)


def test_displaced_records_favour_each_subscribers_own_neighbours():
    """At one cell, a subscriber camps on their k-th ranked neighbour with probability ∝ q^k."""
    degree, q, windows = 4, 0.5, 20_000
    minute = np.arange(windows) * 30  # one record per 30-minute window
    records = _records(np.repeat([7, 8], windows), np.zeros(2 * windows), np.tile(minute, 2))
    cfg = _cfg(neighbour_probability=1.0, neighbour_decay=q, neighbour_dwell_min=30.0)
    cell = _displace(records, _star(degree), cfg, salt=3)
    expected = q ** np.arange(degree) / (q ** np.arange(degree)).sum()
    favourites = []
    for who in (slice(0, windows), slice(windows, 2 * windows)):
        counts = np.bincount(cell[who], minlength=degree + 1)[1:]
        share = np.sort(counts)[::-1] / windows
        assert np.all(np.abs(share - expected) < 5 * np.sqrt(expected * (1 - expected) / windows)), (share, expected)
        favourites.append(tuple(np.argsort(-counts)))
    # Each subscriber ranks the neighbours their own way (two rank four alike with chance 1/24; with salt 3
    # subscribers 7 and 8 do not), and another salt ranks them anew.
    assert favourites[0] != favourites[1]
    other = _displace(records, _star(degree), cfg, salt=4)
    halves = (slice(0, windows), slice(windows, None))
    assert {tuple(np.argsort(-np.bincount(other[w], minlength=degree + 1)[1:])) for w in halves} != set(favourites)


def test_displacement_is_uniform_without_decay():
    degree, windows = 5, 40_000
    records = _records(np.full(windows, 3), np.zeros(windows), np.arange(windows) * 30)
    cfg = _cfg(neighbour_probability=1.0, neighbour_decay=1.0, neighbour_dwell_min=30.0)
    cell = _displace(records, _star(degree), cfg, salt=0)
    share = np.bincount(cell, minlength=degree + 1)[1:] / windows
    np.testing.assert_allclose(share, 1 / degree, atol=5 * np.sqrt(0.2 * 0.8 / windows))


def test_a_handset_camps_on_one_neighbour_for_a_window():
    """Records a minute apart for 20 hours at one cell: within a 30-minute window all are displaced or none,
    to one neighbour, and about the configured share of windows is."""
    minutes = np.arange(20 * 60)
    records = _records(np.full(len(minutes), 11), np.zeros(len(minutes)), minutes)
    cfg = _cfg(neighbour_probability=0.5, neighbour_decay=1.0, neighbour_dwell_min=30.0)
    cell = _displace(records, _star(6), cfg, salt=5)
    changes = np.flatnonzero(np.diff(cell)) + 1
    assert len(changes) > 5
    assert len(set(changes % 30)) == 1  # cells change only at the edges of this subscriber's windows
    assert 0.25 < np.mean(cell != 0) < 0.75


def test_displacement_does_not_depend_on_how_records_are_split():
    """Shards and workers see different slices of records; each record's fate is its own."""
    rng = np.random.default_rng(9)
    n = 3_000
    records = _records(rng.integers(0, 50, n), np.zeros(n), rng.integers(0, 14 * 24 * 60, n))
    cfg = _cfg(neighbour_probability=0.3, neighbour_decay=0.35, neighbour_dwell_min=30.0)
    whole = _displace(records, _star(5), cfg, salt=8)
    parts = (slice(0, n // 3), slice(n // 3, None))
    halves = [_displace(tuple(c[part] for c in records), _star(5), cfg, salt=8) for part in parts]
    np.testing.assert_array_equal(whole, np.concatenate(halves))


@settings(max_examples=60, deadline=None)
@given(
    degrees=st.lists(st.integers(0, 7), min_size=1, max_size=6),
    p=st.floats(0.0, 1.0),
    q=st.floats(0.01, 1.0),
    dwell=st.floats(0.01, 1440.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_displaced_records_stay_on_their_cell_or_a_neighbour(degrees, p, q, dwell, seed):
    """Whatever the graph (cells without neighbours included), a record ends at its cell or a neighbour."""
    indptr = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int64)
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(degrees), int(indptr[-1])).astype(np.int64)
    cell = rng.integers(0, len(degrees), 500).astype(np.int32)
    records = _records(rng.integers(0, 20, 500), cell, rng.integers(0, 10_000, 500))
    cfg = _cfg(neighbour_probability=p, neighbour_decay=q, neighbour_dwell_min=dwell)
    out = _displace(records, (indptr, indices), cfg, salt=seed)
    for before, after in zip(cell, out):
        assert after == before or after in indices[indptr[before]:indptr[before + 1]]
    if p == 0.0:
        np.testing.assert_array_equal(out, cell)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 5), st.integers(-1, 3)), max_size=300))
def test_records_are_ordered_as_a_lexsort_would(rows):
    """The packed-key sort with its tie fix-up is the stable order by (subscriber, time, type, call id)."""
    sub, t, kind, call_id = (np.array(c, dtype=np.int64) for c in zip(*rows)) if rows else [np.zeros(0, np.int64)] * 4
    np.testing.assert_array_equal(_order(sub, t, kind, call_id), np.lexsort((call_id, kind, t, sub)))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-1, 1), st.integers(0, 2**40)), max_size=30))
def test_coded_records_are_the_table_of_strings(rows):
    """``to_table(coded=True)`` holds the same values as the table of strings, codes in place of names."""
    from synthmob.events import Records

    kind, direction, t = (np.array(c) for c in zip(*rows)) if rows else [np.zeros(0, np.int64)] * 3
    records = Records.of(t % 97, t, t % 5, kind, direction=direction)
    plain, coded = records.to_table(1_774_220_400), records.to_table(1_774_220_400, coded=True)
    assert plain.schema.equals(schema.EVENTS)
    assert pa.types.is_dictionary(coded.schema.field("event_type").type)
    assert coded.cast(schema.EVENTS).equals(plain)
