"""Decisions of a subscriber: random streams, day plans, the shift rota, EPR place choice and mode choice."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthmob.behaviour import (
    HOUR,
    Person,
    Places,
    Stream,
    _shift,
    choose_mode,
    other_stay_s,
    plan_day,
)
from synthmob.calendar import Calendar
from synthmob.scenario import Behaviour, Travel

Z = 4.0  # standard errors allowed for a sampled mean or share
MONDAY = dt.date(2026, 3, 23)
COMMUTE_S = 1800.0


@pytest.fixture(scope="module")
def week() -> Calendar:
    return Calendar.create(MONDAY, 7, "Europe/Berlin")


def person(persona: str, *, home: int = 0, work: int = -1, rota: int = 0, car: bool = True, visits=None) -> Person:
    return Person(0, persona, home, work, car, rota, dict(visits or {}))


# --- Stream --------------------------------------------------------------------------------------------------
def draw_all(s: Stream, n: int) -> list:
    return [(s.uniform(), s.normal(), s.poisson(2.5)) for _ in range(n)]


def test_stream_is_deterministic_for_a_seed():
    # A small chunk makes the buffers refill many times.
    a = draw_all(Stream(np.random.default_rng(42), chunk=16), 300)
    b = draw_all(Stream(np.random.default_rng(42), chunk=16), 300)
    c = draw_all(Stream(np.random.default_rng(43), chunk=16), 300)
    assert a == b
    assert a != c


def test_stream_uniforms_come_from_the_generator():
    s = Stream(np.random.default_rng(7), chunk=32)
    got = [s.uniform() for _ in range(32)]
    assert got == np.random.default_rng(7).random(32).tolist()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), chunk=st.integers(1, 9), calls=st.lists(st.sampled_from("un"), max_size=60))
def test_stream_hands_out_the_generators_variates_chunk_by_chunk(seed, chunk, calls):
    """Uniforms then normals are drawn a chunk at a time at the start, and each kind again only when it runs
    out: the variates, their order and the generator's final state are those of that plain reference."""
    s, reference = Stream(np.random.default_rng(seed), chunk=chunk), np.random.default_rng(seed)
    buffers = {"u": reference.random(chunk).tolist(), "n": reference.standard_normal(chunk).tolist()}
    for kind in calls:
        if not buffers[kind]:
            buffers[kind] = (reference.random(chunk) if kind == "u" else reference.standard_normal(chunk)).tolist()
        got = s.uniform() if kind == "u" else s.normal()
        assert type(got) is float and got == buffers[kind].pop(0)
    assert s._rng.bit_generator.state == reference.bit_generator.state  # no refill too many or too few


def test_stream_refuses_an_empty_chunk():
    with pytest.raises(ValueError, match="chunk must be at least 1, not 0"):
        Stream(np.random.default_rng(0), chunk=0)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**63 - 1), chunk=st.integers(1, 64))
def test_stream_uniforms_lie_in_the_unit_interval(seed, chunk):
    s = Stream(np.random.default_rng(seed), chunk=chunk)
    u = np.array([s.uniform() for _ in range(500)])
    assert np.all((u >= 0.0) & (u < 1.0))
    assert len(np.unique(u)) == len(u)  # a buffer is never handed out twice


def test_stream_normals_are_standard():
    s = Stream(np.random.default_rng(1))
    z = np.array([s.normal() for _ in range(20_000)])
    assert abs(z.mean()) < Z / np.sqrt(len(z))
    assert abs(z.std() - 1.0) < 0.03


@pytest.mark.parametrize("lam", [0.3, 1.3, 3.0, 8.0])
def test_stream_poisson_mean_and_variance(lam):
    s = Stream(np.random.default_rng(int(lam * 10)))
    k = np.array([s.poisson(lam) for _ in range(20_000)])
    assert k.min() >= 0
    assert abs(k.mean() - lam) < Z * np.sqrt(lam / len(k))
    assert k.var() == pytest.approx(lam, rel=0.06)
    p0 = math.exp(-lam)
    assert abs(np.mean(k == 0) - p0) < Z * np.sqrt(p0 * (1 - p0) / len(k))


def test_stream_poisson_zero_mean():
    s = Stream(np.random.default_rng(0))
    assert {s.poisson(0.0) for _ in range(200)} == {0}


# --- plan_day ------------------------------------------------------------------------------------------------
def activities(legs) -> list[str]:
    return [leg.activity for leg in legs]


def check_well_formed(legs) -> None:
    """Every plan that goes anywhere comes back home; only the first leg of a day may lack a clock time."""
    if not legs:
        return
    assert legs[-1].activity == "home"
    assert legs[0].at_s is not None
    for leg in legs:
        assert leg.activity in ("home", "work", "school", "other")
        assert leg.at_s is not None or leg.stay_s > 0


def test_commuter_weekday_starts_with_work_and_ends_at_home(week):
    cfg = Behaviour(absence_rate=0.0)
    s = Stream(np.random.default_rng(3))
    p = person("commuter", work=5)
    for _ in range(100):
        for day in range(5):
            legs = plan_day(p, day, week, cfg, COMMUTE_S, s)
            check_well_formed(legs)
            assert legs[0].activity == "work"
            assert activities(legs).count("work") == 1
            assert legs[-1].activity == "home"
            # Work starts between 04:00 and 14:00; the commuter leaves the commute earlier.
            assert 4 * HOUR - COMMUTE_S <= legs[0].at_s <= 14 * HOUR - COMMUTE_S
            # The way home leaves after at least two hours of work.
            assert legs[1].at_s >= legs[0].at_s + COMMUTE_S + 2 * HOUR - 1e-6


def test_student_weekday_starts_with_school(week):
    cfg = Behaviour(absence_rate=0.0)
    s = Stream(np.random.default_rng(4))
    p = person("student", work=5)
    for day in range(5):
        legs = plan_day(p, day, week, cfg, COMMUTE_S, s)
        assert legs[0].activity == "school" and legs[-1].activity == "home"
        assert "work" not in activities(legs)


def test_absence_rate(week):
    cfg = Behaviour(absence_rate=0.25)
    s = Stream(np.random.default_rng(5))
    p = person("commuter", work=5)
    n = 4000
    worked = sum("work" in activities(plan_day(p, i % 5, week, cfg, COMMUTE_S, s)) for i in range(n))
    assert abs(worked / n - 0.75) < Z * np.sqrt(0.75 * 0.25 / n)


@pytest.mark.parametrize("persona", ["commuter", "student"])
def test_no_work_or_school_at_the_weekend(week, persona):
    cfg = Behaviour(absence_rate=0.0)
    s = Stream(np.random.default_rng(6))
    p = person(persona, work=5)
    outings = 0
    for _ in range(300):
        for day in (5, 6):
            legs = plan_day(p, day, week, cfg, COMMUTE_S, s)
            check_well_formed(legs)
            assert not {"work", "school"} & set(activities(legs))
            outings += activities(legs).count("other")
    assert outings > 0  # they do go out


@pytest.mark.parametrize("persona", ["home_based", "visitor"])
def test_free_days_are_home_based_tours(week, persona):
    cfg = Behaviour()
    s = Stream(np.random.default_rng(7))
    p = person(persona)
    counts = []
    for i in range(2000):
        legs = plan_day(p, i % 7, week, cfg, COMMUTE_S, s)
        check_well_formed(legs)
        assert set(activities(legs)) <= {"other", "home"}
        if legs:
            assert legs[0].activity == "other"
            assert 9 * HOUR <= legs[0].at_s <= 12 * HOUR
        counts.append(activities(legs).count("other"))
    lams = [cfg.outings_visitor] * 7 if persona == "visitor" else [cfg.outings_weekday] * 5 + [cfg.outings_weekend] * 2
    mean = float(np.mean(lams))
    # Outings are Poisson, only cut short by the evening: the mean is a little below the configured one.
    assert 0.75 * mean < np.mean(counts) <= mean + Z * np.sqrt(mean / len(counts))
    # No outing at all exactly when the Poisson draw is zero.
    p0 = float(np.mean(np.exp(-np.array(lams))))
    assert abs(np.mean(np.array(counts) == 0) - p0) <= Z * np.sqrt(p0 * (1 - p0) / len(counts))


# --- the shift rota ------------------------------------------------------------------------------------------
def rota_table(n_days: int = 70) -> tuple[Calendar, np.ndarray]:
    cal = Calendar.create(MONDAY, n_days, "Europe/Berlin")
    table = np.full((21, n_days), np.nan)
    for rota in range(21):  # the simulation draws rota from 0..20
        p = person("shift_worker", work=3, rota=rota)
        for day in range(n_days):
            start = _shift(p, day, cal)
            if start is not None:
                table[rota, day] = start
    return cal, table


def test_shift_rota_five_days_in_every_seven():
    _, table = rota_table()
    working = ~np.isnan(table)
    for start in range(table.shape[1] - 6):
        assert np.all(working[:, start : start + 7].sum(axis=1) == 5), start


def test_shift_rota_never_early_right_after_night():
    _, table = rota_table()
    after_night = table[:, :-1] == 22.0
    assert not np.any(after_night & (table[:, 1:] == 6.0))
    # Nor any shift starting less than 16 h after the previous one ended.
    for r in range(table.shape[0]):
        days = np.flatnonzero(~np.isnan(table[r]))
        ends = days[:-1] * 24 + table[r, days[:-1]] + 8
        starts = days[1:] * 24 + table[r, days[1:]]
        assert np.all(starts - ends >= 16), r


def test_shift_rota_rotates_through_three_shifts():
    _, table = rota_table()
    for r in range(table.shape[0]):
        assert set(np.unique(table[r][~np.isnan(table[r])]).tolist()) == {6.0, 14.0, 22.0}
    # Workers are spread over the days of the week: every day someone works every shift.
    for day in range(7):
        assert set(np.unique(table[:, day][~np.isnan(table[:, day])]).tolist()) == {6.0, 14.0, 22.0}


def test_shift_worker_plan_follows_the_rota():
    cal, table = rota_table(28)
    cfg = Behaviour()
    s = Stream(np.random.default_rng(8))
    for rota in range(0, 21, 4):
        p = person("shift_worker", work=3, rota=rota)
        for day in range(28):
            legs = plan_day(p, day, cal, cfg, COMMUTE_S, s)
            check_well_formed(legs)
            if np.isnan(table[rota, day]):
                assert "work" not in activities(legs)
            else:
                assert legs[0].activity == "work"
                start = legs[0].at_s + COMMUTE_S
                assert abs(start - table[rota, day] * HOUR) < 1.5 * HOUR
                assert legs[1].at_s == pytest.approx(start + 8 * HOUR)  # leaves work after an 8-hour shift
                if table[rota, day] == 22.0:  # a night shift goes home the next morning, and no further
                    assert activities(legs) == ["work", "home"]
                    assert legs[1].at_s == pytest.approx(start + 8 * HOUR)


# --- other stays and mode choice -----------------------------------------------------------------------------
def test_other_stays_are_bounded_log_normal():
    cfg = Behaviour()
    s = Stream(np.random.default_rng(9))
    stays = np.array([other_stay_s(cfg, s) for _ in range(5000)])
    assert stays.min() >= HOUR / 6 - 1e-9 and stays.max() <= 8 * HOUR + 1e-9
    assert np.median(stays) == pytest.approx(cfg.other_stay_median_h * HOUR, rel=0.06)


def test_mode_choice():
    travel = Travel()
    s = Stream(np.random.default_rng(10))
    with_car, without = person("commuter", car=True), person("commuter", car=False)
    n = 4000
    short = [choose_mode(with_car, 500.0, travel, s) for _ in range(n)]
    assert abs(short.count("walk") / n - travel.walk_share) < Z * np.sqrt(0.16 / n)
    long = [choose_mode(with_car, 10_000.0, travel, s) for _ in range(n)]
    assert "walk" not in long
    assert abs(long.count("car") / n - travel.car_share) < Z * np.sqrt(0.16 / n)
    assert {choose_mode(without, 10_000.0, travel, s) for _ in range(500)} == {"transit"}
    assert "car" not in {choose_mode(without, 300.0, travel, s) for _ in range(500)}


# --- Places (EPR) --------------------------------------------------------------------------------------------
GRID = 20  # cells on a 20 × 20 grid, 500 m apart


@pytest.fixture(scope="module")
def grid():
    xs, ys = np.meshgrid(np.arange(GRID) * 500.0, np.arange(GRID) * 500.0)
    attraction = np.random.default_rng(0).uniform(0.5, 2.0, GRID * GRID)
    return xs.ravel(), ys.ravel(), attraction


def test_choose_never_returns_the_current_cell(grid):
    x, y, a = grid
    places = Places(x, y, a, Behaviour(), cache_bytes=8 * 8 * GRID * GRID)  # 8 kernels: evicted and rebuilt
    s = Stream(np.random.default_rng(11))
    for start in (0, 210, 399):
        p = person("home_based", home=start)
        here = start
        for _ in range(1500):
            nxt = places.choose(p, here, s)
            assert nxt != here
            assert 0 <= nxt < GRID * GRID
            here = nxt
        assert sum(p.visits.values()) == 1500  # every choice is recorded


@settings(max_examples=25, deadline=None)
@given(
    known=st.dictionaries(st.integers(0, GRID * GRID - 1), st.integers(1, 20), min_size=1, max_size=12),
    here_pick=st.integers(0, 10**6),
    seed=st.integers(0, 2**32),
)
def test_choose_never_returns_here_property(grid, known, here_pick, seed):
    x, y, a = grid
    places = Places(x, y, a, Behaviour())
    cells = sorted(known)
    here = cells[here_pick % len(cells)]  # the person is at one of the places they know
    s = Stream(np.random.default_rng(seed), chunk=64)
    for _ in range(30):
        p = person("commuter", home=7, work=8, visits=known)
        assert places.choose(p, here, s) != here


def test_exploration_share_follows_epr(grid):
    x, y, a = grid
    cfg = Behaviour()
    places = Places(x, y, a, cfg)
    s = Stream(np.random.default_rng(12))
    rng = np.random.default_rng(13)
    n = 3000
    shares = []
    for k in (0, 1, 4, 15, 60):
        known = {int(c): 1 for c in rng.choice(np.arange(1, GRID * GRID), size=k, replace=False)}
        new = 0
        for _ in range(n):
            p = person("home_based", home=0, visits=known)
            cell = places.choose(p, 0, s)
            new += cell not in known
        share = new / n
        expected = 1.0 if k == 0 else cfg.exploration_rho * (k + 1) ** -cfg.exploration_gamma
        assert abs(share - expected) <= Z * np.sqrt(expected * (1 - expected) / n) + 1e-12, (k, share, expected)
        shares.append(share)
    assert all(a > b for a, b in zip(shares, shares[1:]))


def test_exploration_counts_work_as_an_anchor(grid):
    x, y, a = grid
    cfg = Behaviour(exploration_rho=1.0, exploration_gamma=1.0)  # p_new = 1 / S
    places = Places(x, y, a, cfg)
    s = Stream(np.random.default_rng(14))
    known = {5: 1, 6: 1}
    n = 4000
    new = sum(places.choose(person("commuter", home=0, work=1, visits=known), 0, s) not in known for _ in range(n))
    assert abs(new / n - 0.25) <= Z * np.sqrt(0.25 * 0.75 / n)  # S = 2 places + home + work


def test_return_in_proportion_to_past_visits(grid):
    x, y, a = grid
    cfg = Behaviour(exploration_rho=0.05, exploration_gamma=0.0)  # rarely explore
    places = Places(x, y, a, cfg)
    s = Stream(np.random.default_rng(15))
    counts = {10: 0, 20: 0}
    n = 4000
    for _ in range(n):
        cell = places.choose(person("home_based", home=0, visits={10: 1, 20: 9}), 0, s)
        if cell in counts:
            counts[cell] += 1
    returns = counts[10] + counts[20]
    assert abs(returns / n - 0.95) <= Z * np.sqrt(0.95 * 0.05 / n)
    assert abs(counts[20] / returns - 0.9) <= Z * np.sqrt(0.09 / returns)


def test_exploration_prefers_near_and_attractive_cells(grid):
    x, y, _ = grid
    centre = 10 * GRID + 10
    flat = np.ones(GRID * GRID)
    cfg = Behaviour()
    places = Places(x, y, flat, cfg)
    s = Stream(np.random.default_rng(16))
    picks = np.array([places.choose(person("home_based", home=centre), centre, s) for _ in range(3000)])
    d = np.hypot(x[picks] - x[centre], y[picks] - y[centre])
    # The kernel attraction × (d + d0)^-β, here from the centre of the grid.
    d_cells = np.hypot(x - x[centre], y - y[centre])
    w = (d_cells / 1000.0 + cfg.distance_offset_km) ** -cfg.distance_exponent
    w[centre] = 0.0
    w /= w.sum()
    expected, sd = float(np.sum(w * d_cells)), float(np.sqrt(np.sum(w * d_cells**2) - np.sum(w * d_cells) ** 2))
    assert abs(d.mean() - expected) <= Z * sd / np.sqrt(len(d))
    assert d.mean() < 0.85 * np.delete(d_cells, centre).mean()  # nearer than a uniform choice
    # A cell with 50 times the attraction of its twin (same distance) is chosen far more often.
    weighted = flat.copy()
    weighted[centre + 1] = 50.0
    places = Places(x, y, weighted, Behaviour())
    picks = np.array([places.choose(person("home_based", home=centre), centre, s) for _ in range(3000)])
    assert np.sum(picks == centre + 1) > 20 * max(1, np.sum(picks == centre - 1))


def test_places_shared_by_threads_keeps_a_full_cache_consistent(grid, in_threads):
    x, y, a = grid
    places = Places(x, y, a, Behaviour(), cache_bytes=2 * 8 * GRID * GRID)  # room for two kernels only

    def hammer(seed: int) -> None:
        for cell in np.random.default_rng(seed).integers(0, GRID * GRID, 5000):
            cdf = places._cdf(int(cell))
            assert cdf[-1] == pytest.approx(1.0) and cdf[int(cell)] == (cdf[int(cell) - 1] if cell else 0.0)

    assert in_threads(hammer, [(seed,) for seed in range(4)]) == []
    assert len(places._cdfs) <= 2


def _choose_by_candidate_list(places: Places, cfg: Behaviour, p: Person, here: int, s: Stream) -> int:
    """EPR choice written plainly, with a list of the known places other than ``here`` (the reference)."""
    known = p.visits
    p_new = cfg.exploration_rho * (len(known) + (2 if p.work >= 0 else 1)) ** -cfg.exploration_gamma
    candidates = [c for c in known if c != here]
    if not candidates or s.uniform() < p_new:
        cdf = places._cdf(here)
        for _ in range(20):
            cell = min(int(cdf.searchsorted(s.uniform(), side="right")), len(cdf) - 1)
            if cell not in known and cell != p.home and cell != p.work:
                break
        known[cell] = known.get(cell, 0) + 1
        return cell
    u = s.uniform() * sum(known[c] for c in candidates)
    for cell in candidates:
        u -= known[cell]
        if u < 0:
            break
    known[cell] += 1
    return cell


@settings(max_examples=100, deadline=None)
@given(
    known=st.dictionaries(st.integers(0, GRID * GRID - 1), st.integers(1, 9), max_size=8),
    where=st.sampled_from(["known", "home", "work", "elsewhere"]),
    rho=st.sampled_from([0.02, 0.6, 1.0]),
    has_work=st.booleans(),
    seed=st.integers(0, 2**32),
    pick=st.integers(0, 10**6),
)
def test_choose_makes_the_choices_and_draws_of_the_plain_reference(grid, known, where, rho, has_work, seed, pick):
    x, y, a = grid
    cfg = Behaviour(exploration_rho=rho)
    places = Places(x, y, a, cfg)
    home, work = pick % (GRID * GRID), (pick // 7) % (GRID * GRID) if has_work else -1
    here = {"known": sorted(known)[pick % len(known)] if known else home, "home": home,
            "work": work if work >= 0 else home, "elsewhere": (pick // 3) % (GRID * GRID)}[where]
    fast = person("commuter", home=home, work=work, visits=known)
    plain = person("commuter", home=home, work=work, visits=known)
    s_fast, s_plain = Stream(np.random.default_rng(seed), chunk=3), Stream(np.random.default_rng(seed), chunk=3)
    for _ in range(5):  # a few choices in a row, moving on each time
        chosen = places.choose(fast, here, s_fast)
        assert chosen == _choose_by_candidate_list(places, cfg, plain, here, s_plain)
        assert list(fast.visits.items()) == list(plain.visits.items())  # counts, and the order places were met
        assert s_fast.uniform() == s_plain.uniform()  # as many draws taken
        here = chosen


class _Fixed:
    """A stream that hands out given uniforms."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def uniform(self) -> float:
        return self.values.pop(0)


def test_a_return_that_uses_up_every_visit_goes_to_the_last_other_place(grid):
    x, y, a = grid
    places = Places(x, y, a, Behaviour(exploration_rho=0.01))
    p = person("home_based", home=0, visits={3: 1, 4: 2, 9: 1})  # here (9) is the last known place
    assert places.choose(p, 9, _Fixed(0.5, 1.0)) == 4  # u = 1.0 × 3 visits ends at exactly 0, never below
    assert p.visits == {3: 1, 4: 3, 9: 1}


def test_a_known_place_with_no_visits_counts_as_known(grid):
    x, y, a = grid
    places = Places(x, y, a, Behaviour(exploration_rho=0.01))
    s = Stream(np.random.default_rng(3))
    for _ in range(50):  # the only known place is here: nowhere to return to, so explore elsewhere
        assert places.choose(person("home_based", home=0, visits={7: 0}), 7, s) != 7
