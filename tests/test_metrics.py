"""Tests of synthmob.metrics: hand-computed cases, invariants, and a generated tiny run."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from synthmob import metrics, schema
from synthmob.errors import SynthmobError

MIN = 60_000
H = 3_600_000


def ms(text: str) -> int:
    """Epoch ms of an ISO time with offset."""
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def test_radius_of_gyration_two_subscribers_exact():
    ids, rg = metrics.radius_of_gyration([2, 1, 1, 2], [0, 0, 4000, 0], [0, 0, 0, 6000])
    assert ids.tolist() == [1, 2]
    assert rg.tolist() == pytest.approx([2.0, 3.0])


def test_radius_of_gyration_weights_and_errors():
    # weights 3:1 at 0 and 4 km: centre at 1 km; r_g² = (3·1 + 1·9)/4 = 3
    _, rg = metrics.radius_of_gyration([0, 0], [0, 4000], [0, 0], weight=[3, 1])
    assert rg[0] == pytest.approx(np.sqrt(3))
    with pytest.raises(SynthmobError):
        metrics.radius_of_gyration([0, 0], [0, 1], [0, 1], weight=[-1, 1])
    with pytest.raises(SynthmobError):
        metrics.radius_of_gyration([0, 0], [0, 1], [0])


def test_radius_of_gyration_non_negative_and_zero_for_one_place():
    rng = np.random.default_rng(0)
    sub = rng.integers(0, 50, 1000)
    _, rg = metrics.radius_of_gyration(sub, rng.normal(0, 5000, 1000), rng.normal(0, 5000, 1000))
    assert np.all(rg >= 0)
    _, rg = metrics.radius_of_gyration([0, 0, 0], [5000.0] * 3, [7.0] * 3)
    assert rg[0] == 0


XY = {1: (0.0, 0.0), 2: (300.0, 400.0), 3: (3000.0, 4000.0)}


def jumps(sub, t, cell, **kw):
    x = [XY[c][0] for c in cell]
    y = [XY[c][1] for c in cell]
    return metrics.jump_lengths(sub, t, cell, x, y, **kw)


def test_jump_lengths_ping_pong_dropped():
    # A A B A C: B lasts one minute between A records -> dropped, A's merge; one jump A->C of 5 km
    s, km = jumps([0] * 5, [0, MIN, 2 * MIN, 3 * MIN, 2 * H], [1, 1, 2, 1, 3])
    assert s.tolist() == [0]
    assert km.tolist() == pytest.approx([5.0])


def test_jump_lengths_slow_return_kept():
    # A B A with 30 minutes away from A: a real excursion, two jumps of 0.5 km
    _, km = jumps([0] * 3, [0, 15 * MIN, 30 * MIN], [1, 2, 1])
    assert km.tolist() == pytest.approx([0.5, 0.5])
    # ... unless the window is widened
    _, km = jumps([0] * 3, [0, 15 * MIN, 30 * MIN], [1, 2, 1], window_s=3600)
    assert km.size == 0


def test_jump_lengths_window_uses_end_of_visits():
    # stays: A until 10:00, B 10:05-10:08, A from 10:09 -> excursion 9 min, ping-pong; with end=start it is 10 h
    start = [0, 10 * H + 5 * MIN, 10 * H + 9 * MIN]
    end = [10 * H, 10 * H + 8 * MIN, 20 * H]
    assert jumps([0] * 3, start, [1, 2, 1], end=end)[1].size == 0
    assert jumps([0] * 3, start, [1, 2, 1])[1].size == 2


def test_jump_lengths_order_subscribers_and_positivity():
    # unsorted input, two subscribers, A B C (no sandwich) and a lone record
    s, km = jumps([5, 4, 5, 5], [2 * H, 0, 0, H], [3, 1, 1, 2])
    assert s.tolist() == [5, 5]
    assert km.tolist() == pytest.approx([0.5, 4.5])
    rng = np.random.default_rng(1)
    cells = rng.integers(1, 4, 500)
    s, km = jumps(rng.integers(0, 10, 500), rng.integers(0, 10 * H, 500), cells)
    assert np.all(km > 0)


def test_waiting_times_and_record_gaps():
    s, h = metrics.waiting_times([1, 0, 0], [0, 2 * H, 0], [H // 2, 3 * H, H])
    assert s.tolist() == [0, 0, 1]
    assert h.tolist() == [1.0, 1.0, 0.5]
    # records: cell 4 at 0 h and 1 h (gap 1 h), then cell 5, then 4 again at 5 h (not consecutive)
    s, h = metrics.record_gaps([0, 0, 0, 0, 1, 1], [H, 0, 2 * H, 5 * H, 0, 3 * H], [4, 4, 5, 4, 4, 4])
    assert s.tolist() == [0, 1]
    assert h.tolist() == [1.0, 3.0]


def test_distinct_places_known_sequence():
    # subscriber 0: 1@0h 2@1h 1@2h 3@4h; subscriber 1 starts at 10 h: 7@10h 8@13h
    sub = [0, 0, 0, 0, 1, 1]
    t = [0, H, 2 * H, 4 * H, 10 * H, 13 * H]
    cell = [1, 2, 1, 3, 7, 8]
    s = metrics.distinct_places(sub, t, cell, bins=[0, 0.5, 1, 3, 4, 100])
    assert s.tolist() == pytest.approx([1, 1, 1.5, 2, 2.5, 2.5])  # subscriber 1 reaches 2 at 3 h


def test_visit_frequency_by_rank():
    # subscriber 0: 3 visits at 9, 1 at 8 -> 0.75, 0.25; subscriber 1: 1, 1 (tie), 2 at 3 -> 0.5, 0.25, 0.25
    f = metrics.visit_frequency_by_rank([0, 0, 0, 0, 1, 1, 1, 1], [9, 8, 9, 9, 3, 1, 3, 2])
    assert f.tolist() == pytest.approx([0.625, 0.25, 0.125])
    assert f.sum() == pytest.approx(1)
    assert metrics.visit_frequency_by_rank([0, 0, 0, 0, 1, 1, 1, 1], [9, 8, 9, 9, 3, 1, 3, 2], max_rank=1).size == 1


def test_exploration():
    # time order of subscriber 3: 1 2 2 1 4 (unsorted input); subscriber 4: 6 6
    S, new = metrics.exploration([3, 3, 4, 3, 3, 3, 4], [4, 0, 0, 1, 2, 3, 1], [4, 1, 6, 2, 2, 1, 6])
    assert S.tolist() == [1, 2, 2, 2, 1]
    assert new.tolist() == [True, False, False, True, False]


def test_home_and_work_across_summer_time_in_berlin():
    """The change to summer time is on Sunday 2026-03-29; local hours must use the offset of the moment."""
    sub, t, cell = [], [], []

    def rec(s, when, c, n=1):
        sub.extend([s] * n)
        t.extend([ms(when)] * n)
        cell.extend([c] * n)

    # subscriber 0: Monday 30 March 05:30 UTC is 07:30 CEST (not night) -- at cell 50 three times;
    # the real nights are at cell 10; Friday 27 March 05:30 UTC is 06:30 CET (night) at cell 10.
    rec(0, "2026-03-30T05:30+00:00", 50, 3)
    rec(0, "2026-03-27T05:30+00:00", 10)
    rec(0, "2026-03-29T21:30+00:00", 10)  # Sunday 23:30 CEST, night before Monday: a weekday night
    rec(0, "2026-03-28T01:00+00:00", 60, 5)  # Saturday 02:00 CET: a weekend night, ignored
    rec(0, "2026-03-30T07:30+00:00", 20, 2)  # Monday 09:30 CEST: working hours
    rec(0, "2026-03-30T15:30+00:00", 30, 3)  # Monday 17:30 CEST: after work (would be 16:30 in CET)
    rec(0, "2026-03-28T10:00+00:00", 40, 4)  # Saturday: not a working day
    # subscriber 1: at home (cell 7) at night and by day -> no work
    rec(1, "2026-03-30T23:00+02:00", 7, 2)
    rec(1, "2026-03-31T12:00+02:00", 7, 2)
    # subscriber 2: only a weekend day record -> neither
    rec(2, "2026-03-29T12:00+02:00", 9)
    ids, home, work = metrics.home_and_work(sub, t, cell, timezone="Europe/Berlin")
    assert ids.tolist() == [0, 1, 2]
    assert home.tolist() == [10, 7, -1]
    assert work.tolist() == [20, -1, -1]
    km = metrics.home_work_distance_km([0, 1, -1], [1, -1, 1], [1, 0], [0.0, 6000.0], [8000.0, 0.0])
    assert km[0] == pytest.approx(10.0)
    assert np.isnan(km[1:]).all()


def test_local_days_profile_and_inter_event_times():
    # 2026-03-28 23:30 and 2026-03-29 23:30 Berlin local are different local dates, 23 h apart
    t = [ms("2026-03-28T23:30+01:00"), ms("2026-03-29T23:30+02:00"), ms("2026-03-29T00:10+01:00")]
    s, d, n = metrics.records_per_subscriber_day([0, 0, 0], t, timezone="Europe/Berlin")
    assert s.tolist() == [0, 0]
    assert d.astype(str).tolist() == ["2026-03-28", "2026-03-29"]
    assert n.tolist() == [1, 2]
    p = metrics.weekly_profile(t, timezone="Europe/Berlin")
    assert p.shape == (168,) and p.sum() == pytest.approx(1)
    assert p[5 * 24 + 23] == pytest.approx(1 / 3) and p[6 * 24 + 23] == pytest.approx(1 / 3) and p[6 * 24] == pytest.approx(1 / 3)
    assert metrics.inter_event_times([0, 0, 0], t).tolist() == [40 * 60.0, 22 * 3600 + 20 * 60.0]
    # a trip departing 23:50 on Saturday counts on Saturday, whatever its arrival
    s, d, h = metrics.travel_time_per_day(
        [1, 1, 1], [t[0], t[0] + 3 * H, t[1]], [t[0] + H // 2, t[0] + 4 * H, t[1] + H], timezone="Europe/Berlin"
    )
    assert d.astype(str).tolist() == ["2026-03-28", "2026-03-29"]
    assert h.tolist() == pytest.approx([0.5, 2.0])


def test_empty_inputs():
    e = np.zeros(0, np.int64)
    assert metrics.jump_lengths(e, e, e, e.astype(float), e.astype(float))[1].size == 0
    assert metrics.distinct_places(e, e, e, bins=[0, 1]).tolist() == [0, 0]
    assert metrics.visit_frequency_by_rank(e, e).size == 0
    assert metrics.exploration(e, e, e)[0].size == 0
    assert metrics.inter_event_times(e, e).size == 0


# --- on a generated run ------------------------------------------------------------------------------------
def test_stays_and_trips_fill_the_horizon(tiny_run):
    stays, trips = tiny_run.table("stays"), tiny_run.table("trips")
    s1, h1 = metrics.waiting_times(stays[schema.SUBSCRIBER_ID].to_numpy(), metrics.to_ms(stays["start"]), metrics.to_ms(stays["end"]))
    s2, h2 = metrics.waiting_times(trips[schema.SUBSCRIBER_ID].to_numpy(), metrics.to_ms(trips["depart"]), metrics.to_ms(trips["arrive"]))
    ids, inverse = np.unique(np.concatenate([s1, s2]), return_inverse=True)
    total = np.bincount(inverse, np.concatenate([h1, h2]))
    assert len(ids) == tiny_run.manifest["scenario"]["subscribers"]
    assert np.all(h1 >= 0) and np.all(h2 >= 0)
    assert total == pytest.approx(np.full(len(ids), 24.0 * tiny_run.manifest["scenario"]["days"]))


def test_measure_tiny_run(tiny_run):
    out = metrics.measure(tiny_run)
    n = tiny_run.manifest["scenario"]["subscribers"]
    subscribers = tiny_run.table("subscribers")
    true_home = subscribers["home_cell"].to_numpy()
    for view in ("truth", "records"):
        m = out[view]
        ids, rg = m["radius_of_gyration"]
        assert len(ids) == n and np.all(rg >= 0) and np.all(np.isfinite(rg))
        s, km = m["jump_lengths"]
        assert len(s) == len(km) > 0 and np.all(km > 0)
        s, h = m["waiting_times"]
        assert len(h) > 0 and np.all(h >= 0)
        S = m["distinct_places"]
        assert S[0] == 1 and np.all(np.diff(S) >= 0)
        f = m["visit_frequency_by_rank"]
        assert f.sum() == pytest.approx(1) and np.all(np.diff(f) <= 1e-12)
        S, new = m["exploration"]
        assert len(S) == len(new) and np.all(S >= 1)
        ids, home, work = m["home_and_work"]
        assert np.mean(home == true_home[np.searchsorted(subscribers[schema.SUBSCRIBER_ID].to_numpy(), ids)]) > 0.7
        assert np.all((work != home) | (work < 0))
        d = m["home_work_distance_km"]
        assert np.isnan(d[work < 0]).all() and np.all(d[work >= 0] > 0)
    s, d, h = out["truth"]["travel_time_per_day"]
    assert np.all(h > 0) and np.all(h < 24)
    s, d, k = out["records"]["records_per_subscriber_day"]
    assert k.sum() == tiny_run.table("events").num_rows
    p = out["records"]["weekly_profile"]
    assert p.shape == (168,) and p.sum() == pytest.approx(1)
    assert np.all(out["records"]["inter_event_times"] >= 0)
    # the records see more, shorter jumps than the truth (handovers, neighbour cells)
    assert len(out["records"]["jump_lengths"][1]) >= len(out["truth"]["jump_lengths"][1])


def test_commuting_trips_are_the_direct_trips_between_home_and_work():
    from synthmob.metrics import commuting_trips

    # subscriber 5: home 10, work 20; subscriber 3: home 30, no work (NaN as read from a null column)
    mask = commuting_trips([5, 5, 5, 5, 3], [10, 20, 10, 40, 30], [20, 10, 40, 10, 10], [5, 3], [10, 30],
                           [20, np.nan])
    assert mask.tolist() == [True, True, False, False, False]
