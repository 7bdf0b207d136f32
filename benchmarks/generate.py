"""Time a scenario end to end: wall time per stage, subscriber-days and records per second, the share of
wall time spent on the operator's records, and peak memory.

Stages: world (settlements, network, and the route tables: with several workers they are computed on other
cores while the people are built, and only the wait for them counts here); people (population, social
network, and gathering the identities); shards (SimPy simulation, plus each shard's originating legs and
identities); records (routing the callee legs, and each shard's handovers, location updates and sorting).
The events share counts the originating legs' part of the shards stage, measured inside the shards.

Usage::

    python benchmarks/generate.py                      # region, all cores
    python benchmarks/generate.py city --workers 1 2   # city with 1 and then 2 workers, side by side
    python benchmarks/generate.py region --subscribers 10000 --days 7
    python benchmarks/generate.py region --workers 1 2 --dask   # and a Dask LocalCluster of 2 workers
    python benchmarks/generate.py region --workers 1 2 --dask --rounds 3   # each configuration 3 times

With ``--rounds N`` the configurations run in turn, N times over (1, 2, Dask, 1, 2, Dask, ...), so that a
slow spell of the machine falls on all of them; the ratios are given for each round and as the median
over rounds, with their range.

Each configuration runs in a fresh child process so that peak memory is its own: ``main MiB`` is the
peak resident memory of the generating process, ``total MiB`` the peak of the sum over it and its worker
processes (sampled from /proc every 0.25 s), ``PSS MiB`` the peak of their summed proportional set size,
which counts pages shared between them once. Timings are wall-clock
on a shared machine: compare ratios from one invocation, not absolute figures across days. With more
than one worker count, the last lines also give the machine's own ceiling: how much faster that many
processes run a fixed pure-Python loop than one (2 vCPUs need not give 2×).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def measure(config: str, workers: int, overrides: dict, scheduler: str | None = None) -> dict:
    """Generate once in this process and report timings (called in a child process)."""
    import synthmob

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        run = synthmob.generate(config, out=Path(folder) / "run", workers=workers, scheduler=scheduler, **overrides)
        wall = time.perf_counter() - started
        scenario = run.manifest["scenario"]
        run_manifest = run.manifest
        size = sum(f.stat().st_size for f in Path(run.path).rglob("*") if f.is_file())
        rows = {name: info["rows"] for name, info in run.manifest["tables"].items()}
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    subscriber_days = scenario["subscribers"] * scenario["days"]
    seconds = run_manifest["run"]["seconds"]
    wall_stage, summed = seconds["wall"], seconds["summed over shards"]
    in_shards = summed.get("events", 0.0) / max(sum(summed.values()), 1e-9)  # originating legs' share
    events_s = wall_stage.get("shards", 0.0) * in_shards + wall_stage.get("calls", 0.0) + wall_stage.get("events", 0.0)
    return {
        "scenario": scenario["name"],
        "subscribers": scenario["subscribers"],
        "days": scenario["days"],
        "workers": workers,
        "executor": "dask" if scheduler else "pool" if workers > 1 else "serial",
        "wall_s": wall,
        "world_s": wall_stage.get("world", 0.0) + wall_stage.get("routes", 0.0),  # the layout, and the wait for routes
        "people_s": sum(wall_stage.get(k, 0.0) for k in ("population", "identities", "contacts", "subscribers")),
        "shards_s": wall_stage.get("shards", 0.0),
        "records_s": wall_stage.get("calls", 0.0) + wall_stage.get("events", 0.0),
        "subscriber_days_per_s": subscriber_days / wall,
        "records_per_s": (rows["stays"] + rows["trips"] + rows.get("events", 0)) / wall,
        "events": rows.get("events", 0),
        "events_per_s": rows.get("events", 0) / wall,
        "events_share": events_s / wall,
        "stage_s": seconds,
        "rows": rows,
        "output_mib": size / 2**20,
        "peak_main_mib": self_kib / 1024,
    }


def tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields.get("PPid", "0").strip())
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += [child for child, parent in parents.items() if parent == pid]
    return total


def tree_pss_kib(root: int) -> int:
    """Proportional set size of a process and its descendants: shared pages (the forkserver's copy-on-write
    heap, memory-mapped route tables) count once in all, where summed RSS counts them in every process."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            ppid = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "0")
            parents[int(entry.name)] = int(ppid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            total += int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")))
        except (OSError, StopIteration):
            pass
        stack += [child for child, parent in parents.items() if parent == pid]
    return total


def run_child(command: list[str], *, cwd: Path | None = None, what: str = "benchmark child",
              pss: dict | None = None) -> tuple[str, int]:
    """Run ``command``; return its stdout and the peak summed RSS of its process tree (KiB); with ``pss``
    (a dict), also sample the tree's proportional set size and store its peak as ``pss["peak_kib"]``."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=cwd)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss_kib(process.pid))
            if pss is not None:
                pss["peak_kib"] = max(pss.get("peak_kib", 0), tree_pss_kib(process.pid))
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{what} failed with status {process.returncode}: {' '.join(command)}")
    return out, peak


def _spin(_: int) -> float:
    """Seconds for a fixed pure-Python loop (what a SimPy shard mostly is)."""
    start = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i * i
    return time.perf_counter() - start


def ceiling(workers: int, rounds: int = 5) -> float:
    """How much faster ``workers`` processes run the same pure-Python loop than one, on this machine.

    The most a pool of ``workers`` can gain on CPU-bound Python here: vCPUs that share a physical core or
    a host's memory bandwidth give less than ``workers``×. One process and then ``workers`` at once,
    alternately, ``rounds`` times; the ratio of the medians (single measurements vary by ±30 % here).
    """
    import multiprocessing

    ones, manys = [], []
    with multiprocessing.get_context("forkserver").Pool(workers) as pool:
        pool.map(_spin, range(workers))  # start the workers before timing
        for _ in range(rounds):
            ones.append(_spin(0))
            start = time.perf_counter()
            pool.map(_spin, range(workers))
            manys.append(time.perf_counter() - start)
    return workers * statistics.median(ones) / statistics.median(manys)


def ratios(runs: list[tuple[int, str | None]]) -> list[tuple[str, tuple, tuple]]:
    """The ratios of wall times to report: each configuration's speed-up over the first, and Dask's time over
    the process pool's at the same worker count. Each is (label, numerator run, denominator run).

    Examples
    --------
    >>> [label for label, _, _ in ratios([(1, None), (2, None), (2, "local")])]
    ['speed-up of 2 workers (pool) over 1', 'speed-up of 2 workers (dask) over 1', 'Dask LocalCluster over the process pool, 2 workers']
    """
    (first, first_scheduler), out = runs[0], []
    for workers, scheduler in runs[1:]:
        executor = "dask" if scheduler else "pool" if workers > 1 else "serial"
        out.append((f"speed-up of {workers} workers ({executor}) over {first}", (first, first_scheduler), (workers, scheduler)))
    for workers, scheduler in runs:
        if scheduler and (workers, None) in runs:
            out.append((f"Dask LocalCluster over the process pool, {workers} workers", (workers, scheduler), (workers, None)))
    return out


def wall(results: list[dict], round_: int, workers: int, scheduler: str | None) -> float:
    """Wall seconds of one configuration in one round."""
    executor = "dask" if scheduler else "pool" if workers > 1 else "serial"
    return next(r["wall_s"] for r in results if r["round"] == round_ and r["workers"] == workers and r["executor"] == executor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default="region")
    parser.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 1])
    parser.add_argument("--subscribers", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--dask", action="store_true", help="also run on a Dask LocalCluster of the most workers")
    parser.add_argument("--rounds", type=int, default=1, help="run the configurations in turn, this many times over")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--scheduler", help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = {k: v for k, v in {"subscribers": args.subscribers, "days": args.days}.items() if v is not None}

    if args.child:
        print(json.dumps(measure(args.config, int(args.child), overrides, args.scheduler)))
        return

    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, not {args.rounds}")
    results = []
    runs = [(w, None) for w in args.workers] + ([(max(args.workers), "local")] if args.dask else [])
    for round_ in range(1, args.rounds + 1):
        for workers, scheduler in runs:
            command = [sys.executable, __file__, args.config, "--child", str(workers)]
            command += ["--scheduler", scheduler] if scheduler else []
            for key, value in overrides.items():
                command += [f"--{key}", str(value)]
            pss: dict = {}
            out, peak_kib = run_child(command, pss=pss)
            result = json.loads(out.strip().splitlines()[-1])
            result["round"] = round_
            result["peak_total_mib"] = peak_kib / 1024
            result["peak_pss_mib"] = pss.get("peak_kib", 0) / 1024
            results.append(result)

    print(f"{'scenario':<8} {'subs':>7} {'days':>4} {'workers':>7} {'executor':>8} {'round':>5} {'wall s':>7} {'world s':>7} "
          f"{'people s':>8} {'shards s':>8} {'records s':>9} {'sub-days/s':>10} {'rows/s':>10} {'out MiB':>7} {'main MiB':>8} "
          f"{'total MiB':>9} {'PSS MiB':>8}")
    for r in results:
        print(f"{r['scenario']:<8} {r['subscribers']:>7,} {r['days']:>4} {r['workers']:>7} {r['executor']:>8} {r['round']:>5} "
              f"{r['wall_s']:>7.1f} {r['world_s']:>7.1f} {r['people_s']:>8.1f} {r['shards_s']:>8.1f} {r['records_s']:>9.1f} "
              f"{r['subscriber_days_per_s']:>10,.0f} {r['records_per_s']:>10,.0f} {r['output_mib']:>7.1f} "
              f"{r['peak_main_mib']:>8,.0f} {r['peak_total_mib']:>9,.0f} {r['peak_pss_mib']:>8,.0f}")
    print()
    print(f"{'workers':>7} {'executor':>8} {'round':>5} {'events':>12} {'events/s (of wall)':>18} {'share of wall on events':>24}")
    for r in results:
        print(f"{r['workers']:>7} {r['executor']:>8} {r['round']:>5} {r['events']:>12,} {r['events_per_s']:>18,.0f} "
              f"{r['events_share']:>24.0%}")
    most = max(args.workers)
    if len(runs) > 1 and most > runs[0][0]:
        print(f"this machine: {most} processes of a pure-Python loop run {ceiling(most):.2f}x as fast as one "
              f"(the ceiling for {most} workers)")
    for label, numerator, denominator in ratios(runs):
        per_round = [wall(results, k, *numerator) / wall(results, k, *denominator) for k in range(1, args.rounds + 1)]
        line = f"{label}: " + ", ".join(f"{x:.2f}x" for x in per_round)
        if args.rounds > 1:
            line += f" (median {statistics.median(per_round):.2f}x, range {min(per_round):.2f}-{max(per_round):.2f}x)"
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
