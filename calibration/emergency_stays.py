"""Fit adults' emergency stays jointly: same-day stays, length, spread and delays.

The model gives each adult emergency admission a chance to go home the day it came
(``same_day_probability``: no bed day), otherwise draws its stay from a lognormal with the
age profile ``los_mean`` and one coefficient of variation ``los_cv``, rounded to whole days
(at least 1), and then a chance of a delayed discharge (``delay_probability``, raised by care
need) of a lognormal length (``delay_mean``, ``delay_cv``). Eight parameters are fitted, in
the model, to eight published figures (calibration/research/i16-research-h.md, I-K):

- same-day chance, logistic in age (log-odds at 50, slope): 35% of adults' emergency
  admissions are zero-day stays (Health Foundation 2018, "around a third" [V1]; 36% derived
  for 2019 [D]), and 28.3% of admissions of people 75+ are short stays, under 48 hours, taken
  as 0 or 1 day (Mason et al., EMJ 2019, Yorkshire and the Humber 2011-14 [V1 abstract]);
- ``los_mean``, log-linear in age (value at 50, slope): overnight stays average 7.9 days, and
  10.8 at 85+ (Health Foundation 2023, 2019 figures [V1]; zero-day stays left out, as in its
  published code);
- ``los_cv``: patients in hospital 21 days or more hold 19% of occupied beds (NHS
  Improvement 2017-18 via HSJ [V2]);
- ``delay_probability``, logistic in age: 13.5% of overnight adult discharges are delayed a
  day or more past their discharge-ready date (NHS England DRD 2024-25 [V2 copy]), and 85% of
  delays are of people 65+ (NAO 2016 [V1]);
- ``delay_mean``: a delay lasts 6.09 days on average (DRD 2024-25).

The shapes (logistic, log-linear) are assumptions; each is pinned by two figures. Each run
is England's adults of every tenure with their children, as the drift check
(``hhsim.studies.baseline.drift``): every adult emergency admission of the first 12 months
is followed home (``Hospital.on_home``; its delay through ``on_delay``), so its stay is the
whole time in hospital, delay included. Stays that end in death are left out. Every run
shares one seed (common random numbers). Each round solves each profile's two parameters
for its two figures given the run's stays by band, and moves the CV by a fixed slope and
the mean delay by a ratio, until every figure is within ``TOLERANCE`` of its target; the
figures and four checks (stays over 14 days, the mean at 65+, bed days a year scaled to
England, one-day stays at 75+) are written to ``emergency-stays.md``.

    python calibration/emergency_stays.py --tenants 500000 [--write]   # about a minute

``--write`` puts the fitted values into hhsim/data/default_model.toml.
"""

from __future__ import annotations

import argparse
import copy
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from hhsim.core.resources import default_model_tree, world_tree
from hhsim.model.simulation import HousingHealthModel, RunConfig
from hhsim.studies.baseline.drift import england

MODEL_FILE = Path(__file__).parents[1] / "hhsim" / "data" / "default_model.toml"
OUT = Path(__file__).with_name("emergency-stays.md")
BREAKS = (16, 25, 35, 45, 55, 65, 75, 85)
MIDS = np.array([20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0])  # each band's middle age (85+: 90)
TARGETS = {"zero_day": 0.35, "short_75plus": 0.283, "overnight_mean": 7.9, "overnight_mean_85plus": 10.8,
           "long_beds": 0.19, "delayed": 0.135, "delays_65plus": 0.85, "delay_mean": 6.09}
LONG = 21  # days: a long stay is one beyond three weeks
CV_SLOPE = 0.13  # the long-stay bed share's rise per unit of CV (calibration/emergency-los.md at model 13)
MONTHS, FOLLOW = 12, 6  # admissions of the first 12 months, followed 6 more
TOLERANCE = 0.015  # each figure within 1.5% of its target
ENGLAND_ADULTS = 45.5e6  # people 16+ in England, mid-2019 (56.3m less 10.8m under 16; unverified (memory))


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Stays:
    """The fitted parameters. Each age profile has two: the same-day and delay chances are
    logistic in age (log-odds at 50 and their change per year), the mean stay log-linear
    (its value at 50 and the change of its log per year); and the CV and the mean delay."""

    same_logit: float = -0.6
    same_slope: float = -0.02
    los_at_50: float = 5.0
    los_slope: float = 0.02
    cv: float = 1.4
    delay_logit: float = -2.9
    delay_slope: float = 0.04
    delay_mean: float = 3.5

    def tables(self) -> dict[str, list[float]]:
        x = MIDS - 50.0
        same = expit(self.same_logit + self.same_slope * x)
        los = self.los_at_50 * np.exp(self.los_slope * x)
        delay = expit(self.delay_logit + self.delay_slope * x)
        return {"same_day_probability": [round(float(v), 3) for v in same],
                "los_mean": [round(float(v), 2) for v in los],
                "delay_probability": [round(float(v), 4) for v in delay]}


def _tree(s: Stays) -> dict:
    tree = copy.deepcopy(default_model_tree())
    e = tree["hospital"]["admissions"]["emergency"]
    for key, value in s.tables().items():
        e[key] = {"value": value, "breaks": list(BREAKS), "unit": "probability" if "prob" in key else "days",
                  "status": "D", "source": "fitting"}
    e.setdefault("same_day_cost", {"value": 700.0, "unit": "£ per admission", "price_year": "2023/24",
                                   "status": "D", "source": "fitting"})
    e["los_cv"]["value"] = s.cv
    e["delay_mean"]["value"] = s.delay_mean
    return tree


def stays(s: Stays, tenants: int, seed: int) -> tuple[pd.DataFrame, int]:
    """Every adult emergency stay admitted in the first ``MONTHS`` of one run: age at
    admission, days in hospital (0 for a same-day stay) and days of delay; and the number of
    adults at the start."""
    world = world_tree()
    model = HousingHealthModel(RunConfig(model_tree=_tree(s), world_tree=world, tenants=tenants,
                                         tenure=england(world), steps=MONTHS + FOLLOW, seed=seed))
    hospital, pop = model.hospital, model.pop
    adults = int(np.sum(pop.alive & (pop.age_years >= 16)))
    code = next(t.code for t in hospital.types if t.name == "emergency")
    admitted = np.full(pop.n, -1, dtype=np.int64)
    delay = np.zeros(pop.n, dtype=np.int64)
    age = np.zeros(pop.n, dtype=np.int16)
    rows: list[pd.DataFrame] = []
    last_day = np.iinfo(np.int64).max  # admissions from this day on are not followed

    def on_admit(idx: np.ndarray, day: np.ndarray) -> None:
        mine = (hospital.admit_type[idx] == code) & (pop.age_years[idx] >= 16) & (day < last_day)
        admitted[idx] = np.where(mine, day, -1)
        delay[idx] = 0
        age[idx] = pop.age_years[idx]

    def on_delay(idx: np.ndarray, day: np.ndarray, until: np.ndarray) -> None:
        delay[idx] = until - day

    def on_home(idx: np.ndarray, day: np.ndarray) -> None:
        mine = admitted[idx] >= 0
        if mine.any():
            who = idx[mine]
            rows.append(pd.DataFrame({"age": age[who], "days": day[mine] - admitted[who],
                                      "delay": delay[who]}))
            admitted[who] = -1

    hospital.on_admit.append(on_admit)
    hospital.on_delay.append(on_delay)
    hospital.on_home.append(on_home)
    for t in range(MONTHS + FOLLOW):
        model.step()
        if t == MONTHS - 1:
            last_day = model.day
    model.release()
    return pd.concat(rows, ignore_index=True), adults


def figures(table: pd.DataFrame, adults: int) -> dict[str, float]:
    """The targets' figures and the checks, from one run's stays."""
    days, delay, age = (table[c].to_numpy() for c in ("days", "delay", "age"))
    night, delayed = days >= 1, delay > 0
    return {
        "stays": len(days), "zero_day": float(np.mean(days == 0)),
        "short_75plus": float(np.mean(days[age >= 75] <= 1)),
        "overnight_mean": float(days[night].mean()),
        "overnight_mean_85plus": float(days[night & (age >= 85)].mean()),
        "long_beds": float(np.maximum(days - LONG, 0).sum() / days.sum()),
        "delayed": float(delayed[night].mean()), "delays_65plus": float(np.mean(age[delayed] >= 65)),
        "delay_mean": float(delay[delayed].mean()),
        # checks
        "overnight_mean_65plus": float(days[night & (age >= 65)].mean()),
        "over_14": float(np.mean(days > 14)), "one_day_75plus": float(np.mean(days[age >= 75] == 1)),
        "bed_days_england_m": float(days.sum() / adults * ENGLAND_ADULTS / 1e6),
        "mean_all": float(days.mean()),
    }


def _band(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(BREAKS, age, side="right") - 1


def _solve(f, start: tuple[float, float]) -> tuple[float, float]:
    """The two parameters that zero ``f`` (two equations)."""
    sol = optimize.least_squares(f, np.array(start), method="lm")
    return float(sol.x[0]), float(sol.x[1])


def step(s: Stays, f: dict[str, float], table: pd.DataFrame, damping: float = 1.0) -> Stays:
    """One round's move of the parameters towards their targets: each profile's two
    parameters solve its two targets given the run's stays by band (the other profiles'
    effects as the run had them); the CV moves by a fixed slope, the mean delay by a ratio,
    each by ``damping`` of the way (the realised mean delay and long-stay share move with who
    is delayed, noise the full step would chase)."""
    days, delay, age = (table[c].to_numpy() for c in ("days", "delay", "age"))
    band, x = _band(age), MIDS - 50.0
    count = lambda sel: np.bincount(band[sel], minlength=len(BREAKS)).astype(float)  # noqa: E731
    n, night = count(np.ones(len(days), bool)), days >= 1
    # same-day: overall share, and at 75+ the zero-day share that makes 0-1 day stays 28.3%
    zero75 = np.mean(days[age >= 75] == 0)
    want75 = zero75 + TARGETS["short_75plus"] - f["short_75plus"]
    p75 = n * (MIDS >= 80)

    def same(v: np.ndarray) -> np.ndarray:
        p = expit(v[0] + v[1] * x)
        return np.array([(n @ p) / n.sum() - TARGETS["zero_day"], (p75 @ p) / p75.sum() - want75])
    same_logit, same_slope = _solve(same, (s.same_logit, s.same_slope))
    # length: acute days scale with the profile, delays stay as they were
    nn = count(night)
    acute = np.bincount(band[night], weights=(days - delay)[night], minlength=len(BREAKS)) / np.maximum(nn, 1)
    waits = np.bincount(band[night], weights=delay[night], minlength=len(BREAKS)) / np.maximum(nn, 1)

    def length(v: np.ndarray) -> np.ndarray:
        m = acute * np.exp(v[0] - np.log(s.los_at_50) + (v[1] - s.los_slope) * x) + waits
        return np.array([(nn @ m) / nn.sum() / TARGETS["overnight_mean"] - 1,
                         m[-1] / TARGETS["overnight_mean_85plus"] - 1])
    log_at_50, los_slope = _solve(length, (np.log(s.los_at_50), s.los_slope))
    # delays: the run's delayed share by band, its odds moved as the parameters move
    d = count(night & (delay > 0)) / np.maximum(nn, 1)
    odds = np.log(np.clip(d, 1e-4, 1 - 1e-4) / (1 - np.clip(d, 1e-4, 1 - 1e-4)))
    old = MIDS >= 70

    def delays(v: np.ndarray) -> np.ndarray:
        q = nn * expit(odds + (v[0] - s.delay_logit) + (v[1] - s.delay_slope) * x)
        return np.array([q.sum() / nn.sum() / TARGETS["delayed"] - 1,
                         q[old].sum() / q.sum() - TARGETS["delays_65plus"]])
    delay_logit, delay_slope = _solve(delays, (s.delay_logit, s.delay_slope))
    cv = s.cv + damping * (TARGETS["long_beds"] - f["long_beds"]) / CV_SLOPE
    delay_mean = s.delay_mean * (TARGETS["delay_mean"] / f["delay_mean"]) ** damping
    return Stays(same_logit, same_slope, float(np.exp(log_at_50)), los_slope, cv, delay_logit, delay_slope,
                 delay_mean)


def fitted(f: dict[str, float]) -> bool:
    return all(abs(f[k] / v - 1) <= TOLERANCE for k, v in TARGETS.items())


def fit(tenants: int, seed: int, rounds: int, start: Stays) -> tuple[Stays, dict[str, float], list[dict]]:
    s, history = start, []
    for r in range(1, rounds + 1):
        table, adults = stays(s, tenants, seed)
        f = figures(table, adults)
        history.append({"round": r, **s.__dict__, **f})
        print(f"round {r}: " + ", ".join(f"{k} {f[k]:.3g}" for k in TARGETS), flush=True)
        if fitted(f):
            return s, f, history
        s = step(s, f, table, 1.0 if r < 3 else 0.5)
    raise SystemExit(f"not within {TOLERANCE:.0%} of every target after {rounds} rounds: run more (--rounds)")


def write(s: Stays, model_file: Path = MODEL_FILE) -> None:
    """Put the fitted values into the emergency section of the model file (value only: each
    entry's source names this script)."""
    text = model_file.read_text()
    start = text.index("[hospital.admissions.emergency]\n")
    end = text.index("\n[", start + 1)
    section = text[start:end]
    values = {**{k: "[" + ", ".join(f"{x:g}" for x in v) + "]" for k, v in s.tables().items()},
              "los_cv": f"{s.cv:.2f}", "delay_mean": f"{s.delay_mean:.2f}"}
    for key, value in values.items():
        section, n = re.subn(rf"^({key} = \{{ value = )(\[[^\]]*\]|[0-9.]+)", rf"\g<1>{value}", section,
                             count=1, flags=re.M)
        if n != 1:
            raise SystemExit(f"{key} not found in [hospital.admissions.emergency]")
    model_file.write_text(text[:start] + section + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--write", action="store_true", help=f"write {OUT.name} and the model file")
    args = parser.parse_args()
    started = time.time()
    s, f, history = fit(args.tenants, args.seed, args.rounds, Stays())
    seconds = time.time() - started
    names = {"zero_day": "Zero-day stays, share of admissions", "short_75plus": "Stays of 0-1 day at 75+",
             "overnight_mean": "Mean overnight stay (days)",
             "overnight_mean_85plus": "Mean overnight stay at 85+",
             "long_beds": "Beds held by patients in 21+ days", "delayed": "Overnight discharges delayed",
             "delays_65plus": "Delays of people 65+", "delay_mean": "Mean delay (days)"}
    checks = {"overnight_mean_65plus": ("Mean overnight stay at 65+",
                                        "about 9.5 (derived: i16-research-h I2)"),
              "over_14": ("Stays over 14 days, share of admissions", "about 9% (8.5-10%, derived: I1-I3)"),
              "bed_days_england_m": ("Adult emergency bed days a year, England (m)",
                                     "about 29.5 (27-33, derived: I1)"),
              "one_day_75plus": ("One-day stays at 75+", "no target")}
    lines = ["# Adults' emergency stays (`hospital.admissions.emergency`)", "",
             f"Written by `python calibration/emergency_stays.py --tenants {args.tenants} --seed {args.seed} "
             f"--write` ({seconds:.0f} s, {len(history)} rounds; method in its docstring). Adults' emergency "
             f"stays admitted in a year of England's population ({f['stays']:,.0f} stays), followed home; "
             "delays included.", "",
             "| Figure | Target | Model |", "|---|---|---|"]
    lines += [f"| {names[k]} | {v:g} | {f[k]:.3g} |" for k, v in TARGETS.items()]
    lines += ["", "Checks (not fitted):", "", "| Figure | Published | Model |", "|---|---|---|"]
    lines += [f"| {label} | {published} | {f[k]:.3g} |" for k, (label, published) in checks.items()]
    lines += ["", "Fitted values:", ""]
    lines += [f"- `{k}` = {v}" for k, v in s.tables().items()]
    lines += [f"- `los_cv` = {s.cv:.2f}", f"- `delay_mean` = {s.delay_mean:.2f}", ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        OUT.write_text(text)
        write(s)


if __name__ == "__main__":
    main()
