"""The census (issue 16): states and NHS use by current age, and entering a chain's ages."""

import numpy as np
import pytest

from hhsim.model.census import CENSUS_AGE_LABELS
from hhsim.model.record import run_record
from hhsim.model.simulation import LIFE_TABLE, HousingHealthModel

from conftest import config, run


@pytest.fixture(scope="module")
def census_run():
    """Two years of 4,000 social tenants with their children, census kept."""
    return run(tenants=4000, steps=24, seed=5, census=True)


def test_census_person_years_and_deaths_are_the_life_tables(census_run):
    """The census and the life table count the same living and dying, cut another way."""
    table = census_run.census.frame()
    life = dict(zip(LIFE_TABLE, census_run.life_table, strict=True))
    assert table["person_years"].sum() == pytest.approx(life["person_years"].sum(), rel=1e-6)
    assert table["deaths"].sum() == pytest.approx(life["deaths"].sum(), rel=1e-6)
    assert set(table["year"]) == {0, 1} and set(table["age_band"]) <= set(CENSUS_AGE_LABELS)


def test_census_states_split_each_cells_person_years(census_run):
    table = census_run.census.frame()
    for name, chain in census_run.health.chains.items():
        cols = [f"{name}:{s}" for s in chain.states]
        assert np.allclose(table[cols].sum(axis=1), table["person_years"])
    kids = table["age_band"].isin(CENSUS_AGE_LABELS[:4])  # under 16
    assert (table.loc[kids, "health:fair"] == 0).all() and (table.loc[kids, "health:bad"] == 0).all()
    assert (table.loc[~kids, "child_asthma:asthma"] == 0).all()


def test_census_activity_and_nhs_cost_add_up_to_the_run(census_run):
    """Each activity's census total is the ledger's; the census NHS cost is the record's."""
    table = census_run.census.frame()
    for activity in ("gp", "ae", "emergency_admissions", "emergency_bed_days", "child_gp"):
        assert table[activity].sum() == pytest.approx(census_run.ledger.totals[activity], rel=1e-6)
    record = run_record(census_run, "2023/24")
    assert table["nhs_cost"].sum() == pytest.approx(record["cost_nhs_undisc"], rel=1e-5)


def test_census_is_empty_unless_asked():
    model = run(tenants=300, steps=2, seed=1)
    assert model.census is None


def test_a_child_turning_16_takes_the_cross_section_of_16_year_olds():
    """Children entering the adult chains are drawn from the chains' initial distribution for
    16-19-year-olds (before model 4 they all started without conditions)."""
    model = HousingHealthModel(config(tenants=20_000, steps=1, seed=9))
    pop, health = model.pop, model.health
    kids = np.flatnonzero(pop.alive & (pop.age_years == 15))
    assert kids.size > 400
    pop.age_months[kids] = 16 * 12 - 1
    pop.refresh_age()
    model.step()
    entered = kids[pop.alive[kids] & (pop.age_years[kids] == 16)]
    for name, state in (("ltc", 1), ("mental_health", 1), ("health", 0)):
        share = (pop.states[name][entered] == state).mean()
        expected = health.chains[name].initial.chances(pop)[entered, state].mean()
        se = np.sqrt(expected * (1 - expected) / entered.size)
        assert abs(share - expected) < 4 * se + 0.01, (name, share, expected)
    assert (pop.states["ltc"][entered] == 1).any() and (pop.states["mental_health"][entered] == 1).any()
