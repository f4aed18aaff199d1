"""Model files: mistakes are one-line errors at validation, never silent, never a crash later."""

import copy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.experiment.plan import compile_plan, validate
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model, compile_model
from hhsim.health.terms import TermContext, parse_terms
from hhsim.model.simulation import HousingHealthModel

from conftest import config, model_file


def broken(edit) -> dict:
    tree = copy.deepcopy(default_model_tree())
    edit(tree)
    return tree


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t["model"].update(cylce="year"), "did you mean 'cycle'"),
    (lambda t: t["outcomes"].update(good_heath={}), "did you mean 'good_health'"),
    (lambda t: t["outcomes"]["good_health"].update(state=["good"]), "did you mean 'states'"),
    (lambda t: t["chains"]["health"].update(states=["good", "fair", "dead"]), "reserved for death"),
    (lambda t: t["chains"]["health"]["initial"].update(
        odds_ratio={"wellbeing": {"value": 0.9, "unit": "odds ratio per point", "source": "x"}}),
     "cannot depend on wellbeing"),
    (lambda t: t["chains"]["health"]["initial"].update(
        odds_ratio={"health": {"fair": {"value": 2.0, "unit": "odds ratio", "source": "x"}}}),
     "its own chain"),
    (lambda t: t["chains"]["ltc"]["initial"].update(
        odds_ratio={"health": {"fair": {"value": 2.0, "unit": "odds ratio", "source": "x"}}}),
     "comes later"),
    (lambda t: t["wellbeing"]["mean"].update(value=[49.9, 50.0]), "single number"),
    (lambda t: t["hospital"]["admissions"]["emergency"]["los_cv"].update(value=[1.2]), "single number"),
    (lambda t: t["utility"]["multiplier"]["health"]["fair"].update(value=-0.5), "at least 0"),
    (lambda t: t["state_costs"]["long_term_care"]["cost"].update(unit="£ per contact"), "per person-year"),
    (lambda t: t["state_costs"].update(social_care=t["state_costs"].pop("long_term_care")),
     "state_costs.social_care: 'social_care' is also the name of a payer"),
    (lambda t: t["chains"]["ltc"].update(ages={"from": 16, "upto": 40}),
     "chains.ltc.ages: must be a table with 'from' and/or 'below'"),
    (lambda t: t["services"]["gp"].update(ages={"from": 16.5}),
     "services.gp.ages.from: must be a whole number"),
    (lambda t: t["services"]["child_gp"].update(ages={"from": 16, "below": 16}),
     "is empty: from 16 below 16"),
    (lambda t: t["model"].update(children="yes"), "model.children: must be true or false"),
    (lambda t: t["utility"]["child_baseline"].update(value=1.2),
     "utility.child_baseline: must be one utility"),
    (lambda t: t["mortality"]["rr"]["deprivation"].update(value=[[1.0] * 10] * 3),
     "[men, women] lists of ten"),
])
def test_model_file_mistakes_are_one_line_errors(edit, expected):
    with pytest.raises(HhsimError) as err:
        compile_model(broken(edit))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_deprivation_term_by_sex_gives_each_sex_its_own_decile_value():
    men, women = [1.5 - 0.05 * d for d in range(10)], [1.3 - 0.03 * d for d in range(10)]
    (term,) = parse_terms({"deprivation": {"value": [men, women], "unit": "rate ratio", "source": "x"}},
                          "mortality.rr", TermContext({}))
    pop = SimpleNamespace(female=np.array([False, False, True, True]),
                          deprivation=np.array([1, 10, 1, 10], dtype=np.int8))
    np.testing.assert_allclose(term.factor(pop), [men[0], men[9], women[0], women[9]], rtol=1e-6)
    np.testing.assert_allclose(term.factor(pop, np.array([3, 0])), [women[9], men[0]], rtol=1e-6)


def test_the_default_model_gives_men_a_steeper_mortality_gradient_by_decile_than_women():
    from hhsim.core.parameters import parameters_of
    by_sex = np.asarray(parameters_of(default_model_tree())["mortality.rr.deprivation"].value)
    assert by_sex.shape == (2, 10)
    men, women = np.log(by_sex[:, 0] / by_sex[:, -1])  # decile 1 over decile 10
    assert men > women > 0  # ONS: men's gap in life expectancy is 9.4 years, women's 7.7


def test_world_shares_broken_by_an_override_fail_validation():
    bad = {"parameters": {"world.tenure_share.social_rented": 0.5}}
    with pytest.raises(HhsimError, match=r"world\.tenure_share"):
        validate(bad)


def test_override_errors_name_the_table_they_came_from():
    with pytest.raises(HhsimError, match=r"^parameters\.services\.gp\.rat:"):
        validate({"parameters": {"services.gp.rat": 1.0},
                  "arms": [{"name": "baseline", "parameters": {"services.ae.unit_cost": 1.0}}]})
    with pytest.raises(HhsimError, match=r"^arms\.baseline\.parameters\."):
        validate({"arms": [{"name": "baseline", "parameters": {"services.gp.rat": 1.0}}]})


def test_an_arms_world_scenario_does_not_move_the_reference_population():
    no_damp = {"world.hazards.damp.social_rented": 0.0}
    exp = validate({"experiment": {"seed": 1, "months": 12, "replications": 1},
                    "population": {"tenants": 500},
                    "arms": [{"name": "baseline"}, {"name": "dry", "parameters": no_damp}]})
    from hhsim.batch.design import runs
    base, dry = (HousingHealthModel(s.config) for s in runs(compile_plan(exp)))
    assert dry.pop.has_hazard("damp").sum() == 0 < base.pop.has_hazard("damp").sum()
    # Same national calibration: the de-averaged GP base rates are identical.
    gp = [next(s for s in m.health.services if s.name == "gp").rate.base for m in (base, dry)]
    assert np.array_equal(gp[0], gp[1])


def test_models_without_wellbeing_report_no_mean_wellbeing():
    m = HousingHealthModel(config(model_file("three_state_yearly.toml"), tenants=200, steps=2))
    m.run()
    assert "mean_wellbeing" not in m.datacollector.get_model_vars_dataframe().columns


def test_a_yearly_model_needs_whole_years_without_a_stock_file_too():
    path = str(Path(__file__).resolve().parent / "models" / "three_state_yearly.toml")
    ok = {"experiment": {"seed": 1, "months": 24, "replications": 1, "model": path}}
    assert validate(ok).experiment.months == 24
    bad = copy.deepcopy(ok)
    bad["experiment"]["months"] = 18
    with pytest.raises(HhsimError, match=r"^experiment\.months: 18 is not whole years"):
        validate(bad)


def test_rr_on_is_refused_on_an_exit_given_as_a_rate():
    tree = model_file("three_state_yearly.toml")
    exit_ = tree["chains"]["health"]["transitions"]["fall_ill"]
    exit_["rate"] = exit_.pop("probability") | {"unit": "per person-year"}
    exit_["rr_on"] = "probability"
    with pytest.raises(HhsimError, match=r"fall_ill\.rr_on: only applies to exits given as probabilities"):
        compile_model(tree)


def test_cohort_mode_keeps_a_chain_without_exits_where_it_started():
    tree = model_file("three_state_yearly.toml")
    del tree["chains"]["health"]["transitions"]
    out = cohort_run(calibrated_model(tree, world_tree()), 3, {"healthy": 0.6, "sick": 0.4})
    assert np.allclose(out.trace, [[0.6, 0.4, 0.0]] * 4)


def test_a_rule_acts_only_at_its_ages_and_a_chain_holds_its_first_state_outside_them():
    """ages = { from, below }: a service's rate is 0 outside, a chain's transitions are 0
    outside and its initial distribution puts everyone outside in its first state."""
    model = compile_model(default_model_tree())
    gp = next(s for s in model.services if s.name == "gp").rate
    child_gp = next(s for s in model.services if s.name == "child_gp").rate
    assert (gp.base[:, :16] == 0).all() and (gp.base[:, 16:] > 0).all()
    assert (child_gp.base[:, 16:] == 0).all() and (child_gp.base[:, :16] > 0).all()
    ltc = model.chains["ltc"]
    assert all((e.rate.base[:, :16] == 0).all() for ex in ltc.exits for e in ex)
    young = ltc.initial.shares[:, ltc.initial.band_of_age[:16]]
    assert np.array_equal(young[..., 0], np.ones_like(young[..., 0]))
    # death is not the chain's own: the mortality chain's death exit acts at every age
    death = [e.rate for ex in model.chains["health"].exits for e in ex if e.to < 0]
    assert death and all((r.base[:, :16] > 0).all() for r in death)


def _care_need(tree: dict):
    """The calibrated care-need chain's initial distribution, its reference population's
    living adults' sexes and ages, and the published table (shares by band) it came from."""
    from hhsim.core.randomness import Streams
    from hhsim.health.model_file import REFERENCE_SEED, REFERENCE_SIZE, calibrated_model
    from hhsim.world.synthetic import england_mix, generate

    world = world_tree()
    health = calibrated_model(tree, world)
    streams = Streams(REFERENCE_SEED, (), REFERENCE_SIZE)
    ref = generate(REFERENCE_SIZE, england_mix(world), world, streams.generator("reference"))
    alive = ref.alive & (ref.age_years >= 16)
    leaf = tree["chains"]["care_need"]["initial"]["prevalence"]
    return health.chains["care_need"].initial, ref.female[alive].view(np.int8), \
        np.minimum(ref.age_years[alive], 120), np.asarray(leaf["value"]), leaf["breaks"]


def test_a_smooth_cross_section_keeps_each_band_s_share_without_steps():
    """``smooth = true``: shares by single year of age whose mean over the reference
    population's people of each band and sex is the band's published share, with no step at
    the boundaries (care need, women: 75-79 18.6% and 80-84 32.1% before)."""
    tree = copy.deepcopy(default_model_tree())
    tree["chains"]["care_need"]["initial"]["smooth"] = True
    init, female, age, table, breaks = _care_need(tree)
    assert init.shares.shape[1] > 100  # by single year of age
    curve = init.shares[:, init.band_of_age, 1]  # P(care need) by sex and age
    edges = np.searchsorted(breaks, age, side="right") - 1
    for s in (0, 1):
        for b in range(len(breaks)):
            members = age[(female == s) & (edges == b)]
            if members.size:
                assert curve[s, members].mean() == pytest.approx(table[s, b, 1], abs=1e-6)
    women = curve[1]
    assert women[80] - women[79] < 0.25 * (table[1, 13, 1] - table[1, 12, 1])
    assert np.all(np.diff(women[60:100]) > 0)  # rises with age, year by year


@pytest.mark.parametrize(("value", "expected"), [(1, "must be true or false")])
def test_smooth_must_be_true_or_false(value, expected):
    tree = broken(lambda t: t["chains"]["care_need"]["initial"].__setitem__("smooth", value))
    with pytest.raises(HhsimError, match=expected):
        compile_model(tree)
