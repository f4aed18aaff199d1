"""Social prescribing: places at link workers and community centres, the referral log
against the simulated states, source attribution, and zero capacity or effect = baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_interventions import _same_as_baseline, experiment, run_all

from hhsim.core.errors import HhsimError
from hhsim.core.resources import intervention_defaults
from hhsim.experiment.plan import validate
from hhsim.model.record import monthly_table, referral_table, run_record


def prescribing(**settings) -> dict:
    return {"type": "social_prescribing", "name": "sp", **settings}


BUSY = dict(referrals={"gp": {"probability": 0.2}, "housing_officers": {"probability": 0.3}},
            capacity={"staff_fte": 0.5},
            activities={a: {"places_per_centre": 1} for a in
                        ("physical_activity", "mindfulness_arts", "debt_employment_advice")})


@pytest.fixture(scope="module")
def busy():
    """A programme short of link workers and of places at the centres (one replication)."""
    runs = run_all(experiment({"name": "sp", "interventions": [prescribing(**BUSY)]},
                              months=24, tenants=3000))
    return runs["sp"]


def test_link_worker_and_centre_places_are_never_exceeded(busy):
    monthly = monthly_table(busy)
    assert monthly["sp:served"].max() == 0.5 * 50  # the caseload fills ...
    assert (monthly["sp:served"] <= 25).all()  # ... and is never exceeded
    assert monthly["sp:queue"].max() > 0
    rec = run_record(busy, "2023/24")
    sp = busy.intervention("sp")
    for k, a in enumerate(("physical_activity", "mindfulness_arts", "debt_employment_advice")):
        assert rec[f"iv_sp_{a}_peak_at_centre"] == 1.0  # a centre filled, never beyond
        assert (sp.venues[k].served_at <= 1).all()
        assert (monthly[f"sp:{a}_participants"] <= rec["iv_sp_centres"]).all()
        assert rec[f"iv_sp_{a}_no_place"] > 0  # people gave up waiting for a place
    in_activity = sp.activity_status == 2
    for k, venue in enumerate(sp.venues):  # who the centres hold is who the log says is in
        held = np.bincount(sp._centre(np.flatnonzero(in_activity & (sp.activity == k))),
                           minlength=sp.centres)
        assert np.array_equal(held, venue.served_at)


def test_the_referral_log_agrees_with_the_simulated_states(busy):
    log = referral_table(busy)
    assert len(log) > 100 and log["id"].is_unique  # a tenant is referred once at most
    assert len(log) == run_record(busy, "2023/24")["iv_sp_referred"]
    death = busy.death_month[log["id"]]
    died = death >= 0
    assert died.any()
    # Nobody is referred, engaged or starts an activity after the month they died in.
    for col in ("referred_month", "engaged_month", "activity_start"):
        assert (log.loc[died, col] <= death[died]).all(), col
    assert not busy.pop.alive[log.loc[log["outcome"] == "died", "id"]].any()
    # Every completed referral was engaged, and took its activity for its full length.
    done = log[log["outcome"] == "completed"]
    assert len(done) > 0 and done["engaged"].all()
    durations = {a: intervention_defaults("social_prescribing")["activities"][a]["duration"]["value"]
                 for a in done["activity"].unique()}
    assert ((done["activity_end"] - done["activity_start"]) == done["activity"].map(durations)).all()
    engaged = log[log["engaged"]]
    assert (engaged["engaged_month"] >= engaged["referred_month"]).all()
    started = log[log["activity_start"] >= 0]
    assert (started["activity_start"] >= started["engaged_month"]).all()
    assert started["engaged"].all() and (started["activity"] != "").all()
    assert (log.loc[~log["engaged"], "activity"] == "").all()
    assert set(log.loc[~log["engaged"], "outcome"]) <= {"declined", "waiting_for_link_worker"} | {
        o for o in log["outcome"] if o.startswith("left_waiting_list")}
    # Debt and employment advice only for those it suits (working age, deprived half).
    pop = busy.pop
    advice = log.loc[log["activity"] == "debt_employment_advice", "id"]
    assert (pop.deprivation[advice] <= 5).all()


def test_each_referral_is_credited_to_the_first_source_that_would_refer():
    both = {"referrals": {"housing_officers": {"probability": 0.3, "who": {}},
                          "gp": {"probability": 0.5, "recent": {}}}, "uptake": 0.0}
    runs = run_all(experiment({"name": "sp", "interventions": [prescribing(**both)]},
                              months=1, tenants=4000))
    log = referral_table(runs["sp"])
    eligible = int((runs["sp"].pop.age_years >= 18).sum())
    # Listed order: housing officers with 0.3, then GPs with 0.5 of the rest.
    expected = {"housing_officers": 0.3, "gp": 0.7 * 0.5}
    for source, p in expected.items():
        k = int((log["source"] == source).sum())
        assert stats.binomtest(k, eligible, p).pvalue > 0.001, (source, k / eligible)
    assert (log["outcome"] == "declined").all()


def test_zero_capacity_or_zero_effect_equals_the_baseline_exactly():
    effects = intervention_defaults("social_prescribing")["effects"]
    null = {k: {"points": 0.0} if v["target"] == "wellbeing" else {"rate_ratio": 1.0}
            for k, v in effects.items()}
    arms = [{"name": "no_staff", "interventions": [prescribing(capacity={"staff_fte": 0.0})]},
            {"name": "no_effect", "interventions": [prescribing(effects=null)]}]
    runs = run_all(experiment(*arms, months=12, tenants=2000))
    recs = {arm: run_record(m, "2023/24") for arm, m in runs.items()}
    _same_as_baseline(recs["baseline"], recs["no_staff"])
    assert recs["no_staff"]["iv_sp_admitted"] == 0 and recs["no_staff"]["iv_sp_referred"] > 0
    paid = ("cost_housing_provider", "intervention_cost")
    _same_as_baseline(recs["baseline"], recs["no_effect"], skip=paid)
    assert recs["no_effect"]["iv_sp_physical_activity_started"] > 0
    # Activity costs are charged per participant-month, with the programme's payer.
    cost = recs["no_effect"]["intervention_cost_undisc"]
    assert cost > recs["no_staff"]["intervention_cost_undisc"]


def test_effects_lower_gp_use_while_engaged():
    strong = prescribing(effects={"gp": {"rate_ratio": 0.2}}, referrals={"gp": {"probability": 0.5}},
                         capacity={"staff_fte": 20})
    runs = run_all(experiment({"name": "sp", "interventions": [strong]}, months=12, tenants=3000))
    base, arm = (run_record(runs[a], "2023/24") for a in ("baseline", "sp"))
    assert arm["use_gp"] < base["use_gp"]


@pytest.mark.parametrize("table, expected", [
    (prescribing(activities={"yoga": {"share": 1}}), "has no places_per_centre"),
    (prescribing(activities={"physical_activity": {"share": 0}}), "must be positive"),
    (prescribing(activities={"physical_activity": {"places_per_centre": -1}}), "out of range"),
    (prescribing(activities={"physical_activity": {"colour": "red"}}), "colour"),
    (prescribing(activities={"physical_activity": {"duration": 1.5}}), "whole number of months"),
    (prescribing(activities={"physical_activity": {"costs": {"sessions": {
        "value": 3, "unit": "£ per client", "price_year": "2023/24", "source": "x"}}}}), "£ per client"),
    (prescribing(referrals={"gp": {"who": {"states": {"isolation": ["lonely"]}}}}), "lonely"),
    (prescribing(effects={"fitness": {"area": "swimming"}}), "swimming"),
    (prescribing(activities={a: {} for a in ("physical_activity", "mindfulness_arts",
                                             "debt_employment_advice")}), "has no activity"),
])
def test_social_prescribing_mistakes_are_one_line_errors(table, expected):
    with pytest.raises(HhsimError) as err:
        validate(experiment({"name": "arm", "interventions": [table]}))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_the_run_writes_the_referral_log(tmp_path):
    from hhsim.api import run_experiment

    data = experiment({"name": "sp", "interventions": [prescribing()]}, months=6, tenants=1500)
    res = run_experiment(validate(data), tmp_path / "out", workers=1)
    log = res.referrals()
    assert isinstance(log, pd.DataFrame) and len(log) > 0
    assert set(log["run_id"]) == {r for r in res.records["run_id"] if r.startswith("sp")}
    assert {"source", "referred_month", "engaged", "activity", "activity_start", "outcome"} <= set(log)


def test_centres_scale_with_the_people_a_weighted_tenant_stands_for():
    from pathlib import Path

    profile = str(Path(__file__).parents[1] / "experiments" / "example-profile.csv")
    data = experiment({"name": "sp", "interventions": [prescribing(referrals={"gp": {"probability": 0.2}})]},
                      months=6, tenants=1500)
    data["population"]["profile"] = profile
    sp = run_all(data)["sp"]
    rec = run_record(sp, "2023/24")
    assert sp.pop.weight.mean() > 5  # each simulated tenant stands for several people
    for a, places in (("physical_activity", 12), ("debt_employment_advice", 8)):
        assert rec[f"iv_sp_{a}_started"] > 0 and rec[f"iv_sp_{a}_cannot_fit"] == 0
        assert rec[f"iv_sp_{a}_peak_at_centre"] <= places + 1e-6
