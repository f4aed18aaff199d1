"""Rates: a base hazard by sex and age, times rate-ratio terms.

A base rate in a model file is one number, a list by age band (with ``breaks``), or two
lists (male, female) by age band. Its unit says its period: ``per person-year``,
``per person-month`` or ``per person-day``; probabilities (``probability per year`` ...)
are turned into hazards where the exits of a state are known (see ``health.chains``).

National-average rates already contain the average effect of every covariate in their
terms (hazard exposure, deprivation, health states). ``reference = true`` de-averages such
a rate: within each standard age-sex stratum its base is divided by the mean product of
its terms over the reference population (England), so that population reproduces the
source rate and groups with more exposure get more. Without this the total drifts above
the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import leaf_parameter, missing_parameter
from hhsim.health.calendar import MONTH_WEIGHTS, set_month
from hhsim.health.profiles import ProfileSpace
from hhsim.health.terms import MAX_AGE, Term, TermContext, parse_terms, product
from hhsim.world.bands import band_lookup
from hhsim.world.population import Population

if TYPE_CHECKING:
    from hhsim.health.ages import Ages

DAYS_PER_YEAR = 365.25
#: Lower bounds of the age bands within which rates are de-averaged.
STRATA_BREAKS = [0, 1, 5, 10, 16, 25, 35, 45, 55, 65, 75, 85]
STRATUM_OF_AGE = band_lookup(STRATA_BREAKS, MAX_AGE, "strata")
N_STRATA = len(STRATA_BREAKS)

PERIODS = {"year": 1.0, "month": 1.0 / 12.0, "day": 1.0 / DAYS_PER_YEAR}


def period_years(unit: str, where: str, cycle_years: float | None = None) -> float:
    """Length in years of the period a rate or probability unit refers to."""
    tail = unit.rsplit("per ", 1)[-1].strip().removeprefix("person-").strip()
    if tail in PERIODS:
        return PERIODS[tail]
    if tail == "cycle" and cycle_years is not None:
        return cycle_years
    raise HhsimError(where, f"unit '{unit}' has no period",
                     "use a unit like 'per person-year' or 'probability per month'")


def age_sex_table(value: Any, leaf: dict, where: str) -> np.ndarray:
    """Expand a number, a list by age band or [male, female] lists to a (2, ages) table.

    Bands are given by ``breaks`` (lower bounds), or by ``first_age`` for a table by single
    year of age (the last value holds for all older ages).
    """
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return np.full((2, MAX_AGE + 1), float(arr))
    if "first_age" in leaf:
        first = int(leaf["first_age"])
        leaf = {**leaf, "breaks": list(range(first, first + arr.shape[-1]))}
    if "breaks" not in leaf:
        raise HhsimError(where, "a table of values needs breaks (lower bounds of age bands)",
                         "add breaks = [16, 25, ...]")
    lut = band_lookup(leaf["breaks"], MAX_AGE, where)
    nb = len(leaf["breaks"])
    if arr.shape == (nb,):
        return np.vstack([arr[lut], arr[lut]])
    if arr.shape == (2, nb):
        return arr[:, lut]
    raise HhsimError(where, f"has shape {arr.shape}; expected ({nb},) or (2, {nb})",
                     "give one value per age band, or [male, female] lists")


def base_leaf(node: dict, where: str) -> tuple[np.ndarray, str, dict]:
    """The (2, ages) table of a rate or probability leaf, its unit, and the leaf."""
    p = leaf_parameter(node, where)
    return age_sex_table(p.value, node, where), p.unit, node


@dataclass
class Rate:
    """A per-tenant quantity base(sex, age) x terms: a hazard per person-year, or a utility.

    After ``tabulate`` the rate is also held as tables over the profile spaces
    (``hhsim.health.profiles``) and evaluated by two gathers for populations that carry
    profile indices; the result equals the plain evaluation up to float32 rounding.
    """

    name: str
    base: np.ndarray  # float64 (2, MAX_AGE + 1), per person-year
    terms: list[Term] = field(default_factory=list)
    reference: bool = False
    static_table: np.ndarray | None = field(default=None, repr=False)
    source: np.ndarray | None = field(default=None, repr=False)  # the base before de-averaging
    state_table: np.ndarray | None = field(default=None, repr=False)
    ages: Ages | None = None  # the ages it applies to (None: every age; hhsim.health.ages)
    parent: str | None = None  # a rate whose intervention effects also act on this one (a cause's type)

    def evaluate(self, pop: Population, idx: np.ndarray | None = None) -> np.ndarray:
        """The quantity for tenants ``idx`` (all slots when None); float32."""
        if self.static_table is not None and pop.static_profile is not None:
            sp = pop.static_profile if idx is None else np.take(pop.static_profile, idx)
            tp = pop.state_profile if idx is None else np.take(pop.state_profile, idx)
            out = np.take(self.static_table, sp) * np.take(self.state_table, tp)
            for term in self.terms:
                if term.kind == "dynamic":
                    out *= term.factor(pop, idx)
            return out
        female = pop.female if idx is None else pop.female[idx]
        age = pop.age_years if idx is None else pop.age_years[idx]
        flat = female.view(np.int8).astype(np.intp) * (MAX_AGE + 1) + np.minimum(age, MAX_AGE)
        return self.base.ravel()[flat].astype(np.float32) * product(self.terms, pop, idx)

    def tabulate(self, space: ProfileSpace) -> None:
        """Precompute the rate over the profile spaces (after any de-averaging)."""
        self.static_table = space.static_table(self.base, self.terms)
        self.state_table = space.state_table(self.terms)

    def deaverage(self, ref: Population) -> None:
        """Divide the base by the mean product of terms per age-sex stratum of ``ref``.

        A rate with terms by calendar month is averaged over the 12 months, so that the
        reference population keeps the source's annual rate."""
        self.source = self.base.copy()
        if not (self.reference and self.terms):
            return
        alive = np.flatnonzero(ref.alive)
        calendar = [t for t in self.terms if t.calendar]
        prod = product([t for t in self.terms if not t.calendar], ref, alive).astype(np.float64)
        if calendar:  # the terms by month, averaged over the year
            by_month = np.zeros(alive.size)
            for month, w in enumerate(MONTH_WEIGHTS):
                set_month(ref, month)
                by_month += w * product(calendar, ref, alive)
            set_month(ref, None)
            prod *= by_month
        cell = (ref.female[alive].view(np.int8).astype(np.intp) * N_STRATA
                + STRATUM_OF_AGE[np.minimum(ref.age_years[alive], MAX_AGE)])
        total = np.bincount(cell, weights=prod, minlength=2 * N_STRATA)
        count = np.bincount(cell, minlength=2 * N_STRATA)
        mean = np.divide(total, count, out=np.ones_like(total), where=count > 0)
        self.base = self.base / mean.reshape(2, N_STRATA)[:, STRATUM_OF_AGE]


def parse_rate(node: dict, where: str, ctx: TermContext, key: str = "rate") -> Rate:
    """A rate from a section holding ``rate`` (per person-period), ``rr`` and ``reference``."""
    if key not in node:
        raise missing_parameter(where, key, "per person-year")
    table, unit, _ = base_leaf(node[key], f"{where}.{key}")
    if unit.lower().startswith("probability"):
        raise HhsimError(f"{where}.{key}", "is a probability where a rate is needed",
                         "give a rate (unit 'per person-year')")
    table = table / period_years(unit, f"{where}.{key}")
    reference = node.get("reference", False)
    if not isinstance(reference, bool):
        raise HhsimError(f"{where}.reference", "must be true or false", "write reference = true")
    return Rate(where, table, parse_terms(node.get("rr"), f"{where}.rr", ctx), reference)


@dataclass
class Probability:
    """A per-tenant probability: base(sex, age) with odds-ratio terms on the logit scale."""

    name: str
    base: np.ndarray  # (2, MAX_AGE + 1) probabilities for the reference covariate values
    terms: list[Term] = field(default_factory=list)

    def evaluate(self, pop: Population, idx: np.ndarray) -> np.ndarray:
        female = pop.female[idx].view(np.int8).astype(np.intp)
        p0 = self.base.ravel()[female * (MAX_AGE + 1) + np.minimum(pop.age_years[idx], MAX_AGE)]
        if not self.terms:
            return p0
        odds = p0 / np.maximum(1.0 - p0, 1e-12) * product(self.terms, pop, idx)
        return odds / (1.0 + odds)


def parse_probability(node: dict, where: str, key: str, ctx: TermContext,
                      odds_key: str = "odds_ratio") -> Probability:
    """A probability from ``<key>`` (unit 'probability ...') and its ``<odds_key>`` terms."""
    if key not in node:
        raise missing_parameter(where, key, "probability")
    table, unit, _ = base_leaf(node[key], f"{where}.{key}")
    if not unit.lower().startswith("probability"):
        raise HhsimError(f"{where}.{key}", f"has unit '{unit}'", "use unit = \"probability\"")
    return Probability(f"{where}.{key}", table,
                       parse_terms(node.get(odds_key), f"{where}.{odds_key}", ctx))


def row_sums(h: np.ndarray) -> np.ndarray:
    """Sum of each row of a narrow 2-D array, column by column.

    Much faster than ``h.sum(axis=1)`` for a few columns, and single-threaded (a BLAS
    mat-vec would start threads that oversubscribe the cores in a batch of workers).
    """
    out = h[:, 0].copy()
    for k in range(1, h.shape[1]):
        out += h[:, k]
    return out


class RateStack:
    """Rates evaluated together for the same tenants: an (n, K) array of quantities.

    With tabulated rates and a population that carries profile indices, each profile is
    gathered once for all K rates; otherwise the rates are evaluated one by one.
    """

    def __init__(self, rates: list[Rate]) -> None:
        self.rates = rates
        self.static_table: np.ndarray | None = None
        self.state_table: np.ndarray | None = None
        self.dynamic = [(k, t) for k, r in enumerate(rates) for t in r.terms if t.kind == "dynamic"]

    def tabulate(self) -> None:
        """Stack the rates' profile tables (call after every rate is tabulated)."""
        if not self.rates:
            return
        self.static_table = np.ascontiguousarray(np.stack([r.static_table for r in self.rates], 1))
        self.state_table = np.ascontiguousarray(np.stack([r.state_table for r in self.rates], 1))

    def evaluate(self, pop: Population, idx: np.ndarray | None) -> np.ndarray:
        """(n, K) float32 array: rate k for tenant idx[i] (slot i when None) in column k."""
        if self.static_table is not None and pop.static_profile is not None:
            sp = pop.static_profile if idx is None else np.take(pop.static_profile, idx)
            tp = pop.state_profile if idx is None else np.take(pop.state_profile, idx)
            # np.take is several times faster than fancy indexing for row gathers; the state
            # factors are applied column by column to keep one (n, K) temporary, not two.
            out = np.take(self.static_table, sp, axis=0)
            for k in range(out.shape[1]):
                out[:, k] *= np.take(self.state_table[:, k], tp)
            for k, term in self.dynamic:
                out[:, k] *= term.factor(pop, idx)
            return out
        return np.column_stack([r.evaluate(pop, idx) for r in self.rates]).astype(np.float32)
