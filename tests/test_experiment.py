"""Experiment files: bad input gives one line naming the key and the fix; nothing else."""

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import load_experiment, validate

from conftest import ROOT

VALID = {
    "experiment": {"name": "t", "seed": 1, "months": 12, "replications": 2,
                   "discount": {"costs": 0.035, "effects": 0.035}, "thresholds": [20000, 30000]},
    "population": {"tenants": 1000, "tenure": {"social_rented": 1.0}},
    "parameters": {"services.gp.unit_cost": 45.0},
    "arms": [{"name": "baseline"}, {"name": "what-if", "parameters": {"services.ae.unit_cost": 300.0}}],
}


def test_the_valid_example_and_shipped_files_validate():
    assert validate(VALID).population.tenants == 1000
    for path in (ROOT / "experiments").glob("*.toml"):
        load_experiment(path)
    assert load_experiment().experiment.name == "default-social-housing"


@pytest.mark.parametrize("patch, where, fix", [
    ({"experiment": {"sed": 3}}, "experiment.sed", "did you mean 'seed'"),
    ({"experiment": {"seed": "abc"}}, "experiment.seed", "right type"),
    ({"experiment": {"months": 0}}, "experiment.months", "at least 1"),
    ({"population": {"tenants": -5}}, "population.tenants", "at least 1"),
    ({"population": {"tenure": {"social_rent": 1.0}}}, "population.tenure", "social_rented"),
    ({"experiment": {"discount": {"costs": 1.5}}}, "experiment.discount.costs", "at most 1"),
    ({"parameters": {"services.gp.unit_cots": 1}}, "parameters.services.gp.unit_cots", "unit_cost"),
    ({"parameters": {"hospital.admissions.emergency.readmission_30d": [2.0] * 8}},
     "readmission_30d", "between 0 and 1"),
    ({"arms": [{"name": "a"}]}, "experiment.baseline", "name one arm"),
    ({"experiment": {"model": "no-such-model.toml"}}, "no-such-model.toml", "check the path"),
    ({"experiment": {"price_year": "1999/00"}}, "experiment.price_year", "2023/24"),
    ({"parameters": {"mortality.rr.excess_cold": 1.0}}, "mortality.rr.excess_cold", "cold_winter_ratio"),
    ({"experiment": {"reward_timing": "middle"}}, "experiment.reward_timing", "values listed"),
    ({"experiment": {"reward_timing": {"first": -1, "repeat": [1], "last": 0}}},
     "experiment.reward_timing.first", "at least 0"),
    ({"experiment": {"reward_timing": {"first": "=a / 3", "repeat": [1], "last": 0}}},
     "experiment.reward_timing.first", "'=1/3'"),
    ({"experiment": {"reward_timing": {"first": 0.5, "last": 0.5}}},
     "experiment.reward_timing.repeat", "add it"),
])
def test_bad_values_are_one_line_errors(patch, where, fix):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in VALID.items()}
    for section, values in patch.items():
        data[section] = {**data.get(section, {}), **values} if isinstance(values, dict) else values
    with pytest.raises(HhsimError) as err:
        validate(data)
    text = str(err.value)
    assert where in text and fix in text and "\n" not in text


def _mutations():
    """Random edits of the valid experiment: any key, any JSON-like value."""
    values = st.recursive(
        st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True)
        | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6)
    paths = st.sampled_from([
        ("experiment",), ("experiment", "seed"), ("experiment", "months"),
        ("experiment", "replications"), ("experiment", "discount"), ("experiment", "thresholds"),
        ("experiment", "model"), ("experiment", "reward_timing"), ("experiment", "extra"),
        ("population",), ("population", "tenants"), ("population", "tenure"),
        ("parameters",), ("parameters", "services.gp.rate"), ("parameters", "mortality.rr.deprivation"),
        ("parameters", "world.hazards.damp.social_rented"), ("arms",), ("arms", 0), ("arms", 1, "name"),
        ("arms", 1, "parameters"), ("arms", 1, "interventions"), ("something",)])
    return st.lists(st.tuples(paths, values), min_size=1, max_size=3)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_fuzzed_experiment_files_never_raise_anything_else(edits):
    import copy
    data = copy.deepcopy(VALID)
    for path, value in edits:
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        validate(data)
    except HhsimError as err:
        assert "\n" not in str(err)


def hhsim(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hhsim", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.mark.slow
def test_cli_reports_bad_files_in_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.toml"
    cases = {
        "[experiment]\nseed = \"abc\"\n": "experiment.seed",
        "[experiment\nseed = 1\n": "not valid TOML",
        "[population]\ntennants = 5\n": "did you mean 'tenants'",
    }
    for text, expected in cases.items():
        bad.write_text(text)
        for command in (["validate", str(bad)], ["run", str(bad), "--out", str(tmp_path / "out")]):
            res = hhsim(*command)
            assert res.returncode == 2
            assert expected in res.stderr and "Traceback" not in res.stderr
            assert len(res.stderr.strip().splitlines()) == 1
            assert not (tmp_path / "out").exists()
    res = hhsim("validate", str(tmp_path / "missing.toml"))
    assert res.returncode == 2 and "not found" in res.stderr
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    res = hhsim("validate", str(bad))
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_cli_params_lists_every_parameter_with_its_source():
    res = hhsim("params")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert any(line.startswith("services.gp.unit_cost = 42 £ per contact [2022/23] (V2)") for line in lines)
    assert any(line.startswith("world.tenure_share.social_rented = 0.16") for line in lines)
