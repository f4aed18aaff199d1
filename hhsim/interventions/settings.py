"""Reading an intervention's table: defaults merged with the experiment file, then parsed.

Every intervention type ships a defaults file (``hhsim/data/interventions/<type>.toml``)
whose numbers are sourced parameters, like a model file's. An arm's intervention table is
laid over it, key by key:

- a plain number replaces a default's value (the leaf then says it was set in the
  experiment file); a full leaf (``{ value = ..., unit = ..., source = ... }``) replaces it;
- a table is merged into the default table of the same name; an **empty table removes**
  the default (``referrals.community_health = {}``, ``effects.gp = {}``, ``recent = {}``);
- an effect given in another form (``percent_change`` where the default has a
  ``rate_ratio``) replaces the default's form;
- text and lists replace the default.

The merged table is what the run uses and what ``plan.json`` reports.

Settings common to interventions that serve tenants (``hhsim.interventions.programme``):

- ``start_month`` / ``end_month``: the programme runs in model months [start, end);
- ``eligibility``: who may be referred, from what a provider could observe (tenure, age,
  area deprivation, dwelling hazards, known conditions): never the model's hidden risk;
- ``referrals.<source>``: a monthly probability of referral, optionally only for tenants the
  source sees (``who = { states = { isolation = ["isolated"] } }``) and only after recent
  use of a service (``recent = { service = "community_nursing", months = 3, at_least = 1 }``);
  each referral is credited to the first source listed that would have made it;
- ``uptake``: the share of referred tenants who accept;
- ``queue``: monthly probabilities of leaving the queue (``renege``, ``move_out``);
- ``priority``: ``first_come`` or ``risk`` (points in ``[risk]`` from observables);
- ``enrolment``: ``duration`` (months), ``dropout`` (per month), ``decay_half_life``
  (months over which effects halve after a client leaves);
- ``effects.<name>``: what enrolment changes (``hhsim.interventions.effects``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import Parameter, check_keys, is_leaf, to_parameter
from hhsim.health.terms import MAX_AGE
from hhsim.world.children import ADULT_AGE
from hhsim.world.population import DECILES, HAZARD_BITS, HAZARDS, TENURES, Population

#: Units of parameters that an experiment file may give as plain numbers without a default.
PLAIN_UNITS = {
    "rate_ratio": "rate ratio",
    "odds_ratio": "odds ratio",
    "percent_change": "percent",
    "points": "points",
    "places": "people",
    "places_per_centre": "people",
    "share": "share",
    "link_months": "months",
    "staff_fte": "fte",
    "caseload_per_fte": "people per fte",
    "probability": "probability per month",
    "renege": "probability per month",
    "move_out": "probability per month",
    "dropout": "probability per month",
    "uptake": "share",
    "known_at_start": "share",
    "duration": "months",
    "decay_half_life": "months",
}
#: Forms an effect can be given in (hhsim.interventions.effects); one replaces another.
EFFECT_FORMS = ("rate_ratio", "percent_change", "odds_ratio", "points")
SET_IN_EXPERIMENT = "set in the experiment file"
PRIORITIES = ("first_come", "risk")
#: Orders a provider admits in (hhsim.interventions.provider).
ORDERS = (*PRIORITIES, "cheapest_first")


@dataclass(frozen=True)
class ModelContext:
    """What parsing an intervention needs to know about the arm's health model."""

    chains: Mapping[str, tuple[str, ...]]
    services: tuple[str, ...]  # community services, plus "admissions" when there is a hospital
    rates: frozenset[str]
    has_wellbeing: bool
    monthly: bool
    price_year: str  # the experiment's price year (budgets are compared in it)
    months: int | None = None  # the run's horizon
    activities: frozenset[str] = frozenset()  # the model's tallies (costs must not clash)
    probabilities: frozenset[str] = frozenset()  # delay and readmission probabilities
    admission_types: tuple[str, ...] = ()


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def merge(default: Mapping[str, Any], given: Mapping[str, Any]) -> dict:
    """``given`` laid over ``default`` (see the module docstring); neither is changed."""
    out = copy.deepcopy(dict(default))
    if any(f in given for f in EFFECT_FORMS):  # an effect in a new form drops the old one
        for f in (*EFFECT_FORMS, "baseline_probability"):
            if f not in given:
                out.pop(f, None)
    for key, value in given.items():
        old = out.get(key)
        if isinstance(value, Mapping) and not value and not is_leaf(old):
            out.pop(key, None)
        elif is_leaf(old) and not isinstance(value, Mapping):
            out[key] = {k: v for k, v in old.items() if k not in {"status", "assumption", "note"}}
            out[key].update(value=value, source=SET_IN_EXPERIMENT)
        elif isinstance(value, Mapping) and not is_leaf(value) and (old is None or (
                isinstance(old, Mapping) and not is_leaf(old))):
            out[key] = merge(old or {}, value)
        elif key in PLAIN_UNITS and _is_number(value):
            out[key] = {"value": value, "unit": PLAIN_UNITS[key], "source": SET_IN_EXPERIMENT}
        else:
            out[key] = copy.deepcopy(value)
    return out


def table(node: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    """The table ``node[key]`` (empty when absent); anything else is a one-line error."""
    got = node.get(key, {})
    if not isinstance(got, Mapping) or is_leaf(got):
        raise HhsimError(f"{where}.{key}", f"must be a table, got {got!r}",
                         f"write [{key}] with its keys, or {key} = {{ ... }}")
    return got


def parameter(node: Mapping[str, Any], key: str, where: str, unit: str) -> Parameter:
    """The single-number parameter ``key`` of ``node``, whose unit must start with ``unit``."""
    if key not in node:
        raise HhsimError(where, f"has no {key}",
                         f'add {key} = {{ value = ..., unit = "{unit}", source = "..." }}')
    leaf = node[key]
    if not is_leaf(leaf):
        raise HhsimError(f"{where}.{key}", "is not a parameter",
                         f'give {key} = {{ value = ..., unit = "{unit}", source = "..." }}')
    p = to_parameter(f"{where}.{key}", leaf)
    if np.ndim(p.value):
        raise HhsimError(f"{where}.{key}", "must be a single number, not a table", "give one number")
    if not p.unit.lower().startswith(unit.lower()):
        raise HhsimError(f"{where}.{key}", f"has unit '{p.unit}'", f'use unit = "{unit}"')
    return p


def value(node: Mapping[str, Any], key: str, where: str, unit: str) -> float:
    return float(parameter(node, key, where, unit).value)


def monthly_probability(node: Mapping[str, Any], key: str, where: str) -> float:
    """A probability per month, also accepted per year (converted at a constant hazard)."""
    p = parameter(node, key, where, "probability per")
    unit = p.unit.lower()
    if unit.startswith("probability per month"):
        return float(p.value)
    if unit.startswith("probability per year"):
        return float(1.0 - (1.0 - float(p.value)) ** (1.0 / 12.0))
    raise HhsimError(f"{where}.{key}", f"has unit '{p.unit}'",
                     'use "probability per month" or "probability per year"')


def whole_months(node: Mapping[str, Any], key: str, where: str, allow_zero: bool = True) -> int:
    months = value(node, key, where, "months")
    if months != int(months) or (months == 0 and not allow_zero):
        raise HhsimError(f"{where}.{key}", f"must be a whole number of months, got {months:g}",
                         "give a whole number" + ("" if allow_zero else " of at least 1"))
    return int(months)


def text(node: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...],
         default: str | None = None) -> str:
    got = node.get(key, default)
    if got not in choices:
        raise unknown_key_error(f"{where}.{key}", str(got), choices, what="value")
    return got


def flag(node: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    got = node.get(key, default)
    if not isinstance(got, bool):
        raise HhsimError(f"{where}.{key}", f"must be true or false, got {got!r}", f"write {key} = true")
    return got


def month_setting(node: Mapping[str, Any], key: str, where: str) -> int | None:
    got = node.get(key)
    if got is None:
        return None
    if isinstance(got, bool) or not isinstance(got, int) or got < 0:
        raise HhsimError(f"{where}.{key}", f"must be a model month (0 or more), got {got!r}",
                         "give a whole number: 0 is the first month")
    return got


@dataclass(frozen=True)
class Window:
    """Model months [start, end) in which a programme runs (end None: to the horizon)."""

    start: int = 0
    end: int | None = None

    def open(self, t: int) -> bool:
        return t >= self.start and (self.end is None or t < self.end)


def parse_window(node: Mapping[str, Any], where: str, months: int | None = None) -> Window:
    """Model months [start_month, end_month) of a programme; ``months``: the run's horizon."""
    start = month_setting(node, "start_month", where) or 0
    end = month_setting(node, "end_month", where)
    if months is not None and start >= months:
        raise HhsimError(f"{where}.start_month", f"{start} is after the last month of the run "
                         f"({months - 1}): the programme would never run", "give an earlier start_month")
    if end is not None and end <= start:
        raise HhsimError(f"{where}.end_month", f"{end} is not after start_month {start}",
                         "give an end_month after the start (some types have a default end_month)")
    return Window(start, end)


# -- who: eligibility and needs, from what a provider can observe -----------------------------
@dataclass(frozen=True)
class Condition:
    """A test on observable tenant attributes; every listed part must hold. Without an age,
    it holds for adults only (``ADULT_AGE`` and over): interventions serve tenants, and
    children benefit through their home."""

    tenure: np.ndarray | None = None  # accepted, by tenure code
    age: tuple[int, int] = (ADULT_AGE, MAX_AGE + 1)  # years: minimum <= age < maximum (adults unless given)
    deprivation: np.ndarray | None = None  # accepted, by decile (index 0 unused)
    hazards: int = 0  # bit mask: the dwelling has any of these hazards
    states: tuple[tuple[str, np.ndarray], ...] = ()  # chain, mask of accepted states

    def holds(self, pop: Population, idx: np.ndarray | None = None) -> np.ndarray:
        """Boolean array over ``idx`` (all slots when None): the condition holds."""
        def take(a: np.ndarray) -> np.ndarray:
            return a if idx is None else a[idx]

        ok = np.ones(pop.n if idx is None else idx.size, dtype=bool)
        if self.tenure is not None:
            ok &= self.tenure[take(pop.tenure)]
        if self.age != (0, MAX_AGE + 1):
            age = take(pop.age_years)
            ok &= (age >= self.age[0]) & (age < self.age[1])
        if self.deprivation is not None:
            ok &= self.deprivation[take(pop.deprivation)]
        if self.hazards:
            ok &= (take(pop.hazards) & np.uint8(self.hazards)) != 0
        for chain, accepted in self.states:
            ok &= accepted[take(pop.states[chain])]
        return ok


CONDITION_KEYS = ("tenure", "age", "deprivation", "hazards", "states")


def choice_list(node: Any, where: str, choices: tuple[str, ...], what: str) -> list[str]:
    if not isinstance(node, list) or not node or not all(isinstance(x, str) for x in node):
        raise HhsimError(where, f"must be a list of {what}s", f"give e.g. [\"{choices[0]}\"]")
    for x in node:
        if x not in choices:
            raise unknown_key_error(where, x, choices, what=what)
    if len(set(node)) != len(node):
        raise HhsimError(where, f"lists a {what} twice", "list each once")
    return node


def whole_numbers(node: Any) -> bool:
    return isinstance(node, list) and bool(node) and all(
        isinstance(x, int) and not isinstance(x, bool) for x in node)


def parse_condition(node: Any, where: str, chains: Mapping[str, tuple[str, ...]]) -> Condition:
    """A condition from a table such as ``{ tenure = ["social_rented"], age = [18, 200],
    states = { ltc = ["ltc"] } }``."""
    if node is None:
        return Condition()
    check_keys(node, where, CONDITION_KEYS)
    tenure = deprivation = None
    age = (ADULT_AGE, MAX_AGE + 1)
    if "tenure" in node:
        given = choice_list(node["tenure"], f"{where}.tenure", TENURES, "tenure")
        tenure = np.isin(TENURES, given)
    if "age" in node:
        a = node["age"]
        if not (whole_numbers(a) and len(a) == 2 and 0 <= a[0] < a[1]):
            raise HhsimError(f"{where}.age", f"must be [minimum, maximum] in whole years, got {a!r}",
                             "give e.g. age = [65, 200] (minimum <= age < maximum)")
        age = (a[0], a[1])
    if "deprivation" in node:
        d = node["deprivation"]
        if not (whole_numbers(d) and all(1 <= x <= DECILES for x in d)):
            raise HhsimError(f"{where}.deprivation", f"must be a list of deciles 1-{DECILES}, got {d!r}",
                             "give e.g. deprivation = [1, 2, 3] (1 = most deprived)")
        deprivation = np.isin(np.arange(DECILES + 1), d)
    hazards = 0
    if "hazards" in node:
        for h in choice_list(node["hazards"], f"{where}.hazards", HAZARDS, "hazard"):
            hazards |= HAZARD_BITS[h]
    states = []
    for chain, accepted in check_keys(node.get("states", {}), f"{where}.states", chains, "chain").items():
        names = choice_list(accepted, f"{where}.states.{chain}", chains[chain], "state")
        states.append((chain, np.isin(np.arange(len(chains[chain])),
                                      [chains[chain].index(s) for s in names])))
    return Condition(tenure, age, deprivation, hazards, tuple(states))


# -- how: referral sources and priority ---------------------------------------------------------
@dataclass(frozen=True)
class RecentUseTrigger:
    """At least ``at_least`` uses of ``service`` in the last ``months`` months."""

    service: str
    months: int
    at_least: int


@dataclass(frozen=True)
class ReferralSource:
    """Who refers: a monthly probability for the eligible tenants this source sees (only
    those meeting ``who``, and only after recent use of a service when ``trigger`` is set)."""

    name: str
    probability: float  # per month, for tenants the source sees
    trigger: RecentUseTrigger | None = None
    who: Condition | None = None

    def probability_for(self, pop: Population, idx: np.ndarray, t: int) -> np.ndarray:
        """Monthly probability that this source refers each of tenants ``idx`` in month ``t``."""
        p = np.full(idx.size, self.probability)
        if self.who is not None:
            p *= self.who.holds(pop, idx)
        if self.trigger is not None:
            tr = self.trigger
            p *= pop.recent_use.last(tr.service, tr.months, t, idx) >= tr.at_least
        return p


def parse_referrals(node: Any, where: str, services: tuple[str, ...],
                    chains: Mapping[str, tuple[str, ...]]) -> list[ReferralSource]:
    if not isinstance(node, Mapping) or not node:
        raise HhsimError(where, "has no referral source",
                         "add [referrals.<source>] with probability = { ... }")
    out = []
    for name, sub in node.items():
        w = f"{where}.{name}"
        check_keys(sub, w, ("probability", "recent", "who", "description"))
        trigger = None
        if "recent" in sub:
            r = check_keys(sub["recent"], f"{w}.recent", ("service", "months", "at_least"))
            if r.get("service") not in services:
                raise unknown_key_error(f"{w}.recent.service", str(r.get("service")), services,
                                        what="service")
            months, at_least = r.get("months", 12), r.get("at_least", 1)
            if not (whole_numbers([months]) and 1 <= months <= 12):
                raise HhsimError(f"{w}.recent.months", f"must be 1 to 12, got {months!r}",
                                 "give a whole number of months up to 12")
            if not (whole_numbers([at_least]) and at_least >= 1):
                raise HhsimError(f"{w}.recent.at_least", f"must be 1 or more, got {at_least!r}",
                                 "give a whole number of uses")
            trigger = RecentUseTrigger(r["service"], months, at_least)
        who = parse_condition(sub["who"], f"{w}.who", chains) if "who" in sub else None
        out.append(ReferralSource(name, monthly_probability(sub, "probability", w), trigger, who))
    return out


@dataclass(frozen=True)
class RiskScore:
    """Priority points from observables: higher is served first.

    ``age`` points per year of age; ``recent`` points per use of a service in the last
    12 months; ``states`` points per known condition; ``hazards`` points per dwelling hazard.
    """

    age: float = 0.0
    recent: tuple[tuple[str, float], ...] = ()
    states: tuple[tuple[str, np.ndarray], ...] = ()  # chain, points per state
    hazards: tuple[tuple[int, float], ...] = ()  # bit, points

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(s for s, _ in self.recent)

    def score(self, pop: Population, idx: np.ndarray) -> np.ndarray:
        out = self.age * pop.age_years[idx].astype(np.float64)
        for service, points in self.recent:
            out += points * pop.recent_use.total(service, idx)
        for chain, points in self.states:
            out += points[pop.states[chain][idx]]
        for bit, points in self.hazards:
            out += points * ((pop.hazards[idx] & np.uint8(bit)) != 0)
        return out


def parse_risk(node: Any, where: str, chains: Mapping[str, tuple[str, ...]],
               services: tuple[str, ...]) -> RiskScore:
    if not node:
        raise HhsimError(where, "is needed with priority = \"risk\"",
                         "add [risk] with points, e.g. recent.admissions = { value = 2, ... }")
    check_keys(node, where, ("age", "recent", "states", "hazards"))
    age = value(node, "age", where, "points") if "age" in node else 0.0
    recent = tuple((s, value(node["recent"], s, f"{where}.recent", "points"))
                   for s in check_keys(node.get("recent", {}), f"{where}.recent", services, "service"))
    states = []
    for chain, sub in check_keys(node.get("states", {}), f"{where}.states", chains, "chain").items():
        points = np.zeros(len(chains[chain]))
        for s in check_keys(sub, f"{where}.states.{chain}", chains[chain], "state"):
            points[chains[chain].index(s)] = value(sub, s, f"{where}.states.{chain}", "points")
        states.append((chain, points))
    hazards = tuple((HAZARD_BITS[h], value(node["hazards"], h, f"{where}.hazards", "points"))
                    for h in check_keys(node.get("hazards", {}), f"{where}.hazards", HAZARDS, "hazard"))
    return RiskScore(age, recent, tuple(states), hazards)


# -- waiting and being served --------------------------------------------------------------------
@dataclass(frozen=True)
class QueueRules:
    renege: float = 0.0  # probability per month of giving up waiting
    move_out: float = 0.0  # probability per month of leaving the provider's area


def parse_queue(node: Any, where: str) -> QueueRules:
    node = check_keys(node or {}, where, ("renege", "move_out"))
    rules = QueueRules(*(monthly_probability(node, k, where) if k in node else 0.0
                         for k in ("renege", "move_out")))
    if rules.renege + rules.move_out > 1:
        raise HhsimError(where, "renege and move_out add up to more than 1 a month",
                         "give monthly probabilities that add up to at most 1")
    return rules


@dataclass(frozen=True)
class Enrolment:
    duration: int = 0  # months of service; 0: until the programme ends (or eligibility, if so set)
    dropout: float = 0.0  # probability per month of leaving early
    decay_half_life: float = 0.0  # months; 0: effects stop when a client leaves


def parse_enrolment(node: Any, where: str) -> Enrolment:
    node = check_keys(node or {}, where, ("duration", "dropout", "decay_half_life"))
    return Enrolment(whole_months(node, "duration", where) if "duration" in node else 0,
                     monthly_probability(node, "dropout", where) if "dropout" in node else 0.0,
                     value(node, "decay_half_life", where, "months") if "decay_half_life" in node else 0.0)
