"""Reproducibility and the contents of a run: same seed, same tables, whatever the number of workers."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import synthmob
from synthmob import schema
from synthmob.pipeline import _POPULATION, build_population, child, streams
from synthmob.population import concat, synthesise
from synthmob.scenario import load_scenario
from synthmob.world import build_world

TABLES = ("cells", "subscribers", "contacts", "stays", "trips", "events")


def _tables(run):
    return {name: run.table(name) for name in TABLES}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The tiny preset over two days, generated twice with one seed and once with another."""
    base = tmp_path_factory.mktemp("repro")
    kwargs = {"days": 2, "subscribers": 120, "shard_size": 40}
    return (
        synthmob.generate("tiny", out=base / "a", seed=11, **kwargs),
        synthmob.generate("tiny", out=base / "b", seed=11, **kwargs),
        synthmob.generate("tiny", out=base / "c", seed=12, **kwargs),
    )


def test_same_seed_gives_identical_tables(pair):
    a, b, _ = pair
    for name, table in _tables(a).items():
        assert table.equals(b.table(name)), name


def test_different_seed_gives_different_tables(pair):
    a, _, c = pair
    for name in TABLES:
        assert not a.table(name).equals(c.table(name)), name


def test_worker_count_does_not_change_the_output(tmp_path):
    kwargs = {"days": 2, "subscribers": 90, "shard_size": 30, "seed": 4}
    one = synthmob.generate("tiny", out=tmp_path / "one", workers=1, **kwargs)
    two = synthmob.generate("tiny", out=tmp_path / "two", workers=2, **kwargs)
    for name in TABLES:
        assert one.table(name).equals(two.table(name)), name
    # the part files themselves are identical too, file by file
    assert one.manifest["tables"] == two.manifest["tables"]
    for name in ("stays", "trips"):
        for rel in one.manifest["tables"][name]["files"]:
            assert pq.read_table(one.path / rel).equals(pq.read_table(two.path / rel)), rel


def test_shard_streams_depend_on_index_only():
    root = streams(99)
    assert child(root, 2, 5).random() == child(streams(99), 2, 5).random()
    assert child(root, 2, 5).random() != child(root, 2, 6).random()


def test_a_shard_does_not_depend_on_the_others(tmp_path):
    """Adding subscribers in new shards leaves the earlier full shards unchanged."""
    small = synthmob.generate("tiny", out=tmp_path / "s", seed=3, subscribers=50, shard_size=25)
    large = synthmob.generate("tiny", out=tmp_path / "l", seed=3, subscribers=100, shard_size=25)
    stays = large.table("stays")
    first = stays.filter(stays["subscriber_id"].to_numpy() < 50)
    assert first.equals(small.table("stays"))


def test_layout_and_manifest(tiny_run):
    path = tiny_run.path
    for name in ("cells.parquet", "cells.geojson", "subscribers.parquet", "manifest.json"):
        assert (path / name).is_file(), name
    for name in ("stays", "trips"):
        parts = sorted((path / name).glob("date=*/part-*.parquet"))
        assert parts, name
        assert all(p.parent.name == "date=2026-03-23" for p in parts)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["scenario"]["name"] == "tiny"
    assert manifest["seed"]["entropy"] == str(manifest["scenario"]["seed"])
    for package in ("synthmob", "numpy", "simpy", "networkx"):
        assert manifest["versions"][package]
    for name, info in manifest["tables"].items():
        total = 0
        for rel, rows in info["files"].items():
            if rel.endswith(".parquet"):
                assert pq.read_metadata(path / rel).num_rows == rows, rel
            else:
                assert len(json.loads((path / rel).read_text())["features"]) == rows
            total += rows
        assert total == info["rows"]
    # The resolved scenario in the manifest rebuilds the same scenario.
    resolved = synthmob.load_scenario(manifest["scenario"])
    assert resolved == synthmob.load_scenario("tiny", overrides={"out": manifest["scenario"]["out"]})


def test_tables_have_the_schema(tiny_run):
    for name, expected in {**schema.SINGLE_FILES, **schema.DATASETS}.items():
        assert tiny_run.table(name).schema.equals(expected), name


def test_every_file_as_written_has_the_schema(tiny_run):
    """A reader opening one file sees the schema, nullability included, whatever the run's reader does."""
    paths = {name: [tiny_run.path / f"{name}.parquet"] for name in schema.SINGLE_FILES}
    paths |= {name: sorted((tiny_run.path / name).glob("date=*/*.parquet")) for name in schema.DATASETS}
    for name, files in paths.items():
        assert files, name
        for path in files:
            assert pq.read_schema(path).remove_metadata().equals({**schema.SINGLE_FILES, **schema.DATASETS}[name]), path


def test_every_cell_id_exists(tiny_run):
    cells = set(tiny_run.table("cells")["cell_id"].to_pylist())
    subscribers = tiny_run.table("subscribers")
    used = set(subscribers["home_cell"].to_pylist()) | set(subscribers["work_cell"].drop_null().to_pylist())
    used |= set(tiny_run.table("stays")["cell_id"].to_pylist())
    trips = tiny_run.table("trips")
    used |= set(trips["from_cell"].to_pylist()) | set(trips["to_cell"].to_pylist())
    used |= {step["cell_id"] for path in trips["path"].to_pylist() for step in path}
    assert used <= cells


def test_geojson_has_cells_and_sites(tiny_run):
    collection = json.loads((tiny_run.path / "cells.geojson").read_text())
    kinds = [f["properties"]["kind"] for f in collection["features"]]
    cells = tiny_run.table("cells")
    assert kinds.count("cell") == cells.num_rows
    assert kinds.count("site") == len(set(cells["site_id"].to_pylist()))
    polygon = next(f for f in collection["features"] if f["properties"]["kind"] == "cell")
    assert polygon["geometry"]["type"] == "Polygon"
    lon, lat = polygon["geometry"]["coordinates"][0][0]
    assert -1 < lon < 1 and -1 < lat < 1  # the default origin is 0° N 0° E


def test_the_tiny_preset_is_small_and_quick(tiny_run):
    assert 35 <= tiny_run.manifest["world"]["cells"] <= 70
    assert tiny_run.manifest["tables"]["subscribers"]["rows"] == 100
    assert tiny_run.manifest["run"]["wall_s"] < 2.0  # about 0.1-0.4 s here (benchmarks/generate.py); slack for CI


def test_a_process_builds_the_destination_kernels_once_per_run_and_lets_them_go(tmp_path, monkeypatch):
    import gc

    from synthmob import pipeline

    built = []
    real = pipeline.places_for
    monkeypatch.setattr(pipeline, "places_for", lambda *args: built.append(1) or real(*args))
    synthmob.generate("tiny", out=tmp_path / "run", shard_size=25, workers=1)  # four shards in this process
    assert len(built) == 1
    gc.collect()
    assert pipeline._PLACES == []  # not kept once the run is over


class _FakeJob:
    """What ``_places`` reads of a job (and a job can be weakly referenced)."""

    def __init__(self, tag: str) -> None:
        self.scenario, self.world = tag, None


def test_two_runs_in_one_process_each_get_their_own_kernels(monkeypatch, in_threads):
    import gc

    from synthmob import pipeline

    monkeypatch.setattr(pipeline, "places_for", lambda scenario, world: scenario)  # "kernels" = the job's tag
    jobs = [_FakeJob(f"job {i}") for i in range(2)]
    wrong: list[str] = []

    def use(job) -> None:
        for _ in range(20_000):
            if pipeline._places(job) != job.scenario:
                wrong.append(job.scenario)

    assert in_threads(use, [(job,) for job in jobs]) == [] and wrong == []
    assert len(pipeline._PLACES) == 2
    del jobs
    gc.collect()
    assert pipeline._PLACES == []


def test_progress_reports_every_stage_in_order_and_to_its_end(tmp_path):
    seen = []
    synthmob.generate("tiny", out=tmp_path / "run", subscribers=30, days=1, shard_size=10,
                      progress=lambda *step: seen.append(step))
    stages = list(dict.fromkeys(stage for stage, _, _ in seen))
    assert stages == ["world", "population", "contacts", "routes", "shards", "calls", "events", "subscribers"]
    for stage in stages:
        steps = [(done, total) for name, done, total in seen if name == stage]
        assert steps[0][0] == 0 and steps[-1][0] == steps[-1][1], (stage, steps)
    assert [(d, t) for s, d, t in seen if s == "shards"][-1] == (3, 3)


def test_duckdb_is_given_each_shards_outgoing_legs_and_nothing_else(tmp_path, monkeypatch):
    import numpy as np

    from synthmob import pipeline
    from synthmob.events import OUT, Records
    from synthmob.output import read_scratch

    seen = {}
    real = pipeline.terminating_legs

    def check(outgoing, out, **kwargs):
        for part in sorted((outgoing.parent / "own").glob("*.arrow")):
            own = Records.from_scratch(read_scratch(part))
            given = Records.from_scratch(pq.read_table(outgoing / f"{part.stem}.parquet"))
            expected = own.take(np.flatnonzero(own.direction == OUT))
            seen[part.stem] = len(given)
            assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(given.columns(), expected.columns()))
        return real(outgoing, out, **kwargs)

    monkeypatch.setattr(pipeline, "terminating_legs", check)
    synthmob.generate("tiny", out=tmp_path / "run", shard_size=40, workers=1)
    assert sorted(seen) == [f"part-{i:05d}" for i in range(3)] and all(seen.values())


def test_the_population_is_its_blocks_synthesised_one_by_one():
    """build_population looks up the places of work and study once for all blocks; the people are those of
    synthesise, block by block from the block's own stream (the last block short)."""
    scenario = load_scenario("city", overrides={"subscribers": 2500, "shard_size": 1000})
    world = build_world(scenario.world, rng=np.random.default_rng(3))
    root = streams(scenario.seed)
    expected = concat([
        synthesise(scenario, world, rng=child(root, _POPULATION, i), first=i * 1000, count=min(1000, 2500 - i * 1000))
        for i in range(3)
    ])
    population = build_population(scenario, world, root)
    assert (population.work_cell >= 0).sum() > 500  # workers and students placed
    for field in ("subscriber_id", "age_band", "gender", "persona", "home_cell", "work_cell", "car", "shard"):
        np.testing.assert_array_equal(getattr(population, field), getattr(expected, field), err_msg=field)
