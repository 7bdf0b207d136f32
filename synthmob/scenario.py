"""Scenarios: YAML files parsed once into frozen, validated objects.

A scenario says which synthetic world to build, who lives in it and for how long to simulate them. Files are
read once, at the edge, by :func:`load_scenario`; everything downstream receives a frozen :class:`Scenario`.
Unknown keys are errors, and every error names the file, the field, the value and what would be valid.

Every default that stands for a fact about the world says where the number comes from.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthmob.errors import MISSING, ConfigError
from synthmob.schema import PERSONAS

PRESETS = ("tiny", "city", "region")
#: Shortest-time tables between all cells take 3 modes × n² × 8 bytes: 12,000 cells need about 3.5 GB.
MAX_CELLS = 12_000
DEFAULT_PRESET = "region"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- world -------------------------------------------------------------------------------------------------
class Origin(_Frozen):
    """Where the region's south-west corner is put on the globe.

    The default, 0° N 0° E ("Null Island", in the Gulf of Guinea), marks the data as fictional: no synthetic
    footfall can be mistaken for a real town's.
    """

    lat: float = Field(0.0, ge=-80.0, le=80.0, description="latitude of the south-west corner, degrees")
    lon: float = Field(0.0, ge=-180.0, le=180.0, description="longitude of the south-west corner, degrees")


class SettlementGroup(_Frozen):
    """Settlements of one kind, taking consecutive ranks of the rank-size (Zipf) hierarchy."""

    kind: Literal["city", "town", "village"] = Field(description="what the settlements are called")
    count: int = Field(ge=1, le=1000, description="how many settlements of this kind")
    from_rank: int = Field(ge=1, description="rank of the largest of them in the national hierarchy")


class Settlements(_Frozen):
    """Settlement sizes follow the rank-size rule P_r = P_1 · r^-a.

    Zipf's law for city sizes (Zipf 1949; Gabaix, QJE 114, 1999) has a ≈ 1. A region is a window on a
    national hierarchy: it holds its city at rank 1 and its towns and villages further down. Density falls
    off exponentially from each centre (Clark, J. R. Stat. Soc. A 114, 1951).
    """

    largest_population: int = Field(1_500_000, ge=100, le=50_000_000, description="residents of rank 1")
    zipf_exponent: float = Field(1.0, gt=0.0, le=3.0, description="rank-size exponent a (Gabaix 1999: ≈1)")
    groups: tuple[SettlementGroup, ...] = Field(
        (
            SettlementGroup(kind="city", count=1, from_rank=1),
            SettlementGroup(kind="town", count=8, from_rank=8),
            SettlementGroup(kind="village", count=30, from_rank=60),
        ),
        min_length=1,
        description="kinds of settlement and their ranks",
    )
    central_density_per_km2: float = Field(
        4000.0,
        gt=0.0,
        description="central density of a settlement of 100,000 residents; scales with population^0.25 "
        "(European city centres: a few thousand to ~15,000 residents/km², Bertaud & Malpezzi 2003)",
    )
    rural_density_per_km2: float = Field(
        40.0, ge=0.0, description="background density of the countryside (rural Germany: ~40-100/km², Destatis)"
    )


class Network(_Frozen):
    """Radio network planning.

    Sites are placed in proportion to residential density, each serving about ``residents_per_site`` people,
    but never closer than ``min_site_spacing_m`` nor further apart than ``max_site_spacing_m`` (urban macro
    sites: inter-site distance of a few hundred metres; rural: several kilometres; 3GPP TR 36.814 uses 500 m
    urban and 1,732 m rural reference layouts). Sites denser than ``urban_density_per_km2`` have three sectors.
    """

    residents_per_site: float = Field(2500.0, gt=0.0, description="residents served by one site")
    min_site_spacing_m: float = Field(300.0, gt=0.0, description="smallest distance between sites")
    max_site_spacing_m: float = Field(6000.0, gt=0.0, description="largest distance between sites")
    urban_density_per_km2: float = Field(
        300.0, ge=0.0, description="density above which a site has three sectors (Eurostat: 300/km² urban cluster)"
    )
    cells_per_area: int = Field(40, ge=1, description="cells grouped into one location/tracking area")
    radio_mix: dict[Literal["GSM", "UMTS", "LTE", "NR"], float] = Field(
        {"LTE": 0.75, "NR": 0.15, "GSM": 0.1}, description="share of sites by radio technology"
    )

    @model_validator(mode="after")
    def _spacing(self) -> "Network":
        if self.min_site_spacing_m >= self.max_site_spacing_m:
            raise ValueError(
                f"min_site_spacing_m ({self.min_site_spacing_m}) must be below max_site_spacing_m "
                f"({self.max_site_spacing_m})"
            )
        if sum(self.radio_mix.values()) <= 0 or min(self.radio_mix.values()) < 0:
            raise ValueError("radio_mix needs non-negative shares that add up to more than 0")
        return self


class Travel(_Frozen):
    """Speeds on the cell graph and the choice of mode."""

    walk_kmh: float = Field(4.8, gt=0.0, description="walking speed (Bohannon 1997: 1.27-1.46 m/s comfortable)")
    car_urban_kmh: float = Field(
        22.0, gt=0.0, description="average car speed in a dense centre (European cities: 18-30 km/h)"
    )
    car_rural_kmh: float = Field(70.0, gt=0.0, description="average car speed in the countryside")
    transit_urban_kmh: float = Field(
        18.0, gt=0.0, description="public transport door-to-door speed in a dense centre, stops included"
    )
    transit_rural_kmh: float = Field(35.0, gt=0.0, description="public transport speed in the countryside")
    detour_factor: float = Field(
        1.3, ge=1.0, le=3.0, description="road distance over straight-line distance (Ballou et al. 2002: 1.2-1.4)"
    )
    walk_max_km: float = Field(1.5, gt=0.0, description="longest trip usually walked")
    walk_share: float = Field(0.8, ge=0.0, le=1.0, description="share of short trips walked")
    car_share: float = Field(0.8, ge=0.0, le=1.0, description="share of longer trips by car, for car owners")
    car_ownership_urban: float = Field(0.45, ge=0.0, le=1.0, description="car availability in dense areas (MiD 2017, Nobis & Kuhnimhof 2018: 42 % of "
        "metropolitan households have no car)")
    car_ownership_rural: float = Field(0.85, ge=0.0, le=1.0, description="car availability in the countryside (MiD 2017: about 10 % of rural households have "
        "no car)")
    car_overhead_s: float = Field(240.0, ge=0.0, description="parking and walking to the car, per trip")
    transit_overhead_s: float = Field(420.0, ge=0.0, description="walking to the stop and waiting, per trip")
    time_noise: float = Field(0.12, ge=0.0, le=1.0, description="log-normal sigma of a trip's duration")


class World(_Frozen):
    """The synthetic region: settlements, radio network, and how fast one moves through it."""

    width_km: float = Field(150.0, gt=0.5, le=1000.0, description="east-west extent")
    height_km: float = Field(150.0, gt=0.5, le=1000.0, description="north-south extent")
    origin: Origin = Origin()
    settlements: Settlements = Settlements()
    network: Network = Network()
    travel: Travel = Travel()
    jobs_exponent: float = Field(
        1.3,
        gt=0.0,
        le=3.0,
        description="jobs ∝ density^x: jobs concentrate in centres more than residents do (x > 1)",
    )

    def estimated_cells(self) -> int:
        """A quick upper estimate of the number of cells (a few tens of percent above what gets built)."""
        area = self.width_km * self.height_km
        residents = self.settlements.rural_density_per_km2 * area + sum(
            self.settlements.largest_population * rank ** -self.settlements.zipf_exponent
            for group in self.settlements.groups
            for rank in range(group.from_rank, group.from_rank + group.count)
        )
        floor = area / (self.network.max_site_spacing_m / 1000.0) ** 2
        return int(floor + 3 * residents / self.network.residents_per_site)

    @model_validator(mode="after")
    def _size(self) -> "World":
        cells = self.estimated_cells()
        if cells > MAX_CELLS:
            raise ValueError(
                f"this world would have about {cells:,} cells, more than the {MAX_CELLS:,} that a run can route "
                "in memory; make the region smaller, or raise network.residents_per_site or max_site_spacing_m"
            )
        return self


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
        2.75,
        ge=0.0,
        le=6.0,
        description="beta of the new-place kernel, per destination cell. Destinations spread over a plane "
        "(≈ d places at distance d), so jumps then fall off as d^-(beta-1) ≈ d^-1.75, the exponent of "
        "González et al., Nature 453 (2008)",
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
        0.9, ge=0.0, le=3.0, description="log-normal sigma of a subscriber's activity around the mean rates"
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
        0.08,
        ge=0.0,
        le=1.0,
        description="chance that a record is at a neighbouring cell whose coverage overlaps the serving one "
        "(what makes the ping-pong effect analysts must handle)",
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


# --- scenario ----------------------------------------------------------------------------------------------
class Scenario(_Frozen):
    """Everything a run needs, validated and frozen."""

    name: str = Field(
        "scenario", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="names the default output folder"
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="root seed; the same seed gives the same output")
    subscribers: int = Field(1000, ge=1, le=100_000_000, description="number of synthetic subscribers")
    days: int = Field(7, ge=1, le=366, description="number of local days simulated")
    start: dt.date = Field(dt.date(2026, 3, 23), description="first local day (default: a Monday)")
    timezone: str = Field("Europe/Berlin", description="IANA time zone people live by")
    shard_size: int = Field(1000, ge=1, le=1_000_000, description="subscribers per shard (fixed, not per worker)")
    out: Path | None = Field(None, description="output folder (default runs/<name>)")
    world: World = World()
    population: Population = Population()
    behaviour: Behaviour = Behaviour()
    identities: Identities = Identities()
    events: Events = Events()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a known IANA time zone; e.g. Europe/Berlin, UTC, America/New_York") from None
        return value

    @property
    def output_folder(self) -> Path:
        return self.out if self.out is not None else Path("runs") / self.name

    @property
    def n_shards(self) -> int:
        return -(-self.subscribers // self.shard_size)


# --- documenting -------------------------------------------------------------------------------------------
def to_yaml(scenario: Scenario) -> str:
    """The whole resolved scenario as YAML, each field followed by its description as a comment.

    The text loads back into an equal scenario with :func:`load_scenario`.
    """
    header = [f"# synthmob scenario {scenario.name!r}: every field, resolved, with what it means."]
    return "\n".join(header + _describe(scenario, 0)) + "\n"


def _describe(model: BaseModel, depth: int) -> list[str]:
    pad = "  " * depth
    lines = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            doc = (type(value).__doc__ or "").strip().splitlines()
            lines.append(f"{pad}{name}:" + (f"  # {doc[0]}" if doc else ""))
            lines += _describe(value, depth + 1)
            continue
        comment = f"  # {info.description}" if info.description else ""
        plain = _jsonable(value)
        if isinstance(plain, (list, dict)) and plain and any(isinstance(v, (list, dict)) for v in _values(plain)):
            block = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
            lines.append(f"{pad}{name}:{comment}")
            lines += [f"{pad}  {line}" for line in block.rstrip().splitlines()]
        else:
            text = yaml.safe_dump(plain, default_flow_style=True, allow_unicode=True, width=10**6).strip()
            text = text.removesuffix("...").strip()
            lines.append(f"{pad}{name}: {text}{comment}")
    return lines


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (dt.date, Path)):
        return str(value)
    return value


def _values(plain: list | dict) -> list:
    return list(plain.values()) if isinstance(plain, dict) else list(plain)


# --- loading -----------------------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found unhashable key; a key must be a plain name", key_node.start_mark
            ) from None
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice; give each key once", mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Dates stay strings until pydantic parses them, so an impossible date (2026-02-30) is reported against its
# field like any other bad value, instead of failing inside the YAML parser.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def preset_path(name: str) -> Path | None:
    """The YAML file of a shipped preset, or None if ``name`` is not one."""
    if name not in PRESETS:
        return None
    here = Path(__file__).resolve().parent
    for folder in (here / "configs", here.parent / "configs"):
        candidate = folder / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    return None


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a scenario file into a mapping, turning every kind of failure into a :class:`ConfigError`."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            source, None, MISSING, f"no such file; give a YAML file or a preset name ({', '.join(PRESETS)})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(source, None, MISSING, "is a folder; give a YAML scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, None, MISSING, f"cannot be read ({exc}); give a readable UTF-8 YAML file") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(source, where, MISSING, f"invalid YAML ({problem}); write 'key: value' pairs") from None
    except ValueError as exc:  # pragma: no cover - PyYAML's own conversions; dates no longer get here
        raise ConfigError(source, None, MISSING, f"invalid YAML value ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, None, data, "a scenario file must be a mapping of 'key: value' pairs")
    return data


def load_scenario(
    config: "str | Path | Mapping[str, Any] | Scenario",
    *,
    overrides: Mapping[str, Any] | None = None,
    override_names: Mapping[str, str] | None = None,
) -> Scenario:
    """Build a :class:`Scenario` from a preset name, a YAML path, a mapping or a scenario, plus overrides.

    Parameters
    ----------
    config
        ``"tiny"``, ``"city"`` or ``"region"``; a path to a YAML file; a mapping of the same keys; or a
        :class:`Scenario` to copy.
    overrides
        Top-level fields to replace (``seed``, ``subscribers``, ``days``, ``start``, ``out`` ...); a mapping
        value for a section (``world``) is merged into it. ``None`` values are ignored.
    override_names
        How to name an overridden field in an error (the command line passes ``{"days": "--days"}``).

    Raises
    ------
    ConfigError
        One line naming the file, the field, the value found and what would be valid.

    Examples
    --------
    >>> s = load_scenario("tiny", overrides={"seed": 7})
    >>> s.seed, s.name
    (7, 'tiny')
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if isinstance(config, Scenario):
        source, data = "scenario", config.model_dump(mode="python")
    elif isinstance(config, Mapping):
        source, data = "mapping", dict(config)
    else:
        path = Path(config)
        try:
            is_file = path.is_file()
        except OSError as exc:
            raise ConfigError(str(path), None, MISSING, f"cannot be read ({exc.strerror}); give a readable YAML file") from None
        preset = preset_path(str(config)) if not is_file else None
        if preset is not None:
            path = preset
        source, data = str(path), read_yaml(path)
    merged = _merge(data, overrides)
    try:
        return Scenario.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, source, overrides, override_names or {}) from None


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _given(overrides: Mapping[str, Any], loc: tuple) -> bool:
    """Whether the value at ``loc`` came from the overrides rather than the file."""
    node: Any = overrides
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return not isinstance(node, Mapping)  # a whole section or list was given
    return True


def _config_error(
    exc: ValidationError, source: str, overrides: Mapping[str, Any], names: Mapping[str, str]
) -> ConfigError:
    """Turn pydantic's first error into a one-line :class:`ConfigError`."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or None
    if loc and loc[0] in overrides and _given(overrides, loc):
        source = "command line" if names else "argument"
        field = names.get(str(loc[0]), field) if len(loc) == 1 else field
    value = err.get("input", MISSING)
    if err["type"] == "extra_forbidden":
        valid = _fields_at(loc[:-1])
        return ConfigError(source, field, MISSING, f"unknown field; valid fields here: {', '.join(valid)}")
    if err["type"] == "missing":
        return ConfigError(source, field, MISSING, "is required")
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
        value = MISSING if isinstance(value, Mapping) else value
    message = message[0].lower() + message[1:]
    return ConfigError(source, field, value, message)


def _fields_at(loc: tuple) -> list[str]:
    """Names of the fields of the model found at ``loc`` inside a scenario."""
    model: Any = Scenario
    for part in loc:
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            break
        annotation = info.annotation
        model = next(
            (a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)),
            annotation,
        )
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return sorted(getattr(model, "model_fields", {}))
