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
from hhsim.core.resources import world_tree
from hhsim.health.calendar import MONTH_WEIGHTS, calendar_month
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model, compile_model
from hhsim.model.simulation import HousingHealthModel
from hhsim.world.population import HAZARD_BITS

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


