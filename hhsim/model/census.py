"""The census: people in each health state and NHS use by model year, sex, deprivation and
current age, the table a baseline is checked against (``[experiment] census = true``).

Published cross-sections (self-rated health, conditions, care need by age band and sex) and
service use (GP consultations, admissions, NHS spending per person by age) describe people
by the age they are now, not the age they started the run at; the by-group table follows
start-of-run groups. Each month the census adds, to the cell of every living person's sex,
IMD decile and age band at the month's start (``CENSUS_AGE_BANDS``): the person-years lived,
the person-years in each state of each chain (a chain's people of other ages hold its first
state), the deaths, and the month's activity and NHS cost (per-tenant tallies only: the
ledger's increments over the month). Model year ``y`` holds months ``12y`` to ``12y + 11``.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd

from hhsim.core.accounting import Ledger
from hhsim.health.model_file import HealthModel
from hhsim.health.terms import MAX_AGE
from hhsim.world.population import DECILES, Population

#: Lower bounds of the census's age bands (years); the last is open (85+).
CENSUS_AGE_BANDS = (0, 1, 5, 10, 16, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85)
CENSUS_AGE_LABELS = (*(f"{a}-{b - 1}" for a, b in pairwise(CENSUS_AGE_BANDS)), f"{CENSUS_AGE_BANDS[-1]}+")
#: Each band's label -> its first and last year of age (the open band's last is ``MAX_AGE``).
CENSUS_AGE_SPANS = {label: (first, last) for label, first, last in zip(
    CENSUS_AGE_LABELS, CENSUS_AGE_BANDS, (*(b - 1 for b in CENSUS_AGE_BANDS[1:]), MAX_AGE), strict=True)}
_BAND_OF_AGE = (np.searchsorted(CENSUS_AGE_BANDS, np.arange(MAX_AGE + 1), side="right") - 1).astype(np.intp)


class Census:
    """Tallies by (model year, sex, decile, age band); ``columns`` name the last axis."""

    def __init__(self, health: HealthModel, ledger: Ledger, steps: int, prices: dict[str, float],
                 nhs: set[str]) -> None:
        self.chains = {name: chain.states for name, chain in health.chains.items()}
        self.activities = [a for a, per in ledger.per_tenant.items() if per]
        self.nhs_prices = {a: prices[a] for a in self.activities if a in nhs and a in prices}
        self.columns = ["person_years", "deaths", *(f"{c}:{s}" for c, states in self.chains.items()
                                                  for s in states), *self.activities, "nhs_cost"]
        self._col = {c: k for k, c in enumerate(self.columns)}
        years = -(-steps // 12)
        self.cells = 2 * DECILES * len(CENSUS_AGE_BANDS)
        self.table = np.zeros((years, self.cells, len(self.columns)))
        self._before = {a: ledger.count[a].astype(np.float64) for a in self.activities}
        self._cell = np.zeros(0, dtype=np.intp)

    def _cells(self, pop: Population) -> np.ndarray:
        return ((pop.female.view(np.int8).astype(np.intp) * DECILES + pop.deprivation.astype(np.intp) - 1)
                * len(CENSUS_AGE_BANDS) + _BAND_OF_AGE[np.minimum(pop.age_years, MAX_AGE)])

    def _add(self, t: int, column: int, cell: np.ndarray, weights: np.ndarray) -> None:
        self.table[t // 12, :, column] += np.bincount(cell, weights=weights, minlength=self.cells)

    def start_step(self, pop: Population, t: int, alive: np.ndarray, dt: float) -> None:
        """Person-years and person-years in each state of the living ``alive`` at the start of
        step ``t`` (``dt`` years long)."""
        self._cell = self._cells(pop)
        cell = self._cell[alive]
        exposure = pop.weight[alive].astype(np.float64) * dt
        self._add(t, 0, cell, exposure)
        for name, states in self.chains.items():
            state = pop.states[name][alive].astype(np.intp)
            counts = np.bincount(cell * len(states) + state, weights=exposure,
                                 minlength=self.cells * len(states)).reshape(self.cells, len(states))
            first = self._col[f"{name}:{states[0]}"]
            self.table[t // 12, :, first:first + len(states)] += counts

    def end_step(self, pop: Population, t: int, ledger: Ledger, died: np.ndarray) -> None:
        """Deaths and the activity and NHS cost of step ``t``, in the cells of its start."""
        self._add(t, 1, self._cell[died], pop.weight[died].astype(np.float64))
        cost = np.zeros(pop.n)
        for a in self.activities:
            now = ledger.count[a].astype(np.float64)
            amount, self._before[a] = now - self._before[a], now
            if a in self.nhs_prices:
                cost += amount * self.nhs_prices[a]
            self._add(t, self._col[a], self._cell, amount * pop.weight)
        self._add(t, self._col["nhs_cost"], self._cell, cost * pop.weight)

    def frame(self) -> pd.DataFrame:
        """One row per model year, sex, decile and age band with anyone in it."""
        years = self.table.shape[0]
        band = np.tile(np.arange(len(CENSUS_AGE_BANDS)), 2 * DECILES)
        decile = np.tile(np.repeat(np.arange(1, DECILES + 1), len(CENSUS_AGE_BANDS)), 2)
        sex = np.repeat(np.array(["male", "female"]), DECILES * len(CENSUS_AGE_BANDS))
        frames = []
        for y in range(years):
            df = pd.DataFrame(self.table[y], columns=self.columns)
            df.insert(0, "age_band", np.array(CENSUS_AGE_LABELS)[band])
            df.insert(0, "decile", decile)
            df.insert(0, "sex", sex)
            df.insert(0, "year", y)
            frames.append(df[df["person_years"] > 0])
        return pd.concat(frames, ignore_index=True) if frames else empty()


def empty() -> pd.DataFrame:
    """The census table of a run that kept none."""
    return pd.DataFrame({"year": pd.Series(dtype="int64"), "sex": pd.Series(dtype="object"),
                         "decile": pd.Series(dtype="int64"), "age_band": pd.Series(dtype="object"),
                         "person_years": pd.Series(dtype="float64")})
