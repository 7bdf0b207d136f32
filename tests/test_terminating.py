"""Routing each call's leg to the callee's shard, and finding the callee's cell there."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthmob import schema
from synthmob.calendar import Calendar
from synthmob.events import IN, VOICE, Positions, Records, _terminating
from synthmob.terminating import INCOMING, terminating_legs

CAL = Calendar.create(dt.date(2026, 3, 23), 1, "UTC")


def _own(folder, part, rows):
    """Write originating legs (caller, callee, ms, type, direction, call_id, duration)."""
    caller, callee, ms, kind, direction, call_id, duration = (np.array(c, dtype=object) for c in zip(*rows))
    table = pa.table(
        {
            schema.SUBSCRIBER_ID: pa.array(caller.astype(np.int64)),
            "timestamp": pa.array((ms.astype(np.int64) + CAL.epoch_s * 1000)).cast(schema.TIMESTAMP),
            schema.CELL_ID: pa.array(np.zeros(len(rows), np.int32)),
            "event_type": pa.array(kind.tolist(), pa.string()),
            "direction": pa.array(direction.tolist(), pa.string()),
            "counterpart_id": pa.array(callee.tolist(), pa.int64()),
            "call_id": pa.array(call_id.astype(np.int64)),
            "duration_s": pa.array(duration.tolist(), pa.float64()),
            "bytes_up": pa.nulls(len(rows), pa.int64()),
            "bytes_down": pa.nulls(len(rows), pa.int64()),
        },
        schema=schema.EVENTS,
    )
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{part}.parquet")


def test_legs_go_to_the_callees_shard_turned_round(tmp_path):
    own = tmp_path / "own"
    _own(own, "part-00000", [(1, 12, 1000, "voice", "out", 7, 30.0), (2, 3, 2000, "sms", "out", 8, None),
                             (1, None, 3000, "data", None, 9, 5.0)])
    _own(own, "part-00001", [(11, 2, 4000, "voice", "out", 10, 60.0)])
    out = tmp_path / "incoming"
    assert terminating_legs(own, out, shard_size=10, threads=1) == 3
    assert sorted(p.name for p in out.iterdir()) == ["shard=0", "shard=1"]
    first = pq.read_table(out / "shard=0", schema=INCOMING).sort_by("call_id").to_pylist()
    assert [(r["subscriber_id"], r["counterpart_id"], r["call_id"], r["event_type"], r["duration_s"]) for r in first] == [
        (3, 2, 8, "sms", None), (2, 11, 10, "voice", 60.0)]
    second = pq.read_table(out / "shard=1", schema=INCOMING).to_pylist()
    assert [(r["subscriber_id"], r["counterpart_id"], r["call_id"]) for r in second] == [(12, 1, 7)]
    assert second[0]["timestamp"].timestamp() == CAL.epoch_s + 1.0


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
            schema.SUBSCRIBER_ID: [20, 20, 20, 21],
            "timestamp": pa.array(np.array([0, 9_999, 10_000, 500]) + CAL.epoch_s * 1000).cast(schema.TIMESTAMP),
            "event_type": ["voice", "sms", "voice", "voice"],
            "counterpart_id": [1, 2, 3, 4],
            "call_id": [100, 101, 102, 103],
            "duration_s": [1.0, None, 2.0, 3.0],
        },
        schema=INCOMING,
    )
    legs = _terminating(incoming, where, 20, CAL)
    assert isinstance(legs, Records)
    assert legs.cell.tolist() == [5, 5, 6, 9]
    assert legs.direction.tolist() == [IN] * 4
    assert legs.kind.tolist()[0] == VOICE and legs.counterpart.tolist() == [1, 2, 3, 4]
    assert np.isnan(legs.duration_s[1]) and legs.duration_s[3] == 3.0
    table = legs.to_table(CAL.epoch_s)
    assert table.schema.equals(schema.EVENTS)
    assert table["direction"].to_pylist() == ["in"] * 4 and table["event_type"].to_pylist()[1] == "sms"
