"""A pseudonymous release of the operator's records: subscribers under keyed hashes that change every day.

What is kept, what is replaced, what is left out
    Every record of ``events`` but the periodic updates is released, one row each, with ``cell_id``,
    ``event_type``, ``direction``, ``duration_s``, ``bytes_up`` and ``bytes_down`` as they are and
    ``timestamp`` cut to the start of its minute. ``subscriber_id`` becomes ``pseudonym``: the first 16 hex
    digits of HMAC-SHA256(key, ``b"%d|%s" % (subscriber_id, local_date)``), the local date (``YYYY-MM-DD``)
    in the scenario's time zone. ``counterpart_id`` becomes ``counterpart_pseudonym``, the other party's
    pseudonym of the same day, so the two legs of a call or SMS still connect (social-network measures within
    a day). ``call_id`` becomes ``call_token``, HMAC-SHA256(key, ``b"call|%d|%s" % (call_id, local_date)``):
    the same key in another domain (a subscriber's message starts with a digit, a call's with ``call|``).
    Nothing of the subscribers table is released: no IMSI, IMEI, MSISDN, name, e-mail or demographics. The
    cells are copied as they are (``cells.parquet``): infrastructure is not personal.
Why no periodic updates
    A ``periodic_update`` is signalling driven by a timer (T3412, ``events.periodic_update_min`` of the
    scenario, 54 min by default), not by what the subscriber does: it says only that the handset stayed in
    its cell and was quiet, which the other records already show. The timer restarts at every contact with
    the network and runs on across midnight, so a phone's first update of a day comes exactly one, two or
    three periods after its last record of the day before, to the millisecond, and carries the millisecond
    fraction of the activity that started it. Linking each pseudonym-day's first record to the day before's
    last record at exactly +T3412 re-linked about two thirds of the pseudonyms from one day to the next in
    a city over a week. Without these records that match is gone.
Why times to the minute
    Times to the millisecond make other exact coincidences (a record starting exactly where another ended,
    a fixed interval between two records) as good as a name. Every timestamp is therefore cut to the start
    of its minute (generalisation): a design choice between the operators' own records, which are usually
    kept to the second, and the hour or more of aggregated releases; minutes keep what mobility analyses use
    (stays, trips, activity by hour). Local midnight falls on a whole minute in every time zone in use today, so a
    record keeps its local date. Rows of a pseudonym within one minute keep the order of their exact times.
    Durations stay as recorded: a duration is a length, not a point in time, so it carries no phase of a
    clock that another day could match, and a start to the minute plus a duration gives an end only to the
    minute. Cutting times alone would not have been enough: T3412 is a whole number of minutes, so an update
    one period after a record stays exactly one period after it once both are cut.
Why daily rotation
    A pseudonym that never changed would let anyone follow a subscriber for the whole release, and a long
    trajectory is identifying. A new pseudonym at every local midnight (the day people live by, not the UTC
    day, which ends in the evening east of Greenwich) leaves single days: whoever holds the release cannot
    tell from the names which pseudonyms of two days are the same person. A session that runs past midnight
    gets a new call token after midnight too, or its token would link the two days; rows are sorted by
    pseudonym and time, and each day is one file, so neither the row order nor the run's shard files carry
    the subscriber's number across.
Key handling
    Without a key, every export draws a fresh 32-byte key (:func:`secrets.token_bytes`) and forgets it, so
    two exports of one run cannot be linked with each other either. A key given (bytes, at least 16) makes
    the release reproducible; keep it apart from the release. The key is never written: not to the files,
    not to ``export.json``, not to Parquet metadata. Neither is the run's scenario, whose seed would let
    anyone regenerate the run and re-link every pseudonym: the release is safe to publish only without the
    original run (its folder, manifest or seed), which holds the identities.
Length of a pseudonym
    64 bits. Two of ``n`` values of one day collide with probability about ``n**2 / 2**65`` (birthday
    bound): 3e-8 for a million subscribers, 3e-6 for ten million calls and sessions in a day; every day
    has its own values, so days do not add up.
Limits
    This is pseudonymisation, not anonymisation: within a day a trajectory is still one pseudonym, and a few
    places and times are often unique to one person (de Montjoye et al. 2013, "Unique in the Crowd",
    Scientific Reports 3:1376), so a day can be re-identified from outside knowledge and days can be
    re-linked by their places (the same home cell every night). Times still link days where a record runs
    past midnight: a call or session of one day whose duration reaches into the next shows that its owner
    was busy then, which a handover of the next day may match to the minute. Measure how unique the records
    are with the unicity of ``synthmob audit`` before publishing.

Keyed-hash pseudonymisation (a message authentication code with a secret key, of which HMAC is the usual
one), and the choice between one pseudonym per person and one per record or period, follow ENISA,
"Pseudonymisation techniques and best practices" (November 2019), chapter 5 (pseudonymisation techniques:
message authentication codes, and policies for how often a pseudonym changes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthmob import schema
from synthmob.calendar import Calendar
from synthmob.errors import SynthmobError
from synthmob.exports.files import Files
from synthmob.run import Run

#: The shortest key accepted, in bytes (128 bits); a key drawn here has 32.
MIN_KEY_BYTES = 16
#: Hex digits kept of every HMAC: 64 bits.
TOKEN_HEX = 16
#: Records of these types are left out of the release (timer-driven signalling that links days).
DROPPED = ("periodic_update",)
#: Released times are cut to the start of their minute: this many milliseconds.
RESOLUTION_MS = 60_000
#: The released events: the run's records with subscribers, counterparts and calls under keyed hashes.
RELEASE_SCHEMA = pa.schema(
    [
        pa.field("pseudonym", pa.string(), nullable=False),
        *(schema.EVENTS.field(name) for name in ("timestamp", schema.CELL_ID, "event_type", "direction")),
        pa.field("counterpart_pseudonym", pa.string(), nullable=True),
        pa.field("call_token", pa.string(), nullable=True),
        *(schema.EVENTS.field(name) for name in ("duration_s", "bytes_up", "bytes_down")),
    ]
)


def release_key(key: bytes | None = None) -> bytes:
    """The key to pseudonymise with: ``key`` once checked, or 32 fresh random bytes when it is None.

    Raises
    ------
    SynthmobError
        ``key`` is not bytes, or is shorter than :data:`MIN_KEY_BYTES`; the message never shows the key.
    """
    if key is None:
        return secrets.token_bytes(32)
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        got = f"{len(key)} bytes" if isinstance(key, bytes) else type(key).__name__
        raise SynthmobError(
            f"pseudonymous export: key: got {got}; give bytes of at least {MIN_KEY_BYTES} "
            "(e.g. secrets.token_bytes(32)), or no key for a fresh random one"
        )
    return key


def pseudonymous(run: Run, out: Files, *, key: bytes | None = None) -> None:
    """Write the run's events under daily pseudonyms (``events/date=YYYY-MM-DD/part-0.parquet``) and its cells.

    Periodic updates (:data:`DROPPED`) are left out and times are cut to the minute (:data:`RESOLUTION_MS`).

    Parameters
    ----------
    run
        The run to release.
    out
        The export's staging folder.
    key
        The HMAC key (bytes, at least :data:`MIN_KEY_BYTES`); None draws a fresh one that is never kept.

    Examples
    --------
    >>> import pathlib, tempfile, pyarrow.parquet as pq, synthmob
    >>> from synthmob.exports import export
    >>> run = synthmob.generate("tiny", out=pathlib.Path(tempfile.mkdtemp()) / "tiny")
    >>> folder = export(run, "pseudonymous", key=bytes(range(32)))
    >>> release = pq.read_table(folder / "events" / "date=2026-03-23" / "part-0.parquet")
    >>> release.column_names[:4]
    ['pseudonym', 'timestamp', 'cell_id', 'event_type']
    >>> events = run.table("events")
    >>> release.num_rows == events.num_rows - pc.sum(pc.equal(events["event_type"], "periodic_update")).as_py()
    True
    >>> {(t.second, t.microsecond) for t in release["timestamp"].to_pylist()}
    {(0, 0)}
    """
    mac = hmac.new(release_key(key), digestmod=hashlib.sha256)
    out.parquet("cells", run.table("cells").replace_schema_metadata(None))
    timezone = run.manifest["scenario"]["timezone"]
    written: dict[str, int] = {}
    import pyarrow.dataset as ds  # here, not at the top: it loads pandas, which `import synthmob` need not

    for part in sorted((run.path / "events").glob("date=*")):
        events = ds.dataset(part, format="parquet").to_table(
            columns=schema.EVENTS.names, filter=~ds.field("event_type").isin(list(DROPPED))
        ).cast(schema.EVENTS)
        for date, rows in _local_days(events, timezone):
            name = f"events/date={date}/part-{written.get(date, 0)}"
            out.parquet(name, _release(mac, rows, date.encode()))
            written[date] = written.get(date, 0) + 1


def _local_days(events: pa.Table, timezone: str) -> list[tuple[str, pa.Table]]:
    """The records of each local date (ISO) in ``events``: a run partitions by local date, so usually one."""
    if events.num_rows == 0:
        return []
    seconds = pc.cast(events["timestamp"], pa.int64()).to_numpy() / 1000.0
    first = _utc_date(seconds.min()) - dt.timedelta(days=1)  # local dates run up to a day either side of UTC
    calendar = Calendar.create(first, (_utc_date(seconds.max()) - first).days + 2, timezone)
    day = calendar.day_of(seconds - calendar.epoch_s)  # as synthmob.output.write_partitioned does
    return [(calendar.date_of_day(int(d)).isoformat(), events.filter(pa.array(day == d))) for d in np.unique(day)]


def _utc_date(seconds: float) -> dt.date:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).date()


def _release(mac: hmac.HMAC, events: pa.Table, date: bytes) -> pa.Table:
    """One local day's records with subscribers, counterparts and calls replaced by their keyed hashes and
    times cut to the minute."""
    n = events.num_rows
    party = events["counterpart_id"]
    ids = np.concatenate([events[schema.SUBSCRIBER_ID].to_numpy(), _filled(party)])
    people, where = _tokens(mac, b"%d|" + date, ids)
    calls, call_where = _tokens(mac, b"call|%d|" + date, _filled(events["call_id"]))
    # Sort by pseudonym (a hash, like a random relabelling) and time: no trace of the run's subscriber order.
    rank = np.empty(len(people), np.int64)
    rank[np.argsort(people.to_numpy(zero_copy_only=False), kind="stable")] = np.arange(len(people))
    exact = pc.cast(events["timestamp"], pa.int64()).to_numpy()
    order = np.lexsort((exact, rank[where[:n]]))  # by exact time: a minute's records keep their order
    columns = {
        "timestamp": pa.array(exact // RESOLUTION_MS * RESOLUTION_MS, pa.int64()).cast(schema.TIMESTAMP),
        "pseudonym": people.take(where[:n]),
        "counterpart_pseudonym": people.take(pa.array(where[n:], mask=_nulls(party))),
        "call_token": calls.take(pa.array(call_where, mask=_nulls(events["call_id"]))),
    }
    arrays = [columns[f.name] if f.name in columns else events[f.name] for f in RELEASE_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=RELEASE_SCHEMA).take(order)


def _tokens(mac: hmac.HMAC, message: bytes, values: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """The keyed hash of every distinct value (one HMAC each), and each value's position among them."""
    distinct, inverse = np.unique(values, return_inverse=True)
    hashes = []
    for value in distinct.tolist():  # once per distinct value of the day: a subscriber's records share one
        one = mac.copy()
        one.update(message % value)
        hashes.append(one.hexdigest()[:TOKEN_HEX])
    return pa.array(hashes, pa.string()), inverse.reshape(-1)


def _filled(column: pa.ChunkedArray) -> np.ndarray:
    """An id column as int64 with nulls as -1 (hashed once, then masked out)."""
    return pc.fill_null(column, -1).to_numpy()


def _nulls(column: pa.ChunkedArray) -> np.ndarray:
    return pc.is_null(column).to_numpy(zero_copy_only=False)
