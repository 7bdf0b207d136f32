"""Run scikit-mobility's DensityEPR once and print its timing as one line of JSON.

This script runs inside the peer's own virtual environment (scikit-mobility 1.3.1 needs pandas 1.x and
numpy 1.26), started by ``benchmarks/peers.py``; it imports nothing from synthmob.

Usage::

    .peer-skmob/bin/python benchmarks/peer_skmob.py TESSELLATION.geojson --agents 1000 --start 2026-03-23 --days 7

``TESSELLATION.geojson`` holds polygons with the properties ``tile_ID`` and ``relevance``. With
``--tiles squares`` the polygons are replaced by a grid of at least as many square tiles over the same
bounding box, each polygon's relevance shared among the squares it overlaps by area. Only ``generate()``
is timed; ``visits`` is the number of rows it returns, ``peak_self_mib`` this process's peak resident
memory.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
import warnings


def squares(polygons, relevance: str):
    """A grid of at least ``len(polygons)`` square tiles over their bounding box; each polygon's relevance is
    shared among the squares it overlaps, in proportion to the overlap's area."""
    import geopandas as gpd
    import numpy as np
    from shapely.geometry import box

    minx, miny, maxx, maxy = polygons.total_bounds
    width, height = maxx - minx, maxy - miny
    side = math.sqrt(width * height / len(polygons))
    while math.ceil(width / side) * math.ceil(height / side) < len(polygons):
        side *= 0.99
    cols, rows = math.ceil(width / side), math.ceil(height / side)
    tiles = [box(minx + c * side, miny + r * side, minx + (c + 1) * side, miny + (r + 1) * side)
             for r in range(rows) for c in range(cols)]
    weight = np.zeros(len(tiles))
    for polygon, value in zip(polygons.geometry, polygons[relevance]):
        x0, y0, x1, y1 = polygon.bounds
        for r in range(int((y0 - miny) // side), min(int((y1 - miny) // side), rows - 1) + 1):
            for c in range(int((x0 - minx) // side), min(int((x1 - minx) // side), cols - 1) + 1):
                weight[r * cols + c] += value * polygon.intersection(tiles[r * cols + c]).area / polygon.area
    return gpd.GeoDataFrame({"tile_ID": [str(i) for i in range(len(tiles))], relevance: weight},
                            geometry=tiles, crs=polygons.crs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tessellation")
    parser.add_argument("--agents", type=int, required=True)
    parser.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tiles", choices=["cells", "squares"], default="cells")
    args = parser.parse_args()

    warnings.simplefilter("ignore")  # pandas/geopandas deprecation noise from an old stack
    import geopandas as gpd
    import pandas as pd
    import skmob
    from skmob.models.epr import DensityEPR

    with open(args.tessellation) as file:  # not gpd.read_file: geopandas 0.10 breaks on fiona 1.10
        tessellation = gpd.GeoDataFrame.from_features(json.load(file)["features"], crs="EPSG:4326")
    tessellation["tile_ID"] = tessellation["tile_ID"].astype(str)
    if args.tiles == "squares":
        tessellation = squares(tessellation, "relevance")
    start = pd.Timestamp(args.start)
    end = start + pd.Timedelta(days=args.days)

    started = time.perf_counter()
    tdf = DensityEPR().generate(start, end, tessellation, relevance_column="relevance", n_agents=args.agents,
                                random_state=args.seed, show_progress=False)
    wall = time.perf_counter() - started

    print(json.dumps({
        "tool": f"scikit-mobility {skmob.__version__} DensityEPR",
        "agents": args.agents,
        "days": args.days,
        "tiles": len(tessellation),
        "tessellation": args.tiles,
        "wall_s": wall,
        "visits": len(tdf),
        "peak_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
