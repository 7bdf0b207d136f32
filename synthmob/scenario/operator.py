"""The ``identities`` and ``events`` sections: how the network knows subscribers and what it records."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from synthmob.scenario.base import _Frozen


# --- operator's view ---------------------------------------------------------------------------------------
class Identities(_Frozen):
    """Identifiers and human-facing fields of subscribers, all in ranges that can never belong to a real person.

    IMSIs are in the test network 001-01 (ITU-T E.212); IMEIs carry type allocation codes with the reporting
    body identifier 00, reserved for test IMEIs (GSMA TS.06, Appendix A); MSISDNs come from numbers reserved
    for drama and fiction, or are pseudonymous tokens that cannot be dialled.
    """

    locale: str = Field("de_DE", description="Faker locale of names (e.g. de_DE, en_GB, fr_FR)")
    msisdn_mode: Literal["auto", "fiction", "pseudonym"] = Field(
        "auto",
        description="fiction: numbers from Ofcom's mobile range for drama (+44 7700 900000-900999), only as "
        "many as exist (1,000); pseudonym: tokens that cannot be dialled; auto: fiction when the population fits",
    )
    device_mix: dict[Literal["smartphone", "feature_phone", "modem"], float] = Field(
        {"smartphone": 0.9, "feature_phone": 0.07, "modem": 0.03},
        description="share of subscribers by device type (smartphones: ~90 % of handsets in Europe, GSMA 2023)",
    )

    @field_validator("device_mix")
    @classmethod
    def _device_mix(cls, value: dict[str, float]) -> dict[str, float]:
        if min(value.values(), default=0.0) < 0 or sum(value.values()) <= 0:
            raise ValueError("give non-negative shares that add up to more than 0")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        from faker.config import AVAILABLE_LOCALES

        if value not in AVAILABLE_LOCALES:
            raise ValueError(f"not a Faker locale; e.g. de_DE, en_GB, fr_FR, it_IT ({len(AVAILABLE_LOCALES)} in all)")
        return value


class Events(_Frozen):
    """What the operator records: voice calls, SMS, data sessions, handovers and location updates.

    Rates are per active subscriber and day; each subscriber's activity is a log-normal multiple of them
    (heavy-tailed across subscribers), shaped over the week by a profile with a night trough, a daytime
    plateau and an evening peak (Barlacchi et al., Scientific Data 2, 2015). Events come in bursts, which
    makes inter-event times heavy-tailed (Jo et al., New J. Phys. 14, 2012).
    """

    voice_per_day: float = Field(3.0, ge=0.0, le=200.0, description="outgoing voice calls per subscriber-day")
    sms_per_day: float = Field(2.0, ge=0.0, le=500.0, description="outgoing SMS per subscriber-day")
    data_per_day: float = Field(24.0, ge=0.0, le=2000.0, description="data sessions (xDR) per subscriber-day")
    activity_sigma: float = Field(
        0.6,
        ge=0.0,
        le=3.0,
        description="log-normal sigma of a subscriber's activity around the mean rates. Calibrated: gaps of an "
        "hour or more between a subscriber's records at one cell then fall off with the exponent of Song et "
        "al., Nature Physics 6 (2010), beta = 0.8 ± 0.1 (0.75 on region over 14 days; 0.66 with sigma 0.9, "
        "as a wider mix of quiet and busy subscribers flattens the pooled gaps)",
    )
    burst_mean: float = Field(
        1.6, ge=1.0, le=20.0, description="mean events in a burst (bursts make inter-event times heavy-tailed)"
    )
    burst_gap_s: float = Field(240.0, gt=0.0, description="mean gap between events inside a burst")
    call_median_s: float = Field(75.0, gt=0.0, description="median voice call duration (log-normal)")
    call_sigma: float = Field(1.0, gt=0.0, le=3.0, description="log-normal sigma of call duration")
    data_median_s: float = Field(90.0, gt=0.0, description="median data session duration (log-normal)")
    data_median_kb: float = Field(350.0, gt=0.0, description="median downlink volume of a data session")
    data_sigma: float = Field(1.5, gt=0.0, le=4.0, description="log-normal sigma of data volume and duration")
    uplink_ratio: float = Field(0.12, gt=0.0, le=2.0, description="uplink bytes over downlink bytes")
    neighbour_probability: float = Field(
        0.12,
        ge=0.0,
        le=1.0,
        description="share of records (at cells that have neighbours) at a neighbouring cell whose coverage "
        "overlaps the serving one (the ping-pong analysts must handle). Calibrated with neighbour_decay and "
        "neighbour_dwell_min: they set how fast the records reveal new cells, so that exploration, visit "
        "frequency and jump lengths seen through the records match Song et al., Nature Physics 6 (2010) and "
        "González et al., Nature 453 (2008) on region",
    )
    neighbour_decay: float = Field(
        0.35,
        gt=0.0,
        le=1.0,
        description="how unequally a handset hears a cell's neighbours: from a subscriber's spot in a cell they "
        "rank in a fixed order, and the k-th takes a share of the displaced records proportional to "
        "neighbour_decay^k (1: all alike). A handset that stays put oscillates among a few cells (Wu et al., "
        "IEEE MDM 2014); calibrated as neighbour_probability",
    )
    neighbour_dwell_min: float = Field(
        30.0,
        gt=0.0,
        le=1440.0,
        description="how long a handset camps on a neighbouring cell: records are displaced in windows of this "
        "length, all those of a window at one cell to the same neighbour; calibrated as neighbour_probability",
    )
    periodic_update_min: float = Field(
        54.0, gt=0.0, description="periodic location/tracking-area update timer (3GPP TS 24.301 T3412: 54 min)"
    )
    contacts_mean: float = Field(12.0, ge=1.0, le=500.0, description="mean contacts in the social network")
    contacts_sigma: float = Field(0.8, ge=0.0, le=3.0, description="log-normal sigma of the number of contacts")
    contact_distance_km: float = Field(
        2.0, gt=0.0, description="d0 of the contact kernel (d + d0)^-2: most contacts live near each other"
    )
    triadic_closure: float = Field(
        0.3, ge=0.0, le=1.0, description="share of contacts made through a friend of a friend (clustering)"
    )
