"""Where shards run: the output is the same in this process, in local worker processes and on a Dask cluster."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import synthmob
from synthmob.cli import app
from synthmob.errors import ConfigError, SynthmobError
from synthmob import executors
from synthmob.executors import MISSING_EXTRA, check_scheduler, executor

TABLES = ("stays", "trips", "events", "subscribers", "contacts", "cells")
SCENARIOS = {
    "tiny": {"days": 1, "seed": 4},  # two shards of 50
    "city": {"subscribers": 600, "shard_size": 150, "days": 2, "seed": 4},  # four shards
}


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def user_error(result) -> str:
    """One ``error:`` line on stderr, nothing on stdout, status 2; return the line."""
    details = (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.exit_code == 2, details
    assert result.exception is None or isinstance(result.exception, SystemExit), details
    assert result.stdout == "", details
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), details
    return lines[0]


def assert_same_output(a: synthmob.Run, b: synthmob.Run) -> None:
    for name in TABLES:
        assert a.table(name).equals(b.table(name)), name
    assert a.manifest["tables"] == b.manifest["tables"]  # the same part files, with the same row counts
    for rel in a.manifest["tables"]["stays"]["files"]:
        assert pq.read_table(a.path / rel).equals(pq.read_table(b.path / rel)), rel


@pytest.fixture(scope="module")
def cluster():
    """One local Dask cluster of two worker processes, shared by the tests of this module (by its address)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, silence_logs=logging.ERROR,
        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Each scenario generated in this process, one shard after another."""
    base = tmp_path_factory.mktemp("reference")
    return {name: synthmob.generate(name, out=base / name, workers=1, **kw) for name, kw in SCENARIOS.items()}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("how", ["workers=2", "local Dask cluster", "Dask scheduler address"])
def test_output_does_not_depend_on_where_shards_run(tmp_path, reference, cluster, scenario, how):
    options = {
        "workers=2": {"workers": 2},
        "local Dask cluster": {"workers": 2, "scheduler": "local"},
        "Dask scheduler address": {"scheduler": cluster},
    }[how]
    seen = []
    run = synthmob.generate(
        scenario, out=tmp_path / "run", progress=lambda *step: seen.append(step), **options, **SCENARIOS[scenario]
    )
    assert_same_output(reference[scenario], run)
    assert tree(run.path) == tree(reference[scenario].path)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left
    total = run.manifest["scenario"]["subscribers"] // run.manifest["scenario"]["shard_size"]
    assert [done for stage, done, _ in seen if stage == "shards"] == list(range(total + 1))  # one step per shard
    assert run.manifest["run"]["workers"] == 2
    assert run.manifest["run"]["scheduler"] == options.get("scheduler")


@pytest.mark.slow
def test_cli_runs_on_a_dask_scheduler(tmp_path, cluster, reference):
    out = tmp_path / "run"
    result = invoke("generate", "tiny", "--out", out, "--seed", "4", "--scheduler", cluster)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert f"2 Dask workers at {cluster})" in result.stdout.splitlines()[0]
    assert_same_output(reference["tiny"], synthmob.Run(out))


@pytest.mark.slow
def test_workers_that_cannot_see_the_output_folder_are_refused(tmp_path, cluster):
    from synthmob.executors import executor

    with executor(workers=1, scheduler=cluster) as dask, pytest.raises(SynthmobError, match="cannot see .*shared"):
        dask._check_workers(tmp_path / "not-there")


# --- mistakes --------------------------------------------------------------------------------------------------
BAD = ["locale", "LOCAL", "", "tcp://", "tcp://:8786", "tcp://host", "tcp://host:0", "tcp://host:99999",
       "tcp://host:port", "http://host:8786", "host:8786", "tcp://host:8786/path", "tcp://user@host:8786"]


@pytest.mark.parametrize("value", BAD)
def test_bad_scheduler_on_the_command_line(tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    line = user_error(invoke("generate", "tiny", "--out", tmp_path / "deep" / "run", "--scheduler", value))
    assert line == (
        f"error: command line: --scheduler: got {value!r}; give local (start a Dask cluster here) or a Dask "
        "scheduler's address tcp://HOST:PORT"
    )
    assert tree(tmp_path) == []


@pytest.mark.parametrize("value", ["locale", "tcp://host", 8786])
def test_bad_scheduler_in_python(tmp_path, value):
    with pytest.raises(ConfigError, match=r"^argument: scheduler: got .*tcp://HOST:PORT$"):
        synthmob.generate("tiny", out=tmp_path / "run", scheduler=value)
    assert tree(tmp_path) == []


@pytest.mark.parametrize("value", ["local", "tcp://127.0.0.1:8786", "tcp://[::1]:8786", "tcp://scheduler.example:1"])
def test_good_scheduler_values(value):
    pytest.importorskip("distributed")
    assert check_scheduler(value) == value


@pytest.fixture
def no_dask(monkeypatch):
    """As if the dask extra were not installed: importing ``distributed`` fails."""
    monkeypatch.setitem(sys.modules, "distributed", None)


@pytest.mark.parametrize("value", ["local", "tcp://127.0.0.1:8786"])
def test_missing_dask_extra_on_the_command_line(tmp_path, monkeypatch, no_dask, value):
    monkeypatch.chdir(tmp_path)
    line = user_error(invoke("generate", "tiny", "--out", tmp_path / "run", "--scheduler", value))
    assert line == "error: --scheduler needs the dask extra: pip install 'synthmob[dask]'"
    assert tree(tmp_path) == []


def test_missing_dask_extra_in_python(tmp_path, no_dask):
    with pytest.raises(SynthmobError) as caught:
        synthmob.generate("tiny", out=tmp_path / "run", scheduler="local")
    assert str(caught.value) == MISSING_EXTRA
    assert tree(tmp_path) == []


def test_without_a_scheduler_dask_is_not_needed(tmp_path, no_dask):
    run = synthmob.generate("tiny", out=tmp_path / "run", workers=1)
    assert run.table("stays").num_rows > 0


def test_unreachable_scheduler_is_one_line(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")

    def refuse(address, **kwargs):
        raise OSError(f"Timed out trying to connect to {address} after 20 s\nmore detail")

    monkeypatch.setattr(distributed, "Client", refuse)
    monkeypatch.chdir(tmp_path)
    line = user_error(invoke("generate", "tiny", "--out", tmp_path / "run", "--scheduler", "tcp://127.0.0.1:9"))
    assert line == (
        "error: --scheduler: cannot connect to tcp://127.0.0.1:9 (Timed out trying to connect to tcp://127.0.0.1:9 "
        "after 20 s); start a Dask scheduler there or give local"
    )
    assert tree(tmp_path) == []


def _kept():
    return executors._ALLOCATOR["kept"]


class _FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, parameter, value):
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def fake_libc(monkeypatch):
    libc = _FakeLibc()
    monkeypatch.setitem(executors._ALLOCATOR, "libc", libc)
    monkeypatch.setitem(executors._ALLOCATOR, "kept", False)
    return libc


def test_freed_memory_is_kept_once_and_given_back(fake_libc):
    assert executors.keep_freed_memory() and _kept()
    assert fake_libc.calls == [("mallopt", -3, 32 * 2**20), ("mallopt", -1, 256 * 2**20)]
    assert executors.keep_freed_memory() and len(fake_libc.calls) == 2  # once per process
    executors.give_back_memory()
    assert fake_libc.calls[-1] == ("malloc_trim", 0) and _kept()


def test_a_value_glibc_refuses_is_reported(fake_libc, monkeypatch):
    monkeypatch.setattr(fake_libc, "mallopt", lambda parameter, value: 0)  # what mallopt returns on an error
    assert executors.keep_freed_memory() is False and not _kept()


def test_a_run_in_this_process_keeps_freed_memory_and_gives_it_back_after(fake_libc):
    """Shards run in the calling process: the allocator is tuned before the first, and what it holds is
    returned after the run, error or not."""
    seen = []
    with executor(workers=1, scheduler=None) as cluster, cluster.send(None, tasks=3) as workers:
        list(workers.results(lambda job, i: seen.append(_kept()), [(0,), (1,)]))
    assert seen == [True, True] and fake_libc.calls[-1] == ("malloc_trim", 0)
    fake_libc.calls.clear()
    with pytest.raises(ZeroDivisionError):
        with executor(workers=1, scheduler=None) as cluster, cluster.send(None, tasks=3) as workers:
            list(workers.results(lambda job, i: 1 / 0, [(0,)]))
    assert fake_libc.calls == [("malloc_trim", 0)]  # tuned already: only given back


def test_a_worker_keeps_freed_memory_from_its_first_shard_on(fake_libc):
    executors._call(lambda job, i: None, "job", 0)
    executors._call(lambda job, i: None, "job", 1)
    assert _kept() and len(fake_libc.calls) == 2  # tuned once, never given back


def test_without_glibc_the_allocator_is_left_alone(monkeypatch):
    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setitem(executors._ALLOCATOR, "libc", None)
    monkeypatch.setitem(executors._ALLOCATOR, "kept", False)
    monkeypatch.setattr(executors.ctypes, "CDLL", missing)
    assert executors.keep_freed_memory() is False and not _kept()
    executors.give_back_memory()
    assert executors._call(lambda job, i: i + 1, None, 1) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc")
def test_glibc_takes_the_values():
    """In a process of its own (the values stay for the life of the process)."""
    code = "from synthmob import executors; print(executors.keep_freed_memory(), executors._ALLOCATOR['kept'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]


@pytest.mark.slow
def test_pool_and_dask_workers_keep_freed_memory(tmp_path):
    """Whichever executor runs the shards, its workers keep freed memory once they have run one."""
    pytest.importorskip("distributed")
    for scheduler in (None, "local"):
        with executor(workers=2, scheduler=scheduler) as cluster, cluster.send(_Staged(tmp_path), tasks=4) as workers:
            assert list(workers.results(_worker_kept, [(i,) for i in range(4)])) == [True] * 4


@pytest.mark.slow
def test_a_local_dask_cluster_gives_its_workers_one_malloc_arena(tmp_path, monkeypatch):
    """Tasks run in a worker's thread: its workers are started with MALLOC_ARENA_MAX=1, and the rest of the
    nannies' environment (such as OMP_NUM_THREADS) is kept."""
    pytest.importorskip("distributed")
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    with executor(workers=2, scheduler="local") as cluster, cluster.send(_Staged(tmp_path), tasks=2) as workers:
        seen = list(workers.results(_worker_environment, [(i,) for i in range(2)]))
    assert seen == [("1", "1")] * 2


def _worker_environment(job, index):
    return os.environ.get("MALLOC_ARENA_MAX"), os.environ.get("OMP_NUM_THREADS")


class _Staged:
    def __init__(self, staging):
        self.staging = staging


def _worker_kept(job, index):
    return executors._ALLOCATOR["kept"]


def test_local_processes_for_the_main_process():
    """No helper needs no pool; one or more run calls in other processes."""
    from synthmob.executors import local_processes

    with local_processes(0) as none:
        assert none is None
    with local_processes(1) as one:
        assert one.submit(os.getpid).result() != os.getpid()
    with local_processes(2) as pool:
        assert {pool.submit(os.getpid).result() for _ in range(4)} - {os.getpid()}
        assert list(pool.map(abs, [-1, -2])) == [1, 2]
