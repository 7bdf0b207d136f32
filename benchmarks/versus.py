"""Time this checkout against another revision of synthmob, side by side, in turns.

Usage::

    python benchmarks/versus.py f365c43                     # region 10,000 x 7, 2 workers, 3 pairs
    python benchmarks/versus.py f365c43 --subscribers 143000 --days 7 --pairs 3
    python benchmarks/versus.py f365c43 configs/city.yaml --workers 1   # a file: the same one for both sides

``REV`` (a commit, tag or branch of this repository) is checked out with ``git worktree add`` into
``.versus/<commit>/src`` and installed into its own virtual environment beside it, once: later invocations
reuse both. Each run is a fresh child process started in its own checkout with its own environment's
Python, so that its worker processes import that checkout's code, and generates the scenario into a
temporary folder with every table written. The two alternate (REV, this checkout, REV, ...), so that a
slow spell of the shared machine falls on both; the last lines give this checkout's wall time as a ratio
of REV's for each pair and as their median. Columns ``simulation``, ``records`` and ``writing`` are CPU
seconds summed over shards, from each run's manifest (``run.seconds``). A scenario given as a file is read
from this checkout by both sides; a preset name is each side's own preset. The revision's environment
installs the library versions this one has (``pip freeze``), and the script stops if the runs' manifests
name other versions of anything but synthmob. Remove ``.versus/`` (``git worktree prune`` afterwards) to
free the space.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What each child runs: the same on both sides, with only arguments every release accepts.
CHILD = """
import json, sys, tempfile, time
from pathlib import Path
from synthmob.pipeline import generate
config, subscribers, days, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if __name__ == "__main__":
    import synthmob
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        generate(config, out=Path(folder) / "run", workers=workers, subscribers=subscribers, days=days)
        wall = time.perf_counter() - started
        manifest = json.loads((Path(folder) / "run" / "manifest.json").read_text())
    print(json.dumps({"wall_s": wall, "seconds": manifest["run"]["seconds"], "code": synthmob.__file__,
                      "versions": manifest["versions"]}))
"""


class Refused(Exception):
    """A mistake in the command line or the revision: reported in one line, exit status 2."""


def commit_of(rev: str) -> str:
    """The full commit id of ``rev`` in this repository."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError as exc:
        raise Refused(f"cannot run git ({exc.strerror}); versus.py needs git and a clone of the repository") from None
    if done.returncode != 0:
        raise Refused(f"REV: got {rev!r}; give a commit, tag or branch of {ROOT}")
    return done.stdout.strip()


def prepare(commit: str) -> tuple[Path, Path]:
    """The checkout of ``commit`` and its environment's Python, made once in ``.versus/<commit>``.

    Each step leaves a marker when it is done, so what an interrupted invocation left is made again.
    """
    home = ROOT / ".versus" / commit
    source, python = home / "src", home / "venv" / "bin" / "python"
    checked_out, installed = home / "checked-out", home / "installed"
    try:
        if not (checked_out.exists() and source.is_dir()):
            print(f"checking out {commit[:12]} into {source} ...", file=sys.stderr)
            shutil.rmtree(source, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=True)
            subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(source), commit], cwd=ROOT, check=True)
            checked_out.touch()
        if not (installed.exists() and python.exists()):
            print(f"installing it into {home / 'venv'} (once) ...", file=sys.stderr)
            shutil.rmtree(home / "venv", ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
            # The libraries this environment has, so that only synthmob's code differs between the sides.
            pins = home / "constraints.txt"
            frozen = subprocess.run(
                [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], check=True, capture_output=True, text=True
            )
            # (synthmob itself is left out: this checkout may be installed other than editable.)
            pins.write_text("".join(
                line + "\n" for line in frozen.stdout.splitlines() if not line.lower().startswith("synthmob")
            ))
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(pins), "-e", str(source)], check=True)
            installed.touch()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"error: could not prepare {commit[:12]} in {home}: {exc}") from None
    return source, python


def run_once(python: Path, cwd: Path, args: argparse.Namespace) -> dict:
    """One generation in a fresh child process started in ``cwd``; its wall time and the manifest's seconds."""
    done = subprocess.run(
        [str(python), "-c", CHILD, args.config, str(args.subscribers), str(args.days), str(args.workers)],
        cwd=cwd, capture_output=True, text=True,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"error: a run in {cwd} failed (exit status {done.returncode})")
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise SystemExit(f"error: a run in {cwd} printed no result; its output ended: {done.stdout[-200:]!r}") from None
    code = Path(result["code"]).resolve()
    own = code.is_relative_to(cwd.resolve()) and (cwd != ROOT or not code.is_relative_to(ROOT / ".versus"))
    if not own:  # the checkout's own code must run
        raise SystemExit(f"error: a run in {cwd} imported synthmob from {result['code']}")
    return result


def check_versions(theirs: dict, this: dict) -> None:
    """Stop if the two sides ran with different versions of anything but synthmob itself."""
    differ = sorted(
        name for name in set(theirs["versions"]) | set(this["versions"])
        if name != "synthmob" and theirs["versions"].get(name) != this["versions"].get(name)
    )
    if differ:
        raise SystemExit("error: the sides ran different libraries: " + ", ".join(
            f"{name} {theirs['versions'].get(name)} against {this['versions'].get(name)}" for name in differ
        ))


def row(pair: int, side: str, result: dict) -> str:
    summed = result["seconds"].get("summed over shards", {})
    cells = [summed.get(name, 0.0) for name in ("simulation", "events", "writing")]
    return f"{pair:>4} {side:>12} {result['wall_s']:>8.1f} " + " ".join(f"{c:>12.1f}" for c in cells)


def ratios(results: list[tuple[dict, dict]]) -> list[float]:
    """This checkout's wall time over REV's, for each (REV, this) pair."""
    return [this["wall_s"] / theirs["wall_s"] for theirs, this in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", metavar="REV", help="the revision to compare with (commit, tag or branch)")
    parser.add_argument("config", nargs="?", default="region")
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side, alternating")
    args = parser.parse_args()
    try:
        for name in ("subscribers", "days", "workers", "pairs"):
            if getattr(args, name) < 1:
                raise Refused(f"--{name} must be at least 1, not {getattr(args, name)}")
        commit = commit_of(args.rev)
    except Refused as exc:
        parser.exit(2, f"error: {exc}\n")
    if Path(args.config).exists():  # a file: this checkout's, for both sides (each runs in its own folder)
        args.config = str(Path(args.config).resolve())
    source, python = prepare(commit)
    label = args.rev if len(args.rev) <= 12 else commit[:12]
    print(f"{args.config}, {args.subscribers:,} subscribers x {args.days} days, {args.workers} worker(s): "
          f"{label} ({commit[:12]}) against this checkout, {args.pairs} pair(s)", flush=True)
    print(f"{'pair':>4} {'code':>12} {'wall s':>8} {'simulation':>12} {'records':>12} {'writing':>12}", flush=True)
    results = []
    for pair in range(1, args.pairs + 1):
        theirs = run_once(python, source, args)
        print(row(pair, label[:12], theirs), flush=True)
        this = run_once(Path(sys.executable), ROOT, args)
        print(row(pair, "this", this), flush=True)
        check_versions(theirs, this)
        results.append((theirs, this))
    each = ratios(results)
    print(f"this checkout's wall time over {label}'s: " + ", ".join(f"{r:.3f}x" for r in each)
          + f" (median {statistics.median(each):.3f}x)")


if __name__ == "__main__":
    main()
