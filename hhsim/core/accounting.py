"""Per-tenant tallies of activity (service use, bed days, person-years in costly states)
and of rewards (QALYs, life years, years in good health), with discounting.

Costs are not tallied directly: each activity has a unit cost, so a cost is the tally times
its unit cost, uprated to one price year when results are summarised. Every tally has an
undiscounted and a discounted twin.

Timing. Events (a GP contact, a bed day) are discounted at the middle of the step they fall
in. State rewards (utility, being alive, being in good health, being in a costly state) are
valued at step boundaries and weighted by the reward-timing convention:

- ``start``: the value at the start of each step counts for the whole step;
- ``end``: the value at the end of each step counts for the whole step;
- ``half-cycle``: the mean of the two (trapezoid; the usual half-cycle correction);
- ``both-ends``: every boundary counts for a whole step, the start (t = 0) and the end
  (t = T) included: T + 1 values for T steps, as a cohort trace summed without correction;
- ``simpson``: Simpson's 1/3 rule, weights 1, 4, 2, 4, ..., 4, 1 thirds of a step; with
  an odd number of steps the last three take Simpson's 3/8 rule, and one step alone the
  trapezoid;
- given weights (``BoundaryWeights``): a weight for the first boundary, a pattern repeated
  over the boundaries between, and a weight for the last, each boundary counting for its own
  cycle (a trace summed with published weights, e.g. darthtools' ``gen_wcc``).

The discount clock starts at model start: a reward at time ``tau`` years has weight
``(1 + r) ** -tau``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hhsim.core.errors import HhsimError

PAYERS: tuple[str, ...] = ("nhs", "social_care", "housing_provider", "local_authority")
REWARDS: tuple[str, ...] = ("qalys", "life_years", "good_health_years")
REWARD_TIMINGS: tuple[str, ...] = ("start", "end", "half-cycle", "both-ends", "simpson")
#: Newton-Cotes panels of Simpson timing, by the steps they span: (boundary offset, cycle
#: offset, weight in steps) parts. Each boundary's weight is split between the cycles on
#: either side so that every cycle's parts add up to one step.
SIMPSON_PANELS: dict[int, tuple[tuple[int, int, float], ...]] = {
    1: ((0, 0, 1 / 2), (1, 0, 1 / 2)),  # trapezoid
    2: ((0, 0, 1 / 3), (1, 0, 2 / 3), (1, 1, 2 / 3), (2, 1, 1 / 3)),  # 1/3 rule: 1, 4, 1
    3: ((0, 0, 3 / 8), (1, 0, 5 / 8), (1, 1, 4 / 8), (2, 1, 4 / 8), (2, 2, 5 / 8),
        (3, 2, 3 / 8)),  # 3/8 rule: 3, 9, 9, 3
}


@dataclass(frozen=True)
class Activity:
    """Something tallied, with its unit cost when it costs money.

    Most activities are tallied per tenant (contacts, bed days, person-years in a costly
    state). An intervention's fixed costs (staff, in FTE-years) are one programme-level
    tally (``per_tenant = False``), shared out among the tenants it serves for results by
    group (``Ledger.share``).
    """

    name: str
    unit: str  # what one unit of the tally is, e.g. "contacts", "bed days", "person-years"
    unit_cost: float | None = None  # £ per unit, in price_year
    price_year: str | None = None
    payer: str | None = None
    cost_parameter: str | None = None  # dotted name of the unit-cost parameter
    whole: bool = True  # the tally only grows by whole numbers (counts, days)
    per_tenant: bool = True
    intervention: str | None = None  # the intervention whose cost this is (None: care use)

    def __post_init__(self) -> None:
        if self.payer is not None and self.payer not in PAYERS:
            raise HhsimError(self.name, f"unknown payer '{self.payer}'", f"use one of {list(PAYERS)}")


@dataclass(frozen=True)
class BoundaryWeights:
    """Given weights (in steps) of the values at the ``steps + 1`` step boundaries: ``first``
    at t = 0, ``repeat`` cycled over boundaries 1 to ``steps - 1``, ``last`` at t = ``steps``."""

    first: float
    repeat: tuple[float, ...]
    last: float

    def __post_init__(self) -> None:
        weights = (self.first, *self.repeat, self.last)
        if not self.repeat or not all(np.isfinite(w) and w >= 0 for w in weights):
            raise HhsimError("experiment.reward_timing", "weights must be numbers of at least 0, "
                             "with at least one in 'repeat'",
                             "give e.g. { first = 0.5, repeat = [1], last = 0.5 }")

    def at(self, steps: int) -> list[float]:
        """The weight of each of the ``steps + 1`` boundaries."""
        inside = [self.repeat[(b - 1) % len(self.repeat)] for b in range(1, steps)]
        return [self.first, *inside, self.last]


def discount_factor(rate: float, years: float) -> float:
    """Weight of a value at ``years`` after model start, discounted at ``rate`` a year."""
    return float((1.0 + rate) ** -years)


def reward_parts(timing: str | BoundaryWeights, steps: int) -> list[list[tuple[float, int]]]:
    """For each of the ``steps + 1`` step boundaries, the (weight in steps, cycle) parts its
    value counts for: the cycle starting there (``start``), the one ending there (``end``),
    half of each (``half-cycle``), its own cycle at every boundary, cycle T after the last
    step included (``both-ends``), Simpson's weights (``simpson``, ``SIMPSON_PANELS``), or
    given weights, each boundary in its own cycle (``BoundaryWeights``)."""
    if isinstance(timing, BoundaryWeights):
        return [[(w, b)] for b, w in enumerate(timing.at(steps))]
    if timing not in REWARD_TIMINGS:
        raise HhsimError("experiment.reward_timing", f"unknown timing '{timing}'",
                         f"use one of {list(REWARD_TIMINGS)}")
    if timing == "both-ends":
        return [[(1.0, b)] for b in range(steps + 1)]
    if timing == "simpson":
        return _simpson_parts(steps)
    parts: list[list[tuple[float, int]]] = []
    for b in range(steps + 1):
        ending = [(1.0, b - 1)] if timing == "end" else [(0.5, b - 1)] if timing == "half-cycle" else []
        starting = [(1.0, b)] if timing == "start" else [(0.5, b)] if timing == "half-cycle" else []
        parts.append([p for p in ending if b >= 1] + [p for p in starting if b < steps])
    return parts


def _simpson_parts(steps: int) -> list[list[tuple[float, int]]]:
    """Simpson's 1/3 rule over pairs of steps; an odd number of steps ends with one 3/8
    panel over the last three (one step alone: the trapezoid)."""
    spans = [1] if steps == 1 else [2] * (steps // 2 - steps % 2) + [3] * (steps % 2)
    parts: list[list[tuple[float, int]]] = [[] for _ in range(steps + 1)]
    first = 0
    for span in spans:
        for b, c, w in SIMPSON_PANELS[span]:
            parts[first + b].append((w, first + c))
        first += span
    return parts


def boundary_weights(timing: str | BoundaryWeights, steps: int) -> np.ndarray:
    """Weight (in steps) of the value at each of the ``steps + 1`` step boundaries."""
    return np.array([sum(w for w, _ in parts) for parts in reward_parts(timing, steps)])


class Ledger:
    """Tallies for each activity and reward, undiscounted and discounted.

    Per-tenant undiscounted tallies of whole-number activities are uint16 (a tenant cannot
    reach 65,535 contacts or bed days in a run); the rest are float32. Only activities with
    a unit cost have a discounted tally (the others are counts that are never costed).
    Programme-level activities have one float64 tally. ``totals`` are running undiscounted
    totals for the population represented (each tenant counts for its ``weight``).
    """

    def __init__(self, n: int, activities: Iterable[Activity], rewards: Iterable[str] = REWARDS,
                 weight: np.ndarray | None = None) -> None:
        activities = list(activities)
        self.n = n
        self.per_tenant = {a.name: a.per_tenant for a in activities}
        self.count = {a.name: np.zeros(n, dtype=np.uint16 if a.whole else np.float32)
                      if a.per_tenant else np.zeros(1) for a in activities}
        self.count_disc = {a.name: np.zeros(n, dtype=np.float32) if a.per_tenant else np.zeros(1)
                           for a in activities if a.unit_cost is not None}
        self.reward = {r: np.zeros(n, dtype=np.float32) for r in rewards}
        self.reward_disc = {r: np.zeros(n, dtype=np.float32) for r in self.reward}
        self.totals = dict.fromkeys(self.count, 0.0)
        # None when every tenant counts once: totals are then plain sums.
        self.weight = None if weight is None or np.all(weight == 1) else weight.astype(np.float32)
        # Programme-level tallies shared out among the tenants served, per person represented
        # (undiscounted, discounted), and the tally already shared.
        programme = [a.name for a in activities if not a.per_tenant and a.unit_cost is not None]
        self.shared = {a: (np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)) for a in programme}
        self._shared_upto = dict.fromkeys(programme, (0.0, 0.0))

    def add(self, activity: str, idx: np.ndarray | None, amount: np.ndarray | float,
            weight: float) -> None:
        """Add ``amount`` of an activity to tenants ``idx`` (unique; all slots when None),
        discounted with ``weight``. A programme-level activity takes one amount, idx None."""
        count, disc = self.count[activity], self.count_disc.get(activity)
        if not self.per_tenant[activity]:
            count[0] += float(amount)
            if disc is not None:
                disc[0] += float(amount) * weight
            self.totals[activity] += float(amount)
            return
        amount = np.asarray(amount, dtype=np.float32)
        w = np.float32(weight)
        if idx is None:
            np.add(count, amount, out=count, casting="unsafe")
            if disc is not None:
                disc += amount * w
        else:
            count[idx] = count[idx] + amount
            if disc is not None:
                disc[idx] += amount * w
        self.totals[activity] += self._weighted_sum(amount, idx)

    def _weighted_sum(self, amount: np.ndarray, idx: np.ndarray | None) -> float:
        n = self.n if idx is None else idx.size
        if self.weight is None:
            return float(amount.sum(dtype=np.float64)) if amount.ndim else float(amount) * n
        w = self.weight if idx is None else self.weight[idx]
        return float((w * amount).sum(dtype=np.float64))

    def total(self, activity: str, weight: np.ndarray, discounted: bool = False) -> float:
        """The tally for the population represented (tenant tallies times ``weight``)."""
        tally = (self.count_disc if discounted else self.count)[activity]
        if not self.per_tenant[activity]:
            return float(tally[0])
        return float((weight * tally).sum())

    def share(self, activities: Iterable[str], idx: np.ndarray) -> None:
        """Share what programme-level ``activities`` have tallied since they were last
        shared among tenants ``idx`` (those an intervention serves this month), equally per
        person represented. With nobody served, it waits for the next tenants served."""
        if not idx.size:
            return
        people = float(self.weight[idx].sum(dtype=np.float64)) if self.weight is not None else float(idx.size)
        if people <= 0:
            return
        for a in activities:
            count, disc = float(self.count[a][0]), float(self.count_disc[a][0])
            done, done_disc = self._shared_upto[a]
            undisc_to, disc_to = self.shared[a]
            undisc_to[idx] += np.float32((count - done) / people)
            disc_to[idx] += np.float32((disc - done_disc) / people)
            self._shared_upto[a] = (count, disc)

    def shared_tally(self, activity: str, weight: np.ndarray, discounted: bool) -> np.ndarray:
        """Per tenant (per person represented), the programme-level ``activity`` shared out
        to it; what no tenant was served for afterwards goes to those served before, in
        proportion to their shares, or with nobody ever served to everyone equally, so the
        shares always add up to the programme's tally (``weight``: people per tenant)."""
        tally = self.shared[activity][1 if discounted else 0].astype(np.float64)
        total = float((self.count_disc if discounted else self.count)[activity][0])
        given = float((weight * tally).sum())
        left = total - given
        if abs(left) <= 1e-9 * max(abs(total), 1.0):
            return tally
        if given > 0:
            return tally * (total / given)
        return np.full(tally.size, total / float(weight.sum()))

    def add_reward(self, reward: str, value: np.ndarray, years: float, weight: float) -> None:
        """Add ``value`` (per year, all slots) held for ``years`` with discount ``weight``."""
        self.reward[reward] += np.float32(years) * value
        self.reward_disc[reward] += np.float32(years * weight) * value

    def nbytes(self) -> int:
        parts = (self.count, self.count_disc, self.reward, self.reward_disc)
        return sum(a.nbytes for d in parts for a in d.values())
