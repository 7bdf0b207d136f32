"""The callee's leg of every call and SMS, found after all shards have run.

A call's counterpart may live in another shard, so its terminating leg cannot be drawn where the call was
made. Once every shard has written its originating legs and its subscribers' timelines, one DuckDB
``ASOF JOIN`` finds, for each originating leg, the cell serving the counterpart at that moment, out of core.
The legs are written partitioned by the counterpart's shard, for that shard to merge into its records.
"""

from __future__ import annotations

from pathlib import Path

import duckdb


def terminating_legs(own: Path, positions: Path, out: Path, *, shard_size: int, threads: int = 2,
                     memory_limit: str = "1GB") -> int:
    """Write the terminating legs of the originating voice and SMS legs in ``own/*.parquet``.

    Each leg is the callee's: same ``call_id``, ``timestamp`` and ``duration_s`` as the caller's, direction
    ``in``, the caller as ``counterpart_id``, at the cell serving the callee at that instant (from the
    timelines in ``positions/*.parquet``). Output: ``out/shard=<k>/*.parquet``. Returns the number of legs.
    DuckDB keeps within ``memory_limit`` and spills the rest to a folder beside ``out``.
    """
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
        query = f"""
            SELECT o.counterpart_id AS subscriber_id,
                   o."timestamp" AS "timestamp",
                   p.cell_id AS cell_id,
                   o.event_type AS event_type,
                   'in' AS direction,
                   o.subscriber_id AS counterpart_id,
                   o.call_id AS call_id,
                   o.duration_s AS duration_s,
                   CAST(NULL AS BIGINT) AS bytes_up,
                   CAST(NULL AS BIGINT) AS bytes_down,
                   o.counterpart_id // {int(shard_size)} AS shard
            FROM read_parquet('{_glob(own)}') AS o
            ASOF JOIN read_parquet('{_glob(positions)}') AS p
              ON o.counterpart_id = p.subscriber_id AND o."timestamp" >= p."timestamp"
            WHERE o.direction = 'out'
        """
        if not any(own.glob("*.parquet")) or not any(positions.glob("*.parquet")):
            return 0
        written = con.execute(f"COPY ({query}) TO '{out.as_posix()}' (FORMAT parquet, PARTITION_BY (shard))")
        return int(written.fetchone()[0])
    finally:
        con.close()


def _glob(folder: Path) -> str:
    return (folder / "*.parquet").as_posix().replace("'", "''")
