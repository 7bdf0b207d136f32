"""A privacy audit of a run: its released insight tables and the unicity of its record-level data.

:func:`audit` checks every released table ``RUN/insights/<name>.parquet`` against the disclosure rule of
:mod:`synthmob.disclosure`, with the keys and ``k`` of its sidecar ``<name>.json``; the run passes when no
table has a finding. It also measures the *unicity* of the records: the share of subscribers singled out
by ``p`` of their spatio-temporal points (distinct cell × UTC hour). De Montjoye, Hidalgo, Verleysen &
Blondel, "Unique in the Crowd", Sci. Rep. 3, 1376 (2013), found that 4 such points single out 95 % of
1.5 M people at antenna × hour resolution. Unicity is reported, not judged: record-level data are not meant
to be released, and the number shows why.

Examples
--------
>>> a = Audit(run="r", tables={}, unicity={1: 0.5}, unicity_sample={1: 4}, notes=["no released tables"])
>>> a.passed
True
>>> print(a.format_table())
no released tables
<BLANKLINE>
points  unicity  sample
1       0.5      4
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthmob import schema
from synthmob.disclosure import Finding, findings
from synthmob.errors import SynthmobError
from synthmob.run import Run

UNICITY_SOURCE = "de Montjoye et al., Sci. Rep. 3, 1376 (2013)"
#: Files in the insights folder that are not count tables.
NOT_TABLES = ("zones.parquet",)
_HOUR_MS = 3_600_000


@dataclass(frozen=True)
class TableAudit:
    """The audit of one released table: its size, its sidecar's keys and ``k``, and its findings."""

    name: str
    rows: int | None
    keys: tuple[str, ...] | None
    k: int | None
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        return not self.findings


@dataclass
class Audit:
    """The result of :func:`audit`.

    Attributes
    ----------
    run : str
        The name of the run folder audited (not its path, which could name a user).
    tables : dict of str to TableAudit
        One entry per released table, by name (``"footfall"`` for ``insights/footfall.parquet``).
    unicity : dict of int to float or None
        For each number of points ``p``, the share of sampled subscribers that ``p`` of their points single
        out; ``None`` when no subscriber has ``p`` points.
    unicity_sample : dict of int to int
        How many subscribers were sampled for each ``p``.
    notes : list of str
        What else the reader should know (e.g. that no tables were released).
    """

    run: str  # the run folder's name (a path could name a user in a published audit)
    tables: dict[str, TableAudit]
    unicity: dict[int, float | None]
    unicity_sample: dict[int, int]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no released table has a finding (unicity is not judged)."""
        return all(table.passed for table in self.tables.values())

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping: the verdict, each table with its findings, the unicity per ``p``, notes."""
        tables = []
        for t in self.tables.values():
            tables.append({"name": t.name, "rows": t.rows, "keys": None if t.keys is None else list(t.keys),
                           "k": t.k, "verdict": "pass" if t.passed else "fail",
                           "findings": [_jsonable(asdict(f)) for f in t.findings]})
        unicity = [{"points": p, "share": s, "sample": self.unicity_sample.get(p, 0)} for p, s in self.unicity.items()]
        return {"run": self.run, "passed": self.passed, "tables": tables, "unicity": unicity,
                "unicity_unit": "distinct (cell_id, UTC hour) points of a subscriber's records",
                "unicity_source": UNICITY_SOURCE, "notes": list(self.notes)}

    def format_table(self) -> str:
        """Plain text: one row per released table (rows, findings, verdict), then the unicity per ``p``."""
        blocks = []
        if self.tables:
            header = ("table", "rows", "k", "findings", "verdict")
            body = [(t.name, _text(t.rows), _text(t.k), str(len(t.findings)), "pass" if t.passed else "FAIL")
                    for t in self.tables.values()]
            blocks.append(_columns(header, body))
        else:
            blocks.append("no released tables")
        if self.unicity:
            body = [(str(p), "—" if s is None else f"{s:.3g}", str(self.unicity_sample.get(p, 0)))
                    for p, s in self.unicity.items()]
            blocks.append(_columns(("points", "unicity", "sample"), body))
        return "\n\n".join(blocks)

    def write_json(self, run: Run | str | Path) -> Path:
        """Write the audit to ``RUN/audit.json`` atomically (a temporary file renamed into place)."""
        folder = _run(run).path
        path = folder / "audit.json"
        handle, temp = tempfile.mkstemp(prefix=".audit.", suffix=".json.tmp", dir=folder)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(json.dumps(self.to_json(), indent=2, ensure_ascii=False, default=str) + "\n")
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return path


def _text(value: object) -> str:
    return "—" if value is None else str(value)


def _columns(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *body])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else Run(run)


# --- released tables ------------------------------------------------------------------------------------
def _sidecar(path: Path) -> tuple[tuple[str, ...], int]:
    """The keys and k of a table's sidecar; raises ValueError saying what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no sidecar {path.name}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"sidecar {path.name} is not readable JSON ({error})") from None
    keys, k = (data.get("keys"), data.get("k")) if isinstance(data, dict) else (None, None)
    if not isinstance(keys, list) or not keys or not all(isinstance(c, str) for c in keys):
        raise ValueError(f"sidecar {path.name} has no list of key columns 'keys' (got {keys!r})")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"sidecar {path.name} has no whole number 'k' >= 0 (got {k!r})")
    return tuple(keys), k


def _check_table(path: Path) -> TableAudit:
    name = path.stem
    try:
        keys, k = _sidecar(path.with_suffix(".json"))
    except ValueError as error:
        return TableAudit(name, None, None, None, (Finding("sidecar", {}, f"{path.name}: {error}; cannot check it"),))
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        return TableAudit(name, None, keys, k, (Finding("unreadable", {}, f"{path.name}: {error}"),))
    try:
        found = findings(table, keys=keys, k=k)
    except SynthmobError as error:
        found = [Finding("malformed", {}, f"{path.name}: {error}")]
    return TableAudit(name, table.num_rows, keys, k, tuple(found))


# --- unicity --------------------------------------------------------------------------------------------
def _unicity(run: Run, points: list[int], sample: int, seed: int, memory_limit: str) -> tuple[dict, dict, list[str]]:
    """Unicity per number of points, in DuckDB over the events' Parquet files, out of core."""
    from synthmob.insights.measures import session

    files = sorted((run.path / "events").glob("**/*.parquet"))
    if not files:
        return {p: None for p in points}, {p: 0 for p in points}, ["no events: unicity not measured"]
    with session(memory_limit=memory_limit) as con:
        con.execute(
            f"CREATE TEMP TABLE pts AS SELECT DISTINCT {schema.SUBSCRIBER_ID} AS sub, {schema.CELL_ID} AS cell, "
            f"epoch_ms(timestamp) // {_HOUR_MS} AS hour FROM read_parquet(?, hive_partitioning = false)",
            [[str(f) for f in files]])
        subs, n_points = con.sql("SELECT sub, count(*) AS n FROM pts GROUP BY sub ORDER BY sub").fetchnumpy().values()
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(subs))  # one random order: for each p, its first eligible subscribers
        chosen = {p: subs[order[n_points[order] >= p][:sample]] for p in points}
        wanted = np.unique(np.concatenate([*chosen.values(), np.zeros(0, subs.dtype)]))
        con.register("wanted", pa.table({"sub": wanted}))
        own = con.sql("SELECT sub, cell, hour FROM pts SEMI JOIN wanted USING (sub) "
                      "ORDER BY sub, cell, hour").to_arrow_table()
        own_sub, own_cell, own_hour = (own[c].to_numpy() for c in ("sub", "cell", "hour"))
        # A random order of each subscriber's points: its first p are a uniform draw of p of them, and the
        # draws for different p are nested, so a subscriber singled out by p points is by p + 1 too.
        by_sub = np.lexsort((rng.random(len(own_sub)), own_sub))
        first = np.r_[0, np.flatnonzero(own_sub[by_sub][1:] != own_sub[by_sub][:-1]) + 1] if len(by_sub) else by_sub
        rank = np.arange(len(by_sub)) - np.repeat(first, np.diff(np.r_[first, len(by_sub)]))
        rank_of = np.empty(len(by_sub), np.int64)
        rank_of[by_sub] = rank
        shares, sizes = {}, {}
        for p in points:
            mask = np.isin(own_sub, chosen[p]) & (rank_of < p)
            sizes[p] = len(chosen[p])
            if not sizes[p]:
                shares[p] = None
                continue
            con.register("probe", pa.table({"probe": own_sub[mask], "cell": own_cell[mask], "hour": own_hour[mask]}))
            unique = con.sql(
                "SELECT count(*) FROM (SELECT probe FROM (SELECT probe, pts.sub FROM probe JOIN pts USING (cell, hour) "
                "GROUP BY probe, pts.sub HAVING count(*) = $p) GROUP BY probe HAVING count(*) = 1)",
                params={"p": p}).fetchall()[0][0]
            shares[p] = unique / sizes[p]
            con.unregister("probe")
    return shares, sizes, []


def audit(run: Run | str | Path, *, points: Sequence[int] = (1, 2, 3, 4, 5), sample: int = 2000,
          seed: int = 0, memory_limit: str = "1GB") -> Audit:
    """Audit a run's released tables against the disclosure rule and measure its records' unicity.

    Every ``RUN/insights/*.parquet`` (but ``zones.parquet``) is checked with
    :func:`synthmob.disclosure.findings`, with the ``keys`` and ``k`` of its sidecar ``<name>.json``; a
    table without a readable sidecar is itself a finding (rule ``"sidecar"``, or ``"unreadable"``,
    ``"malformed"``). Unicity: a subscriber's points are the distinct (cell_id, UTC hour) pairs of their
    records. For each ``p``, up to ``sample`` subscribers with at least ``p`` points are drawn at random
    (seeded), ``p`` of each one's points are drawn at random, and every subscriber of the run having all
    ``p`` is counted, in DuckDB; the unicity is the share of drawn subscribers that only they match.

    Parameters
    ----------
    run : synthmob.Run, str or pathlib.Path
        A generated run.
    points : sequence of int, default (1, 2, 3, 4, 5)
        The numbers of points, each >= 1.
    sample : int, default 2000
        Most subscribers drawn per number of points.
    seed : int, default 0
        Seed of the numpy Generator that draws the subscribers and their points.
    memory_limit : str, default "1GB"
        Most memory DuckDB holds while counting (as in :func:`synthmob.insights.insights`); beyond it, it
        spills to a private temporary folder.

    Returns
    -------
    Audit
        ``passed`` is True when no table has a finding; a run without ``insights`` passes, with a note.
    """
    run = _run(run)
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence) or not points or any(
            isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1 for p in points):
        raise SynthmobError(f"points: got {points!r}; give a non-empty list of whole numbers >= 1, e.g. (1, 2, 3, 4, 5)")
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
        raise SynthmobError(f"sample: got {sample!r}; give a whole number of subscribers >= 1, e.g. 2000")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SynthmobError(f"seed: got {seed!r}; give a whole number >= 0")
    from synthmob.insights.measures import check_memory_limit  # imports DuckDB: only when auditing

    check_memory_limit(memory_limit)
    folder = run.path / "insights"
    notes: list[str] = []
    tables: dict[str, TableAudit] = {}
    paths = sorted(p for p in folder.glob("*.parquet") if p.name not in NOT_TABLES) if folder.is_dir() else []
    for path in paths:
        tables[path.stem] = _check_table(path)
    if not paths:
        notes.append(f"no released tables: {folder} {'has no count tables' if folder.is_dir() else 'does not exist'}")
    unique_points = sorted({int(p) for p in points})
    shares, sizes, more = _unicity(run, unique_points, int(sample), int(seed), memory_limit)
    return Audit(run=run.path.resolve().name, tables=tables, unicity=shares, unicity_sample=sizes, notes=notes + more)
