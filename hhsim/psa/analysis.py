"""What a PSA's draws say: the cost-effectiveness plane, acceptability, the frontier, and the
expected value of perfect and partial perfect information.

Per draw and arm: mean cost (£, discounted, from the chosen perspective) and QALYs
(discounted) over the replications of that draw; net benefit NB = lambda x QALYs - cost.

- acceptability (CEAC): for each threshold, the share of draws in which each arm has the
  highest NB (``hhsim.analysis.ceac``);
- frontier (CEAF): the arm with the highest expected NB at each threshold, with the
  probability that it is the most cost-effective;
- EVPI(lambda) = E[max_arm NB] - max_arm E[NB]: what resolving every uncertainty would be
  worth, per run (the simulated population) and per person;
- EVPPI for a group of parameters (Strong, Oakley & Brennan, Med Decis Making 2014): regress
  each arm's incremental NB on the group's parameters with a generalised additive model
  (statsmodels' ``GLMGam`` with cubic B-splines), then E[max fitted] - max E[fitted]. It is
  an estimate: with few draws it is biased upward by the fit's noise, so it is given only
  with at least 40 draws per parameter of the group (NaN otherwise, with a warning).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hhsim.analysis.ceac import ceac
from hhsim.analysis.cost_effectiveness import with_cost
from hhsim.analysis.pairing import mean_over_replications


def per_draw(records: pd.DataFrame, perspective: str) -> pd.DataFrame:
    """One row per arm x point: cost, qalys, population (means over replications)."""
    means = mean_over_replications(with_cost(records, perspective))
    return means[["arm", "point", "cost", "qalys", "population"]]


def wide(draws: pd.DataFrame, arms: Sequence[str], column: str) -> np.ndarray:
    """(points, arms) array of ``column``, points in order."""
    return draws.pivot(index="point", columns="arm", values=column)[list(arms)].to_numpy(float)


def acceptability(draws: pd.DataFrame, arms: Sequence[str], thresholds: Sequence[float]) -> pd.DataFrame:
    """Long table: threshold, arm, probability (most cost-effective), expected NB (£ per run),
    on_frontier (the arm with the highest expected NB at that threshold)."""
    table = ceac(draws, thresholds)
    cost, qalys = wide(draws, arms, "cost"), wide(draws, arms, "qalys")
    lam = np.asarray(thresholds, float)
    expected = (lam[:, None] * qalys.mean(axis=0)[None] - cost.mean(axis=0)[None])  # threshold x arm
    best = expected.argmax(axis=1)
    rows = pd.DataFrame({"threshold": np.repeat(lam, len(arms)), "arm": list(arms) * len(lam),
                         "expected_nb": expected.ravel(),
                         "on_frontier": (best[:, None] == np.arange(len(arms))[None]).ravel()})
    return table.merge(rows, on=["threshold", "arm"])


def evpi(draws: pd.DataFrame, arms: Sequence[str], thresholds: Sequence[float]) -> pd.DataFrame:
    """EVPI per threshold, £ per run and per person."""
    cost, qalys = wide(draws, arms, "cost"), wide(draws, arms, "qalys")
    people = float(draws["population"].mean())
    out = []
    for lam in thresholds:
        nb = lam * qalys - cost
        value = float(nb.max(axis=1).mean() - nb.mean(axis=0).max())
        out.append({"threshold": float(lam), "evpi": value, "evpi_per_person": value / people})
    return pd.DataFrame(out)


#: Draws needed per spline coefficient for an EVPPI estimate (fewer: NaN, and a warning).
DRAWS_PER_COEFFICIENT = 10
SPLINE_DF = 4  # cubic B-splines: 4 coefficients per parameter at the least


def evppi_possible(draws: int, group_size: int) -> bool:
    """Whether there are enough draws for the additive regression of a group."""
    return draws >= DRAWS_PER_COEFFICIENT * SPLINE_DF * group_size


def _gam_fit(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Fitted values of an additive model y ~ sum_j s(x_j) (cubic B-splines)."""
    from statsmodels.gam.api import BSplines, GLMGam
    from statsmodels.tools.sm_exceptions import PerfectSeparationError

    keep = [j for j in range(x.shape[1]) if np.ptp(x[:, j]) > 0]
    if not keep or np.ptp(y) == 0:
        return np.full_like(y, y.mean())
    x = x[:, keep]
    df = max(SPLINE_DF, min(8, len(y) // (DRAWS_PER_COEFFICIENT * x.shape[1])))
    splines = BSplines(x, df=[df] * x.shape[1], degree=[3] * x.shape[1])
    try:
        fit = GLMGam(y, exog=np.ones((len(y), 1)), smoother=splines).fit()
    except PerfectSeparationError:  # the splines fit y exactly: y is a function of the group
        return y.astype(float)
    return np.asarray(fit.fittedvalues, float)


def evppi(draws: pd.DataFrame, params: pd.DataFrame, arms: Sequence[str], baseline: str,
          groups: dict[str, Sequence[str]], thresholds: Sequence[float]) -> pd.DataFrame:
    """EVPPI per group and threshold, £ per run and per person (regression method)."""
    cost, qalys = wide(draws, arms, "cost"), wide(draws, arms, "qalys")
    people = float(draws["population"].mean())
    ref = list(arms).index(baseline)
    rows = []
    for group, members in groups.items():
        x = params.sort_values("point")[list(members)].to_numpy(float)
        for lam in thresholds:
            if not evppi_possible(len(x), len(members)):
                rows.append({"group": group, "parameters": ", ".join(members), "threshold": float(lam),
                             "evppi": float("nan"), "evppi_per_person": float("nan")})
                continue
            inb = (lam * qalys - cost) - (lam * qalys[:, ref] - cost[:, ref])[:, None]
            fitted = np.column_stack([np.zeros(len(inb)) if k == ref else _gam_fit(inb[:, k], x)
                                      for k in range(len(arms))])
            value = max(float(fitted.max(axis=1).mean() - fitted.mean(axis=0).max()), 0.0)
            rows.append({"group": group, "parameters": ", ".join(members), "threshold": float(lam),
                         "evppi": value, "evppi_per_person": value / people})
    return pd.DataFrame(rows, columns=["group", "parameters", "threshold", "evppi", "evppi_per_person"])


def incremental(draws: pd.DataFrame, arms: Sequence[str], baseline: str) -> pd.DataFrame:
    """Per draw and arm other than the baseline: incremental cost and QALYs."""
    base = draws[draws["arm"] == baseline].set_index("point")[["cost", "qalys"]]
    out = []
    for arm in arms:
        if arm == baseline:
            continue
        a = draws[draws["arm"] == arm].set_index("point")[["cost", "qalys"]]
        d = (a - base.loc[a.index]).rename(columns={"cost": "incremental_cost", "qalys": "incremental_qalys"})
        out.append(d.reset_index().assign(arm=arm))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["point", "incremental_cost", "incremental_qalys", "arm"])
