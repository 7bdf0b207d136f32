"""A scorecard of a run against the published statistics of human mobility in ``/work/shared/REALISM.md``.

:func:`scorecard` measures every statistic twice, on the ground truth (stays, trips) and on the operator's
records (events), with the vectorised measures of :mod:`synthmob.metrics` and the maximum-likelihood fits of
:mod:`synthmob.fits`, and returns one :class:`Row` per statistic. A row says whether the *observed* value
(the records', as published numbers are almost all measured on CDRs) lies in the published range; where a
row does not apply (a cut-off far beyond the region's size, a fit on too little data) ``within`` is
``None`` and ``note`` says why. :func:`write_json` stores the rows as ``<run>/realism.json``;
:func:`format_table` renders them as plain text; :func:`failures` picks the rows outside their range.

Where the region is smaller than a published cut-off, an exponent fitted with a free cut-off is judged
against what the same fit gives on the published law confined to the region (:func:`confined_exponent`),
not against the published value itself.

Sources of the published ranges
-------------------------------
- González, Hidalgo & Barabási, Nature 453, 779 (2008): jump lengths and radii of gyration (parameters
  via secondary sources, as REALISM.md says).
- Song, Koren, Wang & Barabási, Nature Physics 6, 818 (2010): exploration, waiting times, S(t), f_k.
- Kung, Greco, Sobolevsky & Ratti, PLoS ONE 9, e96180 (2014): about one hour of commuting a day.
- Nobis & Kuhnimhof, Mobilität in Deutschland – MiD Ergebnisbericht (2018): 80 minutes of travel per
  person and day.
- Barlacchi et al., Scientific Data 2, 150055 (2015): night trough in phone activity.
- Jiang, Xie, Li, Podobnik, Zhou & Stanley, arXiv:1301.7173: bursty (Weibull shape < 1) inter-event times.

Examples
--------
>>> row = _row("ζ", 1.15, 1.4, "1.2 ± 0.1", 1.1, 1.3, "Song 2010")
>>> row.within
False
>>> [r.statistic for r in failures([row])]
['ζ']
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthmob import fits, metrics, schema

if TYPE_CHECKING:
    from synthmob.run import Run

#: Fewest values a distribution fit is attempted on; below this a row reports "too little data".
MIN_SAMPLE = 50
#: Inter-event times beyond this many are subsampled (seeded) before the Weibull fit.
WEIBULL_SAMPLE = 1_000_000

_GONZALEZ = "González et al., Nature 453 (2008)"
_SONG = "Song et al., Nat. Phys. 6 (2010)"
_KUNG = "Kung et al., PLoS ONE 9 (2014)"
_MID = "MiD 2017 (Nobis & Kuhnimhof 2018)"
_BARLACCHI = "Barlacchi et al., Sci. Data 2 (2015)"
_JIANG = "Jiang et al., arXiv:1301.7173"
_ORDER = "REALISM.md (order of magnitude)"

#: Published offsets and cut-offs (km) of the truncated power laws (González et al. 2008).
JUMP_OFFSET_KM, JUMP_KAPPA_KM = 1.5, 400.0
RG_OFFSET_KM, RG_KAPPA_KM = 5.8, 350.0
#: Lower end (km, h) of the fitted range of jump lengths, radii of gyration and waiting times.
X_MIN_KM, X_MIN_H = 1.0, 1.0
#: An exponent is compared only where values can range over at least this factor above x_min + offset.
SCALE_SPAN = 10.0
#: Fewest known places of the steps the exploration fit uses (see :func:`_exploration`).
EXPLORATION_MIN_S = 2
#: Event types a subscriber starts (activity), as opposed to signalling (handovers, location updates).
ACTIVITY_TYPES = ("voice", "sms", "data")


@dataclass(frozen=True)
class Row:
    """One statistic of the scorecard.

    Attributes
    ----------
    statistic : str
        What is measured, with its fixed parameters.
    truth, observed : float or None
        The value on the ground truth and on the operator's records; ``None`` when not measured or when
        the fit failed (``note`` says why).
    published : str
        The published value as the source states it, e.g. ``"1.75 ± 0.15"``.
    low, high : float or None
        The accepted range; ``None`` when there is none to compare with.
    source : str
        Short citation of the published value.
    within : bool or None
        Whether the observed value (the truth, for truth-only rows; ``note`` says so) lies in
        ``[low, high]``; ``None`` when the row does not apply.
    note : str
        Why a row does not apply, or the 95 % intervals and sample sizes of the fits.
    """

    statistic: str
    truth: float | None
    observed: float | None
    published: str
    low: float | None
    high: float | None
    source: str
    within: bool | None
    note: str = ""


# --- building rows --------------------------------------------------------------------------------------
def _finite(value: Any) -> float | None:
    """A plain float, or ``None`` for missing, NaN and infinite values (so that rows are valid JSON)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _row(statistic: str, truth: Any, observed: Any, published: str, low: float | None, high: float | None,
         source: str, note: str = "", *, judge: str = "observed") -> Row:
    """Build a :class:`Row`, deciding ``within`` on ``observed`` (or on ``truth`` with ``judge="truth"``).

    ``within`` is ``None`` when the judged value or either bound is missing.

    Examples
    --------
    >>> _row("β", 1.7, 1.75, "1.75 ± 0.15", 1.6, 1.9, "González 2008").within
    True
    >>> _row("β", 1.7, None, "1.75 ± 0.15", 1.6, 1.9, "González 2008").within is None
    True
    """
    truth, observed = _finite(truth), _finite(observed)
    value = truth if judge == "truth" else observed
    within = None if value is None or low is None or high is None else bool(low <= value <= high)
    return Row(statistic, truth, observed, published, low, high, source, within, note)


def _ci(label: str, fit: fits.Fit, key: str, transform: Callable[[float], float] = lambda v: v) -> str:
    low, high = (transform(v) for v in fit.ci[key])
    return f"{label} 95% CI [{low:.3g}, {high:.3g}] (n={fit.n})"


def _attempt(fit: Callable[[], fits.Fit]) -> tuple[fits.Fit | None, str]:
    """Run a fit; on too little or degenerate data return ``(None, reason)`` instead of raising."""
    try:
        return fit(), ""
    except (fits.FitInputError, np.linalg.LinAlgError, ZeroDivisionError) as error:
        return None, str(error)


def _need(n: int, what: str) -> None:
    """Refuse a fit on fewer than :data:`MIN_SAMPLE` observations."""
    if n < MIN_SAMPLE:
        raise fits.FitInputError(f"too little data: {n} {what}, need {MIN_SAMPLE}")


def _pair(make: Callable[[Any], fits.Fit], truth_x: Any, observed_x: Any,
          ) -> tuple[tuple[fits.Fit | None, str], tuple[fits.Fit | None, str]]:
    """Fit the truth and the records the same way, each as :func:`_attempt` does."""
    return _attempt(lambda: make(truth_x)), _attempt(lambda: make(observed_x))


def _note(truth: tuple[fits.Fit | None, str], observed: tuple[fits.Fit | None, str], key: str,
          transform: Callable[[float], float] = lambda v: v) -> str:
    parts = []
    for label, (fit, reason) in (("observed", observed), ("truth", truth)):
        parts.append(_ci(label, fit, key, transform) if fit is not None else f"{label}: no fit ({reason})")
    return "; ".join(parts)


def _param(result: tuple[fits.Fit | None, str], key: str, shift: float = 0.0) -> float | None:
    fit = result[0]
    return None if fit is None else fit.params[key] + shift


# --- the measures ---------------------------------------------------------------------------------------
def _tpl(x: np.ndarray, *, x_min: float, offset: float) -> fits.Fit:
    x = np.asarray(x, dtype=np.float64)
    _need(int(np.count_nonzero(x >= x_min)), f"values >= {x_min:g}")
    return fits.truncated_power_law(x[x > 0], x_min=x_min, offset=offset)


@functools.lru_cache(maxsize=64)
def confined_exponent(beta: float, *, offset: float, kappa: float, bound: float, x_min: float = X_MIN_KM,
                      n: int = 100_000) -> float:
    """The exponent the scorecard's fit reports on the published law confined to values ≤ ``bound``.

    A truncated power law p(x) ∝ (x + offset)^-β e^(-x/κ) measured in a region smaller than κ is cut off by
    the region, not by κ: nobody's radius of gyration exceeds half the region's diagonal, no jump exceeds
    the diagonal. Fitted with κ free, such data give a smaller β, because the fit trades the exponent
    against the region's cut-off: data drawn exactly from the published radius-of-gyration law (β_r = 1.65)
    and confined to 106 km fit β_r ≈ 1.24. The same fit is applied here to the n quantiles of the confined
    published law (a deterministic sample), so that a run is compared with what the published law itself
    would show at the run's scale.

    Examples
    --------
    >>> round(confined_exponent(1.65, offset=5.8, kappa=350.0, bound=1e5), 2)  # no confinement
    1.65
    >>> confined_exponent(1.65, offset=5.8, kappa=350.0, bound=106.0) < 1.3
    True
    """
    grid = np.geomspace(x_min, bound, 200_001)
    density = (grid + offset) ** -beta * np.exp(-grid / kappa)
    cdf = np.concatenate([[0.0], np.cumsum(np.diff(grid) * (density[1:] + density[:-1]) / 2.0)])
    quantiles = np.interp((np.arange(n) + 0.5) / n, cdf / cdf[-1], grid)
    return float(fits.truncated_power_law(quantiles, x_min=x_min, offset=offset).params["beta"])


def _power_law_rows(name: str, symbol: str, truth_x: np.ndarray, observed_x: np.ndarray, *, offset: float,
                    kappa: float, published: str, low: float | None, high: float | None, scale_note: str,
                    bound: float, bound_note: str) -> list[Row]:
    """The exponent and cut-off rows of a truncated power law.

    Where the region is smaller than the published cut-off κ, the exponent is judged against the range the
    same fit gives on the published law confined to ``bound`` (:func:`confined_exponent`), and the cut-off
    row does not apply.
    """
    truth, observed = _pair(lambda x: _tpl(x, x_min=X_MIN_KM, offset=offset), truth_x, observed_x)
    note = _note(truth, observed, "beta")
    applies = bound >= kappa
    if bound < SCALE_SPAN * (X_MIN_KM + offset):
        low = high = None
        published = f"{published} (country scale)"
        note = (f"does not apply: {scale_note}; values up to {bound:.1f} km span less than a factor "
                f"{SCALE_SPAN:g} above x_min + offset = {X_MIN_KM + offset:g} km, too little to compare an "
                "exponent; " + note)
    elif not applies:
        low, high = (confined_exponent(b, offset=offset, kappa=kappa, bound=bound) for b in (low, high))
        published = f"{published}; {low:.2f}–{high:.2f} at ≤ {bound:.0f} km"
        note = (f"range: the fit on the published law ({symbol} at both ends of its range, κ = {kappa:g} km) "
                f"confined to {bound_note}, {bound:.0f} km; " + note)
    exponent = _row(f"{name} {symbol} (offset {offset:g} km, ≥ {X_MIN_KM:g} km)", _param(truth, "beta"),
                    _param(observed, "beta"), published, low, high, _GONZALEZ, note)
    cut_note = _note(truth, observed, "kappa") if applies else f"does not apply: {scale_note}, far below κ ≈ {kappa:g} km"
    cutoff = _row(f"{name} cut-off κ (km)", _param(truth, "kappa"), _param(observed, "kappa"),
                  f"≈ {kappa:g} km (country scale)", None, None, _GONZALEZ, cut_note)
    if applies:  # compare within a factor of two of the published cut-off
        cutoff = _row(cutoff.statistic, cutoff.truth, cutoff.observed, cutoff.published, kappa / 2, kappa * 2,
                      cutoff.source, cut_note)
    return [exponent, cutoff]


def _place_counts(v: metrics.Visits) -> tuple[np.ndarray, np.ndarray]:
    """Visits per (subscriber, cell): the counts and their subscriber, for :func:`fits.zipf_rank`."""
    if len(v.subscriber) == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    order = np.lexsort((v.cell, v.subscriber))
    sub, cell = v.subscriber[order], v.cell[order]
    head = np.flatnonzero(np.r_[True, (sub[1:] != sub[:-1]) | (cell[1:] != cell[:-1])])
    return np.diff(np.r_[head, len(sub)]).astype(np.float64), sub[head]


def _growth(v: metrics.Visits, days: int) -> fits.Fit:
    bins = np.arange(24.0, 24.0 * days + 1.0, 1.0)
    if len(bins) < 3:
        raise fits.FitInputError(f"too little data: the run lasts {days} day(s); S(t) is fitted from 24 h on, need ≥ 3 hourly points")
    s = metrics.distinct_places(v.subscriber, v.start_ms, v.cell, bins=bins)
    return fits.growth_exponent(bins, s)


def _exploration(v: metrics.Visits) -> fits.Fit:
    """ρ and γ from the steps made with at least two places known (S ≥ 2).

    Visits merge consecutive records (or stays) at one cell, so a step taken while only one place is known
    goes to a new place by construction: P_new(1) = 1 whatever the behaviour. Such steps say nothing about
    exploration and would pull ρ towards 1, so they are left out.
    """
    S, new = metrics.exploration(v.subscriber, v.start_ms, v.cell)
    keep = S >= EXPLORATION_MIN_S
    _need(int(np.count_nonzero(keep)), f"steps with S >= {EXPLORATION_MIN_S}")
    return fits.exploration(S[keep], new[keep])


def _zipf(v: metrics.Visits) -> fits.Fit:
    counts, user = _place_counts(v)
    _need(int(counts.sum()), "visits")
    return fits.zipf_rank(counts, user=user)


def _night_day_ratio(weekly: np.ndarray) -> float | None:
    """Mean weekday share of records per hour at 02–05 local over that at 10–18 local (Barlacchi 2015), from
    the records' counts per local hour of the week."""
    n = int(weekly.sum())
    profile = (weekly.astype(np.float64) / max(n, 1)).reshape(7, 24)[:5]
    day = profile[:, 10:18].mean()
    return None if n == 0 or day == 0 else float(profile[:, 2:5].mean() / day)


@dataclass(frozen=True)
class Observed:
    """What the scorecard measures on the operator's voice, SMS and data records (handovers and location
    updates left out), gathered shard by shard.

    ``visits`` merges consecutive records at one cell; ``gaps_h`` are the hours between consecutive
    records at one cell, only those of at least :data:`X_MIN_H` (the range fitted); ``weekly`` counts
    records per local hour of the week; ``per_day`` counts outgoing voice and SMS per subscriber and local
    day with any; ``inter_s`` are the positive seconds between consecutive records of a subscriber. All in
    (subscriber, time) order.
    """

    visits: metrics.Visits
    gaps_h: np.ndarray  # of at least X_MIN_H: the fitted range
    weekly: np.ndarray
    per_day: np.ndarray
    inter_s: np.ndarray


def _event_parts(run: Run) -> list[list[Path]]:
    """The events' files grouped by shard (``date=*/part-NNNNN.parquet``), shards in order, days in order."""
    parts: dict[str, list[Path]] = {}
    for path in sorted((run.path / "events").glob("date=*/*.parquet")):
        parts.setdefault(path.name, []).append(path)
    return [parts[name] for name in sorted(parts)]


def _observed(run: Run, timezone: str, progress: Callable[[int, int], None] | None = None) -> Observed:
    """:class:`Observed` of a run, reading one shard's records at a time.

    A shard holds a contiguous block of whole subscribers and the shards' part numbers follow their
    subscribers, so what is measured per subscriber is complete within a shard, and the shards'
    results, put end to end, are in (subscriber, time) order as one sort of the whole table would give.
    """
    import pyarrow.dataset as ds

    columns = [schema.SUBSCRIBER_ID, "timestamp", schema.CELL_ID, "event_type", "direction"]
    wanted = pc.field("event_type").isin(list(ACTIVITY_TYPES))
    parts = _event_parts(run)
    got: dict[str, list[np.ndarray]] = {k: [] for k in ("sub", "start", "end", "cell", "gaps_h", "per_day", "inter_s")}
    weekly = np.zeros(168, dtype=np.int64)
    for done, files in enumerate(parts, 1):
        table = ds.dataset(files, format="parquet").to_table(columns=columns, filter=wanted)
        t = metrics.to_ms(table["timestamp"])
        sub = table[schema.SUBSCRIBER_ID].to_numpy()
        # one int64 key sorts faster than a lexsort; stable, so records at one instant keep the files' order
        order = np.argsort(sub * (1 << 42) + (t - t.min() if len(t) else t), kind="stable")
        sub, t, cell = sub[order], t[order], table[schema.CELL_ID].to_numpy()[order]
        outgoing = pc.and_(pc.is_in(table["event_type"], value_set=pa.array(["voice", "sms"])),
                           pc.fill_null(pc.equal(table["direction"], "out"), False))
        outgoing = outgoing.to_numpy(zero_copy_only=False)[order]
        del table
        for key, value in zip(("sub", "start", "end", "cell"), metrics.merge_visits(sub, t, cell)):
            got[key].append(value)
        gaps_h = metrics.record_gaps(sub, t, cell)[1]
        got["gaps_h"].append(gaps_h[gaps_h >= X_MIN_H])  # the fit reads only its range: keep that alone
        weekly += metrics.weekly_counts(t, timezone=timezone)
        got["per_day"].append(metrics.records_per_subscriber_day(sub[outgoing], t[outgoing], timezone=timezone)[2])
        inter = metrics.inter_event_times(sub, t)
        got["inter_s"].append(inter[inter > 0])
        if progress is not None:
            progress(done, len(parts))
    empty = {"sub": np.int64, "start": np.int64, "end": np.int64, "cell": np.int32, "gaps_h": np.float64,
             "per_day": np.int64, "inter_s": np.float64}
    pooled = {}
    for k in empty:  # one at a time, each list freed as it is joined: the peak is the result and one list
        pieces = got.pop(k)
        pooled[k] = np.concatenate(pieces) if pieces else np.zeros(0, empty[k])
        del pieces
    x, y = metrics.cell_xy(run, pooled["cell"])
    visits = metrics.Visits(pooled["sub"], pooled["start"], pooled["end"], pooled["cell"], x, y)
    return Observed(visits, pooled["gaps_h"], weekly, pooled["per_day"], pooled["inter_s"])


def scorecard(run: Run, progress: Callable[[int, int], None] | None = None) -> list[Row]:
    """Measure a run against every published statistic of REALISM.md.

    Each statistic is computed on the ground truth (stays and trips) and on the operator's records
    (events), vectorised over all subscribers; ``within`` judges the records' value unless the row's note
    says otherwise. Fits on too little data give ``None`` with the reason in ``note``; a valid run never
    raises.

    Parameters
    ----------
    run : synthmob.Run
        A generated run.
    progress : callable, optional
        Called as ``progress(done, total)`` after each shard's records are read.

    Returns
    -------
    list of Row
        In order: jump-length β and κ, radius-of-gyration β_r and κ, exploration ρ and γ, waiting-time β,
        S(t) exponent μ, visit-frequency ζ, commuting and travel hours per day, night/day activity ratio, voice+SMS
        records per active day, and the Weibull shape of inter-event times.
    """
    scenario = run.manifest["scenario"]
    timezone, days = scenario["timezone"], int(scenario["days"])
    width, height = float(scenario["world"]["width_km"]), float(scenario["world"]["height_km"])
    diagonal = math.hypot(width, height)
    scale = f"region {width:g} × {height:g} km (diagonal {diagonal:.0f} km)"

    # The records are read one shard at a time (a shard holds whole subscribers), so memory follows the
    # visits and gaps kept for the fits, not the tens of millions of records.
    seen = _observed(run, timezone, progress)
    truth_v, record_v = metrics.truth_visits(run), seen.visits

    rows: list[Row] = []
    # 1-3: jumps and radii of gyration, truncated power laws (González et al. 2008).
    jumps = [metrics.jump_lengths(v.subscriber, v.start_ms, v.cell, v.x_m, v.y_m, end=v.end_ms)[1]
             for v in (truth_v, record_v)]
    rows += _power_law_rows("jump length", "β", *jumps, offset=JUMP_OFFSET_KM, kappa=JUMP_KAPPA_KM,
                            published="1.75 ± 0.15", low=1.60, high=1.90, scale_note=scale,
                            bound=diagonal, bound_note="the longest jump in the region (its diagonal)")
    radii = [metrics.radius_of_gyration(v.subscriber, v.x_m, v.y_m)[1] for v in (truth_v, record_v)]
    rows += _power_law_rows("radius of gyration", "β_r", *radii, offset=RG_OFFSET_KM, kappa=RG_KAPPA_KM,
                            published="1.65 ± 0.15", low=1.50, high=1.80, scale_note=scale,
                            bound=diagonal / 2, bound_note="the largest radius in the region (half its diagonal)")

    # 4: exploration versus return, P_new = ρ S^-γ (Song et al. 2010).
    truth, observed = _pair(_exploration, truth_v, record_v)
    rows.append(_row("exploration ρ", _param(truth, "rho"), _param(observed, "rho"), "0.6 ± 0.2", 0.4, 0.8,
                     _SONG, f"steps with S ≥ {EXPLORATION_MIN_S} (from one known place every step is new); "
                     + _note(truth, observed, "rho")))
    rows.append(_row("exploration γ", _param(truth, "gamma"), _param(observed, "gamma"), "0.21 ± 0.04",
                     0.17, 0.25, _SONG, _note(truth, observed, "gamma")))

    # 5: waiting times ≥ 1 h, P(Δt) ∝ Δt^-(1+β) e^(-Δt/τ); truth: stays, records: gaps between
    # consecutive voice/SMS/data records at one cell. Song et al. measured gaps between CDR events;
    # periodic location updates (every 54 min by default) would cap every gap below the 1 h fitted range.
    stays_h = metrics.waiting_times(truth_v.subscriber, truth_v.start_ms, truth_v.end_ms)[1]
    truth, observed = _pair(lambda x: _tpl(x, x_min=X_MIN_H, offset=0.0), stays_h, seen.gaps_h)
    rows.append(_row(f"waiting time β (≥ {X_MIN_H:g} h)", _param(truth, "beta", -1.0),
                     _param(observed, "beta", -1.0), "0.8 ± 0.1", 0.7, 0.9, _SONG,
                     "observed on voice/SMS/data records only; "
                     + _note(truth, observed, "beta", lambda b: b - 1.0)))

    # 6: distinct places S(t) ∝ t^μ, on the mean curve in hourly bins from 24 h on (Song et al. 2010).
    truth, observed = _pair(lambda v: _growth(v, days), truth_v, record_v)
    rows.append(_row("distinct places S(t) μ (t ≥ 24 h)", _param(truth, "mu"), _param(observed, "mu"), "≈ 0.6",
                     0.5, 0.7, _SONG, _note(truth, observed, "mu")))

    # 7: visit frequency by rank, f_k ∝ k^-ζ (Song et al. 2010).
    truth, observed = _pair(_zipf, truth_v, record_v)
    rows.append(_row("visit frequency ζ", _param(truth, "zeta"), _param(observed, "zeta"), "1.2 ± 0.1", 1.1, 1.3,
                     _SONG, _note(truth, observed, "zeta")))

    # 8: commuting time (Kung et al. 2014 measure home <-> work travel: about an hour a day in all), and
    # all travel, for which national travel surveys give a little over an hour (MiD 2017: 80 minutes per
    # person and day); ground truth only.
    trips = run.dataset("trips").to_table(columns=[schema.SUBSCRIBER_ID, "from_cell", "to_cell", "depart", "arrive"])
    people = run.table("subscribers")
    t_sub = trips[schema.SUBSCRIBER_ID].to_numpy()
    commute = metrics.commuting_trips(t_sub, trips["from_cell"], trips["to_cell"], people[schema.SUBSCRIBER_ID],
                                      people["home_cell"], people["work_cell"].fill_null(-1))
    depart, arrive = metrics.to_ms(trips["depart"]), metrics.to_ms(trips["arrive"])
    hours = metrics.travel_time_per_day(t_sub[commute], depart[commute], arrive[commute], timezone=timezone)[2]
    rows.append(_row("commuting time per commuter-day (h)", hours.mean() if len(hours) else None, None,
                     "about 1 h", 0.7, 1.3, _KUNG,
                     f"truth only, judged on truth: trips between home and work or school, mean over {len(hours)} "
                     "subscriber-days with such a trip" if len(hours) else "truth only; no commuting trips in the run",
                     judge="truth"))
    hours = metrics.travel_time_per_day(t_sub, depart, arrive, timezone=timezone)[2]
    rows.append(_row("travel time per day, all trips (h)", hours.mean() if len(hours) else None, None,
                     "about 80 min", None, None, _MID,
                     f"truth only; mean over {len(hours)} subscriber-days with travel; for comparison, no range "
                     "is judged" if len(hours) else "truth only; no trips in the run"))

    # 9-11: the operator's records only.
    ratio = _night_day_ratio(seen.weekly)
    rows.append(_row("night/day activity, weekdays (02–05 : 10–18 local)", None, ratio, "night trough", 0.0, 0.35,
                     _BARLACCHI, "records only (voice, SMS, data)" if ratio is not None
                     else "records only; no weekday daytime voice/SMS/data records"))

    per_day = seen.per_day
    rows.append(_row("voice+SMS out per active subscriber-day (median)", None,
                     np.median(per_day) if len(per_day) else None, "a few to ~10", 2.0, 12.0, _ORDER,
                     f"records only; {len(per_day)} active subscriber-days" if len(per_day)
                     else "records only; no outgoing voice/SMS records"))

    gaps_s = seen.inter_s
    if len(gaps_s) > WEIBULL_SAMPLE:  # a fixed random subsample: the fit's cost grows with n, its precision not
        gaps_s = np.random.default_rng(0).choice(gaps_s, WEIBULL_SAMPLE, replace=False)
    def weibull() -> fits.Fit:
        _need(len(gaps_s), "positive inter-event times")
        return fits.weibull(gaps_s)

    shape, reason = _attempt(weibull)
    rows.append(_row("inter-event times, Weibull shape (pooled)", None, _param((shape, reason), "shape"),
                     "bursty: shape < 1", 0.2, 1.0, _JIANG,
                     "records only (voice, SMS, data; zero gaps dropped); "
                     + (_ci("observed", shape, "shape") if shape is not None else f"no fit ({reason})")))
    return rows


# --- output ---------------------------------------------------------------------------------------------
def failures(rows: list[Row]) -> list[Row]:
    """The rows whose value lies outside the published range (``within is False``), for ``--strict``."""
    return [row for row in rows if row.within is False]


def to_json(rows: list[Row]) -> dict[str, Any]:
    """The rows as a JSON-ready mapping ``{"statistics": [{field: value, ...}, ...]}``.

    Examples
    --------
    >>> to_json([_row("ζ", None, 1.2, "1.2 ± 0.1", 1.1, 1.3, "Song 2010")])["statistics"][0]["within"]
    True
    """
    return {"statistics": [asdict(row) for row in rows]}


def from_json(data: dict[str, Any]) -> list[Row]:
    """The rows of a mapping made by :func:`to_json` (or read from ``realism.json``)."""
    return [Row(**item) for item in data["statistics"]]


def write_json(run: Run, rows: list[Row]) -> Path:
    """Write ``<run>/realism.json``: the rows, the scenario's name and seed, and the synthmob version.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    # Imported here, not at the top, so that the package itself may import this module.
    from synthmob import __version__

    scenario = run.manifest["scenario"]
    data = {"scenario": scenario.get("name"), "seed": scenario.get("seed"), "synthmob_version": __version__,
            **to_json(rows)}
    path = Path(run.path) / "realism.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def format_table(rows: list[Row]) -> str:
    """Plain fixed-width text: statistic, truth, observed, published, within (yes/no/n.a.), source.

    Examples
    --------
    >>> print(format_table([_row("ζ", None, 1.25, "1.2 ± 0.1", 1.1, 1.3, "Song 2010")]))
    statistic  truth  observed  published  within  source
    ζ          —      1.25      1.2 ± 0.1  yes     Song 2010
    """
    header = ("statistic", "truth", "observed", "published", "within", "source")
    body = [(r.statistic, _cell(r.truth), _cell(r.observed), r.published,
             {True: "yes", False: "no", None: "n.a."}[r.within], r.source) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *body])
