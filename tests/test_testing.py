"""The pytest plugin that other projects use: the ``synthmob_tiny`` fixture."""

from __future__ import annotations


def test_fixture_is_a_tiny_run(synthmob_tiny):
    assert synthmob_tiny.manifest["scenario"]["name"] == "tiny"
    assert synthmob_tiny.table("subscribers").num_rows == 100
    assert synthmob_tiny.table("stays").num_rows > 100


def test_fixture_matches_a_fresh_run(synthmob_tiny, tiny_run):
    for name in ("cells", "subscribers", "stays", "trips"):
        assert synthmob_tiny.table(name).equals(tiny_run.table(name)), name
