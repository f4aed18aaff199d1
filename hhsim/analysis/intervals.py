"""Monte-Carlo intervals that respect what is possible.

Every interval hhsim prints or writes is a 95% Monte-Carlo interval over replications:
simulation noise for the given parameters (parameter uncertainty is what ``hhsim psa``
adds). By kind of outcome:

- **a level that cannot be negative** (a cost, a count of events or people, days, years,
  QALYs): the t-interval of the mean, mean +/- t(0.975, R-1) x SD / sqrt(R), cut at 0.
  The cut keeps the coverage: the true mean is never below 0, so the cut interval holds it
  whenever the t-interval does;
- **a paired difference** (an arm minus the baseline of the same replication): the
  t-interval, of either sign. An incremental cost where the baseline spends nothing is a
  level (cut at 0);
- **a ratio of means** (ROI, ICER, cost per person served): the delta-method interval over
  paired replicates (``ratio_interval``), cut at 0 where both parts cannot be negative;
- **one replication**: no interval. **Fewer than ``FEW`` replications**: the interval is
  given but flagged (``few_replications``): t(0.975, 1) = 12.7, so two replications give an
  interval 6 times as wide as ten, and an SD from so few runs is itself a guess.

Cohort mode (``hhsim run --cohort``) computes expected values exactly, one run per arm:
they have no Monte-Carlo error, and its printouts say so (``EXACT``) instead of giving an
interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

FEW = 5  # fewer replications than this: intervals are flagged as too rough to use
#: How the printouts of cohort mode describe its values, where a run's give its intervals.
EXACT = "expected values, exact: no Monte-Carlo error"


def mc_interval(values: np.ndarray, lower: float | None = None) -> tuple[float, float, float]:
    """Mean and 95% Monte-Carlo interval of replicate values (NaN bounds for one value, or
    for values that are not all finite); ``lower``: the smallest possible value (0 for a
    cost or a count), where the interval is cut."""
    v = np.asarray(values, dtype=float)
    mean = float(v.mean()) if v.size else float("nan")
    if v.size < 2 or not np.isfinite(v).all():  # one value, or unlimited (inf) or missing
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    low = mean - half if lower is None else max(mean - half, lower)
    return mean, low, mean + half


def mc_bounds(mean: pd.Series, sd: pd.Series, n: pd.Series,
              lower: float | None = None) -> tuple[pd.Series, pd.Series]:
    """``mc_interval``'s bounds for many means at once, from their replicates' SD and count
    (NaN where there is one replicate)."""
    half = stats.t.ppf(0.975, (n - 1).where(n > 1)) * sd / np.sqrt(n)
    low = mean - half
    return (low if lower is None else low.clip(lower=lower)), mean + half


def ratio_interval(x: np.ndarray, y: np.ndarray, lower: float | None = None) -> tuple[float, float, float]:
    """mean(x) / mean(y) with a 95% delta-method interval over paired replicates, cut at
    ``lower`` when given (NaN when mean(y) is 0)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    mx, my = x.mean(), y.mean()
    if my == 0:
        return float("nan"), float("nan"), float("nan")
    r = mx / my
    if x.size < 2:
        return float(r), float("nan"), float("nan")
    cov = np.cov(x, y, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (x.size * my * my)
    half = float(stats.t.ppf(0.975, x.size - 1) * np.sqrt(max(var, 0.0)))
    low = r - half if lower is None else max(r - half, lower)
    return float(r), float(low), float(r + half)


def few_replications(replications: int) -> str | None:
    """A warning when ``replications`` are too few for the intervals to be useful."""
    if replications < 2:
        return "1 replication: no Monte-Carlo intervals (run at least 10, or use --precision)"
    if replications < FEW:
        return (f"intervals rest on {replications} replications: too few to be useful; "
                "run at least 10, or use --precision")
    return None
