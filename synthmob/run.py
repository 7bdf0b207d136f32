"""A handle on a generated run: its manifest and its tables.

Examples
--------
>>> import tempfile, pathlib, synthmob
>>> run = synthmob.generate("tiny", out=pathlib.Path(tempfile.mkdtemp()) / "t")
>>> sorted(run.tables)
['cells', 'contacts', 'events', 'stays', 'subscribers', 'trips']
>>> run.table("subscribers").num_rows
100
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from synthmob import schema
from synthmob.errors import SynthmobError

if TYPE_CHECKING:
    import pyarrow.dataset as ds

_SORT = {
    "cells": [(schema.CELL_ID, "ascending")],
    "subscribers": [(schema.SUBSCRIBER_ID, "ascending")],
    "stays": [(schema.SUBSCRIBER_ID, "ascending"), ("start", "ascending")],
    "trips": [(schema.SUBSCRIBER_ID, "ascending"), ("depart", "ascending")],
    "events": [(schema.SUBSCRIBER_ID, "ascending"), ("timestamp", "ascending")],
    "contacts": [("subscriber_a", "ascending"), ("subscriber_b", "ascending")],
}


class Run:
    """A run folder written by :func:`synthmob.generate`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "manifest.json").is_file():
            raise SynthmobError(f"{self.path}: not a synthmob run (no manifest.json); give a folder made by 'synthmob generate'")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The run's ``manifest.json``: resolved scenario, seed, versions and row counts."""
        return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))

    @property
    def tables(self) -> tuple[str, ...]:
        """Names of the tables in the run."""
        return tuple(sorted(set(schema.SINGLE_FILES) | set(schema.DATASETS)))

    def dataset(self, name: str) -> "ds.Dataset":
        """A lazy Arrow dataset over one table (with the ``date`` partition column for partitioned ones)."""
        import pyarrow.dataset as ds  # imports pandas: only when asked for

        self._check(name)
        if name in schema.SINGLE_FILES:
            return ds.dataset(self.path / f"{name}.parquet", format="parquet")
        return ds.dataset(
            self.path / name,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive"),
        )

    def table(self, name: str) -> pa.Table:
        """One whole table as Arrow, in its canonical schema, sorted by its key."""
        self._check(name)
        if name in schema.SINGLE_FILES:
            table = pq.read_table(self.path / f"{name}.parquet")
            expected = schema.SINGLE_FILES[name]
        else:
            expected = schema.DATASETS[name]
            table = self.dataset(name).to_table(columns=expected.names) if (self.path / name).is_dir() else expected.empty_table()
        return table.select(expected.names).cast(expected).sort_by(_SORT[name])

    def pandas(self, name: str):
        """One whole table as a pandas DataFrame (needs pandas: ``pip install 'synthmob[pandas]'``).

        An integer column with nulls (``work_cell``) keeps an integer dtype with ``<NA>``, not float.
        """
        try:
            import pandas as pd
        except ImportError:
            raise SynthmobError(
                "Run.pandas needs pandas, which is not installed: pip install 'synthmob[pandas]', or use Run.table"
            ) from None

        table = self.table(name)
        frame = table.to_pandas()
        nullable = {pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}
        for field in table.schema:
            if field.type in nullable and table[field.name].null_count:
                frame[field.name] = table[field.name].to_pandas(types_mapper=nullable.get)
        return frame

    def _check(self, name: str) -> None:
        if name not in self.tables:
            raise SynthmobError(f"{self.path}: no table {name!r}; tables are {', '.join(self.tables)}")

