"""Results by group: the paired economic results for each group of tenants.

Groups are fixed at model start (deprivation decile, age band, sex, tenure, starting state
of each health condition; ``hhsim.groups``). Per arm, dimension and group: the change
against the baseline of the same draw in NHS care cost, intervention cost, every payer's
cost, QALYs, years in good health, life years and bed days, and the incremental NMB at each
threshold, with 95% MC intervals, as totals and per 1,000 people in the group.

An intervention's programme costs (staff, beds, places) are shared among the people it
served (``hhsim.groups``), so the groups of each dimension add up to the whole: their net
savings sum to the arm's net saving. Groups keep their natural order (deciles 1 to 10, age
bands youngest first).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from hhsim.accounting import PAYERS
from hhsim.analysis.cost_effectiveness import perspective_cost
from hhsim.analysis.intervals import mc_interval
from hhsim.analysis.pairing import draw_keys, paired

#: Measures: name, group-table outcome, sign (+1: arm - baseline; -1: baseline - arm).
MEASURES = [("nhs_saving", "nhs_cost", -1), ("intervention_cost", "intervention_cost", 1),
            *((f"saving_{p}", f"cost_{p}", -1) for p in PAYERS),
            ("qalys_gained", "qalys", 1), ("good_health_years_gained", "good_health_years", 1),
            ("life_years_gained", "life_years", 1), ("bed_days_freed", "bed_days", -1)]


def group_economics(groups: pd.DataFrame, records: pd.DataFrame, baseline: str,
                    thresholds: Sequence[float] = (), perspective: str = "public_sector") -> pd.DataFrame:
    """Long table: arm, dimension, group, measure, mean, low, high, per_1000 (people in the
    group at the start), for every arm other than the baseline."""
    if groups.empty or records.empty:
        return pd.DataFrame()
    keys = draw_keys(records)
    g = groups.merge(records[["run_id", "arm", *keys]], on="run_id")
    wide = g.pivot_table(index=["run_id", "arm", *keys, "dimension", "group"], columns="outcome",
                         values="value", aggfunc="first", sort=False).reset_index()
    wide["cost"] = perspective_cost(wide, perspective)
    outcomes = [o for _, o, _ in MEASURES] + ["cost", "population"]
    rows = []
    for (dim, grp), w in wide.groupby(["dimension", "group"], sort=False):
        for arm, d in paired(w, baseline, outcomes).items():
            people = float(w.loc[w["arm"] == arm, "population"].mean())
            series = {name: sign * d[col] for name, col, sign in MEASURES}
            series["net_saving"] = series["nhs_saving"] - series["intervention_cost"]
            series.update({f"inmb_{t:.0f}": t * d["qalys"] - d["cost"] for t in thresholds})
            for name, values in series.items():
                mean, lo, hi = mc_interval(values.to_numpy())
                rows.append({"arm": arm, "dimension": dim, "group": grp, "people": people,
                             "measure": name, "mean": mean, "low": lo, "high": hi,
                             "per_1000": 1000 * mean / people if people else float("nan")})
    return pd.DataFrame(rows)
