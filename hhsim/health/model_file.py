"""A health model file (TOML) compiled to numpy tables.

Sections (see docs/model-files.md for the full reference):

- ``[model]``: name, description, ``cycle = "month" | "year"``;
- ``[parameters]``: named parameters, which any value may use in an expression
  (``value = "=rate_to_prob(r_sick, 1)"``; ``hhsim.core.expressions``);
- ``[attributes.<name>]``: a value drawn once per person (a frailty), used as a term
  (``hhsim.health.attributes``);
- ``[clocks]``: named clocks (time in a group of states, since an event, since model entry)
  that terms and hazards read (``hhsim.health.clocks``);
- ``[chains.<name>]``: ordered ``states`` (best first), ``initial`` shares and
  ``transitions`` (rates or probabilities, with rate ratios);
- ``[mortality]``: background mortality, competing in one chain (in all its states or some);
- ``[wellbeing]``: optional score;
- ``[utility]``: EQ-5D baseline by age and sex times state multipliers;
- ``[outcomes]``: which states count as good health (ONS definition: good or very good);
- ``[state_costs.<name>]``: costs per person-year in a state (e.g. social care);
- ``[services.<name>]``: community service use (monthly cycle only);
- ``[hospital.admissions.<type>]``: hospital stays in days (monthly cycle only).

A compiled model is calibrated once against the reference population (England): initial
shares reproduce the published prevalence by age and sex, national-average rates are
de-averaged, the utility multipliers keep the age-sex norms, and wellbeing effects are
centred. Calibrated models are cached by content.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hhsim.core.accounting import PAYERS, Activity
from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import (
    check_keys,
    missing_parameter,
    parameters_of,
    resolve_expressions,
    to_parameter,
)
from hhsim.core.randomness import Streams
from hhsim.health.ages import parse_ages, within_ages
from hhsim.health.attributes import Attribute, draw_attributes, parse_attributes
from hhsim.health.chains import DEAD_NAME, DEATH, Chain, Exit, parse_exits, parse_initial
from hhsim.health.clocks import Clock, Clocks, parse_clocks, refuse_elsewhere
from hhsim.health.hospital import AdmissionType, parse_hospital
from hhsim.health.mortality import mortality_states, parse_mortality
from hhsim.health.profiles import ProfileSpace
from hhsim.health.rates import Rate, RateStack
from hhsim.health.services import Service, parse_cost, parse_services
from hhsim.health.terms import COVARIATES, MAX_AGE, TermContext, parse_terms
from hhsim.health.wellbeing import Wellbeing, parse_wellbeing
from hhsim.world.children import ADULT_AGE, with_children
from hhsim.world.population import Population
from hhsim.world.synthetic import england_mix, generate

MODEL_SECTIONS = {"model", "parameters", "attributes", "chains", "mortality", "wellbeing", "utility",
                  "outcomes", "state_costs", "services", "hospital", "clocks"}
CYCLES = {"month": 1, "year": 12}
#: Which age a step's rates read: at the start of the cycle or at its end (``[model] cycle_age``).
CYCLE_AGES = ("start", "end")
CHAIN_KEYS = {"states", "description", "initial", "transitions", "ages"}
#: Size and seed of the reference population used for calibration (fixed: part of the model).
REFERENCE_SIZE = 100_000
REFERENCE_SEED = 20240401


@dataclass
class StateCost:
    """A cost per person-year while in some states of a chain, times its multiplier terms
    (e.g. ``multiplier.model_year`` for a drug given in the first years only)."""

    chain: str
    states: np.ndarray  # bool mask over the chain's states
    activity: Activity
    multiplier: Rate


@dataclass
class HealthModel:
    """A compiled health model: chains, mortality, services, hospital, rewards."""

    name: str
    description: str
    cycle_months: int
    chains: dict[str, Chain]
    mortality: Rate | None
    wellbeing: Wellbeing | None
    utility: Rate
    good_health: tuple[str, np.ndarray] | None
    state_costs: list[StateCost]
    services: list[Service]
    admissions: list[AdmissionType]
    tree: dict = field(repr=False)  # the tree compiled, with its expressions computed
    clocks: Clocks = field(default_factory=Clocks, repr=False)
    profiles: ProfileSpace | None = field(default=None, repr=False)
    _stacks: dict[str, RateStack] = field(default_factory=dict, repr=False)
    attributes: dict[str, Attribute] = field(default_factory=dict)  # drawn once per person
    cycle_age: str = "start"  # the age a step's rates read: at the cycle's "start" or "end"
    children: bool = False  # describes people under ADULT_AGE: populations include children

    @property
    def cycle_years(self) -> float:
        return self.cycle_months / 12.0

    @property
    def activities(self) -> list[Activity]:
        acts = [s.activity for s in self.services]
        acts += [a for t in self.admissions for a in t.activities]
        acts += [c.activity for c in self.state_costs]
        return acts

    @property
    def service_stack(self) -> RateStack:
        return self._stack("services", [s.rate for s in self.services])

    @property
    def admission_stack(self) -> RateStack:
        return self._stack("admissions", [r for t in self.admissions for r in t.columns])

    @property
    def stacks(self) -> list[RateStack]:
        return [self.service_stack, self.admission_stack]

    def _stack(self, key: str, rates: list[Rate]) -> RateStack:
        if key not in self._stacks:
            self._stacks[key] = RateStack(rates)
        return self._stacks[key]

    @property
    def rates(self) -> list[Rate]:
        """Every distinct rate of the model once (calibration must not scale one twice)."""
        rates = [r for c in self.chains.values() for r in c.rates]
        rates += [s.rate for s in self.services] + [r for t in self.admissions for r in t.columns]
        return list({id(r): r for r in rates}.values())

    def initialise(self, pop: Population, streams: Streams,
                   given: Mapping[str, np.ndarray] | None = None) -> None:
        """Draw every tenant's initial chain states and wellbeing; index its profiles.

        ``given`` holds states known from a stock file (-1 where not known): those are kept,
        the rest drawn. Chains are set in order, so a later chain's draw uses the earlier
        chains' states, given or drawn. Every slot's uniform is drawn either way. Attributes
        are drawn first, each from its own stream.
        """
        draw_attributes(self.attributes, pop, streams)
        for name, chain in self.chains.items():
            drawn = chain.initial.draw(pop, streams.uniform(f"initial:{name}", 0))
            known = (given or {}).get(name)
            pop.states[name] = drawn if known is None else np.where(known >= 0, known, drawn).astype(np.int8)
            if chain.uses_time_in_state:
                pop.time_in_state[name] = np.zeros(pop.n, dtype=np.int16)
        self.clocks.start(pop)
        if self.wellbeing is not None:
            self.wellbeing.initialise(pop, streams.normal("initial:wellbeing", 0))
        if self.profiles is not None:
            self.profiles.refresh(pop)

    def calibrate(self, ref: Population, streams: Streams) -> None:
        """Fit initial shares, de-average rates and utility, centre wellbeing, on ``ref``."""
        draw_attributes(self.attributes, ref, streams)
        for name, chain in self.chains.items():
            chain.initial.calibrate(ref)
            ref.states[name] = chain.initial.draw(ref, streams.uniform(f"initial:{name}", 0))
            if chain.uses_time_in_state:
                ref.time_in_state[name] = np.zeros(ref.n, dtype=np.int16)
        self.clocks.start(ref)
        if self.wellbeing is not None:
            self.wellbeing.calibrate(ref)
            self.wellbeing.initialise(ref, streams.normal("initial:wellbeing", 0))
        for rate in self.rates:
            rate.deaverage(ref)
        self.utility.deaverage(ref)
        self.profiles = ProfileSpace({n: c.states for n, c in self.chains.items()})
        for rate in [*self.rates, self.utility]:
            rate.tabulate(self.profiles)
        for stack in self.stacks:
            stack.tabulate()
        for chain in self.chains.values():
            chain.tabulate(self.profiles)
        if self.wellbeing is not None:
            self.wellbeing.tabulate(self.profiles)

    @property
    def rewards_depend_on_year(self) -> bool:
        """Whether utility or a state cost has a ``model_year`` term."""
        terms = [*self.utility.terms, *(t for sc in self.state_costs for t in sc.multiplier.terms)]
        return any(t.name.endswith(".model_year") for t in terms)

    def people_in_state(self, pop: Population) -> dict[str, np.ndarray]:
        """People represented by the living in each state of each chain, counting in a
        chain only the people of its ages (those outside hold its first state)."""
        counts = self.profiles.marginals(pop)
        aged = [chain for chain in self.chains.values() if chain.ages is not None]
        if aged:  # the living by year of age, once: a chain's outsiders are a sum over ages
            by_age = np.bincount(np.minimum(pop.age_years[pop.alive], MAX_AGE),
                                 weights=pop.weight[pop.alive], minlength=MAX_AGE + 1)
            for chain in aged:
                counts[chain.name][0] -= float(by_age[~chain.ages.inside].sum())
        return counts

    def utility_of(self, pop: Population) -> np.ndarray:
        """EQ-5D utility of every slot (float32; meaningless for the dead)."""
        return self.utility.evaluate(pop).astype(np.float32)

    def in_good_health(self, pop: Population) -> np.ndarray:
        if self.good_health is None:
            return np.zeros(pop.n, dtype=bool)
        chain, mask = self.good_health
        return mask[pop.states[chain]]


def _chains(node: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(node, Mapping) or not node:
        raise HhsimError("chains", "the model has no chains", "add at least one [chains.<name>]")
    out = {}
    for name, sub in node.items():
        states = sub.get("states") if isinstance(sub, Mapping) else None
        if (not isinstance(states, list) or len(states) < 1
                or not all(isinstance(s, str) for s in states) or len(set(states)) != len(states)):
            raise HhsimError(f"chains.{name}.states", "must be a list of distinct state names",
                             'write states = ["good", "fair", "bad"]')
        if DEAD_NAME in states:
            raise HhsimError(f"chains.{name}.states", f"'{DEAD_NAME}' is reserved for death",
                             f"rename the state; transitions use to = \"{DEAD_NAME}\" for death")
        out[name] = tuple(states)
    return out


def _utility(node: Mapping[str, Any] | None, chains: Mapping[str, tuple[str, ...]],
             clocks: Mapping[str, Clock], attributes: tuple[str, ...] = ()) -> Rate:
    node = dict(node or {})
    check_keys(node, "utility", {"description", "reference", "baseline", "child_baseline", "multiplier"})
    base = np.ones((2, MAX_AGE + 1))
    if "baseline" in node:
        p = to_parameter("utility.baseline", node["baseline"])
        c = np.asarray(p.value, dtype=float)
        if c.shape != (4,):
            raise HhsimError("utility.baseline", "needs 4 coefficients: intercept, male, age, age^2",
                             "give [c0, c_male, c_age, c_age2]")
        age = np.arange(MAX_AGE + 1, dtype=float)
        # Row 0 = male, row 1 = female.
        base = np.vstack([c[0] + c[1] * male + c[2] * age + c[3] * age**2 for male in (1.0, 0.0)])
    if "child_baseline" in node:  # children (under ADULT_AGE) have a utility of their own
        p = to_parameter("utility.child_baseline", node["child_baseline"])
        if np.ndim(p.value) != 0 or not 0 < float(p.value) <= 1:
            raise HhsimError("utility.child_baseline", "must be one utility above 0 and at most 1",
                             "give e.g. value = 0.96")
        base[:, :ADULT_AGE] = float(p.value)
    terms = parse_terms(node.get("multiplier"), "utility.multiplier",
                        TermContext(chains, attributes=attributes, clocks=clocks, calendar=False))
    return Rate("utility", base, terms, bool(node.get("reference", False)))


def _good_health(node: Mapping[str, Any] | None,
                 chains: Mapping[str, tuple[str, ...]]) -> tuple[str, np.ndarray] | None:
    check_keys(node or {}, "outcomes", {"good_health"})
    gh = (node or {}).get("good_health")
    if gh is None:
        return None
    check_keys(gh, "outcomes.good_health", {"chain", "states"})
    chain = gh.get("chain")
    if chain not in chains:
        raise unknown_key_error("outcomes.good_health.chain", str(chain), chains, what="chain")
    states = gh.get("states", [])
    mask = np.zeros(len(chains[chain]), dtype=bool)
    for s in states:
        if s not in chains[chain]:
            raise unknown_key_error("outcomes.good_health.states", s, chains[chain], what="state")
        mask[chains[chain].index(s)] = True
    return chain, mask


def _state_costs(node: Mapping[str, Any] | None, chains: Mapping[str, tuple[str, ...]],
                 clocks: Mapping[str, Clock], attributes: tuple[str, ...] = ()) -> list[StateCost]:
    out = []
    for name, sub in (node or {}).items():
        where = f"state_costs.{name}"
        check_keys(sub, where, {"description", "chain", "states", "cost", "payer", "multiplier", "ages"})
        chain = sub.get("chain")
        if chain not in chains:
            raise unknown_key_error(f"{where}.chain", str(chain), chains, what="chain")
        mask = np.zeros(len(chains[chain]), dtype=bool)
        for s in sub.get("states", []):
            if s not in chains[chain]:
                raise unknown_key_error(f"{where}.states", s, chains[chain], what="state")
            mask[chains[chain].index(s)] = True
        if "cost" not in sub:
            raise missing_parameter(where, "cost", "£ per person-year")
        activity = parse_cost(sub, where, name, "person-years", sub.get("payer"), key="cost",
                              whole=False)
        if not str(sub["cost"].get("unit", "")).startswith("£ per person-year"):
            raise HhsimError(f"{where}.cost", "must be a cost per person-year",
                             'use unit = "£ per person-year"')
        terms = parse_terms(sub.get("multiplier"), f"{where}.multiplier",
                            TermContext(chains, attributes=attributes, clocks=clocks, calendar=False))
        multiplier = within_ages(Rate(f"{where}.multiplier", np.ones((2, MAX_AGE + 1)), terms),
                                 sub.get("ages"), f"{where}.ages")
        out.append(StateCost(chain, mask, activity, multiplier))
    return out


def compile_model(tree: Mapping[str, Any]) -> HealthModel:
    """Compile (but do not calibrate) a health model tree; every error is one line.

    Expressions are computed first, from the tree's named parameters as given (after any
    experiment's overrides), so everything derived follows the values overridden."""
    check_keys(tree, "model file", MODEL_SECTIONS, what="section")
    tree = resolve_expressions(tree)
    parameters_of(tree)  # every leaf valid and sourced
    meta = tree.get("model", {})
    check_keys(meta, "model", {"name", "description", "cycle", "cycle_age", "children"})
    children = meta.get("children", False)
    if not isinstance(children, bool):
        raise HhsimError("model.children", "must be true or false",
                         "write children = true if the model describes people under 16")
    cycle = meta.get("cycle", "month")
    if cycle not in CYCLES:
        raise HhsimError("model.cycle", f"unknown cycle '{cycle}'", "use \"month\" or \"year\"")
    cycle_months = CYCLES[cycle]
    cycle_age = meta.get("cycle_age", "start")
    if cycle_age not in CYCLE_AGES:
        raise HhsimError("model.cycle_age", f"unknown value {cycle_age!r}",
                         'use "start" (rates read the age at the start of each cycle) or "end"')
    chain_states = _chains(tree.get("chains"))
    attributes = parse_attributes(tree.get("attributes"), {*COVARIATES, *chain_states})
    names = tuple(attributes)
    clocks = parse_clocks(tree.get("clocks"), tree["chains"], chain_states, cycle_months)
    refuse_elsewhere(tree, clocks)
    terms_ctx = TermContext(chain_states, attributes=names, clocks=clocks.named)

    mortality_chain, mortality = None, None
    if "mortality" in tree:
        mortality_chain, mortality = parse_mortality(tree["mortality"], chain_states, names)

    chains: dict[str, Chain] = {}
    for name, sub in tree["chains"].items():
        where = f"chains.{name}"
        check_keys(sub, where, CHAIN_KEYS)
        states = chain_states[name]
        initial = parse_initial(sub.get("initial"), f"{where}.initial", len(states),
                                TermContext(chain_states, attributes=names, calendar=False))
        for term in initial.terms:
            other = term.name.rsplit(".", 1)[-1]
            if other in attributes:
                raise HhsimError(term.name, "initial shares cannot depend on an attribute",
                                 "remove the term: attributes act on rates, utilities and costs")
            if term.kind == "dynamic":
                raise HhsimError(term.name, "initial shares cannot depend on wellbeing or the model year",
                                 "remove the term: initial shares are drawn once, before wellbeing")
            if other == name:
                raise HhsimError(term.name, "an initial distribution cannot depend on its own chain",
                                 "remove the term")
            if other in chain_states and other not in chains:
                raise HhsimError(term.name, f"refers to chain '{other}', which comes later",
                                 f"define [chains.{other}] before [chains.{name}]")
        exits, uses_tis = parse_exits(sub.get("transitions"), f"{where}.transitions", states,
                                      TermContext(chain_states, own_chain=name, attributes=names,
                                                  clocks=clocks.named),
                                      cycle_months / 12)
        ages = parse_ages(sub.get("ages"), f"{where}.ages")
        if ages is not None:
            initial = initial.within(ages.inside)
            for e in (e for ex in exits for e in ex):
                if e.rest or e.empties:
                    raise HhsimError(f"{where}.ages", f"cannot limit {e.rate.name}, which empties its state",
                                     "give its probability as a number, or remove ages")
                ages.limit(e.rate)
        if name == mortality_chain:
            for s in mortality_states(tree["mortality"], states):
                exits[s].append(Exit(DEATH, mortality))
        chains[name] = Chain(name, states, exits, initial, name == mortality_chain, uses_tis)
        chains[name].ages = ages

    services = parse_services(tree.get("services"), terms_ctx)
    admissions = parse_hospital(tree.get("hospital"), terms_ctx)
    if cycle != "month" and (services or admissions):
        raise HhsimError("model.cycle", "services and hospital need a monthly cycle",
                         "use cycle = \"month\" or remove [services] and [hospital]")
    model = HealthModel(
        name=str(meta.get("name", "unnamed model")),
        description=str(meta.get("description", "")),
        cycle_months=cycle_months,
        chains=chains,
        mortality=mortality,
        wellbeing=parse_wellbeing(tree.get("wellbeing"), chain_states),
        utility=_utility(tree.get("utility"), chain_states, clocks.named, names),
        good_health=_good_health(tree.get("outcomes"), chain_states),
        state_costs=_state_costs(tree.get("state_costs"), chain_states, clocks.named, names),
        services=services,
        admissions=admissions,
        tree=dict(tree),
        attributes=attributes,
        cycle_age=cycle_age,
        children=children,
    )
    model.clocks = clocks.with_model_time([t for r in model.rates for t in r.terms])
    _check_wellbeing_terms(model)
    for act in model.activities:
        if act.name in PAYERS:  # cost_<payer> is the payer's total in every run record
            where = next((f"{s}.{act.name}" for s in ("state_costs", "services") if act.name in
                          (tree.get(s) or {})), act.name)
            raise HhsimError(where, f"'{act.name}' is also the name of a payer, so its cost would be "
                             "confused with the payer's total", f"rename it, e.g. {act.name}_costs")
    return model


def _check_wellbeing_terms(model: HealthModel) -> None:
    if model.wellbeing is not None:
        return
    terms = [t for r in [*model.rates, model.utility] for t in r.terms]
    terms += [t for c in model.chains.values() for t in c.initial.terms]
    for t in terms:
        if t.name.endswith(".wellbeing"):
            raise HhsimError(t.name, "uses wellbeing but the model has no [wellbeing] section",
                             "add a [wellbeing] section or remove the term")


def _canonical(tree: Mapping[str, Any]) -> str:
    # Key order is meaningful (chains are initialised in file order): do not sort.
    return json.dumps(tree, default=str)


def calibrated_model(tree: Mapping[str, Any], world: Mapping[str, Any],
                     compiled: HealthModel | None = None) -> HealthModel:
    """The compiled model calibrated on the reference population ``world`` (cached by
    content, the last ``CALIBRATED`` kept); ``compiled``: the model already compiled from
    ``tree`` (copied, not compiled again)."""
    key = (_canonical(tree), _canonical(world))
    model = _calibrated.get(key)
    if model is None:
        model = copy.deepcopy(compiled) if compiled is not None else compile_model(json.loads(key[0]))
        world = json.loads(key[1])
        streams = Streams(REFERENCE_SEED, (), REFERENCE_SIZE)
        ref = generate(REFERENCE_SIZE, england_mix(world), world, streams.generator("reference"))
        if model.children:
            ref = with_children(ref, world, streams.generator("reference:children"))
            streams.n = ref.n
        model.calibrate(ref, streams)
        _calibrated[key] = model
        while len(_calibrated) > CALIBRATED:
            _calibrated.popitem(last=False)
    _calibrated.move_to_end(key)
    return model


#: Calibrated models kept per process (by model and reference world).
CALIBRATED = 8
_calibrated: OrderedDict[tuple[str, str], HealthModel] = OrderedDict()
