"""The ``population`` and ``behaviour`` sections: who the subscribers are and how their days unfold."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from synthmob.scenario.base import _Frozen
from synthmob.schema import PERSONAS


# --- population --------------------------------------------------------------------------------------------
class AgeBand(_Frozen):
    """One band of the population pyramid: shares of women and men in it (any scale; they are normalised)."""

    age_band: str = Field(pattern=r"^\d{1,3}(-\d{1,3}|\+)$", description="e.g. '25-34' or '65+'")
    female: float = Field(ge=0.0)
    male: float = Field(ge=0.0)


# Germany, 2023, residents aged 15 and over, percent by band and sex (Destatis, Bevölkerungsstand; rounded).
_PYRAMID = (
    AgeBand(age_band="15-24", female=4.9, male=5.4),
    AgeBand(age_band="25-34", female=6.3, male=6.8),
    AgeBand(age_band="35-44", female=6.4, male=6.6),
    AgeBand(age_band="45-54", female=6.3, male=6.4),
    AgeBand(age_band="55-64", female=8.0, male=7.9),
    AgeBand(age_band="65+", female=12.5, male=10.1),
)

# Persona weights by age band. Employment rates from Destatis/Eurostat (≈77 % of 20-64 year olds employed,
# ≈15 % of them in shift work; most 15-24 year olds in education), rounded.
_PERSONAS: dict[str, dict[str, float]] = {
    "15-24": {"student": 0.6, "commuter": 0.27, "shift_worker": 0.05, "home_based": 0.08},
    "25-34": {"student": 0.08, "commuter": 0.66, "shift_worker": 0.12, "home_based": 0.14},
    "35-44": {"commuter": 0.72, "shift_worker": 0.12, "home_based": 0.16},
    "45-54": {"commuter": 0.72, "shift_worker": 0.11, "home_based": 0.17},
    "55-64": {"commuter": 0.58, "shift_worker": 0.08, "home_based": 0.34},
    "65+": {"commuter": 0.06, "home_based": 0.94},
}


class Population(_Frozen):
    """Who the subscribers are."""

    pyramid: tuple[AgeBand, ...] = Field(_PYRAMID, min_length=1, description="population pyramid")
    personas: dict[str, dict[str, float]] = Field(
        _PERSONAS, description="persona weights for each age band of the pyramid"
    )
    visitor_share: float = Field(0.02, ge=0.0, le=1.0, description="share of subscribers who are visitors")
    work_model: Literal["gravity", "radiation"] = Field(
        "gravity",
        description="how a work or school place is chosen: a gravity model, opportunities × (d + "
        "gravity_offset_km)^-gravity_exponent, or the parameter-free radiation model (Simini et al., Nature "
        "484, 2012). Radiation is made for zones of many thousands of people; on cells of a few hundred it keeps "
        "commutes far too short (Masucci et al., Phys. Rev. E 88, 2013), hence gravity by default",
    )
    gravity_exponent: float = Field(
        2.0, gt=0.0, description="distance exponent of the gravity model (≈2 is typical; Lenormand et al. 2016)"
    )
    gravity_offset_km: float = Field(1.0, gt=0.0, description="distance offset of the gravity model")

    @model_validator(mode="after")
    def _personas(self) -> "Population":
        bands = [b.age_band for b in self.pyramid]
        if len(set(bands)) != len(bands):
            raise ValueError(f"pyramid lists an age band twice: {bands}")
        if sum(b.female + b.male for b in self.pyramid) <= 0:
            raise ValueError("pyramid shares add up to 0; give positive shares")
        missing = [b for b in bands if b not in self.personas]
        if missing:
            raise ValueError(f"personas has no weights for age band(s) {missing}; give weights for each of {bands}")
        extra = [b for b in self.personas if b not in bands]
        if extra:
            raise ValueError(f"personas names age band(s) {extra} not in the pyramid {bands}")
        valid = [p for p in PERSONAS if p != "visitor"]
        for band, weights in self.personas.items():
            unknown = [p for p in weights if p not in valid]
            if unknown:
                raise ValueError(f"personas.{band} names unknown persona(s) {unknown}; valid: {valid}")
            if sum(weights.values()) <= 0 or min(weights.values()) < 0:
                raise ValueError(f"personas.{band} needs non-negative weights that add up to more than 0")
        return self


# --- behaviour ---------------------------------------------------------------------------------------------
class Behaviour(_Frozen):
    """How a subscriber's days unfold: anchored schedules, outings, exploration and return.

    Exploration follows the EPR model (Song, Koren, Wang & Barabási, Nature Physics 6, 2010): with S places
    visited so far, a new place is explored with probability rho·S^-gamma, otherwise a known place is
    revisited in proportion to past visits. New places are chosen by attractiveness and distance,
    attractiveness × (d + d0)^-beta.
    """

    exploration_rho: float = Field(0.6, gt=0.0, le=1.0, description="EPR rho (Song et al. 2010: 0.6 ± 0.2)")
    exploration_gamma: float = Field(0.21, ge=0.0, le=2.0, description="EPR gamma (Song et al. 2010: 0.21 ± 0.04)")
    distance_exponent: float = Field(
        2.9,
        ge=0.0,
        le=6.0,
        description="beta of the new-place kernel, per destination cell. Destinations spread over a plane "
        "(≈ d places at distance d), so jumps then fall off as about d^-(beta-1), near the d^-1.75 of "
        "González et al., Nature 453 (2008). Calibrated: 2.9 puts the radius-of-gyration exponent seen "
        "through the records on region inside González's range confined to the region (1.36; 1.1 with 2.75)",
    )
    distance_offset_km: float = Field(1.5, gt=0.0, description="d0 of the kernel (González et al. 2008: Δr0 ≈ 1.5 km)")
    work_start_h: float = Field(8.0, ge=0.0, lt=24.0, description="mean local start of the working day")
    work_start_sd_h: float = Field(0.8, ge=0.0, le=6.0, description="spread of work start between days and people")
    work_hours: float = Field(8.5, gt=0.0, le=16.0, description="mean time at work including breaks")
    school_start_h: float = Field(8.0, ge=0.0, lt=24.0, description="mean local start of school or university")
    school_hours: float = Field(6.5, gt=0.0, le=16.0, description="mean time at school or university")
    absence_rate: float = Field(
        0.06, ge=0.0, le=1.0, description="share of working days spent off work (leave and sickness)"
    )
    after_work_outing: float = Field(0.35, ge=0.0, le=1.0, description="chance of a stop on the way home")
    evening_outing: float = Field(0.2, ge=0.0, le=1.0, description="chance of an evening outing from home")
    outings_weekday: float = Field(1.3, ge=0.0, le=10.0, description="mean outings on a free weekday")
    outings_weekend: float = Field(1.6, ge=0.0, le=10.0, description="mean outings on a weekend day (MiD 2017: 3.1 trips per person and day in all)")
    outings_visitor: float = Field(3.0, ge=0.0, le=10.0, description="mean outings a day for a visitor")
    chain_probability: float = Field(
        0.4, ge=0.0, le=1.0, description="chance that an outing goes on to another place before home"
    )
    other_stay_median_h: float = Field(1.2, gt=0.0, le=12.0, description="median stay at a non-anchor place")
    other_stay_sigma: float = Field(0.8, gt=0.0, le=3.0, description="log-normal sigma of that stay")
