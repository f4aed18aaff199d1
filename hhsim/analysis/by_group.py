"""Results by group: the paired economic results for each group of tenants.

Groups are fixed at model start (deprivation decile, age band, sex, tenure, starting state
of each health condition; ``hhsim.model.groups``). Per arm, dimension and group: the change
against the baseline of the same draw in NHS care cost, intervention cost, every payer's
cost, QALYs, years in good health, life years and bed days, and the incremental NMB at each
threshold, with 95% MC intervals, as totals and per 1,000 people in the group.

An intervention's programme costs (staff, beds, places) are shared among the people it
served (``hhsim.model.groups``), so the groups of each dimension add up to the whole: their net
savings sum to the arm's net saving. Groups keep their natural order (deciles 1 to 10, age
bands youngest first).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from hhsim.analysis.cost_effectiveness import nmb, perspective_cost
from hhsim.analysis.economics import savings
from hhsim.analysis.intervals import mc_bounds
from hhsim.analysis.pairing import aligned, draw_keys
from hhsim.core.accounting import PAYERS

#: Measures besides ``savings``: name, group-table outcome, sign (+1: arm - baseline;
#: -1: baseline - arm).
MEASURES = [*((f"saving_{p}", f"cost_{p}", -1) for p in PAYERS),
            ("qalys_gained", "qalys", 1), ("good_health_years_gained", "good_health_years", 1),
            ("life_years_gained", "life_years", 1), ("bed_days_freed", "bed_days", -1)]


def _measures(a: pd.DataFrame, b: pd.DataFrame, thresholds: Sequence[float]) -> dict[str, pd.Series]:
    """Every measure, in table order, of an arm's group rows against the baseline's rows
    ``aligned`` with them."""
    outcomes = [o for _, o, _ in MEASURES] + ["cost"]
    d, s = a[outcomes] - b[outcomes], savings(a, b)
    return {"nhs_saving": s["nhs_saving"], "intervention_cost": s["intervention_cost"],
            **{name: sign * d[col] for name, col, sign in MEASURES}, "net_saving": s["net_saving"],
            **{f"inmb_{t:.0f}": nmb(d["qalys"], t, d["cost"]) for t in thresholds}}


def group_economics(groups: pd.DataFrame, records: pd.DataFrame, baseline: str,
                    thresholds: Sequence[float] = (), perspective: str = "public_sector") -> pd.DataFrame:
    """Long table: arm, dimension, group, measure, mean, low, high, per_1000 (people in the
    group at the start), for every arm other than the baseline (one pass over all groups:
    each arm's rows paired with the baseline's of the same draw and group)."""
    if groups.empty or records.empty:
        return pd.DataFrame()
    keys = draw_keys(records)
    g = groups.merge(records[["run_id", "arm", *keys]], on="run_id")
    wide = g.pivot_table(index=["arm", *keys, "dimension", "group"], columns="outcome",
                         values="value", aggfunc="first", sort=False).reset_index()
    wide["cost"] = perspective_cost(wide, perspective)
    frames = []
    for arm in dict.fromkeys(wide["arm"]):
        if arm == baseline:
            continue
        a, b = aligned(wide, arm, baseline, by=("dimension", "group"))
        if len(a):
            frames.append(pd.DataFrame({"arm": arm, "people": a["population"],
                                        **_measures(a, b, thresholds)}))
    if not frames:
        return pd.DataFrame()
    long = pd.concat(frames).reset_index()
    measures = [c for c in frames[0] if c not in ("arm", "people")]
    by = long.groupby(["arm", "dimension", "group"], sort=False)
    people = by["people"].mean()
    rows = []
    for name in measures:
        stats = by[name].agg(["mean", "std", "count"])
        low, high = mc_bounds(stats["mean"], stats["std"], stats["count"])
        rows.append(pd.DataFrame({"people": people, "measure": name, "mean": stats["mean"], "low": low,
                                  "high": high, "per_1000": 1000 * stats["mean"] / people.where(people > 0)}))
    out = pd.concat(rows).reset_index()
    # arm, then dimension and group in their natural order, then measure in table order
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(out["arm"], out["dimension"], out["group"],
                                                          strict=True)))}
    out["_order"] = [order[k] for k in zip(out["arm"], out["dimension"], out["group"], strict=True)]
    out = out.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    return out[["arm", "dimension", "group", "people", "measure", "mean", "low", "high", "per_1000"]]
