"""``scale(<parameter>)`` names across the analyses that vary parameters: an arm that sets
the parameter, a ``[parameters]`` entry in the other form, a PSA that draws both forms, an
intervention factor in a calibration and a shipped posterior are each caught."""

from pathlib import Path

import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.resources import default_model_tree
from hhsim.experiment.plan import validate
from hhsim.experiment.psa_section import setup as psa_setup
from hhsim.experiment.sensitivity_section import check_sensitivity
from hhsim.studies.calibration import ship
from hhsim.studies.calibration.problem import _not_set_by_arms, applies

from conftest import MODELS

LINEAR = str(MODELS / "linear_additive.toml")


def experiment(**sections) -> dict:
    return {"experiment": {"name": "scaled", "model": LINEAR, "months": 12, "replications": 1, "seed": 7},
            "population": {"tenants": 10}, **sections}


def test_an_arm_that_sets_the_parameter_refuses_its_factor_in_a_calibration():
    data = experiment(arms=[{"name": "baseline", "parameters": {"state_costs.a.cost": 5.0}}])
    exp = validate(data)
    with pytest.raises(HhsimError, match="is also set by arm 'baseline'"):
        _not_set_by_arms("scale(state_costs.a.cost)", {Path("e.toml"): exp}, "calibration")
    _not_set_by_arms("scale(state_costs.b.cost)", {Path("e.toml"): exp}, "calibration")  # another one


def test_an_intervention_factor_applies_only_where_the_intervention_is():
    assert applies("scale(interventions.support.capacity.staff_fte)", {"support"})
    assert not applies("scale(interventions.support.capacity.staff_fte)", {"repairs"})
    assert applies("scale(services.gp.rate)", set())


def test_a_sampled_value_under_a_factor_in_parameters_is_refused():
    """The model would use their product, not the value the analysis reports."""
    data = experiment(parameters={"scale(state_costs.a.cost)": 1.1},
                      sensitivity={"method": "morris", "samples": 4, "outputs": ["mean:nhs_cost"],
                                   "parameters": {"state_costs.a.cost": [50, 150],
                                                  "state_costs.b.cost": [50, 150]}})
    with pytest.raises(HhsimError, match="has a factor on it in \\[parameters\\]"):
        check_sensitivity(validate(data))


def test_a_psa_that_draws_a_value_and_its_factor_is_refused():
    data = experiment(psa={"draws": 10, "parameters": {
        "state_costs.a.cost": {"dist": "gamma", "mean": 100, "sd": 10},
        "scale(state_costs.a.cost)": {"dist": "lognormal", "median": 1, "sdlog": 0.1}}})
    with pytest.raises(HhsimError, match="twice"):
        psa_setup(validate(data))


def test_a_factor_cannot_be_shipped_as_a_posterior():
    tree = default_model_tree()
    with pytest.raises(HhsimError, match="is a factor on a parameter"):
        ship._check_names(["scale(services.gp.rate)"], Path("model.toml"), tree,
                          {"scale(services.gp.rate)": 1.1}, "posterior")
