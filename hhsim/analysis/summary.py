"""Per-arm results and differences from the baseline, with Monte-Carlo intervals.

Each arm is summarised by the mean over replications. Differences are paired: arm minus
baseline within each replication (they share random numbers), then averaged. Intervals are
95% Monte-Carlo intervals, mean +/- t(0.975, R-1) x SD / sqrt(R): they measure simulation
noise for the given parameters, not parameter uncertainty (that is what PSA is for).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

#: Outcomes in the printed table: column, label, number format.
HEADLINE = [
    ("nhs_cost", "NHS cost, £ (disc.)", "{:,.0f}"),
    ("intervention_cost", "Intervention cost, £ (disc.)", "{:,.0f}"),
    ("qalys", "QALYs (disc.)", "{:,.1f}"),
    ("good_health_years", "Years in good health (disc.)", "{:,.1f}"),
    ("deaths", "Deaths", "{:,.1f}"),
    ("admissions", "Emergency and MH admissions", "{:,.1f}"),
]


def mc_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% Monte-Carlo interval of replicate values (NaN bounds for one value)."""
    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if v.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return mean, mean - half, mean + half


def summarise(records: pd.DataFrame, baseline: str, outcomes: list[str] | None = None) -> pd.DataFrame:
    """Long table: arm, outcome, mean, interval; and the paired difference from the baseline."""
    if records.empty:
        return pd.DataFrame()
    numeric = [c for c in records.columns
               if c not in {"run_id", "arm", "replication", "seed"} and
               pd.api.types.is_numeric_dtype(records[c])]
    outcomes = outcomes or numeric
    base = records[records["arm"] == baseline].set_index("replication")
    rows = []
    for arm, group in records.groupby("arm", sort=False):
        g = group.set_index("replication")
        paired = g.index.intersection(base.index)
        for col in outcomes:
            mean, lo, hi = mc_interval(g[col].to_numpy())
            row = {"arm": arm, "outcome": col, "replications": len(g), "mean": mean,
                   "mc_low": lo, "mc_high": hi}
            if arm != baseline and len(paired):
                d = (g.loc[paired, col] - base.loc[paired, col]).to_numpy()
                row["difference"], row["diff_mc_low"], row["diff_mc_high"] = mc_interval(d)
            rows.append(row)
    return pd.DataFrame(rows)


def _interval(lo: float, hi: float, fmt: str) -> str:
    if np.isnan(lo):
        return "(1 replication: no interval)"
    return f"({fmt.format(lo)} to {fmt.format(hi)})"


def format_table(summary: pd.DataFrame, baseline: str, tenants: int, replications: int) -> str:
    """The headline results as plain text."""
    if summary.empty:
        return "No runs finished."
    lines = [f"Results for {tenants:,} tenants, mean of {replications} replication(s); "
             "intervals are 95% Monte-Carlo intervals.", ""]
    for arm, group in summary.groupby("arm", sort=False):
        title = f"{arm} (baseline)" if arm == baseline else f"{arm} vs {baseline}"
        lines.append(title)
        g = group.set_index("outcome")
        for col, label, fmt in HEADLINE:
            if col not in g.index:
                continue
            r = g.loc[col]
            text = f"  {label:<32} {fmt.format(r['mean']):>14} {_interval(r['mc_low'], r['mc_high'], fmt)}"
            if arm != baseline and "difference" in r and not np.isnan(r["difference"]):
                sign = "+" if r["difference"] >= 0 else ""
                text += (f"   difference {sign}{fmt.format(r['difference'])} "
                         f"{_interval(r['diff_mc_low'], r['diff_mc_high'], fmt)}")
            lines.append(text)
        lines.append("")
    return "\n".join(lines).rstrip()
