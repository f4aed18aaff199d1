"""Housing First, the homeless tenures and the baseline housing pathway."""

from __future__ import annotations

import numpy as np
import pytest

from hhsim.batch.design import runs
from hhsim.core.errors import HhsimError
from hhsim.core.resources import intervention_defaults
from hhsim.experiment.plan import compile_plan, validate
from hhsim.interventions.programme import SERVED
from hhsim.model.record import run_record
from hhsim.model.simulation import HousingHealthModel
from hhsim.world.housing_pathway import HousingPathway, is_homeless
from hhsim.world.population import HAZARDS, HOMELESS, TENURES

CITY = {"social_rented": 0.8, "temporary_accommodation": 0.1, "rough_sleeping": 0.1}


def experiment(*arms: dict, months: int = 12, tenants: int = 2000, tenure: dict | None = None,
               seed: int = 11, parameters: dict | None = None) -> dict:
    data = {"experiment": {"seed": seed, "months": months, "replications": 1},
            "population": {"tenants": tenants, "tenure": tenure or CITY},
            "arms": [{"name": "baseline"}, *arms]}
    if parameters:
        data["parameters"] = parameters
    return data


def housing_first(fte: float = 1, caseload: float = 6, **kw) -> dict:
    return {"type": "housing_first", "name": "hf",
            "capacity": {"staff_fte": fte, "caseload_per_fte": caseload}, **kw}


def models(data: dict) -> dict[str, HousingHealthModel]:
    return {s.arm: HousingHealthModel(s.config) for s in runs(compile_plan(validate(data)))}


def records(data: dict) -> dict[str, dict]:
    out = {}
    for arm, m in models(data).items():
        m.run()
        out[arm] = run_record(m, "2023/24")
    return out


def same(a: dict, b: dict, costs: bool = True) -> None:
    """Every baseline key equal (costs of the intervention left out unless ``costs``)."""
    for key, value in a.items():
        if not costs and ("local_authority" in key or key.startswith("intervention_cost")):
            continue
        assert b[key] == value or (np.isnan(value) and np.isnan(b[key])), key


def test_places_are_never_exceeded_and_clients_are_housed():
    m = models(experiment({"name": "hf", "interventions": [housing_first(1, 4)]}, months=18))["hf"]
    hf = m.interventions[0]
    for _ in range(18):
        m.step()
        served = hf.status == SERVED
        assert hf.provider.served <= 4 and served.sum() <= 4
        assert (m.pop.tenure[served] == TENURES.index("social_rented")).all()  # housed
        assert m.pathway.held[served].all() and not m.pathway.held[~served].any()
    rec = run_record(m, "2023/24")
    assert rec["iv_hf_peak_served"] == 4 and rec["iv_hf_housed"] >= 4
    # profiles stay in step with the tenure changes
    assert np.array_equal(m.pop.static_profile, m.health.profiles.static_index(m.pop, None))


RATES = ("services.ae", "services.ambulance", "hospital.admissions.emergency",
         "hospital.admissions.mental_health", "mortality")


def test_zero_places_or_zero_effect_equal_the_baseline_exactly():
    no_effect = {k: {"target": v["target"], "rate_ratio": 1.0}
                 for k, v in intervention_defaults("housing_first")["effects"].items()}
    # Zero effect: the support changes nothing, homelessness itself changes no rate (its
    # tenure terms are 1) and no hazard arises in a social home (hazards come and go: a
    # housed client's new home could get one), so housing people changes nothing but the costs.
    flat = {f"{r}.rr.tenure.{t}": 1.0 for r in RATES for t in HOMELESS}
    flat |= {f"world.hazards.{h}.social_rented": 0.0 for h in HAZARDS}
    recs = records(experiment({"name": "none", "interventions": [housing_first(0)]},
                              {"name": "empty", "interventions": [housing_first(2, 0)]}))
    for arm in ("none", "empty"):
        same(recs["baseline"], recs[arm], costs=arm == "none")
        assert recs[arm]["iv_hf_referred"] > 0 and recs[arm]["iv_hf_housed"] == 0
    assert recs["empty"]["intervention_cost"] > 0 and recs["none"]["intervention_cost"] == 0
    recs = records(experiment({"name": "flat", "interventions": [housing_first(2, effects=no_effect)]},
                              parameters=flat))
    same(recs["baseline"], recs["flat"], costs=False)
    assert recs["flat"]["iv_hf_housed"] > 5


def test_nobody_homeless_is_identical_to_a_run_without_the_pathway(monkeypatch):
    data = experiment(tenure={"social_rented": 1.0}, months=6, tenants=1000)
    with_pathway = records(data)["baseline"]
    monkeypatch.setattr(HousingPathway, "step", lambda self, t: None)
    without = records(data)["baseline"]
    same(with_pathway, without)


def test_the_pathway_moves_people_and_zero_probabilities_move_nobody():
    zero = {f"world.housing_pathway.{k}": 0.0
            for k in ("rough_to_temporary", "temporary_to_tenancy", "tenancy_loss")}
    for parameters, moves in ((None, True), (zero, False)):
        m = models(experiment(months=12, tenants=1000, parameters=parameters))["baseline"]
        start = m.pop.tenure.copy()
        m.run()
        assert (m.pop.tenure != start).any() == moves
        assert not (is_homeless(start) & ~is_homeless(m.pop.tenure) & ~m.pathway.formerly).any()


def test_tenancy_sustainment_matches_the_parameter():
    # Everyone sleeping rough, referred and admitted at once; enough places for all.
    hf = housing_first(300, 10, uptake=1.0, referrals={"council": {"probability": 1.0}},
                       queue={}, effects={})
    m = models(experiment({"name": "hf", "interventions": [hf]}, months=37, tenants=2500,
                          tenure={"rough_sleeping": 1.0}))["hf"]
    m.run()
    rec = run_record(m, "2023/24")
    assert rec["iv_hf_housed"] > 2450  # all but the few under 18
    p = m.interventions[0].settings.failure
    for months, key in ((12, "iv_hf_sustained_12m_share"), (36, "iv_hf_sustained_36m_share")):
        expected = (1 - p) ** months
        se = np.sqrt(expected * (1 - expected) / rec["iv_hf_housed"])
        assert abs(rec[key] - expected) < 4 * se, (months, rec[key], expected)
    assert abs((1 - p) ** 36 - 0.84) < 1e-4


def test_homeless_tenants_use_more_ae_than_others():
    m = models(experiment(months=6, tenants=3000))["baseline"]
    start = m.pop.tenure.copy()
    m.run()
    ae = m.ledger.count["ae"].astype(np.float64)
    rough = ae[start == TENURES.index("rough_sleeping")].mean()
    temporary = ae[start == TENURES.index("temporary_accommodation")].mean()
    settled = ae[start == TENURES.index("social_rented")].mean()
    assert rough > 5 * temporary and temporary > settled


@pytest.mark.parametrize(("table", "expected"), [
    (housing_first(eligibility={"tenure": ["social_rented"]}), "must list only homeless tenures"),
    (housing_first(tenancy={"failure": {"value": 1.5, "unit": "probability per month", "source": "x"}}),
     "tenancy.failure"),
    (housing_first(tenancy={"to_rough_sleeping": 2.0}), "to_rough_sleeping"),
    (housing_first(tenancy={"evictions": 0.1}), "evictions"),
    (housing_first(complex_needs="yes"), "complex_needs: must be true or false"),
    (housing_first(capacity={"staff_fte": -1}), "at least 0"),
])
def test_bad_settings_are_one_line_errors(table, expected):
    with pytest.raises(HhsimError) as err:
        validate(experiment({"name": "arm", "interventions": [table]}))
    assert expected in str(err.value) and "\n" not in str(err.value)
