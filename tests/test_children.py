"""Children in households (issue 18, foundation): shares, numbers, ages, dwellings, ageing."""

import numpy as np
import pytest

from hhsim.core.resources import world_tree
from hhsim.world.children import ADULT_AGE, children_per_household, is_child, with_children
from hhsim.world.synthetic import generate, tenure_mix

WORLD = world_tree()


def _population(tenure: str, n: int = 20_000, seed: int = 1):
    adults = generate(n, tenure_mix({tenure: 1.0}), WORLD, np.random.default_rng(seed))
    return adults, with_children(adults, WORLD, np.random.default_rng(seed + 100))


@pytest.mark.parametrize("tenure, share", [("social_rented", 0.31), ("private_rented", 0.30),
                                           ("owner_occupied", 0.23)])
def test_share_of_households_with_children_and_children_per_household(tenure, share):
    adults, pop = _population(tenure)
    child = is_child(pop)
    households = adults.dwellings.n
    with_kids = np.unique(pop.dwelling[child]).size
    se = np.sqrt(share * (1 - share) / households)
    assert abs(with_kids / households - share) < 4 * se
    shares = children_per_household(WORLD)
    k = np.arange(1, shares.size + 1)
    mean, var = float(shares @ k), float(shares @ k**2 - (shares @ k) ** 2)
    assert abs(mean - 1.7) < 0.01  # ONS: about 1.7 children per family
    per = child.sum() / with_kids
    assert abs(per - mean) < 4 * np.sqrt(var / with_kids)


def test_children_are_0_to_15_share_the_household_dwelling_and_follow_the_adults():
    adults, pop = _population("social_rented", n=5_000)
    child = is_child(pop)
    assert not child[: adults.n].any() and child[adults.n:].all()
    assert pop.age_years[child].min() == 0 and pop.age_years[child].max() == ADULT_AGE - 1
    # roughly uniform over 0-15: each year holds about 1/16 of the children
    counts = np.bincount(pop.age_years[child], minlength=ADULT_AGE)
    expected = child.sum() / ADULT_AGE
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    np.testing.assert_array_equal(pop.age_months[: adults.n], adults.age_months)  # adults unchanged
    assert pop.household is pop.dwelling  # one household per dwelling, as the adults'
    assert set(pop.dwelling[child]) <= set(adults.dwelling)
    np.testing.assert_array_equal(pop.tenure[child], pop.dwellings.tenure[pop.dwelling[child]])
    np.testing.assert_array_equal(pop.hazards[child], pop.dwellings.hazards[pop.dwelling[child]])
    assert pop.alive[child].all() and np.all(pop.weight[child] == 1.0)


def test_children_carry_their_households_mean_weight_and_empty_homes_have_none():
    adults, _ = _population("social_rented", n=2_000)
    adults.weight[:] = np.arange(adults.n, dtype=np.float32) % 7 + 1
    adults.alive[adults.dwelling % 2 == 0] = False  # e.g. waiting-list households, not yet arrived
    pop = with_children(adults, WORLD, np.random.default_rng(5))
    child = is_child(pop)
    assert child.any() and np.all(pop.dwelling[child] % 2 == 1)
    d = pop.dwelling[child]
    live = adults.alive
    mean = (np.bincount(adults.dwelling[live], weights=adults.weight[live], minlength=adults.dwellings.n)
            / np.maximum(np.bincount(adults.dwelling[live], minlength=adults.dwellings.n), 1))
    np.testing.assert_allclose(pop.weight[child], mean[d], rtol=1e-6)


def test_homeless_households_have_no_children():
    for tenure in ("temporary_accommodation", "rough_sleeping"):
        _, pop = _population(tenure, n=500)
        assert not is_child(pop).any()


def test_a_child_turning_16_is_an_adult_from_that_month():
    _, pop = _population("social_rented", n=2_000)
    oldest = np.flatnonzero(is_child(pop))
    pop.age_months[oldest] = ADULT_AGE * 12 - 1
    assert is_child(pop)[oldest].all()
    pop.age_months[oldest] += 1
    pop.refresh_age()
    assert not is_child(pop)[oldest].any() and (pop.age_years[oldest] == ADULT_AGE).all()


def test_children_are_added_before_health_states_only():
    adults, _ = _population("social_rented", n=100)
    adults.states["x"] = np.zeros(adults.n, dtype=np.int8)
    with pytest.raises(ValueError):
        with_children(adults, WORLD, np.random.default_rng(0))
