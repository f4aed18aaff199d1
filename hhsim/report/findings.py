"""Plain-language findings: what the tables say, sentence by sentence, per arm."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hhsim.analysis.summary import served_label
from hhsim.report.batch import Batch

PAYER_NAMES = {"nhs": "the NHS", "social_care": "social care", "housing_provider": "the housing provider",
               "local_authority": "the local authority"}


def pounds(x: float) -> str:
    """Money for a sentence: £2.2m, £85,000 (3 significant figures), £956."""
    sign, x = ("-" if x < 0 else ""), abs(x)
    if x >= 1e6:
        return f"{sign}£{x / 1e6:,.1f}m"
    if x >= 1e4:
        return f"{sign}£{float(f'{x:.3g}'):,.0f}"
    return f"{sign}£{x:,.0f}"


def _interval(lo: float, hi: float, money: bool = True, digits: int = 0) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ""
    f = pounds if money else (lambda x: f"{x:,.{digits}f}")
    return f" (95% interval {f(lo)} to {f(hi)})"


def _per_pound(x: float) -> str:
    return f"£{x:,.2f}" if x >= 0 else f"-£{abs(x):,.2f}"


def roi_sentence(arm: str, r: pd.Series) -> str:
    if not np.isfinite(r["roi"]):
        return (f"{arm} has no intervention cost of its own (it differs from the baseline in its "
                "parameters): there is no return on investment to report.")
    lo, hi = r["roi_low"], r["roi_high"]
    interval = f" (95% interval {_per_pound(lo)} to {_per_pound(hi)})" if np.isfinite(lo) else ""
    pays = r["roi"] >= 1 and (not np.isfinite(lo) or lo >= 1)
    short = r["roi"] < 1 and (not np.isfinite(hi) or hi < 1)
    verdict = ("it pays for itself from NHS savings alone" if pays
               else "it does not pay for itself from NHS savings alone" if short
               else "whether it pays for itself from NHS savings alone is within the simulation noise")
    return (f"Each £1 spent on {arm} returns {_per_pound(r['roi'])} in NHS care savings{interval}: "
            f"{verdict} (net saving {pounds(r['net_saving'])}).")


def payer_sentence(arm: str, payers: pd.DataFrame) -> str:
    p = payers[(payers["arm"] == arm) & payers["discounted"] & (payers["payer"] != "total")]
    parts = []
    for row in p.sort_values("saving").itertuples(index=False):
        if abs(row.saving) < 0.5:
            continue
        who = PAYER_NAMES.get(row.payer, row.payer)
        verb = "saves" if row.saving > 0 else "pays"
        parts.append(f"{who} {verb} {pounds(abs(row.saving))}{'' if row.saving > 0 else ' more'}")
    if not parts:
        return ""
    text = "; ".join(parts)
    return f"Who pays and who saves ({arm}, discounted): {text[0].upper()}{text[1:]}."


def ce_sentence(arm: str, ce: pd.DataFrame, nmb: pd.DataFrame) -> str:
    r = ce.set_index("arm").loc[arm]
    rows = nmb[nmb["arm"] == arm]
    nmbs = "; ".join(f"at £{t.threshold:,.0f} per QALY the incremental net monetary benefit is "
                     f"{pounds(t.inmb)}{_interval(t.inmb_low, t.inmb_high)}"
                     for t in rows.itertuples(index=False) if np.isfinite(t.inmb))
    if r["status"] == "reference":
        head = f"{arm} is the cheapest option on the efficiency frontier (public-sector costs)"
    elif r["status"] == "frontier":
        if r["icer"] <= 0:
            head = f"{arm} costs less and gains more than {r['comparator']}"
        else:
            icer = f"£{r['icer']:,.0f} per QALY{_interval(r['icer_low'], r['icer_high'])}"
            head = f"Against {r['comparator']}, {arm} costs {icer} gained"
            if r["icer_note"]:
                head += " (the QALY difference is within the simulation noise: read the NMB instead)"
    else:
        head = f"{arm} is {r['status']}: another option (or a mix of two) gives more QALYs for less"
    return f"{head}; {nmbs}." if nmbs else f"{head}."


def health_sentence(arm: str, ce: pd.DataFrame, summary: pd.DataFrame) -> str:
    r = ce.set_index("arm").loc[arm]
    s = summary[summary["arm"] == arm].set_index("outcome")
    extra = []
    for col, label in (("good_health_years", "years in good health"), ("life_years", "life years")):
        if col in s.index and abs(s.loc[col, "difference"]) >= 0.05:  # NaN and 0.0 left out
            extra.append(f"{s.loc[col, 'difference']:+,.1f} {label}")
    more = f", {' and '.join(extra)}" if extra else ""
    return (f"Health: {arm} gains {r['d_qalys']:,.1f} QALYs"
            f"{_interval(r['d_qalys_low'], r['d_qalys_high'], money=False, digits=1)}{more} (discounted).")


def payback_sentence(arm: str, pay: pd.DataFrame, spend: float, months_per_step: int) -> str:
    """Payback in steps of the model (months, or years for a yearly model), from a table with
    ``payback_month``, ``share_paid_back`` and ``months`` per arm (economics.csv)."""
    if pay.empty or not spend > 0:
        return ""
    p = pay.set_index("arm").loc[arm]
    unit = "month" if months_per_step == 1 else "year" if months_per_step == 12 else "step"
    if np.isfinite(p["payback_month"]):
        return (f"In cash, NHS care savings catch up with the intervention spending in {unit} "
                f"{p['payback_month']:.0f} ({p['share_paid_back']:.0%} of replications paid back).")
    return ("In cash, NHS care savings do not catch up with the intervention spending within "
            f"{p['months']:.0f} {unit}s on average ({p['share_paid_back']:.0%} of replications did).")


def break_even_sentence(arm: str, be: pd.DataFrame) -> str:
    rows = be[be["arm"] == arm] if not be.empty else be
    if rows.empty:
        return ""
    parts = []
    for r in rows.itertuples(index=False):
        per = getattr(r, "break_even_cost_per_served", np.nan)
        who = served_label(str(getattr(r, "served_by", "")))
        unit = (f" ({pounds(per)} per {who}; now {pounds(r.cost_per_served)})"
                if isinstance(per, float) and np.isfinite(per) else "")
        if r.target == "ROI = 1":
            parts.append(f"it would pay for itself from NHS care savings at {r.scale:.0%} of its current "
                         f"cost{unit}" if r.scale > 0 else "it saves the NHS nothing to pay for itself with")
        else:
            t = r.target.replace("ICER = ", "")
            parts.append(f"it is cost-effective at {t} up to {r.scale:.0%} of its current cost{unit}"
                         if r.scale > 0 else f"it is not cost-effective at {t} even at no cost")
    return f"Break-even for {arm} (its intervention costs scaled, all else equal): " + "; ".join(parts) + "."


def capacity_sentence(arm: str, cap: pd.DataFrame) -> str:
    if cap.empty:
        return ""
    c = cap[(cap["arm"] == arm) & (cap["measure"] == "bed days")]
    if c.empty:
        return ""
    freed = c["freed"].sum()
    if abs(freed) < 0.5:
        return ""
    return (f"Capacity: {arm} frees {freed:,.0f} hospital bed days over the horizon "
            f"(mean over replications). Freed beds are refilled: capacity released, not cash.")


def findings(b: Batch) -> dict[str, list[str]]:
    """Sentences per arm other than the baseline, from the stored tables."""
    a, summary, econ_table = b.analysis, b.summaries["summary"], b.summaries["economics"]
    econ = econ_table.set_index("arm")
    ce = a["cost_effectiveness"][a["cost_effectiveness"]["perspective"] == "public_sector"]
    nmb = a["nmb"][a["nmb"]["perspective"] == "public_sector"]
    out = {}
    for arm in b.others:
        sentences = [roi_sentence(arm, econ.loc[arm]), payer_sentence(arm, a["payers"]),
                     payback_sentence(arm, econ_table, econ.loc[arm, "intervention_cost"],
                                      b.settings.months_per_step),
                     health_sentence(arm, ce, summary),
                     ce_sentence(arm, ce, nmb), break_even_sentence(arm, a["break_even"]),
                     capacity_sentence(arm, a["capacity"])]
        out[arm] = [s for s in sentences if s]
    return out
