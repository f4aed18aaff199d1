"""Every analysis table of a batch, from its stored run records (and per-run tables).

``analyse`` is what ``hhsim run`` writes at the end of a batch and what ``hhsim report``
reads back: one CSV per table in the output folder (``TABLES``; ``hhsim.report.stored``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from hhsim.analysis.break_even import break_even_costs
from hhsim.analysis.budget_impact import budget_impact, capacity
from hhsim.analysis.by_group import group_economics
from hhsim.analysis.cost_effectiveness import PERSPECTIVES, cost_effectiveness, net_monetary_benefit
from hhsim.analysis.payers import intervention_payers, payers
from hhsim.analysis.summary import kinds_of

#: Output file stem: what it holds.
TABLES = {
    "cost_effectiveness": "per arm and perspective: cost, QALYs, frontier status, ICER",
    "nmb": "per arm, perspective and threshold: net monetary benefit and its increment",
    "payers": "per arm and payer: care, intervention and total cost, and the saving",
    "budget_impact": "per arm, year, payer and component: undiscounted spending and change",
    "capacity": "per arm and year: bed days, delayed-discharge days, admissions freed",
    "break_even": "per arm: intervention-cost scale at ROI = 1 and ICER = each threshold",
    "group_economics": "per arm and group: savings, QALYs gained, incremental NMB",
}


@dataclass(frozen=True)
class Settings:
    """What the analysis needs from the experiment."""

    baseline: str
    thresholds: Sequence[float] = (20000.0, 30000.0)
    months_per_step: int = 1
    interventions: Mapping[str, list[dict]] | None = None  # per arm, as run (payers, types)
    exact: bool = False  # expected values (cohort mode): one run per arm, no Monte-Carlo error


def analyse(records: pd.DataFrame, monthly: pd.DataFrame, groups: pd.DataFrame,
            settings: Settings, names: Collection[str] = tuple(TABLES)) -> dict[str, pd.DataFrame]:
    """The tables of ``TABLES`` named in ``names`` (all by default; empty frames when there
    is nothing to compare)."""
    s = settings
    payer_of = intervention_payers(s.interventions) if s.interventions is not None else None
    both = list(PERSPECTIVES)
    build: dict[str, Callable[[], pd.DataFrame]] = {
        "cost_effectiveness": lambda: pd.concat([cost_effectiveness(records, s.baseline, p, exact=s.exact)
                                                 for p in both], ignore_index=True),
        "nmb": lambda: pd.concat([net_monetary_benefit(records, s.baseline, s.thresholds, p) for p in both],
                                 ignore_index=True),
        "payers": lambda: pd.concat([payers(records, s.baseline, payer_of, undiscounted=u)
                                     for u in (False, True)], ignore_index=True),
        "budget_impact": lambda: budget_impact(monthly, records, s.baseline, s.months_per_step),
        "capacity": lambda: capacity(monthly, records, s.baseline, s.months_per_step),
        "break_even": lambda: break_even_costs(records, s.baseline, s.thresholds,
                                               kinds=kinds_of(s.interventions) if s.interventions else None),
        "group_economics": lambda: group_economics(groups, records, s.baseline, s.thresholds),
    }
    return {name: build[name]() for name in TABLES if name in names}
