"""Disclosure control: threshold and complementary suppression, discrete Laplace noise, findings."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthmob.disclosure import BREAKDOWN, DEFAULT_K, TOTAL, Finding, findings, protect
from synthmob.errors import SynthmobError

AGES = ("0-17", "18-34", "35-64", "65+")
GENDERS = ("female", "male")


def make(groups: dict, *, keys=("zone_id",)) -> pa.Table:
    """A table of exact counts: ``{key tuple: {(age, gender): count}}``, with totals added."""
    rows = defaultdict(list)
    for key, cells in groups.items():
        for (age, gender), count in [((TOTAL, TOTAL), sum(cells.values())), *cells.items()]:
            for name, value in zip(keys, key):
                rows[name].append(value)
            rows["age_band"].append(age)
            rows["gender"].append(gender)
            rows["count"].append(count)
    return pa.table({**{k: rows[k] for k in keys}, "age_band": rows["age_band"], "gender": rows["gender"],
                     "count": pa.array(rows["count"], pa.int64())})


def released(table: pa.Table, keys=("zone_id",)) -> dict:
    """``{key: {(age, gender): count or None}}`` of a released table."""
    out = defaultdict(dict)
    for row in table.to_pylist():
        out[tuple(row[k] for k in keys)][(row["age_band"], row["gender"])] = row["count"]
    return dict(out)


# --- known answers --------------------------------------------------------------------------------------
def test_nothing_small_releases_everything_unchanged():
    t = make({(1,): {("18-34", "female"): 20, ("18-34", "male"): 30}})
    out, info = protect(t, keys=["zone_id"], k=15)
    assert released(out) == {(1,): {("all", "all"): 50, ("18-34", "female"): 20, ("18-34", "male"): 30}}
    assert info == {"suppressed": {"primary": 0, "complementary": 0, "totals": 0}, "noise": None}


def test_primary_and_one_complementary_cell():
    t = make({(1,): {("18-34", "female"): 3, ("18-34", "male"): 40, ("35-64", "female"): 25,
                     ("65+", "male"): 30}})
    out, info = protect(t, keys=["zone_id"], k=15)
    # 3 is small; the smallest released cell, 25, hides it: 98 - 40 - 30 = 28 > 15 over two cells.
    assert released(out)[(1,)] == {("all", "all"): 98, ("18-34", "female"): None, ("18-34", "male"): 40,
                                   ("35-64", "female"): None, ("65+", "male"): 30}
    assert info["suppressed"] == {"primary": 1, "complementary": 1, "totals": 0}


def test_two_small_cells_with_a_small_sum_need_a_third():
    t = make({(1,): {("18-34", "female"): 2, ("18-34", "male"): 4, ("35-64", "female"): 50,
                     ("65+", "male"): 60}})
    out, info = protect(t, keys=["zone_id"], k=15)
    # 2 + 4 = 6 <= 15 would be released by differencing: the smallest other cell (50) goes too.
    assert released(out)[(1,)] == {("all", "all"): 116, ("18-34", "female"): None, ("18-34", "male"): None,
                                   ("35-64", "female"): None, ("65+", "male"): 60}
    assert info["suppressed"] == {"primary": 2, "complementary": 1, "totals": 0}


def test_two_small_cells_with_a_large_sum_need_nothing_more():
    t = make({(1,): {("18-34", "female"): 10, ("18-34", "male"): 12, ("35-64", "female"): 50}})
    out, info = protect(t, keys=["zone_id"], k=15)
    assert released(out)[(1,)] == {("all", "all"): 72, ("18-34", "female"): None, ("18-34", "male"): None,
                                   ("35-64", "female"): 50}
    assert info["suppressed"] == {"primary": 2, "complementary": 0, "totals": 0}


def test_ties_are_broken_by_the_sort_order():
    t = make({(1,): {("65+", "male"): 30, ("18-34", "female"): 5, ("35-64", "male"): 30}})
    out, _ = protect(t, keys=["zone_id"], k=15)
    assert released(out)[(1,)] == {("all", "all"): 65, ("18-34", "female"): None, ("35-64", "male"): None,
                                   ("65+", "male"): 30}


def test_small_total_and_single_cell_groups():
    t = make({(1,): {("65+", "male"): 4}, (2,): {("65+", "male"): 40}, (3,): {("0-17", "female"): 5,
                                                                          ("65+", "male"): 6}})
    out, info = protect(t, keys=["zone_id"], k=15)
    assert released(out) == {(1,): {("all", "all"): None, ("65+", "male"): None},
                             (2,): {("all", "all"): 40, ("65+", "male"): 40},
                             (3,): {("all", "all"): None, ("0-17", "female"): None, ("65+", "male"): None}}
    assert info["suppressed"] == {"primary": 5, "complementary": 0, "totals": 0}


def test_total_is_suppressed_when_no_cells_can_protect_it():
    # A released total with a single small cell (possible with noise): suppressing every cell still leaves
    # one, so the total goes.
    t = pa.table({"zone_id": [1, 1, 2, 2, 2], "age_band": ["all", "0-17", "all", "0-17", "65+"],
                  "gender": ["all", "male", "all", "male", "male"], "count": pa.array([20, 3, 20, 3, 200], pa.int64())})
    out, info = protect(t, keys=["zone_id"], k=15)
    # Group 2 is protected by its other cell even though the total is smaller than the cells' sum.
    assert out["count"].to_pylist() == [None, None, 20, None, None]
    assert info["suppressed"] == {"primary": 2, "complementary": 1, "totals": 1}
    assert findings(out, keys=["zone_id"], k=15) == []


def test_output_is_sorted_total_first_and_keeps_key_types():
    t = make({(2, 7): {("65+", "male"): 30, ("0-17", "female"): 20}, (1, 9): {("18-34", "male"): 50}},
             keys=("zone_id", "hour"))
    t = t.cast(t.schema.set(0, pa.field("zone_id", pa.int32())))
    out, _ = protect(t, keys=["zone_id", "hour"], k=15)
    assert out.column_names == ["zone_id", "hour", "age_band", "gender", "count"]
    assert out.schema.field("zone_id").type == pa.int32() and out.schema.field("count").type == pa.int64()
    assert out.select(["zone_id", "hour", "age_band"]).to_pylist() == [
        {"zone_id": 1, "hour": 9, "age_band": "all"}, {"zone_id": 1, "hour": 9, "age_band": "18-34"},
        {"zone_id": 2, "hour": 7, "age_band": "all"}, {"zone_id": 2, "hour": 7, "age_band": "0-17"},
        {"zone_id": 2, "hour": 7, "age_band": "65+"}]


def test_k_zero_switches_suppression_off():
    t = make({(1,): {("65+", "male"): 1, ("0-17", "female"): 2}})
    out, info = protect(t, keys=["zone_id"], k=0)
    assert out["count"].to_pylist() == [3, 2, 1]
    assert info["suppressed"] == {"primary": 0, "complementary": 0, "totals": 0}
    assert findings(out, keys=["zone_id"], k=0) == []


def test_dictionary_and_null_keys():
    t = pa.table({"zone_id": pa.array(["b", "b", None, None]).dictionary_encode(), "age_band": ["all", "65+"] * 2,
                  "gender": ["all", "male"] * 2, "count": [20, 20, 3, 3]})
    out, _ = protect(t, keys=["zone_id"], k=15)
    assert out.schema.field("zone_id").type == t.schema.field("zone_id").type
    assert out.to_pydict()["count"] == [20, 20, None, None] and out["zone_id"].to_pylist() == ["b", "b", None, None]
    assert findings(out, keys=["zone_id"], k=15) == []


def test_default_k():
    assert DEFAULT_K == 15
    t = make({(1,): {("65+", "male"): 15, ("0-17", "female"): 16}})
    assert protect(t, keys=["zone_id"])[0]["count"].to_pylist() == [31, None, None]


# --- findings -------------------------------------------------------------------------------------------
def test_findings_name_small_counts_and_differencing():
    t = pa.table({"zone_id": [1, 1, 1, 2, 2, 2, 2], "age_band": ["all", "0-17", "65+", "all", "0-17", "18-34", "65+"],
                  "gender": ["all", "male", "male", "all", "male", "male", "male"],
                  "count": pa.array([40, None, 37, 50, None, None, 45], pa.int64())})
    found = findings(t, keys=["zone_id"], k=15)
    assert found == [Finding("differencing", {"zone_id": 1}, found[0].detail),
                     Finding("differencing", {"zone_id": 2}, found[1].detail)]
    assert "0-17" in found[0].detail and "= 3" in found[0].detail
    assert "2 suppressed cells" in found[1].detail and "= 5" in found[1].detail
    small = findings(pa.table({"zone_id": [3], "age_band": ["all"], "gender": ["all"], "count": [3]}),
                     keys=["zone_id"], k=15)
    assert [(f.rule, f.group) for f in small] == [("small_count", {"zone_id": 3})]
    assert "count 3 <= k=15" in small[0].detail


def test_suppressed_total_allows_released_cells():
    t = pa.table({"zone_id": [1, 1, 1], "age_band": ["all", "0-17", "65+"], "gender": ["all", "male", "male"],
                  "count": pa.array([None, None, 37], pa.int64())})
    assert findings(t, keys=["zone_id"], k=15) == []


# --- properties -----------------------------------------------------------------------------------------
COMBOS = [(a, g) for a in AGES for g in GENDERS]


@st.composite
def tables(draw):
    n = draw(st.integers(1, 6))
    groups = {}
    for zone in range(n):
        chosen = draw(st.lists(st.sampled_from(COMBOS), min_size=1, max_size=len(COMBOS), unique=True))
        groups[(zone,)] = {c: draw(st.integers(1, 60)) for c in chosen}
    return groups, draw(st.integers(1, 20))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_protect_always_obeys_the_rule(case):
    groups, k = case
    out, info = protect(make(groups), keys=["zone_id"], k=k)
    assert findings(out, keys=["zone_id"], k=k) == []
    result = released(out)
    n_null = 0
    for key, cells in groups.items():
        exact = {(TOTAL, TOTAL): sum(cells.values()), **cells}
        got = result[key]
        assert set(got) == set(exact)
        for combo, value in got.items():  # released values are the exact ones, and never small
            n_null += value is None
            assert value is None or (value == exact[combo] and value > k)
        if got[(TOTAL, TOTAL)] is not None:
            hidden = [combo for combo in cells if got[combo] is None]
            # No single suppressed cell is total minus the released ones, and the hidden sum is not small.
            assert len(hidden) != 1
            assert not hidden or sum(exact[c] for c in hidden) > k
            # Without noise at most one cell is added to the small ones.
            assert len(hidden) - sum(exact[c] <= k for c in cells) <= 1
    assert n_null == sum(info["suppressed"].values())


@settings(max_examples=100, deadline=None)
@given(tables())
def test_protect_is_deterministic_and_independent_of_row_order(case):
    groups, k = case
    t = make(groups)
    shuffled = t.take(np.random.default_rng(k).permutation(t.num_rows))
    assert protect(t, keys=["zone_id"], k=k)[0].equals(protect(shuffled, keys=["zone_id"], k=k)[0])


# --- differential privacy -------------------------------------------------------------------------------
def _discrete_laplace(scale: float) -> tuple[float, float]:
    """Mean absolute value and variance of P(x) ∝ exp(-|x| / scale) on the integers."""
    q = math.exp(-1 / scale)
    return 2 * q / (1 - q * q), 2 * q / (1 - q) ** 2


def test_noise_has_the_discrete_laplace_scale():
    pytest.importorskip("opendp")
    n_groups, epsilon, sensitivity = 1000, 0.5, 2
    groups = {(z,): {c: 1000 + z % 7 for c in COMBOS} for z in range(n_groups)}
    t = make(groups)
    out, info = protect(t, keys=["zone_id"], k=0, epsilon=epsilon, sensitivity=sensitivity)
    scale = sensitivity / epsilon
    assert info["noise"]["scale"] == pytest.approx(scale, rel=1e-12) and info["noise"]["unit"] == "subscriber-day"
    assert info["noise"]["library"].startswith("opendp ") and info["noise"]["epsilon"] == epsilon
    exact = np.array(protect(t, keys=["zone_id"], k=0)[0]["count"].to_pylist())
    noise = np.array(out["count"].to_pylist()) - exact
    mad, var = _discrete_laplace(scale)
    n = len(noise)  # 9000; counts are far from 0, so none is clamped
    assert abs(np.abs(noise).mean() - mad) < 5 * math.sqrt(var - mad**2) / math.sqrt(n)
    # Var of the sample variance: (E x^4 - var^2) / n; E x^4 = 24 scale^4 for large scale, bound it by that.
    assert abs(noise.var() - var) < 5 * math.sqrt((24 * scale**4 - var**2) / n)
    assert abs(noise.mean()) < 5 * math.sqrt(var / n)


def test_noise_completes_groups_with_zero_cells_and_keeps_the_rule():
    pytest.importorskip("opendp")
    groups = {(0,): {("0-17", "male"): 40}, (1,): {("65+", "female"): 30, ("18-34", "male"): 25}}
    out, info = protect(make(groups), keys=["zone_id"], k=5, epsilon=1.0, sensitivity=2)
    # Every group gets every age band and gender seen anywhere (here 3 × 2 cells) plus its total.
    assert out.num_rows == 2 * (1 + 3 * 2)
    assert findings(out, keys=["zone_id"], k=5) == []
    values = [v for v in out["count"].to_pylist() if v is not None]
    assert all(v > 5 for v in values)
    assert info["noise"]["mechanism"].startswith("discrete Laplace")


def test_without_epsilon_counts_are_exact():
    groups = {(z,): {c: 16 + z + i for i, c in enumerate(COMBOS)} for z in range(5)}
    out, info = protect(make(groups), keys=["zone_id"], k=15)
    assert info["noise"] is None
    assert released(out) == {key: {(TOTAL, TOTAL): sum(c.values()), **c} for key, c in groups.items()}


# --- bad input ------------------------------------------------------------------------------------------
GOOD = pa.table({"zone_id": [1, 1], "age_band": ["all", "65+"], "gender": ["all", "male"], "count": [20, 20]})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"k": -1}, "k: got -1"),
    ({"k": 2.5}, "k: got 2.5"),
    ({"k": True}, "k: got True"),
    ({"epsilon": 0}, "epsilon: got 0"),
    ({"epsilon": float("nan"), "sensitivity": 1}, "epsilon: got nan"),
    ({"epsilon": 1.0}, "sensitivity: got None"),
    ({"epsilon": 1.0, "sensitivity": 1.5}, "sensitivity: got 1.5"),
    ({"epsilon": 1.0, "sensitivity": -2}, "sensitivity: got -2"),
    ({"keys": "zone_id"}, "keys: got 'zone_id'"),
    ({"keys": ["zone", "hour"]}, "table: no column 'zone', 'hour'"),
    ({"keys": ["gender"]}, "keys: got ['gender']"),
])
def test_bad_arguments(kwargs, message):
    kwargs = {"keys": ["zone_id"], **kwargs}
    with pytest.raises(SynthmobError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        protect(GOOD, **kwargs)


@pytest.mark.parametrize(("table", "message"), [
    (GOOD.drop_columns(["gender"]), "no column 'gender'"),
    (GOOD.set_column(3, "count", pa.array([20, -1])), "null or negative"),
    (GOOD.set_column(3, "count", pa.array([20.0, 1.0])), "must hold integers"),
    (pa.table({"zone_id": [1, 1], "age_band": ["65+", "65+"], "gender": ["male", "male"], "count": [20, 20]}),
     "appears twice"),
    (pa.table({"zone_id": [1], "age_band": ["all"], "gender": ["male"], "count": [20]}), "only one of them"),
])
def test_bad_tables(table, message):
    with pytest.raises(SynthmobError, match=message):
        protect(table, keys=["zone_id"])
    if "negative" not in message:
        with pytest.raises(SynthmobError, match=message):
            findings(table, keys=["zone_id"], k=15)


def test_findings_bad_k():
    with pytest.raises(SynthmobError, match="k: got 'x'"):
        findings(GOOD, keys=["zone_id"], k="x")


def test_breakdown_names():
    assert BREAKDOWN == ("age_band", "gender") and TOTAL == "all"
