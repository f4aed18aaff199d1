"""No drift (issue 16): the default model holds England's cross-section as its people age."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from hhsim.core.resources import default_model_tree
from hhsim.model.census import CENSUS_AGE_BANDS, CENSUS_AGE_LABELS
from hhsim.studies.baseline.check import DRIFT_LIMIT, bands_against_limit, group_summary, later_states
from hhsim.studies.baseline.drift import (
    CHECK_YEARS,
    Strata,
    cohort_drift,
    decile_drift,
    drift_tables,
    stable_drift,
    standardised_drift,
)
from hhsim.world.population import TENURES


@pytest.fixture(scope="module")
def tables():
    """500,000 adults of England with their children, 11 years (about 60 s): enough that a
    band's 95% interval is 0.5-1.4 points wide, so the 1-point tests below can fail."""
    return drift_tables(default_model_tree(), tenants=500_000, years=10, seed=3)


@pytest.fixture(scope="module")
def drift(tables):
    return stable_drift(tables.stable)


@pytest.mark.slow
def test_bad_health_in_each_age_band_holds_over_ten_years(drift):
    """Each sex and five-year band's share in bad health at years 2, 5 and 10 against year 0.

    Model 3 (placeholder transitions) moved by up to 28 points (mean 6.3 over the bands);
    model 4's fitted transitions (calibration/stationary.py) by at most 1.6 (mean 0.5, about
    the Monte-Carlo error of a band here). Issue 16 asks for at most 1 point in every band:
    not met yet at 75+ (docs/validation.md)."""
    bad = drift[(drift["chain"] == "health") & (drift["state"] == "bad")]
    for year in CHECK_YEARS:
        change = bad.loc[bad["year"] == year, "change"].abs()
        assert len(change) == 30
        assert change.max() <= 0.025 and change.mean() <= 0.008, (year, change.max(), change.mean())


#: The stable view as it is: the check's population is closed (nobody leaves home or changes
#: tenure), so the children who turn 16 stay in their parents' tenure and the bands of 16-34
#: rent more as they enter (docs/validation.md); this test holds every band to 3 points, so a
#: change that makes drift worse fails. The standardised view below holds issue 16's 1 point.
HELD_TO = 0.03


@pytest.mark.slow
def test_the_stable_population_holds_every_chain_within_one_point(tables):
    """Issue 16's stable population, each band's make-up (tenure and deprivation fifth) held
    at year 0: every adult chain's non-first states, each sex and five-year band at years 2, 5
    and 10, no band's change beyond 1 point on its 95% interval (change +- 1.96 se). Model 12
    as it is had 5 bands of long-term conditions beyond at year 10, 4 of isolation and 2 of
    long-term conditions at year 5 (this run); standardised, none (largest 1.76 points, fair
    health of women 80-84 at year 10, an interval across the limit; a band's se 0.2-0.5;
    mean absolute change 0.16-0.46 points, about the noise)."""
    std = standardised_drift(tables.strata)
    std = std[later_states(std)]
    assert std["kept"].min() > 0.99
    for (chain, state), part in std.groupby(["chain", "state"]):
        for year in CHECK_YEARS:
            here = part[part["year"] == year]
            assert len(here) == 30, (chain, year)
            beyond, _ = bands_against_limit(here["change"], here["se"], DRIFT_LIMIT)
            worst = here.loc[here["change"].abs().idxmax(), ["sex", "age_band", "change", "se"]].to_dict()
            assert beyond == 0, (chain, state, year, worst)
            assert here["change"].abs().mean() <= 0.006, (chain, state, year)


@pytest.mark.slow
def test_no_chain_drifts_beyond_three_points_in_any_age_band(drift):
    """Every adult chain's non-first states, each sex and five-year band at years 2, 5 and 10:
    no band's change is beyond 3 points on its 95% interval (change +- 1.96 se), the way
    docs/validation.md judges issue 16's 1-point limit. Model 3 moved care need by up to 21
    points and common mental disorder by 9; model 7 still by 5.2 (care need at 85+) and 4.2
    (long-term conditions at 20-24); model 9 by 3.1 (common mental disorder of men 16-19, whose
    onset the fit took from a band without the children who turn 16). Model 10 (500,000
    tenants): at most 3.1 points, long-term conditions at 20-24, where the people ageing in
    rent more than those who started there. Here (500,000) a band's standard error is 0.25-0.75
    points."""
    for (chain, state), part in drift.groupby(["chain", "state"]):
        if state in ("none", "well", "independent", "connected", "good"):
            continue
        for year in CHECK_YEARS:
            here = part[part["year"] == year]
            beyond, _ = bands_against_limit(here["change"], here["se"], HELD_TO)
            worst = here.loc[here["change"].abs().idxmax(), ["sex", "age_band", "change", "se"]].to_dict()
            assert beyond == 0, (chain, state, year, worst)
            assert here["change"].abs().mean() <= 0.012, (chain, state, year)


@pytest.mark.slow
def test_each_person_keeps_their_cross_section_within_one_point(tables):
    """The cohort view: living adults against their own cross-section chances (at their age,
    sex, deprivation, tenure and other states then), by sex and five-year band, at years 2, 5
    and 10: no band beyond issue 16's 1 point on its 95% interval. This is the chains'
    dynamics without the make-up of the people in a band. Model 9 (300,000 tenants): common
    mental disorder of women 16-19 3.1 points above at year 5, isolation of men 20-24 3.0
    below at year 10; model 10, which fits each rate to the gap as well as to its change,
    none beyond in 500,000 tenants at seeds 3 and 2016 (largest 2.0, an interval across the
    limit); model 11, none beyond at seed 3 (largest 1.7; pooling the fit's changes from
    cell means had let long-term conditions of men 85+ fall 4.4 points in ten years, as
    deaths change a cell's mix). With 200,000 one band of about 540 was beyond by noise (bad
    health of women 85+ at year 10, 2.2 points below, se 0.55), hence the larger population here rather than a
    family-wise interval, which would let 3-point drifts through."""
    cohort = cohort_drift(tables.cohort)
    cohort = cohort[later_states(cohort) & (cohort["year"] > 0)]
    beyond, _ = bands_against_limit(cohort["difference"], cohort["se"], DRIFT_LIMIT)
    worst = cohort.loc[cohort["difference"].abs().idxmax(), ["chain", "state", "year", "sex", "age_band",
                                                              "difference", "se"]].to_dict()
    assert beyond == 0, worst


@pytest.mark.slow
def test_each_level_of_deprivation_keeps_its_bad_health_over_ten_years(tables):
    """Bad health of the most and least deprived fifths at 25-44, 45-64 and 65-79, year 10
    against year 0. Model 5's transitions had one gradient (1.05 per decile) for an initial
    one of 1.10: the gradient relaxed, the most deprived fifth's bad health at 65-79 falling
    2.5 points and the least deprived's rising about 1. Model 6 fits each transition's
    gradient by age (calibration/stationary.py). In 500,000 tenants (a change's Monte-Carlo
    standard error about 0.2-0.45 points) the most deprived fifth at 65-79 still gains 1.9
    points in models 9 and 10 and 2.0 in model 11 (200,000 tenants had shown 0.8): issue 16's
    1 point is not met there, although model 11 fits self-rated health on its gap as well as
    its change. This test is a regression guard at 2.5 points; every other cell is within 1."""
    change = decile_drift(tables.census, "health", "bad", 10)
    assert len(change) == 6
    assert change["change"].abs().max() <= 0.025, change
    others = change[~((change["deprivation"] == "deciles 1-2") & (change["ages"] == "65-79"))]
    assert others["change"].abs().max() <= 0.01, change


@pytest.mark.slow
def test_each_tenure_keeps_its_own_cross_section(tables):
    """Adults of each tenure against their own cross-section chances (the initial odds ratios
    by tenure) at years 2, 5 and 10: within issue 16's 1 point on every interval. Until model 9
    the onsets had no tenure rate ratios, so the chains could not keep the initial gradient by
    tenure: isolation of social and private renters fell 3.2 and 3.4 points below theirs in ten
    years, and long-term conditions of social renters 1.8 (200,000 tenants). Model 10 fits
    onset rate ratios by tenure (calibration/stationary.py). A tenure's standard error here is
    0.05-0.2 points, so a 1.5-point drift fails."""
    by_group = group_summary(tables.groups)
    by_tenure = by_group[by_group["group"] == "tenure"]
    assert {"social_rented", "private_rented", "owner_occupied"} <= set(by_tenure["level"])
    beyond, _ = bands_against_limit(by_tenure["difference"], by_tenure["se"], DRIFT_LIMIT)
    worst = by_tenure.loc[by_tenure["difference"].abs().idxmax()].to_dict()
    assert beyond == 0, worst


@pytest.mark.slow
def test_people_with_a_condition_keep_their_own_cross_section(tables):
    """Adults with a condition (a long-term condition, common mental disorder, care need)
    against their own cross-section chances of the chains whose initial odds ratios name it
    (self-rated health on all three; mental disorder, care need and isolation on a long-term
    condition; isolation on mental disorder) at years 2, 5 and 10: within 1 point on every
    interval. Model 11 fits the rate ratios that carry these odds ratios
    (calibration/stationary.py); until then they were assumptions, and with model 11's odds
    ratios they let people with care need lose 14 points of fair or bad health against their
    cross-section in two years (20,000 tenants). Model 11: none beyond, the largest gap 1.3
    points (bad health with care need; a condition's standard error here is 0.1-0.2 points)."""
    by_group = group_summary(tables.groups)
    by_condition = by_group[by_group["group"] != "tenure"]
    assert {("health", "ltc"), ("health", "mental_health"), ("health", "care_need"),
            ("care_need", "ltc")} <= set(zip(by_condition["chain"], by_condition["group"], strict=True))
    beyond, _ = bands_against_limit(by_condition["difference"], by_condition["se"], DRIFT_LIMIT)
    worst = by_condition.loc[by_condition["difference"].abs().idxmax()].to_dict()
    assert beyond == 0, worst


def _strata_rows(cells: list[tuple[str, int, float, float]]) -> pd.DataFrame:
    """Strata rows of one band from (tenure, year, person-years, share with a condition)."""
    return pd.DataFrame([{"year": y, "sex": "female", "age_band": "20-24", "tenure": t, "fifth": 1,
                          "person_years": n, "ltc:none": n * (1 - p), "ltc:ltc": n * p}
                         for t, y, n, p in cells])


def test_standardisation_weights_each_stratum_by_its_year_0_person_years():
    """Owners (900 person-years at year 0) move +2 points and social renters (100) -10; the
    mix then turns to 500 / 500. Held at year 0's make-up the change is 0.9 x 2 + 0.1 x -10 =
    +0.8 points (as it is the band moves +7.6); its variance sums each stratum's binomial
    variance in both years times the squared weight."""
    rows = _strata_rows([("owner_occupied", 0, 900, 0.30), ("social_rented", 0, 100, 0.60),
                         ("owner_occupied", 2, 500, 0.32), ("social_rented", 2, 500, 0.50)])
    d = standardised_drift(rows, years=(2,)).set_index("state").loc["ltc"]
    assert d["change"] == pytest.approx(0.9 * 0.02 + 0.1 * -0.10)
    var = (0.9 ** 2 * (0.32 * 0.68 / 500 + 0.30 * 0.70 / 900)
           + 0.1 ** 2 * (0.50 * 0.50 / 500 + 0.60 * 0.40 / 100))
    assert d["se"] == pytest.approx(np.sqrt(var))
    assert d["kept"] == 1.0 and d["person_years"] == 1000


def test_a_stratum_empty_later_drops_out_and_the_rest_are_reweighted():
    rows = _strata_rows([("owner_occupied", 0, 600, 0.30), ("social_rented", 0, 200, 0.60),
                         ("rough_sleeping", 0, 200, 0.80),
                         ("owner_occupied", 5, 600, 0.33), ("social_rented", 5, 200, 0.58)])
    d = standardised_drift(rows, years=(5,)).set_index("state").loc["ltc"]
    assert d["kept"] == pytest.approx(0.8)
    assert d["change"] == pytest.approx(0.75 * 0.03 + 0.25 * -0.02)


def test_strata_count_each_adult_in_their_cell_a_twelfth_of_a_year_a_month():
    """Strata.add's cell index and Strata.frame's decoding agree: a fake population of
    adults and children counted for one month gives each adult's sex, band, tenure and
    fifth back, with their state."""
    rng = np.random.default_rng(4)
    n = 2_000
    pop = SimpleNamespace(alive=rng.random(n) < 0.95, age_years=rng.integers(0, 101, n),
                          female=rng.random(n) < 0.5, tenure=rng.integers(0, len(TENURES), n).astype(np.int8),
                          deprivation=rng.integers(1, 11, n).astype(np.int8),
                          states={"ltc": rng.integers(0, 2, n).astype(np.int8)})
    strata = Strata({"ltc": ["none", "ltc"]}, years=1)
    strata.add(SimpleNamespace(pop=pop), 0)
    got = strata.frame()
    adults = pop.alive & (pop.age_years >= 16)
    want = pd.DataFrame({"sex": np.where(pop.female, "female", "male"),
                         "age_band": np.array(CENSUS_AGE_LABELS)[
                             np.searchsorted(CENSUS_AGE_BANDS, pop.age_years, side="right") - 1],
                         "tenure": np.array(TENURES)[pop.tenure], "fifth": (pop.deprivation + 1) // 2,
                         "ltc": pop.states["ltc"]})[adults]
    keys = ["sex", "age_band", "tenure", "fifth"]
    expected = want.groupby(keys).agg(people=("ltc", "size"), ill=("ltc", "sum"))
    counted = got.set_index(keys)
    assert len(counted) == len(expected)
    assert np.allclose(counted.loc[expected.index, "person_years"] * 12, expected["people"])
    assert np.allclose(counted.loc[expected.index, "ltc:ltc"] * 12, expected["ill"])
