"""The per-run check table: simulated baseline rates against the input rates they came from.

Input rates are the model file's figures (national averages by sex and age, before
de-averaging), standardised to the person-years this run's population lived at each sex and
age, over the ages each rule describes (a chain's, service's or admission type's ``ages``:
adults' rules over adults, children's over children). A ratio near 1 means the population
uses services (or dies) at the national rate for its age and sex; a deprived or sicker
population shows ratios above 1, which is the point of the covariates. Hazard and
initial-state prevalence compare the population at the start with the input prevalence for
its tenure, sex and age mix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hhsim.core.parameters import to_parameter
from hhsim.health.terms import MAX_AGE
from hhsim.world.population import HAZARDS, TENURES, Population

if TYPE_CHECKING:
    from hhsim.health.model_file import HealthModel


def _row(check: str, simulated: float, expected: float, unit: str, note: str = "") -> dict:
    ratio = simulated / expected if expected > 0 else float("nan")
    return {"check": check, "simulated": simulated, "input": expected, "ratio": ratio,
            "unit": unit, "note": note}


def start_checks(pop: Population, health: HealthModel, world: dict) -> list[dict]:
    """Prevalence checks on the population at model start."""
    rows = []
    weight = pop.weight.astype(np.float64)
    total = weight.sum()
    tenure_share = np.bincount(pop.tenure, weights=weight, minlength=len(TENURES)) / total
    for h in HAZARDS:
        prevalence = [float(to_parameter(f"world.hazards.{h}.{t}", world["world"]["hazards"][h][t]).value)
                      for t in TENURES]
        rows.append(_row(f"prevalence of {h} hazard", float((weight * pop.has_hazard(h)).sum() / total),
                         float(tenure_share @ prevalence), "share of tenants",
                         "input: prevalence by tenure (world.hazards), weighted by this population's tenure"))
    age = np.minimum(pop.age_years, MAX_AGE)
    for name, chain in health.chains.items():
        init = chain.initial
        expected = init.shares[pop.female.view(np.int8).astype(np.intp), init.band_of_age[age]]  # (n, states)
        w = weight if chain.ages is None else np.where(chain.ages.inside[age], weight, 0.0)  # its ages
        if not w.sum():
            continue
        for s in range(1, len(chain.states)):
            rows.append(_row(f"{name} = {chain.states[s]} at start",
                             float((w * (pop.states[name] == s)).sum() / w.sum()),
                             float((w * expected[:, s]).sum() / w.sum()), "share of people of its ages",
                             "input: published prevalence for this sex and age mix"))
    return rows


def run_checks(model, record: dict[str, float]) -> pd.DataFrame:
    """The check table of a finished run."""
    py = model.person_years
    rows = list(model.start_checks)

    def check(name: str, rate, amount: float, note: str = "", parts=None) -> None:
        """Simulated against input rate per person-year lived at the rate's ages (no row when
        nobody of those ages was simulated, e.g. a child rule in a run without children);
        a rate made of ``parts`` (an admission type's causes) is their sum."""
        lived = py if rate.ages is None else np.where(rate.ages.inside, py, 0.0)
        years = float(lived.sum())
        source = sum(r.source for r in parts) if parts else rate.source
        if years:
            rows.append(_row(name, amount / years, float((lived * source).sum() / years),
                             "per person-year", note))

    for service in model.health.services:
        check(f"{service.name} per person-year", service.rate, record[f"use_{service.name}"],
              "simulated use counts only time at home")
    for t in model.health.admissions:
        first = record[f"use_{t.name}_admissions"] - record[f"use_{t.name}_readmissions_30d"]
        check(f"{t.name} admissions (not 30-day readmissions) per person-year", t.rate, first,
              "readmissions are simulated separately", parts=t.columns)
    if model.health.mortality is not None:
        check("deaths per person-year", model.health.mortality, record["deaths"])
    return pd.DataFrame(rows)

