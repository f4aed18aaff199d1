"""Fit the chains' deterioration rates so that the cross-section holds (issue 16: no drift).

No published table of year-to-year transitions was found for England (calibration/
baseline-targets.md, section 12), so the onset rates of the two-state chains and the
deterioration probabilities of self-rated health are fitted, by sex and five-year age band,
so that a closed population of England's adults and their children (all tenures) keeps, at
every age, the prevalence the model starts with: the published cross-section (each chain's
initial shares). Recovery rates are kept as they are (they set how long a spell lasts, which
a cross-section cannot tell).

Each round runs the model with the current values for ``--years`` and, month by month,
compares the people alive at each month's end with the cross-section at their age then (each
person's own initial-distribution chances at their age, sex, deprivation and other states
then: by single year of age, as the default model's initial tables are ``smooth``), less the
same comparison of everyone alive at the month's start: the excess change, by sex and band of
age at the month's start, pooled over the months and given as a rate a year. The children
matter: each month some turn 16 and enter the adult chains drawn from the cross-section at
16, so that the youngest bands keep the age mix of a stable population. (Until model 10 the
comparison was made once a year, by band of age at the year's start, in a population without
children: the 16-19 band held only people who had started in it, a person of 19 gave it a
year mostly spent at 20, and common mental disorder of women 16-19 rose 3 points in five years
of the drift check. Until model 8 it was made with the band's mean chance, so the people
ageing into a band with a higher share were counted as a shortfall of the band below.)
Survivors are compared with the cross-section because a cross-section is of survivors: a
state that kills must be replenished. A two-state chain's onset rate moves by
``-e / (1 - p)`` (a year of onset at rate i turns i (1 - p) of the band), where the rate
error e = dg/dt + (onset + recovery) g takes in the gap g as well as its change
(``rate_error``); self-rated health moves its two exits from good (good_to_fair,
good_to_bad) by one factor from the change of the good share's gap, and fair_to_bad by
another from the bad share's (the change only: a settled gap of self-rated health is not
yet seen, a limit of this fit).

The same comparison by IMD decile fits each transition's deprivation rate ratio
(``rr.deprivation``, per decile more deprived, by ten-year band ``DEP_BANDS``): the
corrections the excess asks of each decile are regressed (log scale, weighted by people) on
the number of deciles more deprived than decile 10, and the slope moves the band's rate
ratio, so that each decile keeps its own cross-section too (the initial odds ratios by
deprivation). By tenure it fits the onset's rate ratio for each tenure whose initial odds
ratio the chain gives (``rr.tenure.<tenure>``, against owner occupiers), so that each tenure
keeps its own cross-section (until model 10 the onsets had none, and social and private
renters' isolation fell 3 points, and social renters' long-term conditions 2, in ten years).
Rounds repeat with the same random numbers until the largest rate error, by band and by
tenure, is below ``TOLERANCE`` (share a year) or ``--rounds`` run out.

    python calibration/stationary.py --tenants 500000 --years 10 --rounds 10 --write   # about 16 minutes

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
from hhsim.world.population import DECILES, TENURES

MODEL_FILE = Path(__file__).resolve().parents[1] / "hhsim" / "data" / "default_model.toml"
BANDS = [b for b in CENSUS_AGE_BANDS if b >= 16]  # adults' five-year bands, 85+ open
TWO_STATE = {"ltc": "onset", "mental_health": "onset", "care_need": "onset", "isolation": "onset"}
HEALTH = ("good_to_fair", "good_to_bad", "fair_to_bad")
TOLERANCE = 0.0005  # largest rate error of any band or tenure (share a year) to stop at
DAMPING = 0.8
FLOOR = 1e-4  # smallest onset rate or probability a year


FITTED = [*TWO_STATE.items(), *(("health", t) for t in HEALTH)]  # (chain, transition)
DEP_BANDS = [16, 25, 35, 45, 55, 65, 75, 85]  # bands of the fitted deprivation rate ratios
_dep_band = np.searchsorted(DEP_BANDS, BANDS, side="right") - 1  # each census band's DEP_BANDS band
REFERENCE_TENURE = "owner_occupied"  # the tenure whose onset a fitted tenure rate ratio is relative to


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


def start_tenure_ratios(tree: dict, world: dict) -> dict[tuple[str, str], dict[str, float]]:
    """Each two-state chain's onset and its rate ratio (1 where it has none) for each tenure
    whose initial odds ratio the chain gives and England's mix has (people sleeping rough and
    in temporary accommodation are outside it, so their ratios cannot be fitted here)."""
    present = set(england(world)) - {REFERENCE_TENURE}
    out = {}
    for c, t in TWO_STATE.items():
        initial = tree["chains"][c]["initial"].get("odds_ratio", {}).get("tenure", {})
        tenures = [x for x in initial if x in present]
        given = tree["chains"][c]["transitions"][t].get("rr", {}).get("tenure", {})
        if tenures:
            out[(c, t)] = {x: float(given[x]["value"]) if x in given else 1.0 for x in tenures}
    return out


def with_values(tree: dict, values: dict[tuple[str, str], np.ndarray],
                gradients: dict[tuple[str, str], np.ndarray],
                tenure_ratios: dict[tuple[str, str], dict[str, float]] | None = None) -> dict:
    out = copy.deepcopy(tree)
    for (c, t), ratios in (tenure_ratios or {}).items():
        rr = out["chains"][c]["transitions"][t].setdefault("rr", {}).setdefault("tenure", {})
        for x, v in ratios.items():
            rr[x] = {**rr.get(x, {"unit": "rate ratio", "status": "D", "source": "stationary.py"}),
                     "value": round(float(v), 4)}
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
                  years: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Run England's adults and their children for ``years``; for each chain, by sex, band of
    age at the start of each month, IMD decile and tenure, pooled over the months and given as a
    rate a year: how far the survivors' shares at the month's end exceed the cross-section at
    their age then, less the same excess of everyone alive at the month's start; the shares
    at the start; the people-years behind them; and the excess itself at the month's start
    (the gap between the shares and the cross-section), people-weighted. The cross-section is
    each person's own initial-distribution chances at their age, sex, deprivation and other
    states at the time (by single year of age when the chain's initial table is ``smooth``).
    Survivors are compared with the cross-section, itself of survivors: a state that kills
    must be replenished. Later months see the joint distribution of the chains as the
    dynamics have made it, not as it was drawn. Months, not years: a band's change is then
    its own rates' work."""
    world = world_tree()
    model = HousingHealthModel(RunConfig(model_tree=tree, world_tree=world, tenants=tenants,
                                         tenure=england(world), steps=12 * years, seed=seed, children=True))
    pop, health = model.pop, model.health
    names = [*TWO_STATE, "health"]
    sex = pop.female.view(np.int8).astype(np.intp)
    size = 2 * len(BANDS) * DECILES * len(TENURES)

    def cells() -> tuple[np.ndarray, np.ndarray]:
        adults = pop.alive & (pop.age_years >= BANDS[0])
        band = np.searchsorted(BANDS, pop.age_years, side="right") - 1
        decile = pop.deprivation.astype(np.intp) - 1
        return adults, ((sex * len(BANDS) + band) * DECILES + decile) * len(TENURES) + pop.tenure

    def mean(cell: np.ndarray, x: np.ndarray) -> np.ndarray:
        n = np.maximum(np.bincount(cell, minlength=size), 1)
        return np.stack([np.bincount(cell, weights=x[:, k], minlength=size) / n
                         for k in range(x.shape[1])], -1)

    eye = {n: np.eye(len(health.chains[n].states)) for n in names}

    def gaps() -> dict[str, np.ndarray]:
        """Everyone's state less their cross-section chances now (children: 0)."""
        return {n: eye[n][pop.states[n]] - health.chains[n].initial.chances(pop) for n in names}

    sums = {n: np.zeros((3, size, len(health.chains[n].states))) for n in names}
    months = np.zeros(size)
    before = gaps()
    for _ in range(12 * years):
        adults, cell = cells()
        n0 = np.bincount(cell[adults], minlength=size)
        shares = {n: mean(cell[adults], eye[n][pop.states[n][adults]]) for n in names}
        model.step()
        kept = adults & pop.alive
        after = gaps()
        for n in names:
            gap = mean(cell[adults], before[n][adults])
            sums[n][0] += 12 * (mean(cell[kept], after[n][kept]) - gap) * n0[:, None]  # a rate a year
            sums[n][1] += shares[n] * n0[:, None]
            sums[n][2] += gap * n0[:, None]
        months += n0
        before = after
    shape = (2, len(BANDS), DECILES, len(TENURES))
    per = {n: [(sums[n][j] / np.maximum(months, 1)[:, None]).reshape(*shape, -1) for j in range(3)]
           for n in names}
    return {n: (per[n][0], per[n][1], months.reshape(shape) / 12, per[n][2]) for n in names}


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


def recovery_rates(tree: dict) -> dict[str, np.ndarray]:
    """Each two-state chain's recovery rate a year (its transition from the onset's ``to`` back
    to its ``from``) by sex and census band; 0 without one."""
    out = {}
    for chain, onset in TWO_STATE.items():
        transitions = tree["chains"][chain]["transitions"]
        forward = transitions[onset]
        back = [t for t in transitions.values() if (t["from"], t["to"]) == (forward["to"], forward["from"])]
        if len(back) > 1 or (back and back[0].get("rate", {}).get("unit") != "per person-year"):
            raise SystemExit(f"stationary.py: chains.{chain}: at most one recovery, a rate per person-year")
        out[chain] = banded(back[0]["rate"]) if back else np.zeros((2, len(BANDS)))
    return out


def rate_error(d: np.ndarray, gap: np.ndarray, onset: np.ndarray, recovery: np.ndarray) -> np.ndarray:
    """The excess a year that the onset rate's error causes: in a two-state chain the gap g of
    the ill share from the cross-section moves as dg/dt = e - (i + r) g, where e = (1 - p) x
    the onset's error, so e = dg/dt + (i + r) g. The change alone (``d``) misses a gap that
    has already settled, as it does after a year or two in a chain with short spells (mental
    disorder, isolation), and the fit then stopped short of it."""
    return d + (onset + recovery) * gap


def rate_errors(values: dict, gradients: dict, tenure_ratios: dict, changes: dict,
                recovery: dict[str, np.ndarray]) -> dict[tuple[str, str], tuple[np.ndarray, ...]]:
    """Each two-state chain's onset: by sex, band, decile and tenure, the rate error a year
    (``rate_error``, with the cell's own onset rate: the national value de-averaged over the
    deciles, times the tenure's rate ratio over the cell's people-weighted mean ratio), the
    ill share, the people-years and the onset rate."""
    out = {}
    for chain, transition in TWO_STATE.items():
        key = (chain, transition)
        d, p, w, gap = changes[chain]
        rr = np.ones(len(TENURES))
        for x, v in tenure_ratios.get(key, {}).items():
            rr[TENURES.index(x)] = v
        mean_rr = (w * rr).sum(-1, keepdims=True) / np.maximum(w.sum(-1, keepdims=True), 1e-9)
        rate = _cell_rate(values[key], gradients[key])[..., None] * rr / np.maximum(mean_rr, 1e-9)
        error = rate_error(d[..., 1], gap[..., 1], rate, recovery[chain][:, :, None, None])
        out[key] = (error, p[..., 1], w, rate)
    return out


def _correction(error: np.ndarray, p: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """The factor on an onset rate that takes out a rate error (damped, within 0.5 to 2):
    a year of onset at rate i turns i (1 - p) of the band."""
    return np.clip(1 - DAMPING * error / (np.maximum(1 - p, 0.05) * np.maximum(rate, FLOOR)), 0.5, 2.0)


def _by_tenure(errors: dict, tenure_ratios: dict) -> float:
    """Move each fitted onset's tenure rate ratios by how much more (log scale, people-weighted
    over sex, band and decile) the tenure's cells ask than the reference tenure's, so that each
    tenure keeps its own cross-section (the initial odds ratios by tenure); the largest rate
    error (share a year) of a fitted tenure, both sexes and all ages, before the move."""
    worst = 0.0
    ref = TENURES.index(REFERENCE_TENURE)
    for key, ratios in tenure_ratios.items():
        error, p, w, rate = errors[key]
        people = np.maximum(w.sum((0, 1, 2)), 1e-9)  # by tenure
        log_m = (w * np.log(_correction(error, p, rate))).sum((0, 1, 2)) / people
        mean_error = (w * error).sum((0, 1, 2)) / people
        for x in ratios:
            k = TENURES.index(x)
            worst = max(worst, abs(float(mean_error[k])))
            ratios[x] = float(np.clip(ratios[x] * np.exp(log_m[k] - log_m[ref]), 0.2, 5.0))
    return worst


def _over_tenures(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x`` by (sex, band, decile, tenure, ...) pooled over tenures, weighted by people ``w``."""
    extra = (None,) * (x.ndim - w.ndim)
    return (w[(..., *extra)] * x).sum(w.ndim - 1) / np.maximum(w.sum(-1), 1e-9)[(..., *extra)]


def update(values: dict, gradients: dict, changes: dict, recovery: dict[str, np.ndarray],
           tenure_ratios: dict | None = None) -> tuple[float, float, float]:
    """Move every fitted value, gradient and tenure rate ratio once; the largest rate error
    (share a year) before the move by sex and band, by DEP band and decile (both sexes), and
    by fitted tenure."""
    errors = rate_errors(values, gradients, tenure_ratios or {}, changes, recovery)
    by_tenure = _by_tenure(errors, tenure_ratios or {})
    worst = worst_decile = 0.0

    def note(d: np.ndarray, w: np.ndarray) -> None:
        nonlocal worst, worst_decile
        worst = max(worst, float(np.abs((w * d).sum(-1) / np.maximum(w.sum(-1), 1e-9)).max()))
        for b in (_dep_band == k for k in range(len(DEP_BANDS))):
            ww = w[:, b]
            dd = (ww * d[:, b]).sum((0, 1)) / np.maximum(ww.sum((0, 1)), 1e-9)
            worst_decile = max(worst_decile, float(np.abs(dd).max()))

    for key, (error, p, w, _) in errors.items():
        error, p, people = _over_tenures(error, w), _over_tenures(p, w), w.sum(-1)
        note(error, people)
        m = _correction(error, p, _cell_rate(values[key], gradients[key]))
        _apply(values, gradients, key, m, people, np.inf)
    d, p, w, _ = changes["health"]
    d, p, w = _over_tenures(d, w), _over_tenures(p, w), w.sum(-1)
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
    return worst, worst_decile, by_tenure


def write(values: dict, gradients: dict, model_file: Path = MODEL_FILE,
          tenure_ratios: dict | None = None) -> None:
    """Put the fitted values into the model file (each rule's value and breaks, its
    deprivation rate ratio by ``DEP_BANDS`` and its fitted tenure rate ratios)."""
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
            'status = "D", source = "Fitted by calibration/stationary.py so that a closed population of '
            "England's adults and their children keeps the initial prevalence at every age (the "
            'cross-section; no published year-to-year transition table was found, '
            'calibration/baseline-targets.md 12), '
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
        for tenure, ratio in (tenure_ratios or {}).get((chain, transition), {}).items():
            entry = (f'rr.tenure.{tenure} = {{ value = {ratio:.4g}, unit = "rate ratio", status = "D", '
                     'source = "Fitted by calibration/stationary.py with the rates above, so that people of '
                     f'this tenure keep their own cross-section (the initial odds ratio by tenure) as they '
                     f'age; relative to {REFERENCE_TENURE.replace("_", " ")}." }}')
            old = re.search(rf"^rr\.tenure\.{tenure} = \{{.*\}}$", section, flags=re.M)
            section = (section.replace(old.group(0), entry) if old else
                       section.replace(gradient, gradient + "\n" + entry))
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
    tenure_ratios = start_tenure_ratios(tree, world_tree())
    recovery = recovery_rates(tree)
    for k in range(args.rounds):
        t0 = time.perf_counter()
        excess = yearly_excess(with_values(tree, values, gradients, tenure_ratios), args.tenants, args.seed,
                               args.years)
        worst, by_decile, by_tenure = update(values, gradients, excess, recovery, tenure_ratios)
        print(f"round {k}: largest rate error {worst * 100:.3f} points a year by sex and band, "
              f"{by_decile * 100:.3f} by decile, {by_tenure * 100:.3f} by tenure "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if max(worst, by_tenure) < TOLERANCE:
            break
    for key, v in values.items():
        print(key, np.round(v, 4).tolist(), "deprivation", np.round(gradients[key], 4).tolist(),
              "tenure", tenure_ratios.get(key, {}))
    if args.write:
        write(values, gradients, args.model, tenure_ratios)


if __name__ == "__main__":
    main()
