"""Fits recover the parameters of samples drawn from the known distribution, inside their 95 % intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthmob.fits import (
    Fit,
    exploration,
    growth_exponent,
    power_law,
    truncated_power_law,
    weibull,
    zipf_rank,
)


def inside(fit: Fit, name: str, truth: float) -> bool:
    low, high = fit.ci[name]
    return low <= truth <= high


def power_law_sample(rng, n, alpha, x_min):
    """Inverse CDF: x = x_min · u^(-1/(α-1))."""
    return x_min * rng.random(n) ** (-1.0 / (alpha - 1.0))


def truncated_sample(rng, n, beta, kappa, offset, x_min):
    """Exact rejection: (x + offset) from a power law on [x_min + offset, ∞), kept w.p. e^-(x - x_min)/κ."""
    kept = np.empty(0)
    while kept.size < n:
        x = power_law_sample(rng, 4 * n, beta, x_min + offset) - offset
        kept = np.r_[kept, x[rng.random(x.size) < np.exp(-(x - x_min) / kappa)]]
    return kept[:n]


# --- power law ----------------------------------------------------------------------------------------


def test_power_law_hand_computed():
    # Σ ln(x/x_min) = ln 2 + ln 4 + ln 8 = 6 ln 2; α̂ = 1 + 3 / (6 ln 2); 0.5 is below x_min and ignored.
    fit = power_law([2.0, 4.0, 8.0, 0.5], x_min=1.0)
    total = 6 * math.log(2)
    assert fit.n == 3 and fit.x_min == 1.0
    assert fit.params["alpha"] == pytest.approx(1 + 3 / total)
    assert fit.log_likelihood == pytest.approx(3 * math.log(3 / total) - (1 + 3 / total) * total)
    low, high = fit.ci["alpha"]
    assert low < fit.params["alpha"] < high


def test_power_law_recovers_alpha():
    x = power_law_sample(np.random.default_rng(0), 5000, 2.5, 2.0)
    fit = power_law(x, x_min=2.0)
    assert inside(fit, "alpha", 2.5)
    assert fit.params["alpha"] == pytest.approx(2.5, abs=0.06)
    # For large n the exact interval matches the asymptotic α̂ ± 1.96 (α̂-1)/√n.
    se = (fit.params["alpha"] - 1) / math.sqrt(fit.n)
    assert fit.ci["alpha"][1] - fit.ci["alpha"][0] == pytest.approx(2 * 1.96 * se, rel=0.01)


def test_power_law_interval_covers_truth_about_95_percent():
    seeds = np.random.SeedSequence(2024).spawn(200)
    covered = sum(
        inside(power_law(power_law_sample(np.random.default_rng(s), 100, 1.75, 1.0), x_min=1.0), "alpha", 1.75)
        for s in seeds
    )
    assert 180 <= covered <= 198


@pytest.mark.parametrize(
    ("x", "x_min", "message"),
    [
        ([], 1.0, "empty"),
        ([0.1, 0.5], 1.0, "no value is >= x_min"),
        ([1.0, -2.0, 3.0], 1.0, "must be > 0"),
        ([1.0, 0.0], 1.0, "must be > 0"),
        ([1.0, float("nan")], 1.0, "NaN"),
        ([1.0, 2.0], 0.0, "x_min"),
        ([1.0, 1.0], 1.0, "equals x_min"),
    ],
)
def test_power_law_rejects_bad_input(x, x_min, message):
    with pytest.raises(ValueError, match=message):
        power_law(x, x_min=x_min)


# --- truncated power law ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("beta", "kappa", "offset", "x_min", "seed"),
    [
        (1.75, 80.0, 1.5, 0.01, 1),  # jump lengths (González et al. 2008), km
        (1.8, 17.0, 0.0, 0.1, 2),  # waiting times Δt^-(1+0.8) e^(-Δt/τ) (Song et al. 2010), h
    ],
)
def test_truncated_power_law_recovers_parameters(beta, kappa, offset, x_min, seed):
    x = truncated_sample(np.random.default_rng(seed), 4000, beta, kappa, offset, x_min)
    fit = truncated_power_law(x, x_min=x_min, offset=offset)
    assert inside(fit, "beta", beta)
    assert inside(fit, "kappa", kappa)
    assert inside(fit, "lambda", 1 / kappa)
    assert fit.params["beta"] == pytest.approx(beta, abs=0.1)
    assert fit.params["kappa"] == pytest.approx(kappa, rel=0.5)
    assert fit.params["offset"] == offset and fit.x_min == x_min and fit.n == 4000


def test_truncated_power_law_without_cutoff_reports_open_kappa_interval():
    x = power_law_sample(np.random.default_rng(3), 3000, 1.75, 1.5) - 1.5
    fit = truncated_power_law(x, x_min=1e-9, offset=1.5)
    assert fit.ci["lambda"][0] == 0.0
    assert fit.ci["kappa"][1] == math.inf
    assert inside(fit, "beta", 1.75)


def test_truncated_power_law_with_no_cutoff_matches_power_law_likelihood():
    # With offset 0 the pure power law is the λ = 0 member of the family.
    x = power_law_sample(np.random.default_rng(4), 2000, 2.2, 1.0)
    tpl, pl = truncated_power_law(x, x_min=1.0), power_law(x, x_min=1.0)
    assert tpl.log_likelihood >= pl.log_likelihood - 1e-6
    assert tpl.log_likelihood - pl.log_likelihood < 1.92  # the cut-off is not significant


def test_truncated_power_law_rejects_bad_input():
    with pytest.raises(ValueError, match="offset"):
        truncated_power_law([1.0, 2.0], x_min=1.0, offset=-1.0)
    with pytest.raises(ValueError, match="no value is >= x_min"):
        truncated_power_law([1.0, 2.0], x_min=5.0)
    with pytest.raises(ValueError, match="empty"):
        truncated_power_law([], x_min=1.0)


# --- visit frequency by rank --------------------------------------------------------------------------


def test_zipf_rank_recovers_zeta():
    rng = np.random.default_rng(5)
    zeta, users = 1.2, 60
    sizes = rng.integers(2, 7, users)
    counts = []
    for k in sizes:  # one multinomial per user: a few dozen calls, fine in a test
        p = np.arange(1, k + 1) ** -zeta
        counts.append(rng.permutation(rng.multinomial(20000, p / p.sum())))
    fit = zipf_rank(counts)
    assert inside(fit, "zeta", zeta)
    assert fit.params["zeta"] == pytest.approx(zeta, abs=0.02)
    # The flat form with user ids gives the same answer.
    flat = zipf_rank(np.concatenate(counts), user=np.repeat(np.arange(users), sizes))
    assert flat.params["zeta"] == pytest.approx(fit.params["zeta"])
    assert flat.n == fit.n == 20000 * users


def test_zipf_rank_rejects_bad_input():
    with pytest.raises(ValueError, match="single location"):
        zipf_rank([[5], [3]])
    with pytest.raises(ValueError, match="whole number"):
        zipf_rank([[5, -1], [3, 2]])
    with pytest.raises(ValueError, match="every count is 0"):
        zipf_rank([[0, 0]])
    with pytest.raises(ValueError, match="user="):
        zipf_rank(np.array([3.0, 2.0]))


# --- growth -------------------------------------------------------------------------------------------


def test_growth_exponent_recovers_mu():
    rng = np.random.default_rng(6)
    t = np.linspace(1.0, 500.0, 200)
    s = 2.0 * t**0.6 * np.exp(rng.normal(0.0, 0.05, t.size))
    fit = growth_exponent(t, s)
    assert inside(fit, "mu", 0.6) and inside(fit, "prefactor", 2.0)
    assert fit.params["mu"] == pytest.approx(0.6, abs=0.02)


def test_growth_exponent_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 3"):
        growth_exponent([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="> 0"):
        growth_exponent([0.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="one value per time"):
        growth_exponent([1.0, 2.0, 3.0], [1.0, 2.0])


# --- Weibull ------------------------------------------------------------------------------------------


def test_weibull_recovers_shape_and_scale():
    x = 5.0 * np.random.default_rng(7).weibull(0.6, 5000)
    fit = weibull(x)
    assert inside(fit, "shape", 0.6) and inside(fit, "scale", 5.0)
    assert fit.params["shape"] == pytest.approx(0.6, abs=0.03)
    from scipy import stats

    shape, _, scale = stats.weibull_min.fit(x, floc=0)
    assert fit.params["shape"] == pytest.approx(shape, rel=1e-4)
    assert fit.params["scale"] == pytest.approx(scale, rel=1e-4)
    assert fit.log_likelihood == pytest.approx(stats.weibull_min.logpdf(x, shape, 0, scale).sum(), rel=1e-6)


def test_weibull_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        weibull([])
    with pytest.raises(ValueError, match="> 0"):
        weibull([1.0, 0.0])
    with pytest.raises(ValueError, match="distinct"):
        weibull([2.0, 2.0])


# --- exploration --------------------------------------------------------------------------------------


def test_exploration_recovers_rho_and_gamma():
    rng = np.random.default_rng(8)
    S = rng.integers(1, 400, 50000)
    explored = rng.random(S.size) < 0.6 * S**-0.21  # Bernoulli with the EPR probability
    fit = exploration(S, explored)
    assert inside(fit, "rho", 0.6) and inside(fit, "gamma", 0.21)
    assert fit.params["gamma"] == pytest.approx(0.21, abs=0.03)
    assert fit.n == S.size


def test_exploration_rejects_bad_input():
    with pytest.raises(ValueError, match=">= 1"):
        exploration([0, 1, 2], [True, False, True])
    with pytest.raises(ValueError, match="same outcome"):
        exploration([1, 2, 3], [True, True, True])
    with pytest.raises(ValueError, match="one per step"):
        exploration([1, 2, 3], [True, False])
    with pytest.raises(ValueError, match="empty"):
        exploration([], [])
