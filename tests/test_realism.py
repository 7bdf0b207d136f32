"""Tests of the realism scorecard: its rows on a tiny run, JSON, the table, failures and the range check."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from synthmob import metrics, realism
from synthmob.realism import Row
from synthmob.run import Run


@pytest.fixture(scope="module")
def rows(tiny_run):
    return realism.scorecard(tiny_run)


def test_every_row_has_the_right_fields(rows):
    assert len(rows) == 14
    assert len({r.statistic for r in rows}) == len(rows)
    for r in rows:
        assert isinstance(r, Row)
        assert isinstance(r.statistic, str) and r.statistic
        assert isinstance(r.published, str) and r.published
        assert isinstance(r.source, str) and r.source
        assert isinstance(r.note, str)
        for value in (r.truth, r.observed, r.low, r.high):
            assert value is None or (type(value) is float and np.isfinite(value))
        assert r.within is None or type(r.within) is bool


def test_within_is_decided_on_the_observed_value_or_the_truth_when_the_note_says_so(rows):
    for r in rows:
        judged = r.truth if "judged on truth" in r.note else r.observed
        if judged is None or r.low is None or r.high is None:
            assert r.within is None
        else:
            assert r.within == (r.low <= judged <= r.high)


def test_rows_that_do_not_apply_or_cannot_be_fitted_say_why(rows):
    by_name = {r.statistic: r for r in rows}
    cutoff = by_name["jump length cut-off κ (km)"]
    assert cutoff.within is None and "does not apply" in cutoff.note and "4 × 4 km" in cutoff.note
    # the tiny run lasts one day: S(t) from 24 h on has no curve to fit
    growth = by_name["distinct places S(t) μ (t ≥ 24 h)"]
    assert growth.observed is None and growth.truth is None and growth.within is None
    assert "too little data" in growth.note
    for r in rows:
        if r.within is None:
            assert r.note


def test_records_only_and_truth_only_rows(rows):
    by_name = {r.statistic: r for r in rows}
    for name in ("commuting time per commuter-day (h)", "travel time per day, all trips (h)"):
        assert by_name[name].observed is None and by_name[name].truth is not None and "truth only" in by_name[name].note
    assert by_name["travel time per day, all trips (h)"].within is None
    for name in ("night/day activity, weekdays (02–05 : 10–18 local)",
                 "voice+SMS out per active subscriber-day (median)",
                 "inter-event times, Weibull shape (pooled)"):
        assert by_name[name].truth is None and by_name[name].observed is not None


def test_json_round_trips(rows, tiny_run):
    data = json.loads(json.dumps(realism.to_json(rows), allow_nan=False))
    assert realism.from_json(data) == rows
    path = realism.write_json(tiny_run, rows)
    try:
        written = json.loads(path.read_text(encoding="utf-8"))
    finally:
        path.unlink()  # the run fixture is shared and read-only for other tests
    assert written["scenario"] == "tiny" and written["seed"] == tiny_run.manifest["scenario"]["seed"]
    assert isinstance(written["synthmob_version"], str)
    assert realism.from_json(written) == rows


def test_format_table_lists_every_statistic(rows):
    table = realism.format_table(rows)
    lines = table.splitlines()
    assert lines[0].split() == ["statistic", "truth", "observed", "published", "within", "source"]
    assert len(lines) == len(rows) + 1
    for r, line in zip(rows, lines[1:]):
        assert line.startswith(r.statistic)
        assert {True: " yes ", False: " no ", None: " n.a. "}[r.within] in line
        assert r.source in line


def _hand(name: str, within: bool | None) -> Row:
    return Row(name, None, 1.0, "1", 0.0, 2.0, "here", within, "")


def test_failures_returns_exactly_the_rows_outside_their_range():
    rows = [_hand("a", True), _hand("b", False), _hand("c", None), _hand("d", False)]
    assert realism.failures(rows) == [rows[1], rows[3]]
    assert realism.failures([]) == []


def test_row_judges_the_bounds_inclusively_and_missing_values_as_not_applicable():
    assert realism._row("x", None, 1.6, "p", 1.6, 1.9, "s").within is True
    assert realism._row("x", None, 1.91, "p", 1.6, 1.9, "s").within is False
    assert realism._row("x", None, float("nan"), "p", 1.6, 1.9, "s").within is None
    assert realism._row("x", 1.7, None, "p", 1.6, 1.9, "s").within is None
    assert realism._row("x", 1.7, None, "p", 1.6, 1.9, "s", judge="truth").within is True
    assert realism._row("x", None, 1.7, "p", None, None, "s").within is None
    row = realism._row("x", np.float64(1.0), np.inf, "p", 0.0, 2.0, "s")
    assert type(row.truth) is float and row.observed is None


@pytest.mark.parametrize(("beta", "within"), [(1.75, True), (2.3, False)])
def test_a_known_jump_length_sample_gives_its_exponent_and_verdict(beta, within):
    # (x + Δr0) is Pareto above x_min + Δr0 = 2.5 km, so p(x) ∝ (x + 1.5)^-β for x ≥ 1 km, with no cut-off.
    rng = np.random.default_rng(0)
    x = 2.5 * rng.random(5000) ** (-1.0 / (beta - 1.0)) - realism.JUMP_OFFSET_KM
    fit = realism._tpl(x, x_min=realism.X_MIN_KM, offset=realism.JUMP_OFFSET_KM)
    assert fit.ci["beta"][0] < beta < fit.ci["beta"][1]
    assert abs(fit.params["beta"] - beta) < 0.05
    row = realism._row("jump length β", None, fit.params["beta"], "1.75 ± 0.15", 1.60, 1.90, "González 2008")
    assert row.within is within


def test_a_fit_on_too_little_data_is_refused_with_a_reason():
    fit, reason = realism._attempt(lambda: realism._tpl(np.array([2.0, 3.0]), x_min=1.0, offset=1.5))
    assert fit is None and "too little data" in reason


def test_rows_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        _hand("a", True).within = False  # type: ignore[misc]


def test_the_confined_exponent_is_the_published_one_when_nothing_is_confined():
    assert realism.confined_exponent(1.65, offset=5.8, kappa=350.0, bound=1e5) == pytest.approx(1.65, abs=0.01)
    assert realism.confined_exponent(1.75, offset=1.5, kappa=400.0, bound=1e5) == pytest.approx(1.75, abs=0.01)


def test_a_sample_of_the_confined_published_law_fits_the_confined_exponent():
    # Draw from (r + 5.8)^-1.65 e^(-r/350) confined to 1 <= r <= 106 km (half the region's diagonal): a
    # bounded Pareto by inversion, thinned by the exponential; fit it as the scorecard does. The fit lands on
    # confined_exponent, far below 1.65.
    rng = np.random.default_rng(7)
    a, low, high = 1.0 - 1.65, realism.X_MIN_KM + 5.8, 106.0 + 5.8
    x = (low**a + rng.random(500_000) * (high**a - low**a)) ** (1.0 / a) - 5.8
    x = x[rng.random(x.size) < np.exp(-(x - realism.X_MIN_KM) / 350.0)]
    fit = realism._tpl(x, x_min=realism.X_MIN_KM, offset=realism.RG_OFFSET_KM)
    expected = realism.confined_exponent(1.65, offset=realism.RG_OFFSET_KM, kappa=realism.RG_KAPPA_KM, bound=106.0)
    assert fit.ci["beta"][0] < expected < fit.ci["beta"][1]
    assert expected < 1.35


def test_an_exponent_is_not_judged_where_the_region_spans_less_than_a_decade(rows):
    by_name = {r.statistic: r for r in rows}
    # tiny is 4 × 4 km: radii cannot exceed half its diagonal, 2.8 km, and jumps its diagonal, 5.7 km
    for name in ("radius of gyration β_r (offset 5.8 km, ≥ 1 km)", "jump length β (offset 1.5 km, ≥ 1 km)"):
        row = by_name[name]
        assert row.within is None and row.low is None and row.high is None
        assert "does not apply" in row.note and "4 × 4 km" in row.note


def test_the_exponent_range_is_confined_to_a_region_smaller_than_the_cut_off():
    rng = np.random.default_rng(0)
    radii = 2.0 + 30.0 * rng.random(500)
    rows = realism._power_law_rows("radius of gyration", "β_r", radii, radii, offset=5.8, kappa=350.0,
                                   published="1.65 ± 0.15", low=1.5, high=1.8, scale_note="region 150 × 150 km",
                                   bound=106.0, bound_note="half its diagonal")
    exponent, cutoff = rows
    assert exponent.low == pytest.approx(realism.confined_exponent(1.5, offset=5.8, kappa=350.0, bound=106.0))
    assert exponent.high == pytest.approx(realism.confined_exponent(1.8, offset=5.8, kappa=350.0, bound=106.0))
    assert 0.9 < exponent.low < exponent.high < 1.5
    assert "confined" in exponent.note and "1.65 ± 0.15" in exponent.published
    assert cutoff.within is None and "does not apply" in cutoff.note
    # a region as large as the cut-off: the published range as it stands, and the cut-off judged
    exponent, cutoff = realism._power_law_rows(
        "radius of gyration", "β_r", radii, radii, offset=5.8, kappa=350.0, published="1.65 ± 0.15", low=1.5,
        high=1.8, scale_note="country", bound=400.0, bound_note="half its diagonal")
    assert (exponent.low, exponent.high) == (1.5, 1.8) and (cutoff.low, cutoff.high) == (175.0, 700.0)


def test_the_exploration_fit_leaves_out_steps_from_a_single_known_place():
    # Steps with S = 1 are always new; the others are new with probability 0.6 S^-0.21. Including the
    # S = 1 steps would pull ρ up; leaving them out recovers the parameters.
    rng = np.random.default_rng(3)
    subs, cells = [], []
    for sub in range(3000):
        known, here = [0], 0
        subs.append(sub)
        cells.append(here)
        for _ in range(40):
            S = len(known)
            if S == 1 or rng.random() < 0.6 * S ** -0.21:
                here = len(known)
                known.append(here)
            else:
                here = rng.choice([c for c in known if c != here])
            subs.append(sub)
            cells.append(here)
    subs, cells = np.array(subs), np.array(cells)
    v = realism.metrics.Visits(subs, np.arange(len(subs)), np.arange(len(subs)) + 1, cells, cells * 1.0, cells * 0.0)
    fit = realism._exploration(v)
    assert fit.ci["rho"][0] < 0.6 < fit.ci["rho"][1]
    assert fit.ci["gamma"][0] < 0.21 < fit.ci["gamma"][1]


def test_the_records_read_shard_by_shard_are_those_of_the_whole_table(week_run):
    timezone = week_run.manifest["scenario"]["timezone"]
    calls = []
    seen = realism._observed(week_run, timezone, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]  # three shards of 100 subscribers

    events = week_run.table("events")  # the whole table, sorted by subscriber and time
    active = events.filter(pc.is_in(events["event_type"], value_set=pa.array(realism.ACTIVITY_TYPES)))
    sub, t, cell = active["subscriber_id"].to_numpy(), metrics.to_ms(active["timestamp"]), active["cell_id"].to_numpy()
    whole = metrics.record_visits(week_run, events=active)
    for name in ("subscriber", "start_ms", "end_ms", "cell", "x_m", "y_m"):
        np.testing.assert_array_equal(getattr(seen.visits, name), getattr(whole, name), err_msg=name)
    gaps_h = metrics.record_gaps(sub, t, cell)[1]
    np.testing.assert_array_equal(seen.gaps_h, gaps_h[gaps_h >= realism.X_MIN_H])
    assert len(seen.gaps_h) > 0
    np.testing.assert_array_equal(seen.weekly, metrics.weekly_counts(t, timezone=timezone))
    assert seen.weekly.sum() == active.num_rows > 0
    out = pc.and_(pc.is_in(active["event_type"], value_set=pa.array(["voice", "sms"])),
                  pc.fill_null(pc.equal(active["direction"], "out"), False)).to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(seen.per_day, metrics.records_per_subscriber_day(sub[out], t[out], timezone=timezone)[2])
    inter = metrics.inter_event_times(sub, t)
    np.testing.assert_array_equal(seen.inter_s, inter[inter > 0])


def test_a_run_without_records_scores_the_truth_and_says_why_the_records_are_not(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    shutil.rmtree(run / "events")
    rows = {r.statistic: r for r in realism.scorecard(Run(run))}
    assert rows["commuting time per commuter-day (h)"].truth is not None
    assert rows["night/day activity, weekdays (02–05 : 10–18 local)"].observed is None
    assert "no weekday daytime" in rows["night/day activity, weekdays (02–05 : 10–18 local)"].note
    assert rows["voice+SMS out per active subscriber-day (median)"].observed is None
    assert rows["inter-event times, Weibull shape (pooled)"].observed is None
