"""Distribution specs: each gives the distribution it says, and bad specs are one-line errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hhsim.core.distributions import TAIL, Dirichlet, parse_distribution
from hhsim.core.errors import HhsimError


@pytest.mark.parametrize(("spec", "mean", "sd"), [
    ([2, 6], 4.0, 4 / np.sqrt(12)),
    ({"dist": "uniform", "low": -1, "high": 1}, 0.0, 2 / np.sqrt(12)),
    ({"dist": "normal", "mean": 10, "sd": 2}, 10.0, 2.0),
    ({"dist": "triangular", "low": 0, "mode": 1, "high": 5}, 2.0, np.sqrt((0 + 1 + 25 - 0 - 0 - 5) / 18)),
    ({"dist": "beta", "mean": 0.3, "sd": 0.05}, 0.3, 0.05),
    ({"dist": "beta", "alpha": 3, "beta": 7}, 0.3, np.sqrt(21 / (100 * 11))),
    ({"dist": "gamma", "mean": 250, "sd": 50}, 250.0, 50.0),
    ({"dist": "gamma", "shape": 4, "scale": 10}, 40.0, 20.0),
    ({"dist": "lognormal", "mean": 0.8, "sd": 0.1}, 0.8, 0.1),
    ({"dist": "lognormal", "median": 1.0, "sdlog": 0.5}, np.exp(0.125),
     np.sqrt((np.exp(0.25) - 1) * np.exp(0.25))),
])
def test_each_spec_gives_the_moments_it_states(spec, mean, sd):
    d = parse_distribution(spec, "p")
    assert d.frozen.mean() == pytest.approx(mean, rel=1e-9, abs=1e-12)
    assert d.frozen.std() == pytest.approx(sd, rel=1e-9)
    draws = d.rvs(20000, np.random.default_rng(1))
    assert draws.mean() == pytest.approx(mean, abs=4 * sd / np.sqrt(20000))


def test_lognormal_median_is_its_location_and_tails_are_cut_but_bounds_are_reached():
    d = parse_distribution({"dist": "lognormal", "median": 1.12, "sdlog": 0.04}, "p")
    assert d.ppf(0.5) == pytest.approx(1.12)
    normal = parse_distribution({"dist": "normal", "mean": 0, "sd": 1}, "p")
    assert normal.range() == pytest.approx((-3.0902, 3.0902), abs=1e-4)  # 0.1% and 99.9% quantiles
    assert normal.ppf(0.0) == normal.frozen.ppf(TAIL)
    assert parse_distribution([2, 6], "p").range() == (2.0, 6.0)
    assert parse_distribution({"dist": "triangular", "low": 0, "mode": 1, "high": 5}, "p").range() == (0, 5)


def test_dirichlet_is_a_group_of_shares():
    d = parse_distribution({"dist": "dirichlet", "parameters": ["a", "b", "c"], "alpha": [2, 3, 5]}, "p")
    assert isinstance(d, Dirichlet)
    assert d.mean == pytest.approx([0.2, 0.3, 0.5])
    draws = d.rvs(100, np.random.default_rng(0))
    assert draws.shape == (100, 3) and np.allclose(draws.sum(axis=1), 1)


@pytest.mark.parametrize(("spec", "message"), [
    ({"dist": "weibull", "k": 1}, "unknown distribution 'weibull'"),
    ({"dist": "gama", "mean": 1, "sd": 1}, "did you mean 'gamma'"),
    ({"mean": 1, "sd": 1}, "has no 'dist'"),
    ({"dist": "normal", "mean": 1}, "needs {mean, sd}"),
    ({"dist": "normal", "mean": 1, "sd": -1}, "p.sd: must be above 0"),
    ({"dist": "normal", "mean": 1, "sd": 1, "sdd": 2}, "unknown normal key 'sdd'"),
    ({"dist": "beta", "mean": 1.2, "sd": 0.1}, "beta mean must be between 0 and 1"),
    ({"dist": "beta", "mean": 0.5, "sd": 0.6}, "too large for a beta"),
    ({"dist": "uniform", "low": 2, "high": 1}, "low (2) is not below high (1)"),
    ([3, 3], "low (3) is not below high (3)"),
    ([1, 2, 3], "two numbers"),
    ({"dist": "triangular", "low": 0, "mode": 9, "high": 5}, "not between low and high"),
    ({"dist": "gamma", "mean": "ten", "sd": 1}, "must be a number"),
    ({"dist": "dirichlet", "parameters": ["a", "b"], "alpha": [1]}, "2 positive numbers"),
    ("uniform", "expected [low, high] or a distribution table"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(HhsimError) as err:
        parse_distribution(spec, "p")
    assert message in str(err.value) and "\n" not in str(err.value)


_values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=5), st.lists(st.floats(-10, 10), max_size=3))
_specs = st.one_of(
    st.lists(_values, max_size=3),
    st.dictionaries(st.sampled_from(["dist", "low", "high", "mean", "sd", "mode", "alpha", "beta", "shape",
                                     "scale", "median", "sdlog", "parameters", "x"]),
                    st.one_of(st.sampled_from(["uniform", "normal", "triangular", "beta", "gamma",
                                               "lognormal", "dirichlet"]), _values), max_size=4),
    _values)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_specs)
def test_fuzzed_specs_give_a_distribution_or_a_one_line_error(spec):
    try:
        d = parse_distribution(spec, "p")
    except HhsimError as err:
        assert "\n" not in str(err)
        return
    if not isinstance(d, Dirichlet):
        lo, hi = d.range()
        assert np.isfinite([lo, hi]).all() and lo <= hi
