"""Invariants of the radio network: coverage tiles the region, sectors, site spacing, identities, adjacency."""

from __future__ import annotations

import re

import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree

from synthmob.network import _DISK_FACTOR, neighbours, site_intensity
from synthmob.scenario import load_scenario
from synthmob.world import build_world

# (preset, seed, overrides): the two presets, and the city with a higher urban threshold so that its
# outskirts get rural (omnidirectional) sites.
CASES = {
    "tiny-0": ("tiny", 0, None),
    "tiny-7": ("tiny", 7, None),
    "city-1": ("city", 1, None),
    "city-rural-2": ("city", 2, {"world": {"network": {"urban_density_per_km2": 1000.0}}}),
}


@pytest.fixture(scope="module", params=list(CASES))
def world(request):
    name, seed, overrides = CASES[request.param]
    return build_world(load_scenario(name, overrides=overrides).world, rng=np.random.default_rng(seed))


def region_area(world) -> float:
    return world.config.width_km * world.config.height_km * 1e6


# --- coverage ------------------------------------------------------------------------------------------------
def test_one_valid_polygon_per_cell_containing_its_reference_point(world):
    net = world.network
    assert len(net.coverage) == net.n_cells
    assert np.all(shapely.is_valid(net.coverage))
    assert np.all(shapely.get_type_id(net.coverage) == 3)  # Polygon
    assert np.all(shapely.area(net.coverage) > 0)
    points = shapely.points(net.cell_x_m, net.cell_y_m)
    assert np.all(shapely.covers(net.coverage, points)), "coverage polygons are not in cell order"


def test_coverage_tiles_the_region(world):
    net = world.network
    area = region_area(world)
    assert shapely.area(net.coverage).sum() == pytest.approx(area, rel=1e-6)
    region = shapely.box(0, 0, world.config.width_km * 1000, world.config.height_km * 1000)
    assert np.all(shapely.covered_by(net.coverage, region.buffer(1e-6)))
    union = shapely.union_all(net.coverage)
    assert union.area == pytest.approx(area, rel=1e-6)
    # Pairwise overlaps have (numerically) no area.
    tree = shapely.STRtree(net.coverage)
    left, right = tree.query(net.coverage, predicate="intersects")
    keep = left < right
    overlap = shapely.area(shapely.intersection(net.coverage[left[keep]], net.coverage[right[keep]]))
    assert overlap.sum() <= 1e-6 * area
    assert overlap.max() <= 1e-3  # m²


def test_each_point_is_covered_by_its_nearest_reference_point(world):
    """Voronoi: a random point lies in the polygon of the nearest cell reference point."""
    net = world.network
    rng = np.random.default_rng(0)
    w, h = world.config.width_km * 1000, world.config.height_km * 1000
    px, py = rng.uniform(0, w, 500), rng.uniform(0, h, 500)
    dist, nearest = cKDTree(np.column_stack([net.cell_x_m, net.cell_y_m])).query(np.column_stack([px, py]), k=2)
    clear = dist[:, 1] - dist[:, 0] > 1e-3  # skip points on a boundary
    inside = shapely.contains_xy(net.coverage[nearest[clear, 0]], px[clear], py[clear])
    assert inside.all()


def test_range_is_the_furthest_polygon_vertex_from_the_antenna(world):
    net = world.network
    for c in range(0, net.n_cells, max(1, net.n_cells // 40)):
        xy = shapely.get_coordinates(net.coverage[c])
        s = net.cell_site[c]
        assert net.range_m[c] == pytest.approx(np.hypot(xy[:, 0] - net.site_x_m[s], xy[:, 1] - net.site_y_m[s]).max())


# --- sites and sectors ---------------------------------------------------------------------------------------
def test_urban_sites_have_three_sectors_rural_sites_one_omni_cell(world):
    net = world.network
    n_sites = len(net.site_x_m)
    counts = np.bincount(net.cell_site, minlength=n_sites)
    assert np.all(np.diff(net.cell_site) >= 0)  # cells of a site are consecutive
    site_urban = np.zeros(n_sites, dtype=bool)
    site_urban[net.cell_site] = net.urban
    # The urban flag is the density at the site against the configured threshold.
    density = world.settlements.density(net.site_x_m, net.site_y_m)
    np.testing.assert_array_equal(site_urban, density >= world.config.network.urban_density_per_km2)
    for s in range(n_sites):
        cells = np.flatnonzero(net.cell_site == s)
        az = net.azimuth_deg[cells]
        assert np.all(net.urban[cells] == site_urban[s])
        if site_urban[s]:
            assert counts[s] == 3
            assert np.all((az >= 0) & (az < 360))
            ordered = np.sort(az)
            np.testing.assert_allclose(np.diff(np.r_[ordered, ordered[0] + 360.0]), [120.0] * 3, atol=1e-9)
            # Each sector's reference point lies out along its azimuth (unless clipped at the region's edge).
            dx = net.cell_x_m[cells] - net.site_x_m[s]
            dy = net.cell_y_m[cells] - net.site_y_m[s]
            bearing = np.degrees(np.arctan2(dx, dy)) % 360
            w, h = world.config.width_km * 1000, world.config.height_km * 1000
            unclipped = (net.cell_x_m[cells] > 1) & (net.cell_x_m[cells] < w - 1)
            unclipped &= (net.cell_y_m[cells] > 1) & (net.cell_y_m[cells] < h - 1)
            diff = (bearing - az + 180) % 360 - 180
            assert np.all(np.abs(diff[unclipped]) < 1e-6)
        else:
            assert counts[s] == 1
            assert np.isnan(az).all()
            assert net.cell_x_m[cells[0]] == net.site_x_m[s] and net.cell_y_m[cells[0]] == net.site_y_m[s]


def test_rural_variant_has_both_kinds_of_sites():
    w = build_world(load_scenario("city", overrides=CASES["city-rural-2"][2]).world, rng=np.random.default_rng(2))
    net = w.network
    assert net.urban.any() and (~net.urban).any()
    assert np.isnan(net.azimuth_deg[~net.urban]).all()
    assert not np.isnan(net.azimuth_deg[net.urban]).any()


def test_sites_inside_the_region(world):
    net = world.network
    w, h = world.config.width_km * 1000, world.config.height_km * 1000
    assert np.all((net.site_x_m >= 0) & (net.site_x_m <= w) & (net.site_y_m >= 0) & (net.site_y_m <= h))
    assert np.all((net.cell_x_m >= 0) & (net.cell_x_m <= w) & (net.cell_y_m >= 0) & (net.cell_y_m <= h))


def test_site_spacing_guarantee(world):
    """Poisson-disk sampling: a site is never closer to an earlier site than its own radius 0.8/sqrt(λ(site)).

    Since λ is capped at 1/min_site_spacing², no two sites are closer than 0.8 · min_site_spacing_m.
    """
    net, cfg = world.network, world.config
    xy = np.column_stack([net.site_x_m, net.site_y_m])
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(d, np.inf)
    assert d.min() >= _DISK_FACTOR * cfg.network.min_site_spacing_m - 1e-6
    radius = _DISK_FACTOR / np.sqrt(site_intensity(cfg, world.settlements.density(xy[:, 0], xy[:, 1])))
    for j in range(1, len(xy)):  # sites are in order of acceptance
        assert d[j, :j].min() >= radius[j] - 1e-6, j


def test_sites_are_denser_where_people_are(world):
    net = world.network
    xy = np.column_stack([net.site_x_m, net.site_y_m])
    nn = cKDTree(xy).query(xy, k=2)[0][:, 1]
    density = world.settlements.density(xy[:, 0], xy[:, 1])
    lo, hi = np.quantile(density, [0.25, 0.75])
    dense, sparse = nn[density >= hi], nn[density <= lo]
    assert np.median(dense) < 0.8 * np.median(sparse)


# --- identities ----------------------------------------------------------------------------------------------
def test_cgi_unique_and_well_formed(world):
    net = world.network
    assert len(set(net.cgi.tolist())) == net.n_cells
    pattern = re.compile(r"^001-01-(\d+)-(\d+)$")
    for cgi, area, ci in zip(net.cgi, net.area_code, net.ci):
        m = pattern.match(cgi)
        assert m, cgi
        assert (int(m.group(1)), int(m.group(2))) == (int(area), int(ci))


def test_cell_identities_by_radio(world):
    net = world.network
    n_sites = len(net.site_x_m)
    # One radio per site.
    for s in range(n_sites):
        assert len(set(net.radio[net.cell_site == s].tolist())) == 1
    sector = np.zeros(net.n_cells, dtype=np.int64)
    for s in range(n_sites):
        cells = np.flatnonzero(net.cell_site == s)
        sector[cells] = np.arange(1, len(cells) + 1) if len(cells) == 3 else 0
    lte = net.radio == "LTE"
    assert lte.any()
    enb = net.ci[lte] // 256
    np.testing.assert_array_equal(net.ci[lte] % 256, sector[lte])
    np.testing.assert_array_equal(enb, 10_000 + net.cell_site[lte])
    assert np.all(enb < 2**20)  # 20-bit eNB id
    nr = net.radio == "NR"
    np.testing.assert_array_equal(net.ci[nr], (10_000 + net.cell_site[nr]) * 4096 + sector[nr])
    assert np.all(net.ci[nr] < 2**36)
    gsm = np.isin(net.radio, ["GSM", "UMTS"])
    assert np.all((net.ci[gsm] >= 0) & (net.ci[gsm] < 65536))
    # (area, ci) identifies a cell.
    assert len(set(zip(net.area_code.tolist(), net.ci.tolist()))) == net.n_cells


def test_location_areas(world):
    net = world.network
    assert np.all(net.area_code >= 1001)
    for s in range(len(net.site_x_m)):  # a site lies in one area
        assert len(set(net.area_code[net.cell_site == s].tolist())) == 1
    k = len(np.unique(net.area_code))
    expected = max(1, min(len(net.site_x_m), round(net.n_cells / world.config.network.cells_per_area)))
    assert 1 <= k <= expected


# --- neighbours ----------------------------------------------------------------------------------------------
def shared_length(coverage, i, j):
    return shapely.length(shapely.intersection(shapely.boundary(coverage[i]), shapely.boundary(coverage[j])))


def test_neighbours_share_an_edge_and_are_complete(world):
    cov = world.network.coverage
    pairs = neighbours(cov)
    assert pairs.dtype == np.int64 and pairs.shape[1] == 2
    assert np.all(pairs[:, 0] < pairs[:, 1])
    assert len({tuple(p) for p in pairs.tolist()}) == len(pairs)
    lengths = shared_length(cov, pairs[:, 0], pairs[:, 1])
    assert np.all(lengths > 0)
    # Every pair sharing a boundary longer than a millimetre is listed.
    tree = shapely.STRtree(cov)
    left, right = tree.query(cov, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    long = shared_length(cov, left, right) > 1e-3
    expected = set(zip(left[long].tolist(), right[long].tolist()))
    assert expected <= {tuple(p) for p in pairs.tolist()}
    # Every cell has a neighbour, and the mean degree of a planar tiling is below 6.
    degree = np.bincount(pairs.ravel(), minlength=len(cov))
    assert degree.min() >= 1
    assert 2 * len(pairs) / len(cov) < 6


def test_neighbours_of_a_known_grid():
    """A 3×3 grid of unit squares: 12 edge-sharing pairs; corner-only contacts are not neighbours."""
    cov = np.array([shapely.box(x, y, x + 1, y + 1) for y in range(3) for x in range(3)])
    pairs = {tuple(p) for p in neighbours(cov).tolist()}
    expected = set()
    for y in range(3):
        for x in range(3):
            i = 3 * y + x
            if x < 2:
                expected.add((i, i + 1))
            if y < 2:
                expected.add((i, i + 3))
    assert pairs == expected
    assert (0, 4) not in pairs  # touch at a corner only
