"""The engine: analytic expectations, competing risks, de-averaging, common random numbers,
determinism and accounting identities. Statistical tolerances are 4 Monte-Carlo standard
errors (a false failure about once in 16,000 runs of a test)."""

import mesa
import numpy as np
import pandas as pd
import pytest

from hhsim.core.accounting import PAYERS, boundary_weights, discount_factor
from hhsim.core.randomness import Streams
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.health.model_file import calibrated_model
from hhsim.health.terms import product
from hhsim.model.record import run_record
from hhsim.model.simulation import HousingHealthModel
from hhsim.world.synthetic import england_mix, generate

from conftest import config, model_file, run

Z = 4.0


def cohort_matrix() -> np.ndarray:
    """Yearly transition matrix of tests/models/three_state_yearly.toml (healthy, sick, dead)."""
    return np.array([[0.88, 0.10, 0.02],
                     [0.20, 0.70, 0.10],
                     [0.00, 0.00, 1.00]])


def test_cohort_model_matches_its_markov_expectation():
    n, years = 100_000, 10
    m = HousingHealthModel(config(model_file("three_state_yearly.toml"), tenants=n, steps=years,
                                  seed=5, discount_costs=0.035, discount_effects=0.035))
    pi = np.array([1.0, 0.0, 0.0])
    P = cohort_matrix()
    occupancy = [pi]
    for _ in range(years):
        m.step()
        pi = pi @ P
        occupancy.append(pi)
        sim = np.array([(m.pop.alive & (m.pop.states["health"] == 0)).mean(),
                        (m.pop.alive & (m.pop.states["health"] == 1)).mean(),
                        (~m.pop.alive).mean()])
        se = np.sqrt(pi * (1 - pi) / n)
        assert np.all(np.abs(sim - pi) <= Z * se + 1e-12), (sim, pi)
    # QALYs: half-cycle correction, discounted from model start at 3.5%.
    w = boundary_weights("half-cycle", years)
    utility = np.array([1.0, 0.7, 0.0])
    expected = sum(w[b] * discount_factor(0.035, b) * occupancy[b] @ utility for b in range(years + 1))
    per_tenant = m.ledger.reward_disc["qalys"].astype(float)
    assert abs(per_tenant.mean() - expected) < Z * per_tenant.std() / np.sqrt(n)
    # A state cost of £1,000 per person-year while sick, half-cycle, discounted.
    expected_cost = sum(w[b] * discount_factor(0.035, b) * occupancy[b][1] * 1000 for b in range(years + 1))
    rec = run_record(m, "2023/24")
    cost = m.ledger.count_disc["care"].astype(float) * 1000
    assert abs(rec["cost_care"] / n - expected_cost) < Z * cost.std() / np.sqrt(n)


def test_competing_exits_share_one_total_hazard():
    n, a, b, dt = 200_000, 6.0, 3.0, 1 / 12
    m = HousingHealthModel(config(model_file("competing_monthly.toml"), tenants=n, steps=1))
    m.step()
    share = np.bincount(m.pop.states["c"], minlength=3) / n
    p_leave = 1 - np.exp(-(a + b) * dt)
    expected = np.array([1 - p_leave, p_leave * a / (a + b), p_leave * b / (a + b)])
    assert np.all(np.abs(share - expected) <= Z * np.sqrt(expected * (1 - expected) / n))
    # Converting each exit alone (p = 1 - exp(-r dt)) would give a visibly different split.
    naive = np.array([1 - np.exp(-a * dt), 1 - np.exp(-b * dt)])
    assert abs(naive.sum() - p_leave) > 10 * np.sqrt(p_leave / n)


def test_national_rates_are_reproduced_by_the_reference_population():
    model = calibrated_model(default_model_tree(), world_tree())
    rng = np.random.default_rng(99)
    pop = generate(200_000, england_mix(world_tree()), world_tree(), rng)
    model.initialise(pop, Streams(99, (5,), pop.n))
    gp = next(s for s in model.services if s.name == "gp").rate
    women_45_54 = np.flatnonzero(pop.alive & pop.female & (pop.age_years >= 45) & (pop.age_years < 55))
    rate = gp.evaluate(pop, women_45_54)
    # Source: 3.9 GP consultations a year for women 45-54 (default_model.toml).
    assert abs(rate.mean() / 3.9 - 1) < 0.03
    # The test has teeth: the rate ratios average well above 1 in that group.
    assert product(gp.terms, pop, women_45_54).mean() > 1.15
    # Mortality: the life table's hazard, for men aged 70-74 (a rate shared by every state
    # of the health chain must be de-averaged once, not once per state).
    men_70s = np.flatnonzero(pop.alive & ~pop.female & (pop.age_years >= 70) & (pop.age_years < 75))
    life_table = default_model_tree()["mortality"]["life_table"]
    qx = np.array(life_table["value"][0])
    table = -np.log1p(-qx[pop.age_years[men_70s] - life_table["first_age"]])
    assert abs(model.mortality.evaluate(pop, men_70s).mean() / table.mean() - 1) < 0.03


def test_raising_one_tenants_rate_leaves_every_other_tenant_unchanged():
    base = run(tenants=3000, steps=24, seed=4)
    m = HousingHealthModel(config(tenants=3000, steps=24, seed=4))
    for name in ("services.gp", "chains.mental_health.transitions.onset",
                 "hospital.admissions.emergency"):
        effect = np.ones(m.pop.n, dtype=np.float32)
        effect[0] = 5.0
        m.effects[name] = effect
    m.run()
    others = np.arange(1, m.pop.n)
    for name in base.ledger.count:
        assert np.array_equal(base.ledger.count[name][others], m.ledger.count[name][others]), name
    for chain in base.pop.states:
        assert np.array_equal(base.pop.states[chain][others], m.pop.states[chain][others])
    changed = any(base.ledger.count[k][0] != m.ledger.count[k][0] for k in base.ledger.count)
    assert changed or base.pop.states["mental_health"][0] != m.pop.states["mental_health"][0]


def test_same_seed_same_run_and_different_seed_different_run():
    a = run_record(run(tenants=1500, steps=12, seed=10), "2023/24")
    b = run_record(run(tenants=1500, steps=12, seed=10), "2023/24")
    c = run_record(run(tenants=1500, steps=12, seed=11), "2023/24")
    assert a == b
    assert a["nhs_cost"] != c["nhs_cost"]


def test_mesa_generator_never_feeds_tenant_outcomes():
    m = HousingHealthModel(config(tenants=1500, steps=12, seed=10))
    assert isinstance(m, mesa.Model)
    m.rng.random(1000)  # consume Mesa's own streams
    m.random.random()
    m.run()
    assert run_record(m, "2023/24") == run_record(run(tenants=1500, steps=12, seed=10), "2023/24")


def test_accounting_identities(default_run):
    m = default_run
    rec = run_record(m, "2023/24")
    n = m.pop.n
    assert rec["deaths"] + m.pop.alive.sum() == n
    for payer in PAYERS:
        parts = [rec[f"cost_{a}"] for a, act in m.activities.items()
                 if act.unit_cost is not None and act.payer == payer]
        assert rec[f"cost_{payer}"] == pytest.approx(sum(parts), rel=1e-12)
    assert rec["nhs_cost"] == rec["cost_nhs"]
    assert all(v >= 0 for k, v in rec.items() if k.startswith(("use_", "cost_")))
    assert rec["qalys_undisc"] <= rec["life_years_undisc"] + 1e-6
    assert rec["good_health_years_undisc"] <= rec["life_years_undisc"] + 1e-6
    assert rec["qalys"] < rec["qalys_undisc"]  # discounting lowers a positive stream
    assert rec["life_years_undisc"] <= n * m.config.steps / 12 + 1e-6
    assert rec["readmissions_30d"] <= rec["admissions"]
    monthly = m.datacollector.get_model_vars_dataframe()
    assert len(monthly) == m.config.steps
    alive = np.concatenate([[n], monthly["alive"].to_numpy()])
    assert np.array_equal(alive[:-1] - monthly["deaths"].to_numpy(), alive[1:])
    chains = m.health.chains
    counted = {chain: monthly[[f"{chain}:{s}" for s in c.states]].sum(axis=1) for chain, c in chains.items()}
    for chain, c in chains.items():  # a chain counts the living of its ages
        within = counted[chain] <= monthly["alive"] + 1e-9 if c.ages else counted[chain] == monthly["alive"]
        assert within.all()
    # adults (16+) and children (under 16) are everyone alive, every month
    assert np.allclose(counted["health"] + counted["child_asthma"], monthly["alive"])
    assert (counted["child_asthma"] > 0).all() and (counted["child_asthma"].diff().dropna() <= 1e-9).all()


def test_profiled_rates_equal_plain_evaluation(default_run):
    m = default_run
    pop, idx = m.pop, np.arange(0, m.pop.n, 3)
    for rate in [*m.health.rates, m.health.utility]:
        fast = rate.evaluate(pop, idx)
        saved, pop.static_profile = pop.static_profile, None
        try:
            slow = rate.evaluate(pop, idx)
        finally:
            pop.static_profile = saved
        np.testing.assert_allclose(fast, slow, rtol=1e-5, err_msg=rate.name)


def test_baseline_rates_match_their_inputs_on_a_national_population():
    """A one-year run of an England-mix population of adults uses services at about the national
    rate (children: test_child_health)."""
    m = run(tenants=40_000, steps=12, seed=21, tenure={"owner_occupied": 0.65, "private_rented": 0.19,
                                                        "social_rented": 0.16}, children=False)
    person_years = m.ledger.reward["life_years"].sum()
    rec = run_record(m, "2023/24")
    # Sources: 0.44 A&E attendances per person-year (all ages, 2022/23), adults about 0.44-0.5;
    # 0.109 emergency admissions per person-year (all ages, 2017/18), adults somewhat higher.
    assert 0.35 < rec["use_ae"] / person_years < 0.60
    assert 0.08 < rec["use_emergency_admissions"] / person_years < 0.16
    deaths_per_year = rec["deaths"] / person_years
    # England: about 560,000 deaths a year among 46m adults (1.2%); 4 SE of 480 deaths is 18%.
    assert 0.0100 < deaths_per_year < 0.0145


def test_recent_use_is_the_last_twelve_months_of_use():
    m = HousingHealthModel(config(tenants=3000, steps=30, seed=8))
    for _ in range(18):
        m.step()
    gp_then = m.ledger.count["gp"].astype(int)
    types = [f"{t.name}_admissions" for t in m.health.admissions]
    adm_then = sum(m.ledger.count[t].astype(int) for t in types)
    for _ in range(12):
        m.step()
    recent = m.pop.recent_use
    gp_year = m.ledger.count["gp"].astype(int) - gp_then
    adm_year = sum(m.ledger.count[t].astype(int) for t in types) - adm_then
    # Counts are capped at 15 a month: compare tenants who cannot have reached the cap.
    low = gp_year <= 15
    assert low.mean() > 0.9 and gp_year.max() > 0
    assert np.array_equal(recent.total("gp")[low], gp_year[low])
    assert np.array_equal(recent.total("admissions"), adm_year)
    assert set(recent.services) == {"gp", "ae", "admissions"}


def test_the_life_table_adds_up_to_the_run(default_run):
    from hhsim.model.record import life_table

    m = default_run
    lt = life_table(m)
    rec = run_record(m, "2023/24")
    assert lt["deaths"].sum() == pytest.approx(rec["deaths"])
    monthly = m.datacollector.get_model_vars_dataframe()
    alive_at_start = np.concatenate([[m.pop.n], monthly["alive"].to_numpy()[:-1]])
    assert lt["person_years"].sum() == pytest.approx(alive_at_start.sum() / 12)  # whole steps
    assert (lt["good_health_years"] <= lt["person_years"] + 1e-9).all()
    assert set(lt["decile"]) <= set(range(1, 11)) and set(lt["sex"]) == {"male", "female"}
    # person_years by sex and age (the check table's denominator) is the life table summed.
    by_sex_age = lt.groupby(["sex", "age"])["person_years"].sum()
    assert by_sex_age.loc["female"].sum() == pytest.approx(m.person_years[1].sum())
    # Deaths fall on the ages and deciles of those who died (at the start of their step).
    assert lt.groupby("age")["deaths"].sum().idxmax() >= 60


def test_life_expectancy_of_a_constant_hazard_is_its_inverse():
    from hhsim.analysis.life_expectancy import CHILD_SURVIVAL, START_AGE, life_table_expectancies

    m = 0.02  # deaths per person-year at every age: e(16) = 1 / m = 50 years
    ages = np.arange(16, 101)
    table = pd.DataFrame({"sex": "female", "decile": 3, "age": ages, "person_years": 1000.0,
                          "good_health_years": 400.0, "deaths": 1000.0 * m})
    row = life_table_expectancies(table).iloc[0]
    assert row["le_16"] == pytest.approx(1 / m, rel=1e-12)
    assert row["hle_16"] == pytest.approx(0.4 / m, rel=1e-12)
    assert row["le_birth"] == pytest.approx(CHILD_SURVIVAL * (START_AGE + 50) + (1 - CHILD_SURVIVAL) * 8)
