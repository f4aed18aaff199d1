"""Fit ``world.tenancies.age``: ages of adults in newly let homes that keep the social-rented
age structure as it starts over 10 years of turnover.

One run per age band with every newcomer in that band; the year-end age structure of a
mixture of newcomers is (nearly) the mixture of those runs' structures, so the shares are a
least-squares fit (non-negative, summing to 1) to the starting structure at every year end.

    python calibration/tenancy_ages.py --tenants 50000 --seeds 1,2
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
from scipy.optimize import nnls

from hhsim.core.resources import default_model_tree, world_tree
from hhsim.model.simulation import HousingHealthModel, RunConfig

YEARS = 10
SUM_WEIGHT = 100.0  # weight of the shares-sum-to-1 row in the least squares


def structure_by_year(shares: np.ndarray, tenants: int, seed: int) -> np.ndarray:
    """Living tenants by age band (world.age.breaks) at the start and each year end."""
    world = copy.deepcopy(world_tree())
    world["world"]["tenancies"]["age"]["value"] = list(shares)
    breaks = [*world["world"]["age"]["breaks"], 200]
    model = HousingHealthModel(RunConfig(model_tree=default_model_tree(), world_tree=world, tenants=tenants,
                                         tenure={"social_rented": 1.0}, steps=12 * YEARS, seed=seed,
                                         turnover=True))
    out = [np.histogram(model.pop.age_years[model.pop.alive], breaks)[0]]
    for _ in range(YEARS):
        for _ in range(12):
            model.step()
        out.append(np.histogram(model.pop.age_years[model.pop.alive], breaks)[0])
    return np.array(out, dtype=float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50_000)
    parser.add_argument("--seeds", default="1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    bands = len(world_tree()["world"]["age"]["breaks"])
    runs = []
    for b in range(bands):
        one = np.full(bands, 1e-9)
        one[b] = 1.0
        counts = sum(structure_by_year(one / one.sum(), args.tenants, s) for s in seeds)
        start = counts[0] / counts[0].sum()
        runs.append(counts[1:] / counts[1:].sum(axis=1, keepdims=True))
    by_year = np.array(runs)  # (newcomers' band, year, band)
    a = by_year.transpose(1, 2, 0).reshape(-1, bands)
    x, _ = nnls(np.vstack([a, SUM_WEIGHT * np.ones(bands)]), np.append(np.tile(start, YEARS), SUM_WEIGHT))
    x /= x.sum()
    print("start   ", np.round(start, 4).tolist())
    print("shares  ", np.round(x, 4).tolist())
    print("year end", np.round(by_year[:, -1, :].T @ x, 4).tolist())


if __name__ == "__main__":
    main()
