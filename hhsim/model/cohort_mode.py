"""Cohort mode as a run: one arm's expected outcomes, computed exactly by
``hhsim.health.cohort.cohort_run``, as the record and per-run tables that a microsimulation
run of the arm writes (``hhsim.model.record``), so that the results store, the analyses and
the printouts treat both alike (``hhsim run --cohort``).

The cohort is ``tenants`` people alike: the person of the experiment's ``[population]
cohort``, or cohort mode's defaults (``DEFAULT_COHORT``: aged 50, male, social rented, IMD
decile 5). They start in the model's initial distribution for that person, as a
microsimulation draws it. Every total is the expected value per person times ``tenants``
(the population represented), so totals and per-person values agree; the per-person
columns are the expected values themselves, with standard errors of 0 (nothing is sampled).
By group, everyone is in the cohort's decile, age band, sex and tenure; by starting state,
each state's share of the cohort has its own part of the totals (they add up to them).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hhsim.core.accounting import PAYERS, REWARDS
from hhsim.core.costing import uprating_factor
from hhsim.core.errors import HhsimError
from hhsim.health.cohort import CohortResult, cohort_problem, cohort_run
from hhsim.health.model_file import HealthModel, calibrated_model
from hhsim.health.terms import MAX_AGE
from hhsim.interventions.registry import declared_tables
from hhsim.model import census, high_users
from hhsim.model.record import table_names
from hhsim.model.simulation import COST_COLUMNS, LIFE_TABLE, RunConfig
from hhsim.world.bands import RESULT_AGE_BANDS, RESULT_AGE_LABELS
from hhsim.world.cohort import Cohort, parse_cohort
from hhsim.world.hazard_dynamics import parse_dynamics
from hhsim.world.housing_pathway import is_homeless
from hhsim.world.population import DECILES, HAZARDS, SEXES, TENURES
from hhsim.world.tenancies import empty_table

#: The person of a cohort when the experiment gives none: ``cohort_run``'s defaults.
DEFAULT_COHORT = Cohort(age=50.0, female=False, tenure=TENURES.index("social_rented"), decile=5)
#: The columns of a check table (``hhsim.health.checks``).
CHECK_COLUMNS = ("check", "simulated", "input", "ratio", "unit", "note")
DROP = "run it as a microsimulation: drop --cohort"


def person_of(cohort: Mapping[str, object] | None) -> Cohort:
    """The person of an experiment's ``[population] cohort`` table (None: the defaults)."""
    return parse_cohort(cohort) if cohort is not None else DEFAULT_COHORT


def cohort_of(config: RunConfig) -> Cohort:
    """The person every member of the run's cohort is."""
    return person_of(config.cohort)


def describe(person: Cohort) -> str:
    """The person in words, e.g. "aged 50, male, social rented, IMD decile 5"."""
    return (f"aged {person.age:g}, {SEXES[person.female]}, {TENURES[person.tenure].replace('_', ' ')}, "
            f"IMD decile {person.decile}")


def health_of(config: RunConfig) -> HealthModel:
    """The arm's model calibrated as its microsimulation's is (on the reference world)."""
    return calibrated_model(config.model_tree, config.reference_world_tree or config.world_tree,
                            config.health)


def cohort_refusal(config: RunConfig) -> HhsimError | None:
    """Why cohort mode cannot run ``config`` (None: it can), as a one-line error: a model it
    cannot follow, interventions, a population that is not people alike, or homeless people
    (a microsimulation moves them between tenures)."""
    problem = cohort_problem(health_of(config))
    if problem:
        return HhsimError("--cohort", f"cohort mode {problem} (arm '{config.arm}')", DROP)
    if config.interventions:
        return HhsimError(f"arms.{config.arm}", "has interventions, which cohort mode does not run (they act "
                          "on people one by one: referrals, queues, places)", DROP)
    for given, what in ((config.stock, "a stock file"), (config.profile, "a profile")):
        if given is not None:
            return HhsimError("--cohort", f"cohort mode follows people alike, and the population is {what}",
                              "give [population] cohort = { age = ..., sex = ... } instead, or drop --cohort")
    if config.turnover:
        return HhsimError("--cohort", "cohort mode follows the same people, and the population turns over",
                          "set [population] turnover = false, or drop --cohort")
    person = cohort_of(config)
    if is_homeless(np.array([person.tenure]))[0]:
        return HhsimError("population.cohort.tenure", f"{TENURES[person.tenure]}: a microsimulation moves "
                          "homeless people between tenures (the housing pathway), which cohort mode does not "
                          "follow", "give a housed tenure, or drop --cohort")
    return None


def _run(config: RunConfig, health: HealthModel, person: Cohort, start: str | None = None) -> CohortResult:
    return cohort_run(health, config.steps, None, discount_costs=config.discount_costs,
                      discount_effects=config.discount_effects, reward_timing=config.reward_timing,
                      price_year=config.price_year, age=person.age, female=person.female,
                      tenure=person.tenure, decile=person.decile, starting_in=start,
                      start_month=config.start_month)


def _totals(r: CohortResult, health: HealthModel, people: float) -> dict[str, float]:
    """What ``hhsim.model.groups.tenant_outcomes`` sums, for ``people`` of the cohort
    ``r`` (a part of the cohort: a share of its people)."""
    o = r.outcomes
    out: dict[str, float] = {}
    for p in PAYERS:
        for s in ("", "_undisc"):
            out[f"cost_{p}{s}"] = people * float(o[f"cost_{p}{s}"])
    nhs = [sc.activity.name for sc in health.state_costs if sc.activity.payer == "nhs"]
    for s in ("", "_undisc"):
        out[f"nhs_cost{s}"] = people * float(sum(o[f"cost_{a}{s}"] for a in nhs))
    out["intervention_cost"] = out["intervention_cost_undisc"] = 0.0
    for reward in REWARDS:
        out[reward], out[f"{reward}_undisc"] = people * o[reward], people * o[f"{reward}_undisc"]
    out["deaths"] = people * float(r.trace[-1, -1])
    out["admissions"] = out["bed_days"] = out["delayed_discharge_days"] = 0.0
    return out


def cohort_record(config: RunConfig) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """The record (``hhsim.model.record.run_record``'s columns) and per-run tables
    (``table_names``) of the arm of ``config`` in cohort mode, costs in its price year."""
    health = health_of(config)
    person = cohort_of(config)
    whole = _run(config, health, person)
    chain, states = next((n, c.states) for n, c in health.chains.items())
    shares = whole.trace[0, :-1]
    starting = [s for k, s in enumerate(states) if shares[k] > 0]
    by_start = {starting[0]: whole} if len(starting) == 1 else {s: _run(config, health, person, s)
                                                                 for s in starting}
    people = float(config.tenants)
    o = whole.outcomes
    rec: dict[str, float] = {"population": people, "hazard_homes": 0.0, "population_children": 0.0}
    for act in health.activities:
        a = act.name
        rec[f"use_{a}"] = people * o[f"use_{a}"]
        if act.unit_cost is not None:
            for key in (f"use_{a}_disc", f"cost_{a}", f"cost_{a}_undisc"):
                rec[key] = people * o[key]
    rec.update(_totals(whole, health, people))
    rec["readmissions_30d"] = 0.0
    rec.update(_hazard_columns(config))
    rec["profile_people_moved"] = 0.0
    per_person = {"cost": sum(float(o[f"cost_{p}"]) for p in PAYERS), "qalys": float(o["qalys"]),
                  "life_years": float(o["life_years"])}
    for key, value in per_person.items():
        rec[f"per_person_{key}"], rec[f"per_person_{key}_se"] = value, 0.0
    groups = _groups(health, person, chain, states, shares, by_start, people)
    tables = {"monthly": _monthly(config, health, chain, states, whole, people), "groups": groups,
              "checks": _checks(health, person, chain, states, shares),
              "lifetable": _lifetable(config, health, person, whole, people),
              "tenancies": pd.DataFrame(empty_table()), "census": census.empty(),
              "high_users": high_users.empty(),
              **{t.name: t.empty() for t in declared_tables()}}
    return rec, {name: tables[name] for name in table_names()}


def _hazard_tenures(config: RunConfig) -> list[int] | None:
    """The tenures whose hazards a microsimulation of the same population reports
    (``HazardDynamics._tenures``); None when it runs no hazards (a cohort population)."""
    if config.cohort is not None:
        return None
    settings = parse_dynamics(config.world_tree)
    return [t for t, name in enumerate(TENURES) if config.tenure.get(name, 0) > 0
            and any(s.prevalence[t] > 0 for s in settings)]


def _hazard_columns(config: RunConfig) -> dict[str, float]:
    """The hazard columns of the record (``HazardDynamics.record``) a microsimulation of the
    same population has, all 0: the cohort's home has no hazards."""
    tenures = _hazard_tenures(config)
    if tenures is None:
        return {}
    out = {f"hazard_{kind}_{h}": 0.0 for h in HAZARDS for kind in ("onsets", "repairs")}
    return out | {f"hazard_prevalence_{h}_{TENURES[t]}": 0.0 for h in HAZARDS for t in tenures}


def _monthly(config: RunConfig, health: HealthModel, chain: str, states: tuple[str, ...],
             r: CohortResult, people: float) -> pd.DataFrame:
    """The monthly table (``hhsim.model.simulation``'s reporters): one row per step, its
    values at the step's end; a step's use is what its boundaries add (the first step's
    includes the start's)."""
    trace, at = r.trace, r.boundaries
    alive = trace[:, :-1].sum(axis=1)
    steps = np.arange(1, trace.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        utility = np.where(alive > 0, at["utility"] / alive, 0.0)
    df = pd.DataFrame({"step": steps, "alive": people * alive[1:], "deaths": people * np.diff(trace[:, -1])})
    for column in ("admissions", "bed_days", "delayed_days", "readmissions"):
        df[column] = 0  # no hospital: counts of nothing, as a run's (summed over no admission types)
    df["mean_utility"] = utility[1:]
    for k, state in enumerate(states):
        df[f"{chain}:{state}"] = people * trace[1:, k]
    cost = dict.fromkeys(COST_COLUMNS, 0.0)
    for act in health.activities:
        flow = at[f"use_{act.name}"]
        use = people * np.concatenate([[flow[0] + flow[1]], flow[2:]])
        df[f"use:{act.name}"] = use
        if act.unit_cost is not None:
            money = use * act.unit_cost * uprating_factor(act.price_year, config.price_year)
            for column in (f"cost:{act.payer}", "cost:nhs_care" if act.payer == "nhs" else None):
                if column is not None:
                    cost[column] = cost[column] + money
    for column, values in cost.items():
        df[column] = values
    tenures = _hazard_tenures(config)
    for h in HAZARDS if tenures is not None else ():  # HazardDynamics.reporters, all 0
        for t in tenures:
            df[f"hazard:{h}:{TENURES[t]}"] = 0.0
        for kind in ("onsets", "repairs"):
            df[f"hazard_{kind}:{h}"] = 0.0
    return df


def _lifetable(config: RunConfig, health: HealthModel, person: Cohort, r: CohortResult,
               people: float) -> pd.DataFrame:
    """Person-years, years in good health and deaths by age at each step's start
    (``hhsim.model.record.life_table``): the cohort's one sex and decile."""
    trace, steps = r.trace, r.trace.shape[0] - 1
    months = int(np.floor(person.age * 12)) + health.cycle_months * np.arange(steps)
    age = np.minimum(months // 12, MAX_AGE)
    dt = health.cycle_years
    values = {"person_years": people * dt * trace[:-1, :-1].sum(axis=1),
              "good_health_years": people * dt * r.boundaries["good_health"][:-1],
              "deaths": people * np.diff(trace[:, -1])}
    ages = np.unique(age)
    table = pd.DataFrame({"sex": SEXES[person.female], "decile": np.int8(person.decile),
                          "age": ages.astype(np.int16),
                          **{name: np.bincount(np.searchsorted(ages, age), weights=values[name],
                                               minlength=ages.size) for name in LIFE_TABLE}})
    return table[table["person_years"] > 0].reset_index(drop=True)


def _groups(health: HealthModel, person: Cohort, chain: str, states: tuple[str, ...], shares: np.ndarray,
            by_start: Mapping[str, CohortResult], people: float) -> pd.DataFrame:
    """Outcomes by group (``hhsim.model.groups.group_table``): everyone in the cohort's
    decile, age band, sex and tenure; by starting state, each state's share apart."""
    whole = {"population": people, **_totals(next(iter(by_start.values())), health, people)} \
        if len(by_start) == 1 else None
    parts = {s: {"population": people * float(shares[states.index(s)]), **_totals(r, health, people)}
             for s, r in by_start.items()}
    if whole is None:
        whole = {k: sum(p[k] for p in parts.values()) for k in next(iter(parts.values()))}
    band = int(np.clip(np.searchsorted(RESULT_AGE_BANDS, int(person.age), side="right") - 1, 0,
                       len(RESULT_AGE_BANDS) - 1))
    dims = {"deprivation_decile": (tuple(str(d) for d in range(1, DECILES + 1)), {person.decile - 1: whole}),
            "age_band": (RESULT_AGE_LABELS, {band: whole}), "sex": (SEXES, {int(person.female): whole}),
            "tenure": (TENURES, {person.tenure: whole}),
            chain: (states, {states.index(s): p for s, p in parts.items()})}
    rows = []
    for dim, (labels, filled) in dims.items():
        for outcome in whole:
            rows += [(dim, label, outcome, float(filled[g][outcome]) if g in filled else 0.0)
                     for g, label in enumerate(labels)]
    return pd.DataFrame(rows, columns=["dimension", "group", "outcome", "value"])


def _checks(health: HealthModel, person: Cohort, chain: str, states: tuple[str, ...],
            shares: np.ndarray) -> pd.DataFrame:
    """The start checks of the chain (``hhsim.health.checks``): the cohort's initial shares
    against the published prevalence for its sex and age band."""
    init = health.chains[chain].initial
    expected = init.shares[int(person.female), init.band_of_age[min(int(person.age), MAX_AGE)]]
    rows = [{"check": f"{chain} = {states[s]} at start", "simulated": float(shares[s]),
             "input": float(expected[s]), "ratio": shares[s] / expected[s] if expected[s] > 0 else np.nan,
             "unit": "share of tenants", "note": "input: the published prevalence for this sex and age"}
            for s in range(1, len(states))]
    return pd.DataFrame(rows, columns=list(CHECK_COLUMNS))
