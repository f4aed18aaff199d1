"""Excess winter mortality by the ONS definition, from a run's deaths by month.

ONS (Excess winter mortality in England and Wales, QMI): winter is December to March; the
excess winter deaths (EWD) of a winter are its deaths minus the mean of the deaths in the
four months before (August to November) and the four months after (April to July); the
index is EWD / that mean. Deaths are counted, not rates: the four-month periods have 121,
122 and 122 days (no leap years in the model).

A run's monthly table has the deaths of each step (``deaths``); step ``t`` falls in calendar
month ``(start_month - 1 + t) mod 12``. A winter is counted when all twelve months from
August to July lie within the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hhsim.health.calendar import calendar_month

AUGUST = 7  # calendar month index, January = 0
#: Months from the August before a winter: August-November, December-March, April-July.
BEFORE, WINTER, AFTER = range(0, 4), range(4, 8), range(8, 12)


@dataclass(frozen=True)
class Winter:
    """One winter's deaths and its ONS excess winter mortality."""

    first_step: int  # the step of the August before the winter
    winter_deaths: float  # December to March
    non_winter_mean: float  # mean of August-November and the following April-July
    excess: float  # EWD: winter deaths minus the non-winter mean

    @property
    def index(self) -> float:
        """The ONS index: excess / non-winter mean (0.19 for 19%); NaN with no deaths."""
        return self.excess / self.non_winter_mean if self.non_winter_mean else float("nan")


def winters(deaths: Sequence[float], start_month: int) -> list[Winter]:
    """Every complete ONS winter (August to July) in a run's deaths by step (``deaths[t]``
    for step t; ``start_month``: calendar month of step 0, 1 = January)."""
    d = np.asarray(deaths, dtype=float)
    first = (AUGUST - calendar_month(start_month, 0)) % 12
    out = []
    for t0 in range(first, d.size - 11, 12):
        year = d[t0:t0 + 12]
        before, winter, after = (float(year[list(r)].sum()) for r in (BEFORE, WINTER, AFTER))
        mean = (before + after) / 2
        out.append(Winter(t0, winter, mean, winter - mean))
    return out


def ewm_index(deaths: Sequence[float], start_month: int) -> float:
    """The ONS excess winter mortality index pooled over the complete winters of a run:
    total excess over total non-winter mean (NaN when the run holds no complete winter)."""
    ws = winters(deaths, start_month)
    mean = sum(w.non_winter_mean for w in ws)
    return sum(w.excess for w in ws) / mean if mean else float("nan")
