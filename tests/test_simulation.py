"""Invariants of the ground truth over small random scenarios (property-based)."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthmob.calendar import Calendar
from synthmob.pipeline import build_population, child, streams
from synthmob.scenario import load_scenario
from synthmob import schema
from synthmob.simulation import Recorder, simulate_shard, trip_paths
from synthmob.world import build_world


def _ms(column: pa.ChunkedArray) -> np.ndarray:
    return pc.cast(column, pa.int64()).to_numpy()


def check_ground_truth(stays: pa.Table, trips: pa.Table, graph, n_cells: int, subscribers, horizon_ms) -> None:
    """Stays and trips alternate and tile every subscriber's horizon; trips are walks on the cell graph."""
    start_ms, end_ms = horizon_ms
    s_sub, s_cell = stays["subscriber_id"].to_numpy(), stays["cell_id"].to_numpy()
    s_start, s_end = _ms(stays["start"]), _ms(stays["end"])
    t_sub = trips["subscriber_id"].to_numpy()
    t_from, t_to = trips["from_cell"].to_numpy(), trips["to_cell"].to_numpy()
    t_dep, t_arr = _ms(trips["depart"]), _ms(trips["arrive"])

    assert np.all((s_cell >= 0) & (s_cell < n_cells))
    assert np.all((t_from >= 0) & (t_from < n_cells)) and np.all((t_to >= 0) & (t_to < n_cells))
    assert np.all(s_end > s_start), "a stay with no duration"
    assert np.all(t_arr > t_dep), "a trip with no duration"
    assert set(np.unique(s_sub)) == set(subscribers), "every subscriber has stays"

    # Interleave: per subscriber, stay, trip, stay, ..., stay; each piece starts where the previous ended.
    kind = np.concatenate([np.zeros(len(s_sub), np.int8), np.ones(len(t_sub), np.int8)])
    sub = np.concatenate([s_sub, t_sub])
    begin = np.concatenate([s_start, t_dep])
    finish = np.concatenate([s_end, t_arr])
    cell_in = np.concatenate([s_cell, t_from])  # where the piece begins
    cell_out = np.concatenate([s_cell, t_to])  # where it ends
    order = np.lexsort((begin, sub))
    sub, kind, begin, finish = sub[order], kind[order], begin[order], finish[order]
    cell_in, cell_out = cell_in[order], cell_out[order]
    first = np.r_[True, sub[1:] != sub[:-1]]
    last = np.r_[sub[1:] != sub[:-1], True]
    assert np.all(begin[first] == start_ms), "a horizon does not start with a stay at its start"
    assert np.all(finish[last] == end_ms), "a horizon does not end at its end"
    assert np.all(kind[first] == 0) and np.all(kind[last] == 0)
    inner = ~first
    assert np.all(begin[inner] == finish[np.flatnonzero(inner) - 1]), "gap or overlap"
    assert np.all(kind[inner] != kind[np.flatnonzero(inner) - 1]), "two stays or two trips in a row"
    assert np.all(cell_in[inner] == cell_out[np.flatnonzero(inner) - 1]), "a trip leaves from elsewhere"

    # Paths: a connected walk on the cell graph from from_cell to to_cell, entered at increasing times.
    for row, path in enumerate(trips["path"].to_pylist()):
        cells = [step["cell_id"] for step in path]
        times = [int(step["entered"].timestamp() * 1000) for step in path]
        assert cells[0] == t_from[row] and cells[-1] == t_to[row]
        assert all(graph.has_edge(a, b) for a, b in zip(cells, cells[1:])), f"trip {row} jumps"
        assert times[0] == t_dep[row]
        assert all(b > a for a, b in zip(times, times[1:])), f"trip {row} goes back in time"
        assert times[-1] < t_arr[row]


scenarios = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32),
        "subscribers": st.integers(1, 40),
        "days": st.integers(1, 3),
        "shard_size": st.integers(1, 25),
        "start": st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
        "timezone": st.sampled_from(["Europe/Berlin", "UTC", "America/New_York", "Asia/Kolkata"]),
        "width_km": st.floats(2.0, 12.0),
        "visitor_share": st.sampled_from([0.0, 0.02, 0.5]),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=scenarios)
def test_stays_and_trips_tile_each_horizon(params):
    scenario = load_scenario(
        "tiny",
        overrides={
            "seed": params["seed"],
            "subscribers": params["subscribers"],
            "days": params["days"],
            "shard_size": params["shard_size"],
            "start": params["start"],
            "timezone": params["timezone"],
            "world": {"width_km": params["width_km"], "height_km": params["width_km"]},
            "population": {"visitor_share": params["visitor_share"]},
        },
    )
    root = streams(scenario.seed)
    world = build_world(scenario.world, rng=child(root, 0))
    population = build_population(scenario, world, root)
    calendar = Calendar.create(scenario.start, scenario.days, scenario.timezone)
    horizon = (int(calendar.midnights[0]) * 1000, int(calendar.midnights[-1]) * 1000)
    assert np.all(population.home_cell < world.n_cells)
    for index in range(scenario.n_shards):
        members = population.slice(index * scenario.shard_size, (index + 1) * scenario.shard_size)
        tables = simulate_shard(scenario, world, members, calendar, rng=child(root, 2, index))
        check_ground_truth(
            tables["stays"], tables["trips"], world.graph, world.n_cells, members.subscriber_id.tolist(), horizon
        )


def test_written_week_obeys_the_invariants(week_run):
    """The same invariants on a written week that crosses a daylight-saving change."""
    cells = week_run.table("cells")
    manifest = week_run.manifest["calendar"]
    start = int(dt.datetime.fromisoformat(manifest["horizon_start_utc"]).timestamp() * 1000)
    end = int(dt.datetime.fromisoformat(manifest["horizon_end_utc"]).timestamp() * 1000)
    assert end - start == (7 * 24 - 1) * 3600 * 1000, "the week of 2026-03-23 in Berlin lasts 167 hours"
    from synthmob.world import build_world as _build  # the graph is not written; rebuild it from the seed

    scenario = load_scenario(week_run.manifest["scenario"])
    world = _build(scenario.world, rng=child(streams(scenario.seed), 0))
    assert world.n_cells == cells.num_rows
    subscribers = week_run.table("subscribers")["subscriber_id"].to_pylist()
    check_ground_truth(week_run.table("stays"), week_run.table("trips"), world.graph, cells.num_rows, subscribers, (start, end))


def test_commuters_leave_at_local_morning_hours(week_run):
    """Weekday departures to work sit at local commuting hours (test_daylight_saving_moves_utc_not_local_time
    shows they follow the local clock, not UTC)."""
    subscribers = week_run.table("subscribers").to_pandas()
    trips = week_run.table("trips").to_pandas()
    commuters = set(subscribers.loc[subscribers.persona == "commuter", "subscriber_id"])
    to_work = trips[trips.subscriber_id.isin(commuters)]
    to_work = to_work[to_work.to_cell.isin(set(subscribers.work_cell.dropna()))]
    local = to_work["depart"].dt.tz_convert("Europe/Berlin")
    weekday_morning = to_work[(local.dt.day_of_week < 5) & (local.dt.hour < 12)]
    local = local[weekday_morning.index]
    local_h = (local.dt.hour + local.dt.minute / 60).median()
    assert 6.0 < local_h < 9.0


@pytest.mark.slow
def test_daylight_saving_moves_utc_not_local_time(tmp_path):
    """Across the change to summer time (Sunday 2026-03-29), morning departures keep their local hour."""
    import synthmob

    run = synthmob.generate(
        "city", out=tmp_path / "dst", subscribers=1000, shard_size=500, days=6, start=dt.date(2026, 3, 26)
    )
    trips = run.table("trips").to_pandas()
    subscribers = run.table("subscribers").to_pandas()
    commuters = set(subscribers.loc[subscribers.persona == "commuter", "subscriber_id"])
    trips = trips[trips.subscriber_id.isin(commuters)]
    local = trips["depart"].dt.tz_convert("Europe/Berlin")
    morning = trips[(local.dt.hour >= 4) & (local.dt.hour < 11) & (local.dt.day_of_week < 5)]
    local = local[morning.index]
    local_h = local.dt.hour + local.dt.minute / 60
    utc_h = morning["depart"].dt.hour + morning["depart"].dt.minute / 60
    winter = (local.dt.date <= dt.date(2026, 3, 27)).to_numpy()  # Thursday, Friday: UTC+1
    summer = (local.dt.date >= dt.date(2026, 3, 30)).to_numpy()  # Monday, Tuesday: UTC+2
    assert winter.sum() > 100 and summer.sum() > 100
    assert abs(local_h[winter].median() - local_h[summer].median()) < 0.25
    assert utc_h[winter].median() - utc_h[summer].median() == pytest.approx(1.0, abs=0.25)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60))
def test_trip_paths_in_bulk_equal_one_trip_at_a_time(tiny_world, seed, n):
    rng = np.random.default_rng(seed)
    cells = len(tiny_world.x_m)
    mode = rng.integers(0, len(schema.MODES), n).astype(np.int8)
    src = rng.integers(0, cells, n)
    dst = np.where(rng.random(n) < 0.2, src, rng.integers(0, cells, n))  # some trips inside one cell
    walk = schema.MODES.index("walk")
    far = (mode == walk) & ~np.isfinite(tiny_world.routes["walk"].time_s[src, dst])
    dst[far] = src[far]  # nobody walks beyond walk_max_km, where the walking table has no routes
    depart, noise = rng.uniform(0, 86_400, n), np.exp(0.1 * rng.standard_normal(n))
    overhead = rng.choice([0.0, 240.0, 420.0], n)
    lengths, path, entered = trip_paths(tiny_world.routes, mode, src, dst, depart, noise, overhead)
    assert len(lengths) == n and lengths.sum() == len(path) == len(entered)
    in_chunks = trip_paths(tiny_world.routes, mode, src, dst, depart, noise, overhead, chunk=7)
    for whole, chunked in zip((lengths, path, entered), in_chunks):
        np.testing.assert_array_equal(whole, chunked)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    for i in range(n):
        routes = tiny_world.routes[schema.MODES[mode[i]]]
        expected = routes.path(int(src[i]), int(dst[i]))  # one trip at a time, as a reference
        at = routes.time_s[src[i], expected].astype(np.float64)
        offsets = np.concatenate([[0.0], (at[:-1] + at[1:]) / 2.0]) * noise[i]
        offsets[1:] += overhead[i]
        np.testing.assert_array_equal(path[bounds[i]:bounds[i + 1]], expected)
        np.testing.assert_array_equal(entered[bounds[i]:bounds[i + 1]], depart[i] + offsets)


def test_recorder_gives_back_exactly_what_was_recorded(tiny_world):
    rec, big = Recorder(), 10**8 - 1  # the largest subscriber id that identities allow
    rec.leg((big, 5, 0.0, 100.0, 0, 7, 160.0, 1, 1.25))  # (sub, cell, start, depart, activity, to, arrive, mode, noise)
    rec.leg((0, 3, 0.0, 50.0, 0, 2, 80.0, 2, 0.5))
    rec.stay(big, 7, 160.0, 1000.0, "other")
    rec.stay(0, 2, 80.0, 1000.0, "school")
    rec.stay(42, 1, 0.0, 1000.0, "home")  # somebody who never leaves
    overheads = np.array([0.0, 240.0, 420.0])
    tables = rec.tables(0, tiny_world.routes, overheads)
    stays, trips = tables["stays"], tables["trips"]
    assert stays["subscriber_id"].to_pylist() == [0, 0, 42, big, big]
    assert stays["cell_id"].to_pylist() == [3, 2, 1, 5, 7]
    assert stays["activity"].to_pylist() == ["home", "school", "home", "home", "other"]
    assert _ms(stays["end"]).tolist() == [50_000, 1_000_000, 1_000_000, 100_000, 1_000_000]
    assert trips["subscriber_id"].to_pylist() == [0, big]
    assert trips["to_cell"].to_pylist() == [2, 7] and trips["mode"].to_pylist() == ["transit", "car"]
    assert _ms(trips["arrive"]).tolist() == [80_000, 160_000]
    empty = Recorder().tables(0, tiny_world.routes, overheads)
    assert empty["stays"].num_rows == 0 and empty["stays"].schema == schema.STAYS
    assert empty["trips"].num_rows == 0 and empty["trips"].schema == schema.TRIPS


def test_stays_are_where_their_activity_says(tiny_scenario, tiny_world, tiny_population):
    members = tiny_population.slice(0, 60)
    calendar = Calendar.create(tiny_scenario.start, 3, tiny_scenario.timezone)
    stays = simulate_shard(tiny_scenario, tiny_world, members, calendar, rng=np.random.default_rng(2))["stays"]
    sub, cell = stays["subscriber_id"].to_numpy(), stays["cell_id"].to_numpy()
    activity = np.asarray(stays["activity"].to_pylist())
    member = sub - int(members.subscriber_id[0])
    first = np.r_[True, sub[1:] != sub[:-1]]
    assert set(activity[first]) == {"home"}  # everybody starts the horizon at home
    home = activity == "home"
    assert np.array_equal(cell[home], members.home_cell[member[home]])
    anchored = np.isin(activity, ["work", "school"])
    assert anchored.any() and np.array_equal(cell[anchored], members.work_cell[member[anchored]])


#: Digest of a tiny shard's stays and trips (60 subscribers, 3 days). A change that alters the simulation's
#: output (its model, or the order of its draws) updates it, and the package's version with it; one that
#: leaves the output as it was must not.
SHARD_DIGEST = "c9fddbf1a0d3850b7c42bef8c1ebbcc48174aa2c814d1fda39893b7c382d15f7"


def test_a_tiny_shard_is_what_it_has_always_been(tiny_scenario, tiny_world, tiny_population):
    calendar = Calendar.create(tiny_scenario.start, 3, tiny_scenario.timezone)
    members = tiny_population.slice(0, 60)
    tables = simulate_shard(tiny_scenario, tiny_world, members, calendar, rng=np.random.default_rng(5))
    digest = hashlib.sha256()
    for name in ("stays", "trips"):
        digest.update(repr(tables[name].to_pylist()).encode())
    assert digest.hexdigest() == SHARD_DIGEST


def test_subscriber_ids_that_float64_cannot_hold_are_refused(tiny_scenario, tiny_world, tiny_population, tiny_calendar):
    import dataclasses

    members = tiny_population.slice(0, 2)
    members = dataclasses.replace(members, subscriber_id=members.subscriber_id + 2**53)
    with pytest.raises(ValueError, match="below 2\\*\\*53"):
        simulate_shard(tiny_scenario, tiny_world, members, tiny_calendar, rng=np.random.default_rng(0))
