"""Where shards run: in this process, in a pool of local worker processes, or on a Dask cluster.

A run's job (world, population, calendar, contacts: tens to hundreds of MB) is sent to each worker once,
not with every shard: a local process pool receives it through its initializer; a Dask cluster receives
it with ``client.scatter(job, broadcast=True)``, and each task is handed the resulting future, which Dask
resolves to the worker's own copy. Shards then run as ``fn(job, *args)`` on whichever worker is free, and
their results come back in the order they finish.

Each finished shard of a stage records its completion in ``<work>/done/<stage>-<index>.json`` (its result,
written to a temporary file and renamed into place once the shard's files are complete), so that a run
resumed in the same staging folder skips it.

Dask is an optional extra (``pip install 'synthmob[dask]'``), imported only when a scheduler is given. The
workers of a Dask cluster write their shards straight into the run's staging folder beside the output
folder, so every worker must see that folder at the same path: on one machine that holds by itself, on
several it needs a shared filesystem (NFS, Lustre ...). Workers also need the same version of synthmob.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import itertools
import json
import logging
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from synthmob.errors import ConfigError, SynthmobError

#: ``progress(stage, done, total)``, as :func:`synthmob.generate` takes it.
Notify = Callable[[str, int, int], None]

MISSING_EXTRA = "--scheduler needs the dask extra: pip install 'synthmob[dask]'"
_VALID = "give local (start a Dask cluster here) or a Dask scheduler's address tcp://HOST:PORT"


def check_scheduler(value: object, *, source: str = "argument", field: str = "scheduler") -> str | None:
    """Check a scheduler: ``None`` (local processes), ``"local"`` or ``"tcp://HOST:PORT"``; return it.

    Raises
    ------
    ConfigError
        Neither ``local`` nor a ``tcp://HOST:PORT`` address.
    SynthmobError
        A scheduler is given but Dask's ``distributed`` is not installed.
    """
    if value is None:
        return None
    if not isinstance(value, str) or (value != "local" and not _is_address(value)):
        raise ConfigError(source, field, value, _VALID)
    _distributed()
    return value


def _is_address(value: str) -> bool:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "tcp" and bool(parts.hostname) and port is not None and 0 < port < 65536
        and not (parts.path or parts.query or parts.fragment or parts.username or parts.password)
    )


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SynthmobError(MISSING_EXTRA) from None
    return distributed


# --- sending a job to workers ---------------------------------------------------------------------------------
@dataclass
class Workers:
    """An executor whose workers hold a job, and what to pass them to reach it."""

    executor: cf.Executor
    #: the job itself (in this process), a Dask future to it, or ``None`` for the copy a pool worker holds
    job: Any
    #: calls kept in flight (one for this process: each runs as it is submitted)
    window: int

    def results(self, fn: Callable[..., Any], calls: Iterable[tuple]) -> Iterator[Any]:
        """Run ``fn(job, *args)`` for each ``args`` in ``calls``; yield the results as they finish."""
        calls = iter(calls)
        running: set[cf.Future] = set()
        while True:
            for args in itertools.islice(calls, max(0, self.window - len(running))):
                running.add(self.executor.submit(_call, fn, self.job, *args))
            if not running:
                return
            done, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in done:
                yield future.result()


_JOB: Any = None  # a pool worker's job, set once by its initializer


def _init_worker(job: Any) -> None:
    global _JOB
    _JOB = job


def _call(fn: Callable[..., Any], job: Any, *args: Any) -> Any:
    if not _ALLOCATOR["kept"]:  # a worker process (of a pool or of Dask), for its lifetime
        keep_freed_memory()
    return fn(_JOB if job is None else job, *args)


# --- the C allocator ------------------------------------------------------------------------------------------
# A shard allocates and frees numpy arrays of a few MB hundreds of times. glibc's malloc serves blocks above
# its mmap threshold with fresh mappings and gives freed memory at the top of its heap back to the kernel, so
# every new array is faulted in and zeroed page by page again: about a fifth of the records' CPU time, and
# more system time, on region. Raising both thresholds lets the process reuse what it freed.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_KEEP = {_M_MMAP_THRESHOLD: 32 * 2**20, _M_TRIM_THRESHOLD: 256 * 2**20}  # 32 MB: mallopt's largest threshold
_ALLOCATOR: dict[str, Any] = {"kept": False, "libc": None}


def _libc() -> Any:
    """glibc's functions, or ``False`` with another C library."""
    if _ALLOCATOR["libc"] is None:
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):  # not glibc
            libc = False
        _ALLOCATOR["libc"] = libc
    return _ALLOCATOR["libc"]


def keep_freed_memory() -> bool:
    """Let this process's C allocator keep the memory it frees for reuse, for the rest of the process: glibc's
    mmap threshold goes to 32 MB and its trim threshold to 256 MB (``mallopt``, which also ends glibc's own
    adjustment of the mmap threshold and overrides ``MALLOC_*_THRESHOLD_`` variables, such as the one Dask's
    nannies set). Returns whether it did: ``False`` with another C library (nothing changes) or if glibc
    refuses a value.

    Every process that runs shards calls it before its first: pool and Dask workers, and the calling process
    when it runs them itself (one worker).
    """
    if _ALLOCATOR["kept"]:
        return True
    libc = _libc()
    if not libc:
        return False
    _ALLOCATOR["kept"] = all([libc.mallopt(parameter, value) == 1 for parameter, value in _KEEP.items()])
    return _ALLOCATOR["kept"]


def give_back_memory() -> None:
    """Return the free memory this process's C allocator holds to the kernel (glibc's ``malloc_trim``)."""
    libc = _libc()
    if libc:
        libc.malloc_trim(0)


class _Inline(cf.Executor):
    """Runs each call in this process as it is submitted."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # a KeyboardInterrupt is not kept for later: it stops the run now
            future.set_exception(exc)
        return future


class _Processes:
    """This process alone, or a pool of ``workers`` local processes."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    @contextmanager
    def send(self, job: Any, *, tasks: int) -> Iterator[Workers]:
        if self.workers == 1 or tasks <= 1:
            keep_freed_memory()
            try:
                yield Workers(_Inline(), job, 1)
            finally:
                give_back_memory()  # what the shards freed, now that they are done
            return
        with _pool(min(self.workers, tasks), initializer=_init_worker, initargs=(job,)) as pool:
            yield Workers(pool, None, tasks)


@contextmanager
def local_processes(workers: int) -> Iterator[cf.Executor | None]:
    """A pool of ``workers`` local processes for work beside the main process's own (the route tables), or
    ``None`` for none."""
    if workers < 1:
        yield None
        return
    with _pool(workers) as pool:
        yield pool


@contextmanager
def _pool(workers: int, **kwargs: Any) -> Iterator[cf.ProcessPoolExecutor]:
    # forkserver, not fork: the parent already runs Arrow's thread pool, which must not be forked.
    # The server imports synthmob once, so each worker starts as a fork of an initialised process.
    if os.name == "posix":
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["synthmob.pipeline"])
    else:  # pragma: no cover - Windows
        context = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, **kwargs)
    try:
        yield pool
    except BaseException:
        # An error or Ctrl-C: do not wait for queued calls; stop the workers now. The table of processes is
        # read after the shutdown (which empties the pool's reference to it, not the table): another thread
        # (the route tables' submitter) may have started one until then, and none can start after (CPython
        # 3.11, checked: processes start in submit() under the lock that shutdown() takes).
        table = getattr(pool, "_processes", None)  # the same dict even while empty
        pool.shutdown(wait=False, cancel_futures=True)
        processes = list(table.values()) if table is not None else []
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
        raise
    pool.shutdown(wait=True)


class _Dask:
    """A Dask cluster: the one at ``scheduler``, or (``"local"``) one of ``workers`` processes on this machine,
    started in the background while the world is built, and closed with :meth:`close`."""

    def __init__(self, distributed: Any, scheduler: str, workers: int) -> None:
        self.address = None if scheduler == "local" else scheduler
        self._cluster: Any = None
        self._client: Any = None
        self._starting: cf.ThreadPoolExecutor | None = None
        if self.address is None:
            self.workers = workers
            self._starting = cf.ThreadPoolExecutor(1, thread_name_prefix="synthmob-dask")
            self._started = self._starting.submit(self._start_local, distributed, workers)
        else:
            try:
                self._client = distributed.Client(scheduler, timeout="20s")
            except OSError as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise SynthmobError(
                    f"--scheduler: cannot connect to {scheduler} ({reason}); start a Dask scheduler there or give local"
                ) from None
            self.workers = len(self._client.scheduler_info().get("workers", {}))

    def _start_local(self, distributed: Any, workers: int) -> None:
        import dask

        # A worker's event loop shares the GIL with the shard it runs: its profiler samples the task's stack
        # every 10 ms and its monitors poll every 20-500 ms, which slows a SimPy shard (pure Python) by a
        # few per cent. Sampled less often here, and not profiled; nannies hand this to their workers.
        quiet = {
            "distributed.worker.profile.enabled": False,
            "distributed.admin.tick.interval": "1s",
            "distributed.worker.memory.monitor-interval": "1s",
            "distributed.admin.system-monitor.interval": "2s",
            # Nannies also set MALLOC_TRIM_THRESHOLD_ in their workers; :func:`keep_freed_memory`, called by
            # every worker on its first shard, overrides it there.
            #
            # A Dask worker runs its tasks in a thread, and glibc gives each thread its own arena, built of
            # 64 MB heaps that it unmaps again as they empty, whatever the thresholds: the records' arrays
            # are then faulted in afresh, as in a process without keep_freed_memory. One arena for the
            # process serves the task thread as the main thread of a pool worker is served.
            "distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": 1,
        }
        with dask.config.set(quiet):
            self._cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, silence_logs=logging.ERROR,
                dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # no dashboard
            )
        self._client = distributed.Client(self._cluster)

    @property
    def client(self) -> Any:
        if self._starting is not None:
            self._started.result()
        return self._client

    def close(self) -> None:
        if self._starting is not None:
            self._starting.shutdown(wait=True)  # a cluster still starting is closed once it is up
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    @contextmanager
    def send(self, job: Any, *, tasks: int) -> Iterator[Workers]:
        if self.address is not None:
            self._check_workers(job.staging)
        shared = self.client.scatter(job, broadcast=True, hash=False)
        executor = self.client.get_executor(pure=False)
        try:
            yield Workers(executor, shared, max(1, tasks))
        except BaseException:
            executor.shutdown(wait=False)  # cancels what has not run; a shard already running ends by itself
            raise
        else:
            executor.shutdown(wait=True)
        finally:
            shared.release()

    def _check_workers(self, staging: Path) -> None:
        """Refuse a cluster whose workers cannot see the staging folder or run another synthmob."""
        try:
            self.client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise SynthmobError(f"--scheduler {self.address}: no worker joined within 60 s; start dask workers") from None
        here = _worker_view(str(staging))[1]
        views = self.client.run(_worker_view, str(staging))
        self.workers = len(views)
        for worker, (sees, version) in sorted(views.items()):
            if not sees:
                raise SynthmobError(
                    f"--scheduler {self.address}: worker {worker} cannot see {staging}; the workers need the "
                    "output folder on a shared filesystem, at the same path"
                )
            if version != here:
                raise SynthmobError(
                    f"--scheduler {self.address}: worker {worker} runs {version}, this process {here}; "
                    "install the same versions on every worker"
                )


def _worker_view(staging: str) -> tuple[bool, str]:
    """Whether this process sees ``staging``, and the versions of synthmob and Faker (which draws names in
    the shards) it runs."""
    from importlib import metadata

    found = []
    for package in ("synthmob", "faker"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            found.append(f"{package} unknown")
    return Path(staging).is_dir(), ", ".join(found)


@contextmanager
def executor(*, workers: int, scheduler: str | None) -> Iterator[_Processes | _Dask]:
    """The workers of a run, kept for all its stages; a local Dask cluster is closed at the end.

    Parameters
    ----------
    workers
        Local processes; with ``scheduler="local"``, the Dask cluster's worker processes (one thread each).
        Ignored with a scheduler address: the cluster has the workers it has.
    scheduler
        ``None`` (this process, or a pool of local processes), ``"local"`` or ``"tcp://HOST:PORT"``.

    Yields
    ------
    An object whose ``send(job, tasks=n)`` context manager yields :class:`Workers` holding ``job``, and whose
    ``workers`` is the number of workers.
    """
    if scheduler is None:
        yield _Processes(workers)
        return
    cluster = _Dask(_distributed(), scheduler, workers)
    try:
        yield cluster
    finally:
        cluster.close()


# --- stages over shards, with completion markers ------------------------------------------------------------
def marker(work: Path, name: str) -> Path:
    """The file recording that step ``name`` (``shards-3``, ``calls`` ...) of a run is complete."""
    return work / "done" / f"{name}.json"


def mark(work: Path, name: str, result: dict) -> None:
    """Record that ``name`` is complete, with its result: atomically, so a marker is whole or absent."""
    path = marker(work, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(result), encoding="utf-8")
    os.replace(temporary, path)


def marked(work: Path, name: str) -> dict | None:
    """The result recorded for ``name``, or ``None`` when it is not complete."""
    try:
        return json.loads(marker(work, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _run_and_mark(job: Any, fn: Callable[[Any, int], dict], stage: str, index: int) -> dict:
    result = fn(job, index)
    mark(job.work, f"{stage}-{index}", result)
    return result


class Stages:
    """Runs each stage over every shard on ``workers``, skipping shards already marked complete."""

    def __init__(self, workers: Workers, work: Path, total: int) -> None:
        self.workers = workers
        self.work = work
        self.total = total
        self.seconds: dict[str, float] = {}  # time summed over shards (and so over workers), by step
        self.skipped: dict[str, int] = {}  # shards found complete, by stage

    def run(self, stage: str, fn: Callable[[Any, int], dict], notify: Notify) -> dict[str, dict[str, int]]:
        """Run ``fn(job, index)`` for each shard not yet complete; return rows per file for each table."""
        earlier = {i: marked(self.work, f"{stage}-{i}") for i in range(self.total)}
        earlier = {i: result for i, result in earlier.items() if result is not None}
        self.skipped[stage] = len(earlier)
        files: dict[str, dict[str, int]] = {}
        notify(stage, len(earlier), self.total)
        pending = [(fn, stage, i) for i in range(self.total) if i not in earlier]
        results = itertools.chain(earlier.values(), self.workers.results(_run_and_mark, pending))
        for done, result in enumerate(results, start=1):
            for name, rows in result.items():
                if name == "_seconds":
                    for step, seconds in rows.items():
                        self.seconds[step] = self.seconds.get(step, 0.0) + seconds
                else:
                    files.setdefault(name, {}).update(rows)
            if done > len(earlier):
                notify(stage, done, self.total)
        return {name: dict(sorted(rows.items())) for name, rows in files.items()}
