"""Hospital stays counted in days inside the monthly step.

Each admission type (emergency physical, mental health) has an admission rate, a length of
stay (lognormal, days), and its own bed-day activity. When a patient is medically fit, they
go home unless they cannot safely do so (probability ``delay_probability``, with odds
ratios, e.g. for care need); then they wait in hospital for a lognormal number of days,
tallied as delayed-discharge days and costed at their own (excess bed-day) rate, not as a
further admission. After discharge, a 30-day readmission is scheduled with probability
``readmission_30d`` at a constant daily hazard inside the window. Any admission within 30
days of a discharge counts as a readmission.

Within a month, events (admission, medically fit, discharge) are processed day by day in
time order for the tenants that have one, so a 6-day stay, a delay and a readmission can
all fall in one month. A tenant can start a month at home, be admitted, discharged and
readmitted before it ends.

Providers with capacity plug in (``hhsim.interventions.discharge``): ``on_delay`` hears of
patients who are medically fit but cannot go home yet (with the day their delay would end),
``on_day`` runs on every day of the month, after that day's events, so a bed freed that day
goes to whoever is waiting (whether or not anyone else has an event that day: a provider's
work must not depend on other tenants' hospital events), ``on_admit`` hears of every
admission and ``on_home`` of every patient who goes home (after an acute stay, a delay or a
provider's place). A provider moves patients to one of its ``places`` (a step-down unit: days there
are tallied by the place's activity and count as days away from home) with ``transfer`` and
home with ``send_home``. Interventions change the delay and readmission probabilities
through ``effect``: odds ratios per tenant.

An admission type may have *causes* (``[hospital.admissions.<type>.causes.<cause>]``): each
cause is a rate of its own, the type's base rate times the cause's ``share`` of it (by age,
a table like a rate's), with the type's rate-ratio terms and its own (a damp home on
respiratory admissions, a falls hazard on fall injuries). One cause may leave out ``share``:
it takes what the others leave (1 minus their shares, never below 0). With ``reference =
true`` each cause is de-averaged on its own, so the reference population keeps every
cause's share. An admission's cause is drawn with the admission (the causes compete like
the types); a 30-day readmission keeps it. Each cause tallies its admissions
(``<type>_<cause>_admissions``); bed days and costs stay the type's. An intervention's
effect on the type's rate acts on every cause; an effect may also target one cause
(``hospital.admissions.<type>.causes.<cause>``).

Random numbers: the k-th draw a tenant makes from one of the hospital's streams within a
step uses block k of that stream, so an extra event for one tenant never shifts another
tenant's numbers, and no uniform is used twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from hhsim.core.accounting import Activity, Ledger
from hhsim.core.errors import HhsimError
from hhsim.core.parameters import check_keys, missing_parameter, scalar
from hhsim.core.randomness import Streams
from hhsim.health.ages import within_ages
from hhsim.health.competing import choose_exits
from hhsim.health.rates import Probability, Rate, RateStack, base_leaf, parse_probability, parse_rate
from hhsim.health.services import parse_cost
from hhsim.health.terms import MAX_AGE, TermContext, parse_terms
from hhsim.world.population import ACUTE, DELAYED, HOME, NO_DAY, Population

ADMIT, FIT, DISCHARGE, PLACE_END = 1, 2, 3, 4
READMISSION_WINDOW_DAYS = 30
#: Days of life, and of them days at home (not in hospital or a provider's unit), tallied
#: for models with a hospital: they show where the days of life are spent.
DAY_TALLIES = (Activity("days_alive", "days"), Activity("days_at_home", "days"))

ADMISSION_KEYS = {"description", "rate", "rr", "reference", "los_mean", "los_cv", "bed_day_cost",
                  "same_day_probability", "same_day_odds_ratio", "same_day_cost",
                  "delay_probability", "delay_odds_ratio", "delay_mean", "delay_cv",
                  "delayed_bed_day_cost", "readmission_30d", "readmission_odds_ratio", "payer", "ages",
                  "causes"}
CAUSE_KEYS = {"description", "share", "rr"}
#: The cause code of an admission type without causes.
NO_CAUSE = -1

RatesFn = Callable[[RateStack, np.ndarray], np.ndarray]
EffectFn = Callable[[Any, np.ndarray | None], np.ndarray | None]
PatientHook = Callable[[np.ndarray, np.ndarray], None]  # (tenants, days)
DelayHook = Callable[[np.ndarray, np.ndarray, np.ndarray], None]  # (tenants, days, end days)


@dataclass
class Place:
    """Somewhere outside the acute wards that a provider runs (a step-down unit).

    Days there are tallied by ``activity`` and count as days away from home. When a stay's
    scheduled end comes (a ``PLACE_END`` event), ``on_end(tenants, days)`` is called; when
    an occupant dies, ``on_death(tenants, days)``.
    """

    activity: str
    on_end: PatientHook
    on_death: PatientHook


@dataclass
class LogNormalDays:
    """A lognormal length in days: mean by sex and age (a table), and a coefficient of variation."""

    mean: np.ndarray  # (2, MAX_AGE + 1) days
    cv: float

    def days(self, pop: Population, idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Whole days (at least 1) for tenants ``idx`` at quantiles ``u``."""
        female = pop.female[idx].view(np.int8).astype(np.intp)
        mean = self.mean.ravel()[female * (MAX_AGE + 1) + np.minimum(pop.age_years[idx], MAX_AGE)]
        sigma2 = np.log1p(self.cv**2)
        mu = np.log(mean) - sigma2 / 2
        x = np.exp(mu + np.sqrt(sigma2) * special.ndtri(np.clip(u, 1e-9, 1 - 1e-9)))
        return np.maximum(1, np.rint(x)).astype(np.int32)


@dataclass
class Cause:
    """One cause of an admission type: its own rate, and a tally of its admissions."""

    name: str
    rate: Rate  # per person-year: the type's base x the cause's share, the type's terms and its own
    admissions: Activity


@dataclass
class AdmissionType:
    """One kind of hospital admission and what follows it."""

    name: str
    code: int
    rate: Rate  # all causes together (the rate the stack uses when there are no causes)
    los: LogNormalDays
    delay: Probability
    delay_days: LogNormalDays
    readmission: Probability
    bed_days: Activity
    delayed_days: Activity
    admissions: Activity
    readmissions: Activity
    causes: list[Cause] = field(default_factory=list)
    same_day: Probability | None = None  # chance an admission goes home the day it came (no bed day)
    same_day_admissions: Activity | None = None  # those admissions, costed per admission

    @property
    def activities(self) -> list[Activity]:
        return [self.bed_days, self.delayed_days, self.admissions, self.readmissions,
                *(c.admissions for c in self.causes),
                *([self.same_day_admissions] if self.same_day_admissions is not None else [])]

    @property
    def columns(self) -> list[Rate]:
        """The rates admissions of this type are drawn from: one per cause, or the type's."""
        return [c.rate for c in self.causes] or [self.rate]


def _days(node: Mapping[str, Any], mean_key: str, cv_key: str, where: str) -> LogNormalDays:
    if mean_key not in node:
        raise missing_parameter(where, mean_key, "days")
    table, unit, _ = base_leaf(node[mean_key], f"{where}.{mean_key}")
    if not unit.startswith("days") or np.any(table <= 0):
        raise HhsimError(f"{where}.{mean_key}", "must be a positive number of days",
                         'use unit = "days" and values above 0')
    return LogNormalDays(table, scalar(node, cv_key, where, "coefficient of variation"))


def parse_hospital(node: Mapping[str, Any] | None, ctx: TermContext) -> list[AdmissionType]:
    """Admission types from a model file's ``[hospital.admissions.<type>]`` tables."""
    if not node:
        return []
    check_keys(node, "hospital", {"admissions"})
    types = []
    for code, (name, sub) in enumerate(node.get("admissions", {}).items()):
        where = f"hospital.admissions.{name}"
        check_keys(sub, where, ADMISSION_KEYS)
        payer = sub.get("payer", "nhs")
        bed = parse_cost(sub, where, f"{name}_bed_days", "bed days", payer, key="bed_day_cost")
        delayed = parse_cost(sub, where, f"{name}_delayed_days", "bed days", payer,
                             key="delayed_bed_day_cost")
        rate = within_ages(parse_rate(sub, where, ctx), sub.get("ages"), f"{where}.ages")
        same_day = same_day_admissions = None
        if "same_day_probability" in sub:
            same_day = parse_probability(sub, where, "same_day_probability", ctx, "same_day_odds_ratio")
            same_day_admissions = parse_cost(sub, where, f"{name}_same_day_admissions", "admissions", payer,
                                             key="same_day_cost")
        elif "same_day_cost" in sub or "same_day_odds_ratio" in sub:
            raise HhsimError(f"{where}.same_day_probability", "is missing: same-day stays need their chance",
                             'add same_day_probability = { value = ..., unit = "probability", ... }')
        types.append(AdmissionType(
            name=name, code=code, rate=rate,
            los=_days(sub, "los_mean", "los_cv", where),
            delay=parse_probability(sub, where, "delay_probability", ctx, "delay_odds_ratio"),
            delay_days=_days(sub, "delay_mean", "delay_cv", where),
            readmission=parse_probability(sub, where, "readmission_30d", ctx,
                                          "readmission_odds_ratio"),
            bed_days=bed, delayed_days=delayed,
            admissions=Activity(f"{name}_admissions", "admissions"),
            readmissions=Activity(f"{name}_readmissions_30d", "readmissions"),
            causes=parse_causes(sub.get("causes"), rate, name, where, ctx),
            same_day=same_day, same_day_admissions=same_day_admissions,
        ))
    return types


def parse_causes(node: Any, rate: Rate, name: str, where: str, ctx: TermContext) -> list[Cause]:
    """The causes of admission type ``name`` (none when ``node`` is None): each the type's
    ``rate`` times its share, with the type's terms and its own."""
    if node is None:
        return []
    where = f"{where}.causes"
    if not isinstance(node, Mapping) or not node:
        raise HhsimError(where, "must be a table of causes",
                         "write [hospital.admissions.<type>.causes.<cause>] tables with a share each")
    shares: dict[str, np.ndarray | None] = {}
    for cause, sub in node.items():
        if not isinstance(sub, Mapping):
            raise HhsimError(f"{where}.{cause}", "must be a table", "give it a share and rate ratios")
        check_keys(sub, f"{where}.{cause}", CAUSE_KEYS)
        shares[cause] = _share(sub, f"{where}.{cause}") if "share" in sub else None
    rest = [c for c, s in shares.items() if s is None]
    if len(rest) > 1:
        raise HhsimError(f"{where}.{rest[1]}.share", f"is missing, as is {rest[0]}'s: only one cause may "
                         "take what the others leave", "give every cause but one a share")
    total = sum((s for s in shares.values() if s is not None), np.zeros_like(rate.base))
    live = rate.base > 0
    if np.any(total[live] > 1 + 1e-9):
        raise HhsimError(where, f"shares add up to {total[live].max():.4g} at some ages",
                         "make the shares add up to at most 1 at every age")
    if not rest and np.any(np.abs(total[live] - 1) > 1e-6):
        raise HhsimError(where, f"shares add up to {total[live].min():.4g} at some ages, not 1",
                         "make them add up to 1, or leave out one cause's share (it takes the rest)")
    causes = []
    for cause, share in shares.items():
        share = np.maximum(1.0 - total, 0.0) if share is None else share
        terms = [*rate.terms, *parse_terms(node[cause].get("rr"), f"{where}.{cause}.rr", ctx)]
        r = Rate(f"{where}.{cause}", rate.base * share, terms, rate.reference, ages=rate.ages,
                 parent=rate.name)
        causes.append(Cause(cause, r, Activity(f"{name}_{cause}_admissions", "admissions")))
    return causes


def _share(node: Mapping[str, Any], where: str) -> np.ndarray:
    """A cause's share of its type's admissions: a (2, ages) table of numbers in [0, 1]."""
    table, unit, _ = base_leaf(node["share"], f"{where}.share")
    if not unit.startswith("share") or np.any((table < 0) | (table > 1)):
        raise HhsimError(f"{where}.share", "must be a share from 0 to 1",
                         'use unit = "share of admissions" and values from 0 to 1')
    return table


@dataclass
class MonthWindow:
    """The days of one step: [t0, t1), and the discount weight of events in it."""

    step: int
    t0: int
    t1: int
    weight: float


@dataclass
class Hospital:
    """Per-tenant hospital state and the monthly event loop."""

    types: list[AdmissionType]
    stack: RateStack
    n: int
    location: np.ndarray = field(init=False)
    since: np.ndarray = field(init=False)  # day the tenant entered its current location
    next_day: np.ndarray = field(init=False)  # day of the next scheduled event, or NO_DAY
    next_kind: np.ndarray = field(init=False)
    admit_type: np.ndarray = field(init=False)  # type of the current or pending admission
    admit_cause: np.ndarray = field(init=False)  # its cause (a column of its type), or NO_CAUSE
    last_discharge: np.ndarray = field(init=False)
    places: dict[int, Place] = field(default_factory=dict)  # location code -> place
    on_delay: list[DelayHook] = field(default_factory=list)
    on_day: list[Callable[[int], None]] = field(default_factory=list)
    on_admit: list[PatientHook] = field(default_factory=list)
    on_home: list[PatientHook] = field(default_factory=list)
    effect: EffectFn | None = None  # odds multipliers of delay and readmission probabilities

    def __post_init__(self) -> None:
        n = self.n
        self.location = np.zeros(n, dtype=np.int8)
        self.since = np.zeros(n, dtype=np.int32)
        self.next_day = np.full(n, NO_DAY, dtype=np.int32)
        self.next_kind = np.zeros(n, dtype=np.int8)
        self.admit_type = np.zeros(n, dtype=np.int8)
        self.admit_cause = np.full(n, NO_CAUSE, dtype=np.int8)
        # The stack's columns: each type's causes (or the type itself), in type order.
        self._column_type = np.array([t.code for t in self.types for _ in t.columns], dtype=np.int8)
        self._column_cause = np.array([k if t.causes else NO_CAUSE for t in self.types
                                       for k in range(len(t.columns))], dtype=np.int8)
        self.last_discharge = np.full(n, -10 * READMISSION_WINDOW_DAYS, dtype=np.int32)

    @property
    def activities(self) -> list[Activity]:
        return [a for t in self.types for a in t.activities]

    def month(self, pop: Population, streams: Streams, ledger: Ledger, rates: RatesFn,
              window: MonthWindow, dt: float, death_day: np.ndarray,
              away: np.ndarray) -> None:
        """Run one step of admissions and discharges; add days away from home to ``away``.

        ``death_day`` holds the day each tenant dies in this step (NO_DAY if they live).
        Admissions, readmissions, bed days and delayed days are tallied in the ledger.
        """
        self._ctx = (pop, streams, ledger, window, death_day, away)
        self.death_day = death_day  # the day each tenant dies this step (NO_DAY if they live)
        self.admissions_this_step = np.zeros(self.n, dtype=np.uint8)
        self._new_admissions(pop, streams, rates, window, dt, death_day)
        if self.places:  # occupants who die this month leave their place that day
            dying = np.flatnonzero(np.isin(self.location, list(self.places)) & (death_day < window.t1))
            self.next_day[dying] = np.minimum(self.next_day[dying], death_day[dying])
        # Every event of the step belongs to a tenant with an event due before its end: the
        # candidates. Random numbers and their use counts are kept for them only.
        self._cand = np.flatnonzero(self.next_day < window.t1)
        self._uses: dict[str, np.ndarray] = {}
        self._draws: dict[tuple[str, int], np.ndarray] = {}
        for hook in self.on_day:
            hook(window.t0)
        self._event_loop(window, death_day)
        self._close_month(ledger, window, death_day, away)
        self._draws.clear()

    # -- admissions from home -------------------------------------------------------------
    def _new_admissions(self, pop: Population, streams: Streams, rates: RatesFn,
                        window: MonthWindow, dt: float, death_day: np.ndarray) -> None:
        if not self.types:
            return
        h = rates(self.stack, None)  # every slot: cheaper than gathering the ones at home
        u = streams.uniform("hospital:admission", window.step)
        ex = choose_exits(h, u, dt, pop.alive & (self.location == HOME))
        if not ex.who.size:
            return
        who, choice = ex.who, ex.choice
        day = window.t0 + (ex.when * (window.t1 - window.t0)).astype(np.int32)
        keep = (day < death_day[who]) & (day < self.next_day[who])
        who, day, choice = who[keep], day[keep], choice[keep]
        self.next_day[who] = day
        self.next_kind[who] = ADMIT
        self.admit_type[who] = self._column_type[choice]
        self.admit_cause[who] = self._column_cause[choice]

    # -- the event loop ---------------------------------------------------------------------
    def _event_loop(self, window: MonthWindow, death_day: np.ndarray) -> None:
        """Process this step's events in time order for each tenant.

        Without providers, tenants' hospital events are independent: each round processes
        every tenant's next event (a handful of rounds a month). With providers hooked in
        (shared capacity), events are processed day by day across all tenants, so a bed
        freed on a day goes to whoever is waiting that day. Each tenant sees the same
        sequence of events and random numbers either way.
        """
        by_day = bool(self.on_day or self.on_delay or self.places)
        last = window.t0  # the day the hooks last ran (they run every day, events or not)

        def quiet_days(until: int) -> None:
            for day in range(last + 1, until):
                for hook in self.on_day:
                    hook(day)

        cand = self._cand[self.next_day[self._cand] < window.t1]
        while cand.size:
            days = self.next_day[cand]
            if by_day:
                quiet_days(int(days.min()))
                last = max(last, int(days.min()))
            due = cand[days == days.min()] if by_day else cand
            day = self.next_day[due]
            dying = death_day[due] <= day
            if dying.any():
                self._die(due[dying], day[dying])
                due, day = due[~dying], day[~dying]
            kinds = self.next_kind[due]
            for kind, handler in ((ADMIT, self._admit), (FIT, self._fit), (DISCHARGE, self._discharge),
                                  (PLACE_END, self._place_end)):
                sel = kinds == kind
                if sel.any():
                    handler(due[sel], day[sel])
            if by_day:
                for hook in self.on_day:
                    hook(int(days.min()))
            cand = self._cand[self.next_day[self._cand] < window.t1]
        if by_day:
            quiet_days(window.t1)

    def _die(self, idx: np.ndarray, day: np.ndarray) -> None:
        """Tenants whose next event falls after their death: occupants of a place leave it
        on the day they die; hospital stays are closed at the end of the month."""
        self.next_day[idx] = NO_DAY
        for code, place in self.places.items():
            sel = self.location[idx] == code
            if sel.any():
                who, when = idx[sel], day[sel]
                self._close(who, when)
                self.location[who] = HOME
                self.since[who] = when
                place.on_death(who, when)

    def uniform(self, name: str, idx: np.ndarray) -> np.ndarray:
        """The next unused uniform of stream ``name`` for each tenant in ``idx`` this step
        (``idx`` are candidates: tenants with an event this step)."""
        _, streams, _, window, _, _ = self._ctx
        pos = np.searchsorted(self._cand, idx)
        uses = self._uses.get(name)
        if uses is None:
            uses = self._uses[name] = np.zeros(self._cand.size, dtype=np.int8)
        k = uses[pos]
        uses[pos] += 1
        u = np.empty(idx.size, dtype=np.float64)
        for b in range(int(k.min()), int(k.max()) + 1):
            sel = k == b
            if not sel.any():
                continue
            draws = self._draws.get((name, b))
            if draws is None:  # the whole block is drawn (one per slot); candidates' values kept
                draws = self._draws[(name, b)] = streams.uniform(name, window.step, b)[self._cand]
            u[sel] = draws[pos[sel]]
        return u

    def _close(self, idx: np.ndarray, day: np.ndarray) -> None:
        """End the current stay period of ``idx`` at ``day``: tally its days by location."""
        _, _, ledger, window, _, away = self._ctx
        days = (np.asarray(day) - self.since[idx]).astype(np.float32)
        away[idx] += days
        loc = self.location[idx]
        for t in self.types:
            of_type = self.admit_type[idx] == t.code
            for where, activity in ((ACUTE, t.bed_days), (DELAYED, t.delayed_days)):
                sel = of_type & (loc == where)
                if sel.any():
                    ledger.add(activity.name, idx[sel], days[sel], window.weight)
        for code, place in self.places.items():
            sel = loc == code
            if sel.any():
                ledger.add(place.activity, idx[sel], days[sel], window.weight)

    def _admit(self, idx: np.ndarray, day: np.ndarray) -> None:
        pop, _, ledger, window, _, _ = self._ctx
        u = self.uniform("hospital:los", idx)
        readmitted = day - self.last_discharge[idx] <= READMISSION_WINDOW_DAYS
        self.location[idx] = ACUTE
        self.since[idx] = day
        for t in self.types:
            sel = self.admit_type[idx] == t.code
            if not sel.any():
                continue
            who, when = idx[sel], day[sel]
            ledger.add(t.admissions.name, who, 1.0, window.weight)
            for k, cause in enumerate(t.causes):
                of_cause = who[self.admit_cause[who] == k]
                if of_cause.size:
                    ledger.add(cause.admissions.name, of_cause, 1.0, window.weight)
            self.admissions_this_step[who] += 1
            for hook in self.on_admit:
                hook(who, when)
            re = who[readmitted[sel]]
            if re.size:
                ledger.add(t.readmissions.name, re, 1.0, window.weight)
            self.next_day[who] = when + t.los.days(pop, who, u[sel])
            self.next_kind[who] = FIT
            if t.same_day is not None:
                same = self.uniform("hospital:same_day", who) < self._probability(t.same_day, who)
                if same.any():  # home the day they came: no bed day, no delay
                    ledger.add(t.same_day_admissions.name, who[same], 1.0, window.weight)
                    self._close(who[same], when[same])
                    self._go_home(who[same], when[same])

    def _probability(self, prob: Probability, idx: np.ndarray) -> np.ndarray:
        """``prob`` for tenants ``idx``, with any intervention's odds ratios."""
        pop = self._ctx[0]
        p = prob.evaluate(pop, idx)
        m = self.effect(prob, idx) if self.effect is not None else None
        if m is None:
            return p
        odds = p / np.maximum(1.0 - p, 1e-12) * m
        return odds / (1.0 + odds)

    def _fit(self, idx: np.ndarray, day: np.ndarray) -> None:
        self._close(idx, day)
        pop, _, _, _, _, _ = self._ctx
        u = self.uniform("hospital:delay", idx)
        p = np.empty(idx.size)
        for t in self.types:
            sel = self.admit_type[idx] == t.code
            if sel.any():
                p[sel] = self._probability(t.delay, idx[sel])
        delayed = u < p
        wait, wait_day = idx[delayed], day[delayed]
        if wait.size:
            self.location[wait] = DELAYED
            self.since[wait] = wait_day
            self.next_kind[wait] = DISCHARGE
            q = u[delayed] / p[delayed]  # uniform on [0, 1) given a delay: its length
            for t in self.types:
                sel = self.admit_type[wait] == t.code
                if sel.any():
                    self.next_day[wait[sel]] = (wait_day[sel]
                                                + t.delay_days.days(pop, wait[sel], q[sel]))
            for hook in self.on_delay:
                hook(wait, wait_day, self.next_day[wait])
        home = ~delayed
        if home.any():
            self._go_home(idx[home], day[home])

    def _discharge(self, idx: np.ndarray, day: np.ndarray) -> None:
        self._close(idx, day)
        self._go_home(idx, day)

    def _place_end(self, idx: np.ndarray, day: np.ndarray) -> None:
        for code, place in self.places.items():
            sel = self.location[idx] == code
            if sel.any():
                place.on_end(idx[sel], day[sel])

    # -- what providers do --------------------------------------------------------------------
    def add_place(self, place: Place) -> int:
        """Register a provider's place; returns its location code."""
        code = max([DELAYED, *self.places]) + 1
        self.places[code] = place
        return code

    def include(self, idx: np.ndarray) -> None:
        """Make ``idx`` candidates of this step (a provider moved them): their events are
        processed and their uniforms drawn like everyone else's."""
        new = np.setdiff1d(idx, self._cand)
        if not new.size:
            return
        cand = np.union1d(self._cand, new)
        pos = np.searchsorted(cand, self._cand)
        for name, uses in self._uses.items():
            grown = np.zeros(cand.size, dtype=uses.dtype)
            grown[pos] = uses
            self._uses[name] = grown
        self._draws.clear()  # drawn again on demand: the same numbers, for the larger set
        self._cand = cand

    def transfer(self, idx: np.ndarray, day: np.ndarray, location: int, until: np.ndarray) -> None:
        """Move patients waiting in hospital to a provider's place on ``day``; their stay
        there ends on ``until`` (a ``PLACE_END`` event, or their death day if earlier)."""
        death_day = self._ctx[4]
        self.include(idx)
        self._close(idx, day)
        self.location[idx] = location
        self.since[idx] = day
        self.next_day[idx] = np.minimum(until, death_day[idx])
        self.next_kind[idx] = PLACE_END

    def send_home(self, idx: np.ndarray, day: np.ndarray) -> None:
        """Discharge patients from hospital or a place home on ``day`` (a 30-day
        readmission may follow)."""
        self.include(idx)
        self._close(idx, day)
        self._go_home(idx, day)

    def _go_home(self, idx: np.ndarray, day: np.ndarray) -> None:
        """Discharge ``idx`` home on ``day`` and schedule any 30-day readmission."""
        for hook in self.on_home:
            hook(idx, day)
        self.location[idx] = HOME
        self.since[idx] = day
        self.last_discharge[idx] = day
        self.next_day[idx] = NO_DAY
        u = self.uniform("hospital:readmission", idx)
        for t in self.types:
            sel = self.admit_type[idx] == t.code
            if not sel.any():
                continue
            p = self._probability(t.readmission, idx[sel])
            us = u[sel]
            back = us < p
            if back.any():
                # Constant daily hazard within the window: day offset by inverting its CDF.
                lam = -np.log1p(-p[back]) / READMISSION_WINDOW_DAYS
                offset = np.ceil(-np.log1p(-us[back]) / lam).astype(np.int32)
                who = idx[sel][back]
                self.next_day[who] = day[sel][back] + np.clip(offset, 1, READMISSION_WINDOW_DAYS)
                self.next_kind[who] = ADMIT

    def _close_month(self, ledger: Ledger, window: MonthWindow, death_day: np.ndarray,
                     away: np.ndarray) -> None:
        inside = np.flatnonzero(self.location != HOME)
        if not inside.size:
            return
        end = np.minimum(death_day[inside], window.t1)
        self._close(inside, end)
        self.since[inside] = window.t1
        died = inside[death_day[inside] < window.t1]
        self.location[died] = HOME
        self.next_day[died] = NO_DAY
