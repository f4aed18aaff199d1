"""Does it pay? Savings, net saving, return on investment and payback, paired by replication.

For each arm against the baseline of the same replication (common random numbers):

- ``nhs_saving`` = baseline NHS care cost - arm NHS care cost (discounted; intervention
  costs are never in NHS care cost, whoever pays them);
- ``intervention_cost`` = arm intervention cost - baseline intervention cost;
- ``net_saving`` = ``nhs_saving - intervention_cost``;
- ``roi`` = mean ``nhs_saving`` / mean ``intervention_cost``: £ of NHS care saved per £ spent
  on the intervention (1 = pays for itself), with a delta-method Monte-Carlo interval;
- ``qalys_gained``: the paired QALY difference;
- ``payback_month``: the first month in which cumulative undiscounted NHS care savings
  reach cumulative undiscounted intervention spending, on the mean over replications of
  the paired monthly series (cash, as BRE's payback periods are), with the share of
  replications that paid back within the horizon.

Intervals are 95% Monte-Carlo intervals: simulation noise for the given parameters
(``hhsim.analysis.intervals``; an intervention cost over a baseline that spends nothing
cannot be negative, so its interval is cut at 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hhsim.analysis.intervals import EXACT, mc_interval, ratio_interval
from hhsim.analysis.pairing import aligned, draw_keys

SERIES = ("nhs_saving", "intervention_cost", "qalys_gained", "net_saving")
COLUMNS = ["arm", "replications",
           *(f"{k}{s}" for k in SERIES for s in ("", "_low", "_high", "_per_1000")),
           "roi", "roi_low", "roi_high"]
PAYBACK_COLUMNS = ["arm", "payback_month", "share_paid_back", "months"]
#: The monthly tables' cash columns (undiscounted £): NHS care, and interventions whoever pays.
CASH = {"care": "cost:nhs_care", "spend": "cost:interventions"}


def per_1000(values: pd.Series, population: pd.Series) -> pd.Series:
    """``values`` per 1,000 people represented (``population``: people per run)."""
    return values * (1000.0 / population)


def nhs_saving(arm: pd.DataFrame, base: pd.DataFrame, care: str = "nhs_cost") -> pd.Series:
    """Baseline minus arm ``care`` cost (£), from an arm's rows and the baseline's ``aligned``
    with them."""
    return base[care] - arm[care]


def net_saving(saving: pd.Series, cost: pd.Series) -> pd.Series:
    """NHS care ``saving`` minus intervention ``cost`` (£): 0 where the intervention pays
    for itself from NHS care savings (ROI = 1)."""
    return saving - cost


def savings(arm: pd.DataFrame, base: pd.DataFrame, care: str = "nhs_cost",
            spend: str = "intervention_cost") -> pd.DataFrame:
    """Does it pay, draw by draw, from an arm's rows and the baseline's ``aligned`` with them
    (£): ``nhs_saving``, ``intervention_cost`` (arm - baseline ``spend``) and ``net_saving``."""
    saving, cost = nhs_saving(arm, base, care), arm[spend] - base[spend]
    return pd.DataFrame({"nhs_saving": saving, "intervention_cost": cost,
                         "net_saving": net_saving(saving, cost)})


def economics(records: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """One row per arm other than the baseline: paired savings, net saving, ROI, QALYs."""
    if records.empty or baseline not in set(records["arm"]):
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for arm in dict.fromkeys(records["arm"]):
        if arm == baseline:
            continue
        a, b = aligned(records, arm, baseline)
        if not len(a):
            continue
        series = savings(a, b).assign(qalys_gained=a["qalys"] - b["qalys"])
        row: dict = {"arm": arm, "replications": len(a)}
        # an incremental intervention cost over a baseline that spends nothing is a level
        spends_nothing = not b["intervention_cost"].any()
        for key, values in series.items():
            lower = 0.0 if key == "intervention_cost" and spends_nothing else None
            row[key], row[f"{key}_low"], row[f"{key}_high"] = mc_interval(values.to_numpy(), lower)
            row[f"{key}_per_1000"] = float(per_1000(values, a["population"]).mean())
        row["roi"], row["roi_low"], row["roi_high"] = ratio_interval(
            series["nhs_saving"].to_numpy(), series["intervention_cost"].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def cash_savings(monthly: pd.DataFrame, records: pd.DataFrame, baseline: str) -> dict[str, pd.DataFrame]:
    """Per arm other than the baseline: cumulative undiscounted ``nhs_saving``,
    ``intervention_cost`` and ``net_saving`` (£ cash, as ``savings``) by step (rows), one
    column per replication under each, paired with the baseline's run of the replication."""
    m = monthly.merge(records[["run_id", "arm", *draw_keys(records)]], on="run_id")
    out = {}
    for arm in dict.fromkeys(records["arm"]):
        if arm == baseline:
            continue
        flows = savings(*aligned(m, arm, baseline, by=("step",)), **CASH)
        saving, cost = (flows[k].unstack("replication").cumsum() for k in ("nhs_saving", "intervention_cost"))
        out[arm] = pd.concat({"nhs_saving": saving, "intervention_cost": cost,
                              "net_saving": net_saving(saving, cost)}, axis=1)
    return out


def payback(monthly: pd.DataFrame, records: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Payback month per arm other than the baseline (NaN: not within the horizon)."""
    if monthly.empty or records.empty:
        return pd.DataFrame(columns=PAYBACK_COLUMNS)
    rows = []
    for arm, cash in cash_savings(monthly, records, baseline).items():
        cum_saving, cum_spend = cash["nhs_saving"], cash["intervention_cost"]
        paid = (cum_spend > 0) & (cum_saving >= cum_spend)
        mean_paid = (cum_spend.mean(axis=1) > 0) & (cum_saving.mean(axis=1) >= cum_spend.mean(axis=1))
        month = float(mean_paid.index[mean_paid.to_numpy()].min()) if mean_paid.any() else float("nan")
        rows.append({"arm": arm, "payback_month": month,
                     "share_paid_back": float(paid.any(axis=0).mean()),
                     "months": int(cum_saving.index.max())})
    return pd.DataFrame(rows, columns=PAYBACK_COLUMNS)


def format_economics(econ: pd.DataFrame, baseline: str, months_per_step: int = 1, exact: bool = False) -> str:
    """The economic results (``economics`` merged with ``payback``) as plain text; payback
    is counted in model steps: months, or years for a yearly model (``months_per_step``);
    ``exact``: cohort mode's expected values, which have no interval."""
    if econ.empty:
        return ""
    how = EXACT if exact else "95% MC intervals"
    lines = [f"Does it pay? Paired against {baseline} (£, discounted; {how})"]

    def money(r: pd.Series, key: str) -> str:
        lo, hi = r[f"{key}_low"], r[f"{key}_high"]
        interval = "" if np.isnan(lo) else f" ({lo:,.0f} to {hi:,.0f})"
        return f"{r[key]:,.0f}{interval}"

    for r in econ.itertuples(index=False):
        r = pd.Series(r._asdict())
        lines.append(f"{r['arm']}")
        lines.append(f"  {'NHS care saving':<26} {money(r, 'nhs_saving')}")
        lines.append(f"  {'Intervention cost':<26} {money(r, 'intervention_cost')}")
        lines.append(f"  {'Net saving':<26} {money(r, 'net_saving')}")
        if np.isnan(r["roi"]):
            roi = "no intervention cost"
        else:
            interval = "" if np.isnan(r["roi_low"]) else f" ({r['roi_low']:.2f} to {r['roi_high']:.2f})"
            roi = f"{r['roi']:.2f}{interval} £ of NHS care saved per £ spent"
        lines.append(f"  {'Return on investment':<26} {roi}")
        q_lo, q_hi = r["qalys_gained_low"], r["qalys_gained_high"]
        q_int = "" if np.isnan(q_lo) else f" ({q_lo:,.2f} to {q_hi:,.2f})"
        lines.append(f"  {'QALYs gained':<26} {r['qalys_gained']:,.2f}{q_int}")
        if "payback_month" in r and not np.isnan(r["months"]) and r["intervention_cost"] > 0:
            unit = "year" if months_per_step == 12 else "month"
            when = (f"{unit} {r['payback_month']:.0f}" if not np.isnan(r["payback_month"])
                    else f"not within {r['months']:.0f} {unit}s")
            lines.append(f"  {'Payback (cash, NHS care)':<26} {when} "
                         f"({r['share_paid_back']:.0%} of replications paid back)")
    return "\n".join(lines)


#: The headline table: economics column, label, number format, and the smallest possible value.
HEADLINE = [
    ("nhs_saving", "NHS care saving, £", "{:,.0f}"),
    ("intervention_cost", "Intervention cost, £", "{:,.0f}"),
    ("net_saving", "Net saving, £", "{:,.0f}"),
    ("roi", "Return on investment, £ per £", "{:,.2f}"),
    ("qalys_gained", "QALYs gained", "{:,.2f}"),
]


def headline_cell(r: pd.Series, key: str, fmt: str) -> tuple[str, str]:
    """One arm's (``r``: a row of ``economics``) measure ``key`` as ``format_headline`` prints
    it: the value, and its 95% MC interval in brackets ("" when it has none)."""
    if np.isnan(r[key]):
        return ("n/a" if key != "roi" else "no cost"), ""
    lo, hi = r[f"{key}_low"], r[f"{key}_high"]
    return fmt.format(r[key]), ("" if np.isnan(lo) else f"({fmt.format(lo)} to {fmt.format(hi)})")


def format_headline(econ: pd.DataFrame, baseline: str) -> str:
    """The short table a commissioner reads first: per arm against the baseline, the mean
    over replications of each headline measure, its 95% MC interval on the line below."""
    if econ.empty:
        return ""
    arms = list(econ["arm"])
    rows = econ.set_index("arm")
    label = 34
    cells = []
    for key, text, fmt in HEADLINE:
        values, intervals = zip(*(headline_cell(rows.loc[arm], key, fmt) for arm in arms), strict=True)
        cells.append((text, list(values), list(intervals)))
    width = max(24, *(len(a) + 2 for a in arms),
                *(len(c) + 2 for _, values, intervals in cells for c in (*values, *intervals)))
    shown = any(i for *_, intervals in cells for i in intervals)
    lines = [f"Against {baseline}: mean over replications"
             + (" (95% MC interval below)" if shown else "") + ", £ discounted",
             " " * label + "".join(f"{a:>{width}}" for a in arms)]
    for text, values, intervals in cells:
        lines.append(f"  {text:<{label - 2}}" + "".join(f"{v:>{width}}" for v in values))
        if any(intervals):
            lines.append(" " * label + "".join(f"{i:>{width}}" for i in intervals))
    return "\n".join(lines)
