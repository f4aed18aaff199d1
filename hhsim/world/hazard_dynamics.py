"""Hazards that come and go: onset, reporting and routine repair of dwelling hazards (monthly).

Each hazard (``HAZARDS``) of each dwelling is a three-state Markov chain in continuous time:
``none`` -> ``unreported`` (onset, rate ``lambda`` per month) -> ``reported`` (rate 1 /
``report_months``) -> ``none`` (removal by the landlord's routine repair, or the owner's own
works: rate 1 / ``response_months``). The onset rate of dwelling ``i`` is a base rate for its
tenure times the rate ratios of its attributes (type, build period, energy band, heating,
fuel poverty, overcrowding: ``world.hazard_dynamics.<hazard>.onset_rate_ratio``). The stationary chance
that a dwelling has the hazard is ``lambda_i D / (1 + lambda_i D)`` with ``D = report_months +
response_months`` (the mean months from onset to removal), whatever the shape of the delays.

The base rate is not a parameter. At set-up it is solved, per tenure, so that the mean of
the stationary chances over the simulated dwellings of the tenure equals the prevalence
``world.hazards.<hazard>.<tenure>`` (English Housing Survey, BRE), with the response times as
observed (no duty); where a stock file gives the hazard for some of a tenure's dwellings, so
that the mean over those equals the file's prevalence among them (``_target``). Each
dwelling's starting state is then drawn from its stationary chances (stream
``world:hazards:start``, block = the hazard's position in ``HAZARDS``; the hazards a stock
file gives are kept), so a run starts stationary.

The policy lever: ``duty_days > 0`` caps the mean response at that many days (a legal duty to
fix within a time, as Awaab's Law imposes on social landlords for damp and mould). The onset
rates stay those solved without the duty, so the duty lowers prevalence to
``lambda_i D' / (1 + lambda_i D')`` with ``D' = report_months + min(response_months, duty)``.

Each step, one uniform per dwelling slot per hazard (stream ``world:hazards``, a block per
hazard) moves every chain by its exact transition matrix over the step (``expm(Q x months)``),
so every arm sees the same draws (common random numbers): a dwelling no intervention touches
has the same hazards in every arm. Hazards removed by others (the ``home_repairs``
intervention, a move of the housing pathway) are taken as removed; they may come back at the
onset rate. Dwellings whose hazards changed have their occupants' copies and static profiles
refreshed. Off (no draws) for a cohort population, whose dwellings have no hazards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hhsim.core.errors import HhsimError
from hhsim.world.population import DWELLING_ATTRIBUTES, HAZARD_BITS, HAZARDS, TENURES, Dwellings
from hhsim.world.stock import check_hazards_can_vary
from hhsim.world.synthetic import world_value

if TYPE_CHECKING:
    from hhsim.model.simulation import HousingHealthModel

STREAM = "world:hazards"
START_STREAM = "world:hazards:start"
DAYS_PER_MONTH = 365.25 / 12
#: Factors of the onset rate: the dwelling attributes and the household's fuel poverty.
FACTORS: dict[str, int] = {**{k: len(v) for k, v in DWELLING_ATTRIBUTES.items()}, "fuel_poor": 2,
                           "overcrowded": 2}
NONE, UNREPORTED, REPORTED = 0, 1, 2
#: (hazard, bit mask) 1 where the mask has the hazard's bit.
_HAS = np.array([[(mask >> j) & 1 for mask in range(1 << len(HAZARDS))] for j in range(len(HAZARDS))])


@dataclass(frozen=True)
class HazardSettings:
    """One hazard's dynamics; arrays by TENURES."""

    hazard: str
    rate_ratios: Mapping[str, np.ndarray]  # factor -> rate ratio per level
    report_months: np.ndarray  # mean months from onset to report
    response_months: np.ndarray  # mean months from report to removal, as observed
    duty_days: np.ndarray  # a duty's maximum mean response, days (0: no duty)
    prevalence: np.ndarray  # stationary share of dwellings with the hazard (the target)

    def response_under_duty(self) -> np.ndarray:
        """Mean months from report to removal, capped by any duty."""
        duty = self.duty_days / DAYS_PER_MONTH
        return np.where(self.duty_days > 0, np.minimum(self.response_months, duty), self.response_months)

    def onset_ratio(self, d: Dwellings) -> np.ndarray:
        """Each dwelling's onset rate ratio: the product over its attributes' levels."""
        rr = np.ones(d.n)
        for factor, table in self.rate_ratios.items():
            rr *= table[getattr(d, factor).astype(np.intp)]
        return rr


def parse_dynamics(world: Mapping[str, Any]) -> tuple[HazardSettings, ...]:
    """Every hazard's dynamics from the world parameters (one-line errors)."""
    out = []
    for h in HAZARDS:
        base = f"world.hazard_dynamics.{h}"
        ratios = {}
        for factor, levels in FACTORS.items():
            where = f"{base}.onset_rate_ratio.{factor}"
            rr = world_value(world, where, "rate ratio")
            if rr.shape != (levels,):
                raise HhsimError(where, f"needs {levels} rate ratios, one per level",
                                 "give one per level in the unit")
            ratios[factor] = rr
        by_tenure = {key: np.array([float(world_value(world, f"{base}.{key}.{t}", unit)) for t in TENURES])
                     for key, unit in (("report_months", "months"), ("response_months", "months"),
                                       ("duty_days", "days"))}
        for key in ("report_months", "response_months"):
            if (by_tenure[key] <= 0).any():
                t = TENURES[int(np.argmax(by_tenure[key] <= 0))]
                raise HhsimError(f"{base}.{key}.{t}", "must be above 0 months", "give a mean time, e.g. 3")
        prevalence = np.array([float(world_value(world, f"world.hazards.{h}.{t}", "share")) for t in TENURES])
        if (prevalence >= 1).any():
            t = TENURES[int(np.argmax(prevalence >= 1))]
            raise HhsimError(f"world.hazards.{h}.{t}", "must be below 1 for hazards that come and go",
                             "give a share below 1")
        out.append(HazardSettings(h, ratios, prevalence=prevalence, **by_tenure))
    return tuple(out)


def solve_base_rates(rr: np.ndarray, tenure: np.ndarray, months: np.ndarray,
                     prevalence: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """Base onset rate per month by tenure such that the mean over the dwellings of each tenure
    (those ``among``, if given) of ``b rr_i D / (1 + b rr_i D)`` (``D = months[tenure]``)
    equals ``prevalence[tenure]``.

    Tenures without dwellings, or with prevalence 0, get 0.
    """
    from scipy.optimize import brentq  # at set-up only

    base = np.zeros(len(TENURES))
    for t in range(len(TENURES)):
        x = rr[(tenure == t) & (True if among is None else among)] * months[t]
        if not x.size or prevalence[t] <= 0:
            continue

        def gap(b: float, x: np.ndarray = x, target: float = float(prevalence[t])) -> float:
            return float(np.mean(b * x / (1.0 + b * x))) - target

        hi = 2 * prevalence[t] / ((1.0 - prevalence[t]) * float(x.min()))  # every chance > the target
        base[t] = brentq(gap, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    return base


#: Transition matrices already computed in this process, by their generators' bytes: every
#: point of a sweep and every arm share the dwellings and hazard settings, so the same
#: generators recur run after run (scipy's expm of a few hundred 3 x 3 matrices is most of
#: the set-up time of a small run). Bit-identical to computing them again.
_TRANSITIONS: dict[bytes, np.ndarray] = {}
_TRANSITIONS_MAX = 32


def _transitions(q: np.ndarray) -> np.ndarray:
    """``expm(q)`` of a stack of generators, remembered per process (``_TRANSITIONS``)."""
    from scipy.linalg import expm  # at set-up only

    key = q.tobytes() + str(q.shape).encode()
    if key not in _TRANSITIONS:
        if len(_TRANSITIONS) >= _TRANSITIONS_MAX:
            _TRANSITIONS.pop(next(iter(_TRANSITIONS)))
        _TRANSITIONS[key] = expm(q)
    return _TRANSITIONS[key].copy()


def _generators(lam: np.ndarray, report: np.ndarray, response: np.ndarray) -> np.ndarray:
    """(k, 3, 3) generators (per month) of the none -> unreported -> reported -> none chain."""
    q = np.zeros((lam.size, 3, 3))
    q[:, NONE, NONE], q[:, NONE, UNREPORTED] = -lam, lam
    q[:, UNREPORTED, UNREPORTED], q[:, UNREPORTED, REPORTED] = -1 / report, 1 / report
    q[:, REPORTED, REPORTED], q[:, REPORTED, NONE] = -1 / response, 1 / response
    return q


class HazardDynamics:
    """The monthly rule (module docstring) for the dwellings of ``model.pop``.

    ``given``: bit mask per dwelling of hazards a stock file gave (kept at the start).
    """

    def __init__(self, model: HousingHealthModel, world: Mapping[str, Any], active: bool = True,
                 given: np.ndarray | None = None) -> None:
        self.model = model
        self.active = active
        pop = model.pop
        d = pop.dwellings
        self.settings = parse_dynamics(world)
        if given is not None and active:
            check_hazards_can_vary(pop, given)
        # Each dwelling stands for the mean weight of its occupants at the start.
        people = np.bincount(pop.dwelling, minlength=d.n)
        total = np.bincount(pop.dwelling, weights=pop.weight.astype(np.float64), minlength=d.n)
        self.weight = np.divide(total, people, out=np.zeros(d.n), where=people > 0)
        self.unweighted = bool(np.all(self.weight == 1.0))  # counts need no weights
        self.months = float(model.health.cycle_months)
        self.counts = {f"{kind}_{h}": 0.0 for h in HAZARDS for kind in ("onsets", "repairs")}
        self.month_counts = dict.fromkeys(self.counts, 0.0)
        self._table: np.ndarray | None = None
        if not active:
            return
        n_t = len(TENURES)
        self.base: dict[str, np.ndarray] = {}  # base onset rate per month by tenure
        self.combo: dict[str, np.ndarray] = {}  # int16: each dwelling's row among distinct rate ratios
        self.n_combos: dict[str, int] = {}
        self.cum: dict[str, np.ndarray] = {}  # (tenure x combo, state, 2) cumulative transition probabilities
        self.target: dict[str, np.ndarray] = {}  # stationary prevalence solved for, by tenure
        self.stay: dict[str, np.ndarray] = {}  # float32 per dwelling: chance a hazard-free one stays so
        self.reported: dict[str, np.ndarray] = {}
        for j, s in enumerate(self.settings):
            h, bit = s.hazard, np.uint8(HAZARD_BITS[s.hazard])
            rr = s.onset_ratio(d)
            observed = s.report_months + s.response_months
            self.target[h], among = self._target(s, given)
            base = solve_base_rates(rr, d.tenure, observed, self.target[h], among)
            self.base[h] = base
            levels, combo = np.unique(rr, return_inverse=True)
            self.combo[h], self.n_combos[h] = combo.astype(np.int16), levels.size
            lam = (base[:, None] * levels[None, :]).ravel()
            rows = np.repeat(np.arange(n_t), levels.size)
            q = _generators(lam, s.report_months[rows], s.response_under_duty()[rows]) * self.months
            p = _transitions(q)
            self.cum[h] = np.cumsum(p, axis=2)[:, :, :2]
            # Starting states from the stationary chances of the chain as observed.
            lam_i = base[d.tenure] * rr
            z = 1.0 + lam_i * observed[d.tenure]
            p_none, p_unrep = 1.0 / z, lam_i * s.report_months[d.tenure] / z
            has = (d.hazards & bit) != 0
            u = model.streams.generator(START_STREAM, j).random(d.n)
            if given is not None and given.any():  # a given hazard: reported or not as the chances say
                kept = (given & bit) != 0
                u = np.where(kept, np.where(has, p_none + u * (1 - p_none), u * p_none), u)
            state = (u >= p_none).astype(np.int8) + (u >= p_none + p_unrep)
            d.hazards[:] = np.where(state > NONE, d.hazards | bit, d.hazards & ~bit)
            self.reported[h] = state == REPORTED
        self._tenure = d.tenure.copy()
        self._set_stay()
        pop.refresh_from_dwellings()

    def _target(self, s: HazardSettings, given: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Prevalence by tenure to solve the onset rates for, and the dwellings to average over
        (None: all). The survey's, over all the tenure's dwellings; but where a stock file gives
        the hazard for some of a tenure's dwellings, the file's prevalence among those, over
        those: a provider's stock keeps its own level, and blank cells follow from it."""
        if given is None or not given.any():
            return s.prevalence, None
        d, bit = self.model.pop.dwellings, np.uint8(HAZARD_BITS[s.hazard])
        known, has = (given & bit) != 0, (d.hazards & bit) != 0
        target, among = s.prevalence.copy(), np.ones(d.n, dtype=bool)
        for t in np.unique(d.tenure[known]):
            mine = d.tenure == t
            target[t] = has[mine & known].mean()  # below 1: check_hazards_can_vary
            among[mine] = known[mine]
        return target, among

    def _rows(self, hazard: str, idx: np.ndarray | None = None) -> np.ndarray:
        """Rows of ``cum[hazard]`` of dwellings ``idx`` (all): by tenure and rate ratio."""
        d = self.model.pop.dwellings
        if idx is None:
            return d.tenure.astype(np.intp) * self.n_combos[hazard] + self.combo[hazard]
        return d.tenure[idx].astype(np.intp) * self.n_combos[hazard] + self.combo[hazard][idx]

    def _set_stay(self) -> None:
        for h in HAZARDS:
            self.stay[h] = self.cum[h][self._rows(h), NONE, 0].astype(np.float32)

    # -- the month ---------------------------------------------------------------------------
    def step(self, t: int) -> None:
        """This step's onsets, reports and repairs (nothing, and no draw, when off)."""
        if not self.active:
            return
        pop = self.model.pop
        d = pop.dwellings
        if not np.array_equal(d.tenure, self._tenure):  # the housing pathway moved someone
            self._tenure = d.tenure.copy()
            self._set_stay()
        u = self.model.streams.generator(STREAM, t).random((len(HAZARDS), d.n), dtype=np.float32)
        changed = []
        with_any = np.flatnonzero(d.hazards)  # dwellings with some hazard (few)
        for j, h in enumerate(HAZARDS):
            bit = np.uint8(HAZARD_BITS[h])
            present = with_any[(d.hazards[with_any] & bit) != 0]
            # A hazard-free dwelling (most) stays so unless u passes its threshold.
            leaving = np.flatnonzero(u[j] >= self.stay[h])
            leaving = leaving[(d.hazards[leaving] & bit) == 0]
            # ``reported`` is read only where the hazard is present, and written wherever the
            # chain moved: a flag left by a hazard removed by others is never read.
            reported = self.reported[h]
            idx = np.concatenate([leaving, present])
            state = np.concatenate([np.zeros(leaving.size, dtype=np.intp), 1 + reported[present]])
            cum = self.cum[h][self._rows(h, idx), state]
            new = (u[j][idx] >= cum[:, 0]).astype(np.int8) + (u[j][idx] >= cum[:, 1])
            reported[idx] = new == REPORTED
            onset = leaving[new[:leaving.size] > NONE]
            repaired = present[new[leaving.size:] == NONE]
            d.hazards[onset] |= bit
            d.hazards[repaired] &= ~bit
            changed += [onset, repaired]
            for kind, which in (("onsets", onset), ("repairs", repaired)):
                self.month_counts[f"{kind}_{h}"] = float(self.weight[which].sum())
                self.counts[f"{kind}_{h}"] += self.month_counts[f"{kind}_{h}"]
        flag = np.zeros(d.n, dtype=bool)
        flag[np.concatenate(changed)] = True
        occupants = np.flatnonzero(flag[pop.dwelling])
        if occupants.size:
            pop.refresh_from_dwellings(occupants)
            self.model.health.profiles.refresh(pop, static=occupants, everyone=False)
        self._table = None

    # -- what it reports -----------------------------------------------------------------------
    def _prevalence_table(self) -> np.ndarray:
        """(len(HAZARDS), len(TENURES)) shares of dwellings with each hazard now (NaN for a
        tenure without dwellings), each dwelling counted with its occupants' mean weight at
        the start; one pass over the dwellings, kept until the next step."""
        if self._table is None:
            d = self.model.pop.dwellings
            n_t, combos = len(TENURES), 1 << len(HAZARDS)
            key = d.tenure.astype(np.intp) * combos + d.hazards
            w = np.bincount(key, weights=None if self.unweighted else self.weight,
                            minlength=n_t * combos).reshape(n_t, combos)
            with np.errstate(invalid="ignore", divide="ignore"):
                self._table = (_HAS @ w.T) / w.sum(axis=1)
        return self._table

    def prevalence(self, hazard: str) -> np.ndarray:
        """Share of dwellings of each tenure (by TENURES; NaN without dwellings) with ``hazard``
        now, each dwelling counted with its occupants' mean weight at the start."""
        return self._prevalence_table()[HAZARDS.index(hazard)]

    def onset_rates(self, hazard: str) -> np.ndarray:
        """Each dwelling's onset rate per month (its tenure's base rate times its rate ratio)."""
        s = next(x for x in self.settings if x.hazard == hazard)
        d = self.model.pop.dwellings
        return self.base[hazard][d.tenure] * s.onset_ratio(d)

    def stationary_prevalence(self, hazard: str, duty: bool = True) -> np.ndarray:
        """Mean stationary chance of ``hazard`` by tenure over the dwellings (weighted as in
        ``prevalence``), with response times under any duty (or as observed)."""
        s = next(x for x in self.settings if x.hazard == hazard)
        d = self.model.pop.dwellings
        months = s.report_months + (s.response_under_duty() if duty else s.response_months)
        x = self.onset_rates(hazard) * months[d.tenure]
        chance = x / (1.0 + x)
        total = np.bincount(d.tenure, weights=self.weight, minlength=len(TENURES))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(d.tenure, weights=self.weight * chance, minlength=len(TENURES)) / total

    def _tenures(self) -> list[int]:
        """Tenures with dwellings that may have hazards (settled tenures present)."""
        d = self.model.pop.dwellings
        present = np.bincount(d.tenure, minlength=len(TENURES)) > 0
        return [t for t in range(len(TENURES)) if present[t]
                and any(s.prevalence[t] > 0 for s in self.settings)]

    def reporters(self) -> dict[str, Callable[[Any], float]]:
        """Monthly table columns: ``hazard:<hazard>:<tenure>`` (prevalence, share of dwellings)
        and ``hazard_onsets:<hazard>`` / ``hazard_repairs:<hazard>`` (dwellings this step;
        repairs: routine repairs, not an intervention's works). None when off."""
        if not self.active:
            return {}
        out: dict[str, Callable[[Any], float]] = {}
        for h in HAZARDS:
            for t in self._tenures():
                out[f"hazard:{h}:{TENURES[t]}"] = lambda m, h=h, t=t: float(self.prevalence(h)[t])
            for kind in ("onsets", "repairs"):
                out[f"hazard_{kind}:{h}"] = lambda m, key=f"{kind}_{h}": self.month_counts[key]
        return out

    def record(self) -> dict[str, float]:
        """Run record columns: ``hazard_onsets_<hazard>`` and ``hazard_repairs_<hazard>``
        (dwellings over the run), ``hazard_prevalence_<hazard>_<tenure>`` at the end."""
        if not self.active:
            return {}
        out = {f"hazard_{k}": v for k, v in self.counts.items()}
        for h in HAZARDS:
            prev = self.prevalence(h)
            out |= {f"hazard_prevalence_{h}_{TENURES[t]}": float(prev[t]) for t in self._tenures()}
        return out
