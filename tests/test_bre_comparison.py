"""The BRE comparison (calibration/experiments/bre-hazards.toml, hhsim.analysis.bre): a
counterfactual on the same homes that keeps the baseline's de-averaged national rates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hhsim.analysis.bre import (
    BASELINE,
    BRE_FIGURES,
    ENGLAND_TENURE,
    HAZARD_ARMS,
    adults_per_household,
    bre_table,
    england_by_replication,
)
from hhsim.batch.design import arm_config
from hhsim.batch.design import runs as run_specs
from hhsim.batch.execution import simulate
from hhsim.experiment.plan import compile_plan
from hhsim.health.model_file import calibrated_model
from hhsim.model.simulation import HousingHealthModel
from hhsim.world.population import HAZARD_BITS, HAZARDS, TENURES

EXPERIMENT = Path(__file__).resolve().parents[1] / "calibration" / "experiments" / "bre-hazards.toml"


@pytest.fixture(scope="module")
def plan():
    return compile_plan(EXPERIMENT, tenants=3000, months=12, replications=1)


def arm(plan, name):
    return next(a for a in plan.arms if a.name == name)


def test_every_arm_keeps_the_baseline_de_averaged_rates(plan):
    """The arms differ only in their world (their homes); the rates are de-averaged over the
    reference population of the experiment's world, so every arm runs with the very same
    base rates. Had an arm's world been the reference, the rates with hazard terms would
    have been re-normalised (the old experiment's flaw): the check below has that power."""
    models = {a.name: HousingHealthModel(arm_config(plan, a, 0)).health for a in plan.arms}
    base = models[BASELINE]
    assert len({a.model_tree.__repr__() for a in plan.arms}) == 1  # no model override in any arm
    for name, health in models.items():
        for r0, r1 in zip(base.rates, health.rates, strict=True):
            np.testing.assert_array_equal(r0.base, r1.base, err_msg=f"{name}: a rate's base moved")
    # The counterfactual's own world as reference would have moved the rates of the hazards.
    no = arm(plan, "no_hazards")
    wrong = calibrated_model(no.model_tree, no.world_tree)
    moved = [r0 for r0, r1 in zip(base.rates, wrong.rates, strict=True)
             if not np.array_equal(r0.base, r1.base)]
    assert moved, "removing the hazards from the reference population should move some base rates"


def test_the_removed_hazard_is_absent_all_run_and_the_others_are_as_observed(plan):
    months = 12
    m = {n: HousingHealthModel(arm_config(plan, arm(plan, n), 0)) for n in (BASELINE, "no_damp")}
    damp = HAZARD_BITS["damp"]
    for _ in range(months):
        for model in m.values():
            model.step()
        assert not (m["no_damp"].pop.dwellings.hazards & damp).any()
    base = m[BASELINE].pop.dwellings
    assert (base.hazards & damp).any()
    # The baseline's damp prevalence by tenure is the survey's (within sampling error).
    for t, name in enumerate(TENURES):
        if name not in ENGLAND_TENURE:
            continue
        mine = base.tenure == t
        p = float(plan.reference_world["world"]["hazards"]["damp"][name]["value"])
        got = ((base.hazards[mine] & damp) != 0).mean()
        assert abs(got - p) < 4 * np.sqrt(p * (1 - p) / mine.sum()) + 0.005, name
    # The other hazards are the same in both arms, home by home (common random numbers).
    for h in HAZARDS:
        if h != "damp":
            bit = HAZARD_BITS[h]
            np.testing.assert_array_equal(base.hazards & bit, m["no_damp"].pop.dwellings.hazards & bit)


def test_removing_common_hazards_lowers_nhs_cost():
    """With hazards in half the homes the effect stands well above the noise of a small run."""
    data = {"experiment": {"name": "t", "seed": 5, "months": 12, "replications": 1,
                           "discount": {"costs": 0.0, "effects": 0.0}},
            "population": {"tenants": 4000, "tenure": dict(ENGLAND_TENURE)},
            "parameters": {f"world.hazards.{h}.{t}": 0.5 for h in HAZARDS for t in ENGLAND_TENURE},
            "arms": [{"name": BASELINE},
                     {"name": "no_hazards", "parameters": {f"world.hazards.{h}.{t}": 0.0
                                                          for h in HAZARDS for t in ENGLAND_TENURE}}]}
    plan = compile_plan(data, EXPERIMENT)
    cost = {s.arm: simulate(s).record["nhs_cost_undisc"] for s in run_specs(plan)}
    assert cost[BASELINE] > cost["no_hazards"] * 1.01


def synthetic(scale: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two replications; each arm saves known amounts per tenure; prevalences known."""
    recs, groups = [], []
    saving = {"owner_occupied": 100.0, "private_rented": 50.0, "social_rented": 20.0}
    people = {"owner_occupied": 1850.0, "private_rented": 510.0, "social_rented": 314.0}
    for r in range(2):
        for name in [BASELINE, *HAZARD_ARMS.values()]:
            rec = {"arm": name, "replication": r, "hazard_homes": 100.0}
            for h in HAZARDS:
                for t in ENGLAND_TENURE:
                    rec[f"hazard_prevalence_{h}_{t}"] = 0.1
            recs.append(rec)
            for t in ENGLAND_TENURE:
                cut = 0.0 if name == BASELINE else saving[t] * scale
                for outcome, value in (("population", people[t]), ("nhs_cost_undisc", 1e4 - cut),
                                       ("deaths", 10.0 - (name != BASELINE))):
                    groups.append({"arm": name, "replication": r, "dimension": "tenure", "group": t,
                                   "outcome": outcome, "value": value})
    return pd.DataFrame(recs), pd.DataFrame(groups)


def test_the_analysis_scales_each_tenure_to_englands_households():
    records, groups = synthetic()
    adults = {"owner_occupied": 1.85, "private_rented": 1.7, "social_rented": 1.57}
    per = england_by_replication(records, groups, adults, households=1e6)
    # Simulated households: 1,000 OO, 300 PRS, 200 SR; England's: 650k, 190k, 160k.
    expected = 100.0 * 650 + 50.0 * 190 / 0.3 + 20.0 * 160 / 0.2
    row = per[(per["hazard"] == "damp") & (per["replication"] == 0)].iloc[0]
    assert row["cost"] == pytest.approx(expected)
    assert row["deaths"] == pytest.approx(650 + 190 / 0.3 + 160 / 0.2)
    assert row["homes"] == pytest.approx(0.1 * 1e6)
    table = bre_table(per).set_index("hazard")
    assert table.loc["damp", "cost_m"] == pytest.approx(expected / 1e6)
    assert table.loc["damp", "per_home"] == pytest.approx(expected / 1e5)
    assert np.isnan(table.loc["damp", "bre_cost_m"])  # BRE publishes no NHS cost of damp
    assert table.loc["falls", "bre_cost_m"] == BRE_FIGURES["falls"].cost_m
    # "all": homes with any hazard, corrected to the simulated count (here 100 of 1,500).
    assert table.loc["all", "homes_model"] == pytest.approx(1e6 * 100 / 1500)
    # Twice the saving, twice the cost; linear in England's households.
    double = bre_table(england_by_replication(*synthetic(2.0), adults, households=1e6)).set_index("hazard")
    assert double.loc["falls", "cost_m"] == pytest.approx(2 * table.loc["falls", "cost_m"])
    big = bre_table(england_by_replication(records, groups, adults, households=2e6)).set_index("hazard")
    assert big.loc["falls", "cost_m"] == pytest.approx(2 * table.loc["falls", "cost_m"])
    assert big.loc["falls", "per_home"] == pytest.approx(table.loc["falls", "per_home"])


def test_adults_per_household_reads_the_world():
    plan_world = compile_plan(EXPERIMENT, tenants=100, replications=1).reference_world
    adults = adults_per_household(plan_world)
    assert adults["owner_occupied"] == pytest.approx(0.30 + 2 * 0.55 + 3 * 0.15)
    assert set(adults) == set(ENGLAND_TENURE)


def test_the_target_estimator_gives_the_analysis_figure():
    from hhsim.batch.execution import RunResult
    from hhsim.core.resources import world_tree
    from hhsim.studies.calibration.estimators import ESTIMATORS

    records, groups = synthetic()
    results = [RunResult(f"{r['arm']}__r{r['replication']}", r,
                         {"groups": groups[(groups["arm"] == r["arm"])
                                           & (groups["replication"] == r["replication"])]
                          .drop(columns=["arm", "replication"])})
               for r in records.to_dict("records")]
    per = england_by_replication(records, groups, adults_per_household(world_tree()))
    falls = per[per["hazard"] == "falls"]
    estimate = ESTIMATORS["hazard_cost_england"].function
    assert estimate(results, "no_falls", BASELINE, {}) == pytest.approx(falls["cost"].mean())
    assert estimate(results, "no_falls", BASELINE, {"measure": "per_home"}) == pytest.approx(
        falls["cost"].mean() / falls["homes"].mean())
