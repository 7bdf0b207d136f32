"""Statistical disclosure control of released count tables: threshold suppression and differential privacy.

A released table has key columns (e.g. ``zone_id``, ``hour``), the breakdown columns ``age_band`` and
``gender``, and a nullable ``count``. Rows that share the keys form a *group*; its *total* is the row whose
breakdown is ``("all", "all")``, its other rows are the *cells* of the age band × gender cross-classification,
and the total is the sum of the cells. A null count is *suppressed*. The rules, with a threshold ``k``:

1. No released count is ``<= k`` (threshold rule; Hundepool et al., *Statistical Disclosure Control*,
   Wiley 2012, §5.2).
2. In a group whose total is released, the suppressed cells ``S`` are either none, or at least two whose sum
   (the total minus the released cells) is ``> k``: one suppressed cell would be recovered exactly by
   differencing, a small sum would release a small count (§5.4 on secondary suppression). If no choice of
   cells can achieve this, the total is suppressed.
3. A suppressed total may have released cells (each ``> k``).

``k = 0`` switches the rules off. :func:`protect` applies them to exact counts, optionally after adding
discrete Laplace noise (Ghosh, Roughgarden & Sundararajan, SIAM J. Comput. 41, 1673 (2012)) with OpenDP;
:func:`findings` lists every violation in a released table.

Examples
--------
>>> import pyarrow as pa
>>> t = pa.table({"zone_id": [1, 1, 1, 1], "age_band": ["all", "25-34", "25-34", "35-44"],
...               "gender": ["all", "female", "male", "female"], "count": [60, 3, 30, 27]})
>>> out, info = protect(t, keys=["zone_id"], k=15)
>>> out["count"].to_pylist()
[60, None, 30, None]
>>> info["suppressed"]
{'primary': 1, 'complementary': 1, 'totals': 0}
>>> findings(out, keys=["zone_id"], k=15)
[]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthmob.errors import SynthmobError

DEFAULT_K = 15
BREAKDOWN = ("age_band", "gender")
TOTAL = "all"
COUNT = "count"
#: The unit of privacy of the noise: one subscriber on one day.
UNIT = "subscriber-day"


@dataclass(frozen=True)
class Finding:
    """One violation of the disclosure rule.

    Attributes
    ----------
    rule : str
        ``"small_count"`` (rule 1) or ``"differencing"`` (rule 2).
    group : dict
        The key columns' values of the group.
    detail : str
        What is disclosed, e.g. ``"count 3 <= k=15 at age_band='25-34', gender='male'"``.
    """

    rule: str
    group: dict = field(hash=False)
    detail: str


# --- input checks ---------------------------------------------------------------------------------------
def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise SynthmobError(f"k: got {k!r}; give a whole number >= 0 (0 switches suppression off)")
    return int(k)


def _check_positive(name: str, value: Any, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise SynthmobError(f"{name}: got {value!r}; {hint}")
    return float(value)


def _check_table(table: Any, keys: Sequence[str]) -> list[str]:
    if not isinstance(table, pa.Table):
        raise SynthmobError(f"table: got {type(table).__name__}; give a pyarrow.Table")
    if isinstance(keys, str):
        raise SynthmobError(f"keys: got {keys!r}; give a sequence of column names, e.g. [{keys!r}]")
    keys = list(keys)
    clash = [c for c in keys if c in (*BREAKDOWN, COUNT)]
    if clash or len(set(keys)) != len(keys):
        raise SynthmobError(f"keys: got {keys!r}; give distinct columns other than {', '.join((*BREAKDOWN, COUNT))}")
    missing = [c for c in (*keys, *BREAKDOWN, COUNT) if c not in table.column_names]
    if missing:
        raise SynthmobError(f"table: no column {', '.join(map(repr, missing))}; it has {table.column_names}, "
                            f"needs the keys, {', '.join(BREAKDOWN)} and {COUNT}")
    if not pa.types.is_integer(table.schema.field(COUNT).type):
        raise SynthmobError(f"table: column {COUNT!r} is {table.schema.field(COUNT).type}; it must hold integers")
    return keys


# --- grouping -------------------------------------------------------------------------------------------
@dataclass
class _Layout:
    table: pa.Table  # sorted: keys, total first, then cells by (age_band, gender)
    start: np.ndarray  # first row of each group
    group: np.ndarray  # group index per row
    total: np.ndarray  # bool per row
    count: np.ndarray  # int64 per row, 0 where null
    null: np.ndarray  # bool per row


def _layout(table: pa.Table, keys: list[str]) -> _Layout:
    """Sort the table canonically, number its groups and check each has at most one row per breakdown."""
    age, gender = (table[c].cast(pa.string()) for c in BREAKDOWN)
    is_total = pc.and_(pc.equal(age, TOTAL), pc.equal(gender, TOTAL)).fill_null(False)
    margin = pc.xor(pc.equal(age, TOTAL), pc.equal(gender, TOTAL)).fill_null(False)
    if pc.any(margin).as_py() or age.null_count or gender.null_count:
        raise SynthmobError(f"table: a row has {BREAKDOWN[0]} or {BREAKDOWN[1]} null or only one of them "
                            f"{TOTAL!r}; rows are totals ({TOTAL!r}, {TOTAL!r}) or full age band × gender cells")
    plain = {c: _decoded(table[c]) for c in keys}  # dictionary columns cannot be sorted: their values can
    work = pa.table({**plain, "_cell": pc.invert(is_total), "age_band": age, "gender": gender})
    order = pc.sort_indices(work, [(c, "ascending") for c in (*keys, "_cell", *BREAKDOWN)])
    work = work.take(order)
    n = work.num_rows
    boundary = np.r_[np.ones(min(n, 1), bool), np.zeros(max(n - 1, 0), bool)]
    for name in keys:
        codes = _codes(work[name])
        boundary[1:] |= codes[1:] != codes[:-1]
    same = np.zeros(n, dtype=bool)  # a row repeating the previous row's keys and breakdown
    same[1:] = ~boundary[1:]
    for name in BREAKDOWN:
        codes = _codes(work[name])
        same[1:] &= codes[1:] == codes[:-1]
    if same.any():
        raise SynthmobError(f"table: row {_describe(work, keys, int(np.flatnonzero(same)[0]))} appears twice; "
                            f"give one row per group and {BREAKDOWN[0]} × {BREAKDOWN[1]}")
    counts = table[COUNT].cast(pa.int64()).take(order)
    null = counts.is_null().to_numpy(zero_copy_only=False)
    return _Layout(
        table=table.select(keys).take(order).append_column("age_band", work["age_band"]).append_column(
            "gender", work["gender"]).append_column(COUNT, counts),
        start=np.flatnonzero(boundary),
        group=np.cumsum(boundary) - 1,
        total=~work["_cell"].to_numpy(zero_copy_only=False),
        count=counts.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64),
        null=null,
    )


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _codes(column: pa.ChunkedArray) -> np.ndarray:
    """Integer codes of a sorted column's values (equal values, nulls included, get equal codes)."""
    encoded = pc.dictionary_encode(column.combine_chunks() if column.num_chunks != 1 else column.chunk(0))
    return encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)


def _describe(table: pa.Table, names: Sequence[str], row: int) -> str:
    return ", ".join(f"{c}={table[c][row].as_py()!r}" for c in names)


def _group(table: pa.Table, keys: list[str], row: int) -> dict:
    return {c: table[c][row].as_py() for c in keys}


# --- suppression ----------------------------------------------------------------------------------------
def _suppress(lay: _Layout, counts: np.ndarray, k: int) -> tuple[np.ndarray, dict[str, int]]:
    """Rows to suppress under rules 1 and 2, and how many of each kind (primary, complementary, totals)."""
    n_groups = len(lay.start)
    primary = counts <= k
    cell = ~lay.total
    total_row = np.full(n_groups, -1, dtype=np.int64)
    total_row[lay.group[lay.total]] = np.flatnonzero(lay.total)
    has_total = total_row >= 0
    released_total = np.zeros(n_groups, dtype=bool)
    released_total[has_total] = ~primary[total_row[has_total]]
    group_total = np.zeros(n_groups, dtype=np.int64)
    group_total[has_total] = counts[total_row[has_total]]

    n_supp = np.bincount(lay.group[cell & primary], minlength=n_groups)
    released_sum = _group_sum(np.where(cell & ~primary, counts, 0), lay.start)
    residual = group_total - released_sum
    need = released_total & (n_supp > 0) & ~((n_supp >= 2) & (residual > k))

    suppressed = primary.copy()
    complementary = extra_totals = 0
    if need.any():
        # Candidates: released cells of groups that need more, smallest first (ties: table order).
        rows = np.flatnonzero(cell & ~primary & need[lay.group])
        order = np.lexsort((rows, counts[rows], lay.group[rows]))
        rows = rows[order]
        g = lay.group[rows]
        first = np.r_[True, g[1:] != g[:-1]] if len(rows) else np.zeros(0, bool)
        starts = np.flatnonzero(first)
        rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)])) + 1
        cum = np.cumsum(counts[rows]) - np.repeat(np.cumsum(counts[rows])[starts] - counts[rows][starts],
                                                  np.diff(np.r_[starts, len(rows)]))
        ok = (n_supp[g] + rank >= 2) & (residual[g] + cum > k)  # monotone in rank: counts are >= 0
        not_ok = np.bincount(g[~ok], minlength=n_groups)
        candidates = np.bincount(g, minlength=n_groups)
        take = rank <= not_ok[g] + 1
        impossible = need & (not_ok >= candidates)  # even suppressing every cell is not enough
        take &= ~impossible[g]
        suppressed[rows[take]] = True
        complementary = int(take.sum())
        suppressed[total_row[impossible]] = True
        extra_totals = int(impossible.sum())
    return suppressed, {"primary": int(primary.sum()), "complementary": complementary, "totals": extra_totals}


def _group_sum(values: np.ndarray, start: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, start) if len(values) else np.zeros(0, dtype=np.int64)


# --- noise ----------------------------------------------------------------------------------------------
def _complete(table: pa.Table, keys: list[str]) -> pa.Table:
    """Add every missing age band × gender cell of every group at count 0 (values seen anywhere)."""
    age, gender = (table[c].cast(pa.string()) for c in BREAKDOWN)
    cells = pc.invert(pc.and_(pc.equal(age, TOTAL), pc.equal(gender, TOTAL)))
    ages = np.array(pc.unique(age.filter(cells)).to_pylist(), dtype=object)
    genders = np.array(pc.unique(gender.filter(cells)).to_pylist(), dtype=object)
    if len(ages) == 0 or len(genders) == 0:
        return table.select([*keys, *BREAKDOWN, COUNT])
    lay = _layout(table, keys)
    n_groups, n_combo = len(lay.start), len(ages) * len(genders)
    present = ~lay.total
    a, b = (pc.index_in(lay.table[c], pa.array(v.tolist(), pa.string())).fill_null(-1).to_numpy(
        zero_copy_only=False).astype(np.int64) for c, v in zip(BREAKDOWN, (ages, genders)))
    have = lay.group[present].astype(np.int64) * n_combo + a[present] * len(genders) + b[present]
    want = np.arange(n_groups * n_combo, dtype=np.int64)
    missing = want[~np.isin(want, have, assume_unique=True)]
    if len(missing) == 0:
        return lay.table
    group, combo = np.divmod(missing, n_combo)
    extra = lay.table.select(keys).take(lay.start[group])
    extra = extra.append_column("age_band", pa.array(ages[combo // len(genders)].tolist(), pa.string()))
    extra = extra.append_column("gender", pa.array(genders[combo % len(genders)].tolist(), pa.string()))
    extra = extra.append_column(COUNT, pa.array(np.zeros(len(missing), np.int64)))
    return pa.concat_tables([lay.table, extra.cast(lay.table.schema)])


def _noise(counts: np.ndarray, *, epsilon: float, sensitivity: float) -> tuple[np.ndarray, dict]:
    """Add discrete Laplace noise of scale ``sensitivity / epsilon`` with OpenDP, then clamp at 0."""
    from importlib.metadata import version

    try:
        import opendp.prelude as dp
    except ImportError:
        raise SynthmobError("epsilon: differential privacy needs OpenDP, which is not installed: "
                            "pip install 'synthmob[dp]'") from None
    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    scale = sensitivity / epsilon
    measurement = dp.m.make_laplace(*space, scale=scale)
    while measurement.map(int(sensitivity)) > epsilon:  # rounding may overspend by an ulp: widen as little
        scale = float(np.nextafter(scale, np.inf))
        measurement = dp.m.make_laplace(*space, scale=scale)
    noisy = np.asarray(measurement(counts.tolist()), dtype=np.int64) if len(counts) else counts.copy()
    info = {"mechanism": "discrete Laplace (OpenDP make_laplace, L1 sensitivity, pure epsilon-DP)",
            "library": f"opendp {version('opendp')}", "epsilon": epsilon, "unit": UNIT,
            "sensitivity": sensitivity, "scale": scale}
    return np.maximum(noisy, 0), info


# --- the public functions -------------------------------------------------------------------------------
def protect(table: pa.Table, *, keys: Sequence[str], k: int = DEFAULT_K, epsilon: float | None = None,
            sensitivity: float | None = None) -> tuple[pa.Table, dict]:
    """Suppress (and optionally noise) a table of exact counts so that it obeys the disclosure rule.

    Primary suppression nulls every count ``<= k`` (cells and totals). Complementary suppression then
    looks at each group with a released total and suppressed cells: while fewer than two cells are
    suppressed or their sum (total minus released cells) is ``<= k``, it suppresses the smallest released
    cell (ties in table order); if even suppressing every cell is not enough, it suppresses the total
    instead and leaves the cells as they are. Only the groups that need it are processed, with numpy.

    With ``epsilon``, each group is first completed with its missing age band × gender cells at 0 (the
    values seen anywhere in the table), so that absent combinations are noised too; then every count gets
    discrete Laplace noise of scale ``sensitivity / epsilon`` from OpenDP's ``make_laplace`` over a vector
    of 64-bit integers with the L1 distance, negatives become 0, and the same suppression follows. The
    guarantee is ``epsilon``-DP for one subscriber-day, given that one subscriber-day changes the table's
    counts by at most ``sensitivity`` in total (L1). The set of groups (the key values present) is released
    as is, not protected by the noise. OpenDP draws from a cryptographically secure generator that cannot be
    seeded: noisy output is not reproducible, by design, since anyone knowing the seed could subtract the
    noise. This is the only randomness in synthmob not drawn from a seeded numpy Generator. OpenDP's exact
    sampler costs some 20-40 µs per count (a million counts: about half a minute).

    Parameters
    ----------
    table : pyarrow.Table
        The key columns, ``age_band``, ``gender`` and ``count`` (exact, non-negative integers), one row per
        group and breakdown; totals are the rows with both breakdowns ``"all"``.
    keys : sequence of str
        The columns that define a group.
    k : int, default 15
        Counts ``<= k`` are not released; 0 switches suppression off.
    epsilon : float, optional
        Privacy budget of the noise; ``None`` (default) releases exact counts.
    sensitivity : float, optional
        Most by which one subscriber-day changes all counts together (L1), a whole number; needed with
        ``epsilon``.

    Returns
    -------
    pyarrow.Table
        The key columns, ``age_band``, ``gender`` and a nullable int64 ``count`` (null = suppressed), sorted
        by the keys, each group's total first, then its cells by age band and gender.
    dict
        ``{"suppressed": {"primary": n, "complementary": n, "totals": n}, "noise": None or {...}}``:
        counts (``<= k``), cells suppressed to protect them, totals suppressed because no choice of cells
        protected them; the noise's mechanism, library version, epsilon, unit, sensitivity and scale.

    Raises
    ------
    SynthmobError
        A missing column, a bad ``k``, ``epsilon`` or ``sensitivity``, negative or null counts, duplicated
        rows.

    Examples
    --------
    A group with a single cell cannot hide it behind others: its small total goes too.

    >>> import pyarrow as pa
    >>> t = pa.table({"zone_id": [7, 7], "age_band": ["all", "65+"], "gender": ["all", "male"],
    ...               "count": [4, 4]})
    >>> protect(t, keys=["zone_id"])[0]["count"].to_pylist()
    [None, None]
    """
    keys = _check_table(table, keys)
    k = _check_k(k)
    if epsilon is not None:
        epsilon = _check_positive("epsilon", epsilon, "give a privacy budget > 0, e.g. 1.0, or None for exact counts")
        if sensitivity is None:
            raise SynthmobError("sensitivity: got None; with epsilon give the most one subscriber-day changes the "
                                "counts in total (L1), a whole number >= 1")
    if sensitivity is not None:
        sensitivity = _check_positive("sensitivity", sensitivity, "give a whole number >= 1")
        if sensitivity != int(sensitivity):
            raise SynthmobError(f"sensitivity: got {sensitivity!r}; counts change by whole numbers, give one >= 1")
    if table[COUNT].null_count or (table.num_rows and pc.min(table[COUNT]).as_py() < 0):
        raise SynthmobError(f"table: column {COUNT!r} has null or negative values; give exact counts >= 0")

    info: dict[str, Any] = {"suppressed": {"primary": 0, "complementary": 0, "totals": 0}, "noise": None}
    work = table.select([*keys, *BREAKDOWN, COUNT])
    if epsilon is not None:
        work = _complete(work, keys)
    lay = _layout(work, keys)
    counts = lay.count
    if epsilon is not None:
        counts, info["noise"] = _noise(counts, epsilon=epsilon, sensitivity=sensitivity)
    suppressed = np.zeros(len(counts), dtype=bool)
    if k > 0:
        suppressed, info["suppressed"] = _suppress(lay, counts, k)
    released = pa.array(counts, pa.int64(), mask=suppressed)
    out = lay.table.set_column(lay.table.column_names.index(COUNT), COUNT, released)
    return out, info


def findings(table: pa.Table, *, keys: Sequence[str], k: int) -> list[Finding]:
    """Every violation of rules 1 and 2 in a released table (an empty list: the table passes).

    Works on any table with the key columns, ``age_band``, ``gender`` and a nullable integer ``count``.
    With ``k = 0`` the rules are off and nothing is found.

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"zone_id": [1, 1, 1], "age_band": ["all", "25-34", "35-44"],
    ...               "gender": ["all", "female", "female"], "count": [40, None, 20]})
    >>> [(f.rule, f.group) for f in findings(t, keys=["zone_id"], k=15)]
    [('differencing', {'zone_id': 1})]
    """
    keys = _check_table(table, keys)
    k = _check_k(k)
    if k == 0 or table.num_rows == 0:
        return []
    lay = _layout(table, keys)
    out: list[tuple[int, Finding]] = []  # (row, finding), to list them in table order
    for row in np.flatnonzero(~lay.null & (lay.count <= k)):
        out.append((int(row), Finding("small_count", _group(lay.table, keys, row),
                    f"count {int(lay.count[row])} <= k={k} at {_describe(lay.table, BREAKDOWN, row)}")))
    n_groups = len(lay.start)
    cell = ~lay.total
    total_row = np.full(n_groups, -1, dtype=np.int64)
    total_row[lay.group[lay.total]] = np.flatnonzero(lay.total)
    released_total = total_row >= 0
    released_total[released_total] = ~lay.null[total_row[released_total]]
    n_supp = np.bincount(lay.group[cell & lay.null], minlength=n_groups)
    residual = np.where(released_total, lay.count[np.maximum(total_row, 0)], 0) - _group_sum(
        np.where(cell & ~lay.null, lay.count, 0), lay.start)
    for g in np.flatnonzero(released_total & (n_supp > 0) & ((n_supp < 2) | (residual <= k))):
        lo, hi = lay.start[g], lay.start[g + 1] if g + 1 < n_groups else len(lay.count)
        if n_supp[g] == 1:
            row = lo + int(np.flatnonzero(lay.null[lo:hi] & cell[lo:hi])[0])
            detail = (f"the only suppressed cell ({_describe(lay.table, BREAKDOWN, row)}) is total minus "
                      f"released cells = {int(residual[g])}")
        else:
            detail = f"{int(n_supp[g])} suppressed cells sum to total minus released cells = {int(residual[g])} <= k={k}"
        out.append((int(lo), Finding("differencing", _group(lay.table, keys, lo), detail)))
    return [finding for _, finding in sorted(out, key=lambda item: item[0])]

