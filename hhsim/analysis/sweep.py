"""Outcomes of a sweep (sensitivity analysis, PSA): one value per parameter point, arm and
output, from the records of ``hhsim.batch.points.run_points``.

Paired by replication against the baseline arm, then averaged, with the replication-level
standard error (Monte-Carlo noise); ``roi`` is the ratio of the mean saving to the mean
intervention cost, with a delta-method error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hhsim.analysis.economics import savings
from hhsim.analysis.outcomes import replicate_values
from hhsim.analysis.pairing import aligned


def _mean_se(values: pd.Series) -> pd.DataFrame:
    """Mean over replications per point; ``se``: its standard error; ``se_paired``: the
    standard error of its difference from the other points (common random numbers: the
    replication's shift shared by every point is taken out first)."""
    g = values.groupby(level="point")
    n = g.count()
    centred = values - values.groupby(level="replication").transform("mean")
    return pd.DataFrame({"value": g.mean(), "se": g.std(ddof=1) / np.sqrt(n),
                         "se_paired": centred.groupby(level="point").std(ddof=1) / np.sqrt(n),
                         "replications": n})


def _roi(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Ratio of mean saving to mean intervention cost per point, delta-method standard error."""
    s = savings(a, b)
    x, y = s["nhs_saving"].astype(float), s["intervention_cost"].astype(float)
    rows = {}
    for point, xs in x.groupby(level="point"):
        ys = y.loc[xs.index]
        mx, my, n = xs.mean(), ys.mean(), len(xs)
        r = mx / my if my else float("nan")
        se = float("nan")
        if n > 1 and my:
            cov = np.cov(xs, ys, ddof=1)
            se = float(np.sqrt(max(cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1], 0.0) / n) / abs(my))
        rows[point] = {"value": r, "se": se, "se_paired": se, "replications": n}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("point")


def point_outcomes(records: pd.DataFrame, outputs: Sequence[str], baseline: str,
                   arms: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table: point, arm, output, value (mean over replications of the paired value),
    se (its replication-level standard error; NaN with one replication), se_paired (the
    standard error of differences between points, under common random numbers),
    replications.

    ``arms``: the arms to report (default: every arm that has records; incremental outputs
    skip the baseline).
    """
    names = list(dict.fromkeys(records["arm"])) if arms is None else list(arms)
    frames = []
    for arm in names:
        a, b = aligned(records, arm, baseline)
        for name in outputs:
            if arm == baseline and not name.startswith("mean:"):
                continue
            table = _roi(a, b) if name == "roi" else _mean_se(replicate_values(a, b, name))
            frames.append(table.reset_index().assign(arm=arm, output=name))
    columns = ["point", "arm", "output", "value", "se", "se_paired", "replications"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]
