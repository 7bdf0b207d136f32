"""The ``world`` section: settlements, radio network and travel."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from synthmob.scenario.base import _Frozen

#: Shortest-time tables between all cells take 3 modes × n² × 8 bytes: 12,000 cells need about 3.5 GB.
MAX_CELLS = 12_000


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
    transit_rural_kmh: float = Field(
        45.0, gt=0.0, description="public transport speed in the countryside (buses and regional trains mixed)"
    )
    detour_factor: float = Field(
        1.3, ge=1.0, le=3.0, description="road distance over straight-line distance (Ballou et al. 2002: 1.2-1.4)"
    )
    walk_max_km: float = Field(1.5, gt=0.0, description="longest trip usually walked")
    walk_share: float = Field(0.8, ge=0.0, le=1.0, description="share of short trips walked")
    car_share: float = Field(0.8, ge=0.0, le=1.0, description="share of longer trips by car, for car owners")
    car_ownership_urban: float = Field(0.58, ge=0.0, le=1.0, description="car availability in dense areas (MiD 2017, Nobis & Kuhnimhof 2018: 42 % of "
        "metropolitan households have no car)")
    car_ownership_rural: float = Field(0.85, ge=0.0, le=1.0, description="car availability in the countryside (MiD 2017: about 10 % of rural households have "
        "no car)")
    trunk_car_kmh: float = Field(
        95.0, gt=0.0, description="car speed on a trunk corridor between towns (motorways and federal roads). "
        "Light vehicles averaged 116-117 km/h at about 100 motorway counting points in 2010-2014 (BASt study "
        "of 2016, as reported by auto motor und sport, April 2019); lower here for federal roads, junctions "
        "and congestion"
    )
    trunk_transit_kmh: float = Field(
        65.0, gt=0.0, description="public transport speed on a trunk corridor, stops included. Regional-Express "
        "trains average about 70-90 km/h (German Wikipedia, 'Regional-Express'); lower here because stopping "
        "regional trains and buses serve the same corridors"
    )
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
