"""The synthetic population: shares against the configuration, home and work places, the radiation model."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthmob import schema
from synthmob.cellgraph import urbanity
from synthmob.population import NO_CELL, Population, radiation, synthesise
from synthmob.scenario import load_scenario
from synthmob.world import build_world

N = 20_000
Z = 4.0  # standard errors allowed for a sampled share


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(
        "tiny", overrides={"subscribers": N, "shard_size": 3000, "population": {"work_model": "radiation"}}
    )


@pytest.fixture(scope="module")
def pop(scenario, tiny_world):
    return synthesise(scenario, tiny_world, rng=np.random.default_rng(11))


@pytest.fixture(scope="module")
def city():
    s = load_scenario("city", overrides={"subscribers": N, "population": {"work_model": "radiation"}})
    w = build_world(s.world, rng=np.random.default_rng(3))
    return s, w, synthesise(s, w, rng=np.random.default_rng(4))


def assert_share(count: int, total: int, p: float, what: str = "") -> None:
    se = np.sqrt(p * (1 - p) / total)
    assert abs(count / total - p) <= Z * se + 1e-12, (what, count / total, p, se)


# --- who ----------------------------------------------------------------------------------------------------
def test_size_ids_and_shards(pop, scenario):
    assert len(pop) == N
    np.testing.assert_array_equal(pop.subscriber_id, np.arange(N))
    np.testing.assert_array_equal(pop.shard, np.arange(N) // scenario.shard_size)
    part = pop.slice(3000, 3010)
    assert isinstance(part, Population) and len(part) == 10
    assert part.subscriber_id.tolist() == list(range(3000, 3010))


def test_age_and_gender_shares_match_the_pyramid(pop, scenario):
    pyramid = scenario.population.pyramid
    total = sum(b.female + b.male for b in pyramid)
    seen = set(zip(pop.age_band.tolist(), pop.gender.tolist()))
    assert seen <= {(b.age_band, g) for b in pyramid for g in schema.GENDERS}
    for band in pyramid:
        for gender, share in (("female", band.female), ("male", band.male)):
            count = int(np.sum((pop.age_band == band.age_band) & (pop.gender == gender)))
            assert_share(count, N, share / total, f"{band.age_band} {gender}")


def test_age_and_gender_with_a_custom_pyramid(tiny_world):
    pyramid = [{"age_band": "18-29", "female": 3.0, "male": 0.0}, {"age_band": "30+", "female": 1.0, "male": 4.0}]
    personas = {"18-29": {"student": 1.0}, "30+": {"commuter": 1.0, "home_based": 3.0}}
    s = load_scenario(
        "tiny",
        overrides={"subscribers": 10_000, "population": {"pyramid": pyramid, "personas": personas, "visitor_share": 0.0}},
    )
    pop = synthesise(s, tiny_world, rng=np.random.default_rng(0))
    young = pop.age_band == "18-29"
    assert np.all(pop.gender[young] == "female")  # a zero share never occurs
    assert_share(int(young.sum()), len(pop), 3 / 8)
    assert_share(int(np.sum(~young & (pop.gender == "male"))), len(pop), 4 / 8)
    assert set(pop.persona[young].tolist()) == {"student"}
    assert set(pop.persona[~young].tolist()) == {"commuter", "home_based"}
    assert_share(int(np.sum(pop.persona[~young] == "commuter")), int((~young).sum()), 0.25)


def test_personas_only_from_the_allowed_set_and_in_proportion(pop, scenario):
    cfg = scenario.population
    visitor = pop.persona == "visitor"
    assert_share(int(visitor.sum()), N, cfg.visitor_share, "visitor")
    for band, weights in cfg.personas.items():
        members = pop.age_band == band
        allowed = set(weights) | {"visitor"}
        assert set(pop.persona[members].tolist()) <= allowed, band
        residents = members & ~visitor
        total = sum(weights.values())
        for persona, w in weights.items():
            count = int(np.sum(pop.persona[residents] == persona))
            assert_share(count, int(residents.sum()), w / total, f"{band} {persona}")
    # 65+ are never students or shift workers in the default weights.
    old = pop.age_band == "65+"
    assert not np.isin(pop.persona[old], ["student", "shift_worker"]).any()


def test_who_has_a_work_cell(pop, tiny_world):
    anchored = np.isin(pop.persona, ["commuter", "shift_worker", "student"])
    assert np.all(pop.work_cell[anchored] >= 0)
    assert np.all(pop.work_cell[anchored] < tiny_world.n_cells)
    assert np.all(pop.work_cell[~anchored] == NO_CELL)
    assert set(pop.persona[~anchored].tolist()) <= {"home_based", "visitor"}
    # The radiation model never sends anyone to their own cell.
    assert not np.any(pop.work_cell[anchored] == pop.home_cell[anchored])


def test_cars(pop):
    assert not pop.car[pop.persona == "visitor"].any()
    residents = pop.persona == "commuter"
    share = pop.car[residents].mean()
    assert 0.4 < share < 0.9  # between the urban (0.45) and rural (0.85) ownership rates


def test_cars_follow_urbanity(city):
    scenario, world, pop = city
    travel = scenario.world.travel
    residents = ~np.isin(pop.persona, ["visitor", "student"])  # students may be treated apart
    p = travel.car_ownership_rural + (travel.car_ownership_urban - travel.car_ownership_rural) * urbanity(
        world.density_per_km2[pop.home_cell[residents]]
    )
    cars = pop.car[residents]
    # Poisson-binomial: the count of car owners against its expectation.
    assert abs(cars.sum() - p.sum()) <= Z * np.sqrt(np.sum(p * (1 - p)))
    urban, rural = p < np.quantile(p, 0.25), p > np.quantile(p, 0.75)
    assert cars[rural].mean() > cars[urban].mean() + 0.1
    assert abs(cars[urban].sum() - p[urban].sum()) <= Z * np.sqrt(np.sum(p[urban] * (1 - p[urban])))


# --- where ---------------------------------------------------------------------------------------------------
def test_home_cells_in_proportion_to_residents(pop, tiny_world):
    residents = pop.persona != "visitor"
    n = int(residents.sum())
    counts = np.bincount(pop.home_cell[residents], minlength=tiny_world.n_cells)
    p = tiny_world.residents / tiny_world.residents.sum()
    for c in np.argsort(p)[::-1][:8]:
        assert_share(int(counts[c]), n, float(p[c]), f"cell {c}")
    # Over all cells: chi-square well within its range (df = n_cells - 1).
    chi2 = float(np.sum((counts - n * p) ** 2 / (n * p)))
    df = tiny_world.n_cells - 1
    assert chi2 < df + 6 * np.sqrt(2 * df)


def test_visitors_lodge_where_the_jobs_are(city):
    _, world, pop = city
    visitor = pop.persona == "visitor"
    n = int(visitor.sum())
    assert n > 200
    p = world.jobs / world.jobs.sum()
    top = np.argsort(p)[::-1][:50]
    assert_share(int(np.isin(pop.home_cell[visitor], top).sum()), n, float(p[top].sum()), "visitor top cells")


def test_radiation_prefers_near_destinations(city):
    _, world, pop = city
    anchored = pop.work_cell >= 0
    home, work = pop.home_cell[anchored], pop.work_cell[anchored]
    commute = np.hypot(world.x_m[home] - world.x_m[work], world.y_m[home] - world.y_m[work])
    dx = world.x_m[home][:, None] - world.x_m[None, :]
    dy = world.y_m[home][:, None] - world.y_m[None, :]
    to_random = np.hypot(dx, dy).mean()
    assert commute.mean() < 0.4 * to_random
    # Even against destinations drawn by jobs alone (no distance effect).
    to_jobs = (np.hypot(dx, dy) * world.jobs).sum(axis=1).mean() / world.jobs.sum()
    assert commute.mean() < 0.4 * to_jobs


def test_gravity_model_is_also_distance_decaying(city):
    _, w, _ = city
    s = load_scenario("city", overrides={"subscribers": 3000, "population": {"work_model": "gravity"}})
    pop = synthesise(s, w, rng=np.random.default_rng(0))
    a = pop.work_cell >= 0
    h, k = pop.home_cell[a], pop.work_cell[a]
    commute = np.hypot(w.x_m[h] - w.x_m[k], w.y_m[h] - w.y_m[k]).mean()
    rand = np.hypot(w.x_m[h][:, None] - w.x_m[None, :], w.y_m[h][:, None] - w.y_m[None, :]).mean()
    assert commute < 0.6 * rand
    assert not np.any(h == k), "work is somewhere else than home"


# --- radiation model: known answers --------------------------------------------------------------------------
def test_radiation_docstring_case():
    p = radiation(0, np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 1.0]))
    np.testing.assert_allclose(p, [0.0, 1 / 2, 1 / 6], rtol=1e-12)


def test_radiation_intervening_opportunities_matter():
    # j=3 at the same distance in both; a big cell in between (j=1) absorbs most of the flow.
    d = np.array([0.0, 1.0, 2.0, 3.0])
    small = radiation(0, d, np.array([2.0, 1.0, 1.0, 1.0]))
    big = radiation(0, d, np.array([2.0, 10.0, 1.0, 1.0]))
    # m = 2: P_j = m n_j / ((m + s_j)(m + n_j + s_j))
    np.testing.assert_allclose(small, [0, 2 / (2 * 3), 2 / (3 * 4), 2 / (4 * 5)], rtol=1e-12)
    np.testing.assert_allclose(big, [0, 20 / (2 * 12), 2 / (12 * 13), 2 / (13 * 14)], rtol=1e-12)
    assert big[3] < small[3] / 5


def test_radiation_depends_on_rank_not_distance():
    opp = np.array([3.0, 1.0, 2.0, 4.0])
    a = radiation(0, np.array([0.0, 1.0, 2.0, 3.0]), opp)
    b = radiation(0, np.array([0.0, 5.0, 70.0, 900.0]), opp)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_radiation_with_the_origin_not_first_in_index_order():
    # Cells 0, 1, 2 at distances 4, 0, 1 from the origin (cell 1), which has 2 opportunities.
    p = radiation(1, np.array([4.0, 0.0, 1.0]), np.array([5.0, 2.0, 3.0]))
    # Nearest is cell 2 (s=0): 2*3/(2*5); then cell 0 (s=3): 2*5/(5*10)
    np.testing.assert_allclose(p, [10 / 50, 0.0, 6 / 10], rtol=1e-12)


def test_radiation_equidistant_cells_are_treated_alike():
    """s_ij counts opportunities *strictly* closer than j: two cells at the same distance are equivalent."""
    p = radiation(0, np.array([0.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0]))
    assert p[1] == pytest.approx(p[2], rel=1e-12)
    np.testing.assert_allclose(p, [0.0, 0.5, 0.5], rtol=1e-12)


def test_radiation_from_an_empty_origin_still_sends():
    """The docstring promises that an origin without opportunities still sends (m is floored)."""
    p = radiation(0, np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 1.0]))
    assert np.all(np.isfinite(p))
    assert p[0] == 0.0 and p[1] > p[2] > 0.0
    m = 1e-3 * 2 / 3
    np.testing.assert_allclose(p[1:], [m / ((m + 0) * (m + 1)), m / ((m + 1) * (m + 2))], rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    opp=st.lists(st.floats(1.0, 1000.0), min_size=2, max_size=30),  # >= the floor of m
    seed=st.integers(0, 2**32 - 1),
)
def test_radiation_total_is_one_minus_own_share(opp, seed):
    """With distinct distances the radiation sum telescopes: Σ_j P_ij = 1 - m_i / Σ_k m_k."""
    opp = np.asarray(opp)
    rng = np.random.default_rng(seed)
    src = int(rng.integers(len(opp)))
    d = rng.permutation(len(opp)).astype(float) + rng.uniform(0.0, 0.5, len(opp))
    d[src] = -1.0  # the origin is the nearest
    d -= d.min()
    p = radiation(src, d, opp)
    assert p[src] == 0.0
    assert np.all(p[np.arange(len(opp)) != src] > 0)
    assert p.sum() == pytest.approx(1.0 - opp[src] / opp.sum(), rel=1e-9)
    # The nearest other cell is the likeliest per opportunity.
    order = np.argsort(d)[1:]
    per_opportunity = p[order] / opp[order]
    assert np.all(np.diff(per_opportunity) < 1e-12)


# --- reproducibility and output ------------------------------------------------------------------------------
def test_same_seed_same_population(scenario, tiny_world, pop):
    again = synthesise(scenario, tiny_world, rng=np.random.default_rng(11))
    for field in Population.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(again, field), getattr(pop, field), err_msg=field)
    other = synthesise(scenario, tiny_world, rng=np.random.default_rng(12))
    assert not np.array_equal(other.home_cell, pop.home_cell)


def test_to_table_matches_the_schema(pop):
    table = pop.to_table()
    assert table.schema.equals(schema.POPULATION)
    assert table.num_rows == N
    work = table["work_cell"]
    assert work.null_count == int(np.sum(pop.work_cell == NO_CELL))
    np.testing.assert_array_equal(pc_is_null(work), pop.work_cell == NO_CELL)
    np.testing.assert_array_equal(work.to_numpy(zero_copy_only=False)[pop.work_cell >= 0], pop.work_cell[pop.work_cell >= 0])
    assert table["persona"].to_pylist() == pop.persona.tolist()
    np.testing.assert_array_equal(table["home_cell"].to_numpy(), pop.home_cell)
    for name in ("subscriber_id", "shard", "age_band", "gender", "home_cell", "car"):
        assert table[name].null_count == 0


def pc_is_null(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.is_null().to_pylist())
