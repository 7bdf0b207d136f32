"""The callee's leg of every call and SMS, routed to the callee's shard after all shards have run.

A call's counterpart may live in another shard, so its terminating leg cannot be made where the call was
made. Once every shard has written its originating legs, one DuckDB query reads them out of core and writes
each voice and SMS leg, turned round (the callee as subscriber, the caller as counterpart), partitioned by
the callee's shard. That shard then finds the cell serving the callee at the instant of each leg by an
as-of look-up in its own timeline, which it holds in memory anyway (:func:`synthmob.events.finish`).

Routing the legs and looking them up in each shard, rather than joining every leg against every timeline
in DuckDB, reads the timelines once instead of twice and leaves DuckDB a scan and a partitioned write.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from synthmob.events import OUT, SCRATCH

#: The columns of a routed leg, as the callee's shard reads them (it adds the cell and the direction): those
#: of :data:`synthmob.events.SCRATCH` it needs, plain numbers with NaN for a missing duration.
INCOMING = pa.schema([SCRATCH.field(name) for name in ("sub", "t_ms", "kind", "counterpart", "call_id", "duration_s")])


def terminating_legs(own: Path, out: Path, *, shard_size: int, threads: int = 2, memory_limit: str = "1GB") -> int:
    """Route the originating voice and SMS legs in ``own/*.parquet`` (:data:`synthmob.events.SCRATCH`
    columns; a run gives it each shard's outgoing legs alone, and any other record is skipped) to their
    callees' shards.

    Each routed leg is the callee's: same ``call_id``, ``t_ms`` and ``duration_s`` as the caller's, the
    callee as ``sub`` and the caller as ``counterpart`` (columns of :data:`INCOMING`).
    Output: ``out/shard=<k>/*.parquet``, where k is the callee's shard. Returns the number of legs. DuckDB
    keeps within ``memory_limit`` and spills the rest to a folder beside ``out``.
    """
    if not any(own.glob("*.parquet")):
        return 0
    con = duckdb.connect()
    try:
        con.execute(f"SET threads TO {int(threads)}")
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{(out.parent / 'duckdb-spill').as_posix()}'")
        con.execute("SET preserve_insertion_order = false")
        try:
            con.execute("SET enable_progress_bar = false")  # a library never prints
        except duckdb.InvalidInputException:  # in Jupyter without ipywidgets DuckDB draws no bar anyway
            pass
        # Columns are qualified: ``counterpart`` is also an alias in the SELECT list, and the shard is the
        # source column's (the callee's), never the alias's (the caller's).
        query = f"""
            SELECT own.counterpart AS sub,
                   own.t_ms,
                   own.kind,
                   own.sub AS counterpart,
                   own.call_id,
                   own.duration_s,
                   own.counterpart // {int(shard_size)} AS shard
            FROM read_parquet('{_glob(own)}') AS own
            WHERE own.direction = {OUT}
        """
        written = con.execute(f"COPY ({query}) TO '{out.as_posix()}' (FORMAT parquet, PARTITION_BY (shard))")
        return int(written.fetchone()[0])
    finally:
        con.close()


def _glob(folder: Path) -> str:
    return (folder / "*.parquet").as_posix().replace("'", "''")
