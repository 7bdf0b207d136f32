"""Shared fixtures: a tiny world and a tiny generated run, built once per test session."""

from __future__ import annotations

import numpy as np
import pytest

import synthmob
from synthmob.calendar import Calendar
from synthmob.population import synthesise
from synthmob.scenario import load_scenario
from synthmob.world import build_world


@pytest.fixture(scope="session")
def tiny_scenario():
    return load_scenario("tiny")


@pytest.fixture(scope="session")
def tiny_world(tiny_scenario):
    return build_world(tiny_scenario.world, rng=np.random.default_rng(0))


@pytest.fixture(scope="session")
def tiny_population(tiny_scenario, tiny_world):
    return synthesise(tiny_scenario, tiny_world, rng=np.random.default_rng(1))


@pytest.fixture(scope="session")
def tiny_calendar(tiny_scenario):
    return Calendar.create(tiny_scenario.start, tiny_scenario.days, tiny_scenario.timezone)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The ``tiny`` preset generated once, read-only for tests."""
    return synthmob.generate("tiny", out=tmp_path_factory.mktemp("runs") / "tiny")


@pytest.fixture(scope="session")
def week_run(tmp_path_factory):
    """A small city over a week that crosses the change to summer time (2026-03-29 in Europe/Berlin)."""
    return synthmob.generate(
        "city", out=tmp_path_factory.mktemp("runs") / "week", subscribers=300, shard_size=100, days=7
    )


@pytest.fixture
def in_threads():
    """Run ``target(*args)`` for each ``args`` in its own thread, switching threads as often as Python
    allows; return the exceptions they raised (a race shows up as one)."""
    import sys
    import threading

    def run(target, calls) -> list[BaseException]:
        errors: list[BaseException] = []

        def guarded(*args) -> None:
            try:
                target(*args)
            except BaseException as exc:  # noqa: BLE001 - returned to the test
                errors.append(exc)

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            threads = [threading.Thread(target=guarded, args=args) for args in calls]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            sys.setswitchinterval(interval)
        return errors

    return run
