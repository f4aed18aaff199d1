"""Children in the default population (issue 18): their rules, their results, and adults unchanged."""

import numpy as np
import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.randomness import Streams
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.health.model_file import calibrated_model, compile_model
from hhsim.model.groups import group_table
from hhsim.model.simulation import HousingHealthModel
from hhsim.world.children import is_child, with_children
from hhsim.world.population import HAZARD_BITS
from hhsim.world.synthetic import england_mix, generate

from conftest import config, run

CHILD_UTILITY = default_model_tree()["utility"]["child_baseline"]["value"]  # 0.95 since model 10


@pytest.fixture(scope="module")
def england():
    """The calibrated default model and 150,000 adults of England with their children."""
    w = world_tree()
    model = calibrated_model(default_model_tree(), w)
    pop = generate(150_000, england_mix(w), w, np.random.default_rng(11))
    pop = with_children(pop, w, np.random.default_rng(12))
    model.initialise(pop, Streams(11, (1,), pop.n))
    return model, pop


def test_child_rates_reproduce_their_sources_over_england(england):
    """De-averaged over England's children, each child rate is its source's national rate."""
    model, pop = england
    services = {s.name: s.rate for s in model.services}
    admission = next(t.rate for t in model.admissions if t.name == "child_emergency")
    ages = pop.age_years
    for lo, hi, gp, ae, adm in [(1, 5, 2.368, 0.497, 0.123), (5, 10, 1.218, 0.249, 0.039),
                                (10, 15, 1.074, 0.297, 0.034)]:
        kids = np.flatnonzero(pop.alive & (ages >= lo) & (ages < hi))
        assert kids.size > 5000
        for rate, source in ((services["child_gp"], gp), (services["child_ae"], ae), (admission, adm)):
            assert rate.evaluate(pop, kids).mean() == pytest.approx(source, rel=0.03)
    # HSE 2018: 10% of children 0-15 have diagnosed asthma
    child = is_child(pop)
    asthma = pop.states["child_asthma"][child] == 1
    assert asthma.mean() == pytest.approx(0.10, abs=4 * np.sqrt(0.09 / child.sum()) + 0.005)


def test_adult_rules_never_apply_to_children_nor_child_rules_to_adults(england):
    model, pop = england
    child = is_child(pop)
    for s in model.services:
        rate = s.rate.evaluate(pop)
        assert (rate[child] == 0).all() if not s.name.startswith("child_") else (rate[~child] == 0).all()
    for t in model.admissions:
        rate = t.rate.evaluate(pop)
        assert (rate[child] == 0).all() if t.name != "child_emergency" else (rate[~child] == 0).all()
    for name in ("ltc", "mental_health", "care_need", "isolation", "health"):
        assert (pop.states[name][child] == 0).all()  # children hold adult chains' first states
    assert (pop.states["child_asthma"][~child] == 0).all()
    # children's utility is utility.child_baseline (0.95); adults' comes from the Ara & Brazier norms
    assert np.allclose(model.utility_of(pop)[child], CHILD_UTILITY)


def test_damp_and_cold_raise_childrens_asthma_onset_by_their_rate_ratios(england):
    model, pop = england
    onset = model.chains["child_asthma"].exits[0][0].rate
    kids = np.flatnonzero(is_child(pop) & (pop.age_years >= 1) & (pop.states["child_asthma"] == 0))
    rate = onset.evaluate(pop, kids).astype(float)
    hazards = pop.hazards[kids]
    damp = (hazards & HAZARD_BITS["damp"]) != 0
    cold = (hazards & HAZARD_BITS["excess_cold"]) != 0
    same = pop.age_years[kids] >= 6  # the 6-11 and 12-15 rates; compare within a band
    band = same & (pop.age_years[kids] < 12) & (pop.deprivation[kids] > 0)
    plain = rate[band & ~damp & ~cold].mean()
    assert rate[band & damp & ~cold].mean() / plain == pytest.approx(1.48, rel=1e-4)
    assert rate[band & cold & ~damp].mean() / plain == pytest.approx(1.75, rel=1e-4)


def test_adults_are_the_same_with_or_without_children():
    """Children have slots and random numbers of their own: every adult's path is unchanged."""
    without = run(tenants=2500, steps=36, seed=5, children=False)
    with_ = run(tenants=2500, steps=36, seed=5)
    n = without.pop.n
    assert with_.simulated["children"] > 600 and with_.simulated["tenants"] == n
    assert np.array_equal(without.pop.alive, with_.pop.alive[:n])
    for chain in without.pop.states:
        assert np.array_equal(without.pop.states[chain], with_.pop.states[chain][:n])
    for name, counts in without.ledger.count.items():
        if counts.size > 1:
            assert np.array_equal(counts, with_.ledger.count[name][:n]), name
    still_child = (np.arange(with_.pop.n) >= n) & is_child(with_.pop)  # children throughout
    assert with_.ledger.count["child_gp"][still_child].sum() > 0
    assert with_.ledger.count["gp"][still_child].sum() == 0


def test_children_have_a_band_of_their_own_in_results_by_group():
    m = run(tenants=2000, steps=12, seed=6)
    table = group_table(m, "2023/24")
    bands = table[table["dimension"] == "age_band"].pivot(index="group", columns="outcome", values="value")
    kids = bands.loc["0-15"]
    assert kids["population"] == pytest.approx(m.simulated["children"])
    assert kids["admissions"] > 0 and kids["nhs_cost"] > 0 and kids["qalys"] > 0
    # children's utility is child_baseline; the few who turn 16 in the year then have adults' (0.93-0.96)
    assert kids["qalys_undisc"] == pytest.approx(CHILD_UTILITY * kids["life_years_undisc"], rel=2e-3)


def test_children_need_a_model_that_describes_them_and_no_cohort():
    with pytest.raises(HhsimError, match=r"population\.children"):
        HousingHealthModel(config(_adult_only(), children=True))
    with pytest.raises(HhsimError, match=r"population\.children"):
        HousingHealthModel(config(children=True, cohort={"age": 60, "sex": "male"}))


def _adult_only() -> dict:
    tree = {**default_model_tree()}  # a shallow copy: the parsed default is shared
    tree["model"] = {k: v for k, v in tree["model"].items() if k != "children"}
    compile_model(tree)
    return tree
