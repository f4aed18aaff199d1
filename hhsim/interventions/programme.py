"""Programmes that serve tenants: refer -> queue -> admit within capacity -> effects -> exit.

Each month, while the programme runs (``start_month`` <= month < ``end_month``):

1. exits: clients who died, finished their ``duration``, dropped out (``dropout`` per
   month) or, where ``leave_when_ineligible`` is set, are no longer eligible, leave and free
   their places; when the programme ends every client leaves and the queue is closed;
2. the queue: people who joined in earlier months leave it when they die, move out or
   give up (``queue`` rules);
3. referral: each eligible tenant never referred before is referred with probability
   ``1 - prod(1 - p_source)`` over the sources that see them (a source may only see tenants
   with recent use of a service in the months before this one); a share ``uptake``
   accepts and joins the provider's queue, the rest decline;
4. admission: the provider admits in priority order within free places and budget. An
   admitted client is assessed: for each assessment area, whether the client has that
   need (from observables); ``refer_to`` passes the client's dwelling to a repairs
   programme of the same arm;
5. costs of the month: staff (FTE-years), running costs, per client-month and, at
   admission, per client.

Before and after: for every admitted client, the programme keeps the use of its tracked
services (those its referral sources watch) in the ``BEFORE_AFTER_MONTHS`` months before
admission and, for clients alive ``BEFORE_AFTER_MONTHS`` months later, in the same number
of months from admission; the record sums them (``iv_<name>_ba_*``, people represented).
This is the pilot-style before-after comparison of clients enrolled after recent use, with
its regression to the mean (``hhsim.studies.calibration.estimators.before_after``).

A tenant is referred at most once per run. Effects act on clients at full strength and
decay after they leave (``hhsim.interventions.effects``). Weighted populations: places,
queues and counts are in people represented (each tenant counts for its weight).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hhsim.core.costing import uprating_factor
from hhsim.core.errors import HhsimError
from hhsim.core.parameters import check_keys
from hhsim.interventions.base import (
    CostItem,
    Intervention,
    Measure,
    Settings,
    parse_budget,
    parse_costs,
    parse_payer,
    with_fading,
)
from hhsim.interventions.effects import parse_effects
from hhsim.interventions.settings import (
    PRIORITIES,
    Condition,
    Enrolment,
    ModelContext,
    QueueRules,
    ReferralSource,
    RiskScore,
    Window,
    flag,
    parse_condition,
    parse_enrolment,
    parse_queue,
    parse_referrals,
    parse_risk,
    parse_window,
    table,
    text,
    value,
)

# Client status codes.
NEVER, QUEUED, SERVED, DONE, DECLINED, LEFT = range(6)
#: Why a client stopped being served (``ClientProgramme.exit_reason`` holds the index).
EXIT_REASONS = ("died_while_served", "closed_while_served", "completed", "ineligible", "dropped_out",
                "left_tenancy_while_served")
#: Why someone left the queue (``ClientProgramme.exit_reason`` of those with status LEFT).
QUEUE_REASONS = ("died_waiting", "closed_waiting", "moved_out", "reneged", "ineligible_waiting",
                 "left_tenancy_waiting")

COMMON_KEYS = ("type", "name", "description", "payer", "start_month", "end_month", "priority",
               "log", "eligibility", "referrals", "uptake", "queue", "risk", "enrolment",
               "effects", "costs", "capacity", "assessment", "leave_when_ineligible")


@dataclass(frozen=True)
class Area:
    """An assessment area: which clients have the need, and where they are referred on."""

    name: str
    need: Condition
    refer_to: str | None = None


@dataclass(frozen=True)
class ProgrammeSettings(Settings):
    window: Window
    eligibility: Condition
    referrals: tuple[ReferralSource, ...]
    uptake: float
    queue: QueueRules
    priority: str
    risk: RiskScore | None
    enrolment: Enrolment
    places: float | None  # people at a time; None: unlimited
    staff_fte: float  # for costs per FTE-year
    budget: float | None  # £ per year in the experiment's price year
    commitment: float  # £ (experiment's prices) a client's admission commits against the budget
    areas: tuple[Area, ...]
    leave_when_ineligible: bool

    @property
    def services(self) -> tuple[str, ...]:
        """Services whose recent use the programme observes."""
        used = [r.trigger.service for r in self.referrals if r.trigger]
        used += list(self.risk.services) if self.risk else []
        return tuple(dict.fromkeys(used))

    @property
    def refers_to(self) -> tuple[str, ...]:
        return tuple(a.refer_to for a in self.areas if a.refer_to)


def parse_areas(node: Any, where: str, chains: Mapping[str, tuple[str, ...]]) -> tuple[Area, ...]:
    if not isinstance(node or {}, Mapping):
        raise HhsimError(where, f"must be a table of areas, got {node!r}",
                         "write [assessment.<area>] with need = { ... }")
    out = []
    for area, sub in (node or {}).items():
        w = f"{where}.{area}"
        check_keys(sub, w, ("need", "refer_to", "description"))
        refer_to = sub.get("refer_to")
        if refer_to is not None and not isinstance(refer_to, str):
            raise HhsimError(f"{w}.refer_to", "must be the name of an intervention",
                             'write refer_to = "repairs"')
        out.append(Area(area, parse_condition(sub.get("need", {}), f"{w}.need", chains), refer_to))
    return tuple(out)


def parse_programme(tree: Mapping[str, Any], ctx: ModelContext, *, places: float | None,
                    staff_fte: float = 0.0, cost_bases: tuple[str, ...],
                    capacity_keys: tuple[str, ...], extra_keys: tuple[str, ...] = (),
                    effect_areas: tuple[str, ...] = ()) -> ProgrammeSettings:
    """The settings of a tenant-serving programme from its merged table. A type may allow
    ``extra_keys`` (parsed by itself) and effects restricted to its own ``effect_areas``
    besides the assessment areas."""
    name, kind = tree["name"], tree["type"]
    where = f"interventions.{name}"
    check_keys(tree, where, COMMON_KEYS + extra_keys)
    capacity = check_keys(table(tree, "capacity", where), f"{where}.capacity", capacity_keys)
    priority = text(tree, "priority", where, PRIORITIES, "first_come")
    areas = parse_areas(tree.get("assessment"), f"{where}.assessment", ctx.chains)
    uptake = value(tree, "uptake", where, "share") if "uptake" in tree else 1.0
    window = parse_window(tree, where, ctx.months)
    enrolment = parse_enrolment(tree.get("enrolment"), f"{where}.enrolment")
    costs = tuple(parse_costs(tree, where, cost_bases, ctx.price_year))
    budget = parse_budget(capacity, f"{where}.capacity", ctx.price_year)
    commitment = _commitment(costs, enrolment, window, budget, where, ctx.price_year)
    return ProgrammeSettings(
        name=name, kind=kind, payer=parse_payer(tree, where), window=window,
        eligibility=parse_condition(tree.get("eligibility"), f"{where}.eligibility", ctx.chains),
        referrals=tuple(parse_referrals(tree.get("referrals"), f"{where}.referrals", ctx.services,
                                        ctx.chains)),
        uptake=uptake, queue=parse_queue(tree.get("queue"), f"{where}.queue"), priority=priority,
        risk=parse_risk(tree.get("risk"), f"{where}.risk", ctx.chains, ctx.services)
        if priority == "risk" else None,
        enrolment=enrolment,
        effects=tuple(parse_effects(tree.get("effects"), f"{where}.effects", ctx,
                                    tuple(a.name for a in areas) + effect_areas)),
        costs=costs, places=places, staff_fte=staff_fte, budget=budget, commitment=commitment,
        areas=areas, leave_when_ineligible=flag(tree, "leave_when_ineligible", where, False),
        log=flag(tree, "log", where, False))


def _commitment(costs: tuple[CostItem, ...], enrolment: Enrolment, window: Window,
                budget: float | None, where: str, price_year: str) -> float:
    """What admitting one client commits against a budget: per-client costs, and
    per-client-month costs for the longest a client can be served (its ``duration``, else
    the programme's length). Staff and running costs are capacity, not budget."""
    per_client = [c for c in costs if c.basis in ("client", "client-month")]
    if budget is None:
        return 0.0
    if not per_client:
        raise HhsimError(f"{where}.capacity.budget_per_year", "limits per-client costs, and there are none",
                         "remove budget_per_year, or add costs per client or per client-month")
    months = enrolment.duration or (window.end - window.start if window.end is not None else 0)
    if not months and any(c.basis == "client-month" for c in per_client):
        raise HhsimError(f"{where}.capacity.budget_per_year",
                         "cannot commit costs per client-month without a duration or an end_month",
                         "give enrolment.duration or end_month")
    return sum(c.amount * uprating_factor(c.price_year, price_year)
               * (months if c.basis == "client-month" else 1) for c in per_client)


#: Months before and after admission compared by the before-after tallies (at most 12, the
#: span of ``hhsim.world.recent_use``).
BEFORE_AFTER_MONTHS = 6


class ClientProgramme(Intervention):
    """A programme serving tenants through a provider with places and a queue."""

    settings: ProgrammeSettings
    printed = (Measure("referred", "referred"), Measure("admitted", "admitted"),
               Measure("mean_wait_months", "mean wait, months"),
               Measure("peak_served", "most served at once"), Measure("places", "places"))
    served = Measure("admitted", "client")

    def services_to_track(self) -> tuple[str, ...]:
        return self.settings.services

    def start(self) -> None:
        from hhsim.interventions.provider import Provider  # Mesa: not for 'hhsim validate'

        s, n = self.settings, self.model.pop.n
        self.status = np.zeros(n, dtype=np.int8)
        self.since = np.zeros(n, dtype=np.int16)  # month of the latest change of status
        self.need = {a.name: np.zeros(n, dtype=bool) for a in s.areas}
        self.referred_month = np.full(n, -1, dtype=np.int16)
        self.source = np.full(n, -1, dtype=np.int8)  # index into settings.referrals
        self.exit_reason = np.full(n, -1, dtype=np.int8)  # into EXIT_REASONS or QUEUE_REASONS
        self.provider = Provider(self.model, self.name, s.places, s.budget,
                                 s.priority, s.window.start, work=self.step)
        self.counts = dict.fromkeys(("referred", "declined", "admitted", "completed", "dropped_out",
                                     "ineligible", "died_while_served", "closed_while_served",
                                     "died_waiting", "moved_out", "reneged", "ineligible_waiting",
                                     "closed_waiting"), 0.0)
        if self.model.tenancies.active:  # tenancies that end take people off lists (world.tenancies)
            self.counts.update(left_tenancy_while_served=0.0, left_tenancy_waiting=0.0)
        self.counts.update({f"need_{a.name}": 0.0 for a in s.areas})
        self.counts.update({f"referred_by_{r.name}": 0.0 for r in s.referrals})
        self._month = {"referred": 0.0, "admitted": 0.0}
        self.admitted_month = np.full(n, -1, dtype=np.int16)
        self.use_before = {sv: np.zeros(n, dtype=np.uint16) for sv in s.services}
        self.before_after = {"ba_clients": 0.0}
        for sv in s.services:
            self.before_after.update({f"ba_before_{sv}": 0.0, f"ba_after_{sv}": 0.0})

    # -- helpers -----------------------------------------------------------------------------
    def _u(self, process: str, t: int, idx: np.ndarray) -> np.ndarray:
        return self.model.streams.uniform(f"{self.stream}:{process}", t)[idx]

    def _count(self, key: str, idx: np.ndarray) -> float:
        w = float(self.model.pop.weight[idx].sum(dtype=np.float64))
        self.counts[key] += w
        return w

    def _referral_chances(self, idx: np.ndarray, t: int) -> np.ndarray:
        """(sources, len(idx)): probability that one of the first k+1 sources refers."""
        miss = np.ones(idx.size)
        out = np.empty((len(self.settings.referrals), idx.size))
        for k, source in enumerate(self.settings.referrals):
            miss *= 1.0 - source.probability_for(self.model.pop, idx, t)
            out[k] = 1.0 - miss
        return out

    # -- the month ---------------------------------------------------------------------------
    def step(self, t: int, discount: float) -> None:
        s, status = self.settings, self.status
        running = s.window.open(t)
        self._month = {"referred": 0.0, "admitted": 0.0}
        if t < s.window.start:
            return
        self._follow_up(t)
        self._exits(t, running)
        self._queue(t, running)  # those waiting since earlier months
        if not running:
            return
        self._refer(t)
        admitted = self.provider.admit(t)
        if admitted.size:
            status[admitted] = SERVED
            self.since[admitted] = t
            self._month["admitted"] = self._count("admitted", admitted)
            self.log.add(t, admitted, "admitted")
            self._assess(t, admitted)
            self.admitted_month[admitted] = t
            for sv, before in self.use_before.items():
                before[admitted] = self.model.pop.recent_use.last(sv, BEFORE_AFTER_MONTHS, t, admitted)
        ledger = self.model.ledger
        served = np.flatnonzero(status == SERVED)
        for c in s.costs:
            activity = f"{self.name}_{c.key}"
            if c.basis == "fte-year":
                ledger.add(activity, None, s.staff_fte / 12.0, discount)
            elif c.basis == "programme-year":
                ledger.add(activity, None, 1.0 / 12.0, discount)
            elif c.basis == "client-month" and served.size:
                ledger.add(activity, served, 1.0, discount)
            elif c.basis == "client" and admitted.size:
                ledger.add(activity, admitted, 1.0, discount)

    def _follow_up(self, t: int) -> None:
        """Tally use before and after admission for clients admitted BEFORE_AFTER_MONTHS
        months ago and still alive."""
        pop = self.model.pop
        if t < BEFORE_AFTER_MONTHS:
            return
        due = np.flatnonzero(self.admitted_month == t - BEFORE_AFTER_MONTHS)
        due = due[pop.alive[due]]
        if not due.size:
            return
        w = pop.weight[due].astype(np.float64)
        self.before_after["ba_clients"] += float(w.sum())
        for sv, before in self.use_before.items():
            after = pop.recent_use.last(sv, BEFORE_AFTER_MONTHS, t, due)
            self.before_after[f"ba_before_{sv}"] += float((w * before[due]).sum())
            self.before_after[f"ba_after_{sv}"] += float((w * after).sum())

    def _exits(self, t: int, running: bool) -> None:
        pop = self.model.pop
        served = np.flatnonzero(self.status == SERVED)
        if not served.size:
            return
        left = np.zeros(served.size, dtype=bool)
        for key, out in self._exit_reasons(t, served, running):
            out &= ~left
            if out.any():
                ids = served[out]
                self._count(key, ids)
                self.log.add(t, ids, key)
                self.exit_reason[ids] = EXIT_REASONS.index(key)
                left |= out
        if left.any():
            ids = served[left]
            self.status[ids] = DONE
            self.since[ids] = t
            self.provider.discharge(float(pop.weight[ids].sum(dtype=np.float64)))

    def _exit_reasons(self, t: int, served: np.ndarray, running: bool):
        s, pop = self.settings, self.model.pop
        if self.model.tenancies.active:
            yield "left_tenancy_while_served", self.model.tenancies.left_month[served] >= 0
        yield "died_while_served", ~pop.alive[served]
        yield "closed_while_served", np.full(served.size, not running)
        if s.enrolment.duration:
            yield "completed", t - self.since[served] >= s.enrolment.duration
        if s.leave_when_ineligible:
            yield "ineligible", ~s.eligibility.holds(pop, served)
        if s.enrolment.dropout:
            yield "dropped_out", self._u("dropout", t, served) < s.enrolment.dropout

    def _refer(self, t: int) -> None:
        s, pop = self.settings, self.model.pop
        cand = np.flatnonzero((self.status == NEVER) & pop.alive)
        cand = cand[s.eligibility.holds(pop, cand)]
        if not cand.size:
            return
        chances = self._referral_chances(cand, t)
        u = self._u("referral", t, cand)
        hit = u < chances[-1]
        referred = cand[hit]
        if not referred.size:
            return
        # The one draw also says which source referred: the first whose cumulative chance
        # covers it (each source in turn, in the order listed).
        source = (u[hit][None, :] >= chances[:, hit]).sum(axis=0).astype(np.int8)
        self.source[referred] = source
        self.referred_month[referred] = t
        for k, r in enumerate(s.referrals):
            self._count(f"referred_by_{r.name}", referred[source == k])
        self._month["referred"] = self._count("referred", referred)
        self.log.add(t, referred, "referred")
        accept = (np.ones(referred.size, dtype=bool) if s.uptake >= 1
                  else self._u("uptake", t, referred) < s.uptake)
        declined, queued = referred[~accept], referred[accept]
        self.status[declined] = DECLINED
        self._count("declined", declined)
        self.log.add(t, declined, "declined")
        self.status[queued] = QUEUED
        self.since[queued] = t
        score = s.risk.score(pop, queued) if s.risk else None
        weight = pop.weight[queued]
        self.provider.join(queued, t, score, weight, s.commitment * weight.astype(np.float64))

    def _queue(self, t: int, running: bool) -> None:
        s, pop, prov = self.settings, self.model.pop, self.provider
        if not prov.ids.size:
            return
        ids = prov.ids
        u = self._u("queue", t, ids)
        move, renege = s.queue.move_out, s.queue.renege
        left = (self.model.tenancies.left_month[ids] >= 0 if self.model.tenancies.active
                else np.zeros(ids.size, dtype=bool))
        reasons = [("left_tenancy_waiting", left), ("died_waiting", ~pop.alive[ids]),
                   ("closed_waiting", np.full(ids.size, not running)),
                   ("moved_out", u < move),
                   ("reneged", (u >= move) & (u < move + renege))]
        if s.leave_when_ineligible:
            reasons.append(("ineligible_waiting", ~s.eligibility.holds(pop, ids)))
        gone = np.zeros(ids.size, dtype=bool)
        for key, out in reasons:
            out &= ~gone
            if out.any():
                self._count(key, ids[out])
                self.log.add(t, ids[out], key)
                self.exit_reason[ids[out]] = QUEUE_REASONS.index(key)
                gone |= out
        if gone.any():
            self.status[prov.leave(gone)] = LEFT

    def _assess(self, t: int, admitted: np.ndarray) -> None:
        pop = self.model.pop
        for area in self.settings.areas:
            has = area.need.holds(pop, admitted)
            self.need[area.name][admitted] = has
            self._count(f"need_{area.name}", admitted[has])
            if area.refer_to and has.any():
                self.model.intervention(area.refer_to).report(pop.dwelling[admitted[has]], t)

    # -- effects and reports -----------------------------------------------------------------
    def strengths(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        after = np.flatnonzero(self.status == DONE)
        return with_fading(np.flatnonzero(self.status == SERVED), after, self.since[after], t,
                           self.settings.enrolment.decay_half_life)

    def needs(self, area: str, idx: np.ndarray) -> np.ndarray:
        return self.need[area][idx]

    def month_stats(self) -> dict[str, float]:
        p = self.provider
        return {f"{self.name}:referred": self._month["referred"],
                f"{self.name}:admitted": self._month["admitted"],
                f"{self.name}:queue": p.queue_size, f"{self.name}:served": p.served}

    def record(self) -> dict[str, float]:
        p, s = self.provider, self.settings
        out = {f"iv_{self.name}_{k}": v for k, v in self.counts.items()}
        out[f"iv_{self.name}_places"] = float("inf") if s.places is None else s.places
        out[f"iv_{self.name}_peak_served"] = p.peak_served
        out[f"iv_{self.name}_peak_queue"] = p.peak_queue
        out[f"iv_{self.name}_mean_wait_months"] = p.mean_wait
        out[f"iv_{self.name}_max_wait_months"] = float(p.max_wait)
        out[f"iv_{self.name}_still_waiting"] = p.queue_size
        out[f"iv_{self.name}_cannot_fit"] = p.cannot_fit
        out[f"iv_{self.name}_still_served"] = p.served
        out.update({f"iv_{self.name}_{k}": v for k, v in self.before_after.items()})
        return out
