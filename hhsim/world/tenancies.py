"""Tenancies that turn over: tenancies end, homes stand void, new households arrive.

An open population (``[population] turnover = true``; off by default, a closed cohort).
Each month, before the housing pathway and interventions act, in every home of a tenure
whose tenancies turn over (``world.tenancies``: by default social renting only):

1. a tenancy whose last adult died last month ends (reason ``death``); any children leave;
2. every other tenancy ends with the monthly probabilities of ``world.tenancies.move``,
   ``.transfer`` and ``.eviction`` (one uniform per dwelling from the named stream
   ``world:tenancy_end``); its living members leave: ``alive`` becomes False (they are no
   longer tenants: no more health events, costs or QALYs) and ``left_month`` records when.
   A household with someone in hospital or another place of care leaves a later month;
   Grown-up children (who were children at the start or on the list) aged 18 or more, at
   home, leave home with the monthly probability ``world.tenancies.leave_home`` (one uniform
   per slot from ``world:leave_home``); their household's tenancy goes on. Everyone who
   leaves, children left alone by a death included, counts in ``people_left``;
3. the home stands void for whole months, at least one (geometric, mean
   ``void_days`` / 30.44; one uniform per dwelling from ``world:void``);
4. homes whose void is over are let, in dwelling order, to the next households of the
   waiting list, in list order, so the k-th letting of a run receives the same household
   in every arm. The newcomers' ``alive`` becomes True and they take the home's tenure,
   area and hazards.

The waiting list is drawn at set-up (``with_waiting_list``) into slots after the starting
tenants, with ``alive = False`` until they arrive (they do not age while waiting): households
of the tenure's sizes, adults of ``world.tenancies.age``, a share ``homeless_share`` of
households arriving from temporary accommodation (their health at arrival is drawn as for
it). Their health states are drawn at set-up with everyone else's. The list is sized for
the horizon with a margin (``LIST_MARGIN``); were it to run out, the homes wait, counted as
``unlet_no_applicant``.

Flows are counted by model year (``FLOWS``): tenancies ended by reason, lettings, lettings to
homeless households, people leaving and arriving, void dwelling-months, voids let and their
months. Only monthly models with the synthetic population turn over in this version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import to_parameter
from hhsim.world.children import is_child, with_children
from hhsim.world.population import HOME, NO_DAY, TENURES, Population
from hhsim.world.synthetic import generate, world_value

if TYPE_CHECKING:
    from hhsim.model.simulation import HousingHealthModel

END_STREAM = "world:tenancy_end"
VOID_STREAM = "world:void"
LIST_KEY = "world:waiting_list"  # the generator of the waiting list (structure, not outcomes)
REASONS = ("move", "transfer", "eviction")  # ending other than by death, with a monthly rate
DAYS_PER_MONTH = 365.25 / 12
#: Waiting-list households drawn per expected letting over the horizon (the expected count
#: leaves out tenancies ended by death, about 14-16% of relets, and chance: 1.3 leaves about
#: 12% of the list unused for 20,000 social renters over 10 years).
LIST_MARGIN = 1.3
LIST_EXTRA = 20  # households added to the list whatever its expected length
TEMPORARY = TENURES.index("temporary_accommodation")
FLOWS = ("ended_move", "ended_transfer", "ended_eviction", "ended_death", "lettings",
         "lettings_homeless", "people_left", "people_arrived", "left_home", "void_dwelling_months",
         "voids_let_months", "unlet_no_applicant")
LEAVE_STREAM = "world:leave_home"
LEAVE_HOME_AGE = 18  # years: from this age a grown-up child may leave home (world.tenancies.leave_home)


@dataclass(frozen=True)
class TenancySettings:
    """``world.tenancies``: rates (REASONS x TENURES, probability per month), the mean void
    (days), the share of lettings to homeless households and the ages of new adults (shares
    by ``world.age.breaks``)."""

    rates: np.ndarray
    void_days: float
    homeless_share: float
    age: np.ndarray
    leave_home: float = 0.0  # probability per month that a grown-up child leaves home

    @property
    def turning(self) -> np.ndarray:
        """Boolean by tenure: its tenancies end at some rate."""
        return self.rates.sum(axis=0) > 0


def _number(node: Mapping[str, Any], key: str, where: str, unit: str) -> Any:
    if key not in node:
        raise HhsimError(f"{where}.{key}", "is missing", "restore the default entry")
    p = to_parameter(f"{where}.{key}", node[key])
    if p.unit != unit:
        raise HhsimError(f"{where}.{key}", f"has unit '{p.unit}'", f'use unit = "{unit}"')
    return p.value


def parse_tenancies(world: Mapping[str, Any]) -> TenancySettings:
    """``world.tenancies`` checked (one-line errors); a tenure without a rate does not turn over."""
    where = "world.tenancies"
    node = world.get("world", {}).get("tenancies")
    if not isinstance(node, Mapping):
        raise HhsimError(where, "is missing", "restore the default entries")
    rates = np.zeros((len(REASONS), len(TENURES)))
    for r, reason in enumerate(REASONS):
        by_tenure = node.get(reason, {})
        for tenure in by_tenure:
            if tenure not in TENURES:
                raise HhsimError(f"{where}.{reason}.{tenure}", "is not a tenure",
                                 f"use one of {', '.join(TENURES)}")
            rates[r, TENURES.index(tenure)] = float(_number(by_tenure, tenure, f"{where}.{reason}",
                                                            "probability per month"))
    if (rates < 0).any() or (rates.sum(axis=0) > 1).any():
        raise HhsimError(where, "rates must be probabilities that sum to at most 1 per tenure",
                         "give monthly probabilities between 0 and 1")
    void = float(_number(node, "void_days", where, "days"))
    if not DAYS_PER_MONTH <= void <= 3650:
        raise HhsimError(f"{where}.void_days", f"must be from {DAYS_PER_MONTH:.2f} (one month) to 3650, "
                         f"got {void:g}", "give the mean days a home stands empty, e.g. 50")
    homeless = float(_number(node, "homeless_share", where, "share of lettings"))
    if not 0 <= homeless <= 1:
        raise HhsimError(f"{where}.homeless_share", f"must be between 0 and 1, got {homeless:g}",
                         "give a share")
    age = np.asarray(_number(node, "age", where, "share of adults"), dtype=float)
    if age.shape != (len(world["world"]["age"]["breaks"]),) or (age < 0).any() or abs(age.sum() - 1) > 0.005:
        raise HhsimError(f"{where}.age", "must be one share per break of world.age.breaks, summing to 1",
                         "give the shares of new adults by age band")
    leave = float(_number(node, "leave_home", where, "probability per month"))
    if not 0 <= leave <= 1:
        raise HhsimError(f"{where}.leave_home", f"must be a probability, got {leave:g}", "give e.g. 0.0139")
    return TenancySettings(rates, void, homeless, age / age.sum(), leave)


def with_waiting_list(pop: Population, world: Mapping[str, Any], settings: TenancySettings, months: int,
                      rng: np.random.Generator, children: bool = False) -> tuple[Population, np.ndarray]:
    """``pop`` with the waiting list appended (``alive = False``) and, per list household in
    list order, whether it arrives from homelessness. The list's households are those of the
    first turning tenure (social renting by default), in its sizes, with their children when
    ``children`` (drawn where they wait: none in temporary accommodation)."""
    turning = np.flatnonzero(settings.turning)
    if not turning.size:
        raise HhsimError("world.tenancies", "no tenure has a rate",
                         "give social_rented a rate, or turn turnover off")
    tenure = TENURES[int(turning[0])]
    homes = int(np.isin(pop.dwellings.tenure, turning).sum())
    monthly = float(settings.rates[:, turning].max(axis=1).sum())
    households = int(np.ceil(homes * months * monthly * LIST_MARGIN)) + LIST_EXTRA
    sizes = world_value(world, f"world.household_adults.{tenure}")
    adults = int(np.ceil(households * float(np.dot(sizes / sizes.sum(), np.arange(1, sizes.size + 1)))))
    ages = dict(world["world"]["age"])
    ages[tenure] = {"value": settings.age.tolist(), "unit": "share of adults", "status": "D",
                    "source": "world.tenancies.age"}
    newcomers = {**world, "world": {**world["world"], "age": ages}}
    waiting = generate(adults, np.eye(len(TENURES))[turning[0]], newcomers, rng)
    homeless = rng.random(waiting.dwellings.n) < settings.homeless_share
    waiting.dwellings.tenure[homeless] = TEMPORARY  # where they wait: their health is drawn there
    waiting.dwellings.hazards[homeless] = 0
    waiting.refresh_from_dwellings()
    if children:
        waiting = with_children(waiting, world, rng)
    waiting.alive[:] = False
    return pop.extended(waiting), homeless


def empty_table() -> dict[str, np.ndarray]:
    """The columns of the flows table (``Tenancies.table``) with no year: a closed cohort's."""
    return {"year": np.zeros(0, dtype=np.int16), "homes": np.zeros(0), **{f: np.zeros(0) for f in FLOWS}}


class Tenancies:
    """The monthly rule (module docstring); inactive (nothing drawn) in a closed cohort."""

    def __init__(self, model: HousingHealthModel, settings: TenancySettings | None, first_waiting: int,
                 homeless: np.ndarray) -> None:
        pop = model.pop
        self.model = model
        self.active = settings is not None
        if settings is None:
            return
        self.left_month = np.full(pop.n, -1, dtype=np.int32)
        self.arrived_month = np.full(pop.n, -1, dtype=np.int32)
        self.arrived_month[:first_waiting] = 0
        self.settings = settings
        nd = pop.dwellings.n
        waiting_homes = np.unique(pop.dwelling[first_waiting:])
        self.stock = settings.turning[pop.dwellings.tenure]  # homes that turn over, fixed at set-up
        self.stock[waiting_homes] = False
        self.let = self.stock & (np.bincount(pop.dwelling, weights=pop.alive, minlength=nd) > 0)
        self.ended_month = np.full(nd, -1, dtype=np.int32)
        self.ready_month = np.full(nd, NO_DAY, dtype=np.int32)
        self.cumulative = np.cumsum(settings.rates[:, pop.dwellings.tenure], axis=0).astype(np.float32)
        self.cumulative[:, ~self.stock] = 0
        self.void_p = DAYS_PER_MONTH / settings.void_days  # geometric: mean 1 / p months
        # the waiting list: households in order, each one's members (slots) in order
        members = np.arange(first_waiting, pop.n)
        order = np.argsort(pop.dwelling[members], kind="stable")
        self.list_members = members[order]
        _, self.list_sizes = np.unique(pop.dwelling[self.list_members], return_counts=True)
        self.list_first = np.concatenate([[0], np.cumsum(self.list_sizes)[:-1]])
        self.homeless = homeless
        self.grew_up = is_child(pop)  # children at the start or on the list: they may leave home later
        self.next_household = 0
        years = -(-model.config.steps * model.health.cycle_months // 12)
        self.flows = np.zeros((max(years, 1), len(FLOWS)))

    def _add(self, t: int, flow: str, amount: float) -> None:
        self.flows[t // 12, FLOWS.index(flow)] += amount

    def step(self, t: int) -> None:
        """This month's endings, voids and lettings (nothing, and no draw, when inactive)."""
        if not self.active:
            return
        pop, nd = self.model.pop, self.model.pop.dwellings.n
        living = np.bincount(pop.dwelling, weights=pop.alive & ~is_child(pop), minlength=nd)
        died_out = np.flatnonzero(self.let & (living == 0))
        self._depart(t, np.flatnonzero(pop.alive & np.isin(pop.dwelling, died_out)))  # children left alone
        in_care = pop.alive & (self.model.hospital.location != HOME)
        away = np.bincount(pop.dwelling, weights=in_care, minlength=nd)
        u = self.model.streams.generator(END_STREAM, t).random(nd, dtype=np.float32)
        leaving = np.flatnonzero(self.let & (living > 0) & (away == 0) & (u < self.cumulative[-1]))
        reason = (u[leaving, None] >= self.cumulative[:-1, leaving].T).sum(axis=1)
        for r, name in enumerate(REASONS):
            self._add(t, f"ended_{name}", float((reason == r).sum()))
        self._add(t, "ended_death", float(died_out.size))
        ending = np.zeros(nd, dtype=bool)
        ending[leaving] = True
        self._depart(t, np.flatnonzero(pop.alive & ending[pop.dwelling]))

        self._leave_home(t)
        ended = np.concatenate([died_out, leaving])
        uv = self.model.streams.generator(VOID_STREAM, t).random(nd)[ended]
        void = 1 + (np.floor(np.log1p(-uv) / np.log1p(-self.void_p)) if self.void_p < 1 else 0)
        self.let[ended] = False
        self.ended_month[ended] = t
        self.ready_month[ended] = t + void.astype(np.int32)
        self._let(t)
        self._add(t, "void_dwelling_months", float((self.stock & ~self.let).sum()))

    def _leave_home(self, t: int) -> None:
        """Grown-up children (aged ``LEAVE_HOME_AGE`` or more, at home) leave with the monthly
        probability ``leave_home`` (one uniform per slot from ``world:leave_home``)."""
        pop = self.model.pop
        if self.settings.leave_home <= 0:
            return
        u = self.model.streams.generator(LEAVE_STREAM, t).random(pop.n, dtype=np.float32)
        at_home = pop.alive & (self.model.hospital.location == HOME)
        going = np.flatnonzero(self.grew_up & at_home & (pop.age_years >= LEAVE_HOME_AGE)
                               & (u < self.settings.leave_home))
        self._add(t, "left_home", self._depart(t, going))

    def _depart(self, t: int, idx: np.ndarray) -> float:
        """The people ``idx`` leave the stock this month (no longer tenants: no more health
        events, costs or QALYs), counted in ``people_left``; the people they represent."""
        pop = self.model.pop
        pop.alive[idx] = False
        self.left_month[idx] = t
        self.model.hospital.next_day[idx] = NO_DAY
        people = float(pop.weight[idx].sum(dtype=np.float64))
        self._add(t, "people_left", people)
        return people

    def _let(self, t: int) -> None:
        """Let the homes whose void is over to the next households of the list."""
        ready = np.flatnonzero(~self.let & (self.ready_month <= t))
        take = min(ready.size, self.list_sizes.size - self.next_household)
        self._add(t, "unlet_no_applicant", float(ready.size - take))
        if not take:
            return
        homes = ready[:take]
        households = np.arange(self.next_household, self.next_household + take)
        self.next_household += take
        sizes = self.list_sizes[households]
        starts = np.repeat(self.list_first[households] - np.cumsum(sizes) + sizes, sizes)
        arriving = self.list_members[starts + np.arange(sizes.sum())]
        pop = self.model.pop
        pop.dwelling[arriving] = np.repeat(homes, sizes)
        if pop.household is not pop.dwelling:
            pop.household[arriving] = pop.dwelling[arriving]
        pop.alive[arriving] = True
        self.arrived_month[arriving] = t
        pop.refresh_from_dwellings(arriving)
        self.model.health.profiles.refresh(pop, static=arriving, everyone=False)
        self.let[homes] = True
        self.ready_month[homes] = NO_DAY
        self._add(t, "lettings", float(take))
        self._add(t, "lettings_homeless", float(self.homeless[households].sum()))
        self._add(t, "people_arrived", float(pop.weight[arriving].sum(dtype=np.float64)))
        self._add(t, "voids_let_months", float((t - self.ended_month[homes]).sum()))

    @property
    def ever_tenant(self) -> np.ndarray:
        """Boolean per slot: a tenant at some time in the run (the starting tenants, and the
        newcomers who arrived)."""
        return self.arrived_month >= 0

    def table(self) -> dict[str, np.ndarray]:
        """Flows by model year (``FLOWS``; households, people, dwelling-months), and the homes
        that turn over (``homes``): ``empty_table`` when inactive."""
        if not self.active:
            return empty_table()
        years = self.flows.shape[0]
        return {"year": np.arange(1, years + 1, dtype=np.int16),
                "homes": np.full(years, float(self.stock.sum())),
                **{f: self.flows[:, k] for k, f in enumerate(FLOWS)}}

    def record(self) -> dict[str, float]:
        """Flows over the run, ``tenancy_<flow>`` (empty when inactive)."""
        if not self.active:
            return {}
        out = {f"tenancy_{f}": float(self.flows[:, k].sum()) for k, f in enumerate(FLOWS)}
        out["tenancy_waiting_list_unused"] = float(self.list_sizes.size - self.next_household)
        return out
