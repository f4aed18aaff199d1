"""Cohort mode: the expected outcomes of a one-chain model, computed exactly (no sampling).

A Markov cohort model follows the share of a cohort in each state. For a model whose
health is one chain (plus mortality) and whose tenants are alike, the microsimulation's
expectation is such a cohort: each cycle, every state's exits are turned into transition
probabilities exactly as a tenant's are (the same compiled hazards, the same competing
risks), and rewards are valued at the same boundaries with the same weights and discount.
The microsimulation converges to these numbers; published cohort models can be reproduced
to rounding. A model whose rates or rewards read clocks that differ between people (time in
state, time in a group of states, time since an event) is followed in tunnel states
(``hhsim.health.tunnels``). A model with attributes (``hhsim.health.attributes``) is run at
each of their integration points and the results weighted: exactly the expectation over
discrete attributes; over continuous ones a Gaussian quadrature, its nodes doubled until no
outcome moves by more than ``SETTLED`` (relative), with a one-line warning where it does not
settle. The cohort starts in given shares, or in the model's own initial distribution for
its people (their sex, age band and covariates, at each attribute value). Besides the totals,
the values at each cycle boundary are kept (``CohortResult.boundaries``), so that a cohort
run can be written as a microsimulation run is (``hhsim.model.cohort_mode``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from hhsim.core.accounting import PAYERS, BoundaryWeights, discount_factor, reward_parts
from hhsim.core.costing import uprating_factor
from hhsim.core.errors import HhsimError, warn
from hhsim.health.attributes import QUADRATURE_NODES, Attribute, integration_points
from hhsim.health.model_file import HealthModel
from hhsim.health.tunnels import cohort_rows
from hhsim.world.population import Dwellings, Population

#: Largest relative change of any outcome between n and 2n quadrature nodes for a result over
#: continuous attributes to count as settled (float32 rate tables move outcomes by ~1e-7).
SETTLED = 1e-6
MAX_NODES = 256  # quadrature nodes per continuous attribute
MAX_POINTS = 4096  # cohorts run for one expectation (every combination of the attributes' nodes)


def _representatives(n: int, age: float, female: bool, tenure: int, decile: int) -> Population:
    one = np.ones(n)
    return Population(
        age_months=np.full(n, int(age * 12), dtype=np.int16), female=np.full(n, female),
        alive=np.ones(n, dtype=bool), household=np.arange(n, dtype=np.int32),
        dwelling=np.arange(n, dtype=np.int32), weight=one.astype(np.float32),
        dwellings=Dwellings(tenure=np.full(n, tenure, dtype=np.int8), hazards=np.zeros(n, dtype=np.uint8),
                            deprivation=np.full(n, decile, dtype=np.int8),
                            estate=np.zeros(n, dtype=np.int32)))


def _set_age(pop: Population, health: HealthModel, start: np.ndarray, cycles: int) -> None:
    """Age everyone ``cycles`` cycles after ``start`` (months), and refresh the profiles."""
    pop.age_months = start + cycles * health.cycle_months
    pop.refresh_age()
    health.profiles.refresh(pop)


@dataclass
class CohortResult:
    """Expected outcomes per person, and the share of the cohort in each state over time."""

    outcomes: dict[str, float]  # qalys, life_years, good_health_years, cost_* (and _undisc), use_*
    trace: np.ndarray  # (cycles + 1, states + 1): the chain's states, then dead
    # Per person at each boundary 0..cycles (cycles + 1 values each): "utility", the summed
    # utility of the living (share x utility: divided by the share alive, their mean);
    # "good_health", the share alive in good health; "use_<state cost>", the tally that the
    # boundary adds (person-years x multiplier, undiscounted: its reward timing's weights).
    boundaries: dict[str, np.ndarray] = field(default_factory=dict)


def cohort_problem(health: HealthModel) -> str | None:
    """Why cohort mode cannot follow ``health`` (None: it can): it follows one chain's shares,
    not what only people one by one have (several chains, services, a hospital, wellbeing)."""
    if len(health.chains) != 1 or health.services or health.admissions:
        has = [f"{len(health.chains)} chains"] if len(health.chains) != 1 else []
        has += ["services"] * bool(health.services) + ["a hospital"] * bool(health.admissions)
        return ("needs a model with one chain and no services or hospital, and this one has "
                + " and ".join([", ".join(has[:-1]), has[-1]] if len(has) > 1 else has))
    if health.wellbeing is not None:
        return "needs a model without [wellbeing] (a score each person moves toward a target)"
    return None


def cohort_run(health: HealthModel, steps: int, initial: Mapping[str, float] | None, *,
               discount_costs: float = 0.035, discount_effects: float = 0.035,
               reward_timing: str | BoundaryWeights = "half-cycle", price_year: str = "2023/24",
               age: float = 50.0, female: bool = False, tenure: int = 2, decile: int = 5,
               effects: Mapping[str, float] | None = None, attributes: Mapping[str, float] | None = None,
               nodes: int = QUADRATURE_NODES, starting_in: str | None = None) -> CohortResult:
    """Expected outcomes per person of a cohort starting in the ``initial`` shares (None:
    the model's initial distribution for the cohort's people, as a microsimulation draws it).

    Costs are by state cost and by payer, in ``price_year`` prices; ``use_<state cost>``
    (and ``_disc``) are its tallies (person-years x multiplier). ``effects`` multiplies
    named rates, as an intervention would. ``attributes`` gives everyone these values of the
    model's attributes; without it, outcomes and trace are the expectation over the
    attributes: exact over discrete ones, by ``nodes``-point Gaussian quadrature over
    continuous ones (``hhsim.health.attributes.integration_points``), the nodes doubled until
    the outcomes settle. ``starting_in`` follows only the share that starts in that state:
    outcomes and trace are then that share's part of the cohort's (they add up to the
    cohort's over the states).
    """
    if attributes is None and health.attributes:
        return _expectation(lambda values: cohort_run(
            health, steps, initial, discount_costs=discount_costs, discount_effects=discount_effects,
            reward_timing=reward_timing, price_year=price_year, age=age, female=female, tenure=tenure,
            decile=decile, effects=effects, attributes=values, starting_in=starting_in),
            health.attributes, nodes)
    if set(attributes or {}) != set(health.attributes):
        raise HhsimError("cohort mode", f"attributes {sorted(attributes or {})} are not the model's "
                         f"{sorted(health.attributes)}", "give one value of each attribute, or none")
    problem = cohort_problem(health)
    if problem:
        raise HhsimError("cohort mode", problem, "run it as a microsimulation")
    name, chain = next(iter(health.chains.items()))
    n_states = len(chain.states)
    unknown = (set(initial or {}) | {starting_in} - {None}) - set(chain.states)
    if unknown:
        raise HhsimError("cohort mode", f"unknown state {sorted(unknown)[0]!r}",
                         f"use states of chain '{name}'")
    terms = [t for r in [*chain.rates, health.utility, *(sc.multiplier for sc in health.state_costs)]
             for t in r.terms]
    rows = cohort_rows(name, chain, health.clocks, terms, steps)
    pop = _representatives(rows.n, age, female, tenure, decile)
    pop.attributes = {k: np.full(pop.n, v, dtype=np.float32) for k, v in (attributes or {}).items()}
    rows.place(pop, 0)
    start = pop.age_months.copy()
    ends = int(health.cycle_age == "end")  # a cycle's rates read the age at its end
    health.profiles.refresh(pop)
    dt = health.cycle_years

    def effect(rate, idx):
        m = (effects or {}).get(rate.name)
        return None if m is None else np.full(pop.n, m, dtype=np.float32)

    occupancy = np.zeros(rows.n + 1)
    if initial is None:
        occupancy[:n_states] = chain.initial.chances(pop)[0]  # everyone alike: the first's
    else:
        for state, share in initial.items():
            occupancy[chain.states.index(state)] = share
    if starting_in is not None:
        occupancy[np.arange(rows.n + 1) != chain.states.index(starting_in)] = 0.0
    trace = [occupancy.copy()]
    for t in range(steps):
        pop.model_year = int(t * dt)
        rows.place(pop, t * health.cycle_months)
        if not chain.slots:  # no exits: everyone stays where they are
            trace.append(occupancy.copy())
            continue
        _set_age(pop, health, start, t + ends)
        h = chain.hazards(pop, effect, rows.dtype).astype(np.float64)  # (rows, slots)
        total = h.sum(axis=1)
        leave = -np.expm1(-total * dt)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(total[:, None] > 0, h * (leave / total)[:, None], 0.0)
        occupancy = rows.propagate(occupancy, leave, p)
        trace.append(occupancy.copy())

    out: dict[str, float] = {}
    keys = ["qalys", "life_years", "good_health_years",
            *(f"cost_{sc.activity.name}" for sc in health.state_costs)]
    for key in keys:
        out[key] = out[f"{key}_undisc"] = 0.0
    for sc in health.state_costs:
        out[f"use_{sc.activity.name}"] = out[f"use_{sc.activity.name}_disc"] = 0.0
    at = {key: np.zeros(steps + 1) for key in ("utility", "good_health",
                                                *(f"use_{sc.activity.name}" for sc in health.state_costs))}
    for b, parts in enumerate(reward_parts(reward_timing, steps)):
        alive = trace[b][:rows.n]
        rows.place(pop, b * health.cycle_months)
        d_eff = discount_factor(discount_effects, b * dt)
        d_cost = discount_factor(discount_costs, b * dt)
        _set_age(pop, health, start, b)
        pop.model_year = int(b * dt)  # the cycle starting here, as a microsimulation step sees it
        at["good_health"][b] = alive @ health.in_good_health(pop)
        for w, cycle in parts or [(0.0, b)]:  # the utility of the last part, as a run reports it
            pop.model_year = int(cycle * dt)
            at["utility"][b] = alive @ health.utility_of(pop)
            if w == 0.0:
                continue
            years = w * dt
            values = {"qalys": at["utility"][b], "life_years": alive.sum(),
                      "good_health_years": alive @ health.in_good_health(pop)}
            for key, v in values.items():
                out[key] += years * d_eff * v
                out[f"{key}_undisc"] += years * v
            for sc in health.state_costs:
                a = sc.activity.name
                unit = sc.activity.unit_cost * uprating_factor(sc.activity.price_year, price_year)
                inside = alive @ (sc.states[pop.states[name]] * sc.multiplier.evaluate(pop, None))
                out[f"cost_{a}"] += years * d_cost * unit * inside
                out[f"cost_{a}_undisc"] += years * unit * inside
                out[f"use_{a}"] += years * inside
                out[f"use_{a}_disc"] += years * d_cost * inside
                at[f"use_{a}"][b] += years * inside
    for payer in PAYERS:
        for suffix in ("", "_undisc"):
            out[f"cost_{payer}{suffix}"] = sum(out[f"cost_{sc.activity.name}{suffix}"]
                                               for sc in health.state_costs if sc.activity.payer == payer)
    return CohortResult(out, rows.by_state(np.array(trace), n_states), at)


def _weighted(run: Callable[[dict[str, float]], CohortResult],
              points: list[tuple[float, dict[str, float]]]) -> CohortResult:
    """The weighted sum of the cohorts run at ``points`` (weights, attribute values)."""
    parts = [(w, run(values)) for w, values in points]
    return CohortResult({k: sum(w * r.outcomes[k] for w, r in parts) for k in parts[0][1].outcomes},
                        sum(w * r.trace for w, r in parts),
                        {k: sum(w * r.boundaries[k] for w, r in parts) for k in parts[0][1].boundaries})


def _expectation(run: Callable[[dict[str, float]], CohortResult], attributes: Mapping[str, Attribute],
                 nodes: int) -> CohortResult:
    """The expectation over the attributes: exact over discrete ones; over continuous ones,
    quadrature from ``nodes`` nodes, doubled until no outcome moves by more than ``SETTLED``
    (relative), or a one-line warning at ``MAX_NODES`` or ``MAX_POINTS``."""
    result = _weighted(run, integration_points(attributes, nodes))
    if all(a.kind == "discrete" for a in attributes.values()):
        return result
    change = float("inf")
    while change > SETTLED:
        finer = integration_points(attributes, 2 * nodes)
        if 2 * nodes > MAX_NODES or len(finer) > MAX_POINTS:
            if change == float("inf"):
                warn(f"cohort mode: the quadrature over the attributes was not checked ({nodes} nodes "
                     "cannot be doubled): its outcomes may be off the expectation")
            else:
                warn(f"cohort mode: the quadrature over the attributes had not settled at {nodes} nodes "
                     f"(outcomes moved by up to {change:.2g}, relative, at the last doubling): they are "
                     "the expectation only to about that")
            break
        better = _weighted(run, finer)
        change = max(abs(better.outcomes[k] - v) / max(abs(better.outcomes[k]), 1e-9)
                     for k, v in result.outcomes.items())
        result, nodes = better, 2 * nodes
    return result
