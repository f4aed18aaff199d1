"""Outcomes per person with their Monte-Carlo standard error, as a researcher compares a
microsimulation with a cohort model: the mean per person over the replications, and the
standard error of that mean over every person simulated (each run's ``per_person_<x>_se``,
``hhsim.model.record.per_person``, pooled: sqrt(sum of se^2) / R over R replications). In
cohort mode the values are the cohort model's expectation itself: exact, with no error."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hhsim.analysis.intervals import EXACT
from hhsim.analysis.pairing import aligned

#: Outcome, label and format of the per-person table.
SHOWN = (("cost", "cost, £", "{:,.2f}"), ("qalys", "QALYs", "{:.4f}"), ("life_years", "life years", "{:.4f}"))


def per_person_table(records: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per arm and outcome: ``mean`` per person, its pooled standard error ``se``, and the
    ``difference`` from the baseline per person (paired by replication) with its ``se``
    (the two arms' standard errors combined as if independent: an upper bound under common
    random numbers)."""
    rows = []
    for arm in dict.fromkeys(records["arm"]):
        a, b = aligned(records, arm, baseline)
        for key, *_ in SHOWN:
            col, se = f"per_person_{key}", f"per_person_{key}_se"
            if col not in records:
                continue
            r = len(a)
            pooled = float(np.sqrt((a[se] ** 2).sum())) / r
            row = {"arm": arm, "outcome": key, "mean": float(a[col].mean()), "se": pooled,
                   "difference": float("nan"), "difference_se": float("nan")}
            if arm != baseline:
                row["difference"] = float((a[col] - b[col]).mean())
                row["difference_se"] = float(np.sqrt(((a[se] ** 2) + (b[se] ** 2)).sum())) / r
            rows.append(row)
    return pd.DataFrame(rows)


def format_per_person(table: pd.DataFrame, baseline: str, people: int, exact: bool = False) -> str:
    """The per-person table as plain text (``people``: tenants simulated per run; ``exact``:
    the expected values of cohort mode, shown without a standard error)."""
    if table.empty:
        return ""
    how = (EXACT if exact else
           f"+/- one standard error over the {people:,} people simulated per run, pooled over replications")
    lines = [f"Per person (discounted; {how})",
             f"  {'':<24}" + "".join(f"{label:>26}" for _, label, _ in SHOWN)]

    def cell(g: pd.DataFrame, key: str, fmt: str, column: str, se: str) -> str:
        value = fmt.format(g.loc[key, column])
        return value if exact else f"{value} ± {fmt.format(g.loc[key, se])}"

    for arm, group in table.groupby("arm", sort=False):
        g = group.set_index("outcome")
        cells = [cell(g, k, fmt, "mean", "se") for k, _, fmt in SHOWN]
        name = arm + (" (baseline)" if arm == baseline else "")
        lines.append(f"  {name:<24}" + "".join(f"{c:>26}" for c in cells))
        if arm != baseline:
            diffs = [cell(g, k, fmt, "difference", "difference_se") for k, _, fmt in SHOWN]
            lines.append(f"  {'  difference':<24}" + "".join(f"{c:>26}" for c in diffs))
    return "\n".join(lines)
