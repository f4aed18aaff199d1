"""The run record: what one finished run reports, as a flat row of numbers; and the run's
other tables (``per_run_tables``: the model's own, and those its interventions write).

Every value is a total for the population represented: each tenant counts for its
``weight`` (1 unless the population is scaled to a place). Columns (``_undisc`` marks the
undiscounted twin):

- ``population``: people represented, children included; ``population_children``: children
  (under 16 at the start, or on arrival with tenancies that turn over) represented;
  ``tenants`` and ``children``: adults and children simulated at the start (added by the
  runner);
  ``profile_people_moved``: people of a local profile's cells that had no simulated tenant,
  counted in the nearest cells instead (0 without a profile);
- ``use_<activity>``: tallies (contacts, bed days, admissions, person-years), and
  ``use_<activity>_disc`` for the costed ones;
- ``cost_<activity>`` / ``cost_<activity>_undisc``: the tally times its unit cost, uprated
  to the experiment's price year with the NHS Cost Inflation Index;
- ``cost_<payer>`` / ``cost_<payer>_undisc``: every cost a payer bears (``nhs``,
  ``social_care``, ``housing_provider``, ``local_authority``), interventions included;
- ``nhs_cost`` (and ``_undisc``): NHS care costs, without any intervention's cost even
  where the NHS pays for it (``cost_nhs`` includes those);
- ``intervention_cost`` (and ``_undisc``): cost of the arm's interventions, whoever pays;
  ``intervention_cost_<name>`` for each; each intervention cost is one activity, counted
  once, with its payer;
- ``iv_<name>_<measure>``: what each intervention did (referred, admitted, waits, places,
  hazards fixed, ...; people represented);
- ``qalys``, ``life_years``, ``good_health_years`` (and ``_undisc``);
- ``hazard_homes``: occupied dwellings with a hazard at the start (weighted);
  ``hazard_onsets_<hazard>`` and ``hazard_repairs_<hazard>``: dwellings in which each hazard
  arose, or was removed by routine repair, over the run; ``hazard_prevalence_<hazard>_<tenure>``:
  share of the tenure's dwellings with it at the end (``hhsim.world.hazard_dynamics``; each
  dwelling counted with its occupants' mean weight at the start);
- ``deaths``, ``admissions``, ``bed_days``, ``delayed_discharge_days``,
  ``readmissions_30d`` (undiscounted counts over all admission types);
- ``tenancy_<flow>`` (with tenancies that turn over only): tenancies ended by reason,
  lettings, lettings to homeless households, people who left and arrived, void
  dwelling-months (``hhsim.world.tenancies.FLOWS``), ``tenancy_waiting_list_unused``;
- ``per_person_<x>`` and ``per_person_<x>_se`` for ``x`` in ``PER_PERSON``: the mean per
  person represented and its standard error over the tenants simulated (the sd over
  individuals / sqrt(n), weighted): the Monte-Carlo error of one run, which researchers
  compare with a cohort model's expectation.

With tenancies that turn over, the people represented are everyone who was a tenant at
some time in the run (the starting tenants and the newcomers; not the households of the
waiting list that never arrived): totals are over their time as tenants, and per-person
means are per person who was ever a tenant (a leaver counts with what accrued before
leaving, a newcomer from arrival).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hhsim.core.accounting import PAYERS
from hhsim.core.costing import uprating_factor
from hhsim.health.checks import run_checks
from hhsim.interventions.registry import declared_tables
from hhsim.model import census, high_users
from hhsim.model.groups import counted_weight, group_table, tenant_outcomes
from hhsim.model.simulation import LIFE_TABLE, HousingHealthModel

#: Outcomes recorded per person with their standard error: ``cost``, the care costs of every
#: payer (discounted, £; interventions' costs are not in it: they are ``intervention_cost``),
#: QALYs and life years (discounted).
PER_PERSON = ("cost", "qalys", "life_years")


def per_person(values: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """The weighted mean of ``values`` per person and its standard error over the n tenants
    (sqrt(n / (n - 1) x sum of w^2 (x - mean)^2) / sum of w: sd / sqrt(n) when every weight
    is 1; NaN with one tenant)."""
    total = float(weight.sum())
    mean = float((weight * values).sum()) / total
    n = len(values)
    if n < 2:
        return mean, float("nan")
    return mean, float(np.sqrt(n / (n - 1) * (weight**2 * (values - mean) ** 2).sum())) / total


def run_record(model: HousingHealthModel, price_year: str) -> dict[str, float]:
    """The record of a finished run, costs in ``price_year`` prices."""
    ledger = model.ledger
    weight = counted_weight(model)

    def total(per_tenant: np.ndarray) -> float:
        return float((weight * per_tenant).sum())

    rec: dict[str, float] = {"population": float(weight.sum()), "hazard_homes": model.hazard_homes,
                             "population_children": float(weight[model.baseline.children].sum())}
    programme = {f"cost_{p}{s}": 0.0 for p in PAYERS for s in ("", "_undisc")}
    for name, act in model.activities.items():
        rec[f"use_{name}"] = ledger.total(name, weight)
        if act.unit_cost is not None:
            unit = act.unit_cost * uprating_factor(act.price_year, price_year)
            rec[f"use_{name}_disc"] = ledger.total(name, weight, discounted=True)
            rec[f"cost_{name}"] = rec[f"use_{name}_disc"] * unit
            rec[f"cost_{name}_undisc"] = rec[f"use_{name}"] * unit
            if not act.per_tenant:
                programme[f"cost_{act.payer}"] += rec[f"cost_{name}"]
                programme[f"cost_{act.payer}_undisc"] += rec[f"cost_{name}_undisc"]
    per_tenant = tenant_outcomes(model, price_year, shared=False)
    outcomes = {k: total(v) for k, v in per_tenant.items()}
    outcomes.update({k: outcomes[k] + v for k, v in programme.items()})
    rec.update(outcomes)  # nhs_cost and intervention_cost are set below, programme costs included
    costed = [a for a in model.activities.values() if a.unit_cost is not None]
    for suffix in ("", "_undisc"):
        nhs_interventions = sum(rec[f"cost_{a.name}{suffix}"] for a in costed
                                if a.intervention and a.payer == "nhs")
        rec[f"nhs_cost{suffix}"] = outcomes[f"cost_nhs{suffix}"] - nhs_interventions
        rec[f"intervention_cost{suffix}"] = sum(rec[f"cost_{a.name}{suffix}"] for a in costed
                                                if a.intervention)
        for iv in model.interventions:
            rec[f"intervention_cost_{iv.name}{suffix}"] = sum(
                rec[f"cost_{a.name}{suffix}"] for a in costed if a.intervention == iv.name)
    for iv in model.interventions:
        rec.update(iv.record())
        rec.update(iv.effect_record())
    rec["readmissions_30d"] = sum(rec[f"use_{t.name}_readmissions_30d"] for t in model.health.admissions)
    rec.update(model.housing.record())
    rec["profile_people_moved"] = model.people_moved
    rec.update(model.tenancies.record())
    per_tenant["cost"] = sum(per_tenant[f"cost_{p}"] for p in PAYERS) - per_tenant["intervention_cost"]
    counted = np.flatnonzero(model.tenancies.ever_tenant) if model.tenancies.active else slice(None)
    for key in PER_PERSON:
        rec[f"per_person_{key}"], rec[f"per_person_{key}_se"] = per_person(per_tenant[key][counted],
                                                                            weight[counted])
    return rec


def monthly_table(model: HousingHealthModel) -> pd.DataFrame:
    """Monthly aggregates collected by the model's DataCollector, one row per step."""
    df = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    df.insert(0, "step", np.arange(1, len(df) + 1))
    return df


def table_names() -> tuple[str, ...]:
    """The per-run tables (``<name>/<run_id>.parquet``), in the order they are written: the
    model's own, with the interventions' (``registry.declared_tables``: every registered
    type's, written for every run) before ``lifetable``; ``tenancies``, the tenancy flows by
    model year (empty in a closed cohort); ``census``, states and use by current age
    (``hhsim.model.census``; empty unless ``[experiment] census = true``); ``high_users``, a
    high-use cohort's share of its age group's use by model year (``hhsim.model.high_users``;
    empty unless ``[experiment] high_users``), last."""
    return ("monthly", "groups", "checks", *(t.name for t in declared_tables()), "lifetable", "tenancies",
            "census", "high_users")


def per_run_tables(model: HousingHealthModel, price_year: str,
                   record: dict[str, float]) -> dict[str, pd.DataFrame]:
    """Every per-run table of a finished run (``table_names``), costs in ``price_year``
    prices; ``record``: its ``run_record``."""
    tables = {"monthly": monthly_table(model), "groups": group_table(model, price_year),
              "checks": run_checks(model, record), "lifetable": life_table(model),
              "tenancies": pd.DataFrame(model.tenancies.table()),
              "census": model.census.frame() if model.census is not None else census.empty(),
              "high_users": model.high_users.frame() if model.high_users is not None else high_users.empty(),
              **intervention_tables(model)}
    return {name: tables[name] for name in table_names()}


def intervention_tables(model: HousingHealthModel) -> dict[str, pd.DataFrame]:
    """Each table interventions write (``registry.declared_tables``): the rows of the arm's
    interventions whose type writes it, stacked (the table's empty form when none has a row)."""
    rows = [iv.run_tables() for iv in model.interventions]
    out = {}
    for table in declared_tables():
        written = [r[table.name] for r in rows if len(r.get(table.name, ()))]
        out[table.name] = pd.concat(written, ignore_index=True) if written else table.empty()
    return out


def stay_table(model: HousingHealthModel) -> pd.DataFrame:
    """One row per patient of each hospital-flow intervention (``DischargeProgramme.stays``)."""
    return intervention_tables(model)["stays"]


def life_table(model: HousingHealthModel) -> pd.DataFrame:
    """The run's period life table: weighted person-years, years in good health and deaths
    by sex, IMD decile (1 = most deprived) and year of age at the start of each step; cells
    nobody lived in are left out."""
    lt = model.life_table
    sex, decile, age = np.meshgrid(np.arange(2), np.arange(1, lt.shape[2] + 1), np.arange(lt.shape[3]),
                                   indexing="ij")
    table = pd.DataFrame({"sex": np.where(sex.ravel() == 1, "female", "male"),
                          "decile": decile.ravel().astype(np.int8), "age": age.ravel().astype(np.int16),
                          **{name: lt[k].ravel() for k, name in enumerate(LIFE_TABLE)}})
    return table[table["person_years"] > 0].reset_index(drop=True)


def referral_table(model: HousingHealthModel) -> pd.DataFrame:
    """The referral logs of social-prescribing interventions, stacked."""
    return intervention_tables(model)["referrals"]


def event_table(model: HousingHealthModel) -> pd.DataFrame:
    """Event logs of the interventions that keep one (``log = true``), stacked."""
    return intervention_tables(model)["events"]
