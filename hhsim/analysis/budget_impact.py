"""Budget impact: undiscounted money by payer and year, and capacity released.

From the monthly tables (cash in the price year, undiscounted: ``cost:<payer>``), each arm's
spending per payer and year of the horizon, and its change against the baseline of the
same draw (``difference`` = arm - baseline: negative is a saving). Each payer's change is
split into two components:

- ``cash``: money the payer actually spends or stops spending (interventions, care
  packages, contacts);
- ``bed days``: the value of hospital bed days (``*_bed_days`` and ``*_delayed_days``
  activities) at their unit cost. Beds freed are refilled by other patients: this is
  capacity released, not cash, and is kept apart.

``capacity`` gives the same bed days, delayed-discharge days, admissions and readmissions
as counts freed per year (baseline - arm), with no money attached.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hhsim.analysis.intervals import mc_interval
from hhsim.analysis.pairing import draw_keys, paired
from hhsim.core.accounting import PAYERS

CASH, BED_DAYS = "cash", "bed days (capacity, not cash)"
#: Monthly counts reported as capacity released: column, label.
CAPACITY = {"bed_days": "bed days", "delayed_days": "delayed-discharge days",
            "admissions": "admissions", "readmissions": "30-day readmissions"}


def bed_day_activities(records: pd.DataFrame) -> list[str]:
    """Activities whose cost is hospital bed days (valued as capacity, paid by the NHS)."""
    return [c[len("cost_"):-len("_undisc")] for c in records.columns
            if c.startswith("cost_") and c.endswith(("_bed_days_undisc", "_delayed_days_undisc"))]


def _with_year(monthly: pd.DataFrame, records: pd.DataFrame, months_per_step: int) -> pd.DataFrame:
    keys = draw_keys(records)
    m = monthly.merge(records[["run_id", "arm", *keys]], on="run_id")
    m["year"] = (m["step"] * months_per_step - 1) // 12 + 1
    return m


def yearly_spend(monthly: pd.DataFrame, records: pd.DataFrame, months_per_step: int = 1) -> pd.DataFrame:
    """Per run, year and payer: undiscounted ``cash`` and ``bed days`` value (£)."""
    keys = draw_keys(records)
    m = _with_year(monthly, records, months_per_step)
    beds = bed_day_activities(records)
    # £ per bed day in the price year, per run: the record's undiscounted cost over its use.
    unit = pd.DataFrame({a: records[f"cost_{a}_undisc"] / records[f"use_{a}"].replace(0, np.nan)
                         for a in beds}, index=records.index).fillna(0.0)
    unit["run_id"] = records["run_id"]
    m = m.merge(unit, on="run_id", suffixes=("", ":unit"))
    bed_value = sum((m[f"use:{a}"] * m[a] for a in beds), pd.Series(0.0, index=m.index))
    frames = []
    for payer in PAYERS:
        f = m[["run_id", "arm", *keys, "year"]].copy()
        f["payer"] = payer
        f[BED_DAYS] = bed_value if payer == "nhs" else 0.0
        f[CASH] = m[f"cost:{payer}"] - f[BED_DAYS]
        frames.append(f)
    spend = pd.concat(frames, ignore_index=True)
    return spend.groupby(["run_id", "arm", *keys, "year", "payer"], sort=False)[[CASH, BED_DAYS]].sum(
    ).reset_index()


def budget_impact(monthly: pd.DataFrame, records: pd.DataFrame, baseline: str,
                  months_per_step: int = 1) -> pd.DataFrame:
    """Per arm, year, payer and component (cash; bed days): mean undiscounted spending (£)
    with the paired difference against the baseline and its 95% MC interval."""
    if monthly.empty or records.empty:
        return pd.DataFrame()
    spend = yearly_spend(monthly, records, months_per_step)
    long = spend.melt(id_vars=[c for c in spend.columns if c not in (CASH, BED_DAYS)],
                      value_vars=[CASH, BED_DAYS], var_name="component", value_name="spend")
    rows = []
    for (year, payer, component), g in long.groupby(["year", "payer", "component"], sort=False):
        vs_base = paired(g, baseline, ["spend"])
        for arm, a in g.groupby("arm", sort=False):
            row = {"arm": arm, "year": int(year), "payer": payer, "component": component,
                   "spend": float(a["spend"].mean())}
            if arm in vs_base:
                row["difference"], row["difference_low"], row["difference_high"] = mc_interval(
                    vs_base[arm]["spend"].to_numpy())
            rows.append(row)
    return pd.DataFrame(rows).sort_values(["arm", "payer", "component", "year"], kind="stable",
                                          ignore_index=True)


def capacity(monthly: pd.DataFrame, records: pd.DataFrame, baseline: str,
             months_per_step: int = 1) -> pd.DataFrame:
    """Per arm other than the baseline, year and measure: counts freed (baseline - arm,
    people represented) with 95% MC intervals. Not money."""
    if monthly.empty or records.empty:
        return pd.DataFrame()
    keys = draw_keys(records)
    m = _with_year(monthly, records, months_per_step)
    cols = [c for c in CAPACITY if c in m.columns]
    yearly = m.groupby(["run_id", "arm", *keys, "year"], sort=False)[cols].sum().reset_index()
    rows = []
    for year, g in yearly.groupby("year", sort=True):
        for arm, d in paired(g, baseline, cols).items():
            for col in cols:
                freed, lo, hi = mc_interval(-d[col].to_numpy())
                rows.append({"arm": arm, "year": int(year), "measure": CAPACITY[col],
                             "freed": freed, "freed_low": lo, "freed_high": hi})
    return pd.DataFrame(rows)
