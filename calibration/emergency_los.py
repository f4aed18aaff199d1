"""Fit ``hospital.admissions.emergency.los_cv``: the spread of adults' emergency stays.

The model draws each emergency stay from a lognormal with the age profile ``los_mean`` and
one coefficient of variation, rounds it to whole days (at least 1) and may add a delayed
discharge. The published shape of stays is the share of occupied beds that hold a patient
who has been in hospital 21 days or more: about 19% in 2017-18 (NHS Improvement, via HSJ
[V2]), 17% in November 2018; NHS England and NHS Improvement (June 2018): nearly 350,000
patients a year stay over three weeks, "around a fifth of beds" [V2]. Target 19%, range
17-21% (calibration/research/i16-research-g.md section 7).

Each run is England's adults of every tenure with their children, as the drift check
(``hhsim.studies.baseline.drift``), with one value of ``los_cv``: every adult emergency
admission of the first 12 months is followed home (``Hospital.on_home``), so its stay is
the whole time in hospital, delay included. A long-stay patient's bed days beyond day 21
over all bed days is the share of beds such patients occupy at any moment. The runs share
their seed (common random numbers), so the share is a smooth function of the CV; the fit
interpolates it at the target and its range. Stays that end in death are left out (the
hospital has no hook for them; following them moves the share by under 0.2 points). The
published share counts every adult's occupied acute bed, elective patients' too, whose
short stays lower it; the fit has emergency stays only, so emergency beds alone would hold
more than 19% long stays and the fitted CV is, if anything, a little low.

    python calibration/emergency_los.py --tenants 1000000 [--write]
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hhsim.core.resources import default_model_tree, world_tree
from hhsim.model.simulation import HousingHealthModel, RunConfig
from hhsim.studies.baseline.drift import england

CVS = (0.9, 1.2, 1.4, 1.6, 1.8, 2.1)
TARGET, LOW, HIGH = 0.19, 0.17, 0.21  # share of occupied beds held by patients in 21+ days
LONG = 21  # days: a long stay is one beyond three weeks
MONTHS, FOLLOW = 12, 6  # admissions of the first 12 months, followed 6 more
OUT = Path(__file__).with_name("emergency-los.md")


def stays(cv: float, tenants: int, seed: int) -> pd.DataFrame:
    """Every adult emergency stay admitted in the first ``MONTHS`` of one run: its age at
    admission and its length in days (acute and delayed), for ``los_cv`` = ``cv``."""
    tree = copy.deepcopy(default_model_tree())
    tree["hospital"]["admissions"]["emergency"]["los_cv"]["value"] = cv
    world = world_tree()
    model = HousingHealthModel(RunConfig(model_tree=tree, world_tree=world, tenants=tenants,
                                         tenure=england(world), steps=MONTHS + FOLLOW, seed=seed))
    hospital = model.hospital
    code = next(t.code for t in hospital.types if t.name == "emergency")
    admitted = np.full(model.pop.n, -1, dtype=np.int64)
    age = np.zeros(model.pop.n, dtype=np.int16)
    rows: list[pd.DataFrame] = []
    last_day = np.iinfo(np.int64).max  # admissions from this day on are not followed

    def on_admit(idx: np.ndarray, day: np.ndarray) -> None:
        mine = (hospital.admit_type[idx] == code) & (model.pop.age_years[idx] >= 16) & (day < last_day)
        admitted[idx] = np.where(mine, day, -1)
        age[idx] = model.pop.age_years[idx]

    def on_home(idx: np.ndarray, day: np.ndarray) -> None:
        mine = admitted[idx] >= 0
        if mine.any():
            who = idx[mine]
            rows.append(pd.DataFrame({"age": age[who], "days": day[mine] - admitted[who]}))
            admitted[who] = -1

    hospital.on_admit.append(on_admit)
    hospital.on_home.append(on_home)
    for t in range(MONTHS + FOLLOW):
        model.step()
        if t == MONTHS - 1:
            last_day = model.day
    model.release()
    return pd.concat(rows, ignore_index=True)


def shape(s: pd.DataFrame) -> dict[str, float]:
    """The shape of a run's stays: mean, one-day share, share over 21 days, and the share of
    bed days beyond day 21 (of beds held by long-stay patients)."""
    days = s["days"].to_numpy(dtype=float)
    old = s["age"].to_numpy() >= 65
    return {"stays": len(days), "mean": days.mean(), "mean_65plus": days[old].mean(),
            "one_day": float(np.mean(days <= 1)), "over_21": float(np.mean(days > LONG)),
            "long_beds": float(np.maximum(days - LONG, 0).sum() / days.sum())}


def at(share: float, table: pd.DataFrame) -> float:
    """The CV at which the long-stay bed share is ``share`` (linear between the runs); an
    error outside the runs' shares, which the CVs must then widen."""
    beds = table["long_beds"].to_numpy()
    if not beds.min() <= share <= beds.max():
        raise SystemExit(f"a share of {share:.0%} is outside the runs' {beds.min():.1%}-{beds.max():.1%}: "
                         "widen CVS")
    return float(np.interp(share, beds, table["cv"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", action="store_true", help=f"write {OUT.name}")
    args = parser.parse_args()
    start = time.time()
    table = pd.DataFrame([{"cv": cv, **shape(stays(cv, args.tenants, args.seed))} for cv in CVS])
    seconds = time.time() - start
    if not (np.diff(table["long_beds"]) > 0).all():
        raise SystemExit("the long-stay bed share does not rise with the CV: more tenants needed")
    fit, low, high = at(TARGET, table), at(LOW, table), at(HIGH, table)
    lines = ["# Emergency stays' spread (`hospital.admissions.emergency.los_cv`)", "",
             f"Written by `python calibration/emergency_los.py --tenants {args.tenants} --seed {args.seed} "
             f"--write` ({seconds:.0f} s; method in its docstring). Adults' emergency stays admitted in a "
             "year of England's population, followed home; delays included.", "",
             "| CV | Stays | Mean stay (days) | Mean at 65+ | One-day stays | Over 21 days | "
             "Bed days beyond day 21 |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.cv:g} | {r.stays:,} | {r.mean:.2f} | {r.mean_65plus:.2f} | {100 * r.one_day:.1f}% | "
              f"{100 * r.over_21:.1f}% | {100 * r.long_beds:.1f}% |" for r in table.itertuples()]
    lines += ["", f"Target: {100 * TARGET:g}% of beds held by patients in 21 days or more (range "
              f"{100 * LOW:g}-{100 * HIGH:g}%). Fitted CV **{fit:.2f}** (range {low:.2f}-{high:.2f}).", ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        OUT.write_text(text)


if __name__ == "__main__":
    main()
