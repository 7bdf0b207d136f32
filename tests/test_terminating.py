"""Routing each call's leg to the callee's shard, and finding the callee's cell there."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from synthmob import schema
from synthmob.calendar import Calendar
from synthmob.events import DATA, IN, OUT, SMS, VOICE, Positions, Records, SCRATCH, _terminating
from synthmob.terminating import INCOMING, terminating_legs

CAL = Calendar.create(dt.date(2026, 3, 23), 1, "UTC")


def _own(folder, part, rows):
    """Write originating legs (caller, callee, ms, type, direction, call_id, duration) as a shard does."""
    caller, callee, ms, kind, direction, call_id, duration = (np.array(c) for c in zip(*rows))
    legs = Records.of(caller, ms, 0, kind, direction=direction, counterpart=callee, call_id=call_id, duration_s=duration)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(legs.to_scratch(), folder / f"{part}.parquet")


def test_legs_go_to_the_callees_shard_turned_round(tmp_path):
    own = tmp_path / "own"
    _own(own, "part-00000", [(1, 12, 1000, VOICE, OUT, 7, 30.0), (2, 3, 2000, SMS, OUT, 8, np.nan),
                             (1, -1, 3000, DATA, -1, 9, 5.0), (4, 2, 3500, VOICE, IN, 11, 9.0)])
    _own(own, "part-00001", [(11, 2, 4000, VOICE, OUT, 10, 60.0)])
    out = tmp_path / "incoming"
    assert terminating_legs(own, out, shard_size=10, threads=1) == 3  # not the data session, nor a leg already in
    assert sorted(p.name for p in out.iterdir()) == ["shard=0", "shard=1"]
    assert pq.read_table(out / "shard=0").select(INCOMING.names).schema.equals(INCOMING)  # the types DuckDB wrote
    first = pq.read_table(out / "shard=0", schema=INCOMING).sort_by("call_id")
    rows = [(r["sub"], r["counterpart"], r["call_id"], r["kind"], r["t_ms"]) for r in first.to_pylist()]
    assert rows == [(3, 2, 8, SMS, 2000), (2, 11, 10, VOICE, 4000)]
    assert np.isnan(first["duration_s"][0].as_py()) and first["duration_s"][1].as_py() == 60.0
    second = pq.read_table(out / "shard=1", schema=INCOMING).to_pylist()
    assert [(r["sub"], r["counterpart"], r["call_id"], r["t_ms"]) for r in second] == [(12, 1, 7, 1000)]


def test_nothing_to_route_writes_nothing(tmp_path):
    (tmp_path / "own").mkdir()
    assert terminating_legs(tmp_path / "own", tmp_path / "incoming", shard_size=10) == 0
    assert not (tmp_path / "incoming").exists()


def test_the_callees_leg_is_at_the_cell_serving_the_callee_then():
    # Shard of subscribers 20 and 21: 20 at cell 5 from 0, at cell 6 from 10 s; 21 at cell 9 throughout.
    where = Positions(sub=np.array([0, 0, 1]), t_ms=np.array([0, 10_000, 0]), cell=np.array([5, 6, 9], np.int32),
                      moving=np.zeros(3, bool))
    incoming = pa.table(
        {
            "sub": [20, 20, 20, 21],
            "t_ms": [0, 9_999, 10_000, 500],
            "kind": [VOICE, SMS, VOICE, VOICE],
            "counterpart": [1, 2, 3, 4],
            "call_id": [100, 101, 102, 103],
            "duration_s": [1.0, np.nan, 2.0, 3.0],
        },
        schema=INCOMING,
    )
    legs = _terminating(incoming, where, 20)
    assert isinstance(legs, Records)
    assert legs.cell.tolist() == [5, 5, 6, 9]
    assert legs.direction.tolist() == [IN] * 4
    assert legs.kind.tolist()[0] == VOICE and legs.counterpart.tolist() == [1, 2, 3, 4]
    assert np.isnan(legs.duration_s[1]) and legs.duration_s[3] == 3.0
    table = legs.to_table(CAL.epoch_s)
    assert table.schema.equals(schema.EVENTS)
    assert table["direction"].to_pylist() == ["in"] * 4 and table["event_type"].to_pylist()[1] == "sms"


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2**40), st.integers(-1, 5), st.integers(-1, 1),
                          st.integers(-1, 10**9), st.floats(allow_nan=True, allow_infinity=False)), max_size=30))
def test_records_keep_every_value_between_stages(rows):
    """A shard's records written as plain columns and read back are the same, nulls (-1, NaN) included."""
    sub, t, kind, direction, counterpart, duration = (np.array(c) for c in zip(*rows)) if rows else [np.zeros(0)] * 6
    legs = Records.of(sub, t, sub % 7, kind, direction=direction, counterpart=counterpart, call_id=counterpart,
                      duration_s=duration, bytes_up=counterpart, bytes_down=sub)
    back = Records.from_scratch(pq.read_table(pa.BufferReader(_parquet(legs.to_scratch()))))
    for name, mine, theirs in zip(SCRATCH.names, legs.columns(), back.columns()):
        assert theirs.dtype == mine.dtype, name
        np.testing.assert_array_equal(theirs, mine, err_msg=name)


def _parquet(table):
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue()
