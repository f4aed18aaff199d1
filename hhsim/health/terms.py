"""Multiplicative terms (rate ratios, odds ratios) on tenant covariates.

A model file gives a term table such as ``rr`` under a rate:

    rr.age = { value = 1.04, unit = "rate ratio per year of age", centre = 50, source = "..." }
    rr.female = { value = 0.9, unit = "rate ratio", source = "..." }
    rr.deprivation = { value = 1.06, unit = "rate ratio per decile more deprived", ... }
    rr.deprivation = { value = [[..10 men..], [..10 women..]], unit = "rate ratio", ... }  # by decile
    rr.excess_cold = { value = 1.3, unit = "rate ratio", ... }      # also damp, falls
    rr.wellbeing = { value = 0.97, unit = "rate ratio per point", centre = 24, ... }
    rr.time_in_state = { value = [2.0, 1.0], breaks = [0, 6], unit = "rate ratio", ... }
    rr.model_year = { value = [0.5, 1.0], breaks = [0, 2], unit = "rate ratio", ... }  # years since start
    rr.calendar_month = { value = [..12 values, January first..], unit = "rate ratio", ... }
    rr.calendar_month.excess_cold = { value = [..12..], unit = "rate ratio", ... }  # cold homes only
    rr.tenure.social_rented = { value = 1.1, unit = "rate ratio", ... }
    rr.<chain>.<state> = { value = 1.8, unit = "rate ratio", ... }   # another chain's state
    rr.<clock> = { value = [1.5, 1.0], breaks = [0, 12], unit = "rate ratio", ... }  # [clocks]
    rr.<attribute> = { value = 1.0, unit = "power", ... }   # an attribute to this power

Every term becomes a lookup: an integer code per tenant (age in years, decile, state, ...)
indexes a small table of ratios, so evaluating a term on a subset is one gather.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import MAX_RATIO, is_leaf, leaf_parameter
from hhsim.health.calendar import MONTHS, annual_mean, month_of
from hhsim.world.bands import band_lookup
from hhsim.world.population import DECILES, HAZARD_BITS, HAZARDS, TENURES, Population

MAX_AGE = 120  # years; ages above are treated as 120
MAX_MONTHS_IN_STATE = 1200

Codes = Callable[[Population, np.ndarray | None], np.ndarray]


def _take(arr: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    return arr if idx is None else np.take(arr, idx)


@dataclass(frozen=True)
class Term:
    """A ratio looked up from a table by an integer code per tenant.

    ``kind`` says what the code reads: "static" (sex, age, deprivation, tenure, hazards:
    slow to change), "state" (chain states) or "dynamic" (wellbeing, time in state).
    """

    name: str  # dotted parameter name, for messages and docs
    codes: Codes
    table: np.ndarray  # float32 ratios indexed by code
    kind: str = "static"
    direct: Callable[[Population, np.ndarray | None], np.ndarray] | None = None
    clock: str | None = None  # the clock the term reads (hhsim.health.clocks), if any
    calendar: bool = False  # reads the calendar month (hhsim.health.calendar)

    def factor(self, pop: Population, idx: np.ndarray | None = None) -> np.ndarray:
        """Ratio for each tenant in ``idx`` (all slots when None); a dynamic term that is the
        same for everyone (a calendar month's) may give one float32 number instead."""
        if self.direct is not None:
            return self.direct(pop, idx)
        return np.take(self.table, self.codes(pop, idx))


@dataclass(frozen=True)
class TermContext:
    """What terms may refer to (the model's chains and their states), and how they combine.

    Multiplicative terms (ratios) are 1 where a covariate is absent; additive terms (points
    on a score) are 0 there, and per-unit effects add rather than compound.
    """

    chains: Mapping[str, tuple[str, ...]]
    own_chain: str | None = None  # chain whose time in state ``time_in_state`` refers to
    additive: bool = False
    attributes: tuple[str, ...] = ()  # the model's attributes (hhsim.health.attributes)
    #: The model's named clocks that terms here may read, by name (``hhsim.health.clocks``:
    #: each has ``term(name, node, ctx)``); empty where clocks are not allowed.
    clocks: Mapping[str, Any] = field(default_factory=dict)
    #: Whether terms here may read the calendar month: not where values are drawn once or
    #: valued at step boundaries (initial shares, utility, state costs).
    calendar: bool = True

    @property
    def neutral(self) -> float:
        return 0.0 if self.additive else 1.0

    def per_unit(self, value: float, steps: np.ndarray) -> np.ndarray:
        """Effect of ``steps`` units of a covariate at ``value`` per unit."""
        return value * steps if self.additive else value ** steps


def age_codes(pop: Population, idx: np.ndarray | None) -> np.ndarray:
    return np.minimum(_take(pop.age_years, idx), MAX_AGE)


def _leaf(node: Any, where: str) -> tuple[np.ndarray, dict]:
    p = leaf_parameter(node, where)
    return np.asarray(p.value, dtype=float), node


def _scalar(value: np.ndarray, where: str) -> float:
    if value.ndim != 0:
        raise HhsimError(where, "must be a single number", "give one number")
    return float(value)


def _age_term(name: str, node: dict, ctx: TermContext) -> Term:
    value, leaf = _leaf(node, name)
    if "breaks" in leaf:
        lut = band_lookup(leaf["breaks"], MAX_AGE, name)
        if value.shape != (len(leaf["breaks"]),):
            raise HhsimError(name, f"needs one value per age band ({len(leaf['breaks'])})",
                             "give as many values as breaks")
        table = value[lut]
    else:
        ratio = _scalar(value, name)
        centre = float(leaf.get("centre", 0.0))
        table = ctx.per_unit(ratio, np.arange(MAX_AGE + 1) - centre)
    return Term(name, age_codes, table.astype(np.float32))


def _indicator(name: str, node: dict, codes: Codes, ctx: TermContext) -> Term:
    value, _ = _leaf(node, name)
    return Term(name, codes, np.array([ctx.neutral, _scalar(value, name)], dtype=np.float32))


def _deprivation_term(name: str, node: dict, ctx: TermContext) -> Term:
    value, leaf = _leaf(node, name)
    deciles = np.arange(DECILES + 1)
    if "breaks" in leaf:
        # one effect per decile more deprived in each age band: the gradient changes with age
        if value.shape != (len(leaf["breaks"]),):
            raise HhsimError(name, f"needs one value per age band ({len(leaf['breaks'])})",
                             "give as many values (each per decile more deprived) as breaks")
        by_age = value[band_lookup(leaf["breaks"], MAX_AGE, name)]
        table = np.stack([ctx.per_unit(float(v), DECILES - deciles) for v in by_age])
        return Term(name, lambda pop, idx: np.minimum(_take(pop.age_years, idx), MAX_AGE).astype(np.intp)
                    * (DECILES + 1) + _take(pop.deprivation, idx), table.ravel().astype(np.float32))
    if value.ndim == 0:
        # value = effect per decile more deprived; decile 10 (least deprived) is neutral.
        table = ctx.per_unit(float(value), DECILES - deciles)
    elif value.shape == (DECILES,):
        table = np.concatenate([[ctx.neutral], value])
    elif value.shape == (2, DECILES):
        # rows men, women: the gradient differs by sex
        table = np.concatenate([np.full((2, 1), ctx.neutral), value], axis=1)
        return Term(name, lambda pop, idx: _take(pop.female, idx).astype(np.intp) * (DECILES + 1)
                    + _take(pop.deprivation, idx), table.ravel().astype(np.float32))
    else:
        raise HhsimError(name, "needs one number (per decile), ten (deciles 1..10) or [men, women] "
                         "lists of ten", "give a ratio per decile, a list of 10 or two lists of 10")
    return Term(name, lambda pop, idx: _take(pop.deprivation, idx), table.astype(np.float32))


def _wellbeing_term(name: str, node: dict, ctx: TermContext) -> Term:
    """Wellbeing is continuous: the term is computed directly, not looked up."""
    value, leaf = _leaf(node, name)
    ratio = _scalar(value, name)
    centre = np.float32(leaf.get("centre", 0.0))
    log_ratio = np.float32(np.log(ratio)) if not ctx.additive else np.float32(0.0)

    def direct(pop: Population, idx: np.ndarray | None) -> np.ndarray:
        w = _take(pop.wellbeing, idx) - centre
        return w * np.float32(ratio) if ctx.additive else np.exp(w * log_ratio)

    return Term(name, lambda pop, idx: _take(pop.wellbeing, idx), np.ones(1, dtype=np.float32),
                kind="dynamic", direct=direct)


def _model_year_term(name: str, node: dict, ctx: TermContext) -> Term:
    """Years since model start (of the cycle being simulated or valued): the same for every
    tenant at a time, e.g. a treatment effect limited to the first years."""
    value, leaf = _leaf(node, name)
    if "breaks" in leaf:
        if value.shape != (len(leaf["breaks"]),):
            raise HhsimError(name, "needs one value per band of years", "give one value per break")
        table = value[band_lookup(leaf["breaks"], MAX_MODEL_YEARS, name)]
    else:
        table = ctx.per_unit(_scalar(value, name), np.arange(MAX_MODEL_YEARS + 1))
    table = table.astype(np.float32)

    def direct(pop: Population, idx: np.ndarray | None) -> np.ndarray:
        n = pop.n if idx is None else idx.size
        return np.full(n, table[min(pop.model_year, MAX_MODEL_YEARS)], dtype=np.float32)

    return Term(name, lambda pop, idx: np.zeros(0), table, kind="dynamic", direct=direct)


def _indicator_codes(key: str) -> Codes | None:
    """Codes (1 where it applies, else 0) of a covariate that a term by calendar month may be
    limited to (``rr.calendar_month.<key>``). A new per-tenant flag (e.g. fuel poverty)
    becomes available to seasonal terms by adding it here and to ``CALENDAR_GROUPS``."""
    if key in HAZARDS:
        return _hazard_codes(key)
    if key == "female":
        return _female_codes
    if key == "fuel_poor":
        return _fuel_poor_codes
    return None


CALENDAR_GROUPS = ("all", "female", "fuel_poor", *HAZARDS)


def _calendar_terms(name: str, node: Any, ctx: TermContext) -> list[Term]:
    """Ratios by calendar month (12 values, January first): for everyone (a leaf, or the
    ``all`` entry of a table) or only for tenants with an indicator (``.<hazard>``,
    ``.female``, ``.fuel_poor``); neutral for the others. With no month set, the annual mean
    (``hhsim.health.calendar``)."""
    if not ctx.calendar:
        raise HhsimError(name, "the calendar month is read by rates and probabilities only",
                         "remove the term: initial shares, utilities and state costs do not "
                         "depend on the month")
    if is_leaf(node):
        groups = {"all": node}
    elif isinstance(node, Mapping) and node:
        groups = dict(node)
    else:
        raise HhsimError(name, "needs 12 values, January to December",
                         f"write {name} = {{ value = [..12..], ... }}")
    terms = []
    for group, leaf in groups.items():
        where = name if is_leaf(node) else f"{name}.{group}"
        codes = None if group == "all" else _indicator_codes(group)
        if group != "all" and codes is None:
            raise unknown_key_error(name, group, CALENDAR_GROUPS, what="group")
        value, _ = _leaf(leaf, where)
        if value.shape != (MONTHS,):
            raise HhsimError(where, f"has {value.size} value(s); needs 12, January to December",
                             "give one value per calendar month, January first")
        # Row 0: tenants the term does not apply to; row 1: those it does. Columns: the 12
        # months, then the annual mean (no month set).
        table = np.full((2, MONTHS + 1), ctx.neutral, dtype=np.float32)
        table[1, :MONTHS] = value
        table[1, MONTHS] = annual_mean(value)
        terms.append(_calendar_term(where, table, codes))
    return terms


def _calendar_term(name: str, table: np.ndarray, codes: Codes | None) -> Term:
    def direct(pop: Population, idx: np.ndarray | None) -> np.ndarray:
        month = month_of(pop)
        column = table[:, MONTHS if month is None else month]
        if codes is None:
            return column[1]  # one number (float32) for everyone: cheaper than an array
        return np.take(column, codes(pop, idx))

    return Term(name, lambda pop, idx: np.zeros(0), table, kind="dynamic", direct=direct,
                calendar=True)


def _time_in_state_term(name: str, node: dict, chain: str | None) -> Term:
    if chain is None:
        raise HhsimError(name, "time_in_state is only allowed on a transition",
                         "move it under a chain's transition")
    value, leaf = _leaf(node, name)
    if "breaks" not in leaf:
        raise HhsimError(name, "needs breaks (months in state)", "add breaks = [0, 6, 12]")
    if value.shape != (len(leaf["breaks"]),):
        raise HhsimError(name, "needs one value per band of months", "give one value per break")
    table = value[band_lookup(leaf["breaks"], MAX_MONTHS_IN_STATE, name)].astype(np.float32)

    def codes(pop: Population, idx: np.ndarray | None) -> np.ndarray:
        return np.minimum(_take(pop.time_in_state[chain], idx), MAX_MONTHS_IN_STATE)

    return Term(name, codes, table, kind="dynamic", clock="time_in_state")


def _attribute_term(name: str, node: dict, attribute: str) -> Term:
    """An attribute drawn once per person (``hhsim.health.attributes``) to a power: 1
    multiplies by the attribute, 0 switches the term off. Factors are capped at MAX_RATIO
    (a value near 0 to a negative power)."""
    value, leaf = _leaf(node, name)
    power = np.float32(_scalar(value, name))
    if not str(leaf["unit"]).lower().startswith("power"):
        raise HhsimError(name, f"has unit '{leaf['unit']}'",
                         'use unit = "power": the term is the attribute to this power')

    def direct(pop: Population, idx: np.ndarray | None) -> np.ndarray:
        return np.minimum(np.power(_take(pop.attributes[attribute], idx), power), np.float32(MAX_RATIO))

    return Term(name, lambda pop, idx: np.zeros(0), np.ones(1, dtype=np.float32), kind="dynamic",
                direct=direct)


def _table_term(name: str, node: Mapping[str, Any], labels: tuple[str, ...],
                codes: Codes, what: str, ctx: TermContext, kind: str = "static") -> Term:
    if not isinstance(node, Mapping) or is_leaf(node):
        raise HhsimError(name, f"needs one value per {what}", f"give {name}.<{what}> = {{ ... }}")
    table = np.full(len(labels), ctx.neutral, dtype=np.float32)
    for label, leaf in node.items():
        if label not in labels:
            raise unknown_key_error(name, label, labels, what=what)
        value, _ = _leaf(leaf, f"{name}.{label}")
        table[labels.index(label)] = _scalar(value, f"{name}.{label}")
    return Term(name, codes, table, kind)


def _hazard_codes(hazard: str) -> Codes:
    shift = HAZARD_BITS[hazard].bit_length() - 1

    def codes(pop: Population, idx: np.ndarray | None) -> np.ndarray:
        return (_take(pop.hazards, idx) >> shift) & 1

    return codes


def _chain_codes(chain: str) -> Codes:
    return lambda pop, idx: _take(pop.states[chain], idx)


def _female_codes(pop: Population, idx: np.ndarray | None) -> np.ndarray:
    return _take(pop.female, idx).view(np.int8)


def _fuel_poor_codes(pop: Population, idx: np.ndarray | None) -> np.ndarray:
    """1 where the person's household is fuel poor (LILEE: low income, band D or worse)."""
    return pop.dwellings.fuel_poor[_take(pop.dwelling, idx)].view(np.int8)


MAX_MODEL_YEARS = 1000
COVARIATES = ("age", "female", "deprivation", "wellbeing", "time_in_state", "model_year",
              "calendar_month", "tenure", *HAZARDS)


def parse_terms(node: Mapping[str, Any] | None, where: str, ctx: TermContext) -> list[Term]:
    """Terms of one ``rr`` (or ``odds_ratio``) table, checked against the model's chains."""
    if not node:
        return []
    if not isinstance(node, Mapping) or is_leaf(node):
        raise HhsimError(where, "must be a table of ratios", f"write {where}.<covariate> = {{...}}")
    terms: list[Term] = []
    for key, sub in node.items():
        name = f"{where}.{key}"
        if key == "age":
            terms.append(_age_term(name, sub, ctx))
        elif key == "female":
            terms.append(_indicator(name, sub, _female_codes, ctx))
        elif key in HAZARDS:
            terms.append(_indicator(name, sub, _hazard_codes(key), ctx))
        elif key == "deprivation":
            terms.append(_deprivation_term(name, sub, ctx))
        elif key == "wellbeing":
            terms.append(_wellbeing_term(name, sub, ctx))
        elif key == "model_year":
            terms.append(_model_year_term(name, sub, ctx))
        elif key == "calendar_month":
            terms.extend(_calendar_terms(name, sub, ctx))
        elif key == "time_in_state":
            terms.append(_time_in_state_term(name, sub, ctx.own_chain))
        elif key == "tenure":
            terms.append(_table_term(name, sub, TENURES,
                                     lambda pop, idx: _take(pop.tenure, idx), "tenure", ctx))
        elif key in ctx.chains:
            terms.append(_table_term(name, sub, ctx.chains[key], _chain_codes(key), "state", ctx,
                                     kind="state"))
        elif key in ctx.attributes:
            terms.append(_attribute_term(name, sub, key))
        elif key in ctx.clocks:
            terms.append(ctx.clocks[key].term(name, sub, ctx))
        else:
            raise unknown_key_error(where, key, [*COVARIATES, *ctx.chains, *ctx.attributes, *ctx.clocks],
                                    what="covariate")
    return terms


def total(terms: list[Term], pop: Population, idx: np.ndarray | None) -> np.ndarray:
    """Sum of additive terms for tenants ``idx`` (float64; zeros when no terms)."""
    n = pop.n if idx is None else idx.size
    out = np.zeros(n, dtype=np.float64)
    for term in terms:
        out += term.factor(pop, idx)
    return out


def product(terms: list[Term], pop: Population, idx: np.ndarray | None) -> np.ndarray:
    """Product of the terms' ratios for tenants ``idx`` (float32; ones when no terms)."""
    n = pop.n if idx is None else idx.size
    out = np.ones(n, dtype=np.float32)
    for term in terms:
        out *= term.factor(pop, idx)
    return out
