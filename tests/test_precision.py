"""The precision rule (hhsim.analysis.precision): targets, projections, stopping."""

import math

import numpy as np
import pytest
from scipy import stats

from hhsim.analysis.precision import (
    GROWTH,
    MIN_REPLICATIONS,
    Precision,
    assess,
    half_width,
    needed,
    next_round,
    parse_precision,
)
from hhsim.errors import HhsimError


@pytest.mark.parametrize("text, relative, absolute", [
    ("5%", 0.05, None), (" 2.5 % ", 0.025, None), ("500", None, 500.0), ("£1,000", None, 1000.0),
    ("1e3", None, 1000.0)])
def test_targets_parse(text, relative, absolute):
    p = parse_precision(text)
    assert (p.relative, p.absolute) == (relative, absolute)


@pytest.mark.parametrize("text", ["", "5%%", "£5%", "-3", "0", "0%", "100%", "abc", "nan", "inf"])
def test_bad_targets_are_one_line_errors(text):
    with pytest.raises(HhsimError, match="--precision") as err:
        parse_precision(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("sd, target", [(1.0, 0.1), (250.0, 40.0), (3.0, 2.9), (10.0, 0.5)])
def test_needed_is_the_fewest_replications_meeting_the_target(sd, target):
    n = needed(sd, target, 2)
    def hw(k):
        return stats.t.ppf(0.975, k - 1) * sd / math.sqrt(k)
    assert hw(n) <= target
    assert n <= 3 or hw(math.floor(n / 1.06) - 1) > target  # not far above the fewest


def test_a_met_target_stops_and_an_unmet_one_grows_by_at_most_the_cap():
    rng = np.random.default_rng(1)
    values = rng.normal(100.0, 10.0, 8)
    loose = assess(values, Precision(relative=0.5))
    assert loose.reached and next_round([loose], 8, 1000) == 8
    tight = assess(values, Precision(relative=0.001))
    assert not tight.reached and tight.needed > 1000
    assert next_round([tight], 8, 1000) == math.ceil(GROWTH * 8)
    assert next_round([tight], 8, 20) == 20
    assert next_round([], 2, 1000) == MIN_REPLICATIONS
    assert half_width(values) == pytest.approx(tight.half_width)


def test_a_relative_target_on_a_zero_difference_is_reported_as_indistinguishable():
    values = np.random.default_rng(2).normal(0.0, 10.0, 20)
    v = assess(values, Precision(relative=0.05, max_replications=200))
    assert v.indistinguishable and not v.reached and v.low < 0 < v.high
    assert next_round([v], 20, 200) == 20  # nothing more to run
    absolute = assess(values, Precision(absolute=1.0, max_replications=200))
    assert not absolute.indistinguishable and next_round([absolute], 20, 200) > 20
