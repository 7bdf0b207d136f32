"""Writing a run: an output folder that appears complete or not at all.

A run is written into a hidden temporary folder beside the target and renamed into place only when every
file is there, so a crash, an error or Ctrl-C never leaves a half-written run where a reader would find it.
A resumable run uses a folder with a fixed name instead (``.<name>.partial-<digest>``), kept after an
error so that the next attempt can carry on where this one stopped.
Tables are Parquet (zstd); ground-truth tables are Hive-partitioned by the scenario's local date
(``stays/date=2026-03-23/part-00000.parquet``), one part file per shard.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from synthmob.calendar import Calendar
from synthmob.errors import OutputError
from synthmob.schema import SUBSCRIBER_ID

COMPRESSION = "zstd"


@contextmanager
def staged_folder(
    target: Path, *, overwrite: bool, marker: str = "manifest.json", partial: str | None = None
) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` when the block ends without an error.

    ``target`` may be missing or empty; with ``overwrite`` it may also be an earlier output, recognised by
    the ``marker`` file inside it. Nothing else is ever replaced: not a folder of other files, not the
    current folder or one of its parents.

    Parameters
    ----------
    partial
        Name of a resumable staging folder beside ``target``: used as it is when it exists (what an earlier
        attempt left), and kept, unless empty, when the block ends with an error. Without it the staging
        folder has a random name and is removed on an error.

    Raises
    ------
    OutputError
        ``target`` cannot be used, or another process is writing to the same ``partial`` folder.
    """
    target = Path(target).absolute()
    try:
        _check_target(target, overwrite, marker)
        created = _make_parents(target.parent, target)
    except OSError as exc:
        raise OutputError(f"{target}: cannot use this folder ({exc.strerror}); choose another --out") from None
    lock = None
    try:
        if partial is None:
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
            staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a run is as readable as any new folder
        else:
            staging = target.parent / partial
            staging.mkdir(exist_ok=True)
            lock = _lock(staging, target)
    except BaseException as exc:
        _remove_empty(created)
        if isinstance(exc, OSError):
            raise OutputError(f"{target}: cannot write there ({exc.strerror}); choose a folder you can write to") from None
        raise
    try:
        yield staging
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, trash / "old")
            try:
                os.replace(staging, target)
            except BaseException:
                os.replace(trash / "old", target)  # put the old run back
                shutil.rmtree(trash, ignore_errors=True)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        if partial is None:
            shutil.rmtree(staging, ignore_errors=True)
            _remove_empty(created)
        else:
            _remove_empty([*created, staging])  # only if nothing was written
        raise
    finally:
        if lock is not None:
            os.close(lock)


def _lock(folder: Path, target: Path) -> int | None:
    """Hold an exclusive lock on ``folder`` (released when the returned descriptor is closed)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        return None
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputError(
            f"{target}: another process is writing this run ({folder.name}); wait for it to end"
        ) from None
    return fd


def _check_target(target: Path, overwrite: bool, marker: str) -> None:
    here = Path.cwd().absolute()
    if target == here or target in here.parents or target.parent == target:
        raise OutputError(f"{target}: is the current folder or one of its parents; give --out a new folder")
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: is a file, not a folder; give --out a folder path")
    if target.is_dir() and any(target.iterdir()):
        if not (target / marker).is_file():
            raise OutputError(
                f"{target}: folder exists, is not empty and holds no earlier output ({marker}); "
                "choose another --out (--overwrite only replaces an earlier output)"
            )
        if not overwrite:
            raise OutputError(
                f"{target}: folder exists and is not empty; pass --overwrite to replace it, or choose another --out"
            )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_parents(folder: Path, target: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return those created (deepest last)."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputError(f"{target}: {probe} is a file, not a folder; give --out a path inside a folder")
    created = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except OSError as exc:
            _remove_empty(created)
            raise OutputError(f"{target}: cannot create {path} ({exc.strerror}); choose a folder you can write to") from None
        created.append(path)
    return created


def _remove_empty(created: list[Path]) -> None:
    for path in reversed(created):
        try:
            path.rmdir()
        except OSError:
            break


def write_table(table: pa.Table, path: Path, *, metadata: dict[str, str] | None = None) -> int:
    """Write one Parquet file; return its row count.

    Only string columns that repeat (at most half as many distinct values as rows: event types, modes,
    activities) are dictionary-encoded. Trying a dictionary on timestamps, ids and byte counts, as Parquet
    writers do by default, costs about half the writing time of an events file and makes it larger.
    Timestamps and subscriber ids, which rise within a file sorted by subscriber and time, are written as
    deltas (:func:`delta_columns`): less for zstd to compress, a smaller file, and faster to read back.

    A column may also come as a dictionary of strings (codes into a few names, as the events are kept): it
    is written as a Parquet dictionary straight from its codes, without hashing every string, and reads back
    as plain strings. Such a table is written without Arrow's own copy of its schema (which would make the
    column a dictionary again for Arrow readers), so it must hold only types that Parquet alone restores
    exactly (:func:`plain_parquet_schema`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {**(table.schema.metadata or {}), **(metadata or {})}
    coded = [field.name for field in table.schema if pa.types.is_dictionary(field.type)]
    options = {
        "compression": COMPRESSION,
        "use_dictionary": coded + dictionary_columns(table),
        "column_encoding": dict.fromkeys(delta_columns(table.schema), "DELTA_BINARY_PACKED"),
    }
    if not coded:
        if metadata:
            table = table.replace_schema_metadata(metadata)
        pq.write_table(table, path, **options)
        return table.num_rows
    if not plain_parquet_schema(table.schema):
        raise ValueError(f"{path}: dictionary columns need a flat table of plain types, not {table.schema}")
    with pq.ParquetWriter(path, table.schema, store_schema=False, **options) as writer:
        writer.write_table(table)
        if metadata:
            writer.add_key_value_metadata(metadata)
    return table.num_rows


def delta_columns(schema: pa.Schema) -> list[str]:
    """The Parquet paths of the timestamp columns of ``schema``, nested ones included, and of a top-level
    ``subscriber_id``.

    Examples
    --------
    >>> step = pa.struct([("cell_id", pa.int32()), ("entered", pa.timestamp("ms", tz="UTC"))])
    >>> delta_columns(pa.schema([("subscriber_id", pa.int64()), ("at", pa.timestamp("ms", tz="UTC")),
    ...                          ("path", pa.list_(step))]))
    ['subscriber_id', 'at', 'path.list.element.entered']
    """

    def leaves(name: str, type: pa.DataType) -> list[str]:
        if pa.types.is_timestamp(type):
            return [name]
        if pa.types.is_list(type) or pa.types.is_large_list(type):
            return leaves(f"{name}.list.element", type.value_type)
        if pa.types.is_struct(type):
            return [path for child in type for path in leaves(f"{name}.{child.name}", child.type)]
        return []

    return [
        path for field in schema
        for path in ([field.name] if field.name == SUBSCRIBER_ID and pa.types.is_int64(field.type) else
                     leaves(field.name, field.type))
    ]


def plain_parquet_schema(schema: pa.Schema) -> bool:
    """Whether Parquet's own types restore every column of ``schema`` exactly, without Arrow's copy of it:
    integers, floats, booleans, strings, timestamps in UTC (in ms, µs or ns), and dictionaries of strings (read
    as strings).

    Examples
    --------
    >>> plain_parquet_schema(pa.schema([("n", pa.int8()), ("kind", pa.dictionary(pa.int8(), pa.string()))]))
    True
    >>> plain_parquet_schema(pa.schema([("path", pa.list_(pa.int32()))]))
    False
    >>> plain_parquet_schema(pa.schema([("at", pa.timestamp("s", tz="UTC"))]))  # it would read back in ms
    False
    """

    def plain(t: pa.DataType) -> bool:
        return (
            pa.types.is_integer(t) or pa.types.is_float32(t) or pa.types.is_float64(t) or pa.types.is_boolean(t)
            or pa.types.is_string(t)
            or (pa.types.is_timestamp(t) and t.tz == "UTC" and t.unit != "s")  # Parquet has no seconds unit
        )

    return all(
        plain(f.type) or (pa.types.is_dictionary(f.type) and pa.types.is_string(f.type.value_type)) for f in schema
    )


def write_scratch(table: pa.Table, path: Path) -> int:
    """Write an intermediate table, read once later in the run; return its row count.

    ``*.arrow`` is an Arrow IPC file with LZ4-compressed buffers, for what only this package reads back:
    about 60 % of the time of LZ4 Parquet to write and 40 % to read, at about the same size. ``*.parquet``
    (LZ4, no statistics) is for what DuckDB reads.
    """
    _scratch_suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".arrow":
        options = pa.ipc.IpcWriteOptions(compression="lz4")
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as writer:
            writer.write_table(table)
    else:
        pq.write_table(table, path, compression="lz4", use_dictionary=dictionary_columns(table), write_statistics=False)
    return table.num_rows


def read_scratch(path: Path) -> pa.Table:
    """A table written by :func:`write_scratch`."""
    if _scratch_suffix(path) == ".arrow":
        with pa.OSFile(str(path), "rb") as source:
            return pa.ipc.open_file(source).read_all()
    return pq.read_table(path)


def _scratch_suffix(path: Path) -> str:
    if path.suffix not in (".arrow", ".parquet"):
        raise ValueError(f"{path}: an intermediate file is .arrow or .parquet, not {path.suffix or 'without suffix'}")
    return path.suffix


def dictionary_columns(table: pa.Table) -> list[str]:
    """The top-level string columns of ``table`` with at most half as many distinct values as rows.

    Examples
    --------
    >>> dictionary_columns(pa.table({"kind": ["a", "b", "a", "a"], "name": ["w", "x", "y", "z"], "n": [1, 1, 1, 1]}))
    ['kind']
    """
    return [
        field.name for field in table.schema
        if pa.types.is_string(field.type) and pc.count_distinct(table[field.name]).as_py() * 2 <= table.num_rows
    ]


def remove_parts(folder: Path, part: str) -> None:
    """Remove ``folder/date=*/<part>.parquet``: what an interrupted attempt at a shard may have left."""
    for path in folder.glob(f"date=*/{part}.parquet"):
        path.unlink()


def write_partitioned(
    table: pa.Table,
    folder: Path,
    *,
    time_column: str,
    calendar: Calendar,
    part: str,
    metadata: dict[str, str] | None = None,
) -> dict[str, int]:
    """Write ``table`` as ``folder/date=YYYY-MM-DD/<part>.parquet`` by the local date of ``time_column``.

    Row order inside each file is kept. Returns rows per file, by path relative to ``folder.parent``.
    """
    if table.num_rows == 0:
        return {}
    day = local_days(pc.cast(table[time_column], pa.int64()).to_numpy(), calendar)
    if np.any(day[1:] < day[:-1]):  # one take, then slices, instead of a filter per day
        order = np.argsort(day, kind="stable")
        table, day = table.take(order), day[order]
    bounds = np.flatnonzero(np.diff(day)) + 1
    rows = {}
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(day)]])):
        path = folder / f"date={calendar.date_of_day(int(day[lo])).isoformat()}" / f"{part}.parquet"
        rows[path.relative_to(folder.parent).as_posix()] = write_table(table.slice(lo, hi - lo), path, metadata=metadata)
    return rows


def local_days(epoch_ms: np.ndarray, calendar: Calendar) -> np.ndarray:
    """The index of the local day of each time (ms since the Unix epoch), as :func:`write_partitioned` cuts."""
    return calendar.day_of(epoch_ms / 1000.0 - calendar.epoch_s)


def write_geojson(path: Path, cells: pa.Table, coverage_lonlat: np.ndarray, sites: pa.Table) -> int:
    """Coverage polygons and site points as an RFC 7946 FeatureCollection; return the feature count."""
    polygons = shapely.orient_polygons(coverage_lonlat, exterior_cw=False)
    geometries = shapely.to_geojson(shapely.set_precision(polygons, 1e-6)).tolist()
    keep = ["cell_id", "site_id", "cgi", "radio", "area_code", "azimuth_deg", "range_m", "urban"]
    props = cells.select(keep).to_pylist()
    features = [
        f'{{"type":"Feature","geometry":{g},"properties":{json.dumps({"kind": "cell", **p})}}}'
        for g, p in zip(geometries, props)
    ]
    for site in sites.to_pylist():
        point = {"type": "Point", "coordinates": [round(site.pop("lon"), 6), round(site.pop("lat"), 6)]}
        features.append(json.dumps({"type": "Feature", "geometry": point, "properties": {"kind": "site", **site}}))
    path.write_text('{"type":"FeatureCollection","features":[\n' + ",\n".join(features) + "\n]}\n", encoding="utf-8")
    return len(features)


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
