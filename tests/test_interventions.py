"""Interventions: capacity, priority, costs counted once, effects in the right direction,
and a closed-form check of the generic rate-ratio intervention."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hhsim.batch.design import runs
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import compile_plan, validate
from hhsim.interventions.effects import rate_ratio_from_odds_ratio
from hhsim.interventions.provider import Provider
from hhsim.model.record import event_table, monthly_table, run_record
from hhsim.model.simulation import HousingHealthModel

from conftest import MODELS

MONEY = {"unit": "£ per person-month", "price_year": "2023/24", "source": "test"}


def experiment(*arms: dict, months: int = 24, tenants: int = 3000, model: str = "default",
               seed: int = 5, replications: int = 1, **extra) -> dict:
    return {"experiment": {"seed": seed, "months": months, "replications": replications, "model": model},
            "population": {"tenants": tenants}, "arms": [{"name": "baseline"}, *arms], **extra}


def run_all(data: dict) -> dict[str, HousingHealthModel]:
    """Every run of an experiment, by arm (one replication)."""
    out = {}
    for spec in runs(compile_plan(validate(data))):
        m = HousingHealthModel(spec.config)
        m.run()
        out[spec.arm] = m
    return out


def support(**settings) -> dict:
    return {"type": "personalised_support", "name": "support", **settings}


# -- the provider: capacity, budget and priority ---------------------------------------------------
@pytest.fixture
def host():
    import mesa
    return mesa.Model(rng=0)


@pytest.mark.parametrize("order, expected", [
    ("first_come", [10, 11, 12]),          # earliest joined first, then lower id
    ("risk", [14, 12, 13]),                # highest score first
    ("cheapest_first", [13, 14, 11]),      # lowest cost first
])
def test_the_queue_is_served_in_the_configured_priority_order(host, order, expected):
    p = Provider(host, "p", places=3, order=order)
    p.join(np.array([10, 11]), t=0, score=np.array([1.0, 0.0]), cost=np.array([5.0, 3.0]))
    p.join(np.array([12, 13, 14]), t=1, score=np.array([5.0, 2.0, 9.0]), cost=np.array([4.0, 1.0, 2.0]))
    assert sorted(p.admit(2).tolist()) == sorted(expected)
    assert p.served == 3 and p.queue_size == 2
    assert p.admit(2).size == 0  # full: nobody more until places free up
    p.discharge(1.0)
    assert p.admit(3).size == 1


def test_weights_count_against_places_and_the_budget_is_released_monthly(host):
    p = Provider(host, "p", places=10, budget_per_year=1200.0)
    p.join(np.arange(4), t=0, weight=np.array([4.0, 4.0, 4.0, 1.0]), cost=np.full(4, 100.0))
    assert p.admit(0).size == 1  # month 0 releases £100: one job
    assert p.admit(1).size == 1  # £200 released by month 1, £100 spent
    assert p.admit(5).size == 0  # places: 8 of 10 taken, the next needs 4
    p.discharge(4.0)
    assert p.admit(5).tolist() == [2, 3]  # 4 + 1 people in 6 free places, £200 of £400 left
    assert p.peak_served == 9.0 and p.max_wait == 5


# -- capacity and priority in a run -----------------------------------------------------------------
def test_places_are_never_exceeded_and_waiting_lists_form():
    heavy = support(capacity={"staff_fte": 0.25}, log=True,
                    referrals={"community_health": {"probability": 0.2}}, end_month=24)
    runs = run_all(experiment({"name": "support", "interventions": [heavy]}))
    m = runs["support"]
    monthly = monthly_table(m)
    places = 0.25 * 20
    assert monthly["support:served"].max() == places  # full at some point ...
    assert (monthly["support:served"] <= places).all()  # ... never above
    assert monthly["support:queue"].max() > 0
    rec = run_record(m, "2023/24")
    assert rec["iv_support_mean_wait_months"] > 0
    # The log agrees with the states: no admission after death, nobody admitted twice.
    ev = event_table(m)
    admitted = ev[ev["event"] == "admitted"]
    assert admitted["id"].is_unique
    died = ev[ev["event"].isin(["died_while_served", "died_waiting"])].set_index("id")["month"]
    later = admitted.set_index("id")["month"].reindex(died.index)
    assert (later.dropna() < died.loc[later.dropna().index]).all()
    assert len(admitted) == rec["iv_support_admitted"]


def test_risk_priority_admits_the_highest_observable_scores_first(monkeypatch):
    seen = []
    original = Provider._admit

    def spy(self, t):
        before = dict(zip(self.ids.tolist(), self.score.tolist(), strict=True))
        taken = original(self, t)
        if taken.size and self.ids.size:
            seen.append((min(before[i] for i in taken.tolist()), self.score.max()))
        return taken

    monkeypatch.setattr(Provider, "_admit", spy)
    risky = support(priority="risk", capacity={"staff_fte": 0.25},
                    referrals={"community_health": {"probability": 0.3}},
                    risk={"age": {"value": 0.05, "unit": "points per year of age", "source": "test"},
                          "recent": {"admissions": {"value": 1.0, "unit": "points", "source": "test"}}})
    run_all(experiment({"name": "support", "interventions": [risky]}, months=12))
    assert len(seen) >= 3
    assert all(lowest_admitted >= highest_left for lowest_admitted, highest_left in seen)


# -- zero capacity, zero effect ---------------------------------------------------------------------
def _same_as_baseline(base: dict, other: dict, skip: tuple[str, ...] = ()) -> None:
    for key, value in base.items():
        if key.startswith(skip):
            continue
        assert other[key] == value or (math.isnan(value) and math.isnan(other[key])), key


def test_zero_capacity_or_zero_effect_equals_the_baseline_exactly():
    no_effect = {k: {"target": v["target"], **({"points": 0.0} if v["target"] == "wellbeing"
                                               else {"rate_ratio": 1.0})}
                 for k, v in _support_effects().items()}
    arms = [{"name": "no_staff", "interventions": [support(capacity={"staff_fte": 0.0})]},
            {"name": "no_effect", "interventions": [support(effects=no_effect)]},
            {"name": "no_budget", "interventions": [{"type": "home_repairs",
                                                     "capacity": {"budget_per_year": 0.0}}]},
            {"name": "ratio_one", "interventions": [{"type": "rate_ratio",
                                                     "effects": {"gp": {"target": "services.gp",
                                                                        "rate_ratio": 1.0}}}]}]
    runs = run_all(experiment(*arms, tenants=2000))
    recs = {arm: run_record(m, "2023/24") for arm, m in runs.items()}
    base = recs["baseline"]
    _same_as_baseline(base, recs["no_staff"])
    assert recs["no_staff"]["intervention_cost"] == 0 and recs["no_staff"]["iv_support_admitted"] == 0
    _same_as_baseline(base, recs["no_effect"], skip=("cost_housing_provider", "intervention_cost"))
    assert recs["no_effect"]["iv_support_admitted"] > 0 and recs["no_effect"]["intervention_cost"] > 0
    _same_as_baseline(base, recs["no_budget"])
    assert recs["no_budget"]["iv_home_repairs_ordered"] == 0
    _same_as_baseline(base, recs["ratio_one"])
    assert recs["ratio_one"]["iv_rate_ratio_admitted"] > 1000


def _support_effects() -> dict:
    from hhsim.core.resources import intervention_defaults
    return intervention_defaults("personalised_support")["effects"]


# -- costs counted once -----------------------------------------------------------------------------
def test_each_cost_is_counted_once_with_its_payer():
    nhs_paid = {"type": "rate_ratio", "name": "checkups", "payer": "nhs", "end_month": 6,
                "eligibility": {"age": [75, 200]},
                "effects": {"gp": {"target": "services.gp", "rate_ratio": 0.9}},
                "costs": {"per_person_month": {"value": 10.0, **MONEY}}}
    runs = run_all(experiment({"name": "support", "interventions": [support()]},
                              {"name": "checkups", "interventions": [nhs_paid]}, months=12))
    rec = {arm: run_record(m, "2023/24") for arm, m in runs.items()}
    s, c = rec["support"], rec["checkups"]
    # Half-time worker for the 12-month pilot at £61,425 per FTE-year (2023/24 prices).
    assert s["intervention_cost_undisc"] == pytest.approx(0.5 * 61425)
    assert s["intervention_cost_support_undisc"] == s["intervention_cost_undisc"]
    assert s["cost_housing_provider_undisc"] == pytest.approx(s["intervention_cost_undisc"])
    assert s["nhs_cost"] == s["cost_nhs"]  # the housing provider pays, not the NHS
    # The NHS pays for check-ups: in its total, but never in NHS care cost.
    person_months = c["use_checkups_per_person_month"]
    assert c["intervention_cost_undisc"] == pytest.approx(10.0 * person_months)
    assert c["cost_nhs"] == pytest.approx(c["nhs_cost"] + c["intervention_cost"])
    assert c["cost_nhs_undisc"] == pytest.approx(c["nhs_cost_undisc"] + c["intervention_cost_undisc"])
    monthly = monthly_table(runs["checkups"])
    assert monthly["cost:interventions"].sum() == pytest.approx(c["intervention_cost_undisc"])
    assert monthly["cost:nhs_care"].sum() == pytest.approx(c["nhs_cost_undisc"])
    for arm in ("support", "checkups"):
        payers = sum(rec[arm][f"cost_{p}"] for p in ("nhs", "social_care", "housing_provider",
                                                     "local_authority"))
        assert payers == pytest.approx(rec[arm]["nhs_cost"] + rec[arm]["cost_social_care"]
                                       + rec[arm]["intervention_cost"])


# -- direction of effects -----------------------------------------------------------------------------
def test_support_lowers_community_healthcare_use_and_raises_wellbeing():
    big = support(capacity={"staff_fte": 5.0}, end_month=24,
                  referrals={"community_health": {"probability": 0.1}})
    runs = run_all(experiment({"name": "support", "interventions": [big]}, tenants=4000))
    base, sup = (run_record(runs[a], "2023/24") for a in ("baseline", "support"))
    assert sup["iv_support_admitted"] > 100
    assert sup["use_community_nursing"] < base["use_community_nursing"]
    assert sup["use_gp"] < base["use_gp"]
    mb, ms = monthly_table(runs["baseline"]), monthly_table(runs["support"])
    assert (ms["mean_wellbeing"] - mb["mean_wellbeing"]).iloc[6:].min() > 0
    assert ms["isolation:isolated"].sum() < mb["isolation:isolated"].sum()
    assert ms["care_need:care_need"].sum() < mb["care_need:care_need"].sum()


def test_repairs_remove_hazards_within_budget_and_lower_hazard_related_use():
    runs = run_all(experiment({"name": "repairs", "interventions": [{"type": "home_repairs"}]},
                              months=36, tenants=6000))
    m = runs["repairs"]
    rec, base = run_record(m, "2023/24"), run_record(runs["baseline"], "2023/24")
    fixed = sum(rec[f"iv_home_repairs_fixed_{h}"] for h in ("excess_cold", "damp", "falls"))
    assert fixed > 100
    # Hazards come and go in both arms with the same random numbers: where no works were
    # ordered they are the baseline's; the programme leaves fewer hazards overall.
    end = runs["baseline"].pop.dwellings.hazards
    worked = m.intervention("home_repairs").ordered_at >= 0
    assert (m.pop.dwellings.hazards[~worked] == end[~worked]).all()
    assert (m.pop.dwellings.hazards != 0).sum() < (end != 0).sum()
    # Three programme years at £500,000: never more committed than the budget.
    spent = monthly_table(m)["cost:interventions"].to_numpy().reshape(3, 12).sum(axis=1)
    assert (spent <= 500_000 * 1.0001).all() and spent.sum() > 0
    assert rec["use_gp"] < base["use_gp"] and rec["use_ae"] <= base["use_ae"]


# -- the generic rate ratio against a closed form ------------------------------------------------------
def test_rate_ratio_matches_the_hand_computed_expectation():
    n, rate, rr = 20_000, 0.6, 0.5
    what_if = {"type": "rate_ratio", "name": "slower", "end_month": 12,
               "eligibility": {"states": {"health": ["healthy"]}},
               "effects": {"slower": {"target": "chains.health.transitions.fall_ill", "rate_ratio": rr}},
               "costs": {"per_person_month": {"value": 10.0, **MONEY}}}
    data = experiment({"name": "what_if", "interventions": [what_if]}, months=24, tenants=n,
                      model=str(MODELS / "two_state_monthly.toml"))
    runs = run_all(data)
    healthy = {arm: monthly_table(m)["health:healthy"].to_numpy() for arm, m in runs.items()}
    for arm, months, expected in (("baseline", 12, math.exp(-rate)),
                                  ("what_if", 12, math.exp(-rate * rr)),
                                  ("what_if", 24, math.exp(-rate * rr) * math.exp(-rate))):
        sd = math.sqrt(n * expected * (1 - expected))
        assert abs(healthy[arm][months - 1] - n * expected) < 4 * sd, (arm, months)
    # Cost: £10 for each month a healthy tenant starts enrolled (months 0-11).
    starts = np.concatenate([[n], healthy["what_if"][:11]])
    rec = run_record(runs["what_if"], "2023/24")
    assert rec["intervention_cost_undisc"] == pytest.approx(10.0 * starts.sum())
    # Those who fell ill left at the start of the next month; the rest when the window closed.
    assert rec["iv_slower_ineligible"] == n - healthy["what_if"][10]
    assert rec["iv_slower_closed_while_served"] == healthy["what_if"][10]


# -- evidence conversions and one-line errors ------------------------------------------------------------
def test_an_odds_ratio_becomes_a_hazard_ratio_at_the_baseline_probability():
    risk, hazard = rate_ratio_from_odds_ratio(0.5, 0.2)
    assert risk == pytest.approx(0.5 / (1 - 0.2 + 0.2 * 0.5))  # Zhang & Yu
    p1 = 0.2 * risk
    assert math.exp(-hazard * -math.log(1 - 0.2)) == pytest.approx(1 - p1)  # same period, constant hazards


@pytest.mark.parametrize("table, expected", [
    ({"type": "personalised_suport"}, "did you mean 'personalised_support'"),
    (support(capacity={"staff_ftee": 1}), "did you mean 'staff_fte'"),
    (support(effects={"x": {"target": "services.gpp", "rate_ratio": 0.9}}), "did you mean 'services.gp'"),
    (support(effects={"x": {"target": "services.gp", "qaly_gain": 0.03}}), "count the benefit twice"),
    (support(effects={"x": {"target": "services.gp", "rate_ratio": -1}}), "greater than 0"),
    (support(queue={"renege": 1.5}), "between 0 and 1"),
    (support(capacity={"staff_fte": -1}), "at least 0"),
    (support(end_month=0), "is not after start_month"),
    (support(start_month=30), "would never run"),
    (support(queue={"renege": 0.6, "move_out": 0.6}), "add up to more than 1"),
    ({"type": "home_repairs", "hazards": ["damp", "damp"]}, "lists a hazard twice"),
    ({"type": "rate_ratio", "name": "emergency",
      "effects": {"gp": {"target": "services.gp", "rate_ratio": 0.9}},
      "costs": {"admissions": {"value": 1.0, **MONEY}}}, "clashes"),
    (support(costs={"staff": {"value": 1.0, "unit": "£ per fte-year", "price_year": "1990/91",
                              "source": "x"}}), "staff.price_year: '1990/91' cannot be uprated"),
    (support(capacity=3), "capacity: must be a table"),
    (support(effects=[1]), "must be a table of effects"),
    (support(effects={"gp": {"target": ["services.gp"]}}), "must name one rate"),
    (support(assessment=3), "must be a table of areas"),
    ({"type": ["rate_ratio"]}, "unknown intervention type"),
    (support(capacity={"staff_fte": True}), "not text or true/false"),
    (support(enrolment={"duration": "6"}), "not text or true/false"),
    (support(capacity={"budget_per_year": {"value": 1e4, "unit": "£ per year", "price_year": "2023/24",
                                           "source": "x"}}), "limits per-client costs"),
    (support(assessment={"home_and_housing": {"refer_to": "repairs"}}), "not a home_repairs intervention"),
    ({"type": "rate_ratio"}, "effects: is empty"),
])
def test_intervention_mistakes_are_one_line_errors(table, expected):
    with pytest.raises(HhsimError) as err:
        validate(experiment({"name": "arm", "interventions": [table]}))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_intervention_parameters_can_be_overridden_by_dotted_name():
    data = experiment({"name": "arm", "interventions": [support()]},
                      parameters={"interventions.support.capacity.staff_fte": 2.0})
    exp = validate(data)
    tree = exp.interventions(exp.arms[1])[0]
    assert tree["capacity"]["staff_fte"]["value"] == 2.0
    with pytest.raises(HhsimError, match="did you mean 'support'"):
        validate(experiment({"name": "arm", "interventions": [support()]},
                            parameters={"interventions.suport.capacity.staff_fte": 2.0}))


def test_errors_survive_the_trip_back_from_a_worker_process():
    import pickle

    err = HhsimError("interventions.support.costs.staff", "bad", "fix it")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.where == err.where


def test_an_empty_table_removes_a_default_and_an_effect_can_change_form():
    table = support(referrals={"community_health": {},
                               "gp": {"probability": 0.05,
                                      "recent": {"service": "gp", "months": 3, "at_least": 2}}},
                    effects={"gp": {"percent_change": -20}, "isolation_onset": {}})
    exp = validate(experiment({"name": "arm", "interventions": [table]}))
    tree = exp.interventions(exp.arms[1])[0]
    assert list(tree["referrals"]) == ["gp"]
    assert "isolation_onset" not in tree["effects"]
    assert set(tree["effects"]["gp"]) == {"target", "area", "percent_change"}


def test_the_same_intervention_under_another_name_faces_the_same_random_numbers():
    runs = run_all(experiment({"name": "a", "interventions": [support(name="first")]},
                              {"name": "b", "interventions": [support(name="second")]}, months=12))
    a, b = (run_record(runs[x], "2023/24") for x in ("a", "b"))
    assert a["iv_first_referred"] == b["iv_second_referred"] > 0
    assert a["nhs_cost"] == b["nhs_cost"]


def test_nobody_gives_up_waiting_when_there_is_no_wait():
    roomy = support(capacity={"staff_fte": 50.0}, queue={"renege": 0.5},
                    referrals={"community_health": {"probability": 0.2}})
    rec = run_record(run_all(experiment({"name": "s", "interventions": [roomy]}, months=12))["s"], "2023/24")
    assert rec["iv_support_admitted"] > 50 and rec["iv_support_reneged"] == 0


def test_effects_fade_from_the_month_a_client_leaves():
    runs = run_all(experiment({"name": "s", "interventions": [support(end_month=3, log=True)]}, months=6))
    iv = runs["s"].interventions[0]
    idx, strength = iv.strengths(3)  # everyone left when the programme closed at month 3
    assert idx.size and np.allclose(strength, 2 ** (-1 / 6))
    assert (event_table(runs["s"])["unit"] == "tenant").all()


def test_a_job_that_can_never_be_afforded_does_not_block_the_queue(host):
    p = Provider(host, "p", budget_per_year=1200.0)
    p.join(np.array([1, 2]), t=0, cost=np.array([5000.0, 50.0]))
    assert p.admit(0).tolist() == [2]
    assert p.cannot_fit == 1.0


def test_budgets_hold_for_weighted_populations():
    from conftest import ROOT

    data = experiment({"name": "r", "interventions": [
        {"type": "home_repairs", "capacity": {"budget_per_year": {
            "value": 100_000.0, "unit": "£ per year", "price_year": "2023/24", "source": "test"}}}]},
        months=24, tenants=3000)
    data["population"] = {"tenants": 3000, "profile": str(ROOT / "experiments" / "example-profile.csv")}
    m = run_all(data)["r"]
    assert m.pop.weight.mean() > 2  # each tenant stands for several people
    spent = monthly_table(m)["cost:interventions"].to_numpy().reshape(2, 12).sum(axis=1)
    assert (spent <= 100_000 * 1.0001).all() and spent.sum() > 50_000
    rec = run_record(m, "2023/24")
    assert rec["intervention_cost_undisc"] == pytest.approx(spent.sum())
    assert (event_table(m)["unit"] == "dwelling").all()
