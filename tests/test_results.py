"""Results by group, weights, price years and the check table."""

import numpy as np
import pytest

from hhsim.core.resources import cost_index
from hhsim.health.checks import run_checks
from hhsim.model.groups import group_table
from hhsim.model.record import run_record
from hhsim.model.simulation import HousingHealthModel

from conftest import config, run

ENGLAND = {"owner_occupied": 0.65, "private_rented": 0.19, "social_rented": 0.16}


def test_groups_add_up_to_the_run_totals(default_run):
    rec = run_record(default_run, "2023/24")
    g = group_table(default_run, "2023/24")
    assert set(g["dimension"]) >= {"deprivation_decile", "age_band", "sex", "tenure", "ltc", "health"}
    for outcome in ("population", "cost_nhs", "nhs_cost", "qalys", "good_health_years", "deaths",
                    "admissions"):
        totals = g[g["outcome"] == outcome].groupby("dimension")["value"].sum()
        expected = rec["population"] if outcome == "population" else rec[outcome]
        assert np.allclose(totals.to_numpy(), expected, rtol=1e-9), outcome
    # Deprivation matters in the default model: the most deprived decile dies younger.
    dec = g[g["dimension"] == "deprivation_decile"].pivot(index="group", columns="outcome", values="value")
    rate = dec["deaths"] / dec["population"]
    assert rate["1"] > rate["10"]


def test_weights_scale_totals_without_changing_the_simulation():
    a = HousingHealthModel(config(tenants=1500, steps=12, seed=3))
    b = HousingHealthModel(config(tenants=1500, steps=12, seed=3))
    b.pop.weight[:] = 2.5
    a.run()
    b.run()
    ra, rb = run_record(a, "2023/24"), run_record(b, "2023/24")
    for key in ("population", "nhs_cost", "qalys", "deaths", "use_gp"):
        assert rb[key] == pytest.approx(2.5 * ra[key], rel=1e-6)


def test_costs_are_uprated_to_the_chosen_price_year(default_run):
    index = cost_index()
    r23 = run_record(default_run, "2023/24")
    r24 = run_record(default_run, "2024/25")
    factor = index["2024/25"] / index["2023/24"]
    for key in ("cost_gp", "cost_emergency_bed_days", "nhs_cost", "cost_social_care"):
        assert r24[key] == pytest.approx(r23[key] * factor, rel=1e-12)
    assert r24["qalys"] == r23["qalys"]


def test_check_table_matches_inputs_for_a_national_population():
    m = run(tenants=100_000, steps=12, seed=22, tenure=ENGLAND)
    checks = run_checks(m, run_record(m, "2023/24")).set_index("check")
    for check in ("gp per person-year", "ae per person-year", "ambulance per person-year",
                  "ltc = ltc at start", "health = bad at start", "prevalence of damp hazard"):
        assert abs(checks.loc[check, "ratio"] - 1) < 0.05, check
    deaths = checks.loc["deaths per person-year"]
    # About 1,200 deaths: 4 standard errors of a Poisson count is 12%.
    assert abs(deaths["ratio"] - 1) < 0.12
    # The social-rented population is sicker than the national inputs for its age and sex.
    social = run(tenants=20_000, steps=12, seed=22)
    social_checks = run_checks(social, run_record(social, "2023/24")).set_index("check")
    assert social_checks.loc["gp per person-year", "ratio"] > 1.05
