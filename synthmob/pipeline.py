"""The generation pipeline: scenario → world → population → shards → files.

Random streams come from one root :class:`numpy.random.SeedSequence`: child 0 builds the world; child 1's
child *i* draws the subscribers of shard *i*, and child 2's child *i* simulates them. Shards are fixed blocks of ``shard_size``
subscribers, so the output is the same whatever the number of workers, wherever they run (this process, local
worker processes or a Dask cluster, see :mod:`synthmob.executors`) and whichever finishes first.

A run has three stages after the world and the population: ``shards`` simulates each shard and writes its
stays and trips (and draws its subscribers' identities, written to ``subscribers.parquet`` at the end); ``calls`` routes every call's callee leg to the shard holding the callee; ``events`` writes
each shard's operator records. Each finished shard of a stage, and the routing, leave a completion marker in
the staging folder's ``.work/done``, and every shard first removes whatever an earlier attempt at it left.
So a resumable run (``resume=True``), staged in a folder named after a digest of the resolved scenario and
the package versions, can be stopped at any point (an error, Ctrl-C, a killed process) and run again: the
world and population are rebuilt, finished shards are skipped, the rest are redone, and the output is that
of an uninterrupted run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthmob import schema
from synthmob.behaviour import Places
from synthmob.calendar import Calendar
from synthmob.errors import ConfigError
from synthmob.events import OUT, Positions, Records, finish, originating, positions
from synthmob.executors import Stages, check_scheduler, executor, local_processes, mark, marked
from synthmob.identities import identities, msisdn_mode
from synthmob.output import (
    local_days, read_scratch, remove_parts, staged_folder, write_geojson, write_json, write_partitioned, write_scratch,
    write_table,
)
from synthmob.population import Destinations, Population, Unplaced, concat, draw_people, place
from synthmob.run import Run
from synthmob.scenario import Scenario, load_scenario
from synthmob.simulation import places_for, simulate_shard
from synthmob.social import Contacts, contacts, edges_table, social_network
from synthmob.terminating import INCOMING, terminating_legs
from synthmob.world import World, start_world

#: ``progress(stage, done, total)`` is called as a run advances.
Progress = Callable[[str, int, int], None]

_WORLD, _POPULATION, _SIMULATION, _EVENTS, _IDENTITIES, _FINISH, _SOCIAL = 0, 1, 2, 3, 4, 5, 6
#: Intermediate files of a run, inside the staging folder, removed before it is moved into place.
_WORK = ".work"
MANIFEST_VERSION = 1
#: What a staging folder's intermediate files are (raised when they change: a partial run of another format
#: is not resumed): 2 adds each shard's identities and routes callee legs without their cell; 3 keeps records
#: and timelines as plain numeric columns; 4 keeps what synthmob reads back itself (not DuckDB) as Arrow IPC
#: files and gives DuckDB the outgoing calls and SMS alone. (A change of the simulation's draws changes the
#: package version, which the staging folder's digest includes too.)
WORK_FORMAT = 4


def streams(seed: int) -> np.random.SeedSequence:
    """The root seed sequence of a run."""
    return np.random.SeedSequence(seed)


def child(root: np.random.SeedSequence, *key: int) -> np.random.Generator:
    """The generator at ``key`` below ``root`` (what ``spawn`` would hand out, without its state)."""
    seq = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *key), pool_size=root.pool_size)
    return np.random.Generator(np.random.PCG64(seq))


def versions() -> dict[str, str]:
    """Versions of synthmob and of the packages that determine its output."""
    out = {"python": platform.python_version()}
    for name in ("synthmob", "numpy", "simpy", "networkx", "scipy", "shapely", "pyarrow", "pydantic", "faker"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            out[name] = "unknown"
    return out


@dataclass(frozen=True)
class _Job:
    """What every shard needs; sent once to each worker."""

    scenario: Scenario
    world: World
    population: Population
    calendar: Calendar
    contacts: Contacts
    neighbours: tuple[np.ndarray, np.ndarray]
    staging: Path
    file_metadata: dict[str, str]
    salt: int  # keys the counter-based draws that displace records (the same for every shard)

    @property
    def work(self) -> Path:
        return self.staging / _WORK

    def members(self, index: int) -> Population:
        size = self.scenario.shard_size
        return self.population.slice(index * size, (index + 1) * size)


def partial_folder(scenario: Scenario) -> Path:
    """Where a resumable run of ``scenario`` is staged: ``.<name>.partial-<digest>`` beside its output folder.

    The digest covers the resolved scenario and the versions in :func:`versions`, so an attempt at another
    scenario, or with other package versions, is never taken for this one.
    """
    target = Path(scenario.output_folder).absolute()
    text = json.dumps(
        {"scenario": scenario.model_dump(mode="json"), "versions": versions(), "work": WORK_FORMAT}, sort_keys=True
    )
    return target.parent / f".{target.name}.partial-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


_PLACES: list[tuple[weakref.ref, Places]] = []
_PLACES_LOCK = threading.Lock()


def _places(job: _Job) -> Places:
    """One :class:`Places` per job and process, kept across the shards the process runs and dropped with
    the job (its kernels take up to 128 MB)."""
    with _PLACES_LOCK:  # shards of two runs may share a process (threads of one Dask worker)
        for ref, places in _PLACES:
            if ref() is job:
                return places
        places = places_for(job.scenario, job.world)
        _PLACES.append((weakref.ref(job), places))
        weakref.finalize(job, _forget_places)
        return places


def _forget_places() -> None:
    with _PLACES_LOCK:
        _PLACES[:] = [(ref, places) for ref, places in _PLACES if ref() is not None]


def run_shard(job: _Job, index: int) -> dict[str, dict[str, float]]:
    """Simulate shard ``index``: write its stays and trips, the timeline and originating legs that the callee
    legs and :func:`finish_shard` need, and its subscribers' identities. Returns rows per file for each table
    written, and under ``_seconds`` the time spent on each step. Whatever an earlier attempt at the shard left
    is replaced."""
    clock = _Clock()
    members = job.members(index)
    root = streams(job.scenario.seed)
    tables = simulate_shard(job.scenario, job.world, members, job.calendar, rng=child(root, _SIMULATION, index),
                            places=_places(job))
    clock.lap("simulation")
    part = f"part-{index:05d}"
    for name in ("stays", "trips"):
        remove_parts(job.staging / name, part)
    first = index * job.scenario.shard_size
    where = positions(tables["stays"], tables["trips"], first, job.calendar.epoch_s)
    own = originating(
        members.subscriber_id, job.calendar, job.scenario.events, job.contacts, where, index,
        rng=child(root, _EVENTS, index),
    )
    write_scratch(_positions_table(where), job.work / "positions" / f"{part}.arrow")
    write_scratch(own.to_scratch(), job.work / "own" / f"{part}.arrow")
    # What the calls stage routes to the callees' shards: about a fifth of a shard's own records.
    write_scratch(own.take(np.flatnonzero(own.direction == OUT)).to_scratch(), job.work / "outgoing" / f"{part}.parquet")
    clock.lap("events")
    # Identities cost a Faker seeding per subscriber: drawn here, they are spread over the workers.
    write_scratch(identities(members, job.scenario, root=root), job.work / "identities" / f"{part}.arrow")
    clock.lap("identities")
    files = {
        "stays": write_partitioned(
            tables["stays"], job.staging / "stays", time_column="start", calendar=job.calendar, part=part,
            metadata=job.file_metadata,
        ),
        "trips": write_partitioned(
            tables["trips"], job.staging / "trips", time_column="depart", calendar=job.calendar, part=part,
            metadata=job.file_metadata,
        ),
    }
    clock.lap("writing")
    return {**files, "_seconds": clock.laps}


def finish_shard(job: _Job, index: int) -> dict[str, dict[str, float]]:
    """Merge shard ``index``'s own and incoming legs, add handovers and location updates, write its events
    (replacing whatever an earlier attempt at the shard left)."""
    clock = _Clock()
    part = f"part-{index:05d}"
    remove_parts(job.staging / "events", part)
    first = index * job.scenario.shard_size
    where = _read_positions(job.work / "positions" / f"{part}.arrow")
    own = Records.from_scratch(read_scratch(job.work / "own" / f"{part}.arrow"))
    folder = job.work / "incoming" / f"shard={index}"
    incoming = (
        pq.read_table(folder, schema=INCOMING) if folder.is_dir() else INCOMING.empty_table()
    )
    records = finish(
        own, incoming, where, first, job.calendar, job.world.network.area_code, job.neighbours,
        job.scenario.events, salt=job.salt,
        by_day=lambda t_ms: local_days(t_ms + job.calendar.epoch_s * 1000, job.calendar),  # files are slices
    )
    table = records.to_table(job.calendar.epoch_s, coded=True)
    clock.lap("events")
    files = {
        "events": write_partitioned(
            table, job.staging / "events", time_column="timestamp", calendar=job.calendar, part=part,
            metadata=job.file_metadata,
        )
    }
    clock.lap("writing")
    return {**files, "_seconds": clock.laps}


class _Clock:
    """Seconds spent on each named step, in order."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now


def _stage(name: str):
    """The per-shard function of a stage (looked up when called, so that tests can replace it)."""
    return {"shards": run_shard, "events": finish_shard}[name]


def _positions_table(where: Positions) -> pa.Table:
    """A shard's timeline as plain columns (its subscribers by index in the shard, times in ms)."""
    return pa.table({"sub": where.sub, "t_ms": where.t_ms, "cell": where.cell, "moving": where.moving})


def _read_positions(path: Path) -> Positions:
    table = read_scratch(path)
    return Positions(*(table[name].to_numpy() for name in ("sub", "t_ms", "cell", "moving")))


def generate(
    config: "str | Path | Mapping[str, Any] | Scenario" = "region",
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    **overrides: Any,
) -> Run:
    """Generate a scenario's ground truth and write it to ``out``; return a handle on the run.

    The run is written into a hidden folder beside ``out`` and moved into place when complete. The output
    does not depend on ``workers``, ``scheduler`` or ``resume``. Code that runs worker processes from a
    script (``workers > 1`` or a ``scheduler``) must call it under ``if __name__ == "__main__":``. The
    processes that run shards, this one too when it runs them itself, keep the memory they free for reuse
    from then on (see :func:`synthmob.executors.keep_freed_memory`).

    Parameters
    ----------
    config
        A preset name (``"tiny"``, ``"city"``, ``"region"``), a YAML path, a mapping or a :class:`Scenario`.
    out
        Output folder (default: the scenario's ``out``, else ``runs/<name>``). It must not exist or be
        empty, unless ``overwrite``.
    seed
        Root seed; overrides the scenario's.
    workers
        Processes simulating shards in parallel: local worker processes, or with ``scheduler="local"`` the
        workers of the Dask cluster started for the run. Ignored with a scheduler address.
    scheduler
        Run the shards on a Dask cluster (needs ``pip install 'synthmob[dask]'``): ``"tcp://HOST:PORT"``, the
        address of a running scheduler, or ``"local"`` to start a cluster of ``workers`` processes on this
        machine for the run. The job (world, population ...) is sent to each worker once. The workers write
        into the staging folder beside ``out`` directly, so they must all see it at the same path: on a
        cluster of several machines, put ``out`` on a shared filesystem.
    resume
        Stage the run in ``.<name>.partial-<digest>`` beside ``out`` (see :func:`partial_folder`), kept on an
        error or Ctrl-C: run again with ``resume=True`` to skip the shards already finished there. Without
        it a failed run leaves nothing behind.
    overwrite
        Replace an existing non-empty output folder (only once the new run is complete).
    progress
        Called as ``progress(stage, done, total)``; stages are ``world`` (its layout), ``population``,
        ``contacts``, ``routes`` (waiting for the route tables, computed meanwhile on other cores when there
        are several workers), ``shards`` (simulation and identities), ``calls`` (callee legs), ``events``
        (operator records) and ``subscribers`` (the identities gathered into one file).
        A resumed stage starts at the number of shards already finished.
    **overrides
        Other top-level scenario fields: ``subscribers``, ``days``, ``start``, ``shard_size`` ...

    Raises
    ------
    ConfigError
        A bad scenario, ``workers`` or ``scheduler``.
    SynthmobError
        ``out`` cannot be used, Dask is not installed, or the scheduler cannot be reached or used.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> run = generate("tiny", out=pathlib.Path(tempfile.mkdtemp()) / "tiny", seed=5)
    >>> run.table("stays").num_rows > 0
    True
    """
    scenario = load_scenario(config, overrides={"seed": seed, "out": out, **overrides})
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError("argument", "workers", workers, "give a whole number of processes, 1 or more")
    scheduler = check_scheduler(scheduler)
    msisdn_mode(scenario)  # too many subscribers for fiction numbers fails now, not in the shards that draw them
    notify = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    target = Path(scenario.output_folder).absolute()
    partial = partial_folder(scenario) if resume else None

    try:
        with staged_folder(target, overwrite=overwrite, partial=partial and partial.name) as staging, \
                executor(workers=workers, scheduler=scheduler) as cluster:
            _write_run(scenario, staging, cluster, scheduler, notify, started)
    except BaseException as exc:
        if partial is not None and partial.is_dir():
            exc.add_note(f"the finished part of the run is kept in {partial}; run again with resume=True to continue")
        raise
    return Run(target)


def _write_run(
    scenario: Scenario, staging: Path, cluster: Any, scheduler: str | None, notify: Progress, started: float
) -> None:
    """Build the world and population, write the single-file tables, run the stages, write the manifest."""
    root = streams(scenario.seed)
    clock = _Clock()
    notify("world", 0, 1)
    cores = max(1, min(cluster.workers, os.cpu_count() or 1))  # what the run may use of this machine
    with local_processes(cores - 1) as helpers:
        # The other cores compute the route tables while this process builds the population and its social
        # network, which need only the world's layout (one process per core: more would only compete). The
        # tables come in blocks, eight per mode and helper, so that this process can take those not started
        # once it is done. They go straight into the files the workers map.
        pending = start_world(
            scenario.world, rng=child(root, _WORLD), executor=helpers, parts=8 * (cores - 1),
            folder=staging / _WORK / "routes",
        )
        layout = pending.layout
        notify("world", 1, 1)
        clock.lap("world")
        notify("population", 0, 1)
        population = build_population(scenario, layout, root)
        notify("population", 1, 1)
        clock.lap("population")
        calendar = Calendar.create(scenario.start, scenario.days, scenario.timezone)
        file_metadata = {
            "synthmob": json.dumps({"scenario": scenario.model_dump(mode="json"), "versions": versions()})
        }

        files: dict[str, dict[str, int]] = {}
        cells = layout.cells_table()
        files["cells"] = {"cells.parquet": write_table(cells, staging / "cells.parquet", metadata=file_metadata)}
        files["cells.geojson"] = {
            "cells.geojson": write_geojson(staging / "cells.geojson", cells, layout.coverage_lonlat(), _sites(layout))
        }
        files["subscribers"] = {}  # written once the shards have drawn the identities (the manifest keeps this order)
        notify("contacts", 0, 1)
        social = social_network(population, layout, scenario.events, rng=child(root, _SOCIAL))
        files["contacts"] = {
            "contacts.parquet": write_table(edges_table(social), staging / "contacts.parquet", metadata=file_metadata)
        }
        notify("contacts", 1, 1)
        clock.lap("contacts")
        notify("routes", 0, 1)
        world = pending.result()
        notify("routes", 1, 1)
        clock.lap("routes")

    # Workers map the route tables from those files instead of each receiving a copy.
    job = _Job(
        scenario, world, population, calendar, contacts(social), world.neighbour_arrays(), staging, file_metadata,
        salt=int(child(root, _FINISH).integers(2**63)),
    )
    with cluster.send(job, tasks=scenario.n_shards) as workers:
        stages = Stages(workers, job.work, scenario.n_shards)
        files.update(stages.run("shards", _stage("shards"), notify))
        clock.lap("shards")
        notify("calls", 0, 1)
        if marked(job.work, "calls") is None:
            shutil.rmtree(job.work / "incoming", ignore_errors=True)  # what an interrupted join may have left
            terminating_legs(job.work / "outgoing", job.work / "incoming", shard_size=scenario.shard_size, threads=cores)
            mark(job.work, "calls", {})
        notify("calls", 1, 1)
        clock.lap("calls")
        files.update(stages.run("events", _stage("events"), notify))
        clock.lap("events")
    notify("subscribers", 0, 1)
    subscribers = _subscribers(population, job.work / "identities", scenario.n_shards)
    files["subscribers"] = {
        "subscribers.parquet": write_table(subscribers, staging / "subscribers.parquet", metadata=file_metadata)
    }
    notify("subscribers", 1, 1)
    clock.lap("subscribers")
    shutil.rmtree(job.work)
    for folder in staging.glob("*/date=*"):  # emptied by redoing a shard of an interrupted attempt
        if not any(folder.iterdir()):
            folder.rmdir()
    manifest = _manifest(scenario, root, world, calendar, files, time.perf_counter() - started, cluster.workers, scheduler)
    seconds = {"wall": clock.laps, "summed over shards": stages.seconds}
    manifest["run"]["seconds"] = {k: {s: round(v, 3) for s, v in d.items()} for k, d in seconds.items()}
    write_json(staging / "manifest.json", manifest)

def _subscribers(population: Population, folder: Path, n_shards: int) -> pa.Table:
    """The ``subscribers`` table: who each subscriber is in the model, and how the network knows them (the
    identities each shard wrote to ``folder``)."""
    model = population.to_table()
    names = pa.concat_tables([read_scratch(folder / f"part-{i:05d}.arrow") for i in range(n_shards)])
    return pa.Table.from_arrays(model.columns + names.columns, schema=schema.SUBSCRIBERS)


def build_population(scenario: Scenario, world: World, root: np.random.SeedSequence) -> Population:
    """The population, block by block: shard i's subscribers come from stream (1, i). The places of work and
    study are looked up once for all blocks (each origin's distribution searched once, not once per block)."""
    size = scenario.shard_size
    blocks, unplaced = [], []
    for i in range(scenario.n_shards):
        block, wants = draw_people(
            scenario, world, rng=child(root, _POPULATION, i), first=i * size, count=min(size, scenario.subscribers - i * size)
        )
        blocks.append(block)
        unplaced += [want.moved(i * size) for want in wants]
    together = []
    for kind in ("jobs", "schools"):
        wants = [want for want in unplaced if want.kind == kind]
        together.append(Unplaced(kind, np.concatenate([w.index for w in wants]), np.concatenate([w.u for w in wants])))
    return place(concat(blocks), together, Destinations(world, scenario))


def _sites(world: World) -> pa.Table:
    lat, lon = world.to_latlon(world.network.site_x_m, world.network.site_y_m)
    return pa.table({schema.SITE_ID: np.arange(len(lat), dtype=np.int32), "lat": lat, "lon": lon})


def _manifest(
    scenario: Scenario,
    root: np.random.SeedSequence,
    world: World,
    calendar: Calendar,
    files: dict[str, dict[str, int]],
    wall_s: float,
    workers: int,
    scheduler: str | None,
) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "scenario": scenario.model_dump(mode="json"),
        "seed": {"entropy": str(root.entropy), "streams": {
                "world": [0], "population of shard i": [1, "i"], "simulation of shard i": [2, "i"],
                "events of shard i": [3, "i"], "identity keys": [4], "identity of subscriber k": [4, "k"],
                "key of the ping-pong hashes": [5], "social network": [6],
            }},
        "versions": versions(),
        "calendar": {
            "timezone": calendar.timezone,
            "start": calendar.start.isoformat(),
            "days": calendar.days,
            "horizon_start_utc": _utc(calendar.midnights[0]),
            "horizon_end_utc": _utc(calendar.midnights[-1]),
            "partitioning": "date = the scenario's local calendar date of a row's start time",
        },
        "world": {
            "cells": world.n_cells,
            "sites": len(world.network.site_x_m),
            "location_areas": int(len(np.unique(world.network.area_code))),
            "graph_edges": world.graph.number_of_edges(),
        },
        "tables": {
            name: {"rows": int(sum(rows.values())), "files": rows} for name, rows in files.items()
        },
        "run": {"workers": workers, "scheduler": scheduler, "wall_s": round(wall_s, 3)},
    }


def _utc(epoch_s: int) -> str:
    return dt.datetime.fromtimestamp(int(epoch_s), tz=dt.timezone.utc).isoformat()
