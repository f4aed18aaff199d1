"""Providers: the organisations that deliver interventions, with real capacity.

A ``Provider`` is a Mesa agent holding places (people it can serve at a time), an optional
yearly budget, and a queue. Its ``step`` is its month's work, which the intervention it
delivers gives it (``work``: exits, the queue, referrals, admissions and the month's
costs); the model steps every provider once a month, in the order they were set up
(``HousingHealthModel.providers``). People (or dwellings) join the queue with a priority
score, a weight (people represented) and a cost; they may leave it (giving up, moving out,
dying). Each month the provider admits from the head of the queue, in priority order,
while both the free places and the budget available that month cover the next in line.
The budget of a programme year is released evenly, month by month, and what is unspent
carries over within the year. Entries that could never be admitted (more people than the
places, or a cost above the whole year's budget) are passed over, not allowed to block the
queue; they wait, and are reported (``cannot_fit``).

Priority orders: ``first_come`` (longest wait first), ``risk`` (highest score first, then
longest wait), ``cheapest_first`` (lowest cost first, then longest wait). Ties fall to the
lower slot, so the order is deterministic.

A provider may run several sites (``groups``: e.g. a community centre on every estate), with
``places`` each, or one number of places per site. Each entry then waits for a place at its
own site; a full site does not hold up the others.
"""

from __future__ import annotations

from collections.abc import Callable

import mesa
import numpy as np

from hhsim.interventions.settings import ORDERS

#: A provider's month of work: called with the month (0-based) and the discount factor of
#: the month's costs.
Work = Callable[[int, float], None]


class Provider(mesa.Agent):
    """An organisation with places, a budget and a queue, doing an intervention's work
    each month (at least one per intervention)."""

    def __init__(self, model: mesa.Model, name: str, places: float | np.ndarray | None = None,
                 budget_per_year: float | None = None, order: str = "first_come",
                 start: int = 0, groups: int = 1, work: Work | None = None) -> None:
        super().__init__(model)
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}")
        self.name = name
        self.work = work  # its month's work; None: it admits only when asked
        self.places = places  # people at a time (at each site, or one number per site); None: unlimited
        self.budget_per_year = budget_per_year  # £ in the programme's price year; None: unlimited
        self.order = order
        self.start = start  # month the programme starts (programme years count from it)
        self.ids = np.empty(0, dtype=np.int64)
        self.joined = np.empty(0, dtype=np.int32)
        self.score = np.empty(0)
        self.weight = np.empty(0, dtype=np.float32)
        self.cost = np.empty(0)
        self.group = np.empty(0, dtype=np.int32)  # the site each entry waits for
        self.served_at = np.zeros(groups)  # people being served at each site (weighted)
        self.spent_year = -1  # programme year of ``spent``
        self.spent = 0.0
        self.admitted = 0.0
        self.total_wait = 0.0  # months waited by the admitted (weighted)
        self.max_wait = 0
        self.peak_served = 0.0
        self.peak_queue = 0.0  # most people waiting after a month's admissions

    def step(self) -> None:
        """Month ``model.month``'s work, its costs discounted by ``model.cost_discount``."""
        if self.work is not None:
            self.work(self.model.month, self.model.cost_discount)

    # -- the queue ---------------------------------------------------------------------------
    @property
    def queue_size(self) -> float:
        return float(self.weight.sum(dtype=np.float64))

    @property
    def served(self) -> float:
        """People being served (weighted), at all sites."""
        return float(self.served_at.sum())

    def join(self, ids: np.ndarray, t: int | np.ndarray, score: np.ndarray | None = None,
             weight: np.ndarray | None = None, cost: np.ndarray | None = None,
             group: np.ndarray | None = None) -> None:
        """Add ``ids`` to the queue at time ``t`` (a month, or a day for providers working
        in days; one for all, or one each), for a place at site ``group`` (default 0)."""
        n = ids.size
        self.group = np.concatenate([self.group, np.zeros(n, np.int32) if group is None
                                     else group.astype(np.int32)])
        self.ids = np.concatenate([self.ids, ids.astype(np.int64)])
        self.joined = np.concatenate([self.joined, np.broadcast_to(np.asarray(t, dtype=np.int32), (n,))])
        self.score = np.concatenate([self.score, np.zeros(n) if score is None else score])
        self.weight = np.concatenate([self.weight, np.ones(n, np.float32) if weight is None
                                      else weight.astype(np.float32)])
        self.cost = np.concatenate([self.cost, np.zeros(n) if cost is None else cost])

    def leave(self, out: np.ndarray) -> np.ndarray:
        """Remove the queue entries where ``out`` is true; return their ids."""
        gone = self.ids[out]
        keep = ~out
        self.ids, self.joined, self.score = self.ids[keep], self.joined[keep], self.score[keep]
        self.weight, self.cost, self.group = self.weight[keep], self.cost[keep], self.group[keep]
        return gone

    def waiting_order(self) -> np.ndarray:
        """Positions of the queue entries in the order they will be served."""
        if self.order == "risk":
            return np.lexsort((self.ids, self.joined, -self.score))
        if self.order == "cheapest_first":
            return np.lexsort((self.ids, self.joined, self.cost))
        return np.lexsort((self.ids, self.joined))

    # -- capacity ---------------------------------------------------------------------------
    def free_places(self) -> np.ndarray:
        """Free places at each site (inf when unlimited)."""
        if self.places is None:
            return np.full(self.served_at.size, np.inf)
        return np.maximum(self.places - self.served_at, 0.0)

    def budget_available(self, t: int) -> float:
        """Budget that may be committed in month ``t``: the year's budget released evenly,
        less what was committed earlier in the programme year."""
        if self.budget_per_year is None:
            return np.inf
        year, month = divmod(t - self.start, 12)
        if year != self.spent_year:
            self.spent_year, self.spent = year, 0.0
        return max(self.budget_per_year * (month + 1) / 12.0 - self.spent, 0.0)

    def admit(self, t: int) -> np.ndarray:
        """Admit from the head of the queue within free places and budget; return ids.
        Whoever is left is still waiting at the end of the month."""
        admitted = self._admit(t)
        self.peak_queue = max(self.peak_queue, self.queue_size)
        return admitted

    def _admit(self, t: int) -> np.ndarray:
        if not self.ids.size:
            return self.ids[:0]
        order = self.waiting_order()
        order = order[self._can_fit()[order]]
        g = self.group[order]
        # People ahead at the same site, in serving order: each site fills from its head.
        by_site = np.argsort(g, kind="stable")
        cum = np.empty(order.size)
        w = self.weight[order][by_site].astype(np.float64)
        total = np.cumsum(w)
        start = np.searchsorted(g[by_site], g[by_site], side="left")
        cum[by_site] = total - np.where(start > 0, total[np.maximum(start - 1, 0)], 0.0)
        fits = cum <= self.free_places()[g] + 1e-9
        if self.budget_per_year is not None:
            # One budget for all sites: stop at the first job (with a place) it cannot cover.
            spend = np.cumsum(np.where(fits, self.cost[order], 0.0))
            fits &= spend <= self.budget_available(t) + 1e-6
        take = order[fits]
        if not take.size:
            return self.ids[:0]
        waited = t - self.joined[take]
        w = self.weight[take].astype(np.float64)
        self.total_wait += float((waited * w).sum())
        self.max_wait = max(self.max_wait, int(waited.max()))
        self.admitted += float(w.sum())
        if self.budget_per_year is not None:
            self.spent += float(self.cost[take].sum())
        np.add.at(self.served_at, self.group[take], w)
        self.peak_served = max(self.peak_served, self.served)
        mask = np.zeros(self.ids.size, dtype=bool)
        mask[take] = True
        return self.leave(mask)

    def _can_fit(self) -> np.ndarray:
        ok = np.ones(self.ids.size, dtype=bool)
        if self.places is not None:
            ok &= self.weight <= np.asarray(self.places)[self.group] + 1e-9 if np.ndim(self.places) \
                else self.weight <= self.places + 1e-9
        if self.budget_per_year is not None:
            ok &= self.cost <= self.budget_per_year + 1e-6
        return ok

    @property
    def cannot_fit(self) -> float:
        """People (weighted) waiting who could never be admitted."""
        return float(self.weight[~self._can_fit()].sum(dtype=np.float64))

    def discharge(self, weight: float | np.ndarray, group: np.ndarray | None = None) -> None:
        """People (weighted) stop being served, at site ``group`` (each; default 0): their
        places are free again."""
        if group is None:
            self.served_at[0] = max(self.served_at[0] - float(np.sum(weight)), 0.0)
        else:
            np.subtract.at(self.served_at, group, weight)
            np.maximum(self.served_at, 0.0, out=self.served_at)

    @property
    def mean_wait(self) -> float:
        """Mean months waited by those admitted (NaN if nobody was)."""
        return self.total_wait / self.admitted if self.admitted else float("nan")
