"""Cost-effectiveness: costs and QALYs per arm, the efficiency frontier with ICERs, and
net monetary benefit at each threshold, from run records.

Costs are counted from one perspective (``PERSPECTIVES``):

- ``public_sector`` (default): every cost any payer bears (NHS, social care, housing
  provider, local authority), interventions included;
- ``nhs``: NHS care costs plus the arms' intervention costs, whoever pays them (the costs
  behind the return on investment in ``economics``).

Frontier (sequential ICERs): order the arms by mean cost; drop every arm *strongly
dominated* (another costs no more and gains no fewer QALYs, one of them strictly); then
repeatedly drop every arm *extendedly dominated* (its ICER against the previous arm on the
frontier is higher than the next arm's ICER, so a mix of its neighbours would do better).
The ICER of a frontier arm is against the previous frontier arm; the cheapest is the
reference.

Intervals are 95% Monte-Carlo intervals over paired draws. An ICER interval (delta method)
is only given where the QALY difference's interval excludes zero; otherwise the ratio has
no useful interval and the net monetary benefit (NMB = threshold x QALYs - cost) carries the
result. Expected values computed exactly (cohort mode, ``exact``) have no interval and need
none: there is no Monte-Carlo error.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from hhsim.analysis.intervals import EXACT, mc_interval, ratio_interval
from hhsim.analysis.pairing import paired
from hhsim.core.accounting import PAYERS

PERSPECTIVES = {
    "public_sector": "every cost of the NHS, social care, housing provider and local authority",
    "nhs": "NHS care costs and the intervention costs, whoever pays them",
}
#: QALYs and costs: per draw (a Series) or as arrays.
Values = TypeVar("Values", pd.Series, np.ndarray)
REFERENCE, FRONTIER, DOMINATED, EXTENDED = "reference", "frontier", "dominated", "extendedly dominated"


def perspective_cost(frame: pd.DataFrame, perspective: str = "public_sector", suffix: str = "") -> pd.Series:
    """Cost (£) of each row from a perspective; ``suffix`` "_undisc" for undiscounted."""
    if perspective == "public_sector":
        return sum(frame[f"cost_{p}{suffix}"] for p in PAYERS)
    if perspective == "nhs":
        return frame[f"nhs_cost{suffix}"] + frame[f"intervention_cost{suffix}"]
    raise ValueError(f"unknown perspective {perspective!r}; use one of {list(PERSPECTIVES)}")


def nmb(qalys: Values, threshold: float | np.ndarray, *costs: Values) -> Values:
    """Net monetary benefit (£): ``threshold`` (£ per QALY) x ``qalys`` minus each of
    ``costs`` (£) in turn; of levels, or of paired differences (the incremental NMB)."""
    value = threshold * qalys
    for cost in costs:
        value = value - cost
    return value


def with_cost(records: pd.DataFrame, perspective: str) -> pd.DataFrame:
    """``records`` with a ``cost`` column from the perspective."""
    return records.assign(cost=perspective_cost(records, perspective))


def frontier(arms: Sequence[str], costs: Sequence[float], effects: Sequence[float]) -> pd.DataFrame:
    """The efficiency frontier of options with mean ``costs`` and ``effects``: one row per
    option (in the given order) with its ``status`` (reference, frontier, dominated,
    extendedly dominated), ``comparator`` (the previous frontier option) and ``icer``."""
    df = pd.DataFrame({"arm": list(arms), "cost": np.asarray(costs, float),
                       "effect": np.asarray(effects, float)})
    df["status"] = DOMINATED
    df["comparator"] = pd.Series(np.nan, index=df.index, dtype="str")  # text, also when read back
    df["icer"] = np.nan
    c, e = df["cost"].to_numpy(), df["effect"].to_numpy()
    for i in range(len(df)):
        better = (c <= c[i]) & (e >= e[i]) & ((c < c[i]) | (e > e[i]))
        if not better.any():
            df.loc[i, "status"] = FRONTIER
    # Identical options: keep the first only.
    df.loc[df.duplicated(["cost", "effect"]) & (df["status"] == FRONTIER), "status"] = DOMINATED
    on = sorted(df.index[df["status"] == FRONTIER], key=lambda i: (c[i], -e[i]))
    while True:
        icers = [(c[b] - c[a]) / (e[b] - e[a]) for a, b in itertools.pairwise(on)]
        worse = [k for k in range(len(icers) - 1) if icers[k] > icers[k + 1]]
        if not worse:
            break
        df.loc[on[worse[0] + 1], "status"] = EXTENDED  # one at a time: ICERs change after each
        del on[worse[0] + 1]
    df.loc[on[0], "status"] = REFERENCE
    for a, b in itertools.pairwise(on):
        df.loc[b, "comparator"] = df.loc[a, "arm"]
        df.loc[b, "icer"] = (c[b] - c[a]) / (e[b] - e[a])
    return df


def _excludes_zero(low: float, high: float) -> bool:
    return bool(np.isfinite(low) and np.isfinite(high) and (low > 0 or high < 0))


def cost_effectiveness(records: pd.DataFrame, baseline: str, perspective: str = "public_sector",
                       effect: str = "qalys", exact: bool = False) -> pd.DataFrame:
    """Per arm: mean cost and QALYs with intervals, the difference from the baseline, and
    its place on the efficiency frontier with the ICER against its comparator (£ per QALY).
    ``exact``: the records are expected values (cohort mode), whose ICER needs no note."""
    if records.empty:
        return pd.DataFrame()
    df = with_cost(records, perspective)
    arms = list(dict.fromkeys(df["arm"]))
    rows = []
    for arm in arms:
        g = df[df["arm"] == arm]
        row = {"arm": arm, "perspective": perspective, "draws": len(g)}
        for col in ("cost", effect):  # levels: cannot be negative
            row[col], row[f"{col}_low"], row[f"{col}_high"] = mc_interval(g[col].to_numpy(), lower=0.0)
        rows.append(row)
    out = pd.DataFrame(rows)
    vs_base = paired(df, baseline, ["cost", effect])
    for i, arm in enumerate(arms):
        if arm in vs_base:
            d = vs_base[arm]
            for col in ("cost", effect):
                vals = mc_interval(d[col].to_numpy())
                for k, v in zip(("", "_low", "_high"), vals, strict=True):
                    out.loc[i, f"d_{col}{k}"] = v
            dq = d[effect].mean()
            out.loc[i, "icer_vs_baseline"] = d["cost"].mean() / dq if dq != 0 else np.nan
    front = frontier(out["arm"], out["cost"], out[effect])
    out["status"], out["comparator"], out["icer"] = front["status"], front["comparator"], front["icer"]
    out["icer_low"], out["icer_high"], out["icer_note"] = np.nan, np.nan, ""
    for i, r in out.iterrows():
        if r["comparator"] is None or pd.isna(r["comparator"]) or exact:
            continue
        d = paired(df, baseline, ["cost", effect], comparator=r["comparator"])[r["arm"]]
        _, q_lo, q_hi = mc_interval(d[effect].to_numpy())
        if _excludes_zero(q_lo, q_hi):
            _, out.loc[i, "icer_low"], out.loc[i, "icer_high"] = ratio_interval(
                d["cost"].to_numpy(), d[effect].to_numpy())
        elif np.isnan(q_lo):
            out.loc[i, "icer_note"] = "1 replication: no interval"
        else:
            out.loc[i, "icer_note"] = "QALY difference interval includes 0: read the NMB"
    return out


def net_monetary_benefit(records: pd.DataFrame, baseline: str, thresholds: Sequence[float],
                         perspective: str = "public_sector") -> pd.DataFrame:
    """Per arm and threshold (£ per QALY): mean NMB = threshold x QALYs - cost, and the
    incremental NMB against the baseline with a 95% MC interval (positive: worth it)."""
    if records.empty:
        return pd.DataFrame()
    df = with_cost(records, perspective)
    vs_base = paired(df, baseline, ["cost", "qalys"])
    rows = []
    for arm, g in df.groupby("arm", sort=False):
        for t in thresholds:
            row = {"arm": arm, "perspective": perspective, "threshold": float(t)}
            levels = nmb(g["qalys"], t, g["cost"]).to_numpy()
            row["nmb"], row["nmb_low"], row["nmb_high"] = mc_interval(levels)
            if arm in vs_base:
                d = vs_base[arm]
                inmb = nmb(d["qalys"], t, d["cost"]).to_numpy()
                row["inmb"], row["inmb_low"], row["inmb_high"] = mc_interval(inmb)
                row["share_positive"] = float((inmb > 0).mean())
            rows.append(row)
    return pd.DataFrame(rows)


def pounds(x: float) -> str:
    """£ amount with its sign before the £ (-£1,234)."""
    return f"{'-' if round(x) < 0 else ''}£{abs(x):,.0f}"


def _interval(lo: float, hi: float, fmt: str = "{:,.0f}") -> str:
    return "" if not np.isfinite(lo) else f" ({fmt.format(lo)} to {fmt.format(hi)})"


def frontier_text(r: Any) -> str:
    """An arm's place on the efficiency frontier and its ICER as ``format_cost_effectiveness``
    prints it, from its row of ``cost_effectiveness`` (a namedtuple or Series)."""
    if r.status == REFERENCE:
        return "reference (cheapest on the efficiency frontier)"
    if r.status != FRONTIER:
        return str(r.status)
    icer = (f"£{r.icer:,.0f} per QALY{_interval(r.icer_low, r.icer_high)}" if r.icer > 0
            else "cheaper and better")
    note = f"; {r.icer_note}" if r.icer_note else ""
    return f"on the frontier; ICER against {r.comparator} {icer}{note}"


def format_cost_effectiveness(ce: pd.DataFrame, nmb: pd.DataFrame, perspective: str = "public_sector",
                              exact: bool = False) -> str:
    """The frontier, ICERs and incremental NMB of one perspective as plain text (``exact``:
    expected values of cohort mode, without intervals)."""
    ce = ce[ce["perspective"] == perspective] if not ce.empty else ce
    if len(ce) < 2:
        return ""
    nmb = nmb[nmb["perspective"] == perspective]
    how = EXACT if exact else "95% MC intervals"
    lines = [f"Cost-effectiveness ({perspective.replace('_', ' ')} costs: {PERSPECTIVES[perspective]}; "
             f"discounted; {how})"]
    for r in ce.itertuples(index=False):
        lines.append(f"  {r.arm}: {frontier_text(r)}")
        if r.status == REFERENCE:
            continue
        for t in nmb[nmb["arm"] == r.arm].itertuples(index=False):
            if np.isfinite(t.inmb):
                lines.append(f"    incremental NMB at £{t.threshold:,.0f}/QALY: {pounds(t.inmb)}"
                             f"{_interval(t.inmb_low, t.inmb_high)}")
    return "\n".join(lines)
