"""How far the calibrated model is from each target, and when the fit table may say so.

Three definitions (docs/calibration.md, section 4.1):

- **at a prior bound**: a ``--fast`` estimate whose prior quantile is below ``EDGE`` (1%)
  or above ``1 - EDGE``; an ABC posterior whose weighted median is there, or which puts at
  least ``EDGE_SHARE`` (10%, ten times the prior's share) of its weight in the prior's
  outer 1% on one side. The data push the parameter beyond what the prior allows.
- **z**: (observed - simulated mean) / sqrt(observation variance + simulated variance x
  (1 + 1/draws)): the distance of the observed figure from the calibrated model in units of
  the combined sd. The observation variance is the target's sd squared (binomial targets:
  n p (1 - p) at the mean simulated probability); the simulated variance is that of the
  target's simulated value across the predictive draws (the model's randomness, and for ABC
  the posterior's spread); /draws is the Monte-Carlo variance of their mean.
- **covered** is "True" or "False" only when the predictive interval is *meaningful*: it
  rests on at least ``MIN_DRAWS`` draws, no parameter the target depends on is at a prior
  bound, and the observed figure lies further than 1.96 Monte-Carlo standard errors from
  both of the interval's ends, so more draws would be unlikely to change the answer.
  Otherwise it is "unknown", and ``note`` says why. A normal target's interval is that of
  the mixture of normals centred on the simulated values with the target's sd (the noise
  integrated out: ``mixture_interval``; errors by bootstrap over the draws); a binomial
  target's ends are sample quantiles of the simulated counts, with errors from the order
  statistics around them (Vehtari et al. 2021).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from hhsim.analysis.precision import half_width
from hhsim.core.distributions import Distribution

EDGE = 0.01  # prior quantile within which an estimate is at a bound
EDGE_SHARE = 0.10  # ABC: posterior weight in the prior's outer 1% that flags a bound
MIN_DRAWS = 20  # fewest predictive draws for a 95% interval's ends (2.5% and 97.5% quantiles)
BOOTSTRAP = 200  # resamples of the draws for the Monte-Carlo errors of a normal target's interval
Z95 = 1.959964


def number(v: float) -> str:
    """A figure for a table or a note: whole with thousands separators from 1,000, else 4
    significant digits."""
    return "nan" if v != v else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Quantiles ``q`` of weighted values (midpoint interpolation of the weighted cdf)."""
    order = np.argsort(values)
    v, w = values[order], weights[order] / weights.sum()
    return np.interp(q, np.cumsum(w) - w / 2, v)


def at_bound(prior: Distribution, values: np.ndarray, weights: np.ndarray) -> tuple[str, float, float]:
    """Whether an estimate (one value) or a weighted posterior sits at the edge of its prior:
    ("low", "high", "both" or "", the prior quantile of the estimate or posterior median,
    the posterior weight in the prior's outer 1% on the flagged side (0 for an estimate))."""
    u = np.asarray(prior.frozen.cdf(values), dtype=float)
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    q = float(weighted_quantile(u, w, [0.5])[0])
    if len(u) == 1:
        return ("low" if q < EDGE else "high" if q > 1 - EDGE else ""), q, 0.0
    below, above = float(w[u < EDGE].sum()), float(w[u > 1 - EDGE].sum())
    low, high = q < EDGE or below >= EDGE_SHARE, q > 1 - EDGE or above >= EDGE_SHARE
    side = "both" if low and high else "low" if low else "high" if high else ""
    return side, q, {"low": below, "high": above, "both": below + above, "": 0.0}[side]


def bound_warning(name: str, prior: Distribution, value: float, side: str, q: float, share: float,
                  fast: bool) -> str:
    """The warning for a parameter at a prior bound: what it is and what it means."""
    where = "both ends" if side == "both" else f"the {side} end"
    what = (f"the estimate {value:.4g} is at {where} of its prior {prior.description} (prior quantile "
            f"{q:.3f})" if fast else
            f"the posterior piles up at {where} of its prior {prior.description} (median {value:.4g}, "
            f"prior quantile {q:.3f}; {share:.0%} of the weight in the prior's outer 1%)")
    return (f"{name}: {what}. The data push it beyond what the prior allows: widen the prior if such "
            "values are plausible; otherwise the model cannot reach the target(s) (see z in the fit table)")


def quantile_mcse(x: np.ndarray, p: float) -> float:
    """Monte-Carlo standard error of the sample ``p``-quantile of independent draws ``x``:
    half the distance between the order statistics at the 16% and 84% points of the
    quantile's rank distribution (Beta(n p + 1, n (1 - p) + 1); Vehtari et al. 2021)."""
    s = np.sort(np.asarray(x, dtype=float))
    n = s.size
    a, b = stats.beta.ppf([0.15865525, 0.84134475], n * p + 1, n * (1 - p) + 1)
    lo = s[max(math.floor(a * n), 1) - 1]
    hi = s[min(math.ceil(b * n), n) - 1]
    return float(hi - lo) / 2


def mixture_quantiles(simulated: np.ndarray, sd: float, p: float) -> np.ndarray:
    """The ``p``-quantile of the predictive distribution of a normal target, the mixture
    mean_i N(simulated_i, sd^2) (the observation noise integrated out rather than drawn),
    for each row of ``simulated`` (draws, or (rows, draws)); bisection to 1e-9 of its width."""
    s = np.atleast_2d(np.asarray(simulated, dtype=float))
    lo, hi = s.min(axis=1) - 10 * sd, s.max(axis=1) + 10 * sd
    for _ in range(64):
        mid = (lo + hi) / 2
        below = stats.norm.cdf((mid[:, None] - s) / sd).mean(axis=1) < p
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def mixture_interval(simulated: np.ndarray, sd: float) -> tuple[float, float, float, float]:
    """A normal target's 95% predictive interval (``mixture_quantiles`` at 2.5% and 97.5%)
    and the Monte-Carlo standard errors of its ends: the sd of the same ends over
    ``BOOTSTRAP`` resamples of the draws (fixed seed). Integrating the noise out leaves
    only the draws' own spread to be estimated, so the ends are far surer than the order
    statistics of as many noisy observations."""
    rng = np.random.default_rng(0)
    boot = simulated[rng.integers(0, simulated.size, (BOOTSTRAP, simulated.size))]
    ends = [float(mixture_quantiles(simulated, sd, p)[0]) for p in (0.025, 0.975)]
    errors = [float(mixture_quantiles(boot, sd, p).std(ddof=1)) for p in (0.025, 0.975)]
    return ends[0], ends[1], errors[0], errors[1]


def fit_row(observed: float, sd: float, n_binomial: int, simulated: np.ndarray, observations: np.ndarray,
            bound: str = "") -> dict:
    """The fit of one target: simulated mean and its 95% MC half-width, the 95% predictive
    interval of simulated observations and its ends' MC standard errors, z, covered and why.
    ``n_binomial`` is the target's n (0 for a normal target; values then in counts);
    ``bound`` names a parameter at a prior bound the target depends on ("" if none)."""
    keep = np.isfinite(simulated)
    sim, obs = simulated[keep], observations[keep]
    n = int(sim.size)
    row = {"draws": n, "simulated_mean": math.nan, "simulated_mc95": math.nan, "simulated_median": math.nan,
           "predictive_low95": math.nan, "predictive_high95": math.nan, "predictive_low95_mcse": math.nan,
           "predictive_high95_mcse": math.nan, "z": math.nan}
    if n == 0:
        return {**row, "covered": "unknown", "note": "no draw gave a simulated value"}
    mean = float(sim.mean())
    var_sim = float(sim.var(ddof=1)) if n > 1 else math.nan
    if n_binomial:
        p = min(max(mean / n_binomial, 0.0), 1.0)
        var_obs = n_binomial * p * (1 - p)
    else:
        var_obs = sd * sd
    spread = math.sqrt(var_obs + var_sim * (1 + 1 / n))
    gap = observed - mean
    z = gap / spread if spread > 0 else (0.0 if gap == 0 else math.copysign(math.inf, gap))
    if not n_binomial and sd > 0:
        lo, hi, e_lo, e_hi = mixture_interval(sim, sd)
    else:
        lo, hi = (float(v) for v in np.quantile(obs, [0.025, 0.975]))
        e_lo, e_hi = (quantile_mcse(obs, 0.025), quantile_mcse(obs, 0.975)) if n >= MIN_DRAWS else (0.0, 0.0)
    row.update(simulated_mean=mean, simulated_mc95=half_width(sim), simulated_median=float(np.median(sim)),
               predictive_low95=lo, predictive_high95=hi, z=z)
    if n >= MIN_DRAWS:
        row.update(predictive_low95_mcse=e_lo, predictive_high95_mcse=e_hi)
    if bound:
        return {**row, "covered": "unknown", "note": f"{bound}: the closest fit the prior allows, not a fit"}
    if n < MIN_DRAWS:
        return {**row, "covered": "unknown",
                "note": f"only {n} predictive draws: a 95% interval's ends need at least {MIN_DRAWS}"}
    if observed < lo - Z95 * e_lo or observed > hi + Z95 * e_hi:
        return {**row, "covered": "False", "note": ""}
    if observed >= lo + Z95 * e_lo and observed <= hi - Z95 * e_hi:
        return {**row, "covered": "True", "note": ""}
    end, e = ("low", e_lo) if abs(observed - lo) < abs(observed - hi) else ("high", e_hi)
    return {**row, "covered": "unknown",
            "note": f"the observed value is within the Monte-Carlo error of the interval's {end} end "
                    f"(+/- {number(Z95 * e)}): more draws would tell (--predictive, --precision)"}
