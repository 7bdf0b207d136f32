"""pytest fixtures for projects that test their pipelines on synthmob data.

Installed with synthmob as a pytest plugin, so in any test suite::

    def test_my_pipeline(synthmob_tiny):
        stays = synthmob_tiny.table("stays")      # a seeded, schema-stable run of the tiny preset
        ...

``synthmob_tiny`` is generated once per test session into pytest's temporary folder and is the same for
the same synthmob version. For another scenario, call :func:`synthmob.generate` in a fixture of your own.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synthmob_tiny(tmp_path_factory):
    """A :class:`synthmob.Run` of the ``tiny`` preset (about 50 cells, 100 subscribers, one day, seed 1)."""
    from synthmob.pipeline import generate

    return generate("tiny", out=tmp_path_factory.mktemp("synthmob") / "tiny")
