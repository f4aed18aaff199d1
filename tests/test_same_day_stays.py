"""Same-day emergency stays (``same_day_probability``): an admission that goes home the day
it came has no bed day and no delay, is tallied and costed as a same-day admission, and
draws its chance from a stream of its own, so a model without them is unchanged."""

import copy

import numpy as np
import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.health.model_file import compile_model
from hhsim.model.simulation import HousingHealthModel, RunConfig
from hhsim.studies.baseline.drift import england

EMERGENCY = ("hospital", "admissions", "emergency")


def with_same_day(probability: float | None, cost: float = 650.0) -> dict:
    tree = copy.deepcopy(default_model_tree())
    node = tree
    for key in EMERGENCY:
        node = node[key]
    if probability is None:  # a model without them (the default model has them since model 14)
        for key in [k for k in node if k.startswith("same_day")]:
            del node[key]
    else:
        node["same_day_probability"] = {"value": probability, "unit": "probability", "source": "test value"}
        node["same_day_cost"] = {"value": cost, "unit": "£ per admission", "price_year": "2023/24",
                                 "source": "test value"}
    return tree


def run(tree: dict) -> HousingHealthModel:
    world = world_tree()
    model = HousingHealthModel(RunConfig(model_tree=tree, world_tree=world, tenants=4_000,
                                         tenure=england(world), steps=6, seed=11))
    model.run()
    return model


def totals(model: HousingHealthModel, *names: str) -> list[float]:
    return [float(model.ledger.count[n].sum()) for n in names]


def test_every_stay_the_same_day_has_no_bed_day_and_is_costed_per_admission():
    model = run(with_same_day(1.0))
    admissions, beds, delayed, same = totals(model, "emergency_admissions", "emergency_bed_days",
                                             "emergency_delayed_days", "emergency_same_day_admissions")
    assert admissions > 100 and same == admissions
    assert beds == 0 and delayed == 0


def test_no_same_day_stays_leave_the_model_as_it_was():
    """A chance of 0 draws from its own stream: every other tally is the model's without it."""
    names = ("emergency_admissions", "emergency_bed_days", "emergency_delayed_days",
             "emergency_readmissions_30d", "gp", "ae")
    base, zero = run(with_same_day(None)), run(with_same_day(0.0))
    assert totals(zero, *names) == totals(base, *names)
    assert totals(zero, "emergency_same_day_admissions") == [0.0]
    assert "emergency_same_day_admissions" not in base.ledger.count


def test_some_same_day_stays_take_their_bed_days_out():
    base, half = run(with_same_day(None)), run(with_same_day(0.5))
    (b_beds,) = totals(base, "emergency_bed_days")
    h_adm, h_beds, h_same = totals(half, "emergency_admissions", "emergency_bed_days",
                                   "emergency_same_day_admissions")
    assert h_same / h_adm == pytest.approx(0.5, abs=4 * np.sqrt(0.25 / h_adm))
    assert h_beds < 0.75 * b_beds


def test_same_day_keys_without_their_chance_are_refused():
    tree = with_same_day(None)
    node = tree["hospital"]["admissions"]["emergency"]
    node["same_day_cost"] = {"value": 650.0, "unit": "£ per admission", "price_year": "2023/24",
                             "source": "test value"}
    with pytest.raises(HhsimError, match="same_day_probability: is missing"):
        compile_model(tree)
