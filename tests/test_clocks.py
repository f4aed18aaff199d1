"""Memory across states (issue 19, items 4 and 6): named clocks (time in a group of states,
since first entering one, since an event, since model entry) in transitions and rewards, and
hazards on a clock (exponential, Weibull, Gompertz, log-logistic, piecewise). Cohort mode
reproduces the distributions' survival to 1e-9 and follows clocks in tunnel states; the
microsimulation agrees with it within 3 per-person standard errors (fixed seeds); mistakes
are one-line errors."""

import copy
import math
import re
import tomllib
from types import SimpleNamespace

import numpy as np
import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import apply_overrides, parameters_of
from hhsim.core.resources import world_tree
from hhsim.health.clocks import Clock
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model, compile_model
from hhsim.health.terms import TermContext
from hhsim.model.simulation import HousingHealthModel

from conftest import ROOT, config, model_file

Z = 3.0
AGE = 50.0  # years: the age of every tenant where a run is compared with cohort mode


def leaf(value, unit: str, **kw) -> dict:
    return {"value": value, "unit": unit, "source": "test value", **kw}


SURVIVAL = {  # rate parameters, and S(t) for t in years
    "exponential": ({"rate": leaf(0.01, "per person-month")}, lambda t: np.exp(-0.12 * t)),
    "weibull": ({"shape": leaf(1.7, "Weibull shape"), "scale": leaf(8.0, "years")},
                lambda t: np.exp(-(t / 8.0) ** 1.7)),
    "gompertz": ({"shape": leaf(-0.1, "Gompertz shape per year"), "rate": leaf(0.3, "per person-year")},
                 lambda t: np.exp(-0.3 / -0.1 * np.expm1(-0.1 * t))),
    "loglogistic": ({"shape": leaf(2.5, "log-logistic shape"), "scale": leaf(60.0, "months")},
                    lambda t: 1 / (1 + (t / 5.0) ** 2.5)),
    "piecewise": ({"hazard": leaf([0.05, 0.2, 0.1], "per person-year", breaks=[0, 2.5, 7])},
                  lambda t: np.exp(-(0.05 * np.minimum(t, 2.5) + 0.2 * np.clip(t - 2.5, 0, 4.5)
                                     + 0.1 * np.maximum(t - 7, 0)))),
}


def one_exit(cycle: str, dist: str, clock: str, clocks: dict | None = None) -> dict:
    """Everyone alive, leaving (dying) by one hazard on ``clock``."""
    return {"model": {"cycle": cycle}, "clocks": clocks or {},
            "chains": {"h": {"states": ["alive"], "initial": {"prevalence": leaf([1.0], "share")},
                             "transitions": {"die": {"from": "alive", "to": "dead", "rate": {
                                 "distribution": dist, "clock": clock, **SURVIVAL[dist][0]}}}}}}


def alive_share(tree: dict, steps: int) -> np.ndarray:
    return cohort_run(calibrated_model(tree, world_tree()), steps, {"alive": 1.0}, age=AGE).trace[:, 0]


@pytest.mark.parametrize("cycle, steps", [("year", 30), ("month", 240)])
@pytest.mark.parametrize("dist", list(SURVIVAL))
def test_cohort_mode_reproduces_each_distribution_s_survival_at_cycle_boundaries(dist, cycle, steps):
    years = np.arange(steps + 1) * (1.0 if cycle == "year" else 1 / 12)
    np.testing.assert_allclose(alive_share(one_exit(cycle, dist, "model_time"), steps),
                               SURVIVAL[dist][1](years), rtol=0, atol=1e-9)


@pytest.mark.parametrize("clock, clocks", [
    ("time_in_state", None), ("age", None), ("since_entry", {"since_entry": {"starts": "entry"}}),
    ("in_life", {"in_life": {"starts": "enter", "chain": "h", "states": ["alive"]}}),
])
def test_a_hazard_runs_on_any_clock(clock, clocks):
    years = np.arange(121) / 12
    survival = SURVIVAL["weibull"][1]
    expected = survival(AGE + years) / survival(AGE) if clock == "age" else survival(years)
    np.testing.assert_allclose(alive_share(one_exit("month", "weibull", clock, clocks), 120),
                               expected, rtol=0, atol=1e-9)


def test_a_table_of_hazards_by_sex_integrates_each_row():
    tree = one_exit("year", "piecewise", "model_time")
    tree["chains"]["h"]["transitions"]["die"]["rate"]["hazard"] = leaf(
        [[0.1, 0.3], [0.05, 0.02]], "per person-year", breaks=[0, 1.5])
    health = calibrated_model(tree, world_tree())
    for female, hazards in ((False, (0.1, 0.3)), (True, (0.05, 0.02))):
        share = cohort_run(health, 4, {"alive": 1.0}, female=female).trace[:, 0]
        cumulative = [hazards[0] * min(t, 1.5) + hazards[1] * max(t - 1.5, 0) for t in range(5)]
        np.testing.assert_allclose(share, np.exp(-np.array(cumulative)), rtol=0, atol=1e-12)


def homogeneous_run(tree: dict, steps: int, seed: int, timing: str) -> HousingHealthModel:
    """A run of 20,000 tenants made alike (men of ``AGE``) before the first step, as the
    cohort is; the start boundary, already valued, depends on neither age nor sex here."""
    m = HousingHealthModel(config(tree, tenants=20_000, steps=steps, seed=seed, reward_timing=timing))
    m.pop.age_months[:] = int(AGE * 12)
    m.pop.female[:] = False
    m.pop.refresh_age()
    m.health.profiles.refresh(m.pop)
    return m


@pytest.mark.parametrize("name, steps, timing", [("clocks_yearly.toml", 20, "half-cycle"),
                                                 ("clocks_monthly.toml", 120, "simpson")])
def test_microsimulation_agrees_with_cohort_mode_on_models_with_clocks(name, steps, timing):
    m = homogeneous_run(model_file(name), steps, 5, timing)
    chain = m.health.chains["health"]
    start = {s: float(np.mean(m.baseline.codes["health"] == k)) for k, s in enumerate(chain.states)}
    m.run()
    expected = cohort_run(m.health, steps, start, reward_timing=timing)
    per_person = {"qalys": m.ledger.reward_disc["qalys"], "life_years": m.ledger.reward_disc["life_years"]}
    per_person |= {f"cost_{a}": m.ledger.count_disc[a] * m.activities[a].unit_cost
                   for a in m.activities if a in m.ledger.count_disc}
    for key, x in per_person.items():
        x = x.astype(float)
        assert abs(x.mean() - expected.outcomes[key]) < Z * x.std() / math.sqrt(x.size), key
    final = [np.mean(m.pop.alive & (m.pop.states["health"] == k)) for k in range(3)] + [np.mean(~m.pop.alive)]
    for share, want in zip(final, expected.trace[-1], strict=True):
        assert abs(share - want) < Z * math.sqrt(want * (1 - want) / m.pop.n)


def test_clocks_keep_their_rules_tenant_by_tenant():
    m = HousingHealthModel(config(model_file("clocks_yearly.toml"), tenants=3000, steps=12, seed=2))
    pop, group = m.pop, np.array([False, True, True])
    seen = {"entered": 0, "within": 0, "recovered": 0}
    for t in range(12):
        before = {k: v.copy() for k, v in (("state", pop.states["health"]), ("ill", pop.clocks["ill"]))}
        m.step()
        alive, state, c = pop.alive, pop.states["health"], pop.clocks
        assert np.all(c["since_entry"][alive] == 12 * (t + 1))
        assert np.array_equal(c["ill"][alive] >= 0, group[state[alive]])  # runs in the group only
        entered = alive & group[state] & ~group[before["state"]]
        within = alive & group[state] & group[before["state"]] & (state != before["state"])
        recovered = alive & (state == 0) & (before["state"] == 1)
        assert np.all(c["ill"][entered] == 0) and np.all(c["ill"][within] == before["ill"][within] + 12)
        assert np.all(pop.time_in_state["health"][within] == 0)  # time in state restarts, ill does not
        assert np.all(c["since_recovery"][recovered] == 0)
        ever = c["since_first_ill"] >= 0
        assert np.all(ever[alive & group[state]]) and np.all(c["since_first_ill"][ever] >= c["ill"][ever])
        for key, mask in (("entered", entered), ("within", within), ("recovered", recovered)):
            seen[key] += int(mask.sum())
    assert min(seen.values()) > 100  # the test has teeth


def test_a_clock_over_one_state_is_time_in_state():
    tree = model_file("clocks_yearly.toml")
    clocked = copy.deepcopy(tree)
    clocked["clocks"]["in_sicker"] = {"starts": "enter", "chain": "health", "states": ["sicker"]}
    improve = clocked["chains"]["health"]["transitions"]["improve"]["rr"]
    improve["in_sicker"] = improve.pop("time_in_state")
    runs = [HousingHealthModel(config(t, tenants=3000, steps=15, seed=4)) for t in (tree, clocked)]
    for m in runs:
        m.run()
    for key in ("qalys", "life_years"):
        np.testing.assert_array_equal(runs[0].ledger.reward_disc[key], runs[1].ledger.reward_disc[key])
    cohorts = [cohort_run(m.health, 15, {"well": 1.0}).outcomes for m in runs]
    assert cohorts[1] == pytest.approx(cohorts[0], rel=1e-12)


def test_a_clock_that_is_not_running_gives_the_band_from_minus_1_or_is_neutral():
    clock = Clock("c", "event", "health", np.array([True, False]), np.array([[False, True], [True, False]]))
    pop = SimpleNamespace(clocks={"c": np.array([-1, 0, 5, 30], dtype=np.int16)})  # months; -1: not running
    marked = clock.term("rr.c", leaf([0.0, 1.0, 0.5], "multiplier", breaks=[-1, 0, 24]), TermContext({}))
    plain = clock.term("rr.c", leaf([2.0, 1.5], "rate ratio", breaks=[0, 24]), TermContext({}))
    assert marked.factor(pop).tolist() == [0.0, 1.0, 1.0, 0.5]
    assert plain.factor(pop).tolist() == [1.0, 2.0, 2.0, 1.5]


def test_distribution_parameters_are_parameters_that_experiments_and_psa_reach():
    tree = model_file("clocks_yearly.toml")
    names = parameters_of(tree)
    assert {"chains.health.transitions.progress.rate.scale", "chains.health.transitions.recover.rate.shape",
            "chains.health.transitions.die_well.rate.hazard"} <= set(names)
    assert names["chains.health.transitions.progress.rate.shape"].value == 1.5  # from its expression
    slower = apply_overrides(tree, {"chains.health.transitions.progress.rate.scale": 8.0,
                                    "parameters.progress_shape": 1.2})
    base, moved = (cohort_run(calibrated_model(t, world_tree()), 10, {"sick": 1.0}).trace
                   for t in (tree, slower))
    assert moved[-1, 2] < base[-1, 2]  # fewer progress to 'sicker'


def test_cohort_mode_refuses_more_tunnel_states_than_it_follows():
    # Months since first 'b' and months in state, both read by hazards: about 240²/2 pairs.
    tree = one_exit("month", "weibull", "since_b", {"since_b": {"starts": "first_enter", "chain": "h",
                                                                "states": ["b"]}})
    chain = tree["chains"]["h"]
    chain["states"], chain["initial"]["prevalence"]["value"] = ["a", "b"], [0.5, 0.5]
    chain["transitions"] = {"ab": {"from": "a", "to": "b", "rate": leaf(0.5, "per person-year")},
                            "ba": {"from": "b", "to": "a", "rate": {**chain["transitions"]["die"]["rate"]}},
                            "die": {"from": "a", "to": "dead", "rate": {
                                **chain["transitions"]["die"]["rate"], "clock": "time_in_state"}}}
    health = calibrated_model(tree, world_tree())
    cohort_run(health, 24, {"a": 1.0})  # two years: fewer rows
    with pytest.raises(HhsimError, match=r"^cohort mode: the model's clocks need more than 20,000 tunnel "
                                         r"states .*\(fix: run it as a microsimulation"):
        cohort_run(health, 240, {"a": 1.0})


GOMPERTZ = leaf([[0.001, 0.0001, 0.08]] * 2, "coefficients per year")
ON_ILL = {"ill": leaf([1.0], "rate ratio", breaks=[0])}


def edited(edit) -> dict:
    tree = copy.deepcopy(model_file("clocks_yearly.toml"))
    edit(tree, tree["clocks"], tree["chains"]["health"]["transitions"])
    return tree


@pytest.mark.parametrize("edit, expected", [
    (lambda t, c, tr: c.update(x={"starts": "later"}), "clocks.x.starts: unknown start 'later'"),
    (lambda t, c, tr: c.update(age={"starts": "entry"}),
     "clocks.age: 'age' is already the name of a covariate"),
    (lambda t, c, tr: c.update(health={"starts": "entry"}), "'health' is already the name of a chain"),
    (lambda t, c, tr: c.update(model_time={"starts": "entry"}), "already the name of a built-in clock"),
    (lambda t, c, tr: c.update(x={"starts": "entry", "chain": "health"}),
     'clocks.x.chain: does not apply to starts = "entry"'),
    (lambda t, c, tr: c.update(x={"starts": "enter", "chain": "health"}),
     'clocks.x: needs states for starts = "enter"'),
    (lambda t, c, tr: c.update(x={"starts": "enter", "chain": "health", "states": "sick"}),
     "clocks.x.states: must be a list of states"),
    (lambda t, c, tr: c.update(x={"starts": "enter", "chain": "health", "states": ["sik"]}),
     "unknown state 'sik' (fix: did you mean 'sick'?)"),
    (lambda t, c, tr: c.update(x={"starts": "enter", "chain": "helth", "states": ["sick"]}),
     "clocks.x.chain: unknown chain 'helth'"),
    (lambda t, c, tr: c.update(x={"starts": "event", "chain": "health", "transitions": ["recovr"]}),
     "unknown transition 'recovr' (fix: did you mean 'recover'?)"),
    (lambda t, c, tr: c.update(x={"starts": "event", "chain": "health", "transitions": ["die_sick"]}),
     "'die_sick' does not move between two states of the chain"),
    (lambda t, c, tr: tr.update(relapse={**tr["improve"], "from": "sick", "to": "well"}),
     "'recover' and 'relapse' both go from 'sick' to 'well', so the clock cannot tell them apart"),
    (lambda t, c, tr: t.update(clocks=3), "clocks: must be a table"),
    (lambda t, c, tr: tr["improve"]["rr"].update(ill=leaf(0.5, "rate ratio")),
     "improve.rr.ill: needs breaks (months on clock 'ill')"),
    (lambda t, c, tr: t["utility"]["multiplier"].update(since_recovry=leaf([1.0], "multiplier", breaks=[0])),
     "utility.multiplier: unknown covariate 'since_recovry' (fix: did you mean 'since_recovery'?)"),
    (lambda t, c, tr: tr["progress"]["rate"].update(distribution="weibul"),
     "progress.rate.distribution: unknown distribution 'weibul' (fix: did you mean 'weibull'?)"),
    (lambda t, c, tr: tr["progress"]["rate"].pop("clock"), "progress.rate: has no clock"),
    (lambda t, c, tr: tr["progress"]["rate"].update(clock="il"), "progress.rate.clock: unknown clock 'il'"),
    (lambda t, c, tr: tr["fall_ill"].update(rate={**tr["progress"]["rate"]}),
     "fall_ill.rate.clock: clock 'ill' does not run in the state this transition leaves"),
    (lambda t, c, tr: tr["progress"].update(reference=True),
     "progress.reference: a hazard given by a distribution cannot be de-averaged"),
    (lambda t, c, tr: tr["progress"]["rate"].pop("scale"), "progress.rate: has no scale"),
    (lambda t, c, tr: tr["progress"]["rate"].update(scal=leaf(1.0, "years")),
     "progress.rate: unknown key 'scal' (fix: did you mean 'scale'?)"),
    (lambda t, c, tr: tr["recover"]["rate"].update(shape=leaf(0.0, "shape")),
     "recover.rate.shape: value 0 is not above 0"),
    (lambda t, c, tr: tr["recover"]["rate"].update(scale=leaf(3.0, "per year")),
     "recover.rate.scale: unit 'per year' is not a time"),
    (lambda t, c, tr: tr["recover"]["rate"].update(scale=leaf([3.0, 4.0], "years")),
     "recover.rate.scale: must be a single number"),
    (lambda t, c, tr: tr["die_sick"]["rate"].update(rate=leaf(0.1, "probability per year")),
     "die_sick.rate.rate: is a probability where a hazard is needed"),
    (lambda t, c, tr: tr["die_well"]["rate"].update(hazard=leaf([0.1, 0.2], "per person-year")),
     "die_well.rate.hazard: a table of hazards needs breaks"),
    (lambda t, c, tr: tr["die_well"]["rate"].update(hazard=leaf([0.1, 0.2], "per person-year",
                                                                breaks=[-1, 2])),
     "die_well.rate.hazard.breaks: must be an increasing list of lower bounds, from 0 up"),
    (lambda t, c, tr: tr["die_well"]["rate"]["hazard"].update(breaks=["zero", "five"]),
     "die_well.rate.hazard.breaks: must be an increasing list of lower bounds, from 0 up"),
    (lambda t, c, tr: tr["improve"]["rr"]["ill"].update(breaks=["zero", "3y"]),
     "improve.rr.ill: breaks must be an increasing list of lower bounds"),
    (lambda t, c, tr: t.update(mortality={"chain": "health", "gompertz_makeham": GOMPERTZ, "rr": ON_ILL}),
     "mortality.rr.ill: reads clock 'ill', but only transitions, services, admissions, utility and state"),
    (lambda t, c, tr: t["chains"]["health"]["initial"].update(odds_ratio=ON_ILL),
     "chains.health.initial.odds_ratio.ill: reads clock 'ill'"),
])
def test_mistakes_with_clocks_and_hazards_are_one_line_errors(edit, expected):
    with pytest.raises(HhsimError) as err:
        compile_model(edited(edit))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_the_documented_example_gives_its_documented_results():
    text = (ROOT / "docs" / "model-files.md").read_text(encoding="utf-8")
    tree = tomllib.loads(re.search(r"```toml\n(.*?)```", text[text.index("`relapse.toml`:"):], re.S).group(1))
    out = cohort_run(calibrated_model(tree, world_tree()), 20, {"well": 1.0}, reward_timing="end")
    line = (f"{out.outcomes['qalys']:.4f} QALYs, £{out.outcomes['cost_treatment']:,.2f} treatment, "
            f"£{out.outcomes['cost_follow_up']:,.2f} follow-up")
    assert f"```text\n{line}\n```" in text
