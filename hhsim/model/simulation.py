"""``HousingHealthModel``: the month-by-month simulation of one arm of one replication.

A step (one month, or one year for yearly-cycle models), in order:

0. dwelling hazards come and go: onsets, reports and routine repairs (off for a cohort;
   ``hhsim.world.hazard_dynamics``); tenancies that turn over (off in a closed cohort;
   ``hhsim.world.tenancies``): tenancies end, homes stand void, homes are let to households
   of the waiting list; then the baseline housing pathway of people experiencing
   homelessness (off when nobody is
   homeless; ``hhsim.world.housing_pathway``); then interventions (monthly models): each
   provider agent does its month (referrals, queues, admissions within capacity, exits,
   works completed; the month's intervention costs), in the order they were set up;
   effects for this month are set;
1. health chains: every living tenant's exits compete (death is an exit of the mortality
   chain); deaths get a day within the step (with ``[model] cycle_age = "end"``, ages first
   advance, so that this step's rates read the age at its end);
2. hospital: admissions, stays, delays and readmissions, in days (monthly models);
3. community services: Poisson counts for the share of the step spent at home;
4. wellbeing moves toward its target;
5. transitions and deaths take effect; clocks, time in state and ages advance; profiles refresh;
6. rewards are valued at the new step boundary; monthly aggregates are collected.

Tenants are arrays (``hhsim.world.population``), not agents. Mesa provides the model
lifecycle, its own generator (seeded from its own child seed, never used for tenant
outcomes), the agents (the interventions' providers, ``providers``: stepped in a fixed
order, never shuffled) and the ``DataCollector``, whose reporters read the model as each
step ends (``_reporters``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mesa
import numpy as np

from hhsim.core.accounting import PAYERS, BoundaryWeights, Ledger, discount_factor, reward_parts
from hhsim.core.costing import uprating_factor
from hhsim.core.errors import HhsimError
from hhsim.core.randomness import MESA_KEY, POPULATION_KEY, Streams, poisson_from_uniform, run_spawn_key
from hhsim.health.calendar import DAYS_IN_MONTH, calendar_month, set_month
from hhsim.health.checks import start_checks
from hhsim.health.hospital import DAY_TALLIES, Hospital, MonthWindow
from hhsim.health.model_file import HealthModel, calibrated_model
from hhsim.health.rates import Probability, Rate, RateStack
from hhsim.health.terms import MAX_AGE
from hhsim.interventions import build, model_context, parse_arm
from hhsim.interventions.base import Intervention, Settings
from hhsim.interventions.provider import Provider
from hhsim.model.census import Census
from hhsim.model.groups import Baseline
from hhsim.model.high_users import HighUsers
from hhsim.world.children import CHILDREN_KEY, is_child, with_children
from hhsim.world.cohort import cohort_population, parse_cohort
from hhsim.world.hazard_dynamics import HazardDynamics
from hhsim.world.housing_pathway import HousingPathway, is_homeless, parse_pathway
from hhsim.world.population import DECILES, NO_DAY, Population
from hhsim.world.profile import poststratify, read_profile
from hhsim.world.recent_use import RecentUse
from hhsim.world.stock import load_stock
from hhsim.world.synthetic import generate, tenure_mix
from hhsim.world.tenancies import LIST_KEY, Tenancies, parse_tenancies, with_waiting_list


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run: pure data, cheap to send to a worker."""

    model_tree: Mapping[str, Any]
    world_tree: Mapping[str, Any]  # the simulated population's marginals (arm overrides included)
    tenants: int
    tenure: Mapping[str, float]
    steps: int
    seed: int
    replication: int = 0
    discount_costs: float = 0.035
    discount_effects: float = 0.035
    reward_timing: str | BoundaryWeights = "half-cycle"
    start_month: int = 4
    arm: str = "baseline"
    stock: str | None = None  # path of a provider's stock file (read by each run)
    profile: str | None = None  # path of a local profile to weight the tenants to a place
    cohort: Mapping[str, Any] | None = None  # identical tenants (hhsim.world.cohort), e.g. {age, sex}
    turnover: bool = False  # tenancies end, homes are relet (hhsim.world.tenancies); False: closed
    children: bool | None = None  # households' children (hhsim.world.children); None: if the model has them
    census: bool = False  # keep the census table (hhsim.model.census): states and use by current age
    high_users: Mapping[str, Any] | None = None  # follow a high-use cohort (hhsim.model.high_users)
    # England as observed, against which national rates are de-averaged: an arm's scenario
    # changes to world parameters must not move it. None means ``world_tree``.
    reference_world_tree: Mapping[str, Any] | None = None
    # The arm's interventions, each resolved over its type's defaults (hhsim.interventions).
    interventions: tuple[Mapping[str, Any], ...] = ()
    price_year: str = "2023/24"  # prices that budgets are compared in
    # Compiled from model_tree and interventions when the plan was compiled (None: compiled
    # here, as for a parameter point of a sweep).
    health: HealthModel | None = None
    settings: tuple[Settings, ...] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Sent to a worker without the compiled model (its rules are closures, which do not
        pickle): the worker compiles ``model_tree`` once and keeps it (``calibrated_model``)."""
        return {**self.__dict__, "health": None}


#: What ``HousingHealthModel.life_table`` counts, by sex, IMD decile and age.
LIFE_TABLE = ("person_years", "good_health_years", "deaths")
#: Monthly table columns of hospital use, summed over admission types: the tally of each.
ADMISSION_COLUMNS = {"admissions": "admissions", "bed_days": "bed_days", "delayed_days": "delayed_days",
                     "readmissions": "readmissions_30d"}
#: Monthly table columns of money spent: on NHS care besides interventions, on interventions,
#: and by each payer (interventions included).
COST_COLUMNS = ("cost:nhs_care", "cost:interventions", *(f"cost:{p}" for p in PAYERS))


def hazard_homes(pop: Population) -> float:
    """Occupied dwellings with at least one hazard, each counted as the mean weight of its
    occupants (the homes a weighted population represents)."""
    d = pop.dwelling
    people = np.bincount(d, minlength=pop.dwellings.n)
    weight = np.bincount(d, weights=pop.weight.astype(np.float64), minlength=pop.dwellings.n)
    occupied = people > 0
    mean_weight = np.divide(weight, people, out=np.zeros_like(weight), where=occupied)
    return float(mean_weight[occupied & (pop.dwellings.hazards != 0)].sum())


class HousingHealthModel(mesa.Model):
    """One run: a population of tenants evolving step by step under one arm's policies."""

    def __init__(self, config: RunConfig) -> None:
        spawn_key = run_spawn_key(config.replication)
        self.streams = Streams(config.seed, spawn_key, 0)
        mesa_seed = int(self.streams.seed_sequence(MESA_KEY).generate_state(1)[0])
        super().__init__(rng=mesa_seed)
        self.config = config
        self.health: HealthModel = calibrated_model(config.model_tree,
                                                    config.reference_world_tree or config.world_tree,
                                                    config.health)
        rng = self.streams.generator(POPULATION_KEY)
        self.with_children = self._children(config)
        given: dict[str, np.ndarray] = {}
        self.people_moved = 0.0
        if config.cohort is not None and (config.stock or config.profile):
            raise HhsimError("population.cohort", "cannot be used with a stock file or a profile",
                             "give the cohort, or the stock file or profile, not both")
        if config.cohort is not None:
            self.pop = cohort_population(config.tenants, parse_cohort(config.cohort), config.world_tree)
        elif config.profile is not None:
            profile = read_profile(config.profile)
            self.pop: Population = generate(config.tenants, tenure_mix(profile.tenure_mix()),
                                            profile.world(config.world_tree), rng, every_tenure=True)
            self.people_moved = poststratify(self.pop, profile)
        elif config.stock is None:
            self.pop = generate(config.tenants, tenure_mix(config.tenure), config.world_tree, rng)
        else:
            chains = {n: c.states for n, c in self.health.chains.items()}
            self.pop, given, self.stock_report = load_stock(config.stock, config.world_tree, chains, rng)
        if self.with_children:
            adults = self.pop.n
            self.pop = with_children(self.pop, config.world_tree, self.streams.generator(CHILDREN_KEY))
            given = {k: np.concatenate([v, np.full(self.pop.n - adults, -1, dtype=v.dtype)])
                     for k, v in given.items()}  # children's states are drawn
        child = is_child(self.pop)
        self.simulated = {"tenants": int((~child).sum()), "children": int(child.sum())}  # at the start
        tenancies, first_waiting, homeless = None, self.pop.n, np.zeros(0, dtype=bool)
        if config.turnover:
            if config.cohort is not None or config.stock or config.profile:
                raise HhsimError("population.turnover", "works only with the synthetic population in this "
                                 "version", "remove the cohort, stock file or profile, or turnover")
            if self.health.cycle_months != 1:
                raise HhsimError("population.turnover", "needs a monthly model", "set turnover = false")
            tenancies = parse_tenancies(config.world_tree)
            self.pop, homeless = with_waiting_list(self.pop, config.world_tree, tenancies, config.steps,
                                                   self.streams.generator(LIST_KEY), self.with_children)
        self.streams.n = self.pop.n
        self.housing = HazardDynamics(self, config.world_tree, active=config.cohort is None,
                                      given=self.stock_report.hazards_given if config.stock else None)
        self.health.initialise(self.pop, self.streams, given)
        self.baseline = Baseline.of(self.pop, {n: c.states for n, c in self.health.chains.items()})
        starting = self.pop if tenancies is None else self.pop.take(np.arange(first_waiting))
        self.start_checks = start_checks(starting, self.health, config.world_tree)
        self.hazard_homes = hazard_homes(starting)
        self.pathway = HousingPathway(self, parse_pathway(config.world_tree))
        self.tenancies = Tenancies(self, tenancies, first_waiting, homeless)
        # Weighted person-years, years in good health and deaths by sex, IMD decile and age
        # (a period life table by decile; person-years count the whole step for everyone
        # alive at its start).
        self.life_table = np.zeros((len(LIFE_TABLE), 2, DECILES, MAX_AGE + 1))
        settings = config.settings
        if settings is None:
            context = model_context(self.health, config.price_year, config.steps)
            settings = tuple(parse_arm(list(config.interventions), context, f"arms.{config.arm}"))
        self.interventions: list[Intervention] = build(settings, self)
        tracked = [s.name for s in self.health.services if s.track_recent]
        tracked += ["admissions"] if self.health.admissions else []
        tracked += [s for iv in self.interventions for s in iv.services_to_track()]
        self.pop.recent_use = RecentUse(self.pop.n, list(dict.fromkeys(tracked)))
        self._tracked = {s.name for s in self.health.services if s.name in self.pop.recent_use.services}
        self.hospital = Hospital(self.health.admissions, self.health.admission_stack, self.pop.n,
                                 effect=self.effect)
        self.activities = {a.name: a for a in self.health.activities}
        if self.health.admissions:  # where the days of life are spent: home, hospital, a unit
            self.activities.update({a.name: a for a in DAY_TALLIES})
        self.activities.update({a.name: a for iv in self.interventions for a in iv.activities()})
        self.ledger = Ledger(self.pop.n, self.activities.values(), weight=self.pop.weight)
        # Each intervention's programme-level costs, shared among the tenants it serves.
        self._programme_costs = {iv.name: [a.name for a in iv.activities() if a.name in self.ledger.shared]
                                 for iv in self.interventions}
        # £ per unit of each costed activity in the experiment's prices, for monthly cash.
        self._prices = {a.name: a.unit_cost * uprating_factor(a.price_year, config.price_year)
                        for a in self.activities.values() if a.unit_cost is not None}
        nhs = {a.name for a in self.activities.values() if a.payer == "nhs"}
        self.census = (Census(self.health, self.ledger, config.steps, self._prices, nhs)
                       if config.census else None)
        self.high_users = (HighUsers(config.high_users, self.ledger, config.steps)
                           if config.high_users is not None else None)
        self.effects: dict[str, np.ndarray] = {}  # rate name -> per-tenant multiplier
        self.wellbeing_shift: np.ndarray | None = None  # points added to wellbeing targets
        for iv in self.interventions:
            iv.start()
            if not any(p.work == iv.step for p in self.providers):
                Provider(self, iv.name, work=iv.step)  # a type without a provider of its own
        self.month = 0  # steps completed
        self.death_month = np.full(self.pop.n, -1, dtype=np.int32)  # step each tenant died in
        self.day = 0  # first day of the current step, days since model start
        self._parts = reward_parts(config.reward_timing, config.steps)
        # Ledger totals at the end of the step before last and of the last step; at the start,
        # before the start boundary is valued (the first step carries what it adds).
        self._totals_before = self._totals_after = dict(self.ledger.totals)
        self.mean_utility = self._value_boundary(0)  # of the living people represented (NaN: none)
        self.people_in_state = self.health.people_in_state(self.pop)  # by chain, living
        self.datacollector = mesa.DataCollector(model_reporters=self._reporters() | self.housing.reporters())

    # -- helpers ---------------------------------------------------------------------------
    @property
    def person_years(self) -> np.ndarray:
        """Weighted person-years by sex (male, female) and year of age."""
        return self.life_table[0].sum(axis=1)

    def _life_cells(self) -> np.ndarray:
        """Each tenant's cell of ``life_table``: sex, IMD decile and age at the step's start."""
        pop = self.pop
        return ((pop.female.view(np.int8).astype(np.intp) * DECILES + pop.deprivation.astype(np.intp) - 1)
                * (MAX_AGE + 1) + np.minimum(pop.age_years, MAX_AGE))

    def intervention(self, name: str) -> Intervention:
        """The arm's intervention called ``name``."""
        return next(iv for iv in self.interventions if iv.name == name)

    @property
    def providers(self) -> mesa.agent.AgentSet:
        """The interventions' providers (Mesa agents) in the order they step: the order they
        were set up, i.e. the arm's order of interventions, each one's providers in the order
        it set them up."""
        return self.agents.select(agent_type=Provider).sort("unique_id", ascending=True)

    @property
    def dt(self) -> float:
        """Step length in years."""
        return self.health.cycle_years

    @property
    def cost_discount(self) -> float:
        """Discount factor of the current step's costs (at the middle of the step)."""
        return discount_factor(self.config.discount_costs, (self.month + 0.5) * self.dt)

    def step_days(self, step: int) -> int:
        if self.health.cycle_months == 12:
            return 365
        return DAYS_IN_MONTH[calendar_month(self.config.start_month, step)]

    def _children(self, config: RunConfig) -> bool:
        """Whether the population includes households' children: as the experiment says, or
        when the model describes children and the population is not a cohort."""
        if config.children is None:  # a stock file or a profile lists its people: children if asked
            return self.health.children and config.cohort is None and not (config.stock or config.profile)
        if config.children and not self.health.children:
            raise HhsimError("population.children", f"the model '{self.health.name}' does not describe "
                             "children (no [model] children = true)",
                             "remove children, or use a model with them")
        if config.children and config.cohort is not None:
            raise HhsimError("population.children", "cannot be used with a cohort", "remove children")
        return config.children

    def effect(self, rate: Rate | Probability, idx: np.ndarray | None) -> np.ndarray | None:
        """Intervention multiplier of ``rate`` (or odds multiplier of a probability) for tenants
        ``idx`` (all slots when None): its own effects, times those on a rate's parent (an
        admission cause's type)."""
        effect = self.effects.get(rate.name)
        parent = (self.effects.get(rate.parent)
                  if isinstance(rate, Rate) and rate.parent is not None else None)
        if parent is not None:
            effect = parent if effect is None else effect * parent
        if effect is None:
            return None
        return effect if idx is None else effect[idx]

    def rates_for(self, stack: RateStack, idx: np.ndarray | None) -> np.ndarray:
        """(n, K) rates of a stack for tenants ``idx`` (all slots), with intervention effects."""
        h = stack.evaluate(self.pop, idx)
        for k, rate in enumerate(stack.rates):
            m = self.effect(rate, idx)
            if m is not None:
                h[:, k] *= m
        return h

    # -- the monthly table: what the DataCollector reads as each step ends ---------------------
    def _reporters(self) -> dict[str, Any]:
        """The monthly table's columns, each a model attribute or read from the model (a mean
        over nobody alive is 0)."""
        admission_types = [t.name for t in self.health.admissions]

        def admission_use(tally: str) -> Callable[[HousingHealthModel], float]:
            return lambda m: sum(m.month_use(f"{a}_{tally}") for a in admission_types)

        def of_the_living(attribute: str) -> Callable[[HousingHealthModel], float]:
            return lambda m: getattr(m, attribute) if m.people_alive else 0.0

        out: dict[str, Any] = {"alive": "people_alive", "deaths": "deaths"}
        out |= {key: admission_use(tally) for key, tally in ADMISSION_COLUMNS.items()}
        out["mean_utility"] = of_the_living("mean_utility")
        if self.health.wellbeing is not None:
            out["mean_wellbeing"] = of_the_living("mean_wellbeing")
        out |= {f"{c}:{state}": (lambda m, c=c, k=k: float(m.people_in_state[c][k]))
                for c, chain in self.health.chains.items() for k, state in enumerate(chain.states)}
        out |= {f"use:{a}": (lambda m, a=a: m.month_use(a)) for a in self.activities}
        out |= {column: (lambda m, column=column: m.month_cost(column)) for column in COST_COLUMNS}
        out |= {key: (lambda m, name=iv.name, key=key: m.intervention(name).month_stats()[key])
                for iv in self.interventions for key in iv.month_stats()}
        if self.pathway.active:
            out["homeless"] = "homeless"
        return out

    @property
    def _living_weight(self) -> np.ndarray:
        """Each tenant's weight (people represented) while alive, 0 once dead."""
        return np.where(self.pop.alive, self.pop.weight, np.float32(0))

    @property
    def people_alive(self) -> float:
        """People represented who are alive."""
        return float(self._living_weight.sum(dtype=np.float64))

    @property
    def deaths(self) -> float:
        """People represented who died in the last step."""
        died = ~self.pop.alive & (self.death_month == self.month - 1)
        return float(self.pop.weight[died].sum(dtype=np.float64))

    @property
    def mean_wellbeing(self) -> float:
        """Mean wellbeing of the living adults represented, points (the score describes adults)."""
        weight = np.where(is_child(self.pop), np.float32(0), self._living_weight)
        total = float((self.pop.wellbeing * weight).sum(dtype=np.float64))
        return total / float(weight.sum(dtype=np.float64))

    @property
    def homeless(self) -> float:
        """Living people represented who sleep rough or are in temporary accommodation."""
        return float(self._living_weight[is_homeless(self.pop.tenure)].sum(dtype=np.float64))

    def month_use(self, activity: str) -> float:
        """Use of ``activity`` in the last step (people represented, undiscounted)."""
        return self._totals_after[activity] - self._totals_before[activity]

    def month_cost(self, column: str) -> float:
        """£ spent in the last step (the experiment's prices, undiscounted) counted in the
        monthly table's ``column`` (``COST_COLUMNS``)."""
        total = 0.0
        for a, price in self._prices.items():
            act = self.activities[a]
            besides_payer = ("cost:interventions" if act.intervention
                             else "cost:nhs_care" if act.payer == "nhs" else None)
            if column in (f"cost:{act.payer}", besides_payer):
                total += self.month_use(a) * price
        return total

    # -- the step ------------------------------------------------------------------------
    def step(self) -> None:
        t, pop = self.month, self.pop
        pop.model_year = int(t * self.dt)
        monthly = self.health.cycle_months == 1  # a yearly step has no calendar month
        set_month(pop, calendar_month(self.config.start_month, t) if monthly else None)
        days = self.step_days(t)
        window = MonthWindow(t, self.day, self.day + days, self.cost_discount)
        self.housing.step(t)
        self.tenancies.step(t)
        self.pathway.step(t)
        if self.interventions:
            self._intervene(t)
        alive = np.flatnonzero(pop.alive)
        cells = self._life_cells()
        cell = cells[alive]
        size = self.life_table[0].size
        exposure = pop.weight[alive] * self.dt
        good = self.health.in_good_health(pop)[alive]
        for row, w in ((0, exposure), (1, exposure * good)):
            self.life_table[row] += np.bincount(cell, weights=w, minlength=size).reshape(2, DECILES, -1)
        if self.census is not None:
            self.census.start_step(pop, t, alive, self.dt)
        if self.high_users is not None:
            self.high_users.start_step(pop, t, alive, self.dt)

        # 1. chains (decided on start-of-step states; applied in 6)
        ends = self.health.cycle_age == "end"
        if ends:  # this step's rates read the age at its end
            self.health.profiles.refresh(pop, static=self._grow_older(alive), everyone=False)
        outcomes = [chain.step(pop, pop.alive, self.streams.uniform(f"chain:{name}", t),
                               self.dt, self.effect)
                    for name, chain in self.health.chains.items()]
        died = np.unique(np.concatenate([o.died for o in outcomes]))
        self.life_table[2] += np.bincount(cells[died], weights=pop.weight[died],
                                          minlength=size).reshape(2, DECILES, -1)
        death_day = np.full(pop.n, NO_DAY, dtype=np.int32)
        for o in outcomes:
            d = window.t0 + (o.death_fraction * days).astype(np.int32)
            np.minimum.at(death_day, o.died, d)

        # 2. hospital
        away = np.zeros(pop.n, dtype=np.float32)
        self.hospital.month(pop, self.streams, self.ledger, self.rates_for, window, self.dt,
                            death_day, away)
        if self.health.admissions:
            pop.recent_use.record("admissions", t, self.hospital.admissions_this_step)
            alive_days = np.where(pop.alive, np.minimum(death_day, window.t1) - window.t0, 0)
            self.ledger.add("days_alive", None, alive_days, window.weight)
            self.ledger.add("days_at_home", None, alive_days - away, window.weight)

        # 3. community services, for the share of the step alive and at home (dense: nearly
        #    every tenant is concerned; the dead and those away all step have exposure 0)
        if self.health.services:
            stay = np.minimum(death_day, window.t1) - window.t0 - away
            exposure = np.where(pop.alive, stay, 0).astype(np.float32) * np.float32(self.dt / days)
            lam = self.rates_for(self.health.service_stack, None)
            lam *= exposure[:, None]
            for k, service in enumerate(self.health.services):
                counts = poisson_from_uniform(self.streams.uniform(f"service:{service.name}", t),
                                              lam[:, k])
                self.ledger.add(service.activity.name, None, counts, window.weight)
                if service.name in self._tracked:
                    pop.recent_use.record(service.name, t, counts)

        # 4. wellbeing
        if self.health.wellbeing is not None:
            self.health.wellbeing.update(pop, self.health.cycle_months, self.wellbeing_shift)

        # 5. transitions and deaths take effect; clocks, time in state and age advance
        self.health.clocks.advance(pop, alive, dict(zip(self.health.chains, outcomes, strict=True)), died)
        for name, o in zip(self.health.chains, outcomes, strict=True):
            survive = ~np.isin(o.moved, died)
            pop.states[name][o.moved[survive]] = o.new_state[survive]
            tis = pop.time_in_state.get(name)
            if tis is not None:
                tis[alive] = np.minimum(tis[alive] + self.health.cycle_months, np.iinfo(np.int16).max)
                tis[o.moved[survive]] = 0
        if self.census is not None:
            self.census.end_step(pop, t, self.ledger, died)
        if self.high_users is not None:
            self.high_users.end_step(pop, t, self.ledger)
        pop.alive[died] = False
        self.death_month[died] = t
        self.hospital.next_day[died] = NO_DAY
        birthdays = None if ends else self._grow_older(alive)
        moved = np.concatenate([o.moved for o in outcomes])
        self.health.profiles.refresh(pop, static=birthdays, state=moved, everyone=False)

        self.month += 1
        self.day = window.t1
        self.mean_utility = self._value_boundary(self.month)
        self.people_in_state = self.health.people_in_state(pop)
        self._totals_before, self._totals_after = self._totals_after, dict(self.ledger.totals)
        self.datacollector.collect(self)

    def _grow_older(self, alive: np.ndarray) -> np.ndarray:
        """Advance the ages of tenants ``alive`` by one step; return those with a birthday."""
        pop = self.pop
        years = pop.age_years
        pop.age_months[alive] += self.health.cycle_months
        pop.refresh_age()
        birthdays = alive[pop.age_years[alive] != years[alive]]
        if birthdays.size:
            self._cross_ages(birthdays, years[birthdays])
        return birthdays

    def _cross_ages(self, who: np.ndarray, before: np.ndarray) -> None:
        """Tenants ``who`` had a birthday (aged ``before`` years until now). Who leaves a
        chain's ages leaves its states; who enters them (a child turning 16, for the adult
        chains) takes a state from the chain's initial distribution for their sex, age and
        circumstances (the cross-section at that age), chains in order so that a later
        chain's draw reads the earlier chains' new states, one uniform per slot and chain
        (stream ``enter:<chain>``, so arms share them)."""
        pop, changed = self.pop, []
        now, before = np.minimum(pop.age_years[who], MAX_AGE), np.minimum(before, MAX_AGE)
        for name, chain in self.health.chains.items():
            if chain.ages is None:
                continue
            inside = chain.ages.inside
            left = who[~inside[now] & (pop.states[name][who] != 0)]
            pop.states[name][left] = 0
            entered = who[inside[now] & ~inside[before]]
            if entered.size:
                u = self.streams.uniform(f"enter:{name}", self.month)[entered]
                pop.states[name][entered] = chain.initial.draw(pop, u, entered)
                tis = pop.time_in_state.get(name)
                if tis is not None:
                    tis[entered] = 0
            changed += [left, entered]
        changed = np.unique(np.concatenate(changed)) if changed else np.zeros(0, dtype=np.intp)
        if changed.size:
            self.health.profiles.refresh(pop, state=changed, everyone=False)

    def _intervene(self, t: int) -> None:
        """Interventions act at the start of the month, each provider doing its month's work
        (its ``step``, in the order of ``providers``); their effects apply to the month."""
        self.providers.do("step")
        self.effects, self.wellbeing_shift = {}, None
        for iv in self.interventions:
            who, strength = iv.strengths(t)
            self.ledger.share(self._programme_costs[iv.name], who[strength >= 1.0])
            self._apply_effects(iv, who, strength)

    def refresh_effects(self, idx: np.ndarray) -> None:
        """Recompute every intervention's effects on tenants ``idx`` now: a provider placed
        them in the middle of the month, and what follows this month must feel it."""
        for m in self.effects.values():
            m[idx] = 1.0
        if self.wellbeing_shift is not None:
            self.wellbeing_shift[idx] = 0.0
        for iv in self.interventions:
            strength = iv.strength_of(self.month, idx)
            on = strength > 0
            self._apply_effects(iv, idx[on], strength[on])

    def _apply_effects(self, iv: Intervention, idx: np.ndarray, strength: np.ndarray) -> None:
        """Multiply ``iv``'s effects, at ``strength``, into the tenants ``idx``."""
        if not idx.size:
            return
        n = self.pop.n
        for e in iv.effects:
            sel = iv.needs(e.area, idx) if e.area is not None else slice(None)
            on, s = idx[sel], strength[sel]
            if e.on_wellbeing:
                if self.wellbeing_shift is None:
                    self.wellbeing_shift = np.zeros(n, dtype=np.float32)
                self.wellbeing_shift[on] += np.float32(e.points) * s
            else:
                m = self.effects.setdefault(e.target, np.ones(n, dtype=np.float32))
                m[on] *= np.power(np.float32(e.ratio), s)

    def _value_boundary(self, b: int) -> float:
        """Add the rewards and state costs valued at step boundary ``b``; return the mean
        utility of the living people represented.

        The value at a boundary counts for the cycle(s) the reward timing gives it to. Where
        rewards depend on the model year, each part is valued in its own cycle's year.
        """
        pop = self.pop
        alive = pop.alive.astype(np.float32)
        n_alive = float(alive.sum())
        parts = self._parts[b]
        if not self.health.rewards_depend_on_year and parts:
            parts = [(sum(w for w, _ in parts), parts[0][1])]
        d_eff = discount_factor(self.config.discount_effects, b * self.dt)
        d_cost = discount_factor(self.config.discount_costs, b * self.dt)
        mean_utility = float("nan")
        for w, cycle in parts or [(0.0, b)]:
            pop.model_year = int(cycle * self.dt)
            utility = self.health.utility_of(pop) * alive
            if n_alive:
                mean_utility = (float((utility * pop.weight).sum(dtype=np.float64))
                                / float((alive * pop.weight).sum(dtype=np.float64)))
            if w == 0.0:
                continue
            years = w * self.dt
            self.ledger.add_reward("qalys", utility, years, d_eff)
            self.ledger.add_reward("life_years", alive, years, d_eff)
            good = self.health.in_good_health(pop) & pop.alive
            self.ledger.add_reward("good_health_years", good.astype(np.float32), years, d_eff)
            for sc in self.health.state_costs:
                inside = np.flatnonzero(sc.states[pop.states[sc.chain]] & pop.alive)
                amount = np.float32(years) * sc.multiplier.evaluate(pop, inside)
                self.ledger.add(sc.activity.name, inside, amount, d_cost)
        return mean_utility

    def run(self) -> None:
        """Run every step of the configured horizon."""
        for _ in range(self.config.steps - self.month):
            self.step()

    def release(self) -> None:
        """Free the tenant arrays now (the model cannot step afterwards).

        A Mesa model refers to itself (its wrapped step method), so only the cyclic garbage
        collector would free it, late; dropping the arrays frees the memory at once. Mesa 3.3
        also keeps every model that ever had an agent in a class attribute (``Agent._ids``,
        mesa issue #3179, fixed by mesa PR #3180), which kept each run's model and its
        calibrated health model alive for the life of a worker (27 MB a run of a sweep that
        varies the model): the model is dropped from it here.
        """
        self.remove_all_agents()  # providers hold their interventions' work, hence their arrays
        ids = getattr(mesa.Agent, "_ids", None)  # only mesa releases before PR #3180 have it
        if ids is not None:
            ids.pop(self, None)
        self.pop = self.ledger = self.hospital = None
        self.effects, self.interventions, self.wellbeing_shift = {}, [], None
