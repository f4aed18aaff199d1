"""Issue 19.1, derived parameters: named parameters and expressions over them in model files.

The evaluator (hhsim.core.expressions) walks a whitelist of AST nodes and never calls eval;
what it refuses is a one-line error naming the parameter. Expressions are computed when a
model is compiled, after the experiment's overrides, so a PSA that draws a base parameter
moves everything derived from it. A model file with derived values compiles to the model of
the same file with the values pasted in, and its microsimulation agrees with cohort mode.
"""

from __future__ import annotations

import ast
import inspect
import math
import re
import tomllib

import numpy as np
import pytest

import hhsim.core.expressions as expressions
from hhsim.core.errors import HhsimError
from hhsim.core.expressions import Banding, Expression, Operand
from hhsim.core.parameters import apply_overrides, parameters_of, read_toml, resolve_expressions
from hhsim.core.resources import world_tree
from hhsim.experiment.plan import validate
from hhsim.experiment.probes import at_point
from hhsim.experiment.psa_section import setup
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model, compile_model
from hhsim.model.simulation import HousingHealthModel
from hhsim.studies.psa.draws import psa_draws
from hhsim.studies.psa.run import run_psa

from conftest import ROOT, config

BANDS = Banding("breaks", (16.0, 45.0, 75.0))
OPERANDS = {
    "r": Operand(np.asarray(0.3)),
    "p": Operand(np.asarray(0.2)),
    "t": Operand(np.array([0.01, 0.02, 0.05]), BANDS),
    "mw": Operand(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), BANDS),
    "life": Operand(np.array([0.001, 0.002, 0.004, 0.008]), Banding("first_age", (16.0,))),
    "breaks": Operand(np.array(BANDS.at), BANDS),
    "unsorted": Operand(np.array([1.0, 2.0]), Banding("breaks", (50.0, 16.0))),
}


def value(text: str, banding: Banding | None = BANDS) -> np.ndarray:
    return Expression(text, "x.y").evaluate(OPERANDS, banding)


# -- the evaluator --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("=1 + 2 * 3 - 4 / 8", 6.5),
    ("=2 ** 3 ** 2", 512.0),  # ** is right-associative, as in Python
    ("=-r ** 2", -0.09),  # unary minus binds less tightly than **
    ("=+r", 0.3),
    ("=(1 - p) * (1 - 0.5)", 0.4),
    ("=exp(log(5))", 5.0),
    ("=sqrt(16) + pow(2, 10)", 1028.0),
    ("=min(r, p, 0.25) + max(r, 1)", 1.2),
    ("=rate_to_prob(r)", 1 - math.exp(-0.3)),
    ("=rate_to_prob(r, 5)", 1 - math.exp(-1.5)),
    ("=prob_to_rate(p)", -math.log(0.8)),
    ("=prob_to_rate(p, 2)", -math.log(0.8) / 2),
    ("=rate_to_prob(prob_to_rate(p, 5), 1)", 1 - 0.8 ** 0.2),  # a 5-year probability to 1 year
    ("=lookup(t, 50)", 0.02),
    ("=lookup(t, 10)", 0.01),  # below the first break: the first band
    ("=lookup(t, 200)", 0.05),  # the last band is open
    ("=lookup(life, 17.5)", 0.002),  # by single year of age from first_age
    ("=3", 3.0),
])
def test_arithmetic_and_functions(text, expected):
    assert float(value(text)) == pytest.approx(expected, rel=1e-14)


def test_tables_combine_element_wise_and_bands_are_looked_up():
    np.testing.assert_allclose(value("=0.02 + t"), [0.03, 0.04, 0.07], rtol=1e-15)
    np.testing.assert_allclose(value("=mw * t"), [[0.01, 0.04, 0.15], [0.04, 0.10, 0.30]], rtol=1e-15)
    np.testing.assert_allclose(value("=max(t, 0.015)"), [0.015, 0.02, 0.05])
    np.testing.assert_allclose(value("=0.5 * 0.1 * breaks ** (0.5 - 1)"), 0.05 / np.sqrt([16, 45, 75]))
    # a life table by single year re-banded onto the parameter's own breaks (lower bounds)
    np.testing.assert_array_equal(value("=lookup(life, breaks)"), [0.001, 0.008, 0.008])
    np.testing.assert_array_equal(value("=lookup(mw, 46)"), [2.0, 5.0])  # [men, women]
    # rows men, women from two tables (or a table and a number), as a term by sex reads them
    np.testing.assert_allclose(value("=by_sex(t, 2 * t)"), [[0.01, 0.02, 0.05], [0.02, 0.04, 0.10]])
    np.testing.assert_allclose(value("=by_sex(t ** 2, 1)"), [[1e-4, 4e-4, 25e-4], [1, 1, 1]])


@pytest.mark.parametrize("text, expected", [
    ("=r.real", "attribute access ('r.real')"),
    ("=r.__class__", "attribute access"),
    ("=__import__('os').system('true')", "calls '__import__('os').system'"),
    ("=__import__('os')", "calls '__import__', which is not an allowed function"),
    ("=eval('1')", "calls 'eval'"),
    ("=os.system('true')", "calls 'os.system'"),
    ("=(lambda: 1)()", "calls 'lambda: 1'"),
    ("=lambda: 1", "uses a lambda"),
    ("=t[0]", "uses indexing"),
    ("=[x for x in t]", "uses a comprehension"),
    ("=sum(x for x in t)", "calls 'sum'"),
    ("='text'", "uses text"),
    ("=f'{r}'", "uses text"),
    ("=True", "a constant that is not a number"),
    ("=1j", "a constant that is not a number"),
    ("=[1, 2]", "uses a list"),
    ("=(1, 2)", "uses a tuple"),
    ("=r < 1", "uses a comparison"),
    ("=r and p", "uses and/or"),
    ("=r if p else 1", "uses if-else"),
    ("=(a := 1)", "uses an assignment"),
    ("=r % 2", "an operator other than"),
    ("=r ^ 2", "uses '^'"),
    ("=exp(x=1)", "named or * arguments"),
    ("=exp(*t)", "named or * arguments"),
    ("=exp(1, 2)", "calls exp with 2 argument(s)"),
    ("=min(r)", "calls min with 1 argument(s)"),
    ("=lookup(r * 2, 1)", "calls lookup on 'r * 2'"),
    ("=1 +", "is not a valid formula"),
    ("=import os", "is not a valid formula"),
    ("=", "is empty"),
    ("=" + "1+" * 600 + "1", "is longer than 1000 characters"),
])
def test_what_is_not_allowed_is_a_one_line_error_naming_the_key(text, expected):
    with pytest.raises(HhsimError) as err:
        value(text)
    assert expected in str(err.value), str(err.value)
    assert str(err.value).startswith("x.y: expression ") and "\n" not in str(err.value)


def test_the_evaluator_never_calls_eval_exec_or_compile():
    tree = ast.parse(inspect.getsource(expressions))
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__"}


@pytest.mark.parametrize("text, expected", [
    ("=log(0)", "not a finite number at 'log(0)'"),
    ("=1 / (r - 0.3)", "not a finite number at '1 / (r - 0.3)'"),
    ("=sqrt(-1)", "not a finite number"),
    ("=exp(1000)", "not a finite number"),
    ("=10.0 ** 10 ** 10", "not a finite number"),
    ("=1e400", "not a finite number"),
    ("=lookup(r, 1)", "looks up 'r', which has no breaks or first_age"),
    ("=lookup(unsorted, 20)", "looks up 'unsorted', whose 2 breaks do not increase"),
    ("=lookup(mw, 1e400)", "not a finite number"),
    ("=life + 1", "uses table 'life' with first_age 16, but this parameter has breaks"),
    ("=mw * life", "uses table 'life'"),
])
def test_non_finite_values_and_mismatched_tables_are_refused(text, expected):
    with pytest.raises(HhsimError, match=None) as err:
        value(text)
    assert expected in str(err.value), str(err.value)


def test_a_table_on_other_bands_must_be_looked_up():
    with pytest.raises(HhsimError, match=r"this parameter has no breaks \(fix: .*lookup\(t, breaks\)"):
        value("=t * 2", banding=None)


# -- named parameters in a tree -----------------------------------------------------------------
def leaf(v, unit: str = "probability per year", **extra) -> dict:
    return {"value": v, "unit": unit, "source": "test value", **extra}


def tree(named: dict, **leaves) -> dict:
    return {"parameters": named, "x": leaves}


def test_named_parameters_and_expressions_resolve_in_any_order():
    t = tree({"total": leaf("=a + b"), "a": leaf("=b * 2"), "b": leaf(0.1)},
             y=leaf("=total / 2", "share"), z=leaf("=b * breaks / 100", "share", breaks=[16, 45, 75]))
    out = resolve_expressions(t)
    assert out["parameters"]["total"]["value"] == pytest.approx(0.3)
    assert out["x"]["y"]["value"] == pytest.approx(0.15)
    np.testing.assert_allclose(out["x"]["z"]["value"], [0.016, 0.045, 0.075])
    assert out["x"]["y"]["source"] == "computed by '=total / 2': test value"
    assert t["x"]["y"]["value"] == "=total / 2"  # the tree given is untouched
    assert resolve_expressions(out) is out  # nothing left to compute: the same tree
    assert parameters_of(t)["x.y"].value == pytest.approx(0.15)


@pytest.mark.parametrize("named, message", [
    ({"a": leaf("=b"), "b": leaf("=c"), "c": leaf("=a")},
     r"^parameters\.a: expressions refer to each other in a cycle: a -> b -> c -> a \(fix: give one"),
    ({"a": leaf("=a * 2")}, r"^parameters\.a: expressions refer to each other in a cycle: a -> a"),
    ({"a": leaf(0.1), "b": leaf("=c + a"), "c": leaf("=b")},
     r"^parameters\.b: .*cycle: b -> c -> b"),
])
def test_cycles_are_one_line_errors_naming_the_chain(named, message):
    with pytest.raises(HhsimError, match=message) as err:
        resolve_expressions(tree(named, y=leaf("=a")))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("t, message", [
    (tree({"r_sick": leaf(0.1)}, y=leaf("=r_sik")),
     r"^x\.y: expression '=r_sik' uses 'r_sik', which is not a named parameter \(fix: did you mean 'r_sick'"),
    (tree({}, y=leaf("=q")), r"add it to \[parameters\] as q = "),
    (tree({"exp": leaf(0.1)}), r"^parameters\.exp: is not a name an expression can use"),
    (tree({"breaks": leaf(0.1)}), r"^parameters\.breaks: is not a name"),
    (tree({"lambda": leaf(0.1)}), r"^parameters\.lambda: is not a name"),
    (tree({"r-sick": leaf(0.1)}), r"^parameters\.r-sick: is not a name"),
    (tree({"a": {"b": leaf(0.1)}}), r"^parameters\.a: is not a parameter .*names have no dots"),
    (tree({"a": leaf(0.1)}, y=leaf("=a * 20")),
     r"^x\.y: value 2 is out of range for unit 'probability per year', computed by '=a \* 20' \(fix: "
     r"check the expression and the parameters it uses \(a\)\)"),
    (tree({"a": leaf(0.1)}, y=leaf("=a - 1", "rate ratio")), r"^x\.y: value -0\.9 is out of range"),
    (tree({"a": leaf(0.1)}, y=leaf("=a / (a - 0.1)")), r"^x\.y: .*not a finite number at"),
    (tree({"a": leaf(1.5)}, y=leaf("=a")), r"^parameters\.a: value 1\.5 is out of range"),
    (tree({"a": leaf(0.1)}, y={"value": "=a", "source": "s"}), r"^x\.y: has no 'unit'"),
    (tree({"a": leaf(0.1)}, y=leaf("=a + breaks")), r"^x\.y: .*uses 'breaks', but the parameter has none"),
    (tree({"a": leaf([0.1, 0.2], breaks=[0, 50])}, y=leaf("=a", breaks=[0, 60])),
     r"^x\.y: .*uses table 'a' with breaks \[0, 50\], but this parameter has breaks \[0, 60\]"),
    ({"parameters": 3}, r"^parameters: must be a table"),
])
def test_tree_mistakes_are_one_line_errors(t, message):
    with pytest.raises(HhsimError, match=message) as err:
        parameters_of(t)
    assert "\n" not in str(err.value)


def test_expressions_are_computed_in_model_files_only():
    with pytest.raises(HhsimError, match=r"expressions .* are computed in health model files only"):
        apply_overrides(tree({"a": leaf(0.1)}), {"parameters.a": "=0.2"})


# -- a model file with derived values -------------------------------------------------------------
MODEL = """
[model]
name = "derived"
cycle = "year"

[parameters]
p_ill = {{ value = 0.1, unit = "probability per year", source = "test value" }}
background = {{ value = 0.02, unit = "probability per year", source = "test value" }}
excess = {{ value = 0.0816326530612245, unit = "probability per year", source = "test value" }}
p_recover_alive = {{ value = 0.2222222222222222, unit = "probability", source = "test value" }}
disutility = {{ value = 0.3, unit = "utility decrement", source = "test value" }}
monthly_cost = {{ value = 83.33333333333333, unit = "£ per month", price_year = "2023/24", source = "t" }}
p_die_sick = {{ value = {die_sick}, unit = "probability per year", source = "test value" }}

[chains.health]
states = ["healthy", "sick"]

[chains.health.initial]
prevalence = {{ value = [1.0, 0.0], unit = "share", source = "test value" }}

[chains.health.transitions.fall_ill]
from = "healthy"
to = "sick"
probability = {{ value = {fall_ill}, unit = "probability per year", source = "test value" }}

[chains.health.transitions.die_healthy]
from = "healthy"
to = "dead"
probability = {{ value = {die_healthy}, unit = "probability per year", source = "test value" }}

[chains.health.transitions.recover]
from = "sick"
to = "healthy"
probability = {{ value = {recover}, unit = "probability per year", source = "test value" }}

[chains.health.transitions.die_sick]
from = "sick"
to = "dead"
probability = {{ value = {die_sick_leaf}, unit = "probability per year", source = "test value" }}

[utility]
multiplier.health.sick = {{ value = {utility}, unit = "utility multiplier", source = "test value" }}

[state_costs.care]
chain = "health"
states = ["sick"]
cost = {{ value = {cost}, unit = "£ per person-year", price_year = "2023/24", source = "test value" }}
"""
DERIVED = dict(
    fall_ill='"=p_ill"', die_healthy='"=background"',
    die_sick='"=1 - (1 - background) * (1 - excess)"',  # background and excess mortality compete
    die_sick_leaf='"=p_die_sick"',
    recover='"=(1 - p_die_sick) * p_recover_alive"',  # survive, then recover
    utility='"=1 - disutility"', cost='"=monthly_cost * 12"')


def pasted(background: float = 0.02, disutility: float = 0.3,
           monthly_cost: float = 83.33333333333333) -> dict[str, str]:
    """The values of DERIVED as computed outside (Python floats) and pasted in as numbers."""
    die_sick = 1 - (1 - background) * (1 - 0.0816326530612245)
    values = dict(fall_ill=0.1, die_healthy=background, die_sick=die_sick, die_sick_leaf=die_sick,
                  recover=(1 - die_sick) * 0.2222222222222222, utility=1 - disutility,
                  cost=monthly_cost * 12)
    return {k: repr(float(v)) for k, v in values.items()}


def model(tmp_path, values: dict[str, str], name: str = "model.toml") -> dict:
    path = tmp_path / name
    path.write_text(MODEL.format(**values), encoding="utf-8")
    return read_toml(path, "model file")


def exit_bases(tree: dict) -> list[np.ndarray]:
    health = compile_model(tree)
    bases = [e.rate.base for c in health.chains.values() for state in c.exits for e in state]
    return [*bases, health.utility.terms[0].table, np.asarray(health.state_costs[0].activity.unit_cost)]


def test_a_derived_model_compiles_to_the_model_with_the_values_pasted_in(tmp_path):
    derived, numbers = model(tmp_path, DERIVED), model(tmp_path, pasted(), "pasted.toml")
    resolved = resolve_expressions(derived)
    for path in ("fall_ill", "die_healthy", "recover", "die_sick"):
        got = resolved["chains"]["health"]["transitions"][path]["probability"]["value"]
        assert got == numbers["chains"]["health"]["transitions"][path]["probability"]["value"], path
    for a, b in zip(exit_bases(derived), exit_bases(numbers), strict=True):
        np.testing.assert_array_equal(a, b)
    world = world_tree()
    cohorts = [cohort_run(calibrated_model(t, world), 10, {"healthy": 1.0}) for t in (derived, numbers)]
    assert cohorts[0].outcomes == cohorts[1].outcomes
    np.testing.assert_array_equal(cohorts[0].trace, cohorts[1].trace)


def test_a_conversion_compiles_to_its_closed_form(tmp_path):
    values = {**DERIVED, "fall_ill": '"=rate_to_prob(prob_to_rate(p_ill, 5), 1)"'}
    got = resolve_expressions(model(tmp_path, values))["chains"]["health"]["transitions"]["fall_ill"]
    assert got["probability"]["value"] == pytest.approx(1 - 0.9 ** (1 / 5), rel=1e-15)


def test_overriding_a_base_parameter_moves_what_is_derived_from_it(tmp_path):
    derived = model(tmp_path, DERIVED)
    moved = resolve_expressions(apply_overrides(derived, {"parameters.background": 0.05}))
    transitions = moved["chains"]["health"]["transitions"]
    die_sick = 1 - (1 - 0.05) * (1 - 0.0816326530612245)
    assert transitions["die_healthy"]["probability"]["value"] == 0.05
    assert transitions["die_sick"]["probability"]["value"] == die_sick
    assert transitions["recover"]["probability"]["value"] == (1 - die_sick) * 0.2222222222222222
    assert moved["parameters"]["background"]["value"] == 0.05
    with pytest.raises(HhsimError, match=r"^parameters\.chains\.health\.transitions\.recover\.probability: "
                       r"is computed by its expression .*override the named parameters it is computed from "
                       r"instead: parameters\.background, parameters\.excess, parameters\.p_recover_alive\)"):
        apply_overrides(derived, {"chains.health.transitions.recover.probability": 0.1})


def tiny_psa(path: str, draws: int = 5) -> dict:
    return {"experiment": {"name": "tiny", "model": path, "months": 24, "replications": 1, "seed": 3},
            "population": {"tenants": 60},
            "arms": [{"name": "baseline"},
                     {"name": "cheaper", "parameters": {"parameters.monthly_cost": 40}}],
            "psa": {"draws": draws, "parameters": {"parameters.background": [0.01, 0.2],
                                                   "parameters.disutility": [0.1, 0.5]}}}


def test_a_psa_draws_the_base_parameters_and_everything_derived_follows(tmp_path):
    path = tmp_path / "model.toml"
    path.write_text(MODEL.format(**DERIVED), encoding="utf-8")
    exp = validate(tiny_psa(str(path)))
    draws = psa_draws(setup(exp), 5, exp.experiment.seed)
    for i, row in draws.iterrows():
        point = at_point(exp, row.to_dict())
        for arm in point.arms:
            b, d = row["parameters.background"], row["parameters.disutility"]
            by_hand = pasted(b, d, 40.0 if arm.name == "cheaper" else 83.33333333333333)
            expected = exit_bases(model(tmp_path, by_hand, f"draw{i}.toml"))
            for got, want in zip(exit_bases(point.trees(arm)[0]), expected, strict=True):
                np.testing.assert_array_equal(got, want)
    res = run_psa(exp, tmp_path / "psa", workers=1)
    assert res.parameters[["parameters.background", "parameters.disutility"]].equals(draws)
    qalys = res.draws[res.draws["arm"] == "baseline"]["qalys"]
    assert qalys.nunique() == len(draws)  # each draw's derived values are simulated


def test_a_psa_range_that_pushes_a_derived_value_out_of_range_is_refused(tmp_path):
    path = tmp_path / "model.toml"
    path.write_text(MODEL.format(**{**DERIVED, "fall_ill": '"=p_ill * 8"'}), encoding="utf-8")
    exp = tiny_psa(str(path))
    exp["psa"]["parameters"] = {"parameters.p_ill": [0.05, 0.2]}
    with pytest.raises(HhsimError, match=r"fall_ill\.probability: value 1\.6 is out of range .*computed by"):
        validate(exp)


def test_microsimulation_agrees_with_cohort_mode_on_a_derived_model(tmp_path):
    n, years = 20_000, 10
    derived = model(tmp_path, {**DERIVED, "fall_ill": '"=rate_to_prob(prob_to_rate(p_ill, 2), 1)"'})
    m = HousingHealthModel(config(derived, tenants=n, steps=years, seed=11))
    m.run()
    expected = cohort_run(m.health, years, {"healthy": 1.0}).outcomes
    cost = m.ledger.count_disc["care"].astype(float) * m.activities["care"].unit_cost
    for name, per_person in (("qalys", m.ledger.reward_disc["qalys"].astype(float)),
                             ("life_years", m.ledger.reward_disc["life_years"].astype(float)),
                             ("cost_care", cost)):
        se = per_person.std() / np.sqrt(n)
        assert abs(per_person.mean() - expected[name]) < 3 * se, (name, per_person.mean(), expected[name], se)


def test_the_documented_example_compiles_to_its_documented_values():
    text = (ROOT / "docs" / "model-files.md").read_text(encoding="utf-8")
    start = text.index("`derived_parameters.toml`:")
    block = re.search(r"```toml\n(.*?)```", text[start:], re.S).group(1)
    doc = tomllib.loads(block)
    resolved = resolve_expressions(doc)
    assert resolved["parameters"]["p_die_ill"]["value"] == pytest.approx([0.025, 0.028])
    transitions = resolved["chains"]["health"]["transitions"]
    assert transitions["die_well"]["probability"]["value"] == [0.005, 0.008]
    assert transitions["fall_ill"]["rate"]["value"] == pytest.approx(1.4 / 12)
    ratios = transitions["fall_ill"]["rr"]["model_year"]["value"]
    assert ratios == pytest.approx([((t + 0.5) / 12) ** 0.4 for t in range(10)])
    recover = (1 - np.array([0.025, 0.028])) * (1 - 0.4 ** (1 / 5))
    assert transitions["recover"]["probability"]["value"] == pytest.approx(recover.tolist())
    moved = resolve_expressions(apply_overrides(doc, {"parameters.excess": 0.05}))
    assert moved["chains"]["health"]["transitions"]["die_ill"]["probability"]["value"] == pytest.approx(
        [0.055, 0.058])
    compile_model(doc)
