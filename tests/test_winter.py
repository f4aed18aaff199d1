"""Winter (issue 18): the monthly model knows the calendar.

Terms by calendar month (``rr.calendar_month``, for everyone or for the occupants of homes
with a hazard) are exact in cohort mode and the microsimulation agrees with it; de-averaging
keeps a rate's annual mean; the default model's deaths follow the ONS excess winter
mortality index (winter December-March against August-November and April-July), and cold
homes carry a larger winter excess. Fixed seeds; Monte-Carlo tolerances are 3 standard
errors, and the populations are sized so that the standard error of the index is about a
tenth of the winter excess (sizes in each test).
"""

import math

import numpy as np
import pytest

from hhsim.analysis.winter import ewm_index, winters
from hhsim.core.errors import HhsimError
from hhsim.core.parameters import parameters_of
from hhsim.core.randomness import Streams
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.health.calendar import MONTH_WEIGHTS, calendar_month, set_month
from hhsim.health.chains import DEATH
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import REFERENCE_SEED, REFERENCE_SIZE, calibrated_model, compile_model
from hhsim.health.rates import N_STRATA, STRATUM_OF_AGE
from hhsim.health.terms import MAX_AGE
from hhsim.model.cohort_mode import cohort_record
from hhsim.model.simulation import HousingHealthModel
from hhsim.world.population import HAZARD_BITS
from hhsim.world.synthetic import england_mix, generate

from conftest import config, model_file

Z = 3.0
COLD = HAZARD_BITS["excess_cold"]
#: ONS excess winter mortality index, England and Wales, 2011/12-2018/19 (issue 18 evidence, D).
ONS_MEAN, ONS_LOW, ONS_HIGH = 0.192, 0.116, 0.31
SEASON = np.array([1.45, 1.35, 1.15, 1.0, 0.8, 0.7, 0.6, 0.65, 0.8, 0.95, 1.15, 1.4])  # fall_ill
COLD_WINTER = np.array([1.5, 1.5, 1.5, 1, 1, 1, 1, 1, 1, 1, 1, 1.5])  # die, cold homes only


# -- terms by calendar month -------------------------------------------------------------------
def by_hand(steps: int, start_month: int | None, cold: bool = False, yearly: bool = False) -> np.ndarray:
    """Shares well, ill and dead of tests/models/seasonal_monthly.toml, cycle by cycle."""
    dt = 1.0 if yearly else 1 / 12
    share = np.array([0.9, 0.1, 0.0])
    out = [share]
    for t in range(steps):
        m = None if start_month is None or yearly else calendar_month(start_month, t)
        season = SEASON @ MONTH_WEIGHTS if m is None else SEASON[m]
        winter = (COLD_WINTER @ MONTH_WEIGHTS if m is None else COLD_WINTER[m]) if cold else 1.0
        p_ill = -math.expm1(-0.2 * season * dt)
        total = 1.0 + 0.3 * winter
        leave = -math.expm1(-total * dt)
        well, ill, dead = share
        share = np.array([well * (1 - p_ill) + ill * leave / total,
                          well * p_ill + ill * (1 - leave),
                          dead + ill * leave * 0.3 * winter / total])
        out.append(share)
    return np.array(out)


@pytest.mark.parametrize("start_month", [1, 4, 11, None])
def test_cohort_mode_follows_the_calendar_exactly(start_month):
    health = calibrated_model(model_file("seasonal_monthly.toml"), world_tree())
    trace = cohort_run(health, 30, {"well": 0.9, "ill": 0.1}, start_month=start_month).trace
    np.testing.assert_allclose(trace, by_hand(30, start_month), rtol=0, atol=1e-6)


def test_a_yearly_model_takes_the_annual_means_of_calendar_terms():
    tree = model_file("seasonal_monthly.toml")
    tree["model"]["cycle"] = "year"
    health = calibrated_model(tree, world_tree())
    trace = cohort_run(health, 8, {"well": 0.9, "ill": 0.1}, start_month=1).trace
    np.testing.assert_allclose(trace, by_hand(8, None, yearly=True), rtol=0, atol=1e-6)


def test_microsimulation_agrees_with_cohort_mode_month_by_month():
    """20,000 men of 50, half of them in cold homes, from November for 26 months: the shares
    alive and ill at every step lie within 3 binomial standard errors of cohort mode (cold
    homes: by hand, as cohort mode has no hazards)."""
    steps, n = 26, 20_000
    m = HousingHealthModel(config(model_file("seasonal_monthly.toml"), tenants=n, steps=steps, seed=11,
                                  start_month=11))
    m.pop.age_months[:] = 50 * 12
    m.pop.female[:] = False
    m.pop.dwellings.hazards[:] = 0
    m.pop.dwellings.hazards[: m.pop.dwellings.n // 2] = COLD
    m.pop.refresh_from_dwellings()
    m.pop.refresh_age()
    m.health.profiles.refresh(m.pop)
    m.pop.states["health"][:] = 0
    m.pop.states["health"][np.arange(n) % 10 == 0] = 1  # 10% ill, in both groups
    m.health.profiles.refresh(m.pop)
    cold = (m.pop.hazards & COLD) != 0
    expected = {False: cohort_run(m.health, steps, {"well": 0.9, "ill": 0.1}, start_month=11).trace,
                True: by_hand(steps, 11, cold=True)}
    np.testing.assert_allclose(expected[False], by_hand(steps, 11), atol=1e-6)
    for t in range(steps):
        m.step()
        for group in (False, True):
            who = cold == group
            for k, inside in ((1, m.pop.alive[who] & (m.pop.states["health"][who] == 1)),
                              (2, ~m.pop.alive[who])):
                want = expected[group][t + 1, k]
                se = math.sqrt(want * (1 - want) / who.sum())
                assert abs(inside.mean() - want) < Z * se + 1e-9, (t, group, k)


def test_hhsim_run_cohort_follows_the_experiment_s_calendar():
    """Cohort mode from the command line (``cohort_record``) starts in the experiment's
    start_month: its monthly deaths are cohort_run's with that start month."""
    tree = model_file("seasonal_monthly.toml")
    for start in (1, 7):
        cfg = config(tree, tenants=1000, steps=14, start_month=start, cohort={"age": 50, "sex": "male"})
        _, tables = cohort_record(cfg)
        health = calibrated_model(tree, world_tree())
        want = cohort_run(health, 14, None, start_month=start).trace[:, -1]
        np.testing.assert_allclose(tables["monthly"]["deaths"], 1000 * np.diff(want), rtol=1e-12)
        assert not np.allclose(want, cohort_run(health, 14, None).trace[:, -1])


@pytest.mark.parametrize("edit, message", [
    (lambda t: t["chains"]["health"]["transitions"]["fall_ill"]["rr"]["calendar_month"].update(
        value=[1.0] * 11),
     r"^chains\.health\.transitions\.fall_ill\.rr\.calendar_month: has 11 value\(s\); needs 12, "
     r"January to December \(fix: give one value per calendar month, January first\)$"),
    (lambda t: t["chains"]["health"]["transitions"]["die"]["rr"]["calendar_month"].update(
        income={"value": [1.0] * 12, "unit": "rate ratio", "source": "test"}),
     r"^chains\.health\.transitions\.die\.rr\.calendar_month: unknown group 'income'"),
    (lambda t: t["utility"]["multiplier"].update(calendar_month={"value": [1.0] * 12, "unit": "multiplier",
                                                                 "source": "test"}),
     r"^utility\.multiplier\.calendar_month: the calendar month is read by rates and probabilities only"),
])
def test_mistakes_in_calendar_terms_are_one_line_errors(edit, message):
    tree = model_file("seasonal_monthly.toml")
    edit(tree)
    with pytest.raises(HhsimError, match=message) as err:
        compile_model(tree)
    assert "\n" not in str(err.value)


def test_de_averaging_keeps_the_annual_mean_of_a_seasonal_rate():
    """On the reference population, the day-weighted mean over the months of the default
    model's de-averaged mortality and emergency admission rates (each cause's), relative to their sources,
    is 1 in every age-sex stratum: the seasonal profile and the winter excess of cold homes
    move deaths and admissions between months and people, not the national annual total."""
    world = world_tree()
    health = calibrated_model(default_model_tree(), world)
    streams = Streams(REFERENCE_SEED, (), REFERENCE_SIZE)
    ref = generate(REFERENCE_SIZE, england_mix(world), world, streams.generator("reference"))
    health.initialise(ref, streams)
    female = ref.female.view(np.int8).astype(np.intp)
    cell = female * N_STRATA + STRATUM_OF_AGE[np.minimum(ref.age_years, MAX_AGE)]
    people = np.maximum(np.bincount(cell, None, 2 * N_STRATA), 1)
    causes = next(t.columns for t in health.admissions if t.name == "emergency")
    for rate in (health.mortality, *causes):
        assert any(t.calendar for t in rate.terms)
        source = rate.source.ravel()[female * (MAX_AGE + 1) + np.minimum(ref.age_years, MAX_AGE)]
        mean = np.zeros(2 * N_STRATA)
        for month, w in enumerate(MONTH_WEIGHTS):
            set_month(ref, month)
            ratio = rate.evaluate(ref).astype(float) / source
            mean += w * np.bincount(cell, ratio, 2 * N_STRATA) / people
        set_month(ref, None)
        present = np.bincount(cell, None, 2 * N_STRATA) > 0
        np.testing.assert_allclose(mean[present], 1.0, rtol=2e-5, err_msg=rate.name)


# -- the ONS index -------------------------------------------------------------------------------
def test_the_ons_index_of_a_series_of_deaths():
    # From April: Apr-Jul 100 a month, Aug-Nov 110, Dec-Mar 125, Apr-Jul 120.
    deaths = [100] * 4 + [110] * 4 + [125] * 4 + [120] * 4
    (w,) = winters(deaths, start_month=4)
    assert (w.first_step, w.winter_deaths, w.non_winter_mean) == (4, 500, 460)
    assert w.index == pytest.approx(40 / 460)
    assert winters(deaths[:15], start_month=4) == []  # the April-July after is incomplete
    assert math.isnan(ewm_index(deaths[:15], 4))
    # From January, two complete winters in 32 months (August of year 1 to July of year 3).
    assert [w.first_step for w in winters([1.0] * 32, start_month=1)] == [7, 19]


# -- the default model -----------------------------------------------------------------------
def step_deaths(m: HousingHealthModel, groups: dict[str, np.ndarray] | None = None
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run ``m`` to its end; deaths in each step among each group of tenants (``all`` when
    None): observed, and expected from the hazards of the living at the start of the step
    (the sum of each tenant's probability of dying in the step: the deaths' compensator,
    free of sampling noise given the path)."""
    chain = next(c for c in m.health.chains.values() if c.mortality)
    groups = groups or {"all": np.ones(m.pop.n, dtype=bool)}
    out = {name: ([], []) for name in groups}
    for t in range(m.config.steps):
        set_month(m.pop, calendar_month(m.config.start_month, t))
        h = chain.hazards(m.pop, m.effect).astype(float)
        dies = chain.targets[m.pop.states[chain.name]] == DEATH
        total = h.sum(axis=1)
        p = np.divide((h * dies).sum(axis=1), total, out=np.zeros_like(total), where=total > 0)
        p *= -np.expm1(-total * m.dt)
        for name, group in groups.items():
            out[name][1].append(p[m.pop.alive & group].sum())
        m.step()
        for name, group in groups.items():
            out[name][0].append(float((m.death_month[group] == t).sum()))
    return {name: (np.array(obs), np.array(exp)) for name, (obs, exp) in out.items()}


def old_women(n: int, steps: int, seed: int) -> HousingHealthModel:
    """A run of ``n`` women aged 85 to 86 (birthdays spread over the year, so that ageing
    is a smooth trend, not a step), each alone in a home without hazards, from April."""
    m = HousingHealthModel(config(tenants=n, steps=steps, seed=seed, start_month=4,
                                  cohort={"age": 85, "sex": "female"}))
    m.pop.age_months[:] += np.arange(n, dtype=np.int16) % 12
    m.pop.refresh_age()
    m.health.profiles.refresh(m.pop)
    return m


def index_se(deaths: np.ndarray, start_month: int) -> float:
    """Standard error of the pooled ONS index from Poisson counts (delta method)."""
    ws = winters(deaths, start_month)
    winter = sum(w.winter_deaths for w in ws)
    rest = 2 * sum(w.non_winter_mean for w in ws)  # deaths in the non-winter months
    return (winter / (rest / 2)) * math.sqrt(1 / winter + 1 / rest)


def test_default_model_excess_winter_mortality_matches_ons():
    """100,000 women aged 85-86 (about 700 deaths a month; standard error of the index about
    0.02, a tenth of the winter excess), two ONS winters (from April, 36 months)."""
    m = old_women(100_000, 36, 18)
    observed, expected = step_deaths(m)["all"]
    model = ewm_index(expected, 4)
    se = index_se(observed, 4)
    assert se < 0.12 * model
    # Nobody here lives in a cold home: the index is the one outside cold homes (0.184).
    ratio = float(parameters_of(default_model_tree())["parameters.cold_winter_ratio"].value)
    elsewhere = ONS_MEAN / (1 + 0.028 * (ratio - 1))
    assert model == pytest.approx(elsewhere, abs=0.01)
    assert ONS_LOW < model < ONS_HIGH
    assert abs(ewm_index(observed, 4) - model) < Z * se
    # The shape: each winter month carries about 1 + I times the deaths of a month of the
    # rest of the year (every step is a twelfth of a year), and Dec-Mar holds (1 + I) / (3 + I)
    # of a year's deaths (37% at I = 19%; 33% with no winter excess).
    in_winter = np.array([calendar_month(4, t) in (11, 0, 1, 2) for t in range(36)])
    year = slice(4, 16)  # August to July
    ratio = expected[year][in_winter[year]].mean() / expected[year][~in_winter[year]].mean()
    assert ratio == pytest.approx(1 + elsewhere, abs=0.015)
    share = observed[year][in_winter[year]].sum() / observed[year].sum()
    want = expected[year][in_winter[year]].sum() / expected[year].sum()
    assert want == pytest.approx((1 + elsewhere) / (3 + elsewhere), abs=0.005)
    assert abs(share - want) < Z * math.sqrt(want * (1 - want) / observed[year].sum())


def test_default_model_england_population_has_the_ons_index_in_expectation():
    """200,000 adults of England's tenure mix, one ONS winter: the expected index (from the
    hazards, no sampling noise) is the ONS mean; the observed index (about 200 deaths a
    month, standard error about 0.05) lies within 3 standard errors of it."""
    tenure = {"owner_occupied": 0.64, "private_rented": 0.19, "social_rented": 0.17}
    m = HousingHealthModel(config(tenants=200_000, steps=16, seed=5, start_month=4, tenure=tenure))
    observed, expected = step_deaths(m)["all"]
    model = ewm_index(expected, 4)
    assert model == pytest.approx(ONS_MEAN, abs=0.01)
    assert abs(ewm_index(observed, 4) - model) < Z * index_se(observed, 4)


def test_cold_homes_carry_a_larger_winter_excess():
    """200,000 women aged 85-86, half of them in cold homes (about 700 deaths a month in each
    half; standard error of each half's index about 0.02), two ONS winters: the cold homes'
    index is about cold_winter_ratio (2.5 since model 12) times the others'; the observed ratio
    lies within 3 standard errors of the expected one."""
    cold_winter_ratio = float(parameters_of(default_model_tree())["parameters.cold_winter_ratio"].value)
    m = old_women(200_000, 36, 21)
    m.pop.dwellings.hazards[: m.pop.dwellings.n // 2] = COLD
    m.pop.refresh_from_dwellings()
    m.health.profiles.refresh(m.pop)
    cold = (m.pop.hazards & COLD) != 0
    deaths = step_deaths(m, {"cold": cold, "others": ~cold})
    index = {k: ewm_index(expected, 4) for k, (_, expected) in deaths.items()}
    ratio = index["cold"] / index["others"]
    assert ratio == pytest.approx(cold_winter_ratio, abs=0.1)
    seen = {k: ewm_index(observed, 4) for k, (observed, _) in deaths.items()}
    se = {k: index_se(observed, 4) for k, (observed, _) in deaths.items()}
    ratio_se = ratio * math.hypot(se["cold"] / index["cold"], se["others"] / index["others"])
    assert abs(seen["cold"] / seen["others"] - ratio) < Z * ratio_se


def test_a_calendar_term_can_apply_to_fuel_poor_households_only():
    """``rr.calendar_month.fuel_poor`` multiplies the rate of people whose household is fuel
    poor (LILEE: low income and band D or worse) in the months given, and nobody else's."""
    from hhsim.health.terms import TermContext, parse_terms, product

    w = world_tree()
    pop = generate(4000, england_mix(w), w, np.random.default_rng(4))
    winter = [1.3, 1.3, 1.3, 1, 1, 1, 1, 1, 1, 1, 1, 1.3]
    terms = parse_terms({"calendar_month": {"fuel_poor": {"value": winter, "unit": "rate ratio",
                                                          "status": "A", "source": "test"}}},
                        "x.rr", TermContext({}))
    poor = pop.dwellings.fuel_poor[pop.dwelling]
    assert 0.05 < poor.mean() < 0.3  # England's households: about 13% fuel poor (LILEE)
    for month, ratio in ((0, 1.3), (6, 1.0)):
        set_month(pop, month)
        factor = product(terms, pop, None)
        assert np.allclose(factor[poor], ratio) and np.allclose(factor[~poor], 1.0)
    set_month(pop, None)
