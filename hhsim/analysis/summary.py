"""Per-arm results and differences from the baseline, with Monte-Carlo intervals.

Each arm is summarised by the mean over replications. Differences are paired: arm minus
baseline within each replication (they share random numbers), then averaged. Intervals are
95% Monte-Carlo intervals (``hhsim.analysis.intervals``): every record outcome is a level
that cannot be negative (costs, counts, days, years, QALYs), so its interval is cut at 0;
differences may take either sign.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hhsim.analysis.economics import nhs_saving, per_1000
from hhsim.analysis.intervals import mc_interval, ratio_interval
from hhsim.analysis.pairing import aligned, paired
from hhsim.interventions.base import Measure
from hhsim.interventions.registry import TYPES, served_measures

#: Outcomes in the printed table: column, label, number format.
HEADLINE = [
    ("nhs_cost", "NHS care cost, £ (disc.)", "{:,.0f}"),
    ("intervention_cost", "Intervention cost, £ (disc.)", "{:,.0f}"),
    ("qalys", "QALYs (disc.)", "{:,.1f}"),
    ("good_health_years", "Years in good health (disc.)", "{:,.1f}"),
    ("deaths", "Deaths", "{:,.1f}"),
    ("admissions", "Emergency and MH admissions", "{:,.1f}"),
    ("bed_days", "Hospital bed days", "{:,.0f}"),
    ("delayed_discharge_days", "Delayed-discharge days", "{:,.0f}"),
    ("readmissions_30d", "30-day readmissions", "{:,.1f}"),
]


def summarise(records: pd.DataFrame, baseline: str, outcomes: list[str] | None = None) -> pd.DataFrame:
    """Long table per arm and outcome: the mean total for the population represented and
    per 1,000 people, with intervals, and the paired difference from the baseline."""
    if records.empty:
        return pd.DataFrame()
    numeric = [c for c in records.columns
               if c not in {"run_id", "arm", "replication", "seed"} and not c.endswith("_se") and
               pd.api.types.is_numeric_dtype(records[c])]
    outcomes = outcomes or numeric
    rows = []
    for arm, g in records.groupby("arm", sort=False):
        a, b = aligned(records, arm, baseline)
        for col in outcomes:
            row = {"arm": arm, "outcome": col, "replications": len(g)}
            row["mean"], row["mc_low"], row["mc_high"] = mc_interval(g[col].to_numpy(), lower=0.0)
            row["per_1000"], row["per_1000_low"], row["per_1000_high"] = mc_interval(
                per_1000(g[col], g["population"]).to_numpy(), lower=0.0)
            if arm != baseline and len(a):
                d = a[col] - b[col]
                row["difference"], row["diff_mc_low"], row["diff_mc_high"] = mc_interval(d.to_numpy())
                row["diff_per_1000"], row["diff_per_1000_low"], row["diff_per_1000_high"] = mc_interval(
                    per_1000(d, a["population"]).to_numpy())
            rows.append(row)
    return pd.DataFrame(rows)


def summarise_groups(groups: pd.DataFrame, records: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Outcomes by group: mean over replications per arm, and the paired difference from
    the baseline (both as totals for the population represented)."""
    if groups.empty:
        return pd.DataFrame()
    g = groups.merge(records[["run_id", "arm", "replication"]], on="run_id")
    keys = ["dimension", "group", "outcome"]
    mean = g.groupby(["arm", *keys], sort=False)["value"].mean().rename("mean").reset_index()
    vs_base = paired(g, baseline, ["value"], by=keys)
    if not vs_base:
        return mean.assign(difference=np.nan)
    diff = pd.concat(vs_base, names=["arm"]).groupby(["arm", *keys], sort=False)["value"].mean()
    return mean.merge(diff.rename("difference").reset_index(), on=["arm", *keys], how="left")


def summarise_checks(checks: pd.DataFrame, records: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The check table of the baseline arm, averaged over replications."""
    if checks.empty:
        return pd.DataFrame()
    ids = records.loc[records["arm"] == baseline, "run_id"]
    c = checks[checks["run_id"].isin(ids)]
    out = c.groupby("check", sort=False)[["simulated", "input"]].mean().reset_index()
    out["ratio"] = out["simulated"] / out["input"]
    return out.merge(c.drop_duplicates("check")[["check", "unit", "note"]], on="check")


def format_interval(lo: float, hi: float, fmt: str, exact: bool = False) -> str:
    """A 95% MC interval as ``format_table`` prints it, in brackets, with numbers as ``fmt``
    (``exact``: cohort mode's expected values, which have none)."""
    if exact:
        return "(exact)"
    if np.isnan(lo):
        return "(1 replication: no interval)"
    return f"({_plain(lo, fmt)} to {_plain(hi, fmt)})"


def _plain(x: float, fmt: str) -> str:
    """``x`` formatted, never as -0."""
    text = fmt.format(x)
    return fmt.format(0.0) if text.lstrip("-").strip("0.,") == "" else text


def _signed(x: float, fmt: str) -> str:
    text = fmt.format(x)
    if text.lstrip("-").strip("0.,") == "":  # rounds to zero: no sign, never -0
        return fmt.format(0.0)
    return ("+" if x >= 0 else "") + text


def format_table(summary: pd.DataFrame, baseline: str, header: str, exact: bool = False) -> str:
    """The headline results as plain text: totals for the population represented, per
    1,000 people, and differences from the baseline (``exact``: cohort mode's expected
    values, which have no interval)."""
    if summary.empty:
        return "No runs finished."
    lines = [header, ""]
    interval = "interval" if exact else "95% MC interval"
    for arm, group in summary.groupby("arm", sort=False):
        lines.append(f"{arm} (baseline)" if arm == baseline else f"{arm} vs {baseline}")
        lines.append(f"  {'':<32} {'total':>14} {interval:<32} {'per 1,000':>12}")
        g = group.set_index("outcome")
        for col, label, fmt in HEADLINE:
            if col not in g.index:
                continue
            r = g.loc[col]
            lines.append(f"  {label:<32} {fmt.format(r['mean']):>14} "
                         f"{format_interval(r['mc_low'], r['mc_high'], fmt, exact):<32} "
                         f"{fmt.format(r['per_1000']):>12}")
            if arm != baseline and "difference" in r and not np.isnan(r["difference"]):
                lines.append(f"  {'  difference':<32} {_signed(r['difference'], fmt):>14} "
                             f"{format_interval(r['diff_mc_low'], r['diff_mc_high'], fmt, exact):<32} "
                             f"{_signed(r['diff_per_1000'], fmt):>12}")
        lines.append("")
    return "\n".join(lines).rstrip()


def format_checks(checks: pd.DataFrame) -> str:
    """The check table as plain text."""
    if checks.empty:
        return ""
    lines = ["Checks (baseline arm): simulated baseline rates against the input rates they came from",
             f"  {'check':<64} {'simulated':>10} {'input':>10} {'ratio':>7}"]
    for r in checks.itertuples():
        lines.append(f"  {r.check:<64} {r.simulated:>10.4g} {r.input:>10.4g} {r.ratio:>7.3f}")
    return "\n".join(lines)


def kinds_of(interventions: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, str]]:
    """Each arm's intervention types by name, from its interventions as run (resolved tables)."""
    return {arm: {t["name"]: t["type"] for t in trees} for arm, trees in interventions.items()}


def served_by(columns: Collection[str], name: str, kind: str | None = None) -> Measure | None:
    """The measure counting whom intervention ``name`` served, if its record (``columns``)
    has it: its type's ``served``, or, when its type ``kind`` is not known, the first
    registered type's served measure that its record has (``registry.served_measures``)."""
    if kind in TYPES:
        served = TYPES[kind].runtime.served
        measures = [served] if served else []
    else:
        measures = [Measure(k, label) for k, label in served_measures().items()]
    return next((m for m in measures if f"iv_{name}_{m.key}" in columns), None)


def served_label(column: str) -> str:
    """What one served is (e.g. "client") for a column ``iv_<name>_<key>`` counting them (a
    break-even table's ``served_by``); "person served" when no registered type says."""
    served = served_measures()
    keys = [k for k in served if column.endswith(f"_{k}")]
    return served[max(keys, key=len)] if keys else "person served"


def _amount(values: pd.Series, lower: float | None = 0.0) -> str:
    """Mean (95% MC interval) of a count or cost (cut at ``lower``), as text."""
    mean, lo, hi = mc_interval(values.to_numpy(dtype=float), lower=lower)
    if np.isinf(mean):
        return "unlimited"
    if np.isnan(mean):
        return "none"
    return f"{mean:,.1f}" + ("" if np.isnan(lo) or lo == hi else f" ({lo:,.1f} to {hi:,.1f})")


def _ratio(x: pd.Series, y: pd.Series, lower: float | None = None) -> str:
    """mean(x) / mean(y) (95% delta-method interval), as text: a ratio of means, so a cost
    per person served is the mean cost over the mean number served."""
    r, lo, hi = ratio_interval(x.to_numpy(dtype=float), y.to_numpy(dtype=float), lower)
    return f"{r:,.1f}" + ("" if np.isnan(lo) else f" ({lo:,.1f} to {hi:,.1f})")


def format_interventions(records: pd.DataFrame, names: Mapping[str, Iterable[str]], baseline: str,
                         kinds: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """What each arm's interventions (``names`` by arm) did, as plain text: the record
    measures their types print (``kinds``: each arm's intervention types by name; the
    type's ``printed``), means over replications with 95% Monte-Carlo intervals, the cost
    per person (or dwelling) served (a ratio of means) and, for an arm with one
    intervention, the NHS care saving per person served (paired with the baseline of the
    same replication)."""
    lines = ["Interventions (mean per run, 95% MC interval; people, or dwellings for repairs)"]
    for arm, group in records.groupby("arm", sort=False):
        arm_names = list(names.get(arm, []))
        for name in arm_names:
            lines.append(f"  {arm} / {name}")
            kind = (kinds or {}).get(arm, {}).get(name)
            for m in TYPES[kind].runtime.printed if kind in TYPES else ():
                col = f"iv_{name}_{m.key}"
                if col in group:
                    lines.append(f"    {m.label:<46} {_amount(group[col])}")
            served = served_by(group.columns, name, kind)
            cost = f"intervention_cost_{name}"
            if served and cost in group and (group[f"iv_{name}_{served.key}"] > 0).all():
                count = group[f"iv_{name}_{served.key}"]
                label = f"cost per {served.label}, £ (disc.)"
                lines.append(f"    {label:<46} {_ratio(group[cost], count, lower=0.0)}")
                if len(arm_names) == 1 and arm != baseline:
                    a, b = aligned(records, arm, baseline)
                    label = f"NHS care saving per {served.label}, £"
                    lines.append(f"    {label:<46} "
                                 f"{_ratio(nhs_saving(a, b), a[f'iv_{name}_{served.key}'])}")
    return "\n".join(lines) if len(lines) > 1 else ""
