"""Known answers for the scenario clock: local days, daylight-saving days and wall-clock times."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthmob.calendar import Calendar

BERLIN = "Europe/Berlin"
SPRING = dt.date(2026, 3, 23)  # a Monday; summer time starts on Sunday 2026-03-29 at 02:00 local
AUTUMN = dt.date(2026, 10, 19)  # a Monday; summer time ends on Sunday 2026-10-25 at 03:00 local
HOUR = 3600


def local(cal: Calendar, sim_s: float) -> dt.datetime:
    """The local wall-clock datetime of a simulation time."""
    return dt.datetime.fromtimestamp(cal.epoch_s + sim_s, tz=ZoneInfo(cal.timezone))


@pytest.fixture(scope="module")
def spring() -> Calendar:
    return Calendar.create(SPRING, 7, BERLIN)


@pytest.fixture(scope="module")
def autumn() -> Calendar:
    return Calendar.create(AUTUMN, 7, BERLIN)


# --- day lengths ---------------------------------------------------------------------------------------------
def test_spring_forward_day_is_23_hours(spring):
    lengths = np.diff(spring.midnights)
    assert lengths.tolist() == [24 * HOUR] * 6 + [23 * HOUR]
    assert spring.date_of_day(6) == dt.date(2026, 3, 29)
    assert spring.horizon_s == 7 * 24 * HOUR - HOUR
    assert spring.shifts.tolist() == [0] * 6 + [HOUR]


def test_fall_back_day_is_25_hours(autumn):
    lengths = np.diff(autumn.midnights)
    assert lengths.tolist() == [24 * HOUR] * 6 + [25 * HOUR]
    assert autumn.date_of_day(6) == dt.date(2026, 10, 25)
    assert autumn.horizon_s == 7 * 24 * HOUR + HOUR
    assert autumn.shifts.tolist() == [0] * 6 + [-HOUR]


def test_utc_has_no_daylight_saving():
    cal = Calendar.create(SPRING, 14, "UTC")
    assert np.all(np.diff(cal.midnights) == 24 * HOUR)
    assert np.all(cal.shifts == 0)
    assert cal.epoch_s == int(dt.datetime(2026, 3, 23, tzinfo=dt.timezone.utc).timestamp())
    for day in range(cal.days):
        assert cal.wall(day, 8 * HOUR) == day * 86400 + 8 * HOUR


def test_midnights_are_local_midnights(spring):
    zone = ZoneInfo(BERLIN)
    for d, epoch in enumerate(spring.midnights):
        t = dt.datetime.fromtimestamp(int(epoch), tz=zone)
        assert (t.date(), t.time()) == (SPRING + dt.timedelta(days=d), dt.time(0))
    # Berlin is UTC+1 in March before the change: the first midnight is 23:00 UTC the day before.
    assert spring.epoch_s == int(dt.datetime(2026, 3, 22, 23, tzinfo=dt.timezone.utc).timestamp())


def test_weekdays(spring, autumn):
    assert spring.weekdays.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert autumn.weekdays.tolist() == [0, 1, 2, 3, 4, 5, 6]
    cal = Calendar.create(dt.date(2026, 1, 1), 10, BERLIN)  # a Thursday
    assert cal.weekdays.tolist() == [(3 + d) % 7 for d in range(10)]
    assert [cal.date_of_day(d).weekday() for d in range(10)] == cal.weekdays.tolist()


# --- wall clock ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["spring", "autumn"])
def test_eight_o_clock_is_eight_o_clock_every_day(which, request):
    cal = request.getfixturevalue(which)
    for day in range(cal.days):
        t = local(cal, cal.wall(day, 8 * HOUR))
        assert t.date() == cal.date_of_day(day)
        assert t.time() == dt.time(8, 0)


def test_wall_on_the_spring_forward_day(spring):
    day = 6  # 2026-03-29: 02:00 CET becomes 03:00 CEST
    base = float(spring.midnights[day] - spring.midnights[0])
    assert spring.wall(day, 1 * HOUR) == base + HOUR  # 01:00 CET, before the change
    assert spring.wall(day, 3 * HOUR) == base + 2 * HOUR  # 03:00 CEST is two real hours after midnight
    assert spring.wall(day, 8 * HOUR) == base + 7 * HOUR
    assert local(spring, spring.wall(day, 1 * HOUR)).time() == dt.time(1, 0)
    assert local(spring, spring.wall(day, 3 * HOUR)).time() == dt.time(3, 0)
    assert local(spring, spring.wall(day, 23.5 * HOUR)).time() == dt.time(23, 30)


def test_wall_on_the_fall_back_day(autumn):
    day = 6  # 2026-10-25: 03:00 CEST becomes 02:00 CET
    base = float(autumn.midnights[day] - autumn.midnights[0])
    assert autumn.wall(day, 1 * HOUR) == base + HOUR
    assert autumn.wall(day, 8 * HOUR) == base + 9 * HOUR
    t = local(autumn, autumn.wall(day, 3 * HOUR))
    assert (t.time(), t.utcoffset()) == (dt.time(3, 0), dt.timedelta(hours=1))


def test_wall_past_midnight_continues_on_the_next_days_clock(spring):
    for day in range(spring.days - 1):
        # A night shift ending at 06:00 the next morning, including the night into the DST day.
        assert spring.wall(day, 30 * HOUR) == spring.wall(day + 1, 6 * HOUR)
        assert spring.wall(day, 24 * HOUR) == spring.wall(day + 1, 0.0)
    # Saturday 22:00 plus 8 h is Sunday 06:00 CEST, only 7 real hours later.
    assert spring.wall(5, 30 * HOUR) - spring.wall(5, 22 * HOUR) == 7 * HOUR
    assert spring.wall(0, 48 * HOUR + 8 * HOUR) == spring.wall(2, 8 * HOUR)


ZONES = [
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Santiago",  # changes at midnight
    "Australia/Sydney",
    "Australia/Lord_Howe",  # half-hour change
    "Pacific/Auckland",
    "Asia/Kolkata",
    "UTC",
]


@pytest.mark.parametrize("zone", ZONES)
def test_wall_matches_zoneinfo_for_a_whole_year(zone):
    """Every local time from 04:00 on (after any change of offset) on every day of 2026 round-trips."""
    cal = Calendar.create(dt.date(2026, 1, 1), 365, zone)
    tz = ZoneInfo(zone)
    hours = np.arange(4.0, 24.0, 0.75)
    for day in range(cal.days):
        date = cal.date_of_day(day)
        for h in hours:
            t = dt.datetime.fromtimestamp(cal.epoch_s + cal.wall(day, h * HOUR), tz=tz)
            assert t.date() == date, (zone, date, h)
            assert t.hour * HOUR + t.minute * 60 + t.second == h * HOUR, (zone, date, h, t)


# --- day_of --------------------------------------------------------------------------------------------------
def test_day_of_at_and_around_midnights(spring):
    starts = (spring.midnights - spring.midnights[0]).astype(np.float64)
    assert spring.day_of(starts[:-1]).tolist() == list(range(7))  # exactly at midnight: the new day
    assert spring.day_of(starts[1:] - 1e-3).tolist() == list(range(7))  # just before: the old day
    assert spring.day_of(starts[1:] - 1.0).tolist() == list(range(7))
    assert spring.day_of(np.array([-1.0]))[0] == -1
    assert spring.day_of(np.array([spring.horizon_s]))[0] == 7  # the end of the horizon starts day 7
    # 23:30 local on the DST day (22.5 real hours after its midnight) is still that day; 23:30 real hours is not.
    assert spring.day_of(np.array([starts[6] + 22.5 * HOUR, starts[6] + 23.5 * HOUR])).tolist() == [6, 7]


def test_day_of_is_vectorised_and_returns_int64(autumn):
    out = autumn.day_of(np.arange(0.0, autumn.horizon_s, 3600.0))
    assert out.dtype == np.int64
    assert out.shape == (int(autumn.horizon_s // 3600),)
    assert np.all(np.diff(out) >= 0)
    assert np.bincount(out).tolist() == [24] * 6 + [25]  # hours per local day, 25 on the fall-back day


@settings(max_examples=60, deadline=None)
@given(ms=st.integers(min_value=0, max_value=7 * 86_400_000 + 3_600_000 - 1), which=st.sampled_from(["spring", "autumn"]))
def test_day_of_agrees_with_the_local_date(ms, which, spring, autumn):
    """Any time of the horizon at millisecond resolution (that of the output timestamps)."""
    cal = spring if which == "spring" else autumn
    t = (ms % int(cal.horizon_s * 1000)) / 1000.0
    day = int(cal.day_of(np.array([t]))[0])
    assert 0 <= day < cal.days
    assert local(cal, t).date() == cal.date_of_day(day)
    assert cal.midnights[day] - cal.epoch_s <= t < cal.midnights[day + 1] - cal.epoch_s
