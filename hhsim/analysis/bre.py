"""The NHS cost of poor housing by hazard, measured the way BRE measures it, next to BRE's figures.

BRE (*The cost of poor housing in England*, 2021; *by tenure*, 2023) counts the first-year NHS
treatment costs of the harms that Category 1 hazards cause, as if the hazards were fixed: the
same homes with and without them. The simulated counterpart is an experiment on common random
numbers (``calibration/experiments/bre-hazards.toml``): a ``baseline`` arm and, per hazard, an
arm in which that hazard is absent from every home for the whole run (``HAZARD_ARMS``); the
same people, homes and draws otherwise. An arm's world override changes only its population:
the national rates stay de-averaged over the reference population (the world as observed),
so the difference is the hazard's cost, not a re-normalisation.

Scaling to England, per tenure ``t`` (the run's results by tenure, ``groups``): the NHS cost
(undiscounted) and the deaths of the baseline minus those of the arm, times ``E_t / D_t``,
where ``E_t`` is England's households in the tenure (``ENGLAND_HOUSEHOLDS`` x the tenure
share) and ``D_t`` the simulated households (adults simulated in the tenure divided by the
mean adults per household of the world, ``adults_per_household``). Homes with a hazard in
England (model): the baseline's prevalence of the hazard in each tenure at the end of the
run (stationary) times ``E_t``; for all three together, the same from the chance of any of
them if they were independent within a tenure, corrected by the ratio of the homes with any
hazard simulated (``hazard_homes``) to that chance over the simulated homes. The cost per
poor home is the England cost over those homes (a ratio of means over replications).
Intervals: 95% Monte-Carlo intervals over paired replications (``hhsim.analysis.intervals``).

The population is whoever the world builds, children included: their costs and deaths
count in every tenure's difference.

Run: ``python -m hhsim.analysis.bre RESULTS_FOLDER`` prints the table (markdown).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hhsim.analysis.intervals import mc_interval, ratio_interval
from hhsim.core.costing import uprating_factor
from hhsim.world.population import HAZARDS

#: Arm of the counterfactual experiment without each hazard ("all": without any of them).
HAZARD_ARMS: dict[str, str] = {"excess_cold": "no_excess_cold", "damp": "no_damp",
                               "falls": "no_falls", "all": "no_hazards"}
#: England's households, English Housing Survey 2023-24 headline report [V1].
ENGLAND_HOUSEHOLDS = 24.7e6
#: England's tenure mix of households (the world's ``tenure_share``; EHS [V1]).
ENGLAND_TENURE: dict[str, float] = {"owner_occupied": 0.65, "private_rented": 0.19, "social_rented": 0.16}
BASELINE = "baseline"
#: Prices of the model's costs, and of BRE's 2023 figures (2019 prices, EHS 2018-19 stock).
MODEL_PRICES, BRE_PRICES = "2023/24", "2019/20"


@dataclass(frozen=True)
class BreFigure:
    """BRE's first-year NHS cost of a hazard (£m a year, its own prices; None: not published)
    and the homes with a Category 1 hazard of that kind."""

    cost_m: float | None
    homes: float | None
    source: str


#: BRE's figures compared (2023 by tenure, whose hazard prevalences the world uses).
BRE_FIGURES: dict[str, BreFigure] = {
    "excess_cold": BreFigure(540.0, 700_000, "BRE 2023 by tenure: excess cold GBP 540m, over 700,000 homes"),
    "damp": BreFigure(None, 65_000,
                      "BRE 2023: 65,000 homes with Category 1 damp and mould; NHS cost not published"),
    "falls": BreFigure(401.0, 1_000_000,
                       "BRE 2023: all falls GBP 401m; about 1m homes with a stair-fall hazard"),
    "all": BreFigure(1400.0, 2_600_000, "BRE 2021: GBP 1.4bn, 2.6m homes with any of 29 Category 1 hazards "
                     "(2023: 'over GBP 1bn', 2.4m homes)"),
}


def adults_per_household(world: Mapping[str, Any]) -> dict[str, float]:
    """Mean adults per household of each tenure of ``ENGLAND_TENURE`` in the world tree
    (``world.household_adults``: shares of 1, 2, 3 adults)."""
    out = {}
    for t in ENGLAND_TENURE:
        node = world["world"]["household_adults"][t]
        shares = np.asarray(node["value"] if isinstance(node, Mapping) else node, dtype=float)
        out[t] = float((shares / shares.sum()) @ np.arange(1, shares.size + 1))
    return out


def by_tenure(groups: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """``outcome`` of each run by tenure: rows (arm, replication), columns ``ENGLAND_TENURE``.
    ``groups``: the runs' results by group with ``arm`` and ``replication`` columns."""
    g = groups[(groups["dimension"] == "tenure") & (groups["outcome"] == outcome)]
    wide = g.pivot_table(index=["arm", "replication"], columns="group", values="value", aggfunc="sum")
    return wide.reindex(columns=list(ENGLAND_TENURE), fill_value=0.0).fillna(0.0)


def england_by_replication(records: pd.DataFrame, groups: pd.DataFrame, adults: Mapping[str, float],
                           households: float = ENGLAND_HOUSEHOLDS,
                           shares: Mapping[str, float] = ENGLAND_TENURE) -> pd.DataFrame:
    """Per hazard (``HAZARD_ARMS`` whose arm is in the runs) and replication: England's NHS
    first-year cost of the hazard (``cost``, £), deaths it causes (``deaths``) and homes with
    it (``homes``), scaled per tenure as the module docstring says."""
    e = pd.Series({t: households * s for t, s in shares.items()})
    people = by_tenure(groups, "population").loc[BASELINE]
    if "children" in set(groups["outcome"]):  # households are counted by their adults
        people = people - by_tenure(groups, "children").loc[BASELINE]
    factor = e / people.div(pd.Series(adults)).replace(0.0, np.nan)  # E_t / D_t, by replication
    base = records[records["arm"] == BASELINE].set_index("replication").sort_index()
    cost, deaths = by_tenure(groups, "nhs_cost_undisc"), by_tenure(groups, "deaths")
    prev = {h: base[[f"hazard_prevalence_{h}_{t}" for t in shares]].set_axis(list(shares), axis=1)
            for h in HAZARDS}
    rows = []
    for hazard, arm in HAZARD_ARMS.items():
        if arm not in set(records["arm"]):
            continue
        d_cost = (cost.loc[BASELINE] - cost.loc[arm]) * factor
        d_deaths = (deaths.loc[BASELINE] - deaths.loc[arm]) * factor
        if hazard == "all":
            free = np.prod([1.0 - prev[h] for h in HAZARDS], axis=0)
            any_share = pd.DataFrame(1.0 - free, index=base.index, columns=list(shares))
            simulated = (any_share / factor * e).sum(axis=1)  # homes with any, if independent
            homes = (any_share * e).sum(axis=1) * (base["hazard_homes"] / simulated)
        else:
            homes = (prev[hazard] * e).sum(axis=1)
        rows.append(pd.DataFrame({"hazard": hazard, "replication": d_cost.index, "cost": d_cost.sum(axis=1),
                                  "deaths": d_deaths.sum(axis=1), "homes": homes.reindex(d_cost.index)}))
    return pd.concat(rows, ignore_index=True)


def bre_table(per_replication: pd.DataFrame, bre: Mapping[str, BreFigure] = BRE_FIGURES) -> pd.DataFrame:
    """The comparison, one row per hazard: homes with it in England (model), NHS first-year
    cost (£m, mean and 95% MC interval), £ per poor home (interval), deaths a year
    (interval), BRE's cost in its prices and in the model's, and the gap (model minus BRE,
    £m, model prices) and ratio (model / BRE)."""
    up = uprating_factor(BRE_PRICES, MODEL_PRICES)
    out = []
    for hazard, g in per_replication.groupby("hazard", sort=False):
        cost, lo, hi = mc_interval(g["cost"].to_numpy() / 1e6)
        per, plo, phi = ratio_interval(g["cost"].to_numpy(), g["homes"].to_numpy())
        dth, dlo, dhi = mc_interval(g["deaths"].to_numpy())
        fig = bre.get(hazard)
        bre_m = fig.cost_m if fig is not None else None
        bre_now = bre_m * up if bre_m is not None else float("nan")
        out.append({"hazard": hazard, "homes_model": float(g["homes"].mean()),
                    "homes_bre": fig.homes if fig is not None and fig.homes else float("nan"),
                    "cost_m": cost, "cost_m_low": lo, "cost_m_high": hi,
                    "per_home": per, "per_home_low": plo, "per_home_high": phi,
                    "deaths": dth, "deaths_low": dlo, "deaths_high": dhi,
                    "bre_cost_m": bre_m if bre_m is not None else float("nan"),
                    "bre_cost_m_model_prices": bre_now,
                    "gap_m": cost - bre_now, "ratio": cost / bre_now,
                    "replications": len(g)})
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame) -> str:
    """The table as docs/calibration.md shows it."""
    names = {"excess_cold": "excess cold", "damp": "damp", "falls": "falls", "all": "all three"}
    lines = ["| Hazard | Homes with it, England (model) | BRE homes (Cat 1) | NHS first-year cost, £m "
             "(95% MC) | £ per home with it (95% MC) | Deaths a year (95% MC) | BRE, £m (2019 prices) "
             "| BRE, £m (2023/24 prices) | Gap, £m (model − BRE) | Model / BRE |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def num(x: float, fmt: str = "{:,.0f}") -> str:
        return "not published" if not np.isfinite(x) else fmt.format(x)

    for r in table.itertuples():
        lines.append(
            f"| {names.get(r.hazard, r.hazard)} | {r.homes_model / 1e3:,.0f}k | "
            f"{num(r.homes_bre / 1e3, '{:,.0f}k')} | {r.cost_m:,.0f} ({r.cost_m_low:,.0f} to "
            f"{r.cost_m_high:,.0f}) | {r.per_home:,.0f} ({r.per_home_low:,.0f} to {r.per_home_high:,.0f}) | "
            f"{r.deaths:,.0f} ({r.deaths_low:,.0f} to {r.deaths_high:,.0f}) | {num(r.bre_cost_m)} | "
            f"{num(r.bre_cost_m_model_prices)} | {num(r.gap_m, '{:+,.0f}')} | {num(r.ratio, '{:.2f}')} |")
    return "\n".join(lines)


def from_folder(root: str | Path) -> pd.DataFrame:
    """The per-replication England figures of a finished ``hhsim run`` of the experiment."""
    import json

    from hhsim.batch.store import ResultsFolder

    folder = ResultsFolder.open(root)
    records = folder.finished()
    groups = folder.table("groups", records["run_id"])
    groups = groups.merge(records[["run_id", "arm", "replication"]], on="run_id")
    plan = json.loads((Path(root) / "plan.json").read_text())
    world = next(a["world"] for a in plan["arms"] if a["name"] == BASELINE)
    return england_by_replication(records, groups, adults_per_household(world))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m hhsim.analysis.bre RESULTS_FOLDER", file=sys.stderr)
        return 2
    print(markdown(bre_table(from_folder(args[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
