"""No drift (issue 16): the default model holds England's cross-section as its people age."""

import pytest

from hhsim.core.resources import default_model_tree
from hhsim.studies.baseline.check import bands_against_limit
from hhsim.studies.baseline.drift import CHECK_YEARS, decile_drift, drift_tables, stable_drift


@pytest.fixture(scope="module")
def tables():
    """200,000 adults of England with their children, 11 years (about 20 s)."""
    return drift_tables(default_model_tree(), tenants=200_000, years=10, seed=3)


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


#: Issue 16 asks that no band move by more than 1 point (DRIFT_LIMIT), which model 9 does not
#: yet meet everywhere; this test holds the model to 3 points on each band's interval, so a
#: change that makes drift worse fails.
HELD_TO = 0.03


@pytest.mark.slow
def test_no_chain_drifts_beyond_three_points_in_any_age_band(drift):
    """Every adult chain's non-first states, each sex and five-year band at years 2, 5 and 10:
    no band's change is beyond 3 points on its 95% interval (change +- 1.96 se), the way
    docs/validation.md judges issue 16's 1-point limit. Model 3 moved care need by up to 21
    points and common mental disorder by 9; model 7 still by 5.2 (care need at 85+) and 4.2
    (long-term conditions at 20-24); model 8 by at most 1.9 in 500,000 tenants. Model 9 (500,000
    tenants, docs/validation.md): common mental disorder by up to 3.1 points (5 bands beyond 1
    point on their intervals) and isolation at 25-29 by 2.0 (2 bands); the other chains have no
    band beyond 1 point. Here (200,000) a band's standard error is 0.4-1.2 points, and men
    16-19 gain 3.8 points of common mental disorder by year 5 (se 0.65): calibration/stationary.py
    fits each band's onset to the drift of the people who started in it over 10 years, so the
    youngest band's rate answers for their twenties too, and children who turn 16 (entering
    well) are not in its population."""
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
def test_each_level_of_deprivation_keeps_its_bad_health_over_ten_years(tables):
    """Bad health of the most and least deprived fifths at 25-44, 45-64 and 65-79, year 10
    against year 0. Model 5's transitions had one gradient (1.05 per decile) for an initial
    one of 1.10: the gradient relaxed, the most deprived fifth's bad health at 65-79 falling
    2.5 points and the least deprived's rising about 1. Model 6 fits each transition's
    gradient by age (calibration/stationary.py): at most 0.8 points here; the test allows
    1.5 (a change's Monte-Carlo standard error is about 0.3-0.7 points)."""
    change = decile_drift(tables.census, "health", "bad", 10)
    assert len(change) == 6
    assert change["change"].abs().max() <= 0.015, change
