"""The generation pipeline: scenario → world → population → shards → files.

Random streams come from one root :class:`numpy.random.SeedSequence`: child 0 builds the world; child 1's
child *i* draws the subscribers of shard *i*, and child 2's child *i* simulates them. Shards are fixed blocks of ``shard_size``
subscribers, so the output is the same whatever the number of workers and whichever finishes first.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import json
import multiprocessing
import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthmob import schema
from synthmob.calendar import Calendar
from synthmob.errors import ConfigError
from synthmob.events import Positions, finish, originating, positions
from synthmob.identities import identities
from synthmob.output import staged_folder, write_geojson, write_json, write_partitioned, write_table
from synthmob.population import Destinations, Population, concat, synthesise
from synthmob.run import Run
from synthmob.scenario import Scenario, load_scenario
from synthmob.simulation import simulate_shard
from synthmob.social import Contacts, build_social_network, contacts, edges_table
from synthmob.terminating import terminating_legs
from synthmob.world import World, build_world

#: ``progress(stage, done, total)`` is called as a run advances.
Progress = Callable[[str, int, int], None]

_WORLD, _POPULATION, _SIMULATION, _EVENTS, _IDENTITIES, _FINISH, _SOCIAL = 0, 1, 2, 3, 4, 5, 6
#: Intermediate files of a run, inside the staging folder, removed before it is moved into place.
_WORK = ".work"
MANIFEST_VERSION = 1


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
    for name in ("synthmob", "numpy", "simpy", "networkx", "scipy", "shapely", "pyarrow", "pydantic"):
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

    @property
    def work(self) -> Path:
        return self.staging / _WORK

    def members(self, index: int) -> Population:
        size = self.scenario.shard_size
        return self.population.slice(index * size, (index + 1) * size)


_JOB: _Job | None = None  # a worker process's job, set once by its initializer


def _init_worker(job: _Job) -> None:
    global _JOB
    _JOB = job


def _in_worker(stage: str, index: int) -> dict[str, dict[str, int]]:
    if _JOB is None:  # pragma: no cover - the pool's initializer always runs first
        raise RuntimeError("worker process was not initialised")
    return _stage(stage)(_JOB, index)


def run_shard(job: _Job, index: int) -> dict[str, dict[str, float]]:
    """Simulate shard ``index``: write its stays and trips, and the timeline and originating legs that the
    callee join and :func:`finish_shard` need. Returns rows per file for each table written, and under
    ``_seconds`` the time spent on each step."""
    clock = _Clock()
    members = job.members(index)
    root = streams(job.scenario.seed)
    tables = simulate_shard(job.scenario, job.world, members, job.calendar, rng=child(root, _SIMULATION, index))
    clock.lap("simulation")
    part = f"part-{index:05d}"
    first = index * job.scenario.shard_size
    where = positions(tables["stays"], tables["trips"], first, job.calendar.epoch_s)
    own = originating(
        members.subscriber_id, job.calendar, job.scenario.events, job.contacts, where, index,
        rng=child(root, _EVENTS, index),
    )
    write_table(_positions_table(where, first, job.calendar.epoch_s), job.work / "positions" / f"{part}.parquet")
    write_table(own, job.work / "own" / f"{part}.parquet")
    clock.lap("events")
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
    """Merge shard ``index``'s own and incoming legs, add handovers and location updates, write its events."""
    clock = _Clock()
    part = f"part-{index:05d}"
    first = index * job.scenario.shard_size
    where = _read_positions(job.work / "positions" / f"{part}.parquet", first, job.calendar.epoch_s)
    own = pq.read_table(job.work / "own" / f"{part}.parquet")
    folder = job.work / "incoming" / f"shard={index}"
    incoming = (
        pq.read_table(folder, schema=schema.EVENTS) if folder.is_dir() else schema.EVENTS.empty_table()
    )
    records = finish(
        own, incoming, where, first, job.calendar, job.world.network.area_code, job.neighbours,
        job.scenario.events, rng=child(streams(job.scenario.seed), _FINISH, index),
    )
    clock.lap("events")
    files = {
        "events": write_partitioned(
            records, job.staging / "events", time_column="timestamp", calendar=job.calendar, part=part,
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


def _positions_table(where: Positions, first: int, epoch_s: int) -> pa.Table:
    return pa.table(
        {
            schema.SUBSCRIBER_ID: where.sub + first,
            "timestamp": pa.array(where.t_ms + epoch_s * 1000, pa.int64()).cast(schema.TIMESTAMP),
            schema.CELL_ID: where.cell,
            "moving": where.moving,
        }
    )


def _read_positions(path: Path, first: int, epoch_s: int) -> Positions:
    table = pq.read_table(path)
    return Positions(
        sub=table[schema.SUBSCRIBER_ID].to_numpy() - first,
        t_ms=pc.cast(table["timestamp"], pa.int64()).to_numpy() - epoch_s * 1000,
        cell=table[schema.CELL_ID].to_numpy(),
        moving=table["moving"].to_numpy(),
    )


def generate(
    config: "str | Path | Mapping[str, Any] | Scenario" = "region",
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: Progress | None = None,
    **overrides: Any,
) -> Run:
    """Generate a scenario's ground truth and write it to ``out``; return a handle on the run.

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
        Processes simulating shards in parallel. The output does not depend on it.
    overwrite
        Replace an existing non-empty output folder (only once the new run is complete).
    progress
        Called as ``progress(stage, done, total)``; stages are ``world``, ``population``, ``identities``,
        ``contacts``,
        ``shards`` (simulation), ``calls`` (callee legs) and ``events`` (operator records).
    **overrides
        Other top-level scenario fields: ``subscribers``, ``days``, ``start``, ``shard_size`` ...

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
    notify = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    target = Path(scenario.output_folder).absolute()

    with staged_folder(target, overwrite=overwrite) as staging:
        root = streams(scenario.seed)
        clock = _Clock()
        notify("world", 0, 1)
        world = build_world(scenario.world, rng=child(root, _WORLD))
        notify("world", 1, 1)
        clock.lap("world")
        notify("population", 0, 1)
        population = build_population(scenario, world, root)
        notify("population", 1, 1)
        clock.lap("population")
        calendar = Calendar.create(scenario.start, scenario.days, scenario.timezone)
        file_metadata = {
            "synthmob": json.dumps({"scenario": scenario.model_dump(mode="json"), "versions": versions()})
        }

        files: dict[str, dict[str, int]] = {}
        cells = world.cells_table()
        files["cells"] = {"cells.parquet": write_table(cells, staging / "cells.parquet", metadata=file_metadata)}
        files["cells.geojson"] = {"cells.geojson": write_geojson(staging / "cells.geojson", cells, world.coverage_lonlat(), _sites(world))}
        notify("identities", 0, 1)
        subscribers = _subscribers(population, scenario, root)
        notify("identities", 1, 1)
        clock.lap("identities")
        files["subscribers"] = {
            "subscribers.parquet": write_table(subscribers, staging / "subscribers.parquet", metadata=file_metadata)
        }
        notify("contacts", 0, 1)
        social = build_social_network(population, world, scenario.events, rng=child(root, _SOCIAL))
        files["contacts"] = {
            "contacts.parquet": write_table(edges_table(social), staging / "contacts.parquet", metadata=file_metadata)
        }
        notify("contacts", 1, 1)
        clock.lap("contacts")

        job = _Job(
            scenario, world, population, calendar, contacts(social), world.neighbour_arrays(), staging, file_metadata
        )
        with _Shards(job, workers) as shards:
            files.update(shards.run("shards", notify))
            clock.lap("shards")
            notify("calls", 0, 1)
            terminating_legs(job.work / "own", job.work / "positions", job.work / "incoming",
                             shard_size=scenario.shard_size, threads=max(1, workers))
            notify("calls", 1, 1)
            clock.lap("calls")
            files.update(shards.run("events", notify))
            clock.lap("events")
        stage_seconds = {"wall": clock.laps, "summed over shards": shards.seconds}
        shutil.rmtree(job.work)
        manifest = _manifest(scenario, root, world, calendar, files, time.perf_counter() - started, workers)
        manifest["run"]["seconds"] = {k: {s: round(v, 3) for s, v in d.items()} for k, d in stage_seconds.items()}
        write_json(staging / "manifest.json", manifest)
    return Run(target)


def _subscribers(population: Population, scenario: Scenario, root: np.random.SeedSequence) -> pa.Table:
    """The ``subscribers`` table: who each subscriber is in the model, and how the network knows them."""
    model = population.to_table()
    names = identities(population, scenario, root=root)
    return pa.Table.from_arrays(model.columns + names.columns, schema=schema.SUBSCRIBERS)


def build_population(scenario: Scenario, world: World, root: np.random.SeedSequence) -> Population:
    """The population, block by block: shard i's subscribers come from stream (1, i)."""
    places = Destinations(world, scenario)
    size = scenario.shard_size
    return concat(
        [
            synthesise(
                scenario,
                world,
                rng=child(root, _POPULATION, i),
                first=i * size,
                count=min(size, scenario.subscribers - i * size),
                places=places,
            )
            for i in range(scenario.n_shards)
        ]
    )


class _Shards:
    """Runs a stage over every shard, in this process or in a pool of worker processes kept for the run."""

    def __init__(self, job: _Job, workers: int) -> None:
        self.job = job
        self.total = job.scenario.n_shards
        self.seconds: dict[str, float] = {}  # time summed over shards (and so over workers), by step
        self.pool: cf.ProcessPoolExecutor | None = None
        if workers > 1 and self.total > 1:
            # forkserver, not fork: the parent already runs Arrow's thread pool, which must not be forked.
            # The server imports synthmob once, so each worker starts as a fork of an initialised process.
            if os.name == "posix":
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["synthmob.pipeline"])
            else:  # pragma: no cover - Windows
                context = multiprocessing.get_context("spawn")
            self.pool = cf.ProcessPoolExecutor(
                max_workers=min(workers, self.total), mp_context=context, initializer=_init_worker, initargs=(job,)
            )

    def __enter__(self) -> "_Shards":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self.pool is None:
            return
        if exc_type is None:
            self.pool.shutdown(wait=True)
            return
        # An error or Ctrl-C: do not wait for queued shards; stop the workers now.
        processes = list(getattr(self.pool, "_processes", {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)

    def run(self, stage: str, notify: Progress) -> dict[str, dict[str, int]]:
        files: dict[str, dict[str, int]] = {}
        notify(stage, 0, self.total)
        if self.pool is None:
            results = (_stage(stage)(self.job, i) for i in range(self.total))
        else:
            futures = [self.pool.submit(_in_worker, stage, i) for i in range(self.total)]
            results = (future.result() for future in cf.as_completed(futures))
        for done, result in enumerate(results, start=1):
            for name, rows in result.items():
                if name == "_seconds":
                    for step, seconds in rows.items():
                        self.seconds[step] = self.seconds.get(step, 0.0) + seconds
                else:
                    files.setdefault(name, {}).update(rows)
            notify(stage, done, self.total)
        return {name: dict(sorted(rows.items())) for name, rows in files.items()}


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
) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "scenario": scenario.model_dump(mode="json"),
        "seed": {"entropy": str(root.entropy), "streams": {
                "world": [0], "population of shard i": [1, "i"], "simulation of shard i": [2, "i"],
                "events of shard i": [3, "i"], "identity keys": [4], "identity of subscriber k": [4, "k"],
                "records of shard i": [5, "i"], "social network": [6],
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
        "run": {"workers": workers, "wall_s": round(wall_s, 3)},
    }


def _utc(epoch_s: int) -> str:
    return dt.datetime.fromtimestamp(int(epoch_s), tz=dt.timezone.utc).isoformat()
