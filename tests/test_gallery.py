"""The gallery of published models (docs/model-files.md, section 17): each model file,
written by hand, reproduces its source's published results in cohort mode to the digits
published, and a short microsimulation lies within 3 per-person standard errors of them.

Each model's published figures and their source are given where they are tested.
"""

import numpy as np
import pytest

from hhsim.analysis.cost_effectiveness import frontier
from hhsim.batch.design import runs
from hhsim.experiment.plan import compile_plan, load_experiment
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model
from hhsim.model.record import run_record
from hhsim.model.simulation import HousingHealthModel

from conftest import ROOT

EXPERIMENTS = ROOT / "experiments"


def cohort(name: str, initial: dict[str, float], trace: bool = False, **covariates) -> dict[str, dict]:
    """Cohort-mode outcomes per person of each arm of ``experiments/<name>.toml`` (and its
    trace under "trace": shares by state, then dead, at each boundary)."""
    exp = load_experiment(EXPERIMENTS / f"{name}.toml")
    e = exp.experiment
    out = {}
    for arm in exp.arms:
        tree, world = exp.trees(arm)
        result = cohort_run(calibrated_model(tree, world), e.months // 12, initial,
                            discount_costs=e.discount.costs, discount_effects=e.discount.effects,
                            reward_timing=e.timing, price_year=e.price_year, **covariates)
        out[arm.name] = {**result.outcomes, "trace": result.trace} if trace else result.outcomes
    return out


def icer(results: dict, new: str, old: str, effect: str = "qalys") -> float:
    return ((results[new]["cost_nhs"] - results[old]["cost_nhs"])
            / (results[new][effect] - results[old][effect]))


def microsimulation_within_three_errors(name: str, published: dict[str, tuple[float, float]],
                                        tenants: int, effect: str = "qalys") -> None:
    """One replication of ``tenants`` per arm: per-person cost and ``effect`` within 3
    standard errors of the published (cost, effect) of each arm."""
    for spec in runs(compile_plan(EXPERIMENTS / f"{name}.toml", tenants=tenants, replications=1)):
        m = HousingHealthModel(spec.config)
        m.run()
        rec = run_record(m, spec.price_year)
        cost, value = published[spec.arm]
        assert abs(rec["per_person_cost"] - cost) < 3 * rec["per_person_cost_se"], spec.arm
        assert abs(rec[f"per_person_{effect}"] - value) < 3 * rec[f"per_person_{effect}_se"], spec.arm


# Krijkamp EM et al. Microsimulation modeling for health decision sciences using R: a
# tutorial. Med Decis Making 2018;38(3):400-422, Appendix C (Markov cohort model), the
# table printed at its end: costs (US$, rounded to 1) and QALYs (rounded to 0.001).
KRIJKAMP = {"no-treatment": (75976, 15.839), "treatment": (141623, 16.400)}
KRIJKAMP_INCREMENTAL = (65647, 0.562, 116901)  # costs, QALYs gained, ICER (rounded to 1)


def test_krijkamp_2018_sick_sicker_cohort_reproduces_appendix_c():
    r = cohort("krijkamp-2018-sick-sicker", {"H": 1.0})
    for arm, (cost, qalys) in KRIJKAMP.items():
        assert round(r[arm]["cost_nhs"]) == cost
        assert round(r[arm]["qalys"], 3) == qalys
    d_cost = r["treatment"]["cost_nhs"] - r["no-treatment"]["cost_nhs"]
    d_qalys = r["treatment"]["qalys"] - r["no-treatment"]["qalys"]
    ratio = icer(r, "treatment", "no-treatment")
    assert (round(d_cost), round(d_qalys, 3), round(ratio)) == KRIJKAMP_INCREMENTAL


def test_krijkamp_2018_sick_sicker_microsimulation():
    microsimulation_within_three_errors("krijkamp-2018-sick-sicker", KRIJKAMP, tenants=20_000)


# Briggs, Claxton & Sculpher (2006), Exercise 3.5: the book's Excel model as encoded in
# heemod's test "Exactly match THR model" (tests/testthat/test_dmhee.R): per person cost (£)
# and QALYs, the ICER, and the cohort's shares in SuccessP, RevisionTHR, SuccessR and dead
# after cycles 1 to 8 (rounded to 8 decimals).
BRIGGS_THR = {"standard": (512.434658, 14.6531896), "np1": (610.311818, 14.69770986)}
BRIGGS_THR_ICER = 2198.486665
BRIGGS_THR_TRACE = {
    "standard": [[0.98000000, 0.0000000, 0.0000000, 0.0200000],
                 [0.97265720, 0.0007768, 0.0000000, 0.02656600],
                 [0.96516548, 0.00097491, 0.00075606, 0.03310354],
                 [0.95757109, 0.00115802, 0.00166964, 0.03960125],
                 [0.93783561, 0.00132115, 0.00268314, 0.05816010],
                 [0.91838963, 0.00145307, 0.00379326, 0.07636404],
                 [0.89924305, 0.00157339, 0.00496429, 0.09421927],
                 [0.88040225, 0.00168398, 0.00618146, 0.11173231]],
    "np1": [[0.98000000, 0.00000000, 0.00000000, 0.02000000],
            [0.97323145, 0.00020255, 0.00000000, 0.02656600],
            [0.96645641, 0.00025438, 0.00019715, 0.03309206],
            [0.95968665, 0.00030239, 0.00043553, 0.03957543],
            [0.94083683, 0.00034529, 0.00070021, 0.05811767],
            [0.92232657, 0.00038012, 0.00099040, 0.07630291],
            [0.90415327, 0.00041201, 0.00129686, 0.09413786],
            [0.88631355, 0.00044144, 0.00161577, 0.11162924]],
}


def test_briggs_2006_thr_cohort_reproduces_the_excel_model():
    # Women aged 60; the Excel model reads the life table at 60 + t in cycle t = 1, 2, ...,
    # the age at the end of each cycle: the model file's cycle_age = "end".
    r = cohort("briggs-2006-thr", {"PrimaryTHR": 1.0}, age=60.0, female=True, trace=True)
    for arm, (cost, qalys) in BRIGGS_THR.items():
        # Equal up to float32 rounding of the rate tables (about 1e-8 relative here).
        assert r[arm]["cost_nhs"] == pytest.approx(cost, rel=1e-7)
        assert r[arm]["qalys"] == pytest.approx(qalys, rel=1e-7)
        assert r[arm]["trace"][1:9, 1:] == pytest.approx(np.array(BRIGGS_THR_TRACE[arm]), abs=2e-8)
    # The QALY difference is 0.0445 of 14.7: its relative error is 300 times the totals'.
    assert icer(r, "np1", "standard") == pytest.approx(BRIGGS_THR_ICER, rel=1e-5)


def test_briggs_2006_thr_microsimulation():
    # The experiment's population is a cohort of identical women aged 60.
    microsimulation_within_three_errors("briggs-2006-thr", BRIGGS_THR, tenants=20_000)


# Alarid-Escudero F et al. An introductory tutorial on cohort state-transition models in R
# using a cost-effectiveness analysis example. Med Decis Making 2023;43(1):3-20 (code and
# manuscript in DARTH-git/cohort-modeling-tutorial-intro): Table 3, costs (US$, rounded to 1)
# and QALYs (rounded to 0.001); Table 4, the statuses and ICERs (rounded to $1); the trace of
# SoC and of B (the manuscript's trace table, SoC = A, to 0.001) after cycles 1 to 5.
ALARID_ESCUDERO = {"soc": (151580, 20.711), "A": (284805, 21.499), "B": (259100, 22.184),
                   "AB": (378875, 23.137)}
ALARID_ESCUDERO_FRONTIER = {"soc": ("reference", None), "A": ("dominated", None),
                            "B": ("frontier", 72988), "AB": ("frontier", 125764)}
ALARID_ESCUDERO_TRACE = [[0.859, 0.139, 0.000, 0.002], [0.792, 0.189, 0.014, 0.005],
                         [0.755, 0.206, 0.032, 0.008], [0.729, 0.208, 0.052, 0.011],
                         [0.707, 0.206, 0.072, 0.015]]


def test_alarid_escudero_2023_sick_sicker_cohort_reproduces_tables_3_and_4():
    # Given weights per boundary: darthtools' Simpson1/3 (1/3, 2/3, 4/3, 2/3, ..., 1/3).
    r = cohort("alarid-escudero-2023-sick-sicker", {"H": 1.0}, trace=True, age=25.0)
    for arm, (cost, qalys) in ALARID_ESCUDERO.items():
        assert (round(r[arm]["cost_nhs"]), round(r[arm]["qalys"], 3)) == (cost, qalys), arm
    assert r["soc"]["trace"][1:6].round(3).tolist() == ALARID_ESCUDERO_TRACE
    arms = list(ALARID_ESCUDERO)
    f = frontier(arms, [r[a]["cost_nhs"] for a in arms], [r[a]["qalys"] for a in arms]).set_index("arm")
    for arm, (status, ratio) in ALARID_ESCUDERO_FRONTIER.items():
        assert f.loc[arm, "status"] == status, arm
        assert (None if np.isnan(f.loc[arm, "icer"]) else round(f.loc[arm, "icer"])) == ratio, arm


def test_alarid_escudero_2023_sick_sicker_microsimulation():
    microsimulation_within_three_errors("alarid-escudero-2023-sick-sicker", ALARID_ESCUDERO,
                                        tenants=20_000)
