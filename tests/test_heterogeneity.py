"""Attributes drawn once per person (a frailty, an effect modifier), the age a cycle reads
(start or end), background mortality in chosen states, and cohorts of identical people
(issue 19, items 5 and 7).

Cohort mode integrates over attributes (exactly over a discrete one, by Gaussian quadrature
over a continuous one): checked against closed forms, and the microsimulation against it
within 3 per-person standard errors (fixed seeds). A model without attributes gives the same
runs bit for bit (tests/test_pinned_results.py), and an attribute whose term is switched off
moves nothing: its values come from a stream of its own.
"""

from __future__ import annotations

import copy
import math
import tomllib

import numpy as np
import pytest
from scipy import integrate, stats

import hhsim.health.cohort as cohort_mode
from hhsim.core.errors import HhsimError
from hhsim.core.parameters import apply_overrides
from hhsim.core.resources import world_tree
from hhsim.experiment.plan import validate
from hhsim.experiment.probes import at_point
from hhsim.experiment.psa_section import setup
from hhsim.health.attributes import integration_points
from hhsim.health.chains import DEATH
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model, compile_model
from hhsim.model.simulation import HousingHealthModel
from hhsim.studies.psa.draws import psa_draws
from hhsim.world.cohort import cohort_population, parse_cohort

from conftest import MODELS, ROOT, config, model_file

Z = 3.0
SIXTY = {"age": 60, "sex": "male"}
LEAF = {"status": "A", "source": "test value"}


def hetero() -> dict:
    return model_file("heterogeneity_yearly.toml")


def one_exit(attribute: dict, power: float = 1.0) -> dict:
    """Everyone alive dies at 0.25 per year times attribute ``x`` to ``power``: the share
    alive after t yearly cycles is E[exp(-0.25 x^power t)]."""
    return {
        "model": {"cycle": "year"},
        "attributes": {"x": attribute},
        "chains": {"health": {
            "states": ["alive"],
            "initial": {"prevalence": {"value": [1.0], "unit": "share", **LEAF}},
            "transitions": {"die": {"from": "alive", "to": "dead",
                                    "rate": {"value": 0.25, "unit": "per person-year", **LEAF},
                                    "rr": {"x": {"value": power, "unit": "power", **LEAF}}}}}},
    }


def p(value, unit: str = "multiplier") -> dict:
    return {"value": value, "unit": unit, **LEAF}


def alive(tree: dict, years: int) -> np.ndarray:
    return cohort_run(calibrated_model(tree, world_tree()), years, {"alive": 1.0}).trace[:, 0]


def per_person(m: HousingHealthModel) -> dict[str, np.ndarray]:
    return {"qalys": m.ledger.reward_disc["qalys"].astype(float),
            "life_years": m.ledger.reward_disc["life_years"].astype(float),
            "cost_care": m.ledger.count_disc["care"].astype(float) * m.activities["care"].unit_cost}


# -- cohort mode: the expectation over the attributes -----------------------------------------
T = np.arange(11.0)
GAMMA = stats.gamma(4.0, scale=0.25)  # mean 1, sd 0.5
LOGNORMAL = stats.lognorm(s=0.6, scale=0.9)


@pytest.mark.parametrize("attribute, power, expected", [
    # Laplace transform of the gamma: (1 + 0.25 t scale)^-shape
    ({"dist": "gamma", "mean": p(1.0), "sd": p(0.5)}, 1.0, (1 + 0.25 * T * 0.25) ** -4.0),
    ({"dist": "gamma", "shape": p(4.0, "shape"), "scale": p(0.25)}, 1.0, (1 + 0.25 * T * 0.25) ** -4.0),
    ({"dist": "uniform", "low": p(0.5), "high": p(1.5)}, 1.0,
     np.r_[1.0, (np.exp(-0.125 * T[1:]) - np.exp(-0.375 * T[1:])) / (0.25 * T[1:])]),
    ({"dist": "discrete", "values": p([0.5, 1.0, 3.0]), "shares": p([0.2, 0.5, 0.3], "share")}, 1.0,
     0.2 * np.exp(-0.125 * T) + 0.5 * np.exp(-0.25 * T) + 0.3 * np.exp(-0.75 * T)),
    ({"dist": "lognormal", "median": p(0.9), "sdlog": p(0.6, "sdlog")}, 2.0,
     [integrate.quad(lambda x, t=t: np.exp(-0.25 * x**2 * t) * LOGNORMAL.pdf(x), 0, np.inf)[0] for t in T]),
])
def test_cohort_mode_gives_the_expectation_over_an_attribute(attribute, power, expected):
    got = alive(one_exit(attribute, power), 10)
    np.testing.assert_allclose(got, expected, rtol=2e-6)  # float32 rate tables and values


def test_quadrature_weights_sum_to_1_and_match_the_moments():
    model = compile_model(one_exit({"dist": "gamma", "mean": p(1.0), "sd": p(0.5)}))
    points = integration_points(model.attributes, 20)
    weights = np.array([w for w, _ in points])
    x = np.array([v["x"] for _, v in points])
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    for k in range(1, 8):  # exact for polynomials of degree < 40
        assert weights @ x**k == pytest.approx(GAMMA.moment(k), rel=1e-10)
    two = compile_model(hetero())  # a gamma and a discrete attribute: every combination
    assert len(integration_points(two.attributes, 20)) == 40


def test_a_quadrature_that_does_not_settle_is_a_one_line_warning(monkeypatch, capsys):
    tree = one_exit({"dist": "gamma", "mean": p(1.0), "sd": p(0.5)})
    health = calibrated_model(tree, world_tree())
    cohort_run(health, 10, {"alive": 1.0})
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(cohort_mode, "SETTLED", 0.0)
    monkeypatch.setattr(cohort_mode, "MAX_NODES", 32)
    cohort_run(health, 10, {"alive": 1.0})
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("hhsim: cohort mode: the quadrature over the attributes had not settled at "
                          "32 nodes (outcomes moved by up to ")
    cohort_run(health, 10, {"alive": 1.0}, nodes=32)
    assert "was not checked (32 nodes cannot be doubled)" in capsys.readouterr().err


def test_cohort_mode_with_attributes_fixed_is_one_cohort():
    tree = hetero()
    health = calibrated_model(tree, world_tree())
    fixed = cohort_run(health, 5, {"well": 1.0}, age=60, attributes={"frailty": 0.0, "coping": 1.0})
    assert fixed.trace[-1, 1] == 0.0  # frailty 0: nobody falls ill
    with pytest.raises(HhsimError, match=r"^cohort mode: attributes \['frailty'\] are not the model's "
                       r"\['coping', 'frailty'\] \(fix: give one value of each attribute, or none\)$"):
        cohort_run(health, 5, {"well": 1.0}, attributes={"frailty": 1.0})


# -- the microsimulation ----------------------------------------------------------------------
def test_microsimulation_agrees_with_cohort_mode_on_a_heterogeneous_cohort():
    """The model uses every feature here: two attributes (gamma, discrete), on rates and on
    utility, the age at the end of each cycle, mortality when well only, identical people."""
    n, years = 20_000, 20
    m = HousingHealthModel(config(hetero(), tenants=n, steps=years, seed=5, cohort=SIXTY))
    m.run()
    expected = cohort_run(m.health, years, {"well": 1.0}, age=60).outcomes
    at_means = cohort_run(m.health, years, {"well": 1.0}, age=60,
                          attributes={"frailty": 1.0, "coping": 0.95}).outcomes
    for name, values in per_person(m).items():
        se = values.std() / math.sqrt(n)
        assert abs(values.mean() - expected[name]) < Z * se, (name, values.mean(), expected[name], se)
    # Teeth: the attributes at their means are not the expectation (Jensen), by far.
    cost = per_person(m)["cost_care"]
    assert abs(at_means["cost_care"] - expected["cost_care"]) > 10 * cost.std() / math.sqrt(n)


def test_attributes_are_drawn_once_from_their_own_stream():
    n = 20_000
    m = HousingHealthModel(config(hetero(), tenants=n, steps=3, seed=5, cohort=SIXTY))
    frailty = m.pop.attributes["frailty"].copy()
    assert frailty.dtype == np.float32
    assert abs(frailty.mean() - 1.0) < 4 * 0.5 / math.sqrt(n)
    kurtosis = float(GAMMA.stats(moments="k"))  # excess: the sample sd's se is sd sqrt((k + 2) / 4n)
    assert abs(frailty.std() - 0.5) < 4 * 0.5 * math.sqrt((kurtosis + 2) / (4 * n))
    share = (m.pop.attributes["coping"] == np.float32(0.8)).mean()
    assert abs(share - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)
    m.run()
    np.testing.assert_array_equal(m.pop.attributes["frailty"], frailty)  # drawn once
    again = HousingHealthModel(config(hetero(), tenants=n, steps=3, seed=5, cohort=SIXTY, arm="other"))
    np.testing.assert_array_equal(again.pop.attributes["frailty"], frailty)  # the same in every arm
    other = HousingHealthModel(config(hetero(), tenants=n, steps=3, seed=5, cohort=SIXTY, replication=1))
    assert not np.array_equal(other.pop.attributes["frailty"], frailty)


def test_an_attribute_whose_term_is_off_moves_nothing():
    plain = model_file("two_state_monthly.toml")
    with_attribute = copy.deepcopy(plain)
    with_attribute["attributes"] = {"frailty": {"dist": "gamma", "mean": p(1.0), "sd": p(0.5)}}
    with_attribute["chains"]["health"]["transitions"]["fall_ill"]["rr"] = {"frailty": p(0.0, "power")}
    runs = []
    for tree in (plain, with_attribute):
        m = HousingHealthModel(config(tree, tenants=3000, steps=24, seed=2))
        m.run()
        runs.append(m)
    np.testing.assert_array_equal(runs[0].pop.states["health"], runs[1].pop.states["health"])
    np.testing.assert_array_equal(runs[0].ledger.reward_disc["qalys"], runs[1].ledger.reward_disc["qalys"])
    assert "frailty" in runs[1].pop.attributes


def test_a_reference_rate_is_de_averaged_over_the_attribute_too():
    tree = hetero()
    tree["chains"]["health"]["transitions"]["fall_ill"]["reference"] = True
    tree["chains"]["health"]["transitions"]["fall_ill"]["rr"]["frailty"]["value"] = 2.0
    rate = calibrated_model(tree, world_tree()).chains["health"].exits[0][0].rate
    # E[frailty^2] = 1 + 0.5^2 on the reference population: the base is divided by about 1.25.
    assert rate.base[0, 60] == pytest.approx(0.15 / 1.25, rel=0.03)


# -- PSA draws reach the distribution ---------------------------------------------------------
def test_psa_draws_of_the_distribution_s_parameters_reach_the_attribute():
    exp = validate({
        "experiment": {"name": "frailty psa", "model": str(MODELS / "heterogeneity_yearly.toml"),
                       "months": 24, "replications": 1, "seed": 3},
        "population": {"tenants": 50},
        "psa": {"draws": 3, "parameters": {"parameters.frailty_sd": [0.2, 0.9],
                                           "attributes.frailty.mean": {"dist": "gamma", "mean": 1.0,
                                                                       "sd": 0.1}}}})
    draws = psa_draws(setup(exp), 3, exp.experiment.seed)
    for _, row in draws.iterrows():
        tree = at_point(exp, row.to_dict()).trees(exp.arms[0])[0]
        frailty = compile_model(tree).attributes["frailty"].frozen
        assert frailty.std() == pytest.approx(row["parameters.frailty_sd"], rel=1e-12)
        assert frailty.mean() == pytest.approx(row["attributes.frailty.mean"], rel=1e-12)
    n = 20_000
    m = HousingHealthModel(config(tree, tenants=n, steps=1, seed=3, cohort=SIXTY))
    drawn = m.pop.attributes["frailty"]
    assert abs(drawn.std() - frailty.std()) < 0.05 * frailty.std()  # the tenants' values follow
    assert abs(drawn.mean() - frailty.mean()) < 4 * frailty.std() / math.sqrt(n)


# -- errors -----------------------------------------------------------------------------------
def edited(edit) -> dict:
    tree = hetero()
    edit(tree)
    return tree


def _set(path: str, value):
    def edit(tree: dict) -> None:
        *parents, last = path.split(".")
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return edit


BAD = [
    (_set("attributes.frailty.dist", "weibull"),
     r"^attributes\.frailty\.dist: unknown distribution 'weibull' \(fix: use one of: discrete, gamma, "
     r"lognormal, uniform\)$"),
    (lambda t: t["attributes"]["frailty"].pop("sd"),
     r"^attributes\.frailty: a gamma attribute needs \{mean, sd\} or \{shape, scale\}, got \['mean'\]"),
    (_set("attributes.frailty.sdd", p(0.5)),
     r"^attributes\.frailty: unknown key 'sdd' \(fix: did you mean 'sd'\?\)$"),
    (_set("attributes.frailty.sd", p(0.0)), r"^attributes\.frailty\.sd: must be above 0, got 0"),
    (_set("attributes.frailty.sd", 0.5), r"^attributes\.frailty\.sd: is not a parameter"),
    (_set("attributes.frailty", {"dist": "uniform", "low": p(-0.5, "points"), "high": p(1.5)}),
     r"^attributes\.frailty\.low: is -0\.5, below 0 \(fix: give low of 0 or more"),
    (_set("attributes.coping.shares", p([0.5, 0.6], "share")),
     r"^attributes\.coping\.shares: shares sum to 1\.1, not 1"),
    (_set("attributes.coping.values", p([-0.5, 1.0], "points")),
     r"^attributes\.coping\.values: has the value -0\.5, below 0"),
    (_set("attributes.coping.shares", p([1.0], "share")),
     r"^attributes\.coping\.shares: needs 2 shares of 0 or more, one per value"),
    (_set("attributes.age", {"dist": "gamma", "mean": p(1.0), "sd": p(0.5)}),
     r"^attributes\.age: 'age' is also a covariate or a chain"),
    (_set("attributes.health", {"dist": "gamma", "mean": p(1.0), "sd": p(0.5)}),
     r"^attributes\.health: 'health' is also a covariate or a chain"),
    (_set("attributes", [1, 2]), r"^attributes: must be a table"),
    (_set("chains.health.transitions.recover.rr.fraily", p(1.0, "power")),
     r"^chains\.health\.transitions\.recover\.rr: unknown covariate 'fraily' "
     r"\(fix: did you mean 'frailty'\?\)$"),
    (_set("chains.health.transitions.recover.rr.frailty", p(1.0, "rate ratio")),
     r"^chains\.health\.transitions\.recover\.rr\.frailty: has unit 'rate ratio' "
     r"\(fix: use unit = \"power\""),
    (_set("chains.health.initial.odds_ratio.frailty", p(1.0, "power")),
     r"^chains\.health\.initial\.odds_ratio\.frailty: initial shares cannot depend on an attribute"),
    (_set("model.cycle_age", "middle"), r"^model\.cycle_age: unknown value 'middle' \(fix: use \"start\""),
    (_set("mortality.states", ["well", "sik"]),
     r"^mortality\.states: unknown state 'sik' \(fix: use one of: ill, well\)$"),
    (_set("mortality.states", []), r"^mortality\.states: must be a list of distinct states of the chain"),
    (_set("mortality.states", ["well", "well"]), r"^mortality\.states: must be a list of distinct states"),
]


@pytest.mark.parametrize("edit, message", BAD)
def test_mistakes_are_one_line_errors(edit, message):
    with pytest.raises(HhsimError, match=message):
        compile_model(edited(edit))


def test_an_attribute_cannot_shift_wellbeing_points():
    tree = model_file("two_state_monthly.toml")
    tree["attributes"] = {"frailty": {"dist": "gamma", "mean": p(1.0), "sd": p(0.5)}}
    tree["wellbeing"] = {"minimum": 14, "maximum": 70, "mean": p(50.0, "points"), "sd": p(8.0, "points"),
                         "adjustment": p(0.5, "share of the gap closed per month"),
                         "effect": {"frailty": p(1.0, "points")}}
    with pytest.raises(HhsimError, match=r"^wellbeing\.effect: unknown covariate 'frailty'"):
        compile_model(tree)


def test_an_override_must_keep_the_distribution_valid():
    with pytest.raises(HhsimError, match=r"^attributes\.frailty\.mean: must be above 0"):
        compile_model(apply_overrides(hetero(), {"attributes.frailty.mean": 0.0}))


# -- the age a cycle reads ----------------------------------------------------------------------
def cliff(cycle_age: str) -> dict:
    """Mortality 0 at age 60 and certain from 61: who dies in the first year depends on the
    age the cycle reads."""
    tree = hetero()
    del tree["attributes"], tree["utility"]["multiplier"]["coping"]
    tree["chains"]["health"]["transitions"] = {}
    tree["model"]["cycle_age"] = cycle_age
    tree["mortality"] = {"chain": "health", "life_table": {
        "value": [0.0, 1.0], "first_age": 60, "unit": "probability per year", **LEAF}}
    return tree


@pytest.mark.parametrize("cycle_age, dead_after_one_year", [("start", 0.0), ("end", 1.0)])
def test_the_age_a_cycle_reads_is_at_its_start_or_its_end(cycle_age, dead_after_one_year):
    m = HousingHealthModel(config(cliff(cycle_age), tenants=500, steps=2, seed=1, cohort=SIXTY))
    m.step()
    assert (~m.pop.alive).mean() == dead_after_one_year
    assert np.all(m.pop.age_years == 61)  # ages advance once a step either way
    m.step()
    assert not m.pop.alive.any()
    trace = cohort_run(m.health, 2, {"well": 1.0}, age=60).trace
    assert trace[1, -1] == pytest.approx(dead_after_one_year, abs=1e-9)
    assert trace[2, -1] == pytest.approx(1.0, abs=1e-9)


def test_the_default_is_the_age_at_the_start():
    tree = cliff("start")
    del tree["model"]["cycle_age"]
    assert compile_model(tree).cycle_age == "start"


# -- background mortality in chosen states ----------------------------------------------------------
def test_background_mortality_applies_in_the_chosen_states_only():
    chain = compile_model(hetero()).chains["health"]
    assert [e.rate.name for e in chain.exits[0]] == ["chains.health.transitions.fall_ill", "mortality"]
    assert [e.to for e in chain.exits[1]] == [0, DEATH]  # recover, die_ill: no background exit
    tree = hetero()
    del tree["chains"]["health"]["transitions"]["die_ill"], tree["chains"]["health"]["transitions"]["recover"]
    health = calibrated_model(tree, world_tree())
    trace = cohort_run(health, 5, {"ill": 1.0}, age=60).trace
    assert trace[-1].tolist() == pytest.approx([0, 1, 0], abs=1e-12)
    del tree["mortality"]["states"]  # default: every state
    health = calibrated_model(tree, world_tree())
    assert cohort_run(health, 5, {"ill": 1.0}, age=60).trace[-1, -1] > 0.05


# -- cohorts of identical people ------------------------------------------------------------------
def test_a_cohort_is_identical_people():
    pop = cohort_population(1000, parse_cohort({"age": 60.5, "sex": "female", "tenure": "private_rented",
                                                "imd_decile": 2}), world_tree())
    assert np.all(pop.age_months == 726) and np.all(pop.age_years == 60) and pop.female.all()
    assert np.all(pop.tenure == 1) and np.all(pop.deprivation == 2) and not pop.hazards.any()
    assert np.unique(pop.dwelling).size == 1000 and pop.dwellings.estate.max() == 4  # estates of 200
    default = parse_cohort(SIXTY)
    assert (default.tenure, default.decile, default.female) == (2, 5, False)  # as cohort mode


@pytest.mark.parametrize("node, message", [
    ({"sex": "male"}, r"^population\.cohort: has no age"),
    ({"age": 60}, r"^population\.cohort: has no sex"),
    ({"age": 60, "sex": "man"},
     r"^population\.cohort\.sex: unknown sex 'man' \(fix: use one of: female, male\)$"),
    ({"age": 12, "sex": "male"}, r"^population\.cohort\.age: 12 is outside 16 to 120"),
    ({"age": "60", "sex": "male"}, r"^population\.cohort\.age: must be a number"),
    ({"age": 60, "sex": "male", "tenure": "social"}, r"^population\.cohort\.tenure: unknown tenure 'social'"),
    ({"age": 60, "sex": "male", "imd_decile": 11},
     r"^population\.cohort\.imd_decile: 11 is not a whole number"),
    ({"age": 60, "sex": "male", "decile": 3},
     r"^population\.cohort: unknown key 'decile' \(fix: did you mean"),
    ([60], r"^population\.cohort: must be a table"),
])
def test_a_bad_cohort_is_a_one_line_error(node, message):
    with pytest.raises(HhsimError, match=message):
        parse_cohort(node)


def test_a_cohort_cannot_come_with_a_stock_file():
    stock = str(ROOT / "experiments" / "example-stock.csv")
    with pytest.raises(HhsimError, match=r"^population\.cohort: cannot be used with a stock file"):
        HousingHealthModel(config(hetero(), cohort=SIXTY, stock=stock))


def test_cohort_mode_values_rewards_at_the_age_of_each_boundary():
    """A chain that never changes, utility falling 0.01 a year of age: 3 cycles valued at
    the start are worth 3 x (utility at 60, 61, 62) / 3."""
    tree = cliff("start")
    del tree["mortality"]
    tree["utility"] = {"baseline": p([1.2, 0.0, -0.01, 0.0], "coefficients")}
    out = cohort_run(calibrated_model(tree, world_tree()), 3, {"well": 1.0}, age=60,
                     discount_effects=0.0, reward_timing="start").outcomes
    assert out["qalys"] == pytest.approx(0.6 + 0.59 + 0.58, abs=1e-6)


# -- the documented example --------------------------------------------------------------------------
def test_the_documented_example_is_the_tested_model():
    text = (ROOT / "docs" / "model-files.md").read_text(encoding="utf-8")
    start = text.index("`heterogeneity_yearly.toml`:")
    block = text[start:].split("```toml\n", 1)[1].split("```", 1)[0]
    assert tomllib.loads(block) == hetero()
