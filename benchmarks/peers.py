"""Measure synthmob against scikit-mobility's DensityEPR in one invocation, on the same agents, days and tiles.

Both tools run once, each in a fresh child process, one after the other:

* synthmob: ``synthmob.generate("city", subscribers=N, days=D, workers=W, out=tmp)``, timed end to end with
  every table written (stays, trips, the operator's records and the rest); rows and cells come from the
  run's manifest.
* DensityEPR (scikit-mobility 1.3.1, in its own virtual environment, via ``benchmarks/peer_skmob.py``): N
  agents over the same D days from the same start date, on a tessellation with as many tiles as synthmob
  has cells, namely synthmob's cell coverage polygons (``cells.geojson``) with relevance = the cell's
  residents. Only ``generate()`` is timed; its rows are visits.

``peak MiB`` is the peak resident memory of each side's process tree (synthmob's worker processes
included), sampled from /proc every 0.25 s, and never less than the child's own ``getrusage`` peak. The
ratio compares agent-days per second measured in the same invocation; the machine may be shared, so
compare ratios rather than absolute figures across runs.

If the peer's virtual environment is missing, it is created first (``python3 -m venv`` and ``pip install
-r scikit-mobility-1.3.1-requirements.txt``); this takes several minutes because python-igraph builds from
source.

Usage::

    .venv/bin/python benchmarks/peers.py                                   # 1,000 agents x 7 days, 2 workers
    .venv/bin/python benchmarks/peers.py --subscribers 100 --days 1 --workers 1
    .venv/bin/python benchmarks/peers.py --peer-venv /tmp/skmob --peer-requirements reqs.txt
    .venv/bin/python benchmarks/peers.py --tiles squares                   # square tiles for the peer
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generate import run_child  # benchmarks/generate.py, beside this script

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REQUIREMENTS = "scikit-mobility-1.3.1-requirements.txt"


# ----------------------------------------------------------------------------------------------- children


def synthmob_child(subscribers: int, days: int, workers: int, folder: Path) -> dict:
    """Generate ``city`` into ``folder/run``, write the peer's tessellation beside it, return the figures."""
    import pyarrow.parquet as pq

    import synthmob

    started = time.perf_counter()
    run = synthmob.generate("city", subscribers=subscribers, days=days, workers=workers, out=folder / "run")
    wall = time.perf_counter() - started
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    manifest = run.manifest
    scenario = manifest["scenario"]
    rows = {name: info["rows"] for name, info in manifest["tables"].items()}

    # the peer's tiles: each cell's coverage polygon, relevance = residents covered
    residents = dict(zip(*pq.read_table(folder / "run" / "cells.parquet", columns=["cell_id", "residents"])
                         .to_pydict().values()))
    cells = json.loads((folder / "run" / "cells.geojson").read_text())
    features = [
        {"type": "Feature", "geometry": f["geometry"],
         "properties": {"tile_ID": str(f["properties"]["cell_id"]),
                        "relevance": float(residents[f["properties"]["cell_id"]])}}
        for f in cells["features"] if f["properties"].get("kind") == "cell"
    ]
    (folder / "tessellation.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))

    return {
        "tool": f"synthmob {manifest['versions']['synthmob']}",
        "agents": scenario["subscribers"],
        "days": scenario["days"],
        "start": scenario["start"],
        "workers": workers,
        "shards": math.ceil(scenario["subscribers"] / scenario["shard_size"]),
        "tiles": manifest["world"]["cells"],
        "wall_s": wall,
        "events": rows.get("events", 0),
        "stays": rows["stays"],
        "trips": rows["trips"],
        "peak_self_mib": peak_self,
    }


# ----------------------------------------------------------------------------------------------- parent


def measure(command: list[str], what: str) -> dict:
    """Run ``command`` (which prints one JSON line last) and add the peak RSS of its process tree."""
    out, peak = run_child(command, cwd=REPO, what=what)
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mib"] = max(peak / 1024, result.pop("peak_self_mib"))
    return result


def requirements_file(given: Path | None) -> Path:
    """The peer's pins: ``--peer-requirements``, else ``shared/peers/`` beside the repository."""
    candidates = [given] if given else [REPO.parent / "shared" / "peers" / REQUIREMENTS,
                                        Path("/work/shared/peers") / REQUIREMENTS]
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise SystemExit(f"cannot find the peer's requirements ({', '.join(map(str, candidates))}); "
                     "pass --peer-requirements")


def ensure_peer(venv: Path, requirements: Path | None) -> Path:
    """The peer's python, creating its virtual environment first if scikit-mobility is not installed there."""
    python = venv / "bin" / "python"
    probe = [python, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('skmob') is None)"]
    if python.exists() and subprocess.run(probe, check=False).returncode == 0:
        return python
    pins = requirements_file(requirements)
    print(f"creating the peer's environment {venv} from {pins}: this takes several minutes "
          "(python-igraph builds from source) ...", flush=True)
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", str(pins)], check=True)
    return python


def synthmob_python() -> str:
    """The repository's venv python if there is one (synthmob and its dependencies), else this one."""
    python = REPO / ".venv" / "bin" / "python"
    return str(python) if python.exists() else sys.executable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000, help="agents on both sides [1000]")
    parser.add_argument("--days", type=int, default=7, help="days on both sides [7]")
    parser.add_argument("--workers", type=int, default=2, help="synthmob worker processes [2]")
    parser.add_argument("--peer-venv", type=Path, default=REPO / ".peer-skmob",
                        help="scikit-mobility's virtual environment [.peer-skmob at the repository root]")
    parser.add_argument("--peer-requirements", type=Path,
                        help=f"pins used to create it [../shared/peers/{REQUIREMENTS}]")
    parser.add_argument("--tiles", choices=["cells", "squares"], default="cells",
                        help="the peer's tiles: synthmob's cell polygons, or square tiles over their bounding box")
    parser.add_argument("--seed", type=int, default=1, help="the peer's random_state [1]")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--synthmob-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.synthmob_child:
        print(json.dumps(synthmob_child(args.subscribers, args.days, args.workers, args.synthmob_child)))
        return

    peer_python = ensure_peer(args.peer_venv.resolve(), args.peer_requirements)

    with tempfile.TemporaryDirectory(prefix="synthmob-peers-") as tmp:
        folder = Path(tmp)
        print(f"synthmob: city, {args.subscribers:,} subscribers x {args.days} days, {args.workers} workers ...",
              flush=True)
        ours = measure([synthmob_python(), str(Path(__file__).resolve()), "--synthmob-child", str(folder),
                        "--subscribers", str(args.subscribers), "--days", str(args.days),
                        "--workers", str(args.workers)], "synthmob")
        print(f"DensityEPR: {args.subscribers:,} agents x {args.days} days on {ours['tiles']:,} tiles ...",
              flush=True)
        peer = measure([str(peer_python), str(HERE / "peer_skmob.py"), str(folder / "tessellation.geojson"),
                        "--agents", str(args.subscribers), "--start", ours["start"], "--days", str(args.days),
                        "--seed", str(args.seed), "--tiles", args.tiles], "DensityEPR")

    for r in (ours, peer):
        r["agent_days_per_s"] = r["agents"] * r["days"] / r["wall_s"]
    ours["rows"], peer["rows"] = ours["events"], peer["visits"]
    tiles = ("synthmob's cell coverage polygons, relevance = residents" if peer["tessellation"] == "cells"
             else "square tiles over the cells' bounding box, relevance = residents by area of overlap")

    print()
    print(f"{'tool':<36} {'agents':>7} {'days':>4} {'tiles':>6} {'wall s':>7} {'agent-days/s':>12} "
          f"{'rows':>11} {'rows/s':>9} {'stays+trips/s':>13} {'peak MiB':>8}")
    for r, rows_per_s in ((ours, f"{(ours['stays'] + ours['trips']) / ours['wall_s']:>13,.0f}"), (peer, f"{'-':>13}")):
        print(f"{r['tool']:<36} {r['agents']:>7,} {r['days']:>4} {r['tiles']:>6,} {r['wall_s']:>7.1f} "
              f"{r['agent_days_per_s']:>12,.0f} {r['rows']:>11,} {r['rows'] / r['wall_s']:>9,.0f} "
              f"{rows_per_s} {r['peak_mib']:>8,.0f}")
    print()
    print(f"synthmob rows = operator records (events), written with {ours['stays']:,} stays and "
          f"{ours['trips']:,} trips; {ours['workers']} worker(s) over {ours['shards']} shard(s); "
          f"wall = generate() with every table written")
    print(f"DensityEPR rows = visits; wall = generate() only; tiles: {tiles}")
    print(f"synthmob / DensityEPR agent-days per second: {ours['agent_days_per_s'] / peer['agent_days_per_s']:.1f}x")
    if os.path.exists("/proc/loadavg"):
        print(f"load average after the run: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    if args.json:
        args.json.write_text(json.dumps({"synthmob": ours, "DensityEPR": peer}, indent=2) + "\n")


if __name__ == "__main__":
    main()
