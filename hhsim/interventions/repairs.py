"""Home repairs and improvements (seeds 001 and 004; BRE, The cost of poor housing).

A landlord's (or a council's) programme removes Category 1 hazards (excess cold, damp and
mould, falls) from dwellings within a yearly budget. Each month, while it runs:

1. works ordered ``works_months`` ago are completed: the hazards go, and every occupant's
   hazard-attributable risks fall from the next month (the health model's hazard rate
   ratios no longer apply);
2. hazards become known: a share ``known_at_start`` of hazardous dwellings is known when
   the programme starts (stock condition data), then a probability per month of finding
   each remaining one (surveys, repair requests), and any dwelling that another
   intervention of the arm reports (``refer_to``, e.g. a support worker's home visit);
3. known dwellings with living occupants join the queue, priced at the sum of their
   hazards' costs; dwellings left empty leave it;
4. works are ordered in priority order (``first_come``, ``risk`` from the occupants'
   observable risk, the highest occupant's score; or ``cheapest_first``, as BRE suggests
   falls hazards pay back fastest) while the budget released so far this year covers the
   next job. The cost is charged when works are ordered, shared equally among the
   dwelling's living occupants (so results by group carry it).

Hazards do not come back, and no new hazards arise, in this version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hhsim.costing import uprating_factor
from hhsim.errors import HhsimError
from hhsim.interventions.base import (
    CostItem,
    Intervention,
    ModelContext,
    parse_budget,
    parse_payer,
)
from hhsim.interventions.provider import ORDERS, Provider
from hhsim.interventions.settings import (
    RiskScore,
    Window,
    choice_list,
    monthly_probability,
    parameter,
    parse_risk,
    parse_window,
    text,
    value,
    whole_months,
)
from hhsim.parameters import check_keys
from hhsim.world.population import DECILES, HAZARD_BITS, HAZARDS, TENURES

KEYS = ("type", "name", "description", "payer", "start_month", "end_month", "priority", "log",
        "hazards", "eligibility", "capacity", "identification", "works", "costs", "risk")
NEVER, QUEUED, ORDERED, DONE, VOID = range(5)


@dataclass(frozen=True)
class RepairsSettings:
    name: str
    kind: str
    payer: str
    window: Window
    hazards: tuple[str, ...]
    tenure: tuple[int, ...] | None
    deprivation: tuple[int, ...] | None
    priority: str
    risk: RiskScore | None
    known_at_start: float
    identification: float  # probability per month
    works_months: int
    budget: float | None  # £ per year in the experiment's price year
    costs: tuple[CostItem, ...]  # one per hazard, £ per dwelling
    log: bool

    @property
    def mask(self) -> int:
        return sum(HAZARD_BITS[h] for h in self.hazards)


def parse(tree: Mapping[str, Any], ctx: ModelContext) -> RepairsSettings:
    name = tree["name"]
    where = f"interventions.{name}"
    check_keys(tree, where, KEYS)
    hazards = tuple(choice_list(tree.get("hazards"), f"{where}.hazards", HAZARDS, "hazard"))
    elig = check_keys(tree.get("eligibility", {}), f"{where}.eligibility", ("tenure", "deprivation"))
    tenure = (tuple(TENURES.index(t) for t in choice_list(elig["tenure"], f"{where}.eligibility.tenure",
                                                     TENURES, "tenure"))
              if "tenure" in elig else None)
    deprivation = None
    if "deprivation" in elig:
        d = elig["deprivation"]
        if not (isinstance(d, list) and d and all(isinstance(x, int) and 1 <= x <= DECILES for x in d)):
            raise HhsimError(f"{where}.eligibility.deprivation", f"must be a list of deciles 1-{DECILES}",
                             "give e.g. deprivation = [1, 2, 3]")
        deprivation = tuple(d)
    priority = text(tree, "priority", where, ORDERS, "risk")
    ident = check_keys(tree.get("identification", {}), f"{where}.identification",
                       ("known_at_start", "probability"))
    works = check_keys(tree.get("works", {}), f"{where}.works", ("months",))
    costs_node = check_keys(tree.get("costs", {}), f"{where}.costs", HAZARDS, "hazard")
    costs = []
    for h in hazards:
        p = parameter(costs_node, h, f"{where}.costs", "£ per dwelling")
        costs.append(CostItem(f"works_{h}", "dwellings", float(p.value), p.price_year, p.name))
    check_keys(tree.get("capacity", {}), f"{where}.capacity", ("budget_per_year",))
    log = tree.get("log", False)
    if not isinstance(log, bool):
        raise HhsimError(f"{where}.log", "must be true or false", "write log = true")
    return RepairsSettings(
        name=name, kind=tree["type"], payer=parse_payer(tree, where),
        window=parse_window(tree, where), hazards=hazards, tenure=tenure, deprivation=deprivation,
        priority=priority,
        risk=parse_risk(tree.get("risk"), f"{where}.risk", ctx.chains, ctx.services)
        if priority == "risk" else None,
        known_at_start=value(ident, "known_at_start", f"{where}.identification", "share"),
        identification=monthly_probability(ident, "probability", f"{where}.identification"),
        works_months=whole_months(works, "months", f"{where}.works") if "months" in works else 0,
        budget=parse_budget(tree.get("capacity", {}), f"{where}.capacity", ctx.price_year),
        costs=tuple(costs), log=log)


class HomeRepairs(Intervention):
    """A repairs programme removing dwelling hazards within a budget (module docstring)."""

    settings: RepairsSettings

    def services_to_track(self) -> tuple[str, ...]:
        return self.settings.risk.services if self.settings.risk else ()

    def start(self) -> None:
        s, pop = self.settings, self.model.pop
        d = pop.dwellings
        self.n_dw = d.n
        # Occupants of each dwelling (dwellings never change occupants in this version).
        self.by_dwelling = np.argsort(pop.dwelling, kind="stable")
        self.first = np.searchsorted(pop.dwelling[self.by_dwelling], np.arange(d.n + 1))
        eligible = np.ones(d.n, dtype=bool)
        if s.tenure is not None:
            eligible &= np.isin(d.tenure, s.tenure)
        if s.deprivation is not None:
            eligible &= np.isin(d.deprivation, s.deprivation)
        self.eligible = eligible
        self.status = np.zeros(d.n, dtype=np.int8)
        self.known = np.zeros(d.n, dtype=bool)
        self.ordered_at = np.full(d.n, -1, dtype=np.int32)
        self.reported: list[np.ndarray] = []
        self.fix = np.zeros(d.n, dtype=np.uint8)  # hazard bits the ordered works remove
        self.unit_cost = np.array([c.amount * uprating_factor(c.price_year, self.model.config.price_year)
                                   for c in s.costs])
        self.provider = Provider(self.model, self.name, None, s.budget, s.priority, s.window.start)
        self.counts = {"identified": 0.0, "ordered": 0.0, "voids_left_queue": 0.0,
                       **{f"fixed_{h}": 0.0 for h in s.hazards}}
        self._month = {"ordered": 0.0, "completed": 0.0}
        self._started = False

    # -- helpers -----------------------------------------------------------------------------
    def targeted(self) -> np.ndarray:
        """Eligible dwellings that have a hazard this programme fixes."""
        return self.eligible & ((self.model.pop.dwellings.hazards & np.uint8(self.settings.mask)) != 0)

    def occupied(self) -> np.ndarray:
        """Dwellings with at least one living occupant."""
        return np.bincount(self.model.pop.dwelling[self.model.pop.alive], minlength=self.n_dw) > 0

    def occupants(self, dwellings: np.ndarray) -> np.ndarray:
        """Every occupant slot (living or not) of ``dwellings``."""
        if not dwellings.size:
            return np.empty(0, dtype=np.intp)
        lo, hi = self.first[dwellings], self.first[dwellings + 1]
        lengths = hi - lo
        offset = np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
        return self.by_dwelling[np.arange(int(lengths.sum())) + offset]

    def report(self, dwellings: np.ndarray, t: int) -> None:
        """Another intervention found these dwellings' hazards (e.g. on a home visit)."""
        self.reported.append(np.asarray(dwellings, dtype=np.intp))

    def _dwelling_scores(self, dwellings: np.ndarray) -> np.ndarray:
        pop = self.model.pop
        occ = self.occupants(dwellings)
        occ = occ[pop.alive[occ]]
        score = np.full(self.n_dw, -np.inf)
        np.maximum.at(score, pop.dwelling[occ], self.settings.risk.score(pop, occ))
        return score[dwellings]

    def _job_cost(self, dwellings: np.ndarray) -> np.ndarray:
        haz = self.model.pop.dwellings.hazards[dwellings]
        cost = np.zeros(dwellings.size)
        for h, c in zip(self.settings.hazards, self.unit_cost, strict=True):
            cost += c * ((haz & np.uint8(HAZARD_BITS[h])) != 0)
        return cost

    # -- the month ---------------------------------------------------------------------------
    def step(self, t: int, discount: float) -> None:
        s = self.settings
        self._month = {"ordered": 0.0, "completed": 0.0}
        if t < s.window.start:
            return
        self._complete(t)
        running = s.window.open(t)
        if not running:
            if self.provider.ids.size:
                self.status[self.provider.leave(np.ones(self.provider.ids.size, dtype=bool))] = NEVER
            return
        occupied, targeted = self.occupied(), self.targeted()
        if not self._started:
            self._started = True
            u0 = self.model.streams.generator(f"iv:{self.name}:known", 0).random(self.n_dw)
            self.known |= targeted & (u0 < s.known_at_start)
        u = self.model.streams.generator(f"iv:{self.name}:identification", t).random(self.n_dw)
        self.known |= targeted & (u < s.identification)
        for dwellings in self.reported:
            self.known[dwellings[targeted[dwellings]]] = True
        self.reported = []
        new = np.flatnonzero(self.known & targeted & occupied & (self.status == NEVER))
        if new.size:
            self.counts["identified"] += float(new.size)
            self.status[new] = QUEUED
            score = self._dwelling_scores(new) if s.risk else None
            self.provider.join(new, t, score, None, self._job_cost(new))
        if self.provider.ids.size:
            void = ~occupied[self.provider.ids]
            if void.any():
                self.counts["voids_left_queue"] += float(void.sum())
                self.status[self.provider.leave(void)] = VOID
        ordered = self.provider.admit(t).astype(np.intp)
        if ordered.size:
            self._order(t, ordered, discount)
            if s.works_months == 0:
                self._complete(t)

    def _order(self, t: int, dwellings: np.ndarray, discount: float) -> None:
        s, pop = self.settings, self.model.pop
        self.status[dwellings] = ORDERED
        self.ordered_at[dwellings] = t
        self.fix[dwellings] = pop.dwellings.hazards[dwellings] & np.uint8(s.mask)
        self.counts["ordered"] += float(dwellings.size)
        self._month["ordered"] = float(dwellings.size)
        occ = self.occupants(dwellings)
        occ = occ[pop.alive[occ]]
        share = 1.0 / np.bincount(pop.dwelling[occ], minlength=self.n_dw)[pop.dwelling[occ]]
        for h, c in zip(s.hazards, s.costs, strict=True):
            has = (self.fix[pop.dwelling[occ]] & np.uint8(HAZARD_BITS[h])) != 0
            if has.any():
                self.model.ledger.add(f"{self.name}_{c.key}", occ[has], share[has], discount)
        self.log.add(t, dwellings, "ordered")

    def _complete(self, t: int) -> None:
        s, pop = self.settings, self.model.pop
        due = np.flatnonzero((self.status == ORDERED) & (self.ordered_at + s.works_months <= t))
        if not due.size:
            return
        for h in s.hazards:
            self.counts[f"fixed_{h}"] += float(((self.fix[due] & np.uint8(HAZARD_BITS[h])) != 0).sum())
        pop.dwellings.hazards[due] &= ~self.fix[due]
        self.status[due] = DONE
        self._month["completed"] = float(due.size)
        occ = self.occupants(due)
        pop.refresh_from_dwellings(occ)
        self.model.health.profiles.refresh(pop, static=occ, everyone=False)
        self.log.add(t, due, "completed")

    # -- reports -----------------------------------------------------------------------------
    def month_stats(self) -> dict[str, float]:
        return {f"{self.name}:queue": self.provider.queue_size,
                f"{self.name}:ordered": self._month["ordered"],
                f"{self.name}:completed": self._month["completed"]}

    def record(self) -> dict[str, float]:
        p, s = self.provider, self.settings
        out = {f"iv_{self.name}_{k}": v for k, v in self.counts.items()}
        out[f"iv_{self.name}_mean_wait_months"] = p.mean_wait
        out[f"iv_{self.name}_max_wait_months"] = float(p.max_wait)
        out[f"iv_{self.name}_still_waiting"] = p.queue_size
        occupied = self.occupied()
        for h in s.hazards:
            has = (self.model.pop.dwellings.hazards & np.uint8(HAZARD_BITS[h])) != 0
            out[f"iv_{self.name}_remaining_{h}"] = float((has & occupied & self.eligible).sum())
        return out
