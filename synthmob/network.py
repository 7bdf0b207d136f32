"""The radio network: sites, sectors, coverage and location areas.

Sites are placed with a density-dependent minimum distance (variable-radius Poisson-disk sampling), so that
their spacing is a few hundred metres downtown and kilometres in the countryside, regular rather than
clumped, as real network plans are. Urban sites carry three sectors at 120° (the common macro layout);
rural sites one omnidirectional cell. Each cell's coverage is the Voronoi polygon of its reference point
(the antenna for an omni cell, a point pushed out along the azimuth for a sector), clipped to the region:
the usual first approximation of best-server areas (e.g. the ESSnet mobile network data simulator).
Location/tracking areas group neighbouring sites by k-means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.cluster.vq import kmeans2
from scipy.spatial import cKDTree

from synthmob.scenario import World
from synthmob.schema import MCC, MNC
from synthmob.settlements import Settlements

#: Maximal Poisson-disk sampling with radius r reaches a density of about 0.7 / r² points, so a radius of
#: 0.8 / sqrt(λ) yields roughly λ sites per unit area.
_DISK_FACTOR = 0.8
#: A sector's reference point sits this fraction of the local site spacing out along its azimuth.
_SECTOR_OFFSET = 0.3


@dataclass(frozen=True)
class RadioNetwork:
    """Sites and cells of a region (arrays indexed by site id and by cell id)."""

    site_x_m: np.ndarray
    site_y_m: np.ndarray
    cell_site: np.ndarray  # int32, site of each cell
    cell_x_m: np.ndarray  # reference point of each cell
    cell_y_m: np.ndarray
    azimuth_deg: np.ndarray  # NaN for omni cells
    radio: np.ndarray  # str per cell
    area_code: np.ndarray  # int32 per cell
    ci: np.ndarray  # int64 per cell
    cgi: np.ndarray  # str per cell
    urban: np.ndarray  # bool per cell
    coverage: np.ndarray  # shapely polygons per cell
    range_m: np.ndarray

    @property
    def n_cells(self) -> int:
        return len(self.cell_site)


def raster(world: World) -> tuple[np.ndarray, np.ndarray, float]:
    """Centres of a square raster over the region (x, y in metres, flattened) and its resolution."""
    width, height = world.width_km * 1000.0, world.height_km * 1000.0
    res = float(np.clip(min(width, height) / 300.0, 50.0, 500.0))
    xs = np.arange(res / 2, width, res)
    ys = np.arange(res / 2, height, res)
    gx, gy = np.meshgrid(xs, ys)
    return gx.ravel(), gy.ravel(), res


def site_intensity(world: World, density_per_km2: np.ndarray) -> np.ndarray:
    """Sites per m² wanted where the density is ``density_per_km2``."""
    net = world.network
    per_km2 = np.clip(
        density_per_km2 / net.residents_per_site,
        (1000.0 / net.max_site_spacing_m) ** 2,
        (1000.0 / net.min_site_spacing_m) ** 2,
    )
    return per_km2 / 1e6


def place_sites(world: World, settlements: Settlements, *, rng: np.random.Generator) -> np.ndarray:
    """Site positions, shape (n, 2), by variable-radius Poisson-disk sampling over the density."""
    px, py, res = raster(world)
    lam = site_intensity(world, settlements.density(px, py))
    mass = lam * res * res
    expected = float(mass.sum())
    n_candidates = int(max(400, 15 * expected))
    picks = rng.choice(len(px), size=n_candidates, p=mass / mass.sum())
    cx = px[picks] + rng.uniform(-res / 2, res / 2, n_candidates)
    cy = py[picks] + rng.uniform(-res / 2, res / 2, n_candidates)
    radius = _DISK_FACTOR / np.sqrt(site_intensity(world, settlements.density(cx, cy)))

    accepted: list[tuple[float, float]] = []
    tree: cKDTree | None = None
    recent = np.empty((0, 2))
    for x, y, r in zip(cx, cy, radius):
        if tree is not None and tree.query_ball_point((x, y), r, return_length=True) > 0:
            continue
        if len(recent) and np.min((recent[:, 0] - x) ** 2 + (recent[:, 1] - y) ** 2) < r * r:
            continue
        accepted.append((x, y))
        recent = np.vstack([recent, (x, y)])
        if len(recent) >= 256:
            tree = cKDTree(np.asarray(accepted))
            recent = np.empty((0, 2))
    return np.asarray(accepted, dtype=np.float64).reshape(-1, 2)


def build_network(world: World, settlements: Settlements, *, rng: np.random.Generator) -> RadioNetwork:
    """Sites, sectors, coverage polygons, radio technologies, identities and location areas."""
    net = world.network
    sites = place_sites(world, settlements, rng=rng)
    n_sites = len(sites)
    site_density = settlements.density(sites[:, 0], sites[:, 1])
    spacing = 1.0 / np.sqrt(site_intensity(world, site_density))
    urban_site = site_density >= net.urban_density_per_km2
    radios = np.array(sorted(net.radio_mix))
    weights = np.array([net.radio_mix[r] for r in radios], dtype=np.float64)
    site_radio = radios[rng.choice(len(radios), size=n_sites, p=weights / weights.sum())]
    first_azimuth = rng.uniform(0.0, 120.0, n_sites)

    cell_site, cell_x, cell_y, azimuth, sector = [], [], [], [], []
    for s in range(n_sites):
        if urban_site[s]:
            for k in range(3):
                az = (first_azimuth[s] + 120.0 * k) % 360.0
                off = _SECTOR_OFFSET * spacing[s]
                cell_site.append(s)
                cell_x.append(sites[s, 0] + off * np.sin(np.radians(az)))
                cell_y.append(sites[s, 1] + off * np.cos(np.radians(az)))
                azimuth.append(az)
                sector.append(k + 1)
        else:
            cell_site.append(s)
            cell_x.append(sites[s, 0])
            cell_y.append(sites[s, 1])
            azimuth.append(np.nan)
            sector.append(0)
    cell_site_a = np.asarray(cell_site, dtype=np.int32)
    cell_x_a = np.clip(np.asarray(cell_x), 1.0, world.width_km * 1000.0 - 1.0)
    cell_y_a = np.clip(np.asarray(cell_y), 1.0, world.height_km * 1000.0 - 1.0)
    sector_a = np.asarray(sector, dtype=np.int64)

    coverage = voronoi_coverage(cell_x_a, cell_y_a, world.width_km * 1000.0, world.height_km * 1000.0)
    coords, index = shapely.get_coordinates(coverage, return_index=True)
    ax = sites[cell_site_a, 0][index]
    ay = sites[cell_site_a, 1][index]
    reach = np.hypot(coords[:, 0] - ax, coords[:, 1] - ay)
    range_m = np.zeros(len(cell_site_a))
    np.maximum.at(range_m, index, reach)

    k = max(1, min(n_sites, int(round(len(cell_site_a) / net.cells_per_area))))
    if k > 1:
        _, labels = kmeans2(sites, k, minit="++", seed=rng)
    else:
        labels = np.zeros(n_sites, dtype=np.int64)
    area_code = (1001 + labels[cell_site_a]).astype(np.int32)

    radio = site_radio[cell_site_a]
    node = 10_000 + cell_site_a.astype(np.int64)
    ci = np.where(
        radio == "LTE",
        node * 256 + sector_a,  # E-UTRAN cell identity: 20-bit eNB id, 8-bit cell (3GPP TS 36.413)
        np.where(radio == "NR", node * 4096 + sector_a, (node * 4 + sector_a) % 65536),  # 36-bit NCI; 16-bit CI
    )
    cgi = np.array([f"{MCC}-{MNC}-{a}-{c}" for a, c in zip(area_code, ci)], dtype=object)
    return RadioNetwork(
        site_x_m=sites[:, 0],
        site_y_m=sites[:, 1],
        cell_site=cell_site_a,
        cell_x_m=cell_x_a,
        cell_y_m=cell_y_a,
        azimuth_deg=np.asarray(azimuth, dtype=np.float64),
        radio=radio,
        area_code=area_code,
        ci=ci.astype(np.int64),
        cgi=cgi,
        urban=urban_site[cell_site_a],
        coverage=coverage,
        range_m=range_m,
    )


def voronoi_coverage(x_m: np.ndarray, y_m: np.ndarray, width_m: float, height_m: float) -> np.ndarray:
    """Voronoi polygon of each point, clipped to the region, in the points' order."""
    region = shapely.box(0.0, 0.0, width_m, height_m)
    points = shapely.multipoints(np.column_stack([x_m, y_m]))
    cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=region, ordered=True))
    return shapely.intersection(cells, region)


def neighbours(coverage: np.ndarray) -> np.ndarray:
    """Pairs (i, j), i < j, of cells whose coverage polygons share a boundary."""
    tree = shapely.STRtree(coverage)
    left, right = tree.query(coverage, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = shapely.intersection(coverage[left], coverage[right])
    touching = shapely.length(shared) > 1e-6  # a shared edge, not a single corner
    return np.column_stack([left[touching], right[touching]]).astype(np.int64)
