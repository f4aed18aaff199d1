"""Fit the chains' deterioration rates so that the cross-section holds (issue 16: no drift).

No published table of year-to-year transitions was found for England (calibration/
baseline-targets.md, section 12), so the onset rates of the two-state chains and the
deterioration probabilities of self-rated health are fitted, by sex and five-year age band,
so that a closed cohort of England's adults (all tenures, no children) keeps, at every age,
the prevalence the model starts with: the published cross-section (each chain's initial
shares). Recovery rates are kept as they are (they set how long a spell lasts, which a
cross-section cannot tell).

Each round runs the model with the current values for ``--years`` and, year by year, compares
the people alive at each year's end with the cross-section at their age then (each
person's own initial-distribution chances at their age, sex, deprivation and other states
then: by single year of age, as the default model's initial tables are ``smooth``), less the
same comparison of everyone alive at the year's start: the excess change of a year, by sex
and band of age at the year's start, pooled over the years. (Until model 8 the comparison
was with the band's mean chance, so the people ageing into a band with a higher share were
counted as a shortfall of the band below, and care need at 85+ fell by 4 points in the first
two years.) Survivors are compared with the
cross-section because a cross-section is of survivors: a state that kills must be
replenished. A two-state chain's onset rate moves by ``-excess / (1 - p)`` (a year of onset
at rate i turns i (1 - p) of the band); self-rated health moves its two exits from good
(good_to_fair, good_to_bad) by one factor from the excess of the good share, and fair_to_bad
by another from the excess of the bad share. The same comparison by IMD decile
fits each transition's deprivation rate ratio (``rr.deprivation``, per decile more deprived,
by ten-year band ``DEP_BANDS``): the corrections the excess asks of each decile are regressed
(log scale, weighted by people) on the number of deciles more deprived than decile 10, and
the slope moves the band's rate ratio, so that each decile keeps its own cross-section too
(the initial odds ratios by deprivation). Rounds repeat with the same random numbers until
the largest excess is below ``TOLERANCE`` (share a year) or ``--rounds`` run out.

    python calibration/stationary.py --tenants 500000 --years 10 --rounds 14 --write   # about 10 minutes

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

from hhsim.core.parameters import read_toml
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.model.census import CENSUS_AGE_BANDS
from hhsim.model.simulation import HousingHealthModel, RunConfig
from hhsim.studies.baseline.drift import england
from hhsim.world.population import DECILES

MODEL_FILE = Path(__file__).resolve().parents[1] / "hhsim" / "data" / "default_model.toml"
BANDS = [b for b in CENSUS_AGE_BANDS if b >= 16]  # adults' five-year bands, 85+ open
TWO_STATE = {"ltc": "onset", "mental_health": "onset", "care_need": "onset", "isolation": "onset"}
HEALTH = ("good_to_fair", "good_to_bad", "fair_to_bad")
TOLERANCE = 0.0005  # largest drift of any band's prevalence (share a year) to stop at
DAMPING = 0.8
FLOOR = 1e-4  # smallest onset rate or probability a year


FITTED = [*TWO_STATE.items(), *(("health", t) for t in HEALTH)]  # (chain, transition)
DEP_BANDS = [16, 25, 35, 45, 55, 65, 75, 85]  # bands of the fitted deprivation rate ratios
_dep_band = np.searchsorted(DEP_BANDS, BANDS, side="right") - 1  # each census band's DEP_BANDS band


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


def start_gradients(tree: dict) -> dict[tuple[str, str], np.ndarray]:
    """Each fitted transition's deprivation rate ratio by ``DEP_BANDS`` (1 where it has none)."""
    out = {}
    for c, t in FITTED:
        leaf = tree["chains"][c]["transitions"][t].get("rr", {}).get("deprivation")
        value = np.asarray(leaf["value"], dtype=float) if leaf else np.array(1.0)
        if leaf and "breaks" in leaf:
            value = value[np.searchsorted(leaf["breaks"], DEP_BANDS, side="right") - 1]
        out[(c, t)] = np.broadcast_to(value, (len(DEP_BANDS),)).copy()
    return out


def with_values(tree: dict, values: dict[tuple[str, str], np.ndarray],
                gradients: dict[tuple[str, str], np.ndarray]) -> dict:
    out = copy.deepcopy(tree)
    for (c, t), v in values.items():
        leaf = _leaf(out, c, t)
        leaf["value"] = np.round(v, 6).tolist()
        leaf["breaks"] = list(BANDS)
        rr = out["chains"][c]["transitions"][t].setdefault("rr", {})
        rr["deprivation"] = {**rr.get("deprivation", {"unit": "rate ratio per decile more deprived",
                                                      "status": "D", "source": "stationary.py"}),
                             "value": np.round(gradients[(c, t)], 5).tolist(), "breaks": list(DEP_BANDS)}
    return out


def yearly_excess(tree: dict, tenants: int, seed: int,
                  years: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Run England's adults for ``years``; for each chain, by sex, band of age at the start of
    each year and IMD decile, pooled over the years: how far the survivors' shares at the
    year's end exceed the cross-section at their age then, less the same excess of everyone
    alive at the year's start; the shares at the start; and the people-years behind them. The
    cross-section is each person's own initial-distribution chances at their age, sex,
    deprivation and other states at the time (by single year of age when the chain's initial
    table is ``smooth``), so that people ageing into the next band are compared with the
    share at their age, not with the band's mean. Survivors are compared with the
    cross-section, itself of survivors: a state that kills must be replenished. Later years
    see the joint distribution of the chains as the dynamics have made it, not as it was
    drawn."""
    world = world_tree()
    model = HousingHealthModel(RunConfig(model_tree=tree, world_tree=world, tenants=tenants,
                                         tenure=england(world), steps=12 * years, seed=seed, children=False))
    pop, health = model.pop, model.health
    names = [*TWO_STATE, "health"]
    sex = pop.female.view(np.int8).astype(np.intp)
    decile = pop.deprivation.astype(np.intp) - 1
    size = 2 * len(BANDS) * DECILES

    def cells() -> tuple[np.ndarray, np.ndarray]:
        adults = pop.alive & (pop.age_years >= BANDS[0])
        band = np.searchsorted(BANDS, pop.age_years, side="right") - 1
        return adults, (sex * len(BANDS) + band) * DECILES + decile

    def mean(cell: np.ndarray, x: np.ndarray) -> np.ndarray:
        n = np.maximum(np.bincount(cell, minlength=size), 1)
        return np.stack([np.bincount(cell, weights=x[:, k], minlength=size) / n
                         for k in range(x.shape[1])], -1)

    eye = {n: np.eye(len(health.chains[n].states)) for n in names}
    sums = {n: np.zeros((2, size, len(health.chains[n].states))) for n in names}
    weight = np.zeros(size)
    for _ in range(years):
        adults, cell = cells()
        n0 = np.bincount(cell[adults], minlength=size)
        start = {n: eye[n][pop.states[n][adults]] - health.chains[n].initial.chances(pop)[adults]
                 for n in names}
        shares = {n: mean(cell[adults], eye[n][pop.states[n][adults]]) for n in names}
        for _ in range(12):
            model.step()
        kept = adults & pop.alive
        for n in names:
            end = mean(cell[kept], eye[n][pop.states[n][kept]] - health.chains[n].initial.chances(pop)[kept])
            sums[n][0] += (end - mean(cell[adults], start[n])) * n0[:, None]
            sums[n][1] += shares[n] * n0[:, None]
        weight += n0
    return {n: (*((sums[n][j] / np.maximum(weight, 1)[:, None]).reshape(2, len(BANDS), DECILES, -1)
                  for j in range(2)), weight.reshape(2, len(BANDS), DECILES)) for n in names}


STEPS = DECILES - 1 - np.arange(DECILES)  # deciles more deprived than decile 10, for deciles 1..10


def _cell_rate(v: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(sex, band, decile) rate from a (sex, band) national value and a gradient by DEP_BANDS,
    de-averaged over equal deciles (as ``reference = true`` does over England)."""
    per = g[_dep_band][:, None] ** STEPS  # (band, decile)
    return v[..., None] * per / per.mean(axis=1, keepdims=True)


def _slope(m: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per DEP band: the weighted slope of log m on the steps, within each sex and band."""
    y, x = np.log(m), np.broadcast_to(STEPS.astype(float), m.shape)
    ybar = (w * y).sum(-1, keepdims=True) / np.maximum(w.sum(-1, keepdims=True), 1e-9)
    xbar = (w * x).sum(-1, keepdims=True) / np.maximum(w.sum(-1, keepdims=True), 1e-9)
    sxy, sxx = (w * (x - xbar) * (y - ybar)).sum((0, -1)), (w * (x - xbar) ** 2).sum((0, -1))  # by band
    inside = [_dep_band == k for k in range(len(DEP_BANDS))]
    return np.array([sxy[b].sum() / max(sxx[b].sum(), 1e-9) for b in inside])


def _apply(values: dict, gradients: dict, key: tuple[str, str], m: np.ndarray, w: np.ndarray,
           high: float) -> None:
    """Move a transition's national value by the people-weighted mean correction over deciles,
    and its deprivation gradient by the slope of the corrections."""
    level = (w * m).sum(-1) / np.maximum(w.sum(-1), 1e-9)
    values[key] = np.clip(values[key] * level, FLOOR, high)
    gradients[key] = np.clip(gradients[key] * np.exp(_slope(m, w)), 0.8, 1.6)


def update(values: dict, gradients: dict, changes: dict) -> tuple[float, float]:
    """Move every fitted value and gradient once; the largest excess change (share a year)
    before the move by sex and band, and by DEP band and decile (both sexes)."""
    worst = worst_decile = 0.0

    def note(d: np.ndarray, w: np.ndarray) -> None:
        nonlocal worst, worst_decile
        worst = max(worst, float(np.abs((w * d).sum(-1) / np.maximum(w.sum(-1), 1e-9)).max()))
        for b in (_dep_band == k for k in range(len(DEP_BANDS))):
            ww = w[:, b]
            dd = (ww * d[:, b]).sum((0, 1)) / np.maximum(ww.sum((0, 1)), 1e-9)
            worst_decile = max(worst_decile, float(np.abs(dd).max()))

    for chain, transition in TWO_STATE.items():
        d, p, w = changes[chain][0][..., 1], changes[chain][1][..., 1], changes[chain][2]
        note(d, w)
        key = (chain, transition)
        rate = _cell_rate(values[key], gradients[key])
        m = np.clip(1 - DAMPING * d / (np.maximum(1 - p, 0.05) * np.maximum(rate, FLOOR)), 0.5, 2.0)
        _apply(values, gradients, key, m, w, np.inf)
    d, p, w = changes["health"]
    note(d[..., 0], w)
    note(d[..., 2], w)
    gf, gb, fb = (_cell_rate(values[("health", t)], gradients[("health", t)]) for t in HEALTH)
    # good loses (gf + gb) of its share a year: a factor m on both moves it by -p_good (gf + gb)(m - 1)
    m_good = np.clip(1 + DAMPING * d[..., 0] / np.maximum(p[..., 0] * (gf + gb), 1e-6), 0.5, 2.0)
    # bad gains p_good gb + p_fair fb a year; take off what the move of gb already does
    rest = d[..., 2] + p[..., 0] * gb * (m_good - 1)
    m_bad = np.clip(1 - DAMPING * rest / np.maximum(p[..., 1] * fb, 1e-6), 0.5, 2.0)
    for t in ("good_to_fair", "good_to_bad"):
        _apply(values, gradients, ("health", t), m_good, w, 0.9)
    _apply(values, gradients, ("health", "fair_to_bad"), m_bad, w, 0.9)
    return worst, worst_decile


def write(values: dict, gradients: dict, model_file: Path = MODEL_FILE) -> None:
    """Put the fitted values into the model file (each rule's value and breaks, and its
    deprivation rate ratio by ``DEP_BANDS``)."""
    text = model_file.read_text()
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
        per = ", ".join(f"{x:.4g}" for x in gradients[(chain, transition)])
        gradient = (f'rr.deprivation = {{ value = [{per}], breaks = {DEP_BANDS}, unit = "rate ratio per '
                    'decile more deprived", status = "D", source = "Fitted by calibration/stationary.py '
                    'with the rates above, so that each IMD decile keeps its own cross-section (the initial '
                    'odds ratios by deprivation) as it ages; by ten-year band." }')
        section = section.replace(line.group(0), new)
        old = re.search(r"^rr\.deprivation = \{.*\}$", section, flags=re.M)
        section = (section.replace(old.group(0), gradient) if old else
                   section.replace(new, new + "\n" + gradient))
        text = text[:start] + section + text[end:]
    model_file.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tenants", type=int, default=400_000)
    ap.add_argument("--years", type=int, default=10, help="years pooled in each round")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--write", action="store_true", help="write the fitted values into the model file")
    ap.add_argument("--model", type=Path, default=MODEL_FILE,
                    help="the model file to start from and write to (default: the package's)")
    args = ap.parse_args()
    tree = default_model_tree() if args.model == MODEL_FILE else read_toml(args.model)
    values, gradients = start_values(tree), start_gradients(tree)
    for k in range(args.rounds):
        t0 = time.perf_counter()
        excess = yearly_excess(with_values(tree, values, gradients), args.tenants, args.seed, args.years)
        worst, by_decile = update(values, gradients, excess)
        print(f"round {k}: largest drift {worst * 100:.3f} points a year by sex and band, "
              f"{by_decile * 100:.3f} by decile ({time.perf_counter() - t0:.0f} s)", flush=True)
        if worst < TOLERANCE:
            break
    for key, v in values.items():
        print(key, np.round(v, 4).tolist(), "deprivation", np.round(gradients[key], 4).tolist())
    if args.write:
        write(values, gradients, args.model)


if __name__ == "__main__":
    main()
