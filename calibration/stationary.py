"""Fit the chains' deterioration rates so that the cross-section holds (issue 16: no drift).

No published table of year-to-year transitions was found for England (calibration/
baseline-targets.md, section 12), so the onset rates of the two-state chains and the
deterioration probabilities of self-rated health are fitted, by sex and five-year age band,
so that a closed cohort of England's adults (all tenures, no children) keeps, at every age,
the prevalence the model starts with: the published cross-section (each chain's initial
shares). Recovery rates are kept as they are (they set how long a spell lasts, which a
cross-section cannot tell).

Each round runs the model with the current values for ``--years`` and, year by year, compares
the people alive at each year's end with the cross-section at their age then (the mean
initial-distribution chances of this population at the start, by sex and band), less the
same comparison of everyone alive at the year's start: the excess change of a year, by sex
and band of age at the year's start, pooled over the years. Survivors are compared with the
cross-section because a cross-section is of survivors: a state that kills must be
replenished. A two-state chain's onset rate moves by ``-excess / (1 - p)`` (a year of onset
at rate i turns i (1 - p) of the band); self-rated health moves its two exits from good
(good_to_fair, good_to_bad) by one factor from the excess of the good share, and fair_to_bad
by another from the excess of the bad share. Rounds repeat with the same random numbers
until the largest excess is below ``TOLERANCE`` (share a year) or ``--rounds`` run out.

    python calibration/stationary.py --tenants 600000 --years 10 --rounds 10 --write   # about 4 minutes

It starts from the values in the model file, so a second call refines the first.

``--write`` puts the fitted values into hhsim/data/default_model.toml (value and breaks of
each fitted rule; the source says how it was fitted). Prints the drift after each round.
"""

from __future__ import annotations

import argparse
import copy
import re
import time
from pathlib import Path

import numpy as np

from hhsim.core.resources import default_model_tree, world_tree
from hhsim.model.census import CENSUS_AGE_BANDS
from hhsim.model.simulation import HousingHealthModel, RunConfig
from hhsim.studies.baseline.drift import england

MODEL_FILE = Path(__file__).resolve().parents[1] / "hhsim" / "data" / "default_model.toml"
BANDS = [b for b in CENSUS_AGE_BANDS if b >= 16]  # adults' five-year bands, 85+ open
TWO_STATE = {"ltc": "onset", "mental_health": "onset", "care_need": "onset", "isolation": "onset"}
HEALTH = ("good_to_fair", "good_to_bad", "fair_to_bad")
TOLERANCE = 0.0005  # largest drift of any band's prevalence (share a year) to stop at
DAMPING = 0.8
FLOOR = 1e-4  # smallest onset rate or probability a year


FITTED = [*TWO_STATE.items(), *(("health", t) for t in HEALTH)]  # (chain, transition)


def _leaf(tree: dict, chain: str, transition: str) -> dict:
    """The rate or probability of a transition (whichever it gives)."""
    node = tree["chains"][chain]["transitions"][transition]
    return node["rate" if "rate" in node else "probability"]


def banded(leaf: dict) -> np.ndarray:
    """(2, len(BANDS)) values of a rule by sex and census band, from its own banding."""
    value = np.asarray(leaf["value"], dtype=float)
    breaks = leaf.get("breaks")
    if breaks is None:
        rows = np.broadcast_to(value, (2, 1))
        return np.repeat(rows, len(BANDS), axis=1).copy()
    rows = np.broadcast_to(value, (2, value.shape[-1]))
    index = np.searchsorted(breaks, BANDS, side="right") - 1
    return rows[:, index].copy()


def start_values(tree: dict) -> dict[tuple[str, str], np.ndarray]:
    return {(c, t): banded(_leaf(tree, c, t)) for c, t in FITTED}


def with_values(tree: dict, values: dict[tuple[str, str], np.ndarray]) -> dict:
    out = copy.deepcopy(tree)
    for (c, t), v in values.items():
        leaf = _leaf(out, c, t)
        leaf["value"] = np.round(v, 6).tolist()
        leaf["breaks"] = list(BANDS)
    return out


def yearly_excess(tree: dict, tenants: int, seed: int,
                  years: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run England's adults for ``years``; for each chain, by sex and band of age at the start
    of each year, pooled over the years: how far the survivors' shares at the year's end
    exceed the cross-section at their age then, less the same excess of everyone alive at the
    year's start; and the shares at the start. The cross-section is the model's start: the
    mean initial-distribution chances by sex and band of this population. Survivors are
    compared with the cross-section, itself of survivors: a state that kills must be
    replenished. Later years see the joint distribution of the chains as the dynamics have
    made it, not as it was drawn."""
    world = world_tree()
    model = HousingHealthModel(RunConfig(model_tree=tree, world_tree=world, tenants=tenants,
                                         tenure=england(world), steps=12 * years, seed=seed, children=False))
    pop, health = model.pop, model.health
    names = [*TWO_STATE, "health"]
    size = 2 * len(BANDS)
    sex = pop.female.view(np.int8).astype(np.intp)

    def cells() -> tuple[np.ndarray, np.ndarray]:
        adults = pop.alive & (pop.age_years >= BANDS[0])
        return adults, sex * len(BANDS) + np.searchsorted(BANDS, pop.age_years, side="right") - 1

    def mean(cell: np.ndarray, x: np.ndarray) -> np.ndarray:
        n = np.maximum(np.bincount(cell, minlength=size), 1)
        return np.stack([np.bincount(cell, weights=x[:, k], minlength=size) / n
                         for k in range(x.shape[1])], -1)

    adults, cell = cells()
    target = {n: mean(cell[adults], health.chains[n].initial.chances(pop)[adults]) for n in names}
    eye = {n: np.eye(len(health.chains[n].states)) for n in names}
    sums = {n: np.zeros((2, size, len(health.chains[n].states))) for n in names}
    weight = np.zeros(size)
    for _ in range(years):
        adults, cell = cells()
        n0 = np.bincount(cell[adults], minlength=size)
        shares = {n: mean(cell[adults], eye[n][pop.states[n][adults]]) for n in names}
        for _ in range(12):
            model.step()
        kept = adults & pop.alive
        _, now = cells()
        for n in names:
            end = mean(cell[kept], eye[n][pop.states[n][kept]] - target[n][now[kept]])
            sums[n][0] += (end - (shares[n] - target[n])) * n0[:, None]
            sums[n][1] += shares[n] * n0[:, None]
        weight += n0
    return {n: tuple((sums[n][j] / np.maximum(weight, 1)[:, None]).reshape(2, len(BANDS), -1)
                     for j in range(2)) for n in names}


def update(values: dict, changes: dict) -> float:
    """Move every fitted value once; the largest excess change (share a year) before the move."""
    worst = 0.0
    for chain, transition in TWO_STATE.items():
        d, p = (x[..., 1] for x in changes[chain])
        worst = max(worst, float(np.abs(d).max()))
        v = values[(chain, transition)]
        values[(chain, transition)] = np.maximum(v - DAMPING * d / np.maximum(1 - p, 0.05), FLOOR)
    d, p = changes["health"]
    worst = max(worst, float(np.abs(d[..., [0, 2]]).max()))
    gf, gb, fb = (values[("health", t)] for t in HEALTH)
    # good loses (gf + gb) of its share a year: a factor m on both moves it by -p_good (gf + gb)(m - 1)
    m_good = np.clip(1 + DAMPING * d[..., 0] / np.maximum(p[..., 0] * (gf + gb), 1e-6), 0.5, 2.0)
    # bad gains p_good gb + p_fair fb a year; take off what the move of gb already does
    rest = d[..., 2] + p[..., 0] * gb * (m_good - 1)
    m_bad = np.clip(1 - DAMPING * rest / np.maximum(p[..., 1] * fb, 1e-6), 0.5, 2.0)
    values[("health", "good_to_fair")] = np.clip(gf * m_good, FLOOR, 0.9)
    values[("health", "good_to_bad")] = np.clip(gb * m_good, FLOOR, 0.9)
    values[("health", "fair_to_bad")] = np.clip(fb * m_bad, FLOOR, 0.9)
    return worst


def write(values: dict) -> None:
    """Put the fitted values into the default model file (each rule's value and breaks)."""
    text = MODEL_FILE.read_text()
    for (chain, transition), v in values.items():
        header = f"[chains.{chain}.transitions.{transition}]"
        start = text.index(header)
        end = text.find("\n[", start + 1)
        section = text[start:end]
        line = re.search(r"^(rate|probability) = \{.*\}$", section, flags=re.M)
        value = "[" + ", ".join("[" + ", ".join(f"{x:.5g}" for x in row) + "]" for row in v) + "]"
        new = re.sub(r"value = [^,]*(\]\])?[^=]*?, (breaks = \[[^\]]*\], )?unit",
                     f"value = {value}, breaks = {list(BANDS)}, unit", line.group(0), count=1)
        new = re.sub(r'status = "[A-Z0-9]+", source = "[^"]*"', (
            'status = "D", source = "Fitted by calibration/stationary.py so that a closed cohort of '
            "England's adults keeps the initial prevalence at every age (the cross-section; no "
            'published year-to-year transition table was found, calibration/baseline-targets.md 12), '
            'with the recovery rates as given. Rows: men, women."'), new, count=1)
        text = text[:start] + section.replace(line.group(0), new) + text[end:]
    MODEL_FILE.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tenants", type=int, default=400_000)
    ap.add_argument("--years", type=int, default=10, help="years pooled in each round")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--write", action="store_true", help="write the fitted values into the model file")
    args = ap.parse_args()
    tree = default_model_tree()
    values = start_values(tree)
    for k in range(args.rounds):
        t0 = time.perf_counter()
        worst = update(values, yearly_excess(with_values(tree, values), args.tenants, args.seed, args.years))
        print(f"round {k}: largest drift {worst * 100:.3f} points a year ({time.perf_counter() - t0:.0f} s)",
              flush=True)
        if worst < TOLERANCE:
            break
    for key, v in values.items():
        print(key, np.round(v, 4).tolist())
    if args.write:
        write(values)


if __name__ == "__main__":
    main()
