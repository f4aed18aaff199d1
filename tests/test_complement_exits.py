"""Exits that empty a state for certain: probabilities adding up to exactly 1, and the
``probability = "rest"`` complement. Everyone leaves, exactly; mistakes are one-line
errors; the microsimulation agrees with cohort mode (3 per-person standard errors, fixed
seeds)."""

import copy
import math

import numpy as np
import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.resources import world_tree
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model, compile_model
from hhsim.model.simulation import HousingHealthModel

from conftest import config, model_file

Z = 3.0
LEAF = {"unit": "probability per year", "source": "test value"}


def tunnel() -> dict:
    return model_file("tunnel_yearly.toml")


def edited(edit) -> dict:
    tree = copy.deepcopy(tunnel())
    edit(tree["chains"]["health"]["transitions"], tree)
    return tree


def step_once(tree: dict, start: dict[str, float]) -> dict[str, float]:
    """Cohort shares one cycle after ``start``, by state name and 'dead'."""
    health = calibrated_model(tree, world_tree())
    trace = cohort_run(health, 1, start).trace
    names = [*health.chains["health"].states, "dead"]
    return dict(zip(names, trace[1], strict=True))


def test_everyone_leaves_a_state_emptied_by_a_rest_exit():
    after = step_once(tunnel(), {"event": 1.0})
    assert after["event"] == 0.0
    assert after["dead"] == pytest.approx(0.1, abs=1e-7)
    assert after["post"] == pytest.approx(0.9, abs=1e-7)
    m = HousingHealthModel(config(tunnel(), tenants=5000, steps=6, seed=3))
    passed = 0
    for _ in range(6):
        inside = np.flatnonzero(m.pop.alive & (m.pop.states["health"] == 1))
        m.step()
        assert not np.any(m.pop.alive[inside] & (m.pop.states["health"][inside] == 1))
        passed += inside.size
    assert passed > 2000  # the test has teeth: many tenants passed through the event


@pytest.mark.parametrize("values", [(0.7, 0.2, 0.1), (0.1, 0.2, 0.7)])  # sums 1 - 1.1e-16, 1
def test_probabilities_adding_up_to_1_in_floating_point_empty_the_state(values):
    def edit(tr, _):
        tr["die_event"]["probability"]["value"] = values[0]
        tr["recover"]["probability"] = {"value": values[1], **LEAF}
        tr["relapse"] = {"from": "event", "to": "well", "probability": {"value": values[2], **LEAF}}
    tree = edited(edit)
    assert compile_model(tree).chains["health"].empties.tolist() == [False, True, False]
    after = step_once(tree, {"event": 1.0})
    assert after["event"] == 0.0
    assert after["well"] == pytest.approx(values[2], abs=1e-7)


def test_background_mortality_gets_no_share_of_an_emptied_state():
    tree = tunnel()
    tree["mortality"] = {"chain": "health", "gompertz_makeham": {
        "value": [[0.5, 0.0, 0.0], [0.5, 0.0, 0.0]], "unit": "coefficients per year", "source": "test"}}
    after = step_once(tree, {"event": 1.0})
    assert after["dead"] == pytest.approx(0.1, abs=1e-7)
    assert step_once(tree, {"well": 1.0})["dead"] > 0.3  # it applies elsewhere


@pytest.mark.parametrize("ratio, dead", [(2.0, 0.2), (20.0, 1.0)])
def test_the_rest_on_the_probability_scale_takes_what_rate_ratios_leave(ratio, dead):
    def edit(tr, _):
        tr["die_event"]["rr_on"] = "probability"
        tr["die_event"]["rr"] = {"model_year": {"value": [ratio, 1.0], "breaks": [0, 1],
                                                "unit": "rate ratio", "source": "test"}}
    after = step_once(edited(edit), {"event": 1.0})
    # 0.1 x 20 = 2: nothing is left for the rest, and everyone takes the other exit.
    assert (after["event"], after["dead"], after["post"]) == pytest.approx((0.0, dead, 1 - dead), abs=1e-7)


def test_a_row_adding_up_to_1_with_ratios_below_1_on_probabilities_lets_some_stay():
    after = step_once(model_file("one_month_tunnel.toml"), {"on": 1.0})
    # Year 0: 0.9 + 0.1 x 0.5 = 0.95 leave, 0.05 stay.
    assert (after["on"], after["off"], after["dead"]) == pytest.approx((0.05, 0.9, 0.05), abs=1e-7)


@pytest.mark.parametrize("edit, expected", [
    (lambda tr, _: tr["recover"].update(probability={"value": 0.95, **LEAF}),
     "probabilities of leaving 'event' add up to 1.05, more than 1"),
    (lambda tr, _: tr.update(relapse={"from": "event", "to": "well", "probability": "rest"}),
     "relapse: is a second rest of its state (the first is chains.health.transitions.recover)"),
    (lambda tr, _: tr["recover"].update(rr={"age": {"value": 1.01, "unit": "rate ratio", "source": "x"}}),
     "recover.rr: does not apply to the rest"),
    (lambda tr, _: tr["recover"].update(rr_on="probability"), "recover.rr_on: does not apply to the rest"),
    (lambda tr, _: tr["recover"].update(probability="remainder"), "unknown value 'remainder'"),
    (lambda tr, _: tr["recover"].update(probability={"value": [0.9, 0.5], "breaks": [0, 60], **LEAF}),
     "add up to 1 at some ages and less at others"),
    (lambda _, t: t["model"].update(cycle="month"), "over a period longer than a step"),
])
def test_mistakes_with_certain_exits_are_one_line_errors(edit, expected):
    with pytest.raises(HhsimError) as err:
        compile_model(edited(edit))
    assert expected in str(err.value) and "\n" not in str(err.value)


def agree(m: HousingHealthModel, out: dict[str, float], cost: str, unit_cost: float) -> None:
    n = m.pop.n
    assert np.all(m.pop.weight == 1)
    per_tenant = {"qalys": m.ledger.reward_disc["qalys"], "life_years": m.ledger.reward_disc["life_years"],
                  f"cost_{cost}": m.ledger.count_disc[cost] * unit_cost}
    for key, x in per_tenant.items():
        x = x.astype(float)
        assert abs(x.mean() - out[key]) < Z * x.std() / math.sqrt(n), key


def test_microsimulation_agrees_with_cohort_mode_on_a_tunnel_with_a_rest():
    m = HousingHealthModel(config(tunnel(), tenants=20_000, steps=10, seed=19, reward_timing="simpson"))
    m.run()
    out = cohort_run(calibrated_model(tunnel(), world_tree()), 10, {"well": 1.0},
                     reward_timing="simpson").outcomes
    agree(m, out, "event_care", 5000.0)


def test_microsimulation_agrees_with_cohort_mode_on_a_row_adding_up_to_1():
    tree = model_file("one_month_tunnel.toml")
    m = HousingHealthModel(config(tree, tenants=20_000, steps=24, seed=19, reward_timing="both-ends"))
    stayed = []
    for _ in range(24):
        on = np.flatnonzero(m.pop.alive & (m.pop.states["health"] == 1))
        m.step()
        stayed.append(int(np.sum(m.pop.alive[on] & (m.pop.states["health"][on] == 1))))
    assert min(stayed[:12]) > 0 and max(stayed[12:]) == 0  # ratio 0.5 in year 0 only
    out = cohort_run(calibrated_model(tree, world_tree()), 24, {"off": 0.5, "on": 0.5},
                     reward_timing="both-ends").outcomes
    agree(m, out, "on_care", 1200.0)
