"""Admissions by cause (issue 16): each cause of an admission type is a rate of its own, so
hazards and interventions act on the cause they concern, and every admission has a cause.

Expected rates are read from the model (no sampling noise) where a ratio is asserted; the
one simulated share uses a binomial tolerance of 3 standard errors.
"""

import copy
import math

import numpy as np
import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.resources import default_model_tree
from hhsim.health.calendar import set_month
from hhsim.health.model_file import compile_model
from hhsim.model.simulation import HousingHealthModel
from hhsim.world.population import HAZARD_BITS

from conftest import config

CAUSES = ["respiratory", "circulatory", "falls", "injury", "mental", "other"]


def emergency(model):
    return next(t for t in model.admissions if t.name == "emergency")


def test_the_default_causes_share_the_emergency_rate_and_the_last_takes_the_rest():
    tree = default_model_tree()
    t = emergency(compile_model(tree))
    assert [c.name for c in t.causes] == CAUSES
    adults = t.rate.base[:, 16:]
    total = sum(c.rate.base for c in t.causes)[:, 16:]
    np.testing.assert_allclose(total, adults, rtol=1e-12)
    resp = t.causes[0].rate.base[:, 16:] / adults
    assert resp == pytest.approx(tree["parameters"]["respiratory_admission_share"]["value"])
    falls = t.causes[2].rate.base / np.where(t.rate.base > 0, t.rate.base, 1)
    share = tree["hospital"]["admissions"]["emergency"]["causes"]["falls"]["share"]["value"]
    assert falls[0, 30] == pytest.approx(share[1]) and falls[1, 80] == pytest.approx(share[6])  # 25-34, 75-84
    # each cause has the type's terms and its own: the damp term is the respiratory cause's only
    names = {c.name: [term.name for term in c.rate.terms] for c in t.causes}
    type_terms = [term.name for term in t.rate.terms]
    assert all(n[:len(type_terms)] == type_terms for n in names.values())
    assert [c for c, n in names.items() if any("damp" in x for x in n)] == ["respiratory"]
    assert [c for c, n in names.items() if any("falls" in x for x in n)] == ["falls"]


def _edit(edit) -> dict:
    tree = copy.deepcopy(default_model_tree())
    edit(tree["hospital"]["admissions"]["emergency"]["causes"])
    return tree


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda c: c["injury"].pop("share"), "only one cause may take what the others leave"),
    (lambda c: c["injury"].__setitem__("share", {"value": 0.9, "unit": "share of admissions",
                                                 "source": "x"}), "add up to"),
    (lambda c: (c.pop("other"), c["injury"].__setitem__(
        "share", {"value": 0.1, "unit": "share of admissions", "source": "x"})), "not 1"),
    (lambda c: c["mental"].__setitem__("share", {"value": 0.02, "unit": "rate ratio", "source": "x"}),
     "must be a share from 0 to 1"),
    (lambda c: c["mental"].__setitem__("rate", {"value": 0.02, "unit": "per person-year", "source": "x"}),
     "rate"),
])
def test_mistakes_in_causes_are_one_line_errors(edit, expected):
    with pytest.raises(HhsimError) as err:
        compile_model(_edit(edit))
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert "hospital.admissions.emergency.causes" in str(err.value)


def _model(tenants: int = 20_000, **kw) -> HousingHealthModel:
    tenure = {"owner_occupied": 0.64, "private_rented": 0.19, "social_rented": 0.17}
    return HousingHealthModel(config(tenants=tenants, tenure=tenure, **kw))


def _rates(m: HousingHealthModel, month: int, idx: np.ndarray) -> np.ndarray:
    """Adults' expected emergency admission rates by cause (columns in CAUSES order) in
    calendar month ``month``."""
    names = [r.name.rsplit(".", 1)[-1] for r in m.health.admission_stack.rates]
    set_month(m.pop, month)
    try:
        return m.rates_for(m.health.admission_stack, idx).astype(float)[:, [names.index(c) for c in CAUSES]]
    finally:
        set_month(m.pop, None)


def test_damp_acts_on_respiratory_admissions_only_and_cold_in_winter_by_cause():
    m = _model(tenants=4000, seed=2)
    tree = default_model_tree()
    adults = np.flatnonzero(m.pop.alive & (m.pop.age_years >= 16))
    k = {c: i for i, c in enumerate(CAUSES)}
    m.pop.dwellings.hazards[:] = 0
    m.pop.refresh_from_dwellings()
    m.health.profiles.refresh(m.pop)
    before = _rates(m, 6, adults)
    for hazard in ("damp", "excess_cold", "falls"):
        m.pop.dwellings.hazards[:] = HAZARD_BITS[hazard]
        m.pop.refresh_from_dwellings()
        m.health.profiles.refresh(m.pop)
        july, january = _rates(m, 6, adults), _rates(m, 0, adults)
        ratio = july / before
        if hazard == "damp":
            assert ratio[:, k["respiratory"]] == pytest.approx(1.4, rel=1e-5)
            others = [k[c] for c in CAUSES if c != "respiratory"]
            assert ratio[:, others] == pytest.approx(1.0, rel=1e-5)
        elif hazard == "falls":
            assert ratio[:, k["falls"]] == pytest.approx(1.35, rel=1e-5)
        else:  # cold: nothing in July; in winter the annual excess over winter's share
            assert ratio == pytest.approx(1.0, rel=1e-5)
            m.pop.dwellings.hazards[:] = 0
            m.pop.refresh_from_dwellings()
            m.health.profiles.refresh(m.pop)
            warm = _rates(m, 0, adults)
            resp = tree["parameters"]["cold_home_respiratory_ratio"]["value"]
            w = tree["parameters"]["respiratory_winter_ratio"]["value"]
            winter_month = 1 + (resp - 1) * (2 + w) / w
            assert (january / warm)[:, k["respiratory"]] == pytest.approx(winter_month, rel=1e-5)
            # every cause together keeps Fyfe's all-cause ratio over the year (1.12)
            year = [(_rates(m, mo, adults).sum(), mo) for mo in range(12)]
            m.pop.dwellings.hazards[:] = HAZARD_BITS["excess_cold"]
            m.pop.refresh_from_dwellings()
            m.health.profiles.refresh(m.pop)
            cold_year = sum(_rates(m, mo, adults).sum() for mo in range(12))
            assert cold_year / sum(v for v, _ in year) == pytest.approx(1.12, abs=0.002)
        m.pop.dwellings.hazards[:] = 0
        m.pop.refresh_from_dwellings()
        m.health.profiles.refresh(m.pop)


def test_respiratory_admissions_peak_in_winter_while_all_admissions_barely_move():
    m = _model(tenants=20_000, seed=3)
    adults = np.flatnonzero(m.pop.alive & (m.pop.age_years >= 16))
    k = CAUSES.index("respiratory")
    month = np.array([_rates(m, mo, adults).sum(axis=0) for mo in range(12)])  # (12, K)
    winter = np.isin(np.arange(12), [11, 0, 1, 2])
    resp = month[winter, k].mean() / month[~winter, k].mean()
    assert resp == pytest.approx(1.5, abs=0.03)  # respiratory_winter_ratio, a few cold homes added
    total = month.sum(axis=1)
    national = default_model_tree()["parameters"]["admission_winter_index"]["value"]  # 0.02 since model 10
    assert total[winter].mean() / total[~winter].mean() == pytest.approx(1 + national, abs=0.005)


def test_every_admission_has_a_cause_and_the_shares_are_reproduced():
    """20,000 England adults for a year: about 2,200 emergency admissions; the respiratory
    share lies within 3 binomial standard errors of its expected share."""
    m = _model(tenants=20_000, steps=12, seed=4)
    m.run()
    use = dict(m.ledger.totals)
    total = use["emergency_admissions"]
    assert sum(use[f"emergency_{c}_admissions"] for c in CAUSES) == total
    assert total > 1500
    p = 0.133
    resp = use["emergency_respiratory_admissions"] / total
    assert abs(resp - p) < 3 * math.sqrt(p * (1 - p) / total) + 0.01  # + readmissions' own mix


def test_an_effect_on_the_type_acts_on_every_cause_and_one_on_a_cause_on_that_cause_only():
    m = _model(tenants=3000, seed=5)
    idx = np.arange(m.pop.n)
    stack = m.health.admission_stack
    before = m.rates_for(stack, idx).astype(float)
    names = [r.name for r in stack.rates]
    resp = names.index("hospital.admissions.emergency.causes.respiratory")
    half = np.full(m.pop.n, 0.5, dtype=np.float32)
    m.effects = {"hospital.admissions.emergency.causes.respiratory": half}
    after = m.rates_for(stack, idx).astype(float)
    live = before[:, resp] > 0
    assert after[live, resp] == pytest.approx(0.5 * before[live, resp], rel=1e-6)
    others = [i for i in range(len(names)) if i != resp]
    assert after[:, others] == pytest.approx(before[:, others])
    m.effects = {"hospital.admissions.emergency": half,
                 "hospital.admissions.emergency.causes.respiratory": half}
    after = m.rates_for(stack, idx).astype(float)
    emergency = [i for i, n in enumerate(names) if n.startswith("hospital.admissions.emergency.")]
    assert after[live, resp] == pytest.approx(0.25 * before[live, resp], rel=1e-6)
    rest = [i for i in emergency if i != resp]
    assert after[:, rest] == pytest.approx(0.5 * before[:, rest], rel=1e-6)


def test_an_experiment_can_target_a_cause():
    from hhsim.experiment.plan import compile_plan, validate

    data = {"experiment": {"seed": 1, "months": 1, "replications": 1},
            "population": {"tenants": 500, "tenure": {"social_rented": 1.0}},
            "arms": [{"name": "baseline"}, {"name": "fewer", "interventions": [{
                "type": "rate_ratio", "name": "fewer", "start_month": 0, "end_month": 1,
                "effects": {"r": {"target": "hospital.admissions.emergency.causes.falls",
                                  "rate_ratio": 0.7}}}]}]}
    assert compile_plan(validate(data)).experiment.arms[1].name == "fewer"
    effect = data["arms"][1]["interventions"][0]["effects"]["r"]
    effect["target"] = "hospital.admissions.emergency.causes.nope"
    with pytest.raises(HhsimError, match=r"causes\.nope"):
        validate(data)
