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
good_to_bad) by one factor from the good share's rate error, and fair_to_bad by another
from the bad share's (``health_errors``: the good share's gap closes at the deterioration
rates plus the recovery of people not in good health; until model 11 the change alone).

The same comparison by IMD decile fits each transition's deprivation rate ratio
(``rr.deprivation``, per decile more deprived, by ten-year band ``DEP_BANDS``): the
corrections the excess asks of each decile are regressed (log scale, weighted by people) on
the number of deciles more deprived than decile 10, and the slope moves the band's rate
ratio, so that each decile keeps its own cross-section too (the initial odds ratios by
deprivation). By tenure it fits the onset's rate ratio for each tenure whose initial odds
ratio the chain gives (``rr.tenure.<tenure>``, against owner occupiers), so that each tenure
keeps its own cross-section (until model 10 the onsets had none, and social and private
renters' isolation fell 3 points, and social renters' long-term conditions 2, in ten years).
By condition (``CONDITIONS``: each adult's state of those chains at the month's start is part
of their cell) it fits the rate ratios that carry each initial odds ratio on another chain:
an onset's ``rr.<chain>.<state>`` where the chain's initial odds ratio names that state,
and one factor per condition on self-rated health's ratios on it (up on moves to worse
health, down on moves to better). People change condition every month, so a condition's
people are judged by their gap alone (``_group_error``).
Rounds repeat with the same random numbers until the largest rate error, by band and by
tenure or condition, is below ``TOLERANCE`` (share a year) or ``--rounds`` run out.

    python calibration/stationary.py --tenants 500000 --years 10 --rounds 10 --write   # about 13 minutes

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
from typing import NamedTuple

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
TOLERANCE = 0.0005  # largest rate error of any band, tenure or condition (share a year) to stop at
DAMPING = 0.8
FLOOR = 1e-4  # smallest onset rate or probability a year


FITTED = [*TWO_STATE.items(), *(("health", t) for t in HEALTH)]  # (chain, transition)
DEP_BANDS = [16, 25, 35, 45, 55, 65, 75, 85]  # bands of the fitted deprivation rate ratios
_dep_band = np.searchsorted(DEP_BANDS, BANDS, side="right") - 1  # each census band's DEP_BANDS band
REFERENCE_TENURE = "owner_occupied"  # the tenure whose onset a fitted tenure rate ratio is relative to
CONDITIONS = ("ltc", "mental_health", "care_need")  # chains whose state (at a month's start) is a cell's too
GROUPS = ("tenure", *CONDITIONS)  # a cell's groups after sex, band and decile, in this order
GROUP_AXES = tuple(range(3, 3 + len(GROUPS)))  # a cell's group axes, after sex, band and decile
CONDITION_AXES = GROUP_AXES[1:]  # the cell's condition axes, after tenure's
RECOVERIES = ("fair_to_good", "bad_to_good", "bad_to_fair")  # self-rated health's moves to better health


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


def _levels(tree: dict, group: str) -> tuple[str, ...]:
    """The levels of a cell group: tenures, or a condition chain's states."""
    return TENURES if group == "tenure" else tuple(tree["chains"][group]["states"])


def _number(leaf: dict, where: str) -> float:
    if not isinstance(leaf.get("value"), int | float):
        raise SystemExit(f"stationary.py: {where}: a fitted rate ratio must be one number")
    return float(leaf["value"])


def start_ratios(tree: dict, world: dict) -> dict[tuple[str, str], dict[tuple[str, str], float]]:
    """Each two-state chain's onset rate ratios (1 where it has none) for each level of a group
    (tenure, or another chain's later state) whose initial odds ratio the chain gives: by tenure
    against owner occupiers, for the tenures England's mix has (people sleeping rough and in
    temporary accommodation are outside it, so their ratios cannot be fitted here); by condition
    against its first state."""
    present = set(england(world)) - {REFERENCE_TENURE}
    out = {}
    for c, t in TWO_STATE.items():
        initial = tree["chains"][c]["initial"].get("odds_ratio", {})
        given = tree["chains"][c]["transitions"][t].get("rr", {})
        ratios = {}
        for group in GROUPS:
            for level in initial.get(group, {}):
                if group == "tenure" and level not in present:
                    continue
                leaf = given.get(group, {}).get(level)
                ratios[(group, level)] = _number(leaf, f"chains.{c}.transitions.{t}.rr.{group}.{level}") \
                    if leaf else 1.0
        if ratios:
            out[(c, t)] = ratios
    return out


def start_health_factors(tree: dict) -> dict[tuple[str, str], dict[str, float]]:
    """For each condition whose initial odds ratio self-rated health gives: the rate ratio
    (``rr.<condition>.<state>``) of each health transition that has one. One factor per
    condition is fitted: it multiplies the ratios on moves to worse health and divides those on
    moves to better, so that people with the condition keep the initial odds ratio."""
    health = tree["chains"]["health"]
    out = {}
    for c in CONDITIONS:
        for state in health["initial"].get("odds_ratio", {}).get(c, {}):
            found = {t: _number(node["rr"][c][state], f"chains.health.transitions.{t}.rr.{c}.{state}")
                     for t, node in health["transitions"].items() if state in node.get("rr", {}).get(c, {})}
            if not any(health["transitions"][t]["from"] == health["states"][0] for t in found):
                raise SystemExit(f"stationary.py: chains.health: the initial odds ratio on {c} needs a "
                                 f"rate ratio rr.{c}.{state} on a move from {health['states'][0]} to fit")
            out[(c, state)] = found
    return out


def with_values(tree: dict, values: dict[tuple[str, str], np.ndarray],
                gradients: dict[tuple[str, str], np.ndarray],
                ratios: dict[tuple[str, str], dict[tuple[str, str], float]] | None = None,
                health_factors: dict[tuple[str, str], dict[str, float]] | None = None) -> dict:
    out = copy.deepcopy(tree)
    for (c, t), fitted in (ratios or {}).items():
        rr = out["chains"][c]["transitions"][t].setdefault("rr", {})
        for (group, level), v in fitted.items():
            table = rr.setdefault(group, {})
            fresh = {"unit": "rate ratio", "status": "D", "source": "stationary.py"}
            table[level] = {**table.get(level, fresh),
                            "value": round(float(v), 4)}
    for (c, state), by_transition in (health_factors or {}).items():
        for t, v in by_transition.items():
            out["chains"]["health"]["transitions"][t]["rr"][c][state]["value"] = round(float(v), 4)
    for (c, t), v in values.items():
        leaf = _leaf(out, c, t)
        leaf["value"] = np.round(v, 6).tolist()
        leaf["breaks"] = list(BANDS)
        rr = out["chains"][c]["transitions"][t].setdefault("rr", {})
        rr["deprivation"] = {**rr.get("deprivation", {"unit": "rate ratio per decile more deprived",
                                                      "status": "D", "source": "stationary.py"}),
                             "value": np.round(gradients[(c, t)], 5).tolist(), "breaks": list(DEP_BANDS)}
    return out


def monthly_sums(tree: dict, tenants: int, seed: int, years: int) -> dict[str, Sums]:
    """Run England's adults and their children for ``years``; for each chain, by sex, band of
    age at the start of each month, IMD decile, tenure and state of each of ``CONDITIONS`` then,
    summed over the months (``Sums``; ``pooled`` turns them into rates): how far the survivors'
    shares at the month's end exceed the cross-section at their age then, less the same excess
    of everyone alive at the month's start (the change of the gap); the shares at the start;
    the people-years behind them; and the gap itself at the month's start. The cross-section
    is each person's own initial-distribution chances at their age, sex, deprivation and other
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
    if any(len(health.chains[c].states) != 2 for c in CONDITIONS):
        raise SystemExit(f"stationary.py: the chains {', '.join(CONDITIONS)} must have two states each")
    sex = pop.female.view(np.int8).astype(np.intp)
    shape = (2, len(BANDS), DECILES, len(TENURES), *(2,) * len(CONDITIONS))
    size = int(np.prod(shape))

    def cells() -> tuple[np.ndarray, np.ndarray]:
        adults = pop.alive & (pop.age_years >= BANDS[0])
        band = np.searchsorted(BANDS, pop.age_years, side="right") - 1
        decile = pop.deprivation.astype(np.intp) - 1
        cell = ((sex * len(BANDS) + band) * DECILES + decile) * len(TENURES) + pop.tenure
        for c in CONDITIONS:
            cell = cell * 2 + pop.states[c]
        return adults, cell

    def total(cell: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.stack([np.bincount(cell, weights=x[:, k], minlength=size) for k in range(x.shape[1])], -1)

    eye = {n: np.eye(len(health.chains[n].states)) for n in names}

    def gaps() -> dict[str, np.ndarray]:
        """Everyone's state less their cross-section chances now (children: 0)."""
        return {n: eye[n][pop.states[n]] - health.chains[n].initial.chances(pop) for n in names}

    sums = {n: np.zeros((3, size, len(health.chains[n].states))) for n in names}
    counts = np.zeros((2, size))
    before = gaps()
    for _ in range(12 * years):
        adults, cell = cells()
        model.step()
        kept = adults & pop.alive
        after = gaps()
        for n in names:
            sums[n][0] += total(cell[kept], after[n][kept])
            sums[n][1] += total(cell[adults], before[n][adults])
            sums[n][2] += total(cell[adults], eye[n][pop.states[n][adults]])
        counts[0] += np.bincount(cell[kept], minlength=size)
        counts[1] += np.bincount(cell[adults], minlength=size)
        before = after
    k, n0 = (c.reshape(shape) for c in counts)
    return {n: Sums(*(x.reshape(*shape, -1) for x in sums[n]), k, n0) for n in names}


class Sums(NamedTuple):
    """A chain's sums by cell (and state) over the months: of the survivors' gaps at each
    month's end (``after``), of the gaps and the states of everyone alive at its start
    (``before``, ``states``), and the counts of survivors (``kept``) and of everyone
    (``people``): person-months."""

    after: np.ndarray
    before: np.ndarray
    states: np.ndarray
    kept: np.ndarray
    people: np.ndarray


def pooled(s: Sums, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A chain's change of the gap a year, shares, people-years and gap, pooled over ``axes``
    of the cell (kept, length 1). Pooling sums, not cell means: a cell split by a state a
    person may die of keeps its own share, so the means of the cells would miss the change
    that deaths make to the mix (people with a condition die sooner)."""
    def add(x: np.ndarray) -> np.ndarray:
        return x.sum(axes, keepdims=True)

    kept, people = np.maximum(add(s.kept), 1)[..., None], np.maximum(add(s.people), 1)[..., None]
    gap = add(s.before) / people
    return 12 * (add(s.after) / kept - gap), add(s.states) / people, add(s.people) / 12, gap


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
    to its ``from``) by sex and census band, 0 without one; and self-rated health's moves to
    better health (``RECOVERIES``, a year) under their own names."""
    out = {}
    for chain, onset in TWO_STATE.items():
        transitions = tree["chains"][chain]["transitions"]
        forward = transitions[onset]
        back = [t for t in transitions.values() if (t["from"], t["to"]) == (forward["to"], forward["from"])]
        if len(back) > 1 or (back and back[0].get("rate", {}).get("unit") != "per person-year"):
            raise SystemExit(f"stationary.py: chains.{chain}: at most one recovery, a rate per person-year")
        out[chain] = banded(back[0]["rate"]) if back else np.zeros((2, len(BANDS)))
    for t in RECOVERIES:
        out[t] = banded(_leaf(tree, "health", t))
    return out


def _widen(x: np.ndarray) -> np.ndarray:
    """A (sex, band) or (sex, band, decile) array with the cell's group axes added (length 1)."""
    return x.reshape(*x.shape, *(1,) * (3 - x.ndim), *(1,) * len(GROUPS))


def rate_error(d: np.ndarray, gap: np.ndarray, onset: np.ndarray, recovery: np.ndarray) -> np.ndarray:
    """The excess a year that the onset rate's error causes: in a two-state chain the gap g of
    the ill share from the cross-section moves as dg/dt = e - (i + r) g, where e = (1 - p) x
    the onset's error, so e = dg/dt + (i + r) g. The change alone (``d``) misses a gap that
    has already settled, as it does after a year or two in a chain with short spells (mental
    disorder, isolation), and the fit then stopped short of it."""
    return d + (onset + recovery) * gap


def _grid(fitted: dict[tuple[str, str], float], levels: dict[str, tuple[str, ...]]) -> np.ndarray:
    """The product of a transition's fitted rate ratios, by the cell's groups."""
    grid = np.ones(tuple(len(levels[g]) for g in GROUPS))
    for (group, level), v in fitted.items():
        index = [slice(None)] * len(GROUPS)
        index[GROUPS.index(group)] = levels[group].index(level)
        grid[tuple(index)] *= v
    return grid


class View(NamedTuple):
    """A transition's rate error a year (from the change of the gap and the gap), the share it
    moves people out of or into, people-years, its rate, the rate at which a gap closes and
    the gap, at one pooling of the cells."""

    error: np.ndarray
    p: np.ndarray
    w: np.ndarray
    rate: np.ndarray
    k: np.ndarray
    gap: np.ndarray


def _mean_over(x: np.ndarray, w: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return (w * x).sum(axes, keepdims=True) / np.maximum(w.sum(axes, keepdims=True), 1e-9)


def rate_errors(values: dict, gradients: dict, ratios: dict, sums: dict[str, Sums],
                recovery: dict[str, np.ndarray],
                levels: dict[str, tuple[str, ...]]) -> dict[tuple[str, str], dict[str, View]]:
    """Each two-state chain's onset at three poolings of the cells (``View``): ``all`` (by sex,
    band and decile), ``tenure`` (and tenure) and ``cell`` (and each condition's state). A
    cell's onset rate is the national value de-averaged over the deciles, times the cell's
    fitted rate ratios over their people-weighted mean in its sex, band and decile."""
    out = {}
    for chain, transition in TWO_STATE.items():
        key, s = (chain, transition), sums[chain]
        w_cell = pooled(s, ())[2]
        grid = _grid(ratios.get(key, {}), levels)
        rate = _widen(_cell_rate(values[key], gradients[key])) * grid / _mean_over(grid, w_cell, GROUP_AXES)
        back = _widen(recovery[chain])
        views = {}
        for name, axes in (("all", GROUP_AXES), ("tenure", CONDITION_AXES), ("cell", ())):
            d, p, w, gap = pooled(s, axes)
            r = _mean_over(rate, w_cell, axes) if axes else rate
            views[name] = View(rate_error(d[..., 1], gap[..., 1], r, back), p[..., 1], w, r, r + back,
                               gap[..., 1])
        out[key] = views
    return out


def _correction(error: np.ndarray, p: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """The factor on an onset rate that takes out a rate error (damped, within 0.5 to 2):
    a year of onset at rate i turns i (1 - p) of the band."""
    return np.clip(1 - DAMPING * error / (np.maximum(1 - p, 0.05) * np.maximum(rate, FLOOR)), 0.5, 2.0)


def _by_level(x: np.ndarray, w: np.ndarray, group: str) -> np.ndarray:
    """``x`` by cell pooled over all but one group's axis, weighted by people ``w``: by level."""
    others = tuple(a for a in range(w.ndim) if a != 3 + GROUPS.index(group))
    return (w * x).sum(others) / np.maximum(w.sum(others), 1e-9)


def _reference(group: str) -> int:
    return TENURES.index(REFERENCE_TENURE) if group == "tenure" else 0


def _turnover(group: str, values: dict, gradients: dict, recovery: dict[str, np.ndarray]) -> np.ndarray:
    """The rate a year at which people leave each level of a condition (its chain's onset from
    the first state, its recovery from the later), by cell."""
    onset = (group, TWO_STATE[group])
    leave = np.stack([_cell_rate(values[onset], gradients[onset]),
                      np.broadcast_to(recovery[group][..., None], (2, len(BANDS), DECILES))], axis=-1)
    return leave.reshape(*leave.shape[:3], *(2 if g == group else 1 for g in GROUPS))


def _group_error(views: dict[str, View], group: str, values: dict, gradients: dict,
                 recovery: dict[str, np.ndarray]) -> View:
    """The view and rate error to judge a group's levels by. A tenure keeps its people, so its
    change counts (the ``tenure`` view). People move between a condition's levels every month,
    and a month's change, credited to the level they started in, would count their jump in
    expected chances there; a condition's level is judged by its gap alone (the ``cell``
    view), which closes at the cell's own rate plus the rate at which people leave the level:
    the error a year that holds it is that rate times the gap."""
    if group == "tenure":
        return views["tenure"]
    v = views["cell"]
    return v._replace(error=(v.k + _turnover(group, values, gradients, recovery)) * v.gap)


def _by_group(errors: dict, ratios: dict, levels: dict[str, tuple[str, ...]], values: dict,
              gradients: dict, recovery: dict[str, np.ndarray]) -> tuple[float, str]:
    """Move each fitted onset's rate ratios by how much more (log scale) the level asks than
    the reference level (owner occupiers; a condition's first state), each level's error,
    share and rate pooled over the other axes first (a correction per cell would be noise in
    the many small cells), so that each tenure, and the people in each state of another
    chain, keep their own cross-section (the initial odds ratios); the largest rate error
    (share a year) of a fitted level, before the move, and where."""
    worst, where = 0.0, ""
    for key, fitted in ratios.items():
        for group in {g for g, _ in fitted}:
            v = _group_error(errors[key], group, values, gradients, recovery)
            mean_error = _by_level(v.error, v.w, group)
            log_m = np.log(_correction(mean_error, _by_level(v.p, v.w, group), _by_level(v.rate, v.w, group)))
            for (g, level), ratio in fitted.items():
                if g == group:
                    i = levels[group].index(level)
                    if abs(float(mean_error[i])) > worst:
                        worst, where = abs(float(mean_error[i])), f"{key[0]} {key[1]}, {level}"
                    fitted[(g, level)] = float(np.clip(ratio * np.exp(log_m[i] - log_m[_reference(group)]),
                                                       0.2, 5.0))
    return worst, where


def health_errors(sums: dict[str, Sums], values: dict, gradients: dict, recovery: dict[str, np.ndarray],
                  axes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Self-rated health pooled over ``axes`` of the cells: the rate errors a year of the good
    share and the bad share, the shares, people-years, deterioration rates, the rate at which
    the good share's gap closes and that gap. The good share's gap g moves as
    dg/dt = e - (gf + gb + R) g, with R the recovery of people not in good health (fair to good
    and bad to good, weighted by the fair and bad shares); the bad share's as e - (bg + bf) g.
    Rates at the sex, band and decile (the fitted rate ratios on conditions are left out: they
    change the step, not where it stops)."""
    d, p, w, gap = pooled(sums["health"], axes)
    gf, gb, fb = (_widen(_cell_rate(values[("health", t)], gradients[("health", t)])) for t in HEALTH)
    fg, bg, bf = (_widen(recovery[t]) for t in RECOVERIES)
    not_good = np.maximum(p[..., 1] + p[..., 2], 1e-9)
    recover = (p[..., 1] * fg + p[..., 2] * bg) / not_good
    e_good = rate_error(d[..., 0], gap[..., 0], gf + gb, recover)
    e_bad = rate_error(d[..., 2], gap[..., 2], bg, bf)
    return e_good, e_bad, p, w, (gf, gb, fb), gf + gb + recover, gap[..., 0]


def _good_correction(e_good: np.ndarray, leaving: np.ndarray) -> np.ndarray:
    """The factor on the moves from good (good_to_fair, good_to_bad): good loses
    ``leaving`` = p_good (gf + gb) of its share a year, so a factor m on both moves it by
    -leaving (m - 1)."""
    return np.clip(1 + DAMPING * e_good / np.maximum(leaving, 1e-6), 0.5, 2.0)


def _health_by_condition(errors: tuple[np.ndarray, ...], factors: dict[tuple[str, str], dict[str, float]],
                         levels: dict[str, tuple[str, ...]], values: dict, gradients: dict,
                         recovery: dict[str, np.ndarray]) -> tuple[float, str]:
    """Move each condition's rate ratios on self-rated health by one factor: up on moves to
    worse health, down on moves to better, by how much more (log scale) the condition's cells
    ask of the moves from good than the others' (pooled first, as in ``_by_group``); so that
    people with the condition keep the
    initial odds ratio of worse health (each level judged by its gap, as in ``_group_error``).
    ``errors``: ``health_errors`` by cell. The largest rate error of the good share (a year)
    among people with a fitted condition, before the move, and where."""
    _, _, p, w, (gf, gb, _), k, gap = errors
    worst, where = 0.0, ""
    for (chain, state), by_transition in factors.items():
        mean_error = _by_level((k + _turnover(chain, values, gradients, recovery)) * gap, w, chain)
        leaving = _by_level(p[..., 0] * (gf + gb), w, chain)  # the good share's moves out a year
        log_m = np.log(_good_correction(mean_error, leaving))
        i = levels[chain].index(state)
        if abs(float(mean_error[i])) > worst:
            worst, where = abs(float(mean_error[i])), f"health, {state}"
        step = np.exp(DAMPING * (log_m[i] - log_m[0]))  # damped again: the gap answers with a lag
        for t, v in by_transition.items():
            by_transition[t] = float(np.clip(v * step if t in HEALTH else v / step, 0.1, 10.0))
    return worst, where


def _squeeze(x: np.ndarray) -> np.ndarray:
    """A pooled array without its cell's group axes (length 1)."""
    return x.reshape(x.shape[:3] + x.shape[3 + len(GROUPS):])


def update(values: dict, gradients: dict, sums: dict[str, Sums], recovery: dict[str, np.ndarray],
           ratios: dict, health_factors: dict,
           levels: dict[str, tuple[str, ...]]) -> tuple[float, float, tuple[float, str]]:
    """Move every fitted value, gradient and rate ratio once; the largest rate error (share a
    year) before the move by sex and band, by DEP band and decile (both sexes), and by fitted
    group level (tenure, condition) with where it is."""
    errors = rate_errors(values, gradients, ratios, sums, recovery, levels)
    onsets = _by_group(errors, ratios, levels, values, gradients, recovery)
    by_cell = health_errors(sums, values, gradients, recovery, ())
    by_group = max(onsets, _health_by_condition(by_cell, health_factors, levels, values, gradients, recovery))
    worst = worst_decile = 0.0

    def note(d: np.ndarray, w: np.ndarray) -> None:
        nonlocal worst, worst_decile
        worst = max(worst, float(np.abs((w * d).sum(-1) / np.maximum(w.sum(-1), 1e-9)).max()))
        for b in (_dep_band == k for k in range(len(DEP_BANDS))):
            ww = w[:, b]
            dd = (ww * d[:, b]).sum((0, 1)) / np.maximum(ww.sum((0, 1)), 1e-9)
            worst_decile = max(worst_decile, float(np.abs(dd).max()))

    for key, views in errors.items():
        v = views["all"]
        error, p, people = _squeeze(v.error), _squeeze(v.p), _squeeze(v.w)
        note(error, people)
        m = _correction(error, p, _cell_rate(values[key], gradients[key]))
        _apply(values, gradients, key, m, people, np.inf)
    e_good, e_bad, p, w, *_ = (_squeeze(x) if isinstance(x, np.ndarray) else x
                               for x in health_errors(sums, values, gradients, recovery, GROUP_AXES))
    note(e_good, w)
    note(e_bad, w)
    rates = tuple(_cell_rate(values[("health", t)], gradients[("health", t)]) for t in HEALTH)
    gf, gb, fb = rates
    m_good = _good_correction(e_good, p[..., 0] * (gf + gb))
    # bad gains p_good gb + p_fair fb a year; take off what the move of gb already does
    rest = e_bad + p[..., 0] * gb * (m_good - 1)
    m_bad = np.clip(1 - DAMPING * rest / np.maximum(p[..., 1] * fb, 1e-6), 0.5, 2.0)
    for t in ("good_to_fair", "good_to_bad"):
        _apply(values, gradients, ("health", t), m_good, w, 0.9)
    _apply(values, gradients, ("health", "fair_to_bad"), m_bad, w, 0.9)
    return worst, worst_decile, by_group


def _ratio_entry(group: str, level: str, ratio: float, reference: str) -> str:
    whom = ("people of this tenure keep their own cross-section (the initial odds ratio by tenure)"
            if group == "tenure" else
            f"people in this state of {group} keep their own cross-section (the initial odds ratio on it)")
    return (f'rr.{group}.{level} = {{ value = {ratio:.4g}, unit = "rate ratio", status = "D", '
            f'source = "Fitted by calibration/stationary.py with the rates above, so that {whom} as they '
            f'age; relative to {reference.replace("_", " ")}." }}')


def _health_entry(chain: str, state: str, ratio: float) -> str:
    return (f'rr.{chain}.{state} = {{ value = {ratio:.4g}, unit = "rate ratio", status = "D", source = '
            '"Fitted by calibration/stationary.py with the rates above, so that people with this condition '
            'keep the initial odds ratio of worse health '
            f'(chains.health.initial.odds_ratio.{chain}.{state}) as they age: one factor on the '
            'condition\'s rate ratios, multiplying those on moves to worse health and '
            'dividing those on moves to better. That split is an assumption (a cross-section fixes the odds, '
            'not how much comes from falling ill and how much from not recovering); the ratios among the '
            'moves to worse health are kept as they were." }')


def _section(text: str, chain: str, transition: str) -> tuple[int, int]:
    start = text.index(f"[chains.{chain}.transitions.{transition}]")
    return start, text.find("\n[", start + 1)


def write(values: dict, gradients: dict, model_file: Path = MODEL_FILE, ratios: dict | None = None,
          health_factors: dict | None = None, levels: dict[str, tuple[str, ...]] | None = None) -> None:
    """Put the fitted values into the model file (each rule's value and breaks, its
    deprivation rate ratio by ``DEP_BANDS``, its fitted rate ratios by tenure and condition,
    and self-rated health's rate ratios on conditions)."""
    text = model_file.read_text()
    for (chain, transition), v in values.items():
        start, end = _section(text, chain, transition)
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
        for (group, level), ratio in (ratios or {}).get((chain, transition), {}).items():
            reference = REFERENCE_TENURE if group == "tenure" else (levels or {})[group][0]
            entry = _ratio_entry(group, level, ratio, reference)
            old = re.search(rf"^rr\.{group}\.{level} = \{{.*\}}$", section, flags=re.M)
            section = (section.replace(old.group(0), entry) if old else
                       section.replace(gradient, gradient + "\n" + entry))
        text = text[:start] + section + text[end:]
    for (chain, state), by_transition in (health_factors or {}).items():
        for transition, ratio in by_transition.items():
            start, end = _section(text, "health", transition)
            section = text[start:end]
            old = re.search(rf"^rr\.{chain}\.{state} = \{{.*\}}$", section, flags=re.M)
            section = section.replace(old.group(0), _health_entry(chain, state, ratio))
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
    ratios, health_factors = start_ratios(tree, world_tree()), start_health_factors(tree)
    levels = {g: _levels(tree, g) for g in GROUPS}
    recovery = recovery_rates(tree)
    for k in range(args.rounds):
        t0 = time.perf_counter()
        excess = monthly_sums(with_values(tree, values, gradients, ratios, health_factors), args.tenants,
                               args.seed, args.years)
        worst, by_decile, (by_group, where) = update(values, gradients, excess, recovery, ratios,
                                                     health_factors, levels)
        print(f"round {k}: largest rate error {worst * 100:.3f} points a year by sex and band, "
              f"{by_decile * 100:.3f} by decile, {by_group * 100:.3f} by tenure or condition ({where}) "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if max(worst, by_group) < TOLERANCE:
            break
    for key, v in values.items():
        print(key, np.round(v, 4).tolist(), "deprivation", np.round(gradients[key], 4).tolist(),
              "rate ratios", ratios.get(key, {}))
    for (chain, state), by_transition in health_factors.items():
        print("health", f"{chain}.{state}", {t: round(v, 4) for t, v in by_transition.items()})
    if args.write:
        write(values, gradients, args.model, ratios, health_factors, levels)


if __name__ == "__main__":
    main()
