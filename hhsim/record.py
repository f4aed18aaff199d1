"""The run record: what one finished run reports, as a flat row of numbers.

Columns (all totals over the simulated tenants; ``_undisc`` = undiscounted twin):

- ``use_<activity>``: tallies (contacts, bed days, admissions, person-years), and
  ``use_<activity>_disc`` for the costed ones;
- ``cost_<activity>`` / ``cost_<activity>_undisc``: the tally times its unit cost, uprated
  to the experiment's price year with the NHS Cost Inflation Index;
- ``cost_<payer>`` / ``cost_<payer>_undisc``: costs summed by payer (``nhs``,
  ``social_care``, ``housing_provider``, ``local_authority``); ``nhs_cost`` = ``cost_nhs``;
- ``intervention_cost`` (and ``_undisc``): cost of the arm's interventions;
- ``qalys``, ``life_years``, ``good_health_years`` (and ``_undisc``);
- ``deaths``, ``admissions``, ``bed_days``, ``delayed_discharge_days``,
  ``readmissions_30d`` (undiscounted counts over all admission types).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hhsim.accounting import PAYERS, REWARDS
from hhsim.costing import uprating_factor
from hhsim.model import HousingHealthModel


def _total(a: np.ndarray) -> float:
    return float(a.sum(dtype=np.float64))


def run_record(model: HousingHealthModel, price_year: str) -> dict[str, float]:
    """The record of a finished run, costs in ``price_year`` prices."""
    ledger = model.ledger
    rec: dict[str, float] = {}
    payer_cost = dict.fromkeys(PAYERS, 0.0)
    payer_undisc = dict.fromkeys(PAYERS, 0.0)
    for name, act in model.activities.items():
        use = _total(ledger.count[name])
        rec[f"use_{name}"] = use
        if act.unit_cost is not None:
            use_disc = _total(ledger.count_disc[name])
            rec[f"use_{name}_disc"] = use_disc
            unit = act.unit_cost * uprating_factor(act.price_year, price_year)
            rec[f"cost_{name}"] = use_disc * unit
            rec[f"cost_{name}_undisc"] = use * unit
            payer_cost[act.payer] += use_disc * unit
            payer_undisc[act.payer] += use * unit
    for payer in PAYERS:
        rec[f"cost_{payer}"] = payer_cost[payer]
        rec[f"cost_{payer}_undisc"] = payer_undisc[payer]
    rec["nhs_cost"], rec["nhs_cost_undisc"] = payer_cost["nhs"], payer_undisc["nhs"]
    rec["intervention_cost"] = rec["intervention_cost_undisc"] = 0.0
    for reward in REWARDS:
        rec[reward] = _total(ledger.reward_disc[reward])
        rec[f"{reward}_undisc"] = _total(ledger.reward[reward])
    rec["deaths"] = float((~model.pop.alive).sum())
    types = model.health.admissions
    for key, activity in (("admissions", "admissions"), ("bed_days", "bed_days"),
                          ("delayed_discharge_days", "delayed_days"),
                          ("readmissions_30d", "readmissions_30d")):
        rec[key] = sum(rec[f"use_{t.name}_{activity}"] for t in types)
    return rec


def monthly_table(model: HousingHealthModel) -> pd.DataFrame:
    """Monthly aggregates collected by the model's DataCollector, one row per step."""
    df = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    df.insert(0, "step", np.arange(1, len(df) + 1))
    return df
