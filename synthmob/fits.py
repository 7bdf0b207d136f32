"""Maximum-likelihood fits of the functional forms in REALISM.md, with 95 % confidence intervals.

Each fit takes the whole sample as one array (never a Python loop over subscribers) and returns a frozen
:class:`Fit` that carries its estimates, their intervals, the sample size and the log-likelihood at the
estimate, so that a result can be reported without the code that made it.

=======================  ==================================  ========================================
function                 form                                 estimator and 95 % interval
=======================  ==================================  ========================================
:func:`power_law`        p(x) ∝ x^-α, x ≥ x_min                closed-form MLE; exact (gamma pivot)
:func:`truncated_power_law`  p(x) ∝ (x+x₀)^-β e^(-x/κ)        numerical MLE; profile likelihood
:func:`zipf_rank`        f_k ∝ k^-ζ, k = 1..K per user        MLE over ranks; cluster-robust Wald
:func:`growth_exponent`  S(t) ∝ t^μ                           least squares on log-log; t interval
:func:`weibull`          p(x) ∝ x^(k-1) e^(-(x/λ)^k)          MLE; Wald from observed information
:func:`exploration`      P_new = ρ S^-γ                       Bernoulli MLE; Wald from observed info.
=======================  ==================================  ========================================

Bad input raises :class:`FitInputError`, which is both a :class:`~synthmob.errors.SynthmobError` and a
:class:`ValueError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special, stats

from synthmob.errors import SynthmobError

#: Half the 95 % quantile of χ²₁: the drop in log-likelihood that bounds a profile-likelihood interval.
_PROFILE_DROP = float(stats.chi2.ppf(0.95, 1)) / 2.0
_Z95 = float(stats.norm.ppf(0.975))


class FitInputError(SynthmobError, ValueError):
    """The data given to a fit cannot be fitted (empty, non-finite, out of range)."""


@dataclass(frozen=True)
class Fit:
    """The result of one fit.

    ``params`` holds the estimates (and, for conditional fits, fixed inputs such as ``offset``, which have
    no entry in ``ci``); ``ci`` holds 95 % intervals ``(low, high)``; ``n`` is the number of observations
    used (for a power law, those at or above ``x_min``); ``log_likelihood`` is evaluated at the estimate.
    """

    name: str
    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    n: int
    log_likelihood: float
    x_min: float | None = None


def _sample(x: object, name: str, *, positive: bool = True) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).ravel()
    if arr.size == 0:
        raise FitInputError(f"{name}: got an empty array; give at least one observation")
    if not np.all(np.isfinite(arr)):
        raise FitInputError(f"{name}: got NaN or infinite values; drop them before fitting")
    if positive and np.any(arr <= 0):
        raise FitInputError(f"{name}: got {arr.min()!r}; every value must be > 0")
    return arr


def _tail(x: object, x_min: float) -> np.ndarray:
    if not (math.isfinite(x_min) and x_min > 0):
        raise FitInputError(f"x_min: got {x_min!r}; give a finite value > 0")
    arr = _sample(x, "x")
    tail = arr[arr >= x_min]
    if tail.size == 0:
        raise FitInputError(f"x: no value is >= x_min={x_min!r} (largest is {arr.max()!r}); lower x_min")
    return tail


def power_law(x: object, *, x_min: float) -> Fit:
    """Fit a continuous power law p(x) = (α-1)/x_min · (x/x_min)^-α to the values ``x ≥ x_min``.

    The MLE is α̂ = 1 + n / Σ ln(x/x_min) (Clauset, Shalizi & Newman, SIAM Review 51, 661, 2009, eq. 3.1);
    its asymptotic standard error is (α̂-1)/√n. The interval is exact rather than asymptotic: Σ ln(x/x_min)
    is Gamma(n, 1/(α-1)) distributed, so (α-1)·Σ ln(x/x_min) is a Gamma(n, 1) pivot. For large n it
    agrees with α̂ ± 1.96·(α̂-1)/√n. Values below ``x_min`` are ignored; ``x_min`` is not estimated.

    Parameters
    ----------
    x : array_like
        Positive observations.
    x_min : float
        Lower bound of the power-law regime (> 0).

    Returns
    -------
    Fit
        ``params={"alpha": α̂}``, ``ci={"alpha": (low, high)}``.

    Examples
    --------
    >>> fit = power_law([1.0, 2.0, 4.0, 0.5], x_min=1.0)
    >>> fit.n, round(fit.params["alpha"], 4)
    (3, 2.4427)
    """
    tail = _tail(x, x_min)
    n = tail.size
    total_log = float(np.sum(np.log(tail / x_min)))
    if total_log <= 0.0:
        raise FitInputError(f"x: every value >= x_min equals x_min={x_min!r}; the exponent is unbounded")
    alpha = 1.0 + n / total_log
    low, high = (float(q) / total_log for q in stats.gamma.ppf([0.025, 0.975], n))
    loglik = n * math.log((alpha - 1.0) / x_min) - alpha * total_log
    return Fit("power_law", {"alpha": alpha}, {"alpha": (1.0 + low, 1.0 + high)}, n, loglik, x_min)


# --- truncated power law -------------------------------------------------------------------------------
# In units of y0 = x_min + offset, with λ' = λ·y0, the normaliser of (y)^-β e^(-λ'(y-1)) on y ≥ 1 is
# I(β, λ') = ∫_0^∞ exp((1-β)t - λ'(e^t - 1)) dt  (t = ln y). The family is exponential in (β, λ'), so the
# log-likelihood is jointly concave and every profile is unimodal.


def _log_norm(beta: float, lam: float) -> float:
    if lam <= 0.0:
        return -math.log(beta - 1.0) if beta > 1.0 else math.inf
    if beta < 1.0:
        s = 1.0 - beta
        q = special.gammaincc(s, lam)
        if q > 1e-280:
            return lam + (beta - 1.0) * math.log(lam) + special.gammaln(s) + math.log(q)
    elif beta == 1.0:
        e1 = special.exp1(lam)
        if e1 > 1e-280:
            return lam + math.log(e1)
    # β > 1 (or an underflowing tail): integrate in t = ln y up to where the integrand is below e^-45.
    shift = 0.0
    peak = 0.0
    if beta < 1.0 and lam < 1.0 - beta:
        peak = math.log((1.0 - beta) / lam)
        shift = (1.0 - beta) * peak - (1.0 - beta - lam)
    end = peak + math.log1p(50.0 / lam)
    if beta > 1.0:
        end = min(end, 50.0 / (beta - 1.0))
    value, _ = integrate.quad(
        lambda t: math.exp((1.0 - beta) * t - lam * math.expm1(t) - shift),
        0.0, end, points=[peak] if 0.0 < peak < end else None, limit=200, epsabs=0.0, epsrel=1e-10,
    )
    return shift + math.log(value)


def _tpl_loglik(beta: float, lam: float, mean_log: float, mean_excess: float) -> float:
    """Log-likelihood per observation in y0 units (add -ln y0 for the original units)."""
    return -beta * mean_log - lam * mean_excess - _log_norm(beta, lam)


def truncated_power_law(x: object, *, x_min: float, offset: float = 0.0) -> Fit:
    """Fit p(x) ∝ (x + offset)^-β · exp(-x/κ) for x ≥ x_min by maximum likelihood.

    This is the form of jump lengths (offset Δr₀) and radii of gyration (offset r_g⁰) in González, Hidalgo
    & Barabási, Nature 453, 779 (2008), and of waiting times (offset 0, β = 1 + β_Δt) in Song et al.,
    Nature Physics 6, 818 (2010); the method follows Clauset, Shalizi & Newman, SIAM Review 51 (2009),
    appendix B. ``offset`` and ``x_min`` are fixed, not estimated.

    The fit is in β and λ = 1/κ ≥ 0, where λ = 0 is the pure power law (then β must exceed 1). The
    normalising constant is an upper incomplete gamma function for β < 1 and a numerical integral over
    ln(x + offset) for β ≥ 1 (where scipy's ``gammaincc`` does not apply). The log-likelihood is jointly
    concave in (β, λ), so it is maximised by nested one-dimensional searches. Intervals are
    profile-likelihood intervals: where the profile log-likelihood falls 1.92 (= χ²₁(0.95)/2) below its
    maximum. If the pure power law lies inside that region the λ interval starts at 0 and κ's ends at
    ``inf``; if λ̂ = 0, ``kappa`` is ``inf`` (no cut-off within the data).

    Parameters
    ----------
    x : array_like
        Positive observations; those below ``x_min`` are ignored.
    x_min : float
        Lower bound of the fitted range (> 0).
    offset : float, default 0.0
        Fixed shift x₀ ≥ 0 (same units as ``x``).

    Returns
    -------
    Fit
        ``params`` has ``beta``, ``kappa``, ``lambda`` (= 1/κ) and the fixed ``offset``; ``ci`` has
        ``beta``, ``kappa`` and ``lambda``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = 1.0 + rng.exponential(10.0, 2000)     # β = 0, κ = 10
    >>> fit = truncated_power_law(x, x_min=1.0, offset=1.0)
    >>> low, high = fit.ci["kappa"]
    >>> bool(low < 10.0 < high), fit.n
    (True, 2000)
    """
    if not (math.isfinite(offset) and offset >= 0.0):
        raise FitInputError(f"offset: got {offset!r}; give a finite value >= 0")
    tail = _tail(x, x_min)
    n = tail.size
    y0 = x_min + offset
    mean_log = float(np.mean(np.log((tail + offset) / y0)))
    mean_excess = float(np.mean(tail - x_min)) / y0
    if mean_excess <= 0.0:
        raise FitInputError(f"x: every value >= x_min equals x_min={x_min!r}; nothing to fit")

    def ll(beta: float, lam: float) -> float:
        return n * _tpl_loglik(beta, lam, mean_log, mean_excess)

    # λ' is searched on a log scale between these bounds (λ' = 0 is handled in closed form).
    eta_lo, eta_hi = math.log(1e-9 / mean_excess), math.log(1e3 / mean_excess)
    beta_lo, beta_hi = -20.0, 20.0

    def best_beta(lam: float) -> tuple[float, float]:
        if lam <= 0.0:
            beta = 1.0 + 1.0 / mean_log  # the power-law MLE
            return beta, ll(beta, 0.0)
        res = optimize.minimize_scalar(lambda b: -ll(b, lam), bounds=(beta_lo, beta_hi), method="bounded",
                                       options={"xatol": 1e-7})
        return float(res.x), -float(res.fun)

    def best_lam(beta: float) -> tuple[float, float]:
        res = optimize.minimize_scalar(lambda e: -ll(beta, math.exp(e)), bounds=(eta_lo, eta_hi),
                                       method="bounded", options={"xatol": 1e-7})
        lam, value = math.exp(float(res.x)), -float(res.fun)
        if beta > 1.0 and ll(beta, 0.0) >= value:
            return 0.0, ll(beta, 0.0)
        return lam, value

    res = optimize.minimize_scalar(lambda e: -best_beta(math.exp(e))[1], bounds=(eta_lo, eta_hi),
                                   method="bounded", options={"xatol": 1e-7})
    lam_hat = math.exp(float(res.x))
    beta_hat, top = best_beta(lam_hat)
    beta0, top0 = best_beta(0.0)
    if top0 >= top:
        lam_hat, beta_hat, top = 0.0, beta0, top0
    level = top - _PROFILE_DROP

    def edge(profile, start: float, step: float, limit: float) -> float:
        """Where ``profile`` crosses ``level``, searching from ``start`` by growing steps toward ``limit``."""
        inner, outer = start, start + step
        while (outer - limit) * math.copysign(1.0, step) < 0.0 and profile(outer) > level:
            inner, outer, step = outer, outer + step, 2.0 * step
        if (outer - limit) * math.copysign(1.0, step) >= 0.0:
            outer = limit
            if profile(outer) > level:
                return outer
        return optimize.brentq(lambda v: profile(v) - level, inner, outer, xtol=1e-8)

    def beta_profile(beta: float) -> float:
        return best_lam(beta)[1]

    step = 0.05 + 1.0 / math.sqrt(n)
    beta_ci = (edge(beta_profile, beta_hat, -step, beta_lo), edge(beta_profile, beta_hat, step, beta_hi))

    def lam_profile(eta: float) -> float:
        return best_beta(math.exp(eta))[1]

    eta_hat = math.log(lam_hat) if lam_hat > 0.0 else eta_lo
    lam_hi = math.exp(edge(lam_profile, eta_hat, 0.5, eta_hi))
    if top0 >= level:
        lam_lo = 0.0
    else:
        lam_lo = math.exp(edge(lam_profile, eta_hat, -0.5, eta_lo))
    lam_ci = (lam_lo / y0, lam_hi / y0)
    params = {
        "beta": beta_hat,
        "kappa": y0 / lam_hat if lam_hat > 0.0 else math.inf,
        "lambda": lam_hat / y0,
        "offset": float(offset),
    }
    ci = {
        "beta": beta_ci,
        "kappa": (1.0 / lam_ci[1], 1.0 / lam_ci[0] if lam_ci[0] > 0.0 else math.inf),
        "lambda": lam_ci,
    }
    return Fit("truncated_power_law", params, ci, n, top - n * math.log(y0), x_min)


# --- visit frequency by rank ---------------------------------------------------------------------------


def zipf_rank(counts: object, *, user: object = None) -> Fit:
    """Fit the rank-frequency law f_k ∝ k^-ζ to the visit counts of many users at once.

    Each user's locations are ranked by their visit counts (rank 1 = most visited); every visit is then
    read as a draw from a discrete Zipf law truncated to that user's K distinct locations,
    P(k) = k^-ζ / H_K(ζ), H_K(ζ) = Σ_{j≤K} j^-ζ, and ζ is the maximum-likelihood root of the score
    (Song, Koren, Wang & Barabási, Nature Physics 6, 818, 2010, Fig. 2, measure f_k on ranks this way).
    The 95 % interval is Wald with a cluster-robust ("sandwich") variance, clustered by user, so that
    users who differ in their own ζ widen it instead of being treated as independent visits.

    Ranks come from the observed counts, so with few visits per location the ranking itself follows
    chance and ζ̂ is biased upward; fit users with many visits, or treat ζ̂ as a descriptive statistic.

    Parameters
    ----------
    counts : sequence of array_like, or array_like
        Visit counts per location, one array per user; or, with ``user``, one flat array.
        Zero counts are dropped.
    user : array_like, optional
        User id of each entry of a flat ``counts``.

    Returns
    -------
    Fit
        ``params={"zeta": ζ̂}``; ``n`` is the total number of visits.

    Examples
    --------
    >>> fit = zipf_rank([[60, 30, 20, 15], [12, 50, 25]])
    >>> round(fit.params["zeta"], 2)
    1.06
    >>> fit.n
    212
    """
    if user is None:
        if isinstance(counts, np.ndarray) and counts.ndim == 1 and counts.dtype != object:
            raise FitInputError("counts: got one flat array; pass user= ids, or a list of per-user arrays")
        arrays = [np.asarray(c, dtype=np.float64).ravel() for c in counts]  # type: ignore[union-attr]
        flat = np.concatenate(arrays) if arrays else np.empty(0)
        ids = np.repeat(np.arange(len(arrays)), [a.size for a in arrays])
    else:
        flat = np.asarray(counts, dtype=np.float64).ravel()
        ids = np.unique(np.asarray(user).ravel(), return_inverse=True)[1]
        if ids.size != flat.size:
            raise FitInputError(f"user: got {ids.size} ids for {flat.size} counts; give one id per count")
    flat = _sample(flat, "counts", positive=False)
    if np.any(flat < 0) or np.any(flat != np.round(flat)):
        raise FitInputError("counts: every count must be a whole number >= 0")
    keep = flat > 0
    flat, ids = flat[keep], ids[keep]
    if flat.size == 0:
        raise FitInputError("counts: every count is 0; nothing was visited")
    order = np.lexsort((-flat, ids))
    flat, ids = flat[order], ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    sizes = np.diff(np.r_[starts, ids.size])
    rank = np.arange(ids.size) - np.repeat(starts, sizes) + 1
    visits = np.add.reduceat(flat, starts)
    weighted_log = np.add.reduceat(flat * np.log(rank), starts)  # A_u = Σ c ln k
    if sizes.max() < 2:
        raise FitInputError("counts: every user has a single location; ζ needs users with 2 or more")
    log_k = np.log(np.arange(1, sizes.max() + 1))

    def moments(zeta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = np.exp(-zeta * log_k)
        h = np.cumsum(w)[sizes - 1]
        m1 = np.cumsum(w * log_k)[sizes - 1] / h
        m2 = np.cumsum(w * log_k**2)[sizes - 1] / h
        return h, m1, m2 - m1**2

    def score(zeta: float) -> float:
        return float(np.sum(visits * moments(zeta)[1] - weighted_log))

    low, high = -20.0, 20.0
    if not score(low) > 0.0 > score(high):
        raise FitInputError("counts: the visits are too concentrated or too even to estimate ζ in [-20, 20]")
    zeta = optimize.brentq(score, low, high, xtol=1e-12)
    h, m1, var = moments(zeta)
    info = float(np.sum(visits * var))
    se = math.sqrt(float(np.sum((visits * m1 - weighted_log) ** 2))) / info
    loglik = float(-zeta * weighted_log.sum() - np.sum(visits * np.log(h)))
    ci = (zeta - _Z95 * se, zeta + _Z95 * se)
    return Fit("zipf_rank", {"zeta": zeta}, {"zeta": ci}, int(flat.sum()), loglik)


# --- growth of distinct places -------------------------------------------------------------------------


def growth_exponent(t: object, s: object) -> Fit:
    """Fit the growth curve S(t) = a · t^μ by least squares on ln S = ln a + μ ln t.

    A growth curve is a deterministic trend with noise, not a sample from a distribution, so ordinary
    least squares in log-log space is the appropriate estimator (Song et al., Nature Physics 6, 2010,
    report μ ≈ 0.6 this way). The 95 % intervals use the regression standard errors and Student's t with
    n - 2 degrees of freedom. Successive points of one curve are correlated, so these intervals are too
    narrow when the curve is a single cumulative series; fit several independent curves for an honest
    spread. ``log_likelihood`` is the Gaussian one of the log residuals at σ̂² = RSS / n.

    Parameters
    ----------
    t : array_like
        Times (> 0).
    s : array_like
        Values S(t) (> 0), same length as ``t``.

    Returns
    -------
    Fit
        ``params={"mu": μ̂, "prefactor": â}``.

    Examples
    --------
    >>> t = np.arange(1.0, 50.0)
    >>> fit = growth_exponent(t, 3.0 * t**0.6)
    >>> round(fit.params["mu"], 6), round(fit.params["prefactor"], 6)
    (0.6, 3.0)
    """
    tt, ss = _sample(t, "t"), _sample(s, "s")
    if tt.size != ss.size:
        raise FitInputError(f"s: got {ss.size} values for {tt.size} times; give one value per time")
    if tt.size < 3:
        raise FitInputError(f"t: got {tt.size} points; give at least 3")
    lt, ls = np.log(tt), np.log(ss)
    centred = lt - lt.mean()
    sxx = float(np.sum(centred**2))
    if sxx == 0.0:
        raise FitInputError("t: every time is the same; give at least two distinct times")
    n = tt.size
    mu = float(np.sum(centred * (ls - ls.mean())) / sxx)
    intercept = float(ls.mean() - mu * lt.mean())
    rss = float(np.sum((ls - intercept - mu * lt) ** 2))
    sigma2 = rss / (n - 2)
    se_mu = math.sqrt(sigma2 / sxx)
    se_b = math.sqrt(sigma2 * (1.0 / n + lt.mean() ** 2 / sxx))
    q = float(stats.t.ppf(0.975, n - 2))
    loglik = math.inf if rss == 0.0 else -0.5 * n * (math.log(2.0 * math.pi * rss / n) + 1.0)
    return Fit(
        "growth_exponent",
        {"mu": mu, "prefactor": math.exp(intercept)},
        {"mu": (mu - q * se_mu, mu + q * se_mu),
         "prefactor": (math.exp(intercept - q * se_b), math.exp(intercept + q * se_b))},
        n,
        loglik,
    )


# --- inter-event times ---------------------------------------------------------------------------------


def weibull(x: object) -> Fit:
    """Fit a Weibull law p(x) = (k/λ)(x/λ)^(k-1) exp(-(x/λ)^k) to positive values by maximum likelihood.

    The shape k̂ is the root of the profile score 1/k + mean(ln x) - Σ x^k ln x / Σ x^k = 0, which is
    monotone in k; then λ̂ = (mean x^k̂)^(1/k̂) (Cohen, Technometrics 7, 579, 1965). The 95 % intervals are
    Wald intervals on ln k and ln λ from the inverse observed Fisher information (analytic Hessian), so they
    stay positive. Per-user inter-event times are mostly Weibull (Jiang et al., arXiv:1301.7173).

    Parameters
    ----------
    x : array_like
        Positive observations, at least two distinct.

    Returns
    -------
    Fit
        ``params={"shape": k̂, "scale": λ̂}``.

    Examples
    --------
    >>> x = np.random.default_rng(0).weibull(0.7, 4000) * 3.0
    >>> fit = weibull(x)
    >>> fit.ci["shape"][0] < 0.7 < fit.ci["shape"][1], fit.ci["scale"][0] < 3.0 < fit.ci["scale"][1]
    (True, True)
    """
    arr = _sample(x, "x")
    n = arr.size
    lx = np.log(arr)
    centre = float(lx.mean())
    lz = lx - centre  # work in units of the geometric mean
    if np.ptp(lz) == 0.0:
        raise FitInputError("x: every value is the same; give at least two distinct values")

    def profile_score(k: float) -> float:
        w = np.exp(k * lz - np.max(k * lz))
        return float(np.sum(w * lz) / np.sum(w)) - 1.0 / k

    if not profile_score(1e-3) < 0.0 < profile_score(1e3):
        raise FitInputError("x: the values are too spread or too alike for a Weibull shape in [0.001, 1000]")
    k = optimize.brentq(profile_score, 1e-3, 1e3, xtol=1e-12)
    log_scale_z = (special.logsumexp(k * lz) - math.log(n)) / k
    u = np.exp(k * (lz - log_scale_z))
    el = lz - log_scale_z
    lam = math.exp(log_scale_z)
    h_kk = -n / k**2 - float(np.sum(u * el**2))
    h_ll = (n * k - k * (k + 1.0) * float(np.sum(u))) / lam**2
    h_kl = (-n + float(np.sum(u * (1.0 + k * el)))) / lam
    cov = np.linalg.inv(-np.array([[h_kk, h_kl], [h_kl, h_ll]]))
    se_log_k = math.sqrt(cov[0, 0]) / k
    se_log_lam = math.sqrt(cov[1, 1]) / lam
    scale = math.exp(centre + log_scale_z)
    loglik = float(n * math.log(k / scale) + (k - 1.0) * np.sum(lx - math.log(scale)) - np.sum(u))
    return Fit(
        "weibull",
        {"shape": k, "scale": scale},
        {"shape": (k * math.exp(-_Z95 * se_log_k), k * math.exp(_Z95 * se_log_k)),
         "scale": (scale * math.exp(-_Z95 * se_log_lam), scale * math.exp(_Z95 * se_log_lam))},
        n,
        loglik,
    )


# --- exploration versus return -------------------------------------------------------------------------

#: Largest probability of exploring allowed at any observed S (keeps ln(1 - P_new) finite).
_P_MAX = 1.0 - 1e-9


def exploration(S: object, explored: object) -> Fit:
    """Fit P_new = ρ · S^-γ to per-step observations (S distinct places so far, explored or not).

    The EPR model's exploration probability (Song, Koren, Wang & Barabási, Nature Physics 6, 818, 2010)
    is fitted as a Bernoulli regression with a log link, ln P_new = ln ρ - γ ln S, by maximum likelihood
    under the constraint ρ·S^-γ ≤ 1 at every observed S (SLSQP). Observations are pooled by distinct S, so
    the cost does not grow with the number of steps. The 95 % intervals are Wald intervals from the
    inverse observed Fisher information (analytic Hessian): on ln ρ (so ρ stays positive) and on γ.
    They are unreliable if the constraint is active (ρ̂·S_min^-γ̂ ≈ 1).

    Parameters
    ----------
    S : array_like
        Number of distinct places visited before each step (≥ 1).
    explored : array_like of bool
        Whether that step went to a new place; same length as ``S``.

    Returns
    -------
    Fit
        ``params={"rho": ρ̂, "gamma": γ̂}``; ``n`` is the number of steps.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> S = rng.integers(1, 300, 20000)
    >>> fit = exploration(S, rng.random(S.size) < 0.6 * S**-0.21)
    >>> fit.ci["rho"][0] < 0.6 < fit.ci["rho"][1], fit.ci["gamma"][0] < 0.21 < fit.ci["gamma"][1]
    (True, True)
    """
    s_arr = _sample(S, "S", positive=False)
    y = np.asarray(explored).ravel()
    if y.size != s_arr.size:
        raise FitInputError(f"explored: got {y.size} values for {s_arr.size} steps; give one per step")
    if np.any(s_arr < 1):
        raise FitInputError(f"S: got {s_arr.min()!r}; the number of known places must be >= 1")
    if not np.all((y == 0) | (y == 1)):
        raise FitInputError("explored: every value must be True/False (or 1/0)")
    levels, inverse = np.unique(s_arr, return_inverse=True)
    trials = np.bincount(inverse).astype(np.float64)
    hits = np.bincount(inverse, weights=y.astype(np.float64))
    if levels.size < 2:
        raise FitInputError("S: every step has the same S; give steps at two or more values of S")
    if hits.sum() == 0 or hits.sum() == trials.sum():
        raise FitInputError("explored: all steps have the same outcome; ρ and γ cannot be estimated")
    ls = np.log(levels)
    design = np.column_stack([np.ones_like(ls), -ls])

    def prob(theta: np.ndarray) -> np.ndarray:
        return np.clip(np.exp(design @ theta), 1e-300, _P_MAX)

    def nll(theta: np.ndarray) -> float:
        p = prob(theta)
        return -float(np.sum(hits * np.log(p) + (trials - hits) * np.log1p(-p)))

    def grad(theta: np.ndarray) -> np.ndarray:
        p = prob(theta)
        return -design.T @ ((hits - trials * p) / (1.0 - p))

    # Start from the pooled rate with γ = 0, which is feasible.
    start = np.array([math.log(hits.sum() / trials.sum()), 0.0])
    bound = {"type": "ineq", "fun": lambda th: math.log(_P_MAX) - design[[0, -1]] @ th,
             "jac": lambda th: -design[[0, -1]]}
    res = optimize.minimize(nll, start, jac=grad, method="SLSQP", constraints=[bound],
                            options={"ftol": 1e-12, "maxiter": 500})
    theta = res.x
    p = prob(theta)
    curvature = p * (trials - hits) / (1.0 - p) ** 2
    cov = np.linalg.inv(design.T @ (curvature[:, None] * design))
    se_a, se_g = math.sqrt(cov[0, 0]), math.sqrt(cov[1, 1])
    a, gamma = float(theta[0]), float(theta[1])
    return Fit(
        "exploration",
        {"rho": math.exp(a), "gamma": gamma},
        {"rho": (math.exp(a - _Z95 * se_a), math.exp(a + _Z95 * se_a)),
         "gamma": (gamma - _Z95 * se_g, gamma + _Z95 * se_g)},
        int(s_arr.size),
        -float(res.fun),
    )
