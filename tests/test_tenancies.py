"""Tenancies that turn over (hhsim.world.tenancies): a closed cohort is unchanged; an open
one keeps its age structure, turns over at the sourced rates, and keeps arms comparable."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.interventions import resolve
from hhsim.interventions.programme import EXIT_REASONS, QUEUE_REASONS
from hhsim.model.record import per_run_tables, run_record
from hhsim.model.simulation import HousingHealthModel, RunConfig
from hhsim.world.tenancies import DAYS_PER_MONTH, FLOWS, parse_tenancies

ROOT = Path(__file__).resolve().parent.parent
TENANTS = 20_000  # an open run of 120 months: about 2 s
BREAKS = [16, 25, 35, 45, 55, 65, 75, 85, 200]


def config(tenants: int = TENANTS, steps: int = 120, **kw) -> RunConfig:
    return RunConfig(model_tree=default_model_tree(), world_tree=kw.pop("world_tree", world_tree()),
                     tenants=tenants, tenure={"social_rented": 1.0}, steps=steps, seed=kw.pop("seed", 3),
                     **kw)


def shares(model: HousingHealthModel) -> tuple[np.ndarray, int]:
    """Age shares of the living tenants: adults who arrived as adults (children who grow up in
    the run are counted apart: test_grown_up_children_leave_home)."""
    ages = model.pop.age_years[model.pop.alive & ~model.tenancies.grew_up]
    return np.histogram(ages, BREAKS)[0] / ages.size, ages.size


@pytest.fixture(scope="module")
def open_run():
    model = HousingHealthModel(config(turnover=True))
    start = shares(model)
    model.run()
    return model, start, run_record(model, "2023/24")


def closed_record(world: dict) -> dict:
    """The record of a closed run (2,000 social renters, 24 months, seed 7)."""
    model = HousingHealthModel(config(tenants=2000, steps=24, seed=7, world_tree=world))
    model.run()
    return model, run_record(model, "2023/24")


def test_a_closed_cohort_does_not_depend_on_the_tenancy_rules():
    # Turnover off: whatever the tenancy parameters, the same records to the last digit (the
    # tenancy rule draws nothing and changes nothing; tests/test_pinned_results.py pins them).
    model, rec = closed_record(world_tree())
    other = copy.deepcopy(world_tree())
    t = other["world"]["tenancies"]
    t["move"]["social_rented"]["value"] = 0.05
    t["void_days"]["value"] = 200
    t["homeless_share"]["value"] = 0.9
    assert closed_record(other)[1] == rec
    assert not model.tenancies.active and not any(k.startswith("tenancy_") for k in rec)
    assert per_run_tables(model, "2023/24", rec)["tenancies"].empty


def test_the_age_structure_of_social_renters_stays_over_ten_years(open_run):
    model, (before, n0), _ = open_run
    after, n1 = shares(model)
    se = np.sqrt(before * (1 - before) / n0 + after * (1 - after) / n1)
    # 65-74 grows by about 1.7 points whatever the newcomers' ages (world.tenancies.age):
    # the starting 55-64 band is larger than mortality and turnover can thin; the other
    # bands stay within 4 standard errors (about 1 point)
    older = BREAKS.index(65)
    assert abs(after[older] - before[older]) < 0.025
    others = np.delete(np.arange(before.size), older)
    assert (np.abs(after - before)[others] < 4 * se[others]).all(), (before, after, se)
    ages = model.pop.age_years[model.pop.alive & ~model.tenancies.grew_up]
    assert abs(ages.mean() - 51.4) < 1.5


def test_grown_up_children_leave_home(open_run):
    """Children grow up in their homes; from 18 they leave at world.tenancies.leave_home a month,
    so after ten years few of the adults at home are grown-up children, none older than 25
    (children were at most 15 at the start)."""
    model, _, rec = open_run
    pop, t = model.pop, model.tenancies
    grown = pop.alive & t.grew_up & (pop.age_years >= 16)
    adults = pop.alive & (pop.age_years >= 16)
    assert rec["tenancy_left_home"] > 0 and pop.age_years[grown].max() <= 26
    assert grown.sum() / adults.sum() < 0.15  # 9.7% measured (20,000 social renters, seed 1)
    # nobody under 18 leaves home on their own: a child leaves only with its household
    alone = t.grew_up & (t.left_month >= 0) & (pop.age_years < 18)
    households_ended = np.isin(pop.dwelling[alone], np.flatnonzero(t.ended_month >= 0))
    assert households_ended.all()


def test_tenancies_end_voids_last_and_homeless_households_are_let_as_sourced(open_run):
    model, _, rec = open_run
    s = parse_tenancies(world_tree())
    homes = model.tenancies.stock.sum()
    let_months = homes * 120 - rec["tenancy_void_dwelling_months"]
    ended = sum(rec[f"tenancy_ended_{r}"] for r in ("move", "transfer", "eviction"))
    rate = s.rates[:, 2].sum()  # social_rented
    assert abs(ended / let_months - rate) < 3 * np.sqrt(rate / let_months)
    relets = (ended + rec["tenancy_ended_death"]) / (let_months / 12)
    assert 0.05 < relets < 0.065  # CORE 2023/24: 5.6% of homes relet a year
    lettings = rec["tenancy_lettings"]
    void_days = rec["tenancy_voids_let_months"] / lettings * DAYS_PER_MONTH
    p = DAYS_PER_MONTH / s.void_days
    se_days = np.sqrt(1 - p) / p / np.sqrt(lettings) * DAYS_PER_MONTH
    assert abs(void_days - s.void_days) < 3 * se_days + 2  # +2: voids still open at the end
    share = rec["tenancy_lettings_homeless"] / lettings
    assert abs(share - 0.27) < 3 * np.sqrt(0.27 * 0.73 / lettings)
    assert rec["tenancy_unlet_no_applicant"] == 0
    table = per_run_tables(model, "2023/24", rec)["tenancies"]
    assert list(table["year"]) == list(range(1, 11))
    assert set(FLOWS) <= set(table.columns)
    assert table["lettings"].sum() == lettings


def test_leavers_and_newcomers_are_counted_over_their_time_as_tenants(open_run):
    model, _, rec = open_run
    t = model.tenancies
    left = t.left_month >= 0
    arrived = t.arrived_month > 0
    assert left.any() and arrived.any()
    assert not model.pop.alive[left].any()
    assert not (left & (model.death_month >= 0)).any()  # leavers did not die here
    assert rec["population"] == t.ever_tenant.sum()
    assert rec["deaths"] == (model.death_month >= 0).sum()
    never = ~t.ever_tenant
    assert (model.ledger.reward["life_years"][never] == 0).all()
    stay = model.ledger.reward["life_years"]
    assert stay[left].max() <= 10.0 and stay[arrived].max() < 10.0


def test_arms_with_the_same_departures_get_the_same_households():
    gp = resolve({"type": "rate_ratio", "name": "gp", "eligibility": {"age": [16, 200]},
                  "effects": {"gp": {"target": "services.gp", "rate_ratio": 0.5}}}, "test")
    models = []
    for interventions in ((), (gp,)):
        m = HousingHealthModel(config(tenants=3000, steps=36, turnover=True, interventions=interventions))
        m.run()
        models.append(m)
    a, b = models
    assert np.array_equal(a.death_month, b.death_month)  # GP use does not change deaths
    assert np.array_equal(a.tenancies.arrived_month, b.tenancies.arrived_month)
    assert np.array_equal(a.pop.dwelling, b.pop.dwelling)
    assert (a.tenancies.arrived_month > 0).sum() > 50
    assert run_record(a, "2023/24")["use_gp"] > run_record(b, "2023/24")["use_gp"]


def test_newcomers_are_enrolled_by_an_intervention():
    iv = resolve({"type": "rate_ratio", "name": "all", "eligibility": {"age": [16, 200]},
                  "effects": {"gp": {"target": "services.gp", "rate_ratio": 0.9}}}, "test")
    m = HousingHealthModel(config(tenants=3000, steps=24, turnover=True, interventions=(iv,)))
    m.run()
    who, strength = m.intervention("all").strengths(23)
    adult_last_month = m.pop.age_months >= 16 * 12 + 1  # eligible when month 23 began
    newcomers = np.flatnonzero((m.tenancies.arrived_month > 0) & m.pop.alive & adult_last_month)
    assert newcomers.size > 20 and np.isin(newcomers, who[strength > 0]).all()
    leavers = np.flatnonzero(m.tenancies.left_month >= 0)
    assert not np.isin(leavers, who[strength >= 1]).any()


def test_turnover_is_refused_where_it_does_not_work_yet():
    with pytest.raises(HhsimError, match=r"population\.turnover"):
        HousingHealthModel(config(tenants=100, steps=2, turnover=True, cohort={"age": 60, "sex": "male"}))
    world = copy.deepcopy(world_tree())
    world["world"]["tenancies"]["void_days"]["value"] = 5
    with pytest.raises(HhsimError, match="void_days"):
        parse_tenancies(world)


def test_leavers_leave_a_programme_for_their_own_reason():
    support = resolve({"type": "personalised_support", "name": "support", "capacity": {"staff_fte": 3.0}},
                      "test")
    m = HousingHealthModel(config(tenants=3000, steps=36, turnover=True, interventions=(support,)))
    m.run()
    rec = run_record(m, "2023/24")
    left = rec["iv_support_left_tenancy_while_served"] + rec["iv_support_left_tenancy_waiting"]
    assert left > 0
    # left_tenancy_while_served and left_tenancy_waiting share one code
    assert EXIT_REASONS.index("left_tenancy_while_served") == QUEUE_REASONS.index("left_tenancy_waiting")
    code = EXIT_REASONS.index("left_tenancy_while_served")
    gone = np.flatnonzero(m.intervention("support").exit_reason == code)
    assert gone.size and (m.tenancies.left_month[gone] >= 0).all() and (m.death_month[gone] < 0).all()


def test_the_example_experiment_turns_over_and_stores_its_flows(tmp_path):
    from hhsim.api import run_experiment
    from hhsim.experiment.schema import read_experiment

    res = run_experiment(ROOT / "experiments" / "provider-turnover.toml", tmp_path / "out", workers=1,
                         tenants=600, months=24, replications=1)
    flows = res.table("tenancies")
    assert sorted(set(flows["run_id"])) == ["baseline__r0000", "repairs__r0000"]
    assert list(flows["year"].unique()) == [1, 2] and flows["lettings"].sum() > 0
    assert (res.records["tenancy_lettings"] > 0).all()
    with pytest.raises(HhsimError, match=r"population\.turnover"):
        read_experiment({"population": {"turnover": True, "cohort": {"age": 60, "sex": "male"}}})


def test_the_waiting_list_keeps_every_dwelling_attribute():
    """Appending the waiting list keeps the homes' type, build period, band, heating and
    low-income flag (they once fell back to their defaults: every home a warm house)."""
    from hhsim.world.population import DWELLING_ATTRIBUTES
    from hhsim.world.synthetic import generate, tenure_mix

    w = world_tree()
    pop = generate(3000, tenure_mix({"social_rented": 1.0}), w, np.random.default_rng(3))
    both = pop.extended(generate(500, tenure_mix({"social_rented": 1.0}), w, np.random.default_rng(4)))
    n = pop.dwellings.n
    for name in (*DWELLING_ATTRIBUTES, "low_income"):
        assert np.array_equal(getattr(both.dwellings, name)[:n], getattr(pop.dwellings, name))
    assert both.dwellings.fuel_poor[:n].mean() == pop.dwellings.fuel_poor.mean() > 0
