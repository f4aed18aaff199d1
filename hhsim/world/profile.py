"""A local profile: how many people of each age band, deprivation decile and tenure live in a
place, so that results can be reported for that place.

The profile is a CSV with one row per cell::

    age_band,imd_decile,tenure,count
    16-24,1,social_rented,1250
    ...

``age_band`` is one of 16-24, 25-34, ..., 85+; ``imd_decile`` 1..10; ``tenure`` as in the
world parameters; ``count`` the number of people (cells not listed have none). The
synthetic population is generated with the profile's tenure mix and, within each tenure,
its age-band and decile shares; then each tenant is weighted by its cell's count over the
number of tenants simulated in that cell (post-stratification). A cell with people but no
simulated tenant hands its count to the tenants of the same age band and tenure, else of
the same tenure; the number of people so moved is in each run record
(``profile_people_moved``) and printed by ``hhsim run``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError
from hhsim.world.bands import AGE_BANDS, AGE_LABELS
from hhsim.world.csvfile import Problems, data_rows, header, read_rows
from hhsim.world.population import DECILES, TENURES, Population

COLUMNS = ("age_band", "imd_decile", "tenure", "count")


@dataclass
class Profile:
    """People by (age band, decile, tenure): counts of shape (8, 10, len(TENURES))."""

    counts: np.ndarray

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    def tenure_mix(self) -> dict[str, float]:
        by_tenure = self.counts.sum(axis=(0, 1)) / self.total
        return {t: float(by_tenure[i]) for i, t in enumerate(TENURES) if by_tenure[i] > 0}

    def world(self, world: Mapping[str, Any]) -> dict:
        """World parameters whose age and decile shares per tenure follow the profile."""
        out = copy.deepcopy(dict(world))
        for i, tenure in enumerate(TENURES):
            cells = self.counts[:, :, i]
            if cells.sum() == 0:
                continue
            out["world"]["age"][tenure]["value"] = (cells.sum(axis=1) / cells.sum()).tolist()
            out["world"]["deprivation"][tenure]["value"] = (cells.sum(axis=0) / cells.sum()).tolist()
        return out


def _cell(text: str, convert, fix: str) -> tuple[Any, str | None]:
    """``convert(text)``, or None and the reason it was refused."""
    try:
        return convert(text), None
    except ValueError:
        return None, fix


def _decile(text: str) -> int:
    x = float(text)
    if not (x.is_integer() and 1 <= x <= DECILES):
        raise ValueError(text)
    return int(x)


MAX_COUNT = 1e10  # people in one cell: more than live on Earth


def _count(text: str) -> float:
    x = float(text)
    if not (np.isfinite(x) and 0 <= x <= MAX_COUNT):
        raise ValueError(text)
    return x


def _listed(text: str, choices: tuple[str, ...]) -> int:
    if text not in choices:
        raise ValueError(text)
    return choices.index(text)


def read_profile(path: str | Path) -> Profile:
    """Read a profile CSV; every bad line is reported before anything is used
    (``hhsim.world.csvfile``: the same rules as a stock file)."""
    p = Path(path)
    rows, lines = read_rows(p, "profile file", "cell (age band, decile, tenure, count)")
    positions = {name.strip().lower(): pos for pos, name in enumerate(rows[0])}
    problems = Problems(p, positions, "nothing was used")
    where = header(rows, lines[0], COLUMNS, COLUMNS, problems)
    problems.raise_if_any()
    rows, lines = data_rows(rows, lines, problems)
    checks = {
        "age_band": (lambda t: _listed(t.replace(" ", ""), AGE_LABELS),
                     f"use one of {', '.join(AGE_LABELS)}"),
        "imd_decile": (_decile, "a whole number 1 to 10"),
        "tenure": (lambda t: _listed(t.lower(), TENURES), f"use one of {', '.join(TENURES)}"),
        "count": (_count, f"a number of people, 0 to {MAX_COUNT:,.0f}"),
    }
    counts = np.zeros((len(AGE_BANDS), DECILES, len(TENURES)))
    for row, line in zip(rows, lines, strict=True):
        cell = {}
        for column, (convert, fix) in checks.items():
            text = row[where[column]].strip()
            cell[column], bad = _cell(text, convert, fix)
            if bad:
                problems.add(line, column, f"'{text}' is not allowed", bad)
        if None not in cell.values():
            counts[cell["age_band"], cell["imd_decile"] - 1, cell["tenure"]] += cell["count"]
    problems.raise_if_any()
    if counts.sum() <= 0:
        problems.add(lines[0], "count", "no people in any cell", "give counts above 0")
        problems.raise_if_any()
    return Profile(counts)


def poststratify(pop: Population, profile: Profile) -> float:
    """Set every tenant's weight from the profile; return the number of people whose cell had
    no simulated tenant (their count went to the nearest cells that had some)."""
    band = (np.searchsorted(AGE_BANDS, pop.age_years, side="right") - 1).clip(0, len(AGE_BANDS) - 1)
    cell = np.ravel_multi_index((band, pop.deprivation - 1, pop.tenure), profile.counts.shape)
    simulated = np.bincount(cell, minlength=profile.counts.size).reshape(profile.counts.shape)
    counts = profile.counts.copy()
    moved = 0.0
    empty = (counts > 0) & (simulated == 0)
    for a, d, t in zip(*np.nonzero(empty), strict=True):
        people, counts[a, d, t] = counts[a, d, t], 0.0
        same_age, same_tenure = simulated[a, :, t], simulated[:, :, t]
        if same_age.sum() > 0:
            counts[a, :, t] += people * same_age / same_age.sum()
        elif same_tenure.sum() > 0:
            counts[:, :, t] += people * same_tenure / same_tenure.sum()
        else:
            raise HhsimError("population.profile", f"{TENURES[t]} has people but no simulated tenant",
                             "give more tenants")
        moved += people
    with np.errstate(invalid="ignore", divide="ignore"):
        per_tenant = np.where(simulated > 0, counts / simulated, 0.0)
    pop.weight = per_tenant.ravel()[cell].astype(np.float32)
    return moved
