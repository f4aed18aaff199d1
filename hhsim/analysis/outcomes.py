"""Named outcomes of a comparison: what an arm changes against the baseline.

Every analysis that repeats simulations (sensitivity, PSA, ``run --precision``) names the
outcome it follows. Per replication (and parameter point), paired with the baseline run
that faced the same random numbers; costs in £ discounted, QALYs discounted:

- ``incremental_nhs_cost``: arm - baseline NHS care cost (``nhs_cost``);
- ``incremental_intervention_cost``: arm - baseline intervention cost;
- ``incremental_cost``: the sum of the two;
- ``nhs_saving``: baseline - arm NHS care cost;
- ``net_saving``: ``nhs_saving`` - ``incremental_intervention_cost``;
- ``incremental_qalys``: arm - baseline QALYs;
- ``nmb_<lambda>``: net monetary benefit at £lambda per QALY, lambda x dQALY - dcost
  (e.g. ``nmb_20000``);
- ``roi``: mean ``nhs_saving`` / mean ``incremental_intervention_cost`` (£ saved per £
  spent; a ratio of means, so it has no value per replication);
- ``incremental:<column>``: arm - baseline of any numeric record column;
- ``mean:<column>``: the arm's own value of a record column (any arm, the baseline too).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hhsim.analysis.cost_effectiveness import nmb
from hhsim.analysis.economics import savings
from hhsim.analysis.pairing import aligned
from hhsim.core.errors import printable, unknown_key_error
from hhsim.experiment.outputs import NMB

#: Record columns that are labels, not outcomes.
LABELS = {"run_id", "arm", "replication", "seed", "point"}


def column(records: pd.DataFrame, name: str) -> pd.Series:
    """A numeric record column as floats (a one-line error naming the columns otherwise)."""
    numeric = [c for c in records.columns if c not in LABELS and pd.api.types.is_numeric_dtype(records[c])]
    if name not in numeric:
        raise unknown_key_error("outputs", printable(name), numeric, what="record column")
    return records[name].astype(float)


def replicate_values(a: pd.DataFrame, b: pd.DataFrame, name: str) -> pd.Series:
    """Per replication (rows of ``a``, the arm, ``aligned`` with ``b``, the baseline), the
    value of outcome ``name`` (any but ``roi``)."""
    if name.startswith("mean:"):
        return column(a, name[5:])
    if name.startswith("incremental:"):
        return column(a, name[12:]) - column(b, name[12:])
    d_nhs = a["nhs_cost"] - b["nhs_cost"]
    d_q = a["qalys"] - b["qalys"]
    s = savings(a, b)
    fixed = {"incremental_nhs_cost": d_nhs, "incremental_intervention_cost": s["intervention_cost"],
             "incremental_cost": d_nhs + s["intervention_cost"], "nhs_saving": s["nhs_saving"],
             "net_saving": s["net_saving"], "incremental_qalys": d_q}
    if name in fixed:
        return fixed[name].astype(float)
    threshold = float(NMB.match(name).group(1))
    return nmb(d_q, threshold, d_nhs, s["intervention_cost"]).astype(float)


def outcome_values(records: pd.DataFrame, baseline: str, arm: str, name: str) -> np.ndarray:
    """The per-replication values of outcome ``name`` for ``arm``, in replication order."""
    return replicate_values(*aligned(records, arm, baseline), name).to_numpy()
