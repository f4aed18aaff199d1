"""The intervention lifecycle shared by every type.

An intervention is compiled once from its merged table (its type's parser, at validation
and in each run) into frozen ``Settings``, and built per run (``build``) into an
``Intervention`` that the model drives:

- ``start()``: once, after the population exists: set up its provider agents, giving each
  the month's work it does (``Provider(..., work=self.step)``); the model sets up one
  without places or budget for a type that sets up none;
- ``step(t, discount)``: month ``t``'s work, done by its provider agent when the model steps
  the providers, at the start of every month, before the health step: identify and refer,
  queue, admit within capacity, exit, and charge the month's costs;
- ``strengths(t)``: the tenants whose rates the intervention changes this month and with
  what strength (1 while served, decaying after), for its ``effects``;
- ``month_stats()`` and ``record()``: what it reports monthly and at the end of the run;
- ``run_tables()``: its rows of the per-run tables its type declares (``tables``: the
  event log, kept when ``log = true``, and e.g. a hospital-flow programme's stays).

A type also says which of its record measures are printed (``printed``) and whom it
serves (``served``: costs per person served are per one of these). ``start``, ``step``
and ``record`` are abstract: every type implements them. Types register themselves
(``hhsim.interventions.registry``).

Costs are ledger activities marked with the intervention's name, so each is counted once,
with its payer, apart from NHS care costs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hhsim.core.accounting import PAYERS, Activity
from hhsim.core.costing import uprating_factor
from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import Parameter
from hhsim.core.resources import cost_index
from hhsim.interventions.effects import Effect
from hhsim.interventions.settings import parameter, table

if TYPE_CHECKING:
    import pandas as pd

    from hhsim.model.simulation import HousingHealthModel

EMPTY = np.empty(0, dtype=np.intp)
#: Strengths below this are treated as 0 (an effect has worn off).
NEGLIGIBLE = 0.01


def faded(t: int, left_month: np.ndarray, half_life: float) -> np.ndarray:
    """Strength in month ``t`` of the effects on those who left at the start of
    ``left_month``, halving every ``half_life`` months: 2^(-(t - e + 1) / h) (so already
    2^(-1/h) in month e); 0 once below ``NEGLIGIBLE``."""
    s = np.exp2(-(t - left_month + 1) / half_life).astype(np.float32)
    return np.where(s >= NEGLIGIBLE, s, np.float32(0))


def with_fading(active: np.ndarray, left: np.ndarray, left_month: np.ndarray, t: int,
                half_life: float) -> tuple[np.ndarray, np.ndarray]:
    """``strengths`` of an intervention: tenants ``active`` at 1, and those who ``left`` (at
    the start of ``left_month``) fading (``faded``; not at all when ``half_life`` is 0)."""
    ones = np.ones(active.size, dtype=np.float32)
    if half_life <= 0 or not left.size:
        return active, ones
    s = faded(t, left_month, half_life)
    keep = s > 0
    return np.concatenate([active, left[keep]]), np.concatenate([ones, s[keep]])


@dataclass(frozen=True)
class CostItem:
    """One cost of an intervention: £ per unit of ``basis``."""

    key: str
    basis: str  # "fte-year", "programme-year", "client-month", "client", or a works unit
    amount: float
    price_year: str
    parameter: str

    def activity(self, intervention: str, payer: str) -> Activity:
        per_tenant = self.basis not in PROGRAMME_BASES
        return Activity(f"{intervention}_{self.key}", UNITS.get(self.basis, self.basis),
                        self.amount, self.price_year, payer, self.parameter,
                        whole=self.basis in ("client-month", "client"), per_tenant=per_tenant,
                        intervention=intervention)


#: Cost units an intervention may use, by what they are charged per.
BASES = {"£ per fte-year": "fte-year", "£ per year": "programme-year",
         "£ per client-month": "client-month", "£ per person-month": "client-month",
         "£ per participant-month": "client-month",
         "£ per client": "client", "£ per person": "client",
         "£ per bed-day": "bed-day", "£ per place-year": "place-year"}
PROGRAMME_BASES = ("fte-year", "programme-year", "bed-day", "place-year")
UNITS = {"fte-year": "fte-years", "programme-year": "programme-years",
         "client-month": "client-months", "client": "clients", "bed-day": "bed-days",
         "place-year": "place-years"}


def money(node: Mapping[str, Any], key: str, where: str, unit: str, price_year: str) -> Parameter:
    """A money parameter whose price year can be uprated to the experiment's."""
    p = parameter(node, key, where, unit)
    try:
        uprating_factor(p.price_year, price_year)
    except HhsimError:
        raise HhsimError(f"{where}.{key}.price_year", f"'{p.price_year}' cannot be uprated to {price_year}",
                         f"use one of {sorted(cost_index())}") from None
    return p


def parse_costs(tree: Mapping[str, Any], where: str, allowed: tuple[str, ...],
                price_year: str) -> list[CostItem]:
    """Cost items of ``tree``'s ``[costs]``; each unit must be one of the ``allowed`` bases."""
    node, where = table(tree, "costs", where), f"{where}.costs"
    out = []
    for key in node:
        p = money(node, key, where, "£ per", price_year)
        basis = BASES.get(p.unit)
        if basis not in allowed:
            units = [u for u, b in BASES.items() if b in allowed]
            raise HhsimError(f"{where}.{key}", f"has unit '{p.unit}'", f"use one of {units}")
        out.append(CostItem(key, basis, float(p.value), p.price_year, p.name))
    return out


def parse_payer(node: Mapping[str, Any], where: str) -> str:
    payer = node.get("payer", "nhs")
    if payer not in PAYERS:
        raise unknown_key_error(f"{where}.payer", str(payer), PAYERS, what="payer")
    return payer


def parse_budget(node: Mapping[str, Any], where: str, price_year: str) -> float | None:
    """A yearly budget in the experiment's price year (None when not given)."""
    if "budget_per_year" not in node:
        return None
    p = money(node, "budget_per_year", where, "£ per year", price_year)
    return float(p.value) * uprating_factor(p.price_year, price_year)


@dataclass
class EventLog:
    """Events of one intervention (referred, admitted, left, ...), kept only when asked.
    ``unit`` says what the ids are: tenant slots or dwellings."""

    on: bool
    unit: str = "tenant"
    steps: list[np.ndarray] = field(default_factory=list)
    ids: list[np.ndarray] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    def add(self, t: int, ids: np.ndarray, event: str) -> None:
        if self.on and ids.size:
            self.steps.append(np.full(ids.size, t, dtype=np.int32))
            self.ids.append(ids.astype(np.int64))
            self.codes.append(event)

    @staticmethod
    def empty() -> pd.DataFrame:
        """An event table without rows."""
        import pandas as pd  # not for 'hhsim validate'

        return pd.DataFrame({"intervention": pd.Series(dtype=str), "month": pd.Series(dtype=np.int32),
                             "id": pd.Series(dtype=np.int64), "unit": pd.Series(dtype=str),
                             "event": pd.Series(dtype=str)})

    def table(self, intervention: str) -> pd.DataFrame:
        """Columns: intervention, month (0-based model month), id, unit, event."""
        import pandas as pd  # not for 'hhsim validate'

        if not self.ids:
            return self.empty()
        return pd.DataFrame({
            "intervention": intervention,
            "month": np.concatenate(self.steps),
            "id": np.concatenate(self.ids),
            "unit": self.unit,
            "event": np.repeat(self.codes, [a.size for a in self.ids]),
        })


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What every intervention type's settings hold; each type's frozen settings extend it."""

    name: str
    kind: str  # the registered type
    payer: str  # who pays its costs (hhsim.core.accounting.PAYERS)
    costs: tuple[CostItem, ...] = ()
    effects: tuple[Effect, ...] = ()
    log: bool = False  # keep an event log

    @property
    def tallies(self) -> tuple[str, ...]:
        """Ledger tallies besides its costs, named ``<name>_<tally>`` (checked for clashes)."""
        return ()

    @property
    def refers_to(self) -> tuple[str, ...]:
        """Names of the arm's interventions it refers dwellings to (each a ``ReferralTarget``)."""
        return ()


@dataclass(frozen=True)
class Measure:
    """A measure of an intervention's record, ``iv_<name>_<key>``, and its printed label."""

    key: str
    label: str


def no_rows() -> pd.DataFrame:
    """A per-run table without rows: only an ``intervention`` column."""
    import pandas as pd  # not for 'hhsim validate'

    return pd.DataFrame({"intervention": pd.Series(dtype=str)})


@dataclass(frozen=True)
class RunTable:
    """A per-run table that interventions write (``<name>/<run_id>.parquet``): the rows of
    each intervention of the arm that writes it, stacked; ``empty()`` when none has a row."""

    name: str
    empty: Callable[[], pd.DataFrame] = no_rows


EVENTS = RunTable("events", EventLog.empty)


class Intervention(ABC):
    """One intervention in one run (subclasses implement the lifecycle)."""

    #: What the event log's ids are.
    unit = "tenant"
    #: Per-run tables this type writes (``run_tables`` gives its rows of each).
    tables: ClassVar[tuple[RunTable, ...]] = (EVENTS,)
    #: Record measures printed in the interventions block of ``hhsim run --verbose``, in order.
    printed: ClassVar[tuple[Measure, ...]] = ()
    #: The record measure counting whom it served, labelled by what one is (e.g. "client").
    served: ClassVar[Measure | None] = None

    def __init__(self, settings: Settings, model: HousingHealthModel, stream: str) -> None:
        self.settings = settings
        self.name: str = settings.name
        self.model = model
        # Random streams are keyed by type and rank within the arm, not by name, so the
        # same intervention under another name in another arm faces the same numbers.
        self.stream = stream
        self.effects: list[Effect] = list(settings.effects)
        self.log = EventLog(settings.log, self.unit)

    def activities(self) -> list[Activity]:
        """The ledger activities of this intervention's costs."""
        return [c.activity(self.name, self.settings.payer) for c in self.settings.costs]

    def services_to_track(self) -> tuple[str, ...]:
        return ()

    @abstractmethod
    def start(self) -> None:
        """Set up, once the population and the ledger exist."""

    @abstractmethod
    def step(self, t: int, discount: float) -> None:
        """Month ``t``'s work, costs charged at ``discount`` (see the module docstring)."""

    def strengths(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Tenants whose rates this intervention changes in month ``t``, and the strength."""
        return EMPTY, np.empty(0, dtype=np.float32)

    def strength_of(self, t: int, idx: np.ndarray) -> np.ndarray:
        """The strength of this intervention's effects on tenants ``idx`` in month ``t``."""
        who, strength = self.strengths(t)
        dense = np.zeros(self.model.pop.n, dtype=np.float32)
        dense[who] = strength
        return dense[idx]

    def needs(self, area: str, idx: np.ndarray) -> np.ndarray:
        """Whether tenants ``idx`` had the assessment area's need (all true without areas)."""
        return np.ones(idx.size, dtype=bool)

    def month_stats(self) -> dict[str, float]:
        """This month's aggregates, as ``<name>:<measure>`` columns of the monthly table."""
        return {}

    @abstractmethod
    def record(self) -> dict[str, float]:
        """What it did over the run, as ``iv_<name>_<measure>`` columns of the run record."""

    def effect_record(self) -> dict[str, float]:
        """The rate ratio (or odds ratio, or wellbeing points) each effect used."""
        return {f"iv_{self.name}_effect_{e.name}": e.points if e.on_wellbeing else e.ratio
                for e in self.effects}

    def events(self) -> pd.DataFrame:
        return self.log.table(self.name)

    def run_tables(self) -> dict[str, pd.DataFrame]:
        """Its rows of each table in ``tables``, by name."""
        return {EVENTS.name: self.events()}


class ReferralTarget(ABC):
    """A capability: the arm's other interventions may refer dwellings to this one
    (``refer_to`` in an assessment area, e.g. hazards a support worker sees on a visit)."""

    @abstractmethod
    def report(self, dwellings: np.ndarray, t: int) -> None:
        """Another intervention found these dwellings in month ``t``."""
