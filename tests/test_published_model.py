"""A published health-economic model reproduced: Chancellor et al. (1997), as Exercise 2.5 of
Briggs, Claxton & Sculpher, Decision Modelling for Health Economic Evaluation (2006).

Published results (the book's Excel model; also heemod's test_dmhee.R): monotherapy
£44,663.4535637 and 7.9912066 life years; combination £50,601.6513312 and 8.9373889 life
years; ICER £6,275.9556 per life year gained.
"""

import numpy as np
import pytest

from hhsim.batch.design import runs
from hhsim.experiment.plan import compile_plan, load_experiment
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model
from hhsim.model.record import run_record
from hhsim.model.simulation import HousingHealthModel

from conftest import ROOT

PUBLISHED = {"monotherapy": (44663.4535637, 7.9912066), "combination": (50601.6513312, 8.9373889)}
ICER = 6275.95560


@pytest.fixture(scope="module")
def experiment():
    return load_experiment(ROOT / "experiments" / "chancellor-1997-hiv.toml")


def test_cohort_mode_reproduces_the_published_results(experiment):
    e = experiment.experiment
    results = {}
    for arm in experiment.arms:
        tree, world = experiment.trees(arm)
        out = cohort_run(calibrated_model(tree, world), e.months // 12, {"A": 1.0},
                         discount_costs=e.discount.costs, discount_effects=e.discount.effects,
                         reward_timing=e.timing, price_year=e.price_year).outcomes
        results[arm.name] = (out["cost_nhs"], out["life_years"])
    for arm, (cost, years) in PUBLISHED.items():
        # Equal up to float32 rounding of the rate tables (about 1e-7 relative).
        assert results[arm][0] == pytest.approx(cost, rel=1e-6)
        assert results[arm][1] == pytest.approx(years, rel=1e-6)
    (c0, y0), (c1, y1) = results["monotherapy"], results["combination"]
    assert (c1 - c0) / (y1 - y0) == pytest.approx(ICER, rel=1e-5)


def test_microsimulation_reproduces_them_within_monte_carlo_error(experiment):
    n = 50_000
    for spec in runs(compile_plan(compile_plan(experiment, tenants=n, replications=1).experiment)):
        m = HousingHealthModel(spec.config)
        m.run()
        rec = run_record(m, spec.price_year)
        cost_per_tenant = sum(m.ledger.count_disc[a].astype(float) * m.activities[a].unit_cost
                              for a in m.activities)
        years_per_tenant = m.ledger.reward_disc["life_years"].astype(float)
        cost, years = PUBLISHED[spec.arm]
        assert abs(rec["nhs_cost"] / n - cost) < 4 * cost_per_tenant.std() / np.sqrt(n)
        assert abs(rec["life_years"] / n - years) < 4 * years_per_tenant.std() / np.sqrt(n)
