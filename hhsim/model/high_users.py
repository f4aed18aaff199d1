"""High users followed over time: the people of an age range with at least so many uses of an
activity in the first model year, and their share of that age range's use in each later
year (``[experiment] high_users``).

This is the design of the studies that show regression to the mean in NHS use (Roland et
al., BMJ 2005: people 65+ with two or more emergency admissions in a year made 38% of that
age group's emergency admissions in that year, under 10% the next and just over 3% five
years later, with no intervention). The cohort is chosen by its use in model year 0 among
the people alive at the start whose age then is within ``ages``; each model year the table
holds the cohort's use and person-years, and those of everyone whose current age is within
``ages`` (the age group the cohort's share is of: people who reach the range join it, and
the dead leave both). Uses and person-years count each tenant by its weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from hhsim.core.accounting import Ledger
from hhsim.world.population import Population

COLUMNS = ("year", "cohort_people", "cohort_person_years", "cohort_use", "reference_person_years",
           "reference_use")


class HighUsers:
    """Tallies by model year of the high-use cohort and of its age range."""

    def __init__(self, spec: Mapping[str, Any], ledger: Ledger, steps: int) -> None:
        self.activity = str(spec["activity"])
        self.at_least = float(spec["at_least"])
        self.first, self.last = (int(a) for a in spec["ages"])
        years = -(-steps // 12)
        self.table = np.zeros((years, len(COLUMNS) - 1))
        self._before = ledger.count[self.activity].astype(np.float64)
        self._first_year: np.ndarray | None = None  # each tenant's use in model year 0
        self._time: np.ndarray | None = None  # each tenant's years alive in model year 0
        self._eligible: np.ndarray | None = None  # alive at the start, of the ages then
        self.cohort: np.ndarray | None = None  # chosen at the end of model year 0
        self._in_range = np.zeros(0, dtype=bool)

    def start_step(self, pop: Population, t: int, alive: np.ndarray, dt: float) -> None:
        """Person-years of the age range and of the cohort over step ``t`` (``dt`` years);
        ``alive``: the indices of the living."""
        living = np.zeros(pop.n, dtype=bool)
        living[alive] = True
        in_range = living & (pop.age_years >= self.first) & (pop.age_years <= self.last)
        if t == 0:
            self._eligible = in_range.copy()
            self._first_year, self._time = np.zeros(pop.n), np.zeros(pop.n)
        self._grow(pop.n)
        if self.cohort is None:
            assert self._time is not None
            self._time[alive] += dt
        self._in_range = in_range
        weight = pop.weight.astype(np.float64)
        self.table[t // 12, 3] += float(weight[in_range].sum()) * dt
        if self.cohort is not None:
            self.table[t // 12, 1] += float(weight[self.cohort & living].sum()) * dt

    def end_step(self, pop: Population, t: int, ledger: Ledger) -> None:
        """The step's uses; at the end of model year 0, choose the cohort."""
        now = ledger.count[self.activity].astype(np.float64)
        self._grow(len(now))
        amount, self._before = now - self._before, now
        weight = pop.weight.astype(np.float64)
        year = t // 12
        self.table[year, 4] += float((amount * weight)[self._in_range].sum())
        if self.cohort is not None:
            self.table[year, 2] += float((amount * weight)[self.cohort].sum())
            return
        assert self._first_year is not None and self._eligible is not None and self._time is not None
        self._first_year += amount
        if t == 11:
            self.cohort = self._eligible & (self._first_year >= self.at_least)
            self.table[0, 0] = float(weight[self.cohort].sum())
            self.table[0, 1] = float((self._time * weight)[self.cohort].sum())
            self.table[0, 2] = float((self._first_year * weight)[self.cohort].sum())

    def _grow(self, n: int) -> None:
        """Pad the per-tenant arrays when tenants join (relets, new households): newcomers
        have no use before and are not in the cohort."""
        def pad(a: np.ndarray | None) -> np.ndarray | None:
            return a if a is None or len(a) >= n else np.concatenate([a, np.zeros(n - len(a), a.dtype)])

        self._before = pad(self._before)  # type: ignore[assignment]
        self._first_year, self._time = pad(self._first_year), pad(self._time)
        self._eligible, self.cohort = pad(self._eligible), pad(self.cohort)

    def frame(self) -> pd.DataFrame:
        """One row per model year; no rows if the run ended before the cohort was chosen."""
        if self.cohort is None:
            return empty()
        rows = pd.DataFrame(self.table, columns=list(COLUMNS[1:]))
        rows["cohort_people"] = self.table[0, 0]
        rows.insert(0, "year", np.arange(len(rows)))
        return rows


def empty() -> pd.DataFrame:
    """The table of a run that followed no high users."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "year" else "float64") for c in COLUMNS})
