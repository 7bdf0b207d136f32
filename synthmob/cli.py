"""The ``synthmob`` command: a thin layer that translates arguments and calls the Python API.

A user mistake ends with one line on stderr (``error: <file>: <field>: got <value>; <what is valid>``) and
exit status 2, never a traceback. Progress goes to stderr; the summary to stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from synthmob.errors import ConfigError, SynthmobError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Synthetic mobile-network and mobility data about people who do not exist.",
)

_FLAGS = {"seed": "--seed", "subscribers": "--subscribers", "days": "--days", "start": "--start", "out": "--out"}
ConfigArg = Annotated[str, typer.Argument(help="a scenario YAML file, or a preset: tiny, city, region", show_default=False)]


def _fail(error: SynthmobError) -> "typer.Exit":
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {error}", markup=False)
    return typer.Exit(error.exit_code)


def _overrides(**values: str | None) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


#: Below this many subscriber-days, starting worker processes costs more than it saves.
_PARALLEL_FROM = 20_000


def _cores() -> int:
    """Cores this process may use (its CPU affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _workers(value: str | None, shards: int, subscriber_days: int) -> int:
    if value is None:
        if subscriber_days < _PARALLEL_FROM:
            return 1
        return max(1, min(_cores(), shards))
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ConfigError("command line", "--workers", value, "give a whole number of processes, 1 or more")
    return workers


@app.command()
def generate(
    config: ConfigArg = "region",
    out: Annotated[str | None, typer.Option("--out", "-o", metavar="DIR", help="output folder [default: runs/<name>]")] = None,
    seed: Annotated[str | None, typer.Option(metavar="N", help="root seed")] = None,
    subscribers: Annotated[str | None, typer.Option(metavar="N", help="number of subscribers")] = None,
    days: Annotated[str | None, typer.Option(metavar="N", help="number of local days")] = None,
    start: Annotated[str | None, typer.Option(metavar="YYYY-MM-DD", help="first local day")] = None,
    workers: Annotated[str | None, typer.Option(metavar="N", help="processes [default: all cores]")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace a non-empty output folder")] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(metavar="ADDRESS|local",
                     help="run the shards on a Dask cluster: a scheduler's tcp://HOST:PORT (its workers must see "
                          "--out at the same path), or local to start one of --workers processes; needs synthmob[dask]"),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="keep an interrupted run's finished shards, and continue from them when "
                                            "run again with --resume")
    ] = False,
) -> None:
    """Generate a scenario: the world, its subscribers and their stays and trips."""
    from synthmob.executors import check_scheduler
    from synthmob.pipeline import generate as run_generate
    from synthmob.pipeline import partial_folder
    from synthmob.scenario import load_scenario

    scenario = None

    def resumable() -> str:
        kept = partial_folder(scenario) if resume and scenario is not None else None
        if kept is None or not kept.is_dir():
            return ""
        return f"the finished shards are kept in {kept}: run the same command with --resume to continue"

    try:
        overrides = _overrides(seed=seed, subscribers=subscribers, days=days, start=start, out=out)
        scenario = load_scenario(config, overrides=overrides, override_names=_FLAGS)
        scheduler = check_scheduler(scheduler, source="command line", field="--scheduler")
        n_workers = _workers(workers, scenario.n_shards, scenario.subscribers * scenario.days)
        started = time.perf_counter()
        bar = _progress()
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if not tasks:
                bar.start()
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            run = run_generate(scenario, workers=n_workers, scheduler=scheduler, resume=resume, overwrite=overwrite,
                               progress=report)
        finally:
            if tasks:  # stopping a bar that never started prints an empty line
                bar.stop()
    except SynthmobError as error:
        note = resumable()
        raise _fail(SynthmobError(f"{error}; {note}") if note else error) from None
    except KeyboardInterrupt:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"interrupted; {resumable() or 'no output was left behind'}", markup=False
        )
        raise typer.Exit(130) from None
    except Exception:
        if resumable():
            Console(stderr=True, highlight=False, soft_wrap=True).print(resumable(), markup=False)
        raise
    wall = time.perf_counter() - started
    tables = run.manifest["tables"]
    subscriber_days = scenario.subscribers * scenario.days
    used = run.manifest["run"]["workers"]
    where = _plural(used, "worker") if scheduler is None else _plural(used, "Dask worker")
    if scheduler not in (None, "local"):
        where += f" at {scheduler}"
    print(
        f"wrote {run.path} in {wall:.1f} s: {scenario.subscribers:,} subscribers x {_plural(scenario.days, 'day')} "
        f"({subscriber_days / wall:,.0f} subscriber-days/s, {where})"
    )
    for name, info in tables.items():
        unit = "features" if name.endswith(".geojson") else "rows"
        print(f"  {name:<14} {info['rows']:>12,} {unit}")


@app.command()
def validate(
    config: ConfigArg,
    show: Annotated[
        bool, typer.Option("--show", help="print the whole resolved scenario as YAML, every field explained")
    ] = False,
) -> None:
    """Check a scenario without running it."""
    from synthmob.scenario import load_scenario, to_yaml

    try:
        scenario = load_scenario(config)
    except SynthmobError as error:
        raise _fail(error) from None
    if show:
        print(to_yaml(scenario), end="")
        return
    print(
        f"{config}: valid. scenario {scenario.name!r}: {scenario.subscribers:,} subscribers, {_plural(scenario.days, 'day')} "
        f"from {scenario.start} ({scenario.timezone}), {_plural(scenario.n_shards, 'shard')} of {scenario.shard_size}, "
        f"region {scenario.world.width_km:g} x {scenario.world.height_km:g} km, seed {scenario.seed}, "
        f"output {scenario.output_folder}"
    )


@app.command()
def export(
    run: Annotated[str, typer.Argument(help="a run folder written by 'synthmob generate'", show_default=False)],
    format: Annotated[
        str,
        typer.Option("--format", "-f", metavar="FORMAT",
                     help="flowkit, skmob, trackintel, movingpandas, csv or pseudonymous"),
    ],
    out: Annotated[str | None, typer.Option("--out", "-o", metavar="DIR", help="[default: RUN/exports/FORMAT]")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an earlier export there")] = False,
    key_file: Annotated[
        str | None,
        typer.Option("--key-file", metavar="FILE",
                     help="pseudonymous only: the secret key's bytes [default: a fresh random key, kept nowhere]"),
    ] = None,
) -> None:
    """Write a run in the shape another tool reads (FlowKit, scikit-mobility, trackintel, movingpandas, CSV),
    or as a pseudonymous release whose subscribers cannot be linked across days."""
    from synthmob.exports import export as run_export

    started = time.perf_counter()
    try:
        key = None if key_file is None else _read_key(key_file)
        folder = run_export(run, format, out=out, overwrite=overwrite, key=key)
    except SynthmobError as error:
        raise _fail(error) from None
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; no output was left behind")
        raise typer.Exit(130) from None
    print(f"wrote {format} export of {run} to {folder} in {time.perf_counter() - started:.1f} s")
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        print(f"  {path.relative_to(folder)}")


@app.command()
def realism(
    run: Annotated[str, typer.Argument(help="a run folder written by 'synthmob generate'", show_default=False)],
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 when a statistic is out of its range")] = False,
) -> None:
    """Score a run against published human-mobility statistics; write RUN/realism.json."""
    from synthmob.realism import failures, format_table, scorecard, write_json
    from synthmob.run import Run

    started = time.perf_counter()
    bar = _progress()
    task = None

    def report(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("records", total=total)
        bar.update(task, completed=done, total=total)

    try:
        handle = Run(run)
        try:
            rows = scorecard(handle, progress=report)
        finally:
            if task is not None:  # stopping a bar that never started prints an empty line
                bar.stop()
        path = write_json(handle, rows)
    except SynthmobError as error:
        raise _fail(error) from None
    print(format_table(rows))
    print(f"\nwrote {path} in {time.perf_counter() - started:.1f} s")
    bad = failures(rows)
    if strict and bad:
        names = ", ".join(row.statistic for row in bad)
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"out of range: {names}", markup=False)
        raise typer.Exit(1)


def _read_key(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SynthmobError(f"--key-file: cannot read {path!r} ({exc.strerror}); give a file holding the key's bytes") from None


@app.command()
def insights(
    run: Annotated[str, typer.Argument(help="a run folder written by 'synthmob generate'", show_default=False)],
    zones: Annotated[str, typer.Option(metavar="KIND", help="cell, area, or grid:METRES (e.g. grid:1000)")] = "cell",
    k: Annotated[str, typer.Option("-k", "--k", metavar="K", help="no released count is <= K (0: no suppression)")] = "15",
    source: Annotated[str, typer.Option(metavar="SOURCE", help="records (the operator's view) or truth")] = "records",
    epsilon: Annotated[
        str | None, typer.Option(metavar="E", help="add differential-privacy noise, E per subscriber-day (needs synthmob[dp])")
    ] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", metavar="DIR", help="[default: RUN/insights]")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace earlier insights there")] = False,
) -> None:
    """Footfall, origin-destination flows, dwell times and catchments by age and gender, small counts suppressed."""
    from synthmob.insights import insights as run_insights

    started = time.perf_counter()
    err = Console(stderr=True, highlight=False)
    try:
        folder = run_insights(run, zones=zones, k=_number("-k", k, int, "a whole number, 0 or more"), source=source,
                              epsilon=None if epsilon is None else _number("--epsilon", epsilon, float, "a number > 0"),
                              out=out, overwrite=overwrite, progress=lambda name: err.print(f"  {name} ...", markup=False))
    except SynthmobError as error:
        raise _fail(error) from None
    except KeyboardInterrupt:
        err.print("interrupted; no output was left behind")
        raise typer.Exit(130) from None
    index = json.loads((Path(folder) / "index.json").read_text(encoding="utf-8"))
    print(f"wrote insights of {run} to {folder} in {time.perf_counter() - started:.1f} s")
    for name, sidecar in index["insights"].items():
        info = json.loads((Path(folder) / sidecar).read_text(encoding="utf-8"))
        suppressed = sum((info.get("suppressed") or {}).values())
        print(f"  {name:<10} {info.get('rows', 0):>10,} rows  {suppressed:>9,} suppressed")


@app.command()
def audit(
    run: Annotated[str, typer.Argument(help="a run folder written by 'synthmob generate'", show_default=False)],
    sample: Annotated[str, typer.Option(metavar="N", help="subscribers sampled for unicity")] = "2000",
    seed: Annotated[str, typer.Option(metavar="N", help="seed of the unicity sample")] = "0",
) -> None:
    """Check every released insight for small or recoverable counts and measure unicity; write RUN/audit.json.

    Exits 1 when a released table fails."""
    from synthmob.audit import audit as run_audit

    started = time.perf_counter()
    try:
        report = run_audit(run, sample=_number("--sample", sample, int, "a whole number, 1 or more"),
                           seed=_number("--seed", seed, int, "a whole number, 0 or more"))
        path = report.write_json(run)
    except SynthmobError as error:
        raise _fail(error) from None
    print(report.format_table())
    print(f"\nwrote {path} in {time.perf_counter() - started:.1f} s")
    if not report.passed:
        Console(stderr=True, highlight=False, soft_wrap=True).print("audit failed: a released table discloses", markup=False)
        raise typer.Exit(1)


def _number(flag: str, value: str, kind: type, valid: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ConfigError("command line", flag, value, f"give {valid}") from None


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def main() -> None:
    """Entry point of the ``synthmob`` console script."""
    app(prog_name="synthmob")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
