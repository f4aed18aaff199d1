"""Hazards that come and go (hhsim.world.hazard_dynamics) and the dwelling attributes that
drive them: stationary prevalence by tenure over ten years, the solved onset rates, the
repair-duty lever, stock-file columns and common random numbers."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import apply_overrides
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.model.simulation import HousingHealthModel
from hhsim.world.hazard_dynamics import DAYS_PER_MONTH, solve_base_rates
from hhsim.world.population import ENERGY_BANDS, HAZARD_BITS, HAZARDS, TENURES
from hhsim.world.stock import load_stock

from conftest import config

SETTLED = ("owner_occupied", "private_rented", "social_rented")
MIX = {"owner_occupied": 0.34, "private_rented": 0.33, "social_rented": 0.33}
CHAINS = {name: tuple(c["states"]) for name, c in default_model_tree()["chains"].items()}
SOCIAL = TENURES.index("social_rented")


def target(hazard: str, tenure: str) -> float:
    return world_tree()["world"]["hazards"][hazard][tenure]["value"]


@pytest.fixture(scope="module")
def ten_years() -> tuple[HousingHealthModel, dict[str, np.ndarray]]:
    """30,000 tenants (about 19,000 dwellings, a third in each settled tenure), 120 months;
    the prevalence of each hazard by tenure at the start and at the end of every year."""
    m = HousingHealthModel(config(tenants=30_000, tenure=MIX, steps=120, seed=7))
    seen = {h: [m.housing.prevalence(h)] for h in HAZARDS}
    for _ in range(10):
        for _ in range(12):
            m.step()
        for h in HAZARDS:
            seen[h].append(m.housing.prevalence(h))
    return m, {h: np.array(v) for h, v in seen.items()}


def test_prevalence_by_tenure_is_stationary_at_the_survey_figures_for_ten_years(ten_years):
    """Every yearly prevalence (11 looks x 3 hazards x 3 tenures = 99) within 4 standard
    errors of the target, SE = sqrt(p (1 - p) / dwellings of the tenure) (dwellings are
    independent; their differing chances only make the variance smaller). 4, not 3: with 99
    looks, 3 SE would fail by chance about one run in four (1 - 0.9973^99), 4 SE one in 160.
    The 10-year mean over the yearly looks is within 3 SE of the target as well."""
    m, seen = ten_years
    dwellings = np.bincount(m.pop.dwellings.tenure, minlength=len(TENURES))
    for h in HAZARDS:
        for tenure in SETTLED:
            t = TENURES.index(tenure)
            p = target(h, tenure)
            se = np.sqrt(p * (1 - p) / dwellings[t])  # every dwelling has weight 1
            assert np.all(np.abs(seen[h][:, t] - p) < 4 * se), (h, tenure, seen[h][:, t], p, se)
            assert abs(seen[h][:, t].mean() - p) < 3 * se, (h, tenure, seen[h][:, t].mean(), p, se)


def test_onset_base_rates_are_solved_exactly(ten_years):
    m = ten_years[0]
    for h in HAZARDS:
        got = m.housing.stationary_prevalence(h)
        for tenure in SETTLED:
            assert got[TENURES.index(tenure)] == pytest.approx(target(h, tenure), abs=1e-9)


def test_attributes_drive_onset_and_fuel_poverty_matches_its_share(ten_years):
    m = ten_years[0]
    d = m.pop.dwellings
    rr = m.housing.onset_rates("damp") / m.housing.base["damp"][m.pop.dwellings.tenure]
    worst, best = d.energy_band == ENERGY_BANDS.index("F_G"), d.energy_band == ENERGY_BANDS.index("A_C")
    assert rr[worst].mean() > 2 * rr[best].mean()
    for tenure in SETTLED:
        t = d.tenure == TENURES.index(tenure)
        share = world_tree()["world"]["fuel_poverty"][tenure]["value"]
        assert abs(d.fuel_poor[t].mean() - share) < 3 * np.sqrt(share * (1 - share) / t.sum())
        assert not d.fuel_poor[t & best].any()  # LILEE: a band A-C home is never fuel poor


def test_overcrowded_homes_get_damp_half_as_often_again_at_the_survey_share(ten_years):
    """Overcrowding (EHS 2022-23: 1% / 5% / 8% of owners / private / social renters) raises
    damp's onset rate 1.5 times (world.hazard_dynamics.damp.onset_rate_ratio.overcrowded),
    everything else equal; it does not move excess cold or falls."""
    m = ten_years[0]
    d = m.pop.dwellings
    for tenure, share in (("owner_occupied", 0.01), ("private_rented", 0.05), ("social_rented", 0.08)):
        t = d.tenure == TENURES.index(tenure)
        assert abs(d.overcrowded[t].mean() - share) < 3 * np.sqrt(share * (1 - share) / t.sum())
    settings = {s.hazard: s for s in m.housing.settings}
    crowded = copy.deepcopy(d)
    crowded.overcrowded[:] = True
    roomy = copy.deepcopy(d)
    roomy.overcrowded[:] = False
    for hazard, ratio in (("damp", 1.5), ("excess_cold", 1.0), ("falls", 1.0)):
        s = settings[hazard]
        assert np.allclose(s.onset_ratio(crowded) / s.onset_ratio(roomy), ratio)


def test_base_rates_solve_a_closed_form_case():
    rr, tenure = np.array([1.0, 1.0, 3.0]), np.array([SOCIAL] * 3)
    months = np.full(len(TENURES), 6.0)
    prevalence = np.zeros(len(TENURES))
    prevalence[SOCIAL] = 0.07
    b = solve_base_rates(rr, tenure, months, prevalence)[SOCIAL]
    x = b * rr * 6.0
    assert np.mean(x / (1 + x)) == pytest.approx(0.07, abs=1e-12)
    # Identical dwellings (a tiny population): lambda = p / ((1 - p) D).
    one = solve_base_rates(np.ones(2), tenure[:2], months, prevalence)[SOCIAL]
    assert one == pytest.approx(0.07 / (0.93 * 6.0), rel=1e-12)


def duty_runs(duty: float, steps: int, seed: int = 11) -> HousingHealthModel:
    world = apply_overrides(world_tree(), {"world.hazard_dynamics.damp.duty_days.social_rented": duty})
    m = HousingHealthModel(config(world_tree=world, tenants=30_000, steps=steps, seed=seed))
    m.run()
    return m


def test_a_repair_duty_lowers_damp_to_the_predicted_prevalence():
    m = duty_runs(21, 60)
    s = next(x for x in m.housing.settings if x.hazard == "damp")
    observed = s.report_months[SOCIAL] + s.response_months[SOCIAL]
    capped = s.report_months[SOCIAL] + 21 / DAYS_PER_MONTH
    # Onset rates as solved without the duty; the formula with the capped response time.
    lam = m.housing.onset_rates("damp")
    predicted = np.mean(lam * capped / (1 + lam * capped))
    assert np.mean(lam * observed / (1 + lam * observed)) == pytest.approx(0.07, abs=1e-9)
    assert m.housing.stationary_prevalence("damp")[SOCIAL] == pytest.approx(predicted, rel=1e-12)
    assert predicted < 0.07 * 0.7
    n = m.pop.dwellings.n
    got = m.housing.prevalence("damp")[SOCIAL]
    assert abs(got - predicted) < 3 * np.sqrt(predicted * (1 - predicted) / n), (got, predicted)


def test_arms_share_onsets_where_no_intervention_acts():
    from hhsim.interventions import resolve

    repairs = resolve({"type": "home_repairs", "name": "repairs"}, "test")
    base = HousingHealthModel(config(tenants=4000, steps=36, seed=5))
    treated = HousingHealthModel(config(tenants=4000, steps=36, seed=5, interventions=(repairs,)))
    assert np.array_equal(base.pop.dwellings.hazards, treated.pop.dwellings.hazards)
    base.run()
    treated.run()
    touched = treated.intervention("repairs").ordered_at >= 0
    assert touched.any() and (~touched).any()
    same = base.pop.dwellings.hazards[~touched] == treated.pop.dwellings.hazards[~touched]
    assert same.all()
    assert base.housing.counts["onsets_damp"] > 0


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stock.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_stock_columns_give_dwelling_attributes_and_fill_blanks(tmp_path):
    path = write(tmp_path, "dwelling_id,age,tenure,imd_decile,dwelling_type,build_period,energy_band,sap,"
                           "heating,low_income,damp\n"
                           "D1,40,social,2,flat,pre-1919,F,,other,yes,yes\n"
                           "D1,38,social,2,flat,pre-1919,F,,other,yes,yes\n"
                           "D2,70,social,5,bungalow,1945_1980,,60,central,no,\n"
                           "D3,50,private,5,,,,,,,no\n")
    pop, _, report = load_stock(path, world_tree(), CHAINS, np.random.default_rng(0))
    d = pop.dwellings
    assert d.dwelling_type.tolist()[:2] == [1, 2] and d.build_period.tolist()[:2] == [0, 2]
    assert d.energy_band.tolist()[:2] == [3, 1] and d.heating.tolist()[:2] == [1, 0]
    assert d.low_income.tolist()[:2] == [True, False] and d.fuel_poor.tolist()[:2] == [True, False]
    assert report.hazards_given.tolist() == [HAZARD_BITS["damp"], 0, HAZARD_BITS["damp"]]
    assert "blank for 1 of 3 dwellings" in report.filled["dwelling_type"]


@pytest.mark.parametrize("column, cell, expected", [
    ("dwelling_type", "castle", "'castle' is not a dwelling type (fix: give one of: house, flat, bungalow"),
    ("energy_band", "H", "'H' is not an EPC band (fix: give the EPC energy efficiency band, A to G"),
    ("sap", "120", "'120' is outside 1 to 100 (fix: give the SAP energy efficiency rating"),
    ("build_period", "1066", "'1066' is not a build period"),
    ("heating", "fire", "'fire' is not a heating type"),
    ("low_income", "maybe", "'maybe' is not yes or no"),
])
def test_a_bad_attribute_is_a_one_line_error_naming_line_and_column(tmp_path, column, cell, expected):
    path = write(tmp_path, f"age,tenure,imd_decile,{column}\n40,social,2,{cell}\n")
    with pytest.raises(HhsimError) as err:
        load_stock(path, world_tree(), CHAINS, np.random.default_rng(0))
    message = str(err.value)
    assert "\n" not in message
    assert f"line 2, column {column}: {expected}" in message


def test_a_stock_files_hazards_are_kept_at_the_start_and_set_its_level(tmp_path):
    # 300 social dwellings: the first 200 surveyed, half of them damp; 100 not surveyed.
    rows = "".join(f"D{i},40,social,2,{('yes' if i % 2 else 'no') if i < 200 else ''}\n" for i in range(300))
    path = write(tmp_path, "dwelling_id,age,tenure,imd_decile,damp\n" + rows)
    m = HousingHealthModel(config(stock=str(path), tenants=300))
    damp = (m.pop.dwellings.hazards & HAZARD_BITS["damp"]) != 0
    assert damp[:200].tolist() == [bool(i % 2) for i in range(200)]
    # The onset rate keeps the file's level: half the surveyed dwellings are damp.
    assert m.housing.target["damp"][SOCIAL] == 0.5
    s = next(x for x in m.housing.settings if x.hazard == "damp")
    x = m.housing.onset_rates("damp")[:200] * (s.report_months + s.response_months)[SOCIAL]
    assert np.mean(x / (1 + x)) == pytest.approx(0.5, abs=1e-9)
    assert 0.3 < damp[200:].mean() < 0.7  # blank cells follow (100 dwellings)


def test_bad_dynamics_parameters_are_one_line_errors():
    world = apply_overrides(world_tree(), {"world.hazard_dynamics.damp.report_months.social_rented": 0})
    with pytest.raises(HhsimError, match=r"^world\.hazard_dynamics\.damp\.report_months\.social_rented: "
                                         r"must be above 0 months"):
        HousingHealthModel(config(world_tree=world, tenants=50, steps=1))
    world = apply_overrides(world_tree(), {"world.fuel_poverty.social_rented": 0.6})
    with pytest.raises(HhsimError, match=r"^world\.fuel_poverty\.social_rented: 0\.6 is more than"):
        HousingHealthModel(config(world_tree=world, tenants=50, steps=1))
