"""Results by group: every run's outcomes broken down by who the tenants were at the start.

Groups are fixed at model start: area deprivation decile, age band, sex, tenure, and the
starting state of every health chain (e.g. long-term condition or not). Each tenant's
outcomes (costs by payer, QALYs, life years, years in good health, deaths, admissions,
bed days) are weighted by the people it represents and summed per group, so every group
table adds up to the run's totals.

A programme's costs that belong to no one tenant (staff, beds, places: ``per_tenant =
False``) are shared among the people it served: each month's, equally per person
represented among the tenants served that month (with the full strength of its effects:
clients, residents, patients placed); a month in which it served nobody passes its cost to
the next tenants served; what is left at the end goes to those served before, in
proportion to their shares, and, had it served nobody at all, to everyone equally
(``hhsim.core.accounting.Ledger.share``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hhsim.core.accounting import PAYERS, REWARDS
from hhsim.core.costing import uprating_factor
from hhsim.world.bands import RESULT_AGE_BANDS, RESULT_AGE_LABELS
from hhsim.world.population import DECILES, SEXES, TENURES, Population

if TYPE_CHECKING:
    import pandas as pd



@dataclass
class Baseline:
    """Each tenant's groups at model start (int8 codes) and their labels."""

    codes: dict[str, np.ndarray]
    labels: dict[str, tuple[str, ...]]

    @property
    def children(self) -> np.ndarray:
        """Boolean per slot: a child (under 16) at the start."""
        return self.codes["age_band"] == RESULT_AGE_LABELS.index("0-15")

    @classmethod
    def of(cls, pop: Population, chains: dict[str, tuple[str, ...]]) -> Baseline:
        band = (np.searchsorted(RESULT_AGE_BANDS, pop.age_years, side="right") - 1).clip(
            0, len(RESULT_AGE_BANDS) - 1)
        codes = {"deprivation_decile": (pop.deprivation - 1).astype(np.int8),
                 "age_band": band.astype(np.int8),
                 "sex": pop.female.view(np.int8).copy(),
                 "tenure": pop.tenure.copy()}
        labels = {"deprivation_decile": tuple(str(d) for d in range(1, DECILES + 1)),
                  "age_band": RESULT_AGE_LABELS, "sex": SEXES, "tenure": TENURES}
        for chain, states in chains.items():
            codes[chain] = pop.states[chain].copy()
            labels[chain] = states
        return cls(codes, labels)


def tenant_outcomes(model, price_year: str, shared: bool = True) -> dict[str, np.ndarray]:
    """Per-tenant outcomes (float64) that group tables and run records sum; with ``shared``,
    each programme's costs shared among the tenants it served (the run record adds the
    programme totals themselves instead)."""
    ledger, n = model.ledger, model.pop.n
    out: dict[str, np.ndarray] = {}
    # Costs by payer, and split into NHS care and interventions (per-tenant tallies only).
    keys = [*PAYERS, "nhs_care", "interventions"]
    cost = {k: np.zeros(n) for k in keys}
    cost_undisc = {k: np.zeros(n) for k in keys}
    weight = counted_weight(model)  # a programme that served nobody shares among the tenants
    for name, act in model.activities.items():
        if act.unit_cost is None or not (act.per_tenant or shared):
            continue
        unit = act.unit_cost * uprating_factor(act.price_year, price_year)
        if act.per_tenant:
            # float64 before scaling: a float32 array times a Python float stays float32.
            disc = ledger.count_disc[name].astype(np.float64) * unit
            undisc = ledger.count[name].astype(np.float64) * unit
        else:  # a programme's costs, shared among the tenants it served
            disc = ledger.shared_tally(name, weight, discounted=True) * unit
            undisc = ledger.shared_tally(name, weight, discounted=False) * unit
        kinds = [act.payer] + (["interventions"] if act.intervention else
                               ["nhs_care"] if act.payer == "nhs" else [])
        for k in kinds:
            cost[k] += disc
            cost_undisc[k] += undisc
    for p in PAYERS:
        out[f"cost_{p}"], out[f"cost_{p}_undisc"] = cost[p], cost_undisc[p]
    out["nhs_cost"], out["nhs_cost_undisc"] = cost["nhs_care"], cost_undisc["nhs_care"]
    out["intervention_cost"] = cost["interventions"]
    out["intervention_cost_undisc"] = cost_undisc["interventions"]
    for reward in REWARDS:
        out[reward] = ledger.reward_disc[reward].astype(np.float64)
        out[f"{reward}_undisc"] = ledger.reward[reward].astype(np.float64)
    out["deaths"] = (model.death_month >= 0).astype(np.float64)
    for key, activity in (("admissions", "admissions"), ("bed_days", "bed_days"),
                          ("delayed_discharge_days", "delayed_days")):
        out[key] = sum((ledger.count[f"{t.name}_{activity}"].astype(np.float64)
                        for t in model.health.admissions), np.zeros(n))
    return out


def counted_weight(model) -> np.ndarray:
    """People each slot represents in the results (float64): its weight if it was a tenant
    at some time in the run, 0 for households of the waiting list that never arrived."""
    weight = model.pop.weight.astype(np.float64)
    return np.where(model.tenancies.ever_tenant, weight, 0.0) if model.tenancies.active else weight


def group_table(model, price_year: str) -> pd.DataFrame:
    """Long table: dimension, group, outcome, value (weighted sums), incl. population and
    children (under 16 at the start)."""
    import pandas as pd  # not for 'hhsim validate'

    weight = counted_weight(model)
    values = {"population": np.ones(model.pop.n), "children": model.baseline.children.astype(np.float64),
              **tenant_outcomes(model, price_year)}
    rows = []
    for dim, codes in model.baseline.codes.items():
        labels = model.baseline.labels[dim]
        for outcome, per_tenant in values.items():
            sums = np.bincount(codes, weights=weight * per_tenant, minlength=len(labels))
            rows += [(dim, labels[g], outcome, float(sums[g])) for g in range(len(labels))]
    return pd.DataFrame(rows, columns=["dimension", "group", "outcome", "value"])
