"""The pseudonymous release: daily keyed-hash pseudonyms, the key and the identities never written, no
periodic updates, times to the minute, and days that exact times no longer link."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import secrets
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from synthmob import schema
from synthmob.errors import SynthmobError
from synthmob.exports import export

module = importlib.import_module("synthmob.exports.pseudonymous")  # the package's name is the writer function

KEY = bytes(range(100, 132))
EPOCH = pd.Timestamp(0, tz="UTC")
KEPT = ["timestamp", "cell_id", "event_type", "direction", "duration_s", "bytes_up", "bytes_down"]
RELEASED = ["pseudonym", *KEPT[:4], "counterpart_pseudonym", "call_token", *KEPT[4:]]


def keyed(key, message):
    """The reference: HMAC-SHA256 per RFC 2104 from the standard library, first 64 bits in hex."""
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:16]


def release(folder):
    """Every released record, with the partition's date."""
    events = ds.dataset(folder / "events", format="parquet", partitioning="hive")
    return events.to_table().to_pandas()


def expected(run, key):
    """The run's records with the hashes computed here, independently: local dates through pandas."""
    frame = run.pandas("events")
    local = frame.timestamp.dt.tz_convert(run.manifest["scenario"]["timezone"]).dt.date.astype(str)
    frame["date"] = local

    def hashed(ids, prefix):
        pairs = {(int(i), d) for i, d in zip(ids, local) if not pd.isna(i)}
        table = {(i, d): keyed(key, b"%s%d|%s" % (prefix, i, d.encode())) for i, d in pairs}
        return [None if pd.isna(i) else table[int(i), d] for i, d in zip(ids, local)]

    frame["pseudonym"] = hashed(frame.subscriber_id, b"")
    frame["counterpart_pseudonym"] = hashed(frame.counterpart_id, b"")
    frame["call_token"] = hashed(frame.call_id, b"call|")
    return frame


def as_released(truth):
    """What the release should hold of ``expected``: no periodic updates, times cut to the minute."""
    kept = truth[truth.event_type != "periodic_update"]
    return kept.assign(timestamp=kept.timestamp.dt.floor("min"))


def linking_attack(frame, period_ms):
    """Link pseudonyms of consecutive days by exact times alone, as anyone holding a release could.

    A pseudonym of day d+1 is linked to the pseudonym of day d whose last record is exactly k timer periods
    (k = 1, 2, 3) before its own first record, or whose last record is a data session ending exactly at
    that first record; a link counts only where one pseudonym of day d fits.

    Parameters
    ----------
    frame
        Records with ``pseudonym``, ``date`` (local, ``YYYY-MM-DD``), ``timestamp``, ``event_type`` and
        ``duration_s``.
    period_ms
        The periodic-update timer (T3412) in milliseconds.

    Returns
    -------
    pandas.Series
        The pseudonym of the day before, indexed by the pseudonym it was linked to.
    """
    t = (frame.timestamp - EPOCH) // pd.Timedelta(1, "ms")
    day = (pd.to_datetime(frame.date.astype(str)) - pd.Timestamp("2000-01-01")).dt.days
    end = (t + (frame.duration_s.astype(float) * 1000).round()).where(frame.event_type == "data")
    records = pd.DataFrame({"pseudonym": frame.pseudonym, "day": day, "t": t, "end": end})
    days = records.groupby("pseudonym").agg(day=("day", "first"), first=("t", "min"), last=("t", "max"))
    last = records[records.t == records.pseudonym.map(days["last"])].dropna(subset="end")
    guesses = pd.concat(
        [pd.DataFrame({"previous": days.index, "day": days.day + 1, "at": days["last"] + k * period_ms})
         for k in (1, 2, 3)]
        + [pd.DataFrame({"previous": last.pseudonym, "day": last.day + 1, "at": last.end.astype("int64")})]
    )
    firsts = days.reset_index()[["pseudonym", "day", "first"]]
    matches = firsts.merge(guesses, left_on=["day", "first"], right_on=["day", "at"]).drop_duplicates(
        ["pseudonym", "previous"])
    fits = matches.groupby("pseudonym").previous.transform("size")
    return matches[fits == 1].set_index("pseudonym").previous


def linked_share(frame, period_ms, owner):
    """The share of pseudonym-days after the first day that :func:`linking_attack` links, uniquely and to
    the same subscriber (``owner``: pseudonym to subscriber, known here because the test knows the key)."""
    links = linking_attack(frame, period_ms)
    correct = (links.index.map(owner) == links.map(owner)).sum()
    later = frame.loc[frame.date.astype(str) > frame.date.astype(str).min(), "pseudonym"].nunique()
    return correct / later


def aligned(released, truth):
    """Both tables in one row order (every released column), so that rows can be compared one by one."""
    order = ["date", *RELEASED]
    left = released.sort_values(order, kind="stable").reset_index(drop=True)
    right = truth.sort_values(order, kind="stable").reset_index(drop=True)
    return left, right


@pytest.fixture(scope="module")
def tiny_release(tiny_run, tmp_path_factory):
    return export(tiny_run, "pseudonymous", out=tmp_path_factory.mktemp("release") / "tiny", key=KEY)


@pytest.fixture(scope="module")
def week_truth(week_run):
    """The run's records under daily keyed hashes, every record at its exact time."""
    return expected(week_run, KEY)


@pytest.fixture(scope="module")
def week(week_run, week_truth, tmp_path_factory):
    folder = export(week_run, "pseudonymous", out=tmp_path_factory.mktemp("release") / "week", key=KEY)
    return aligned(release(folder), as_released(week_truth))


def test_every_record_is_released_with_its_keyed_hashes_and_nothing_else_changed(week_run, week):
    released, truth = week
    assert list(released.columns) == RELEASED + ["date"]
    events = week_run.table("events")["event_type"].to_pandas()
    assert (events == "periodic_update").sum() > 1000
    assert len(released) == len(truth) == (events != "periodic_update").sum()
    assert not (released.event_type == "periodic_update").any()
    assert (released.timestamp == released.timestamp.dt.floor("min")).all()
    assert released.duration_s.dropna().mod(1).ne(0).any()  # durations as recorded, not rounded
    pd.testing.assert_frame_equal(released[["date", *RELEASED]], truth[["date", *RELEASED]], check_dtype=False)
    assert released.pseudonym.str.fullmatch("[0-9a-f]{16}").all()


def test_one_pseudonym_per_subscriber_and_local_day(week):
    released, truth = week
    released = released.assign(subscriber_id=truth.subscriber_id)
    per_day = released.groupby(["subscriber_id", "date"]).pseudonym.nunique()
    assert (per_day == 1).all()  # same subscriber, same local day: same pseudonym
    days = released.groupby("subscriber_id").date.nunique()
    assert (released.groupby("subscriber_id").pseudonym.nunique() == days).all()  # a new one every day
    assert days.max() == 7
    people = released.groupby("date").agg(subscribers=("subscriber_id", "nunique"), names=("pseudonym", "nunique"))
    assert (people.subscribers == people.names).all()  # distinct subscribers of a day: distinct pseudonyms


def test_rows_follow_the_pseudonyms_not_the_runs_subscriber_order(tiny_release):
    frame = pq.read_table(tiny_release / "events" / "date=2026-03-23" / "part-0.parquet").to_pandas()
    assert frame[["pseudonym", "timestamp"]].equals(frame[["pseudonym", "timestamp"]].sort_values(
        ["pseudonym", "timestamp"], kind="stable"))


def test_the_counterpart_is_the_other_partys_pseudonym_of_that_day(tiny_release):
    frame = release(tiny_release)
    legs = frame[frame.event_type.isin(["voice", "sms"]) & frame.counterpart_pseudonym.notna()]
    out, into = legs[legs.direction == "out"], legs[legs.direction == "in"]
    both = out.merge(into, on=["call_token", "date"], suffixes=("_out", "_in"), validate="one_to_one")
    assert len(both) > 100
    assert (both.counterpart_pseudonym_out == both.pseudonym_in).all()
    assert (both.counterpart_pseudonym_in == both.pseudonym_out).all()
    assert (both.timestamp_out == both.timestamp_in).all()


def test_the_key_the_seed_and_the_identities_are_not_in_the_release(tiny_run, tiny_release, tmp_path, monkeypatch):
    drawn, draw = [], secrets.token_bytes

    def token_bytes(n):
        drawn.append(draw(n))
        return drawn[-1]

    monkeypatch.setattr(module.secrets, "token_bytes", token_bytes)
    fresh = export(tiny_run, "pseudonymous", out=tmp_path / "fresh")
    assert len(drawn) == 1 and len(drawn[0]) == 32
    for folder, key in ((tiny_release, KEY), (fresh, drawn[0])):
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert sorted(p.relative_to(folder).as_posix() for p in files) == [
            "cells.parquet", "events/date=2026-03-23/part-0.parquet", "export.json"
        ]
        for path in files:
            data = path.read_bytes()
            for secret in (key, key.hex().encode(), key.hex().upper().encode()):
                assert secret not in data, path
        record = json.loads((folder / "export.json").read_text())
        assert set(record) == {"format", "run", "synthmob", "rows"}
        for path in folder.rglob("*.parquet"):
            meta = pq.read_metadata(path).metadata or {}
            assert set(meta) <= {b"ARROW:schema"}, path  # the run's files carry the scenario (and its seed)
            assert pq.read_schema(path).metadata in (None, {}), path
            assert b"seed" not in b"".join(meta.values())
    events = pq.read_table(tiny_release / "events" / "date=2026-03-23" / "part-0.parquet")
    assert events.column_names == RELEASED
    identities = {"subscriber_id", "counterpart_id", "call_id", "imsi", "imei", "msisdn", "tac", "given_name",
                  "family_name", "email", "age_band", "gender", "persona", "home_cell", "work_cell", "car"}
    assert not identities & set(events.column_names)
    assert pq.read_table(tiny_release / "cells.parquet").equals(tiny_run.table("cells"))
    ids = {str(i) for i in tiny_run.table("subscribers")["subscriber_id"].to_pylist()}
    for column in ("pseudonym", "counterpart_pseudonym", "call_token"):
        assert not ids & set(events[column].drop_null().to_pylist())


def test_same_key_same_release_and_a_fresh_key_every_time(tiny_run, tiny_release, tmp_path):
    again = export(tiny_run, "pseudonymous", out=tmp_path / "again", key=KEY)
    for name in ("cells.parquet", "events/date=2026-03-23/part-0.parquet"):
        assert (again / name).read_bytes() == (tiny_release / name).read_bytes()
    first = export(tiny_run, "pseudonymous", out=tmp_path / "first")
    second = export(tiny_run, "pseudonymous", out=tmp_path / "second")
    names = [set(release(folder).pseudonym) for folder in (first, second, tiny_release)]
    assert len(names[0]) == len(names[1]) == len(names[2]) > 50
    assert not names[0] & names[1] and not names[0] & names[2]
    calls = [set(release(folder).call_token.dropna()) for folder in (first, second)]
    assert not calls[0] & calls[1]


def test_pseudonyms_change_at_local_midnight(week):
    released, truth = week
    released = released.assign(subscriber_id=truth.subscriber_id, utc=released.timestamp.dt.tz_convert("UTC"))
    midnight = pd.Timestamp("2026-03-28 23:00", tz="UTC")  # Saturday to Sunday in Europe/Berlin (CET, UTC+1)
    before = released[(released.utc >= midnight - pd.Timedelta("1h")) & (released.utc < midnight)]
    after = released[(released.utc >= midnight) & (released.utc < midnight + pd.Timedelta("1h"))]
    assert set(before.date) == {"2026-03-28"} and set(after.date) == {"2026-03-29"}
    both = before.groupby("subscriber_id").pseudonym.last().to_frame("before").join(
        after.groupby("subscriber_id").pseudonym.first().to_frame("after"), how="inner"
    )
    assert len(both) > 50
    assert (both.before != both.after).all()
    for sid, name in both.after.items():  # 23:00-24:00 UTC is still Saturday in UTC: not here
        assert name == keyed(KEY, b"%d|2026-03-29" % sid)


def test_a_local_day_after_the_change_of_offset_ends_at_its_own_midnight(tiny_run, tmp_path):
    """Records a millisecond either side of local midnights in summer and winter time, in one partition."""
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    shutil.rmtree(run / "events")
    times = ["2026-03-28 22:59:59.999", "2026-03-28 23:00:00.000",  # CET: midnight at 23:00 UTC
             "2026-03-29 21:59:59.999", "2026-03-29 22:00:00.000",  # CEST from 29 March: midnight at 22:00 UTC
             "2026-10-25 22:59:59.999", "2026-10-25 23:00:00.000"]  # CET again from 25 October
    days = ["2026-03-28", "2026-03-29", "2026-03-29", "2026-03-30", "2026-10-25", "2026-10-26"]
    kinds = ["location_update"] * 6 + ["periodic_update"]  # a periodic update is never released
    events = pa.table({"subscriber_id": [7] * 7, "timestamp": pd.to_datetime([*times, times[1]]).tz_localize("UTC"),
                       "cell_id": [0] * 7, "event_type": kinds})
    columns = [events[f.name] if f.name in events.column_names else pa.nulls(7) for f in schema.EVENTS]
    (run / "events" / "date=2026-03-29").mkdir(parents=True)
    pq.write_table(pa.table(columns, schema=schema.EVENTS), run / "events" / "date=2026-03-29" / "part-00000.parquet")
    frame = release(export(run, "pseudonymous", out=tmp_path / "out", key=KEY)).sort_values("timestamp")
    assert frame.date.astype(str).tolist() == days
    assert frame.event_type.tolist() == ["location_update"] * 6
    floored = pd.to_datetime(times).tz_localize("UTC").floor("min")  # 22:59:59.999 is released as 22:59
    assert frame.timestamp.tolist() == floored.tolist()
    assert frame.pseudonym.tolist() == [keyed(KEY, b"7|%s" % day.encode()) for day in days]


@pytest.mark.parametrize(
    ("key", "shown"),
    [(b"too short", "got 9 bytes"), ("a text key that is long enough", "got str"), (12345678901234567890, "got int"),
     (bytearray(32), "got bytearray")],
)
def test_a_bad_key_is_refused_before_anything_is_written(tiny_run, tmp_path, key, shown):
    with pytest.raises(SynthmobError) as info:
        export(tiny_run, "pseudonymous", out=tmp_path / "deep" / "out", key=key)
    message = str(info.value)
    assert "\n" not in message and shown in message and "at least 16" in message
    assert str(key) not in message
    assert not (tmp_path / "deep").exists()


def test_a_key_with_another_format_is_refused(tiny_run, tmp_path):
    with pytest.raises(SynthmobError, match="'skmob': takes no key; only 'pseudonymous' does") as info:
        export(tiny_run, "skmob", out=tmp_path / "out", key=KEY)
    assert "\n" not in str(info.value) and KEY.hex() not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_exact_times_no_longer_link_the_days(week_run, week, week_truth):
    """The attack re-links most days of the records as they were, and almost none of the release."""
    released, _ = week
    period_ms = round(week_run.manifest["scenario"]["events"]["periodic_update_min"] * 60_000)
    owner = dict(zip(week_truth.pseudonym, week_truth.subscriber_id))  # needs the key: not in the release
    before = linked_share(week_truth, period_ms, owner)  # daily hashes alone: every record, to the millisecond
    after = linked_share(released, period_ms, owner)
    assert before > 0.3, before
    assert after < 0.05, after


def test_the_release_names_its_run_by_folder_only(tiny_run, tiny_release, tmp_path):
    record = json.loads((tiny_release / "export.json").read_text())
    assert record["run"] == tiny_run.path.name == "tiny"
    parent = str(tiny_run.path.absolute().parent)
    for path in tiny_release.rglob("*"):
        if path.is_file():
            assert parent.encode() not in path.read_bytes(), path
    other = json.loads((export(tiny_run, "csv", out=tmp_path / "csv") / "export.json").read_text())
    assert other["run"] == str(tiny_run.path.absolute())  # a working export still says where its run is
