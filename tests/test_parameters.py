"""Sourced parameters: every default leaf is valid, sourced and overridable by name."""

import numpy as np
import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import apply_overrides, parameters_of
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.report import paramtable

from conftest import ROOT


def test_every_default_parameter_has_unit_source_and_price_year_when_money():
    params = {**parameters_of(default_model_tree()), **parameters_of(world_tree())}
    assert len(params) > 150
    for p in params.values():
        assert p.source.strip() and p.unit.strip()
        assert p.status in {"V1", "V2", "D", "A"}, p.name
        if p.is_money:
            assert p.price_year, p.name
        if p.status == "A":
            assert p.assumption


@pytest.mark.parametrize("leaf, problem", [
    ({"value": 1.0, "source": "s"}, "has no 'unit'"),
    ({"value": 1.0, "unit": "per person-year"}, "has no 'source'"),
    ({"value": 10.0, "unit": "£ per contact", "source": "s"}, "no price_year"),
    ({"value": 1.5, "unit": "probability", "source": "s"}, "out of range"),
    ({"value": 0.0, "unit": "rate ratio", "source": "s"}, "out of range"),
    ({"value": -1.0, "unit": "per person-year", "source": "s"}, "out of range"),
    ({"value": "x", "unit": "share", "source": "s"}, "expected a number"),
    ({"value": 1.0, "unit": "share", "source": "s", "colour": "red"}, "unknown parameter field"),
])
def test_bad_leaves_are_one_line_errors(leaf, problem):
    with pytest.raises(HhsimError) as err:
        parameters_of({"a": {"b": leaf}})
    assert problem in str(err.value) and "a.b" in str(err.value) and "\n" not in str(err.value)


def test_overrides_replace_values_and_reject_unknown_names():
    tree = default_model_tree()
    new = apply_overrides(tree, {"services.gp.unit_cost": 50.0})
    assert new["services"]["gp"]["unit_cost"]["value"] == 50.0
    assert tree["services"]["gp"]["unit_cost"]["value"] == 42.0  # the default is untouched
    with pytest.raises(HhsimError, match=r"did you mean 'services\.gp\.unit_cost'"):
        apply_overrides(tree, {"services.gp.unit_cots": 50.0})
    with pytest.raises(HhsimError, match="shape"):
        apply_overrides(tree, {"services.gp.rate": 3.0})


def test_a_scale_override_multiplies_a_whole_table_within_its_range():
    """``scale(<parameter>)`` multiplies every value of a table (or a number) by one factor,
    keeps the unit's range, and multiplies the value set beside it, in any order."""
    tree = default_model_tree()
    rate = np.asarray(tree["services"]["gp"]["rate"]["value"])
    new = apply_overrides(tree, {"scale(services.gp.rate)": 1.25, "scale(services.gp.unit_cost)": 2})
    assert np.allclose(new["services"]["gp"]["rate"]["value"], 1.25 * rate)
    assert new["services"]["gp"]["unit_cost"]["value"] == 84.0
    assert "scaled by 1.25" in new["services"]["gp"]["rate"]["source"]
    assert np.allclose(tree["services"]["gp"]["rate"]["value"], rate)  # the default is untouched
    both = apply_overrides(tree, {"scale(services.gp.unit_cost)": 2, "services.gp.unit_cost": 30.0})
    assert both["services"]["gp"]["unit_cost"]["value"] == 60.0
    delay = "hospital.admissions.emergency.delay_probability"
    for overrides, message in [
        ({f"scale({delay})": 10.0}, "times 10: value .* is out of range"),  # a probability over 1
        ({"scale(services.gp.rate)": 0}, "one number above 0"),
        ({"scale(services.gp.rate)": [1.0, 2.0]}, "one number above 0"),
        ({"scale(services.gp.rat)": 1.1}, r"did you mean 'services\.gp\.rate'"),
    ]:
        with pytest.raises(HhsimError, match=message):
            apply_overrides(tree, overrides)


def test_docs_parameter_table_is_generated_from_the_parameter_files():
    expected = paramtable.markdown(paramtable.default_parameters(), paramtable.TITLE)
    committed = (ROOT / "docs" / "parameters.md").read_text()
    assert committed == expected, "run: hhsim params --markdown docs/parameters.md"
