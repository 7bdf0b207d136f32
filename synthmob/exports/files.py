"""What every export format shares: the staging folder's writer and look-ups into a run's tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from synthmob import schema
from synthmob.errors import SynthmobError
from synthmob.output import write_table
from synthmob.run import Run


class Files:
    """The staging folder of an export, and the rows of every table written into it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rows: dict[str, int] = {}

    def csv(self, name: str, table: pa.Table) -> None:
        """CSV with a header; times to the millisecond (``2026-03-23 07:01:54.648Z``), nulls as empty fields."""
        for i, field in enumerate(table.schema):
            if pa.types.is_timestamp(field.type):
                # Arrow formats zoned times ~15x slower than naive ones; a naive cast keeps the UTC wall time.
                text = pc.cast(pc.cast(table[field.name], pa.timestamp("ms"), safe=False), pa.string())
                if field.type.tz is not None:
                    text = pc.binary_join_element_wise(text, "Z", "")
                table = table.set_column(i, field.name, text)
        pcsv.write_csv(table, self.folder / f"{name}.csv")
        self.rows[f"{name}.csv"] = table.num_rows

    def parquet(self, name: str, table: pa.Table, metadata: dict[str, str] | None = None) -> None:
        self.rows[f"{name}.parquet"] = write_table(table, self.folder / f"{name}.parquet", metadata=metadata)

    def both(self, name: str, table: pa.Table) -> None:
        self.csv(name, table)
        self.parquet(name, table)


def version() -> str:
    from synthmob import __version__

    return __version__



_BY_SUBSCRIBER = [(schema.SUBSCRIBER_ID, "ascending"), ("timestamp", "ascending")]


def events_table(
    run: Run, columns: list[str], event_types: tuple[str, ...] | None = None, *, order: list | None = _BY_SUBSCRIBER
) -> pa.Table:
    """Some columns of the events (of some types only), in the canonical schema, sorted by ``order``."""
    target = pa.schema([schema.EVENTS.field(c) for c in columns])
    if not (run.path / "events").is_dir():
        return target.empty_table()
    where = pc.field("event_type").isin(list(event_types)) if event_types else None
    table = run.dataset("events").to_table(columns=columns, filter=where).cast(target)
    return table.sort_by(order) if order else table


def path_steps(run: Run, trips: pa.Table, cells: pa.Table) -> tuple[pa.Array, np.ndarray, pa.Array]:
    """Every step of every trip's path: the row of its trip, the row of its cell in ``cells``, the steps."""
    steps = pc.list_flatten(trips["path"])
    where = index_of(cells[schema.CELL_ID].to_numpy(), pc.struct_field(steps, schema.CELL_ID).to_numpy(), "cell_id", run)
    return pc.list_parent_indices(trips["path"]), where, steps


def index_of(sorted_ids: np.ndarray, ids: np.ndarray, what: str, run: Run) -> np.ndarray:
    """Positions of ``ids`` in ``sorted_ids``, a table's unique sorted key (vectorised look-up)."""
    n = len(sorted_ids)
    if not len(ids):
        return np.zeros(0, np.int64)
    if n and sorted_ids[0] == 0 and sorted_ids[-1] == n - 1:  # the key is 0..n-1, as synthmob numbers things
        row, found = ids, ids.min() >= 0 and ids.max() < n
    else:
        row = np.minimum(np.searchsorted(sorted_ids, ids), max(n - 1, 0))
        found = n > 0 and np.array_equal(sorted_ids[row], ids)
    if not found:
        raise SynthmobError(f"{run.path}: a {what} in the records is missing from its table; regenerate the run")
    return row.astype(np.int64, copy=False)
