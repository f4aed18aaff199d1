"""Hospital-flow interventions: step-down beds and supported homes for delayed patients."""

from __future__ import annotations

import numpy as np
import pytest

from hhsim.batch.design import runs
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import compile_plan, validate
from hhsim.interventions.discharge import PLACED
from hhsim.model.record import monthly_table, run_record, stay_table
from hhsim.model.simulation import HousingHealthModel

ENGLAND = {"owner_occupied": 0.65, "private_rented": 0.19, "social_rented": 0.16}


def experiment(*arms: dict, months: int = 24, tenants: int = 30_000, seed: int = 7) -> dict:
    return {"experiment": {"seed": seed, "months": months, "replications": 1},
            "population": {"tenants": tenants, "tenure": ENGLAND},
            "arms": [{"name": "baseline"}, *arms]}


def models(data: dict) -> dict[str, HousingHealthModel]:
    return {s.arm: HousingHealthModel(s.config) for s in runs(compile_plan(validate(data)))}


def run_all(data: dict) -> dict[str, HousingHealthModel]:
    out = models(data)
    for m in out.values():
        m.run()
    return out


def step_down(places: float = 29, **kw) -> dict:
    return {"type": "step_down", "name": "unit", "capacity": {"places": places}, **kw}


def homes(places: float = 5, **kw) -> dict:
    return {"type": "supported_housing", "name": "homes", "capacity": {"places": places}, **kw}


def test_places_are_never_exceeded_and_nobody_is_in_two_places():
    arm = {"name": "both", "interventions": [step_down(4), homes(1)]}
    m = models(experiment(arm))["both"]
    unit, home = m.interventions
    served = []
    for _ in range(24):
        m.step()
        in_unit = m.hospital.location == unit.code
        assert np.array_equal(in_unit, unit.status == PLACED)  # in the unit iff placed there
        residents = home.status == PLACED
        assert not (residents & in_unit).any()
        waiting = np.concatenate([unit.provider.ids, home.provider.ids])
        assert not (residents[waiting] | in_unit[waiting]).any()  # placed people wait no more
        served.append((unit.provider.served, home.provider.served))
    assert max(s for s, _ in served) <= 4 and max(h for _, h in served) <= 1
    rec = run_record(m, "2023/24")
    assert rec["iv_unit_peak_occupied"] == 4 and rec["iv_unit_not_placed"] > 0  # full at times
    assert rec["iv_unit_placed"] > 20


def test_zero_places_reproduce_the_baseline_exactly():
    runs = run_all(experiment({"name": "none", "interventions": [step_down(0), homes(0)]}))
    base, none = (run_record(runs[a], "2023/24") for a in ("baseline", "none"))
    for key, value in base.items():
        assert none[key] == value or (np.isnan(value) and np.isnan(none[key])), key
    assert none["iv_unit_eligible"] > 50 and none["iv_unit_placed"] == 0


def test_days_of_life_are_conserved():
    m = run_all(experiment({"name": "s", "interventions": [step_down(10), homes(2)]}))["s"]
    count = m.ledger.count
    away = sum(count[f"{t.name}_{k}"].astype(np.int64) for t in m.health.admissions
               for k in ("bed_days", "delayed_days"))
    unit = count["unit_unit_days"].astype(np.int64)
    alive, home = count["days_alive"].astype(np.int64), count["days_at_home"].astype(np.int64)
    assert unit.sum() > 0
    assert (home >= 0).all()
    assert np.array_equal(alive, away + unit + home)  # hospital + unit + home = days alive
    assert (alive[m.pop.alive] == m.day).all()  # the living were alive every day of the run


def test_the_counterfactual_is_the_same_patient_without_the_programme():
    runs = run_all(experiment({"name": "none", "interventions": [step_down(0)]},
                              {"name": "unit", "interventions": [step_down(15)]}))
    none, unit = (stay_table(runs[a]) for a in ("none", "unit"))
    first = {a: t.drop_duplicates("tenant").set_index("tenant") for a, t in (("none", none), ("unit", unit))}
    both = first["unit"].index.intersection(first["none"].index)
    assert len(both) > 100
    for col in ("fit_day", "counterfactual_end_day"):
        assert (first["unit"].loc[both, col] == first["none"].loc[both, col]).all()
    placed = unit[unit["placed_day"] >= 0]
    assert (placed["days_saved"] == placed["counterfactual_end_day"] - placed["placed_day"]).all()
    assert (placed["days_saved"] >= 0).all() and (unit["waited_days"] >= 0).all()
    # Days saved per patient add up to the fall in delayed-discharge days, give or take the
    # readmissions and later stays that the programme changes.
    base, arm = (run_record(runs[a], "2023/24") for a in ("baseline", "unit"))
    fall = base["delayed_discharge_days"] - arm["delayed_discharge_days"]
    assert fall == pytest.approx(placed["days_saved"].sum(), rel=0.1)


def test_homes_speed_mental_health_discharge_and_free_only_when_tenants_leave():
    runs = run_all(experiment({"name": "homes", "interventions": [homes(5, log=True)]},
                              months=36, tenants=80_000))
    base, arm = (run_record(runs[a], "2023/24") for a in ("baseline", "homes"))
    assert arm["use_mental_health_delayed_days"] < base["use_mental_health_delayed_days"]
    assert arm["iv_homes_placed"] > 5
    left = arm["iv_homes_moved_on"] + arm["iv_homes_tenancy_failed"] + arm["iv_homes_died_in_place"]
    # Every placement beyond the first five needed a home to free up.
    assert arm["iv_homes_placed"] <= 5 + left
    occupied = monthly_table(runs["homes"])["homes:occupied"]
    assert occupied.max() == 5  # all let at some point, never more
    iv = runs["homes"].interventions[0]
    assert not (iv.status[iv.provider.ids] == PLACED).any()  # tenants do not wait for a home


@pytest.mark.parametrize("table, expected", [
    (step_down(admission_types=["emergncy"]), "did you mean 'emergency'"),
    (step_down(effects={"r": {"target": "hospital.admissions.emergency.readmission_30d",
                              "rate_ratio": 0.8}}), "its effects are odds ratios"),
    (step_down(stay={"mean": {"value": 0, "unit": "days", "source": "x"}}), "must be above 0 days"),
    (homes(tenancy={"move_on": 0.7, "failure": 0.7}), "add up to more than 1"),
    (step_down(enrolment={"duration": 3}), "only decay_half_life applies"),
])
def test_hospital_flow_mistakes_are_one_line_errors(table, expected):
    with pytest.raises(HhsimError) as err:
        validate(experiment({"name": "arm", "interventions": [table]}))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_cost_per_patient_is_charged_once_per_placement():
    per_patient = {"assessment": {"value": 100.0, "unit": "£ per client", "price_year": "2023/24",
                                  "source": "test"}}
    runs = run_all(experiment({"name": "unit", "interventions": [step_down(4, costs=per_patient)]},
                              months=12, tenants=20_000))
    rec = run_record(runs["unit"], "2023/24")
    assert rec["iv_unit_placed"] > 10
    assert rec["use_unit_assessment"] == rec["iv_unit_placed"]
    assert rec["intervention_cost_unit_undisc"] > 100.0 * rec["iv_unit_placed"] - 1e-6
