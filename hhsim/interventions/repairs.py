"""Home repairs and improvements (seeds 001 and 004; BRE, The cost of poor housing).

A landlord's (or a council's) programme removes Category 1 hazards (excess cold, damp and
mould, falls) from dwellings within a yearly budget. Each month, while it runs:

1. works ordered ``works_months`` ago are completed: the hazards go, and every occupant's
   hazard-attributable risks fall from that month on (the health model's hazard rate
   ratios no longer apply; with ``works.months = 0``, from the month works are ordered);
2. hazards become known: a share ``known_at_start`` of hazardous dwellings is known when
   the programme starts (stock condition data), then a probability per month of finding
   each remaining one (surveys, repair requests), and any dwelling that another
   intervention of the arm reported since last month (``refer_to``, e.g. a support
   worker's home visit);
3. known dwellings with living occupants join the queue, priced at the sum of their
   hazards' costs; dwellings left empty leave it;
4. works are ordered in priority order (``first_come``, ``risk`` from the occupants'
   observable risk, the highest occupant's score; or ``cheapest_first``, as BRE suggests
   falls hazards pay back fastest) while the budget released so far this year covers the
   next job. The cost is charged when works are ordered, shared equally among the
   dwelling's living occupants (so results by group carry it).

Hazards also come and go without the programme (``hhsim.world.hazard_dynamics``): new ones
can be found and queued; a queued dwelling whose hazards the landlord's routine repairs
removed leaves the queue (``repaired_while_waiting``; found again if a hazard comes back); a
hazard may come back after works, at the dwelling's onset rate, and is then left to routine
repairs (a programme does a dwelling's works once). Weighted populations:
a simulated dwelling stands for the mean weight of its living occupants, in costs, counts
and budget alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hhsim.core.costing import uprating_factor
from hhsim.core.parameters import check_keys
from hhsim.core.resources import data_path
from hhsim.interventions.base import (
    CostItem,
    Intervention,
    Measure,
    ReferralTarget,
    Settings,
    money,
    parse_budget,
    parse_payer,
)
from hhsim.interventions.registry import register
from hhsim.interventions.settings import (
    ORDERS,
    Condition,
    ModelContext,
    RiskScore,
    Window,
    choice_list,
    flag,
    monthly_probability,
    parse_condition,
    parse_risk,
    parse_window,
    table,
    text,
    value,
    whole_months,
)
from hhsim.world.population import HAZARD_BITS, HAZARDS

KEYS = ("type", "name", "description", "payer", "start_month", "end_month", "priority", "log",
        "hazards", "eligibility", "capacity", "identification", "works", "costs", "risk")
NEVER, QUEUED, ORDERED, DONE, VOID = range(5)


@dataclass(frozen=True)
class RepairsSettings(Settings):
    window: Window
    hazards: tuple[str, ...]
    eligibility: Condition  # on the dwelling: tenure and area deprivation
    priority: str
    risk: RiskScore | None
    known_at_start: float
    identification: float  # probability per month
    works_months: int
    budget: float | None  # £ per year in the experiment's price year

    @property
    def mask(self) -> int:
        """Bits of the hazards this programme fixes."""
        bits = 0
        for h in self.hazards:
            bits |= HAZARD_BITS[h]
        return bits


def parse(tree: Mapping[str, Any], ctx: ModelContext) -> RepairsSettings:
    name = tree["name"]
    where = f"interventions.{name}"
    check_keys(tree, where, KEYS)
    hazards = tuple(choice_list(tree.get("hazards"), f"{where}.hazards", HAZARDS, "hazard"))
    elig = check_keys(table(tree, "eligibility", where), f"{where}.eligibility", ("tenure", "deprivation"))
    eligibility = parse_condition(elig, f"{where}.eligibility", ctx.chains)
    priority = text(tree, "priority", where, ORDERS, "risk")
    ident = check_keys(table(tree, "identification", where), f"{where}.identification",
                       ("known_at_start", "probability"))
    works = check_keys(table(tree, "works", where), f"{where}.works", ("months",))
    costs_node = check_keys(table(tree, "costs", where), f"{where}.costs", HAZARDS, "hazard")
    costs = []
    for h in hazards:
        p = money(costs_node, h, f"{where}.costs", "£ per dwelling", ctx.price_year)
        costs.append(CostItem(f"works_{h}", "dwellings", float(p.value), p.price_year, p.name))
    capacity = check_keys(table(tree, "capacity", where), f"{where}.capacity", ("budget_per_year",))
    return RepairsSettings(
        name=name, kind=tree["type"], payer=parse_payer(tree, where),
        window=parse_window(tree, where, ctx.months), hazards=hazards, eligibility=eligibility,
        priority=priority,
        risk=parse_risk(tree.get("risk"), f"{where}.risk", ctx.chains, ctx.services)
        if priority == "risk" else None,
        known_at_start=value(ident, "known_at_start", f"{where}.identification", "share"),
        identification=monthly_probability(ident, "probability", f"{where}.identification"),
        works_months=whole_months(works, "months", f"{where}.works") if "months" in works else 0,
        budget=parse_budget(capacity, f"{where}.capacity", ctx.price_year),
        costs=tuple(costs), log=flag(tree, "log", where, False))


@register("home_repairs", parse=parse, defaults=data_path("interventions/home_repairs.toml"))
class HomeRepairs(Intervention, ReferralTarget):
    """A repairs programme removing dwelling hazards within a budget (module docstring);
    the arm's other interventions may refer dwellings to it."""

    settings: RepairsSettings  # costs: one per hazard, £ per dwelling
    unit = "dwelling"
    printed = (Measure("mean_wait_months", "mean wait, months"), Measure("ordered", "works ordered"),
               Measure("fixed_excess_cold", "excess cold fixed"), Measure("fixed_damp", "damp fixed"),
               Measure("fixed_falls", "falls hazards fixed"))
    served = Measure("ordered", "dwelling repaired")

    def services_to_track(self) -> tuple[str, ...]:
        return self.settings.risk.services if self.settings.risk else ()

    def start(self) -> None:
        from hhsim.interventions.provider import Provider  # Mesa: not for 'hhsim validate'

        s, pop = self.settings, self.model.pop
        d = pop.dwellings
        self.n_dw = d.n
        # Occupants of each dwelling (dwellings never change occupants in this version).
        self.by_dwelling = np.argsort(pop.dwelling, kind="stable")
        self.first = np.searchsorted(pop.dwelling[self.by_dwelling], np.arange(d.n + 1))
        eligible = np.ones(d.n, dtype=bool)
        if s.eligibility.tenure is not None:
            eligible &= s.eligibility.tenure[d.tenure]
        if s.eligibility.deprivation is not None:
            eligible &= s.eligibility.deprivation[d.deprivation]
        self.eligible = eligible
        self.status = np.zeros(d.n, dtype=np.int8)
        self.known = np.zeros(d.n, dtype=bool)
        self.ordered_at = np.full(d.n, -1, dtype=np.int32)
        self.reported: list[np.ndarray] = []
        self.fix = np.zeros(d.n, dtype=np.uint8)  # hazard bits the ordered works remove
        self.weight = np.zeros(d.n)  # people a queued or ordered dwelling stands for
        self.unit_cost = np.array([c.amount * uprating_factor(c.price_year, self.model.config.price_year)
                                   for c in s.costs])
        self.provider = Provider(self.model, self.name, None, s.budget, s.priority, s.window.start,
                                 work=self.step)
        self.counts = {"identified": 0.0, "ordered": 0.0, "voids_left_queue": 0.0,
                       "closed_waiting": 0.0, "repaired_while_waiting": 0.0,
                       **{f"fixed_{h}": 0.0 for h in s.hazards}}
        self._month = {"ordered": 0.0, "completed": 0.0}
        self._started = False

    # -- helpers -----------------------------------------------------------------------------
    def targeted(self) -> np.ndarray:
        """Eligible dwellings that have a hazard this programme fixes."""
        return self.eligible & ((self.model.pop.dwellings.hazards & np.uint8(self.settings.mask)) != 0)

    def occupants(self, dwellings: np.ndarray) -> np.ndarray:
        """Every occupant slot (living or not) of ``dwellings``."""
        if not dwellings.size:
            return np.empty(0, dtype=np.intp)
        lo, hi = self.first[dwellings], self.first[dwellings + 1]
        lengths = hi - lo
        offset = np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
        return self.by_dwelling[np.arange(int(lengths.sum())) + offset]

    def living_weight(self) -> np.ndarray:
        """Mean weight of each dwelling's living occupants (0 when empty): the dwellings a
        simulated dwelling stands for, as its costs are shared among its occupants."""
        pop = self.model.pop
        where, w = pop.dwelling[pop.alive], pop.weight[pop.alive]
        total = np.bincount(where, weights=w, minlength=self.n_dw)
        count = np.bincount(where, minlength=self.n_dw)
        return np.divide(total, count, out=np.zeros(self.n_dw), where=count > 0)

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
        reported, self.reported = self.reported, []
        if not s.window.open(t):
            if self.provider.ids.size:
                closed = self.provider.leave(np.ones(self.provider.ids.size, dtype=bool))
                self.counts["closed_waiting"] += float(self.weight[closed].sum())
                self.status[closed] = NEVER
            return
        weight = self.living_weight()
        occupied, targeted = weight > 0, self.targeted()
        if not self._started:
            self._started = True
            u0 = self.model.streams.generator(f"{self.stream}:known", 0).random(self.n_dw)
            self.known |= targeted & (u0 < s.known_at_start)
        u = self.model.streams.generator(f"{self.stream}:identification", t).random(self.n_dw)
        self.known |= targeted & (u < s.identification)
        for dwellings in reported:
            self.known[dwellings[targeted[dwellings]]] = True
        if self.provider.ids.size:
            void = ~occupied[self.provider.ids]
            if void.any():
                self.counts["voids_left_queue"] += float(self.weight[self.provider.ids[void]].sum())
                self.status[self.provider.leave(void)] = VOID
            gone = ~targeted[self.provider.ids]  # removed by routine repairs while waiting
            if gone.any():
                self.counts["repaired_while_waiting"] += float(self.weight[self.provider.ids[gone]].sum())
                left = self.provider.leave(gone)
                self.status[left] = NEVER
                self.known[left] = False
        new = np.flatnonzero(self.known & targeted & occupied & (self.status == NEVER))
        if new.size:
            self.weight[new] = weight[new]
            self.counts["identified"] += float(weight[new].sum())
            self.status[new] = QUEUED
            score = self._dwelling_scores(new) if s.risk else None
            self.provider.join(new, t, score, weight[new], self._job_cost(new) * weight[new])
        if self.provider.ids.size:  # occupants change (deaths): reprice what is waiting
            q = self.provider.ids
            self.weight[q] = weight[q]
            self.provider.weight = weight[q].astype(np.float32)
            self.provider.cost = self._job_cost(q) * weight[q]
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
        self._month["ordered"] = float(self.weight[dwellings].sum())
        self.counts["ordered"] += self._month["ordered"]
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
        w = self.weight[due]
        for h in s.hazards:
            self.counts[f"fixed_{h}"] += float((w * ((self.fix[due] & np.uint8(HAZARD_BITS[h])) != 0)).sum())
        pop.dwellings.hazards[due] &= ~self.fix[due]
        self.status[due] = DONE
        self._month["completed"] = float(w.sum())
        self.provider.discharge(self._month["completed"])  # works in progress are "served"
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
        out[f"iv_{self.name}_cannot_fit"] = p.cannot_fit
        weight = self.living_weight()
        for h in s.hazards:
            has = (self.model.pop.dwellings.hazards & np.uint8(HAZARD_BITS[h])) != 0
            out[f"iv_{self.name}_remaining_{h}"] = float((weight * (has & self.eligible)).sum())
        return out
