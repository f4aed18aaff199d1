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
import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hhsim.errors import HhsimError, did_you_mean
from hhsim.groups import AGE_BANDS, AGE_LABELS
from hhsim.world.population import DECILES, TENURES, Population

COLUMNS = ("age_band", "imd_decile", "tenure", "count")
MAX_LISTED = 20


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


def read_profile(path: str | Path) -> Profile:
    """Read a profile CSV; every bad line is reported before anything is used."""
    p = Path(path)
    if not p.is_file():
        raise HhsimError(str(p), "profile file not found", "check the path in population.profile")
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise HhsimError(str(p), f"is not a readable CSV file ({exc})",
                         "save the profile as CSV text") from None
    if not rows:
        raise HhsimError(str(p), "is empty", f"give a header row: {','.join(COLUMNS)}")
    header = [h.strip().lower() for h in rows[0]]
    problems = []
    for column in COLUMNS:
        if column not in header:
            problems.append(f"line 1: no column '{column}' (fix: the header must be {','.join(COLUMNS)})")
    for column in header:
        if column not in COLUMNS:
            guess = did_you_mean(column, COLUMNS)
            hint = f" (fix: did you mean '{guess}'?)" if guess else ""
            problems.append(f"line 1: unknown column '{column}'{hint}")
    counts = np.zeros((len(AGE_BANDS), DECILES, len(TENURES)))
    if not problems:
        col = {c: header.index(c) for c in COLUMNS}
        for line, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            cells = {c: (row[i].strip() if i < len(row) else "") for c, i in col.items()}
            band = cells["age_band"].replace(" ", "")
            tenure = cells["tenure"].lower()
            try:
                decile = int(cells["imd_decile"])
            except ValueError:
                decile = 0
            try:
                count = float(cells["count"])
            except ValueError:
                count = -1.0
            if band not in AGE_LABELS:
                problems.append(f"line {line}: age_band '{cells['age_band']}' "
                                f"(fix: use one of {', '.join(AGE_LABELS)})")
            elif not 1 <= decile <= DECILES:
                problems.append(f"line {line}: imd_decile '{cells['imd_decile']}' "
                                "(fix: a whole number 1 to 10)")
            elif tenure not in TENURES:
                problems.append(f"line {line}: tenure '{cells['tenure']}' "
                                f"(fix: use one of {', '.join(TENURES)})")
            elif not (count >= 0 and np.isfinite(count)):
                problems.append(f"line {line}: count '{cells['count']}' (fix: a number of people, 0 or more)")
            else:
                counts[AGE_LABELS.index(band), decile - 1, TENURES.index(tenure)] += count
    if not problems and counts.sum() <= 0:
        problems.append("no people in any cell (fix: give counts above 0)")
    if problems:
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise HhsimError(str(p), f"{len(problems)} problem(s), nothing was used:\n  "
                         + "\n  ".join(problems[:MAX_LISTED]) + more)
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
