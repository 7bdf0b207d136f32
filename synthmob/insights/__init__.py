"""Smart-Steps-style insights: footfall, origin–destination flows, dwell times and catchments by zone.

Aggregates of the kind operators sell from their network data (Telefónica's Smart Steps; FlowKit's
``TotalLocationEvents``, ``Flows`` and ``MostFrequentLocation`` queries), computed by DuckDB straight from a run's
Parquet files, out of core (:mod:`synthmob.insights.measures`), in zones of three kinds
(:mod:`synthmob.insights.zones`), broken down by age band and gender, and protected by
:func:`synthmob.disclosure.protect` before anything is written.

:func:`insights` writes into ``RUN/insights`` (or ``out``), atomically: ``zones.parquet``, one
``<name>.parquet`` and ``<name>.json`` sidecar per insight (keys, k, method, contribution cap, sensitivity,
suppression and noise), and ``index.json`` last (``"insights"``: each name's sidecar; rows, source, zones, k,
epsilon and the privacy budget spent). It also records what it released (source, zones, k, epsilon) in the
run's ``manifest.json`` under ``"insights"``.

Differential privacy (``epsilon``): each insight gets ``epsilon`` of its own, so the total spent on one
subscriber-day is the sum over the four insights (sequential composition). Contributions are capped per
subscriber-day to bound the sensitivity (:data:`synthmob.insights.measures.CAPS`).

Examples
--------
>>> import pathlib, tempfile, synthmob
>>> run = synthmob.generate("tiny", out=pathlib.Path(tempfile.mkdtemp()) / "t")
>>> folder = insights(run, zones="area", k=0)
>>> sorted(p.name for p in folder.glob("*.parquet"))
['catchment.parquet', 'dwell.parquet', 'footfall.parquet', 'od.parquet', 'zones.parquet']
>>> synthmob.Run(run.path).manifest["insights"]["zones"]
'area'
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from synthmob import disclosure
from synthmob.errors import SynthmobError
from synthmob.insights import measures
from synthmob.insights.measures import (
    ACTIVITY_EVENTS,
    CAP_UNITS,
    CAPS,
    DWELL_BANDS,
    KEYS,
    MEASURES,
    MIN_STOP_S,
    SOURCES,
    TIME_BANDS,
    connect_run,
    inferred_trips,
)
from synthmob.insights.zones import assign_zones, parse_zones
from synthmob.output import staged_folder, write_json, write_table
from synthmob.run import Run
from synthmob.scenario import World as WorldConfig

__all__ = ["INSIGHTS", "INDEX", "inferred_trips", "insights"]

#: The insights, by name, with what one count is.
INSIGHTS = {
    "footfall": "distinct subscribers present in a zone during a UTC hour",
    "od": "trips from one zone to another, by local day and time band of departure",
    "dwell": "stops in a zone, by how long they lasted",
    "catchment": "distinct subscribers who stopped in a zone over the run, by the zone they live in",
}
_STOPS = (
    f"stops inferred from {', '.join(ACTIVITY_EVENTS)} records: consecutive records in one zone form a visit, a "
    f"visit lasting >= {MIN_STOP_S // 60} min (last - first record) is a stop, consecutive stops in one zone merge"
)
#: How each insight is computed, by source.
METHODS = {
    "footfall": {
        "records": "a subscriber is present in a zone during an hour when they have any record at one of its cells",
        "truth": "a subscriber is present when their true serving cell (at a stay or along a trip's path) is in "
        "the zone at some moment of the hour",
    },
    "od": {
        "records": f"{_STOPS}; a trip is a move between consecutive stops, departing at the origin stop's last record",
        "truth": "the true trips whose start and end cells are in different zones, at their departure",
    },
    "dwell": {"records": f"{_STOPS}; duration = last - first record", "truth": "stays; duration = end - start"},
    "catchment": {
        "records": f"visitors: subscribers with a stop in the zone ({_STOPS}); home: the zone with most records on "
        "weekday nights 22:00-07:00 local, ties to the smaller zone id; subscribers without a home are left out",
        "truth": "visitors: subscribers with a stay in the zone; home: the zone of their home cell",
    },
}
#: Written last into the insights folder; ``overwrite`` replaces only a folder that holds one.
INDEX = "index.json"


def insights(
    run: Run | str | Path,
    *,
    zones: str = "cell",
    k: int = disclosure.DEFAULT_K,
    source: str = "records",
    epsilon: float | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    memory_limit: str = "1GB",
    progress: Callable[[str], Any] | None = None,
) -> Path:
    """Compute, protect and write the four insights of ``run``; return the folder written.

    Parameters
    ----------
    run : Run or path
        A run folder made by :func:`synthmob.generate`.
    zones : str
        ``"cell"``, ``"area"`` or ``"grid:<metres>"`` (:mod:`synthmob.insights.zones`).
    k : int
        Counts ``<= k`` are suppressed, with complementary suppression against differencing (default 15);
        ``0`` releases every count (no suppression).
    source : str
        ``"records"`` (the operator's events) or ``"truth"`` (stays and trips).
    epsilon : float, optional
        Differential privacy budget per insight and subscriber-day; ``None`` releases exact counts.
    out : path, optional
        Folder to write (default ``RUN/insights``).
    overwrite : bool
        Replace ``out`` when it holds an earlier insights folder (:data:`INDEX`).
    memory_limit : str
        DuckDB's memory limit, e.g. ``"1GB"``; beyond it DuckDB spills to a temporary folder.
    progress : callable, optional
        Called with the name of each insight as its computation starts.

    Raises
    ------
    SynthmobError
        A bad argument or not a run folder (one line naming the argument, the value and what is valid).
    OutputError
        ``out`` cannot be used.
    """
    spec = parse_zones(zones)
    k = _check_k(k)
    if source not in SOURCES:
        raise SynthmobError(f"source: got {source!r}; valid sources are {', '.join(SOURCES)}")
    if epsilon is not None and (
        isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not math.isfinite(epsilon) or epsilon <= 0
    ):
        raise SynthmobError(f"epsilon: got {epsilon!r}; give a privacy budget > 0, e.g. 1.0, or None for exact counts")
    measures.check_memory_limit(memory_limit)
    if progress is not None and not callable(progress):
        raise SynthmobError(f"progress: got {progress!r}; give a function of one text argument, or None")
    run = run if isinstance(run, Run) else Run(run)
    world = WorldConfig.model_validate(run.manifest["scenario"]["world"])
    cell_zone, zone_table = assign_zones(run.table("cells"), spec, world=world)
    target = Path(out if out is not None else run.path / "insights").absolute()
    common = {"source": source, "zones": str(spec), "timezone": run.manifest["scenario"]["timezone"], "k": k}
    # The run by its folder name only: an absolute path could name a user in a published release.
    common |= {"epsilon": epsilon, "run": run.path.resolve().name, "synthmob": _version()}
    sidecars, rows = {}, {}
    with staged_folder(target, overwrite=overwrite, marker=INDEX) as folder:
        write_table(zone_table, folder / "zones.parquet")
        with connect_run(run, cell_zone, memory_limit=memory_limit) as inputs:
            for name, measure in MEASURES.items():
                if progress is not None:
                    progress(name)
                cap = CAPS[name] if epsilon is not None else None
                sensitivity = measures.sensitivity(name, cap)
                exact = measure(inputs, source=source, cap=cap)
                released, info = disclosure.protect(
                    exact, keys=KEYS[name], k=k, epsilon=epsilon, sensitivity=sensitivity
                )
                sidecar = _sidecar(name, released, common, cap=cap, sensitivity=sensitivity, info=info)
                write_table(released, folder / f"{name}.parquet", metadata={"synthmob": json.dumps(sidecar)})
                write_json(folder / f"{name}.json", sidecar)
                sidecars[name], rows[name] = f"{name}.json", released.num_rows
        zones_entry = {"spec": str(spec), "kind": spec.kind, "file": "zones.parquet", "count": zone_table.num_rows}
        budget = _budget(epsilon)
        index = {"insights": sidecars, "rows": rows, **common, "zones": zones_entry, "dp_budget": budget}
        write_json(folder / INDEX, index)
    entry = {"folder": str(target), "source": source, "zones": str(spec), "k": k}
    entry["epsilon"] = {name: epsilon for name in MEASURES}
    entry["epsilon_total"] = None if budget is None else budget["epsilon_total"]
    _record_in_manifest(run, entry)
    return target


def _sidecar(name: str, released: pa.Table, common: dict, *, cap, sensitivity, info: dict) -> dict:
    """What ``<name>.json`` says about one released table."""
    bands = {"od": {"time_bands": [b for b, _ in TIME_BANDS]}, "dwell": {"dwell_bands": [b for b, _ in DWELL_BANDS]}}
    return {
        "insight": name,
        "description": INSIGHTS[name],
        "file": f"{name}.parquet",
        "keys": list(KEYS[name]),
        "columns": released.column_names,
        **common,
        "method": METHODS[name][common["source"]],
        **bands.get(name, {}),
        "contribution_cap": None if cap is None else {"max": cap, "of": CAP_UNITS[name]},
        "sensitivity": sensitivity,
        **info,
        "rows": released.num_rows,
        "groups": _groups(released),
        "released_counts": released.num_rows - released["count"].null_count,
    }


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise SynthmobError(
            f"k: got {k!r}; give a whole number >= 1 (counts <= k are suppressed), or 0 for no suppression"
        )
    return int(k)


def _budget(epsilon: float | None) -> dict | None:
    if epsilon is None:
        return None
    return {
        "unit": disclosure.UNIT,
        "epsilon": {name: epsilon for name in MEASURES},
        "epsilon_total": epsilon * len(MEASURES),
        "composition": "sequential: the insights' epsilons add up",
    }


def _version() -> str:
    from synthmob import __version__

    return __version__


def _groups(table: pa.Table) -> int:
    totals = pc.and_(pc.equal(table["age_band"], disclosure.TOTAL), pc.equal(table["gender"], disclosure.TOTAL))
    return int(pc.sum(totals).as_py() or 0)


def _record_in_manifest(run: Run, entry: dict) -> None:
    """Add ``entry`` to the run's manifest as ``"insights"``: a temporary file beside it, renamed over it."""
    path = run.path / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["insights"] = entry
    handle, temporary = tempfile.mkstemp(prefix=".manifest.", suffix=".tmp", dir=run.path)
    try:
        os.close(handle)
        write_json(Path(temporary), manifest)
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    run.__dict__.pop("manifest", None)  # the cached manifest is stale now
