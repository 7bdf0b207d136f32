"""Synthetic settlements and the residential density they make.

Sizes follow the rank-size rule (Zipf 1949; Gabaix 1999); each settlement's density falls off exponentially
from its centre (Clark 1951), ``D(r) = D0 · exp(-r / b)``, which integrates to ``P = 2π · D0 · b²``. The
central density grows slowly with size, ``D0 = D_100k · (P / 100,000)^0.25``, so a large city is both denser
and wider than a town. A uniform rural background fills the rest.

Coordinates are metres from the region's south-west corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthmob.scenario import World


@dataclass(frozen=True)
class Settlements:
    """Settlements of a region, one array entry each (largest first)."""

    kind: np.ndarray  # str
    rank: np.ndarray  # int
    population: np.ndarray  # residents
    x_m: np.ndarray
    y_m: np.ndarray
    central_density_per_km2: np.ndarray
    scale_m: np.ndarray  # b of Clark's exponential
    rural_density_per_km2: float

    def density(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Residents per km² at the given points (vectorised)."""
        x_m = np.asarray(x_m, dtype=np.float64)
        y_m = np.asarray(y_m, dtype=np.float64)
        total = np.full(np.broadcast(x_m, y_m).shape, self.rural_density_per_km2)
        for i in range(len(self.population)):
            r = np.hypot(x_m - self.x_m[i], y_m - self.y_m[i])
            total += self.central_density_per_km2[i] * np.exp(-r / self.scale_m[i])
        return total


def place_settlements(world: World, *, rng: np.random.Generator) -> Settlements:
    """Size and place the settlements of ``world``.

    The largest settlement sits near the middle; the others are scattered at random, kept apart by a
    distance that grows with their size so that towns do not merge.
    """
    cfg = world.settlements
    kinds, ranks = [], []
    for group in cfg.groups:
        kinds += [group.kind] * group.count
        ranks += list(range(group.from_rank, group.from_rank + group.count))
    order = np.argsort(ranks, kind="stable")
    kind = np.array(kinds, dtype=object)[order]
    rank = np.array(ranks, dtype=np.int64)[order]
    population = cfg.largest_population * rank.astype(np.float64) ** -cfg.zipf_exponent
    d0 = cfg.central_density_per_km2 * (population / 100_000.0) ** 0.25
    scale_m = np.sqrt(population / (2.0 * np.pi * d0)) * 1000.0

    width, height = world.width_km * 1000.0, world.height_km * 1000.0
    xs = np.empty(len(rank))
    ys = np.empty(len(rank))
    for i in range(len(rank)):
        if i == 0:
            xs[i] = width * (0.5 + rng.uniform(-0.1, 0.1))
            ys[i] = height * (0.5 + rng.uniform(-0.1, 0.1))
            continue
        margin = min(scale_m[i], 0.1 * min(width, height))
        best, best_gap = (width / 2, height / 2), -np.inf
        for _ in range(200):
            x = rng.uniform(margin, width - margin)
            y = rng.uniform(margin, height - margin)
            gap = np.min(np.hypot(xs[:i] - x, ys[:i] - y) - 3.0 * (scale_m[:i] + scale_m[i]))
            if gap >= 0:
                best = (x, y)
                break
            if gap > best_gap:
                best, best_gap = (x, y), gap
        xs[i], ys[i] = best
    return Settlements(
        kind=kind,
        rank=rank,
        population=population,
        x_m=xs,
        y_m=ys,
        central_density_per_km2=d0,
        scale_m=scale_m,
        rural_density_per_km2=cfg.rural_density_per_km2,
    )
