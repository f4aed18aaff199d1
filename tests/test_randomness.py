"""Random numbers: Poisson inversion is exact, and streams are independent by key."""

import numpy as np
import pytest
from scipy import stats

from hhsim.core.randomness import Streams, poisson_from_uniform


@pytest.mark.parametrize("lam", [0.0, 0.03, 0.5, 2.0, 7.5])
def test_poisson_inversion_equals_the_quantile_function(lam):
    u = np.random.default_rng(0).random(200_000).astype(np.float32)
    counts = poisson_from_uniform(u, np.full(u.size, lam, dtype=np.float32))
    expected = stats.poisson.ppf(u.astype(np.float64), lam)
    # float32 arithmetic may move a u that sits within 1e-5 of a CDF step by one count.
    near_step = np.abs(stats.poisson.cdf(expected - 1, lam) - u) < 1e-5
    near_step |= np.abs(stats.poisson.cdf(expected, lam) - u) < 1e-5
    assert np.all((counts == expected) | near_step)
    assert near_step.mean() < 1e-3


def test_poisson_counts_have_poisson_moments_with_varying_means():
    rng = np.random.default_rng(1)
    lam = rng.gamma(2.0, 0.3, 400_000).astype(np.float32)
    counts = poisson_from_uniform(rng.random(lam.size).astype(np.float32), lam)
    # E[N] = E[lam]; Var[N] = E[lam] + Var[lam]. Tolerance: 4 standard errors of the mean.
    se = np.sqrt((lam.mean() + lam.var()) / lam.size)
    assert abs(counts.mean() - lam.mean()) < 4 * se
    assert counts.min() >= 0


def test_streams_are_keyed_not_sequential():
    s1, s2 = Streams(7, (0, 1), 1000), Streams(7, (0, 1), 1000)
    s2.uniform("something else", 3)  # drawing another process first changes nothing
    s2.uniform("gp", 3, block=2)  # nor does drawing a later block
    assert np.array_equal(s1.uniform("gp", 3), s2.uniform("gp", 3))
    assert not np.array_equal(s1.uniform("gp", 3), s1.uniform("gp", 4))
    assert not np.array_equal(s1.uniform("gp", 3), s1.uniform("gp", 3, block=1))
    assert not np.array_equal(s1.uniform("gp", 3), Streams(8, (0, 1), 1000).uniform("gp", 3))


def test_uniforms_are_uniform():
    u = Streams(3, (0, 0), 100_000).uniform("x", 0)
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
