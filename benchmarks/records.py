"""What the operator's records of a run look like: per subscriber-day, by hour of the week, at which cell.

Usage::

    python benchmarks/records.py                 # generate `city` (10,000 subscribers x 7 days) and report
    python benchmarks/records.py runs/city       # report on an existing run

Prints voice+SMS and data records per active subscriber-day (median and 99th percentile; a subscriber's own
legs: outgoing calls and SMS, and data sessions), records by local hour of the week, and the share of
records at a neighbour of the subscriber's true serving cell.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import synthmob
from synthmob.calendar import Calendar
from synthmob.events import positions


def report(run: synthmob.Run) -> None:
    scenario = synthmob.load_scenario(run.manifest["scenario"])
    tz = scenario.timezone
    events = run.dataset("events")
    con = duckdb.connect()
    con.register("events", events)
    print(f"run {run.path}: {scenario.subscribers:,} subscribers x {scenario.days} days, {events.count_rows():,} records")

    per_day = con.execute(
        f"""
        WITH own AS (
            SELECT subscriber_id, CAST(timezone('{tz}', "timestamp") AS DATE) AS day,
                   count(*) FILTER (WHERE event_type IN ('voice', 'sms') AND direction = 'out') AS talk,
                   count(*) FILTER (WHERE event_type = 'data') AS data
            FROM events GROUP BY ALL)
        SELECT 'voice+SMS' AS kind, median(talk), quantile_cont(talk, 0.99), avg(talk) FROM own WHERE talk > 0
        UNION ALL
        SELECT 'data', median(data), quantile_cont(data, 0.99), avg(data) FROM own WHERE data > 0
        """
    ).fetchall()
    print("\nrecords per active subscriber-day (own legs)")
    print(f"  {'kind':<10} {'median':>7} {'p99':>7} {'mean':>7}")
    for kind, median, p99, mean in per_day:
        print(f"  {kind:<10} {median:>7.1f} {p99:>7.1f} {mean:>7.1f}")

    by_hour = con.execute(
        f"""
        SELECT isodow(timezone('{tz}', "timestamp")) AS dow, hour(timezone('{tz}', "timestamp")) AS h, count(*)
        FROM events WHERE event_type IN ('voice', 'sms', 'data') GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    grid = np.zeros((7, 24))
    for dow, hour, count in by_hour:
        grid[dow - 1, hour] += count
    days_seen = np.bincount(Calendar.create(scenario.start, scenario.days, tz).weekdays, minlength=7)
    grid /= np.maximum(days_seen, 1)[:, None]
    print("\ncalls, SMS and data sessions by local hour (mean per day; rows Monday..Sunday)")
    print("      " + "".join(f"{h:>6}" for h in range(0, 24, 2)))
    for d, name in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]):
        print(f"  {name} " + "".join(f"{grid[d, h] + grid[d, h + 1]:>6.0f}" for h in range(0, 24, 2)))

    calendar = Calendar.create(scenario.start, scenario.days, tz)
    where = positions(run.table("stays"), run.table("trips"), 0, calendar.epoch_s)
    table = events.to_table(columns=["subscriber_id", "timestamp", "cell_id"])
    t = pc.cast(table["timestamp"], pa.int64()).to_numpy() - calendar.epoch_s * 1000
    true_cell = where.cell_at(table["subscriber_id"].to_numpy(), t)
    away = (table["cell_id"].to_numpy() != true_cell).mean()
    print(f"\nrecords at a neighbour of the true serving cell: {away:.2%} "
          f"(configured: {scenario.events.neighbour_probability:.2%})")


def main() -> None:
    if len(sys.argv) > 1:
        report(synthmob.Run(sys.argv[1]))
        return
    with tempfile.TemporaryDirectory() as folder:
        report(synthmob.generate("city", out=Path(folder) / "city", workers=2))


if __name__ == "__main__":
    main()
