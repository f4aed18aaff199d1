"""Who pays and who saves: costs by payer per arm, and the change against the baseline.

Each payer's cost (``cost_<payer>`` of the run record: NHS, social care, housing provider,
local authority) is split into care costs and the intervention costs it pays. An
intervention's payer comes from the arm's interventions as run (``plan.json``);
without them only the NHS split is known (the record keeps NHS care apart). A ``total`` row
sums the payers. ``saving`` is baseline minus arm: positive when the payer spends less.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hhsim.analysis.intervals import mc_interval
from hhsim.analysis.pairing import paired
from hhsim.core.accounting import PAYERS

PARTS = ("care_cost", "intervention_cost", "cost")


def intervention_payers(interventions: Mapping[str, list[dict]]) -> dict[tuple[str, str], str]:
    """(arm, intervention name) -> payer, from each arm's interventions as run."""
    return {(arm, iv["name"]): iv.get("payer", "nhs") for arm, ivs in interventions.items() for iv in ivs}


def payer_costs(records: pd.DataFrame, payer_of: Mapping[tuple[str, str], str] | None = None,
                suffix: str = "") -> pd.DataFrame:
    """Long per-run table: run key columns, ``payer``, care_cost, intervention_cost, cost (£;
    ``suffix`` "_undisc" for undiscounted)."""
    keys = [c for c in records.columns if c in ("run_id", "arm", "point", "draw", "replication")]
    frames = []
    for payer in PAYERS:
        f = records[keys].copy()
        f["payer"], f["cost"] = payer, records[f"cost_{payer}{suffix}"]
        if payer == "nhs":
            f["intervention_cost"] = records[f"cost_nhs{suffix}"] - records[f"nhs_cost{suffix}"]
        elif payer_of is not None:
            f["intervention_cost"] = 0.0
            for (arm, name), p in payer_of.items():
                col = f"intervention_cost_{name}{suffix}"
                if p == payer and col in records:
                    mine = records["arm"] == arm
                    f.loc[mine, "intervention_cost"] += records.loc[mine, col]
        else:
            f["intervention_cost"] = np.nan
        f["care_cost"] = f["cost"] - f["intervention_cost"]
        frames.append(f)
    long = pd.concat(frames, ignore_index=True)
    total = long.groupby(keys, sort=False)[list(PARTS)].sum(min_count=len(PAYERS)).reset_index()
    total["payer"] = "total"
    return pd.concat([long, total], ignore_index=True)


def payers(records: pd.DataFrame, baseline: str, payer_of: Mapping[tuple[str, str], str] | None = None,
           undiscounted: bool = False) -> pd.DataFrame:
    """Per arm and payer (and ``total``): mean care, intervention and total cost with 95% MC
    intervals, and the paired change against the baseline (``saving`` = baseline - arm)."""
    if records.empty:
        return pd.DataFrame()
    long = payer_costs(records, payer_of, "_undisc" if undiscounted else "")
    rows = []
    for payer, g in long.groupby("payer", sort=False):
        vs_base = paired(g, baseline, list(PARTS))
        for arm, a in g.groupby("arm", sort=False):
            row = {"arm": arm, "payer": payer}
            for part in PARTS:  # costs: cannot be negative
                row[part], row[f"{part}_low"], row[f"{part}_high"] = mc_interval(a[part].to_numpy(),
                                                                                 lower=0.0)
            if arm in vs_base:
                d = vs_base[arm]
                row["saving"], row["saving_low"], row["saving_high"] = mc_interval(-d["cost"].to_numpy())
                row["care_saving"] = float(-d["care_cost"].mean())
                row["extra_intervention_cost"] = float(d["intervention_cost"].mean())
            rows.append(row)
    out = pd.DataFrame(rows)
    out["discounted"] = not undiscounted
    return out


def format_payers(table: pd.DataFrame) -> str:
    """Each arm's change in cost per payer against the baseline (discounted) as plain text."""
    if table.empty or "saving" not in table:
        return ""
    t = table[table["discounted"] & table["saving"].notna()]
    names = [*PAYERS, "total"]
    lines = ["Who pays, who saves (change in cost against the baseline, £ discounted; "
             "+ pays more, - saves)",
             f"  {'':<24}" + "".join(f"{p.replace('_', ' '):>18}" for p in names)]
    for arm, g in t.groupby("arm", sort=False):
        change = np.round(-g.set_index("payer")["saving"]) + 0.0  # no "-0"
        lines.append(f"  {arm:<24}" + "".join(f"{change.get(p, np.nan):>+18,.0f}" for p in names))
    return "\n".join(lines)
