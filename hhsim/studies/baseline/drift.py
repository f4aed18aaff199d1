"""The drift check: does the model hold England's cross-section as its people age?

Two views of one closed population of England's adults (all tenures) and their children,
followed for ``years``:

- **stable population**: each adult age band's share in each state at model year t against
  year 0 (the census, ``hhsim.model.census``). Children turning 16 enter the youngest band and
  every band takes in the one below, so entrants replace leavers in every band (the 85+ band
  loses only to death). The **standardised** stable view holds each band's make-up at year 0:
  the change within each stratum of tenure and deprivation fifth, weighted by the stratum's
  year-0 person-years (direct standardisation). A closed population has no household
  formation: nobody leaves home or changes tenure, so the children who turn 16 stay in their
  parents' tenure (21.6% socially renting) while the adults of 16-24 the world starts with are
  household reference persons and partners (4.9%); over ten years a band's tenure mix moves
  with the people entering it, and the chains whose cross-section depends on tenure move with
  it, though no one's own chances changed. Standardising removes that change of make-up and
  keeps the chains' dynamics.
- **closed cohort**: the people alive at year t against what the cross-section says for the
  same people (each one's initial-distribution chances for the chain at their age, sex,
  deprivation, tenure and other states then), by sex and five-year band of their age then;
  and by group (all adult ages): does each tenure keep its own cross-section, and do the
  people with a condition keep theirs (the chain's initial odds ratio on that condition)?

A model without drift keeps both differences within Monte-Carlo error of 0; issue 16 asks
for at most 1 percentage point at 2, 5 and 10 years.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from hhsim.core.resources import world_tree
from hhsim.model.census import CENSUS_AGE_BANDS, CENSUS_AGE_LABELS, CENSUS_AGE_SPANS
from hhsim.model.simulation import HousingHealthModel, RunConfig
from hhsim.world.population import TENURES
from hhsim.world.synthetic import england_mix

ADULT_BANDS = [k for k, b in enumerate(CENSUS_AGE_BANDS) if b >= 16]
CHECK_YEARS = (2, 5, 10)
#: Deprivation fifths of the standardised stable view's strata (deciles 1-2 ... 9-10).
FIFTHS = 5


def england(world: Mapping[str, Any]) -> dict[str, float]:
    """England's tenure mix (``world.tenure_share``), the population national rates describe."""
    return {t: float(x) for t, x in zip(TENURES, england_mix(world), strict=True) if x > 0}


def _band(age_years: np.ndarray) -> np.ndarray:
    return np.searchsorted(CENSUS_AGE_BANDS, age_years, side="right") - 1


Rows = list[dict[str, Any]]


def _shares(model: HousingHealthModel, chains: Sequence[str],
            conditions: Mapping[str, Sequence[str]]) -> tuple[Rows, Rows]:
    """Observed and expected shares of each state now among living adults: by sex and adult
    band, and by group: each tenure, and the people in the later state of each chain in the
    chain's ``conditions`` (each chain's chances computed once for all)."""
    pop, health = model.pop, model.health
    who = np.flatnonzero(pop.alive & (pop.age_years >= 16))
    sex, band, tenure = pop.female[who].view(np.int8), _band(pop.age_years[who]), pop.tenure[who]
    bands = [({"sex": ("male", "female")[s], "age_band": CENSUS_AGE_LABELS[b]}, (sex == s) & (band == b))
             for s in (0, 1) for b in ADULT_BANDS]
    by_tenure = [({"group": "tenure", "level": TENURES[t]}, tenure == t) for t in np.unique(tenure)]
    out: tuple[Rows, Rows] = ([], [])
    for name in chains:
        chain = health.chains[name]
        expected = chain.initial.chances(pop)[who]
        observed = np.eye(len(chain.states))[pop.states[name][who]]
        by_condition = [({"group": c, "level": health.chains[c].states[1]}, pop.states[c][who] == 1)
                        for c in conditions.get(name, ())]
        for rows, cells in zip(out, (bands, by_tenure + by_condition), strict=True):
            for labels, cell in cells:
                n = int(cell.sum())
                if not n:
                    continue
                rows += [{"chain": name, "state": state, **labels, "people": n,
                          "observed": observed[cell, k].mean(), "expected": expected[cell, k].mean()}
                         for k, state in enumerate(chain.states)]
    return out


class Strata:
    """Person-years of living adults, in all and in each state of ``chains``, by model year
    and stratum (sex, census age band, tenure and deprivation fifth), counted at the start of
    each month (unweighted: each person counts one)."""

    def __init__(self, chains: Mapping[str, Sequence[str]], years: int) -> None:
        self.chains = {name: list(states) for name, states in chains.items()}
        self.cells = 2 * len(TENURES) * FIFTHS * len(CENSUS_AGE_BANDS)
        self.columns = ["person_years", *(f"{c}:{s}" for c, states in self.chains.items() for s in states)]
        self.table = np.zeros((years, self.cells, len(self.columns)))

    def add(self, model: HousingHealthModel, year: int) -> None:
        """Add one month of ``model``'s living adults to model year ``year``."""
        pop = model.pop
        who = np.flatnonzero(pop.alive & (pop.age_years >= 16))
        cell = (((pop.female[who].astype(np.intp) * len(TENURES) + pop.tenure[who].astype(np.intp)) * FIFTHS
                 + (pop.deprivation[who].astype(np.intp) - 1) * FIFTHS // 10) * len(CENSUS_AGE_BANDS)
                + _band(pop.age_years[who]))
        table, col = self.table[year], 0
        table[:, col] += np.bincount(cell, minlength=self.cells) / 12
        for name, states in self.chains.items():
            k = len(states)
            counts = np.bincount(cell * k + pop.states[name][who], minlength=self.cells * k) / 12
            table[:, col + 1:col + 1 + k] += counts.reshape(self.cells, k)
            col += k

    def frame(self) -> pd.DataFrame:
        """One row per model year and stratum with anyone in it: ``year``, ``sex``,
        ``age_band``, ``tenure``, ``fifth`` (1 most deprived), ``person_years`` and one column
        of person-years per ``chain:state``."""
        index = np.arange(self.cells)
        band, rest = index % len(CENSUS_AGE_BANDS), index // len(CENSUS_AGE_BANDS)
        fifth, rest = rest % FIFTHS, rest // FIFTHS
        tenure, female = rest % len(TENURES), rest // len(TENURES)
        labels = pd.DataFrame({"sex": np.array(["male", "female"])[female],
                               "age_band": np.array(CENSUS_AGE_LABELS)[band],
                               "tenure": np.array(TENURES)[tenure], "fifth": fifth + 1})
        frames = [pd.concat([labels.assign(year=y), pd.DataFrame(t, columns=self.columns)], axis=1)
                  for y, t in enumerate(self.table)]
        out = pd.concat(frames, ignore_index=True)
        return out[out["person_years"] > 0].reset_index(drop=True)


class DriftTables(NamedTuple):
    """One drift run's tables: ``stable`` (census shares by year, sex and adult band),
    ``cohort`` (observed and expected shares at years 0 and ``CHECK_YEARS``, by sex and band),
    ``census`` (the run's whole census, adults only: by year, sex, decile and band),
    ``groups`` (as ``cohort``, by group: ``group`` "tenure" or a condition's chain, ``level``
    the tenure or the condition's state) and ``strata`` (``Strata.frame``: the stable view by
    tenure and deprivation fifth within each sex and band, for ``standardised_drift``)."""

    stable: pd.DataFrame
    cohort: pd.DataFrame
    census: pd.DataFrame
    groups: pd.DataFrame
    strata: pd.DataFrame


def conditions_of(model_tree: Mapping[str, Any], chains: Sequence[str]) -> dict[str, list[str]]:
    """For each chain, the two-state chains among ``chains`` that its initial odds ratios name:
    the conditions whose people should keep the chain's cross-section."""
    defs = model_tree["chains"]
    return {name: [c for c in defs[name].get("initial", {}).get("odds_ratio", {})
                   if c in chains and c != name and len(defs[c]["states"]) == 2] for name in chains}


def drift_tables(model_tree: Mapping[str, Any], tenants: int = 100_000, years: int = 10, seed: int = 16,
                 chains: Sequence[str] | None = None) -> DriftTables:
    """The drift tables of one run of ``tenants`` adults of England with their children. The
    run lasts a year longer than ``years``, so that the census has model year ``years``."""
    world = world_tree()
    model = HousingHealthModel(RunConfig(model_tree=model_tree, world_tree=world, tenants=tenants,
                                         tenure=england(world), steps=12 * (years + 1), seed=seed,
                                         census=True))
    names = [n for n, c in model.health.chains.items()
             if c.ages is None or c.ages.inside[16]] if chains is None else list(chains)
    conditions = conditions_of(model_tree, names)
    strata = Strata({n: model.health.chains[n].states for n in names}, years + 1)
    cohort, groups = [], []
    for t in range(12 * (years + 1)):
        y = t // 12
        if t % 12 == 0 and (y == 0 or y in CHECK_YEARS):
            by_band, by_group = _shares(model, names, conditions)
            cohort += [dict(r, year=y) for r in by_band]
            groups += [dict(r, year=y) for r in by_group]
        strata.add(model, y)
        model.step()
    census = model.census.frame()
    census = census[census["age_band"].isin([CENSUS_AGE_LABELS[b] for b in ADULT_BANDS])]
    stable = []
    for name in names:
        states = model.health.chains[name].states
        cols = [f"{name}:{s}" for s in states]
        g = census.groupby(["year", "sex", "age_band"], sort=False)[["person_years", *cols]].sum()
        for k, state in enumerate(states):
            part = (g[cols[k]] / g["person_years"]).rename("share").reset_index()
            part["person_years"] = g["person_years"].to_numpy()
            stable.append(part.assign(chain=name, state=state))
    return DriftTables(pd.concat(stable, ignore_index=True), pd.DataFrame(cohort), census,
                       pd.DataFrame(groups), strata.frame())


def stable_drift(stable: pd.DataFrame, years: Sequence[int] = CHECK_YEARS) -> pd.DataFrame:
    """Each band's share at each of ``years`` (model years counted from 0, so year t is the
    t-th year after the first) less its share in year 0, with the Monte-Carlo standard error
    of that difference (binomial, person-years as the count, the two years taken as
    independent: the same people are in both, so it overstates the error and the judgement
    leans to "within")."""
    first = stable[stable["year"] == 0].set_index(["chain", "state", "sex", "age_band"])
    out = []
    for y in years:
        later = stable[stable["year"] == y].set_index(["chain", "state", "sex", "age_band"])
        both = later.join(first.add_suffix("_0"), how="inner")
        p = both["share_0"]
        se = np.sqrt(p * (1 - p) * (1 / both["person_years"] + 1 / both["person_years_0"]))
        out.append(pd.DataFrame({"year": y, "change": both["share"] - p, "se": se,
                                 "person_years": both["person_years"]}).reset_index())
    return pd.concat(out, ignore_index=True)


def standardised_drift(strata: pd.DataFrame, years: Sequence[int] = CHECK_YEARS) -> pd.DataFrame:
    """As ``stable_drift``, each band's make-up held at year 0: the change of each stratum's
    share (tenure and deprivation fifth within the sex and band) from year 0 to each of
    ``years``, averaged with the strata's year-0 person-years as weights. Strata empty at a
    year drop out and the rest are reweighted; ``kept`` is the year-0 weight left. The
    standard error is binomial in each stratum and year (person-years as the count), the
    years taken as independent, as ``stable_drift``."""
    keys = ["sex", "age_band", "tenure", "fifth"]
    states = [c for c in strata.columns if ":" in c]
    first = strata[strata["year"] == 0].set_index(keys)
    out = []
    for y in years:
        both = strata[strata["year"] == y].set_index(keys).join(first.add_suffix("_0"), how="inner")
        n, n0 = both["person_years"], both["person_years_0"]
        weight = n0 / n0.groupby(level=[0, 1]).transform("sum")
        total = first["person_years"].groupby(level=[0, 1]).sum()
        for column in states:
            p, p0 = both[column] / n, both[f"{column}_0"] / n0
            var = weight ** 2 * (p * (1 - p) / n + p0 * (1 - p0) / n0)
            part = pd.DataFrame({"change": weight * (p - p0), "var": var, "n": n, "n0": n0}).groupby(
                level=[0, 1]).sum()
            chain, state = column.split(":", 1)
            out.append(pd.DataFrame({"year": y, "chain": chain, "state": state, "change": part["change"],
                                     "se": np.sqrt(part["var"]), "person_years": part["n"],
                                     "kept": part["n0"] / total.loc[part.index]}).reset_index())
    return pd.concat(out, ignore_index=True)[["chain", "state", "sex", "age_band", "year", "change", "se",
                                             "person_years", "kept"]]


def cohort_drift(cohort: pd.DataFrame) -> pd.DataFrame:
    """Observed less expected share, with its binomial standard error, by year and cell."""
    out = cohort.copy()
    out["difference"] = out["observed"] - out["expected"]
    p = out["expected"].clip(1e-6, 1 - 1e-6)
    out["se"] = np.sqrt(p * (1 - p) / out["people"])
    return out


#: Deprivation groups and age groups of ``decile_drift``.
DEPRIVATION_GROUPS = {"deciles 1-2": (1, 2), "deciles 9-10": (9, 10)}
AGE_GROUPS = {"25-44": (25, 44), "45-64": (45, 64), "65-79": (65, 79)}


def decile_drift(census: pd.DataFrame, chain: str, state: str, year: int) -> pd.DataFrame:
    """The share in ``state`` of the most and least deprived fifths (``DEPRIVATION_GROUPS``)
    in broad age groups (``AGE_GROUPS``) at model year ``year`` against year 0, in the stable
    population: does each level of deprivation keep its own cross-section?"""
    rows = []
    for group, (lo, hi) in DEPRIVATION_GROUPS.items():
        for ages, (a, b) in AGE_GROUPS.items():
            bands = [label for label, (start, _) in CENSUS_AGE_SPANS.items() if a <= start <= b]
            keep = census["decile"].between(lo, hi) & census["age_band"].isin(bands)
            g = census[keep].groupby("year")[["person_years", f"{chain}:{state}"]].sum()
            share = g[f"{chain}:{state}"] / g["person_years"]
            rows.append({"deprivation": group, "ages": ages, "share_0": share[0], "share": share[year],
                         "change": share[year] - share[0]})
    return pd.DataFrame(rows)
