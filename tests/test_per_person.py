"""Monte-Carlo error per person (issue 19, item 9): each run records the mean per person of
cost, QALYs and life years with its standard error over the people simulated (sd / sqrt(n)),
and a clinical model's printout shows them, as researchers compare a microsimulation with a
cohort model."""

import numpy as np
import pytest

from hhsim.analysis.per_person import per_person_table
from hhsim.batch.design import runs
from hhsim.cli import is_clinical, main
from hhsim.experiment.plan import compile_plan
from hhsim.model.record import per_person, run_record
from hhsim.model.simulation import HousingHealthModel

from conftest import ROOT

CHANCELLOR = ROOT / "experiments" / "chancellor-1997-hiv.toml"
#: Briggs, Claxton & Sculpher (2006), Exercise 2.5 (tests/test_published_model.py).
PUBLISHED = {"monotherapy": (44663.4535637, 7.9912066), "combination": (50601.6513312, 8.9373889)}


def test_the_standard_error_is_sd_over_root_n_and_weights_scale_out():
    x = np.random.default_rng(1).gamma(2.0, 3.0, size=1000)
    mean, se = per_person(x, np.ones_like(x))
    assert mean == pytest.approx(x.mean()) and se == pytest.approx(x.std(ddof=1) / np.sqrt(len(x)))
    assert per_person(x, np.full_like(x, 7.5)) == pytest.approx((mean, se))
    w = np.where(np.arange(len(x)) % 2, 2.0, 1.0)  # a weighted mean, and its error grows with the spread of w
    assert per_person(x, w)[0] == pytest.approx(np.average(x, weights=w))
    assert np.isnan(per_person(x[:1], w[:1])[1])


def test_each_run_records_its_per_person_means_within_three_errors_of_the_cohort():
    plan = compile_plan(CHANCELLOR, tenants=4000, replications=1)
    for spec in runs(plan):
        m = HousingHealthModel(spec.config)
        m.run()
        rec = run_record(m, spec.price_year)
        years = m.ledger.reward_disc["life_years"].astype(float)
        assert rec["per_person_life_years_se"] == pytest.approx(years.std(ddof=1) / np.sqrt(len(years)))
        cost, life_years = PUBLISHED[spec.arm]
        assert abs(rec["per_person_cost"] - cost) < 3 * rec["per_person_cost_se"]
        assert abs(rec["per_person_life_years"] - life_years) < 3 * rec["per_person_life_years_se"]


def test_a_clinical_model_prints_per_person_results_and_no_housing_checks(tmp_path, capsys):
    assert main(["run", str(CHANCELLOR), "--tenants", "300", "--replications", "2", "--workers", "1",
                 "--out", str(tmp_path / "out"), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "Per person (discounted; +/- one standard error over the 300 people" in text
    assert "ICER against monotherapy" in text
    assert "Return on investment" not in text and "hazard" not in text


def test_housing_experiments_are_not_clinical():
    plan = compile_plan(ROOT / "experiments" / "home-repairs.toml").to_json()
    assert not is_clinical(plan) and is_clinical(compile_plan(CHANCELLOR).to_json())


def test_the_per_person_table_pools_replication_errors():
    import pandas as pd

    records = pd.DataFrame({"arm": ["a", "b", "a", "b"], "replication": [0, 0, 1, 1],
                            "per_person_qalys": [1.0, 2.0, 3.0, 5.0],
                            "per_person_qalys_se": [0.3, 0.4, 0.3, 0.4]})
    t = per_person_table(records, "a").set_index(["arm", "outcome"])
    assert t.loc[("a", "qalys"), "mean"] == 2.0
    assert t.loc[("a", "qalys"), "se"] == pytest.approx(np.sqrt(0.18) / 2)
    assert t.loc[("b", "qalys"), "difference"] == 1.5
    assert t.loc[("b", "qalys"), "difference_se"] == pytest.approx(np.sqrt(2 * 0.25) / 2)
