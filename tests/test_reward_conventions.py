"""Reward timings ``both-ends``, ``simpson`` and given weights: their boundary weights, exact
closed-form values in cohort mode, the model year of each part, and the microsimulation
converging to cohort mode (within 3 per-person standard errors, fixed seeds)."""

import math

import numpy as np
import pytest

from hhsim.core.accounting import BoundaryWeights, boundary_weights, reward_parts
from hhsim.core.errors import HhsimError
from hhsim.core.resources import world_tree
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model
from hhsim.model.simulation import HousingHealthModel

from conftest import config, model_file

Z = 3.0
A, M, C = 0.25, 0.125, 0.5  # per year: well -> sick, well -> dead, sick -> dead
R_EFFECTS, R_COSTS = 0.035, 0.06
UTILITY_SICK, COST_SICK = 0.5, 1000.0  # utility multiplier; £ per person-year


def test_both_ends_counts_every_boundary_for_a_whole_step():
    for steps in range(1, 8):
        assert reward_parts("both-ends", steps) == [[(1.0, b)] for b in range(steps + 1)]


@pytest.mark.parametrize("steps", range(1, 14))
def test_simpson_weights_integrate_cubics_exactly_and_give_each_cycle_one_step(steps):
    w = boundary_weights("simpson", steps)
    if steps % 2 == 0:  # 1, 4, 2, 4, ..., 4, 1 thirds of a step
        expected = np.array([1.0] + [4.0 if b % 2 else 2.0 for b in range(1, steps)] + [1.0]) / 3
        assert np.allclose(w, expected, rtol=0, atol=1e-15)
    elif steps > 1:  # ... then 3, 9, 9, 3 eighths over the last three steps
        head = boundary_weights("simpson", steps - 3) if steps > 3 else np.zeros(1)
        expected = np.concatenate([head, np.zeros(3)]) + np.concatenate(
            [np.zeros(steps - 3), [3 / 8, 9 / 8, 9 / 8, 3 / 8]])
        assert np.allclose(w, expected, rtol=0, atol=1e-15)
    else:  # one step: the trapezoid
        assert list(w) == [0.5, 0.5]
    b = np.arange(steps + 1, dtype=float)
    if steps > 1:  # Simpson's 1/3 and 3/8 rules are exact for polynomials up to degree 3
        for k in range(4):
            assert w @ b**k == pytest.approx(steps ** (k + 1) / (k + 1), rel=1e-13)
    per_cycle = np.zeros(steps)
    for parts in reward_parts("simpson", steps):
        for weight, cycle in parts:
            per_cycle[cycle] += weight
    assert np.allclose(per_cycle, 1.0, rtol=0, atol=1e-15)


#: darthtools' gen_wcc(n_cycles, method = "Simpson1/3"): 1/3, 2/3, 4/3, 2/3, ..., 1/3.
DARTHTOOLS = BoundaryWeights(1 / 3, (2 / 3, 4 / 3), 1 / 3)


def test_given_weights_repeat_between_the_first_and_the_last_boundary():
    assert DARTHTOOLS.at(1) == [1 / 3, 1 / 3]
    assert DARTHTOOLS.at(4) == [1 / 3, 2 / 3, 4 / 3, 2 / 3, 1 / 3]
    assert reward_parts(DARTHTOOLS, 3) == [[(1 / 3, 0)], [(2 / 3, 1)], [(4 / 3, 2)], [(1 / 3, 3)]]


@pytest.mark.parametrize("steps", range(1, 12))
def test_given_weights_can_be_any_named_timing(steps):
    # Each boundary in its own cycle: the same weights as both-ends, half-cycle and (an even
    # number of steps) simpson; the same parts as both-ends.
    both = BoundaryWeights(1.0, (1.0,), 1.0)
    assert reward_parts(both, steps) == reward_parts("both-ends", steps)
    assert list(boundary_weights(BoundaryWeights(0.5, (1.0,), 0.5), steps)) == list(
        boundary_weights("half-cycle", steps))
    if steps % 2 == 0:
        assert np.allclose(boundary_weights(BoundaryWeights(1 / 3, (4 / 3, 2 / 3), 1 / 3), steps),
                           boundary_weights("simpson", steps), rtol=0, atol=1e-15)


def test_given_weights_must_be_numbers_of_at_least_zero():
    for first, repeat in ((-0.1, (1.0,)), (0.5, ()), (float("nan"), (1.0,))):
        with pytest.raises(HhsimError, match=r"experiment\.reward_timing"):
            BoundaryWeights(first, repeat, 0.5)


def geometric_weight_sum(timing: str | BoundaryWeights, steps: int, x: float) -> float:
    """G(x) = sum over boundaries b = 0..T of w_b x^b, in closed form (see closed_form); for
    given weights, the sum itself."""
    if isinstance(timing, BoundaryWeights):
        return sum(w * x**b for b, w in enumerate(timing.at(steps)))
    if timing == "both-ends":
        return (1 - x ** (steps + 1)) / (1 - x)
    if steps % 2:  # Simpson 1/3 over T - 3 steps, then 3/8 over the last three
        return geometric_weight_sum(timing, steps - 3, x) + 3 / 8 * x ** (steps - 3) * (1 + x) ** 3
    odd = 4 * x * (1 - x**steps) / (1 - x**2)
    even = 2 * x**2 * (1 - x ** (steps - 2)) / (1 - x**2)
    return (1 + x**steps + odd + even) / 3


def closed_form(timing: str | BoundaryWeights, steps: int) -> dict[str, float]:
    """Discounted QALYs, life years and care cost per person of
    tests/models/well_sick_rates_yearly.toml, everyone well at t = 0, yearly cycle (dt = 1).

    The exits of a state compete (``hhsim.health.competing``): a well person leaves in a
    step with probability 1 - e^-λ, λ = a + m, and falls ill with the share a/λ of it, so
    with q_w = e^-λ, q_s = e^-c and π = (a/λ)(1 - q_w), the shares at boundary b are

        W_b = q_w^b,   S_{b+1} = q_s S_b + π W_b,  S_0 = 0   =>   S_b = π (q_w^b - q_s^b) / (q_w - q_s).

    A reward u_W W_b + u_S S_b valued at boundary b with weight w_b and discount d^b,
    d = 1 / (1 + r), sums to

        u_W G(q_w d) + u_S π / (q_w - q_s) (G(q_w d) - G(q_s d)),   G(x) = Σ_b w_b x^b,

    where for T steps

        both-ends (w_b = 1):   G(x) = (1 - x^(T+1)) / (1 - x);
        simpson, T even:       G(x) = [1 + x^T + 4x(1 - x^T)/(1 - x²) + 2x²(1 - x^(T-2))/(1 - x²)] / 3
                               (weights 1, 4, 2, ..., 4, 1 thirds: odd and even powers are
                               geometric series in x²);
        simpson, T odd:        G_T(x) = G_(T-3)(x) + (3/8) x^(T-3) (1 + x)^3
                               (the 3/8 rule 3, 9, 9, 3 eighths over the last three steps).

    QALYs: u_W = 1, u_S = 0.5, r = 3.5%; life years: u_W = u_S = 1, r = 3.5%; care cost:
    u_W = 0, u_S = £1,000, r = 6%.
    """
    lam = A + M
    qw, qs = math.exp(-lam), math.exp(-C)
    pi = A / lam * (1 - qw)

    def total(u_well: float, u_sick: float, rate: float) -> float:
        d = 1 / (1 + rate)
        gw, gs = geometric_weight_sum(timing, steps, qw * d), geometric_weight_sum(timing, steps, qs * d)
        return u_well * gw + u_sick * pi / (qw - qs) * (gw - gs)

    return {"qalys": total(1.0, UTILITY_SICK, R_EFFECTS), "life_years": total(1.0, 1.0, R_EFFECTS),
            "cost_care": total(0.0, COST_SICK, R_COSTS)}


def cohort(timing: str | BoundaryWeights, steps: int) -> dict[str, float]:
    health = calibrated_model(model_file("well_sick_rates_yearly.toml"), world_tree())
    return cohort_run(health, steps, {"well": 1.0}, discount_costs=R_COSTS,
                      discount_effects=R_EFFECTS, reward_timing=timing).outcomes


@pytest.mark.parametrize("timing, steps", [("both-ends", 10), ("simpson", 10), ("simpson", 11),
                                           (DARTHTOOLS, 11)])
def test_cohort_mode_gives_the_closed_form_exactly(timing, steps):
    out, expected = cohort(timing, steps), closed_form(timing, steps)
    for key, value in expected.items():
        assert abs(out[key] - value) < 1e-9, (key, out[key], value)
    # The test has teeth: the trapezoid (half-cycle) misses the closed form by far more.
    assert abs(cohort("half-cycle", steps)["qalys"] - expected["qalys"]) > 1e-3


FIRST_YEAR_COST = {
    "model": {"name": "first-year cost", "cycle": "year"},
    "chains": {"health": {
        "states": ["treated", "untreated"],
        "initial": {"prevalence": {"value": [1.0, 0.0], "unit": "share", "source": "x"}},
        "transitions": {"die": {"from": "treated", "to": "dead", "probability": {
            "value": 0.0, "unit": "probability per year", "source": "x"}}}}},
    "state_costs": {"drug": {
        "chain": "health", "states": ["treated"],
        "cost": {"value": 1000, "unit": "£ per person-year", "price_year": "2023/24", "source": "x"},
        "multiplier": {"model_year": {"value": [1.0, 0.0], "breaks": [0, 1], "unit": "multiplier",
                                      "source": "x"}}}},
}


@pytest.mark.parametrize("timing, discounted", [
    ("both-ends", 1000.0),  # boundary 0, valued in year 0; boundaries 1-3 in years 1-3
    ("simpson", 375.0 + 625.0 / 1.035),  # 3/8 rule: 3/8 of boundary 0 and 5/8 of boundary 1
])
def test_a_first_year_cost_is_counted_in_full_in_its_own_year(timing, discounted):
    health = calibrated_model(FIRST_YEAR_COST, world_tree())
    out = cohort_run(health, 3, {"treated": 1.0}, reward_timing=timing).outcomes
    assert out["cost_drug_undisc"] == pytest.approx(1000.0, rel=1e-12)
    assert out["cost_drug"] == pytest.approx(discounted, rel=1e-12)
    sim = HousingHealthModel(config(FIRST_YEAR_COST, tenants=100, steps=3, reward_timing=timing))
    sim.run()
    assert sim.ledger.count_disc["drug"].astype(float) * 1000 == pytest.approx(discounted, rel=1e-6)


@pytest.mark.parametrize("timing, steps", [("both-ends", 10), ("simpson", 10), ("simpson", 11),
                                           (DARTHTOOLS, 11)])
def test_microsimulation_agrees_with_cohort_mode(timing, steps):
    n = 20_000
    m = HousingHealthModel(config(model_file("well_sick_rates_yearly.toml"), tenants=n, steps=steps,
                                  seed=19, discount_costs=R_COSTS, discount_effects=R_EFFECTS,
                                  reward_timing=timing))
    m.run()
    assert np.all(m.pop.weight == 1)
    expected = closed_form(timing, steps)
    per_tenant = {"qalys": m.ledger.reward_disc["qalys"], "life_years": m.ledger.reward_disc["life_years"],
                  "cost_care": m.ledger.count_disc["care"] * COST_SICK}
    for key, x in per_tenant.items():
        x = x.astype(float)
        assert abs(x.mean() - expected[key]) < Z * x.std() / math.sqrt(n), key
