"""The gallery of published models (docs/model-files.md, section 17): each model file,
written by hand, reproduces its source's published results in cohort mode to the digits
published, and a short microsimulation lies within 3 per-person standard errors of them.

Each model's published figures and their source are given where they are tested.
"""

from hhsim.batch.design import runs
from hhsim.experiment.plan import compile_plan, load_experiment
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model
from hhsim.model.record import run_record
from hhsim.model.simulation import HousingHealthModel

from conftest import ROOT

EXPERIMENTS = ROOT / "experiments"


def cohort(name: str, initial: dict[str, float], **covariates) -> dict[str, dict[str, float]]:
    """Cohort-mode outcomes per person of each arm of ``experiments/<name>.toml``."""
    exp = load_experiment(EXPERIMENTS / f"{name}.toml")
    e = exp.experiment
    out = {}
    for arm in exp.arms:
        tree, world = exp.trees(arm)
        out[arm.name] = cohort_run(calibrated_model(tree, world), e.months // 12, initial,
                                   discount_costs=e.discount.costs, discount_effects=e.discount.effects,
                                   reward_timing=e.reward_timing, price_year=e.price_year,
                                   **covariates).outcomes
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
