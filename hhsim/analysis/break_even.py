"""Break-even: where an arm stops (or starts) paying for itself.

Intervention cost (analytic). Costs scale linearly: if every intervention cost of an arm is
multiplied by ``k`` (a unit cost, a budget), its incremental intervention cost becomes
``k x I`` and nothing else changes. So from the paired means, with ``S`` the NHS care
saving, ``S_p`` the saving in every other cost of the perspective and ``dQ`` the QALYs gained:

- ROI = 1 when ``k = S / I`` (the ROI itself);
- ICER = threshold ``t`` (incremental NMB = 0) when ``k = (t x dQ + S_p) / I``.

The break-even cost is ``k x I`` (£), and per person or dwelling served where the arm has
one intervention that reports it. Intervals are delta-method 95% MC intervals of the ratios.

Effect size or caseload (reruns). An effect is not linear in the results, so
``search_break_even`` reruns the experiment (baseline and one arm, same seed: common random
numbers) over one parameter with Brent's method until ROI = 1 or the incremental NMB at a
threshold is 0. Each step is a full batch: use few tenants and replications first.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from hhsim.analysis.cost_effectiveness import perspective_cost
from hhsim.analysis.economics import economics
from hhsim.analysis.intervals import ratio_interval
from hhsim.analysis.pairing import paired
from hhsim.errors import HhsimError

#: Record measures that count who an intervention served (suffix of ``iv_<name>_``).
SERVED = ("placed", "admitted", "ordered")


def _served(records: pd.DataFrame, arm: str) -> tuple[str, float] | None:
    """(column, mean count) of who the arm's one costed intervention served, if it says."""
    g = records[records["arm"] == arm]
    names = [c[len("intervention_cost_"):] for c in g.columns
             if c.startswith("intervention_cost_") and not c.endswith("_undisc") and g[c].abs().sum() > 0]
    if len(names) != 1:
        return None
    col = next((f"iv_{names[0]}_{s}" for s in SERVED if f"iv_{names[0]}_{s}" in g), None)
    if col is None or not (g[col] > 0).all():
        return None
    return col, float(g[col].mean())


def break_even_costs(records: pd.DataFrame, baseline: str, thresholds: Sequence[float],
                     perspective: str = "public_sector") -> pd.DataFrame:
    """Per arm and target (ROI = 1; ICER = each threshold): the intervention-cost scale
    factor at break-even with its interval, the break-even cost (£) and, where known, the
    break-even cost per person or dwelling served."""
    if records.empty:
        return pd.DataFrame()
    df = records.assign(cost=perspective_cost(records, perspective))
    rows = []
    for arm, d in paired(df, baseline, ["nhs_cost", "intervention_cost", "cost", "qalys"]).items():
        spend = d["intervention_cost"].to_numpy()
        if not np.any(spend):
            continue
        other_saving = (d["intervention_cost"] - d["cost"]).to_numpy()
        targets = [("ROI = 1", -d["nhs_cost"].to_numpy())]
        targets += [(f"ICER = £{t:,.0f} per QALY", t * d["qalys"].to_numpy() + other_saving)
                    for t in thresholds]
        served = _served(records, arm)
        for target, numerator in targets:
            k, lo, hi = ratio_interval(numerator, spend)
            row = {"arm": arm, "target": target, "perspective": perspective if target != "ROI = 1" else "nhs",
                   "scale": k, "scale_low": lo, "scale_high": hi,
                   "intervention_cost": float(spend.mean()), "break_even_cost": k * float(spend.mean())}
            if served:
                col, count = served
                row["served_by"] = col
                row["cost_per_served"] = float(spend.mean()) / count
                row["break_even_cost_per_served"] = k * row["cost_per_served"]
            rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class BreakEven:
    """Result of ``search_break_even``: the parameter value at break-even (NaN when not
    bracketed) and every evaluation made (value, then ROI or incremental NMB)."""

    parameter: str
    value: float
    target: str
    evaluations: list[tuple[float, float]] = field(default_factory=list)


def search_break_even(experiment, arm: str, parameter: str, bounds: tuple[float, float],
                      threshold: float | None = None, perspective: str = "public_sector",
                      xtol: float = 1e-3, max_evaluations: int = 20, **run_options) -> BreakEven:
    """The value of ``parameter`` (an arm parameter override, e.g.
    ``interventions.<name>.effects.admissions.rate_ratio`` or a capacity) within ``bounds``
    at which the arm's ROI = 1 (``threshold`` None) or its incremental NMB at ``threshold``
    (£ per QALY) is 0. ``run_options`` go to ``run_experiment`` (tenants, months,
    replications, workers). Every evaluation reruns the baseline and the arm with the
    experiment's seed, so the function of the parameter is deterministic (common random
    numbers); Brent's method needs its sign to differ at the two bounds."""
    from hhsim.analysis.cost_effectiveness import net_monetary_benefit
    from hhsim.api import run_experiment
    from hhsim.experiment import load_experiment, validate

    exp = experiment if not isinstance(experiment, str | Path) else load_experiment(experiment)
    if arm not in [a.name for a in exp.arms] or arm == exp.baseline:
        raise HhsimError("arm", f"'{arm}' is not a non-baseline arm of the experiment",
                         f"use one of {[a.name for a in exp.arms if a.name != exp.baseline]}")
    data = exp.model_dump(exclude_unset=True)
    data["arms"] = [a for a in data["arms"] if a["name"] in (arm, exp.baseline)]
    target = "ROI = 1" if threshold is None else f"ICER = £{threshold:,.0f} per QALY"
    result = BreakEven(parameter, float("nan"), target)

    seen: dict[float, float] = {}

    def gap(x: float) -> float:
        if float(x) in seen:  # Brent's method asks for the bounds again
            return seen[float(x)]
        if len(result.evaluations) >= max_evaluations:
            raise HhsimError("search_break_even", f"no answer within {max_evaluations} evaluations",
                             "widen xtol or narrow the bounds")
        for a in data["arms"]:
            if a["name"] == arm:
                a["parameters"] = {**a.get("parameters", {}), parameter: float(x)}
        with tempfile.TemporaryDirectory() as tmp:
            res = run_experiment(validate(data, exp.source), Path(tmp) / "out", **run_options)
        if threshold is None:
            value = float(economics(res.records, exp.baseline)["roi"].iloc[0])
        else:
            nmb = net_monetary_benefit(res.records, exp.baseline, [threshold], perspective)
            value = float(nmb.loc[nmb["arm"] == arm, "inmb"].iloc[0])
        result.evaluations.append((float(x), value))
        seen[float(x)] = value - 1.0 if threshold is None else value
        return seen[float(x)]

    lo, hi = bounds
    f_lo, f_hi = gap(lo), gap(hi)
    for x, f in ((lo, f_lo), (hi, f_hi)):
        if not np.isfinite(f):
            what = "ROI" if threshold is None else "NMB"
            raise HhsimError(parameter, f"at {x:g} the arm's {what} is not defined (no intervention cost?)",
                             "move the bounds where the arm costs something")
    if np.sign(f_lo) == np.sign(f_hi):
        return result
    result.value = float(optimize.brentq(gap, lo, hi, xtol=xtol, maxiter=max_evaluations))
    return result
