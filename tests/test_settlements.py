"""Settlement sizes (rank-size rule) and Clark's exponential density, against known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthmob.scenario import load_scenario
from synthmob.settlements import Settlements, place_settlements


def world_config(name: str, **settlements):
    overrides = {"world": {"settlements": settlements}} if settlements else None
    return load_scenario(name, overrides=overrides).world


def one_settlement(population: float, d0: float, rural: float = 0.0, x: float = 0.0, y: float = 0.0) -> Settlements:
    b_m = np.sqrt(population / (2 * np.pi * d0)) * 1000.0
    return Settlements(
        kind=np.array(["town"], dtype=object),
        rank=np.array([1]),
        population=np.array([population]),
        x_m=np.array([x]),
        y_m=np.array([y]),
        central_density_per_km2=np.array([d0]),
        scale_m=np.array([b_m]),
        rural_density_per_km2=rural,
    )


# --- sizes ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tiny", "city", "region"])
def test_sizes_follow_the_rank_size_rule(name):
    cfg = world_config(name)
    s = place_settlements(cfg, rng=np.random.default_rng(0))
    ranks = sorted(r for g in cfg.settlements.groups for r in range(g.from_rank, g.from_rank + g.count))
    assert s.rank.tolist() == ranks
    expected = cfg.settlements.largest_population * np.asarray(ranks, dtype=float) ** -cfg.settlements.zipf_exponent
    np.testing.assert_allclose(s.population, expected, rtol=1e-12)
    assert np.all(np.diff(s.population) < 0)  # largest first


def test_rank_size_with_another_exponent_and_groups():
    groups = [
        {"kind": "village", "count": 3, "from_rank": 40},
        {"kind": "city", "count": 1, "from_rank": 1},
        {"kind": "town", "count": 2, "from_rank": 5},
    ]
    cfg = world_config("city", zipf_exponent=0.8, largest_population=1_000_000, groups=groups)
    s = place_settlements(cfg, rng=np.random.default_rng(1))
    assert s.rank.tolist() == [1, 5, 6, 40, 41, 42]
    assert s.kind.tolist() == ["city", "town", "town", "village", "village", "village"]
    np.testing.assert_allclose(s.population, 1e6 * np.array([1, 5, 6, 40, 41, 42], dtype=float) ** -0.8, rtol=1e-12)
    # P_r / P_s = (s / r)^a exactly
    assert s.population[1] / s.population[3] == pytest.approx((40 / 5) ** 0.8, rel=1e-12)


def test_central_density_and_scale_follow_clark():
    cfg = world_config("region")
    s = place_settlements(cfg, rng=np.random.default_rng(2))
    d100k = cfg.settlements.central_density_per_km2
    np.testing.assert_allclose(s.central_density_per_km2, d100k * (s.population / 1e5) ** 0.25, rtol=1e-12)
    b_km = s.scale_m / 1000.0
    np.testing.assert_allclose(2 * np.pi * s.central_density_per_km2 * b_km**2, s.population, rtol=1e-12)
    # A larger settlement is both denser and wider.
    assert np.all(np.diff(s.central_density_per_km2) < 0)
    assert np.all(np.diff(s.scale_m) < 0)


@pytest.mark.parametrize("name,seed", [("tiny", 0), ("city", 3), ("region", 4)])
def test_placement_inside_the_region_and_largest_near_the_middle(name, seed):
    cfg = world_config(name)
    s = place_settlements(cfg, rng=np.random.default_rng(seed))
    w, h = cfg.width_km * 1000, cfg.height_km * 1000
    assert np.all((s.x_m >= 0) & (s.x_m <= w) & (s.y_m >= 0) & (s.y_m <= h))
    assert abs(s.x_m[0] - w / 2) <= 0.1 * w + 1e-9
    assert abs(s.y_m[0] - h / 2) <= 0.1 * h + 1e-9


def test_placement_is_a_function_of_the_seed():
    cfg = world_config("region")
    a = place_settlements(cfg, rng=np.random.default_rng(9))
    b = place_settlements(cfg, rng=np.random.default_rng(9))
    c = place_settlements(cfg, rng=np.random.default_rng(10))
    assert np.array_equal(a.x_m, b.x_m) and np.array_equal(a.y_m, b.y_m)
    assert not np.array_equal(a.x_m, c.x_m)


# --- density -------------------------------------------------------------------------------------------------
def test_density_known_values():
    s = one_settlement(50_000, 3000.0, rural=40.0, x=1000.0, y=2000.0)
    b = s.scale_m[0]
    assert s.density(1000.0, 2000.0) == pytest.approx(3040.0, rel=1e-12)
    assert s.density(1000.0 + b, 2000.0) == pytest.approx(40.0 + 3000.0 / np.e, rel=1e-12)
    assert s.density(1000.0, 2000.0 - 2 * b) == pytest.approx(40.0 + 3000.0 * np.exp(-2), rel=1e-12)
    # Densities of several settlements add up.
    two = Settlements(
        kind=np.array(["town", "town"], dtype=object),
        rank=np.array([1, 2]),
        population=np.array([50_000.0, 50_000.0]),
        x_m=np.array([0.0, 2 * b]),
        y_m=np.array([0.0, 0.0]),
        central_density_per_km2=np.array([3000.0, 3000.0]),
        scale_m=np.array([b, b]),
        rural_density_per_km2=40.0,
    )
    assert two.density(b, 0.0) == pytest.approx(40.0 + 2 * 3000.0 / np.e, rel=1e-12)


@pytest.mark.parametrize("name,seed", [("tiny", 0), ("city", 1), ("region", 2)])
def test_density_peaks_at_centres_and_tends_to_rural_far_away(name, seed):
    cfg = world_config(name)
    s = place_settlements(cfg, rng=np.random.default_rng(seed))
    angles = np.linspace(0.0, 2 * np.pi, 8, endpoint=False)
    for i in range(len(s.population)):
        centre = s.density(s.x_m[i], s.y_m[i])
        assert centre > s.rural_density_per_km2 + 0.99 * s.central_density_per_km2[i]
        away = s.density(s.x_m[i] + s.scale_m[i] * np.cos(angles), s.y_m[i] + s.scale_m[i] * np.sin(angles))
        assert np.all(centre > away), (name, i)
    far = s.density(np.array([1e8, -1e8, 0.0]), np.array([0.0, 1e8, -1e8]))
    np.testing.assert_allclose(far, cfg.settlements.rural_density_per_km2, rtol=1e-9)
    assert np.all(s.density(np.array([5e5, 1e6]), np.array([5e5, 1e6])) >= cfg.settlements.rural_density_per_km2)


@settings(max_examples=25, deadline=None)
@given(
    population=st.floats(1e3, 5e6),
    d0=st.floats(200.0, 20_000.0),
    r1=st.floats(0.0, 1e5),
    dr=st.floats(1.0, 1e5),
    angle=st.floats(0.0, 2 * np.pi),
)
def test_density_decreases_monotonically_from_an_isolated_centre(population, d0, r1, dr, angle):
    s = one_settlement(population, d0, rural=25.0)
    c, si = np.cos(angle), np.sin(angle)
    near = s.density(r1 * c, r1 * si)
    further = s.density((r1 + dr) * c, (r1 + dr) * si)
    assert further <= near
    assert further >= 25.0


@pytest.mark.parametrize("population", [10_000.0, 600_000.0, 1_500_000.0])
def test_integrated_density_equals_population(population):
    """Clark's model: the integral of D0 exp(-r/b) over the plane is 2π D0 b² = P."""
    cfg = world_config("city", largest_population=int(population), groups=[{"kind": "city", "count": 1, "from_rank": 1}])
    s = place_settlements(cfg, rng=np.random.default_rng(0))
    s = Settlements(**{**s.__dict__, "rural_density_per_km2": 0.0, "x_m": np.array([0.0]), "y_m": np.array([0.0])})
    b = s.scale_m[0]
    half, step = 15 * b, b / 40.0
    axis = np.arange(-half + step / 2, half, step)
    gx, gy = np.meshgrid(axis, axis)
    total = s.density(gx, gy).sum() * (step / 1000.0) ** 2
    assert total == pytest.approx(population, rel=0.02)
    # The rural background adds exactly its density times the area.
    s2 = Settlements(**{**s.__dict__, "rural_density_per_km2": 100.0})
    extra = s2.density(gx, gy).sum() * (step / 1000.0) ** 2 - total
    assert extra == pytest.approx(100.0 * (2 * half / 1000.0) ** 2, rel=1e-6)
