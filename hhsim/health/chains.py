"""State chains: a tenant's position on one dimension of health, and its transitions.

A chain (general health, long-term condition, care need, ...) has ordered states, best
first. Each step, the exits from a tenant's state compete: their hazards are summed, the
chance of leaving in a step of ``dt`` years is ``1 - exp(-total * dt)``, and the exit taken
is chosen in proportion to its hazard. One uniform per tenant decides whether and where
the tenant goes, and (for deaths) on which day of the step.

Exits given as probabilities per period are turned into hazards the same way in reverse:
for a state whose exits have probabilities ``p_k`` summing to ``P``, the total hazard is
``-ln(1 - P) / period`` shared in proportion to ``p_k``, so a chain with no rate ratios
reproduces the given probabilities exactly.

A state whose probability exits add up to 1, or with one exit given as ``probability =
"rest"`` (1 minus the others), is emptied for certain: its total hazard is infinite, stood
for by ``EMPTYING_HAZARD``, shared by those exits in proportion to their probabilities
(after rate ratios); its other exits (rates, background mortality) get no share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import check_keys, leaf_parameter
from hhsim.health.ages import Ages
from hhsim.health.competing import choose_exits
from hhsim.health.hazards import is_parametric, parametric_rate
from hhsim.health.profiles import ProfileSpace
from hhsim.health.rates import Rate, base_leaf, period_years, row_sums
from hhsim.health.terms import MAX_AGE, Term, TermContext, parse_terms, product
from hhsim.world.bands import band_lookup
from hhsim.world.population import Population

DEATH = -1
SHARE_TOLERANCE = 0.005  # published shares are rounded; rows are renormalised to sum to 1
DEAD_NAME = "dead"
REST = "rest"  # probability = "rest": what a state's other probability exits leave
ROW_TOLERANCE = 1e-6  # exit probabilities of a state this close to 1 add up to 1 (rounding)
#: Total hazard per year of a state emptied for certain: exp(-h dt) is 0 in float32 and
#: float64 for a step of a month or more, so everyone in the state leaves within the step.
EMPTYING_HAZARD = 1e4
EffectFn = Callable[[Rate, np.ndarray], np.ndarray | None]


@dataclass
class Exit:
    """One way out of a state: to another state of the chain, or to death.

    ``scale = "probability"``: the rate's values are probabilities per ``per`` years
    (rate ratios multiply them, as cohort models do); they are turned into hazards together
    with the state's other probability exits, tenant by tenant.
    """

    to: int  # state index, or DEATH
    rate: Rate
    scale: str = "hazard"
    per: float = 1.0
    empties: bool = False  # one of the probability exits of a state emptied for certain
    rest: bool = False  # probability = "rest" (with scale "probability": filled per tenant)


@dataclass
class StepOutcome:
    """What one step of a chain decided for the tenants it looked at."""

    moved: np.ndarray  # tenant indices that changed state
    new_state: np.ndarray  # their new states
    died: np.ndarray  # tenant indices that died
    death_fraction: np.ndarray  # when in the step they died, in [0, 1)


class InitialDistribution:
    """Initial shares of a chain's states by sex and age band, with covariate odds ratios.

    The states are ordered; odds ratios act on the odds of being in a worse state
    (proportional odds). Intercepts are solved per sex and age band so that the reference
    population reproduces the published shares; tenants with more exposure get more.

    ``smooth``: the band shares become shares by single year of age before the intercepts
    are solved (``smooth_by_age``), so that the cross-section has no steps at the bands'
    boundaries, which smooth dynamics could not hold.
    """

    def __init__(self, name: str, shares: np.ndarray, band_of_age: np.ndarray,
                 terms: list[Term], smooth: bool = False, outside: int | None = None) -> None:
        self.name = name
        self.shares = shares  # (2, bands, S)
        self.band_of_age = band_of_age
        self.terms = terms
        self.smooth = smooth
        self.outside = outside  # the band of the ages the chain does not describe (first state)
        self._set_targets()

    def _set_targets(self) -> None:
        tail = np.cumsum(self.shares[..., ::-1], axis=-1)[..., ::-1][..., 1:]  # P(state >= k)
        self.target = np.clip(tail, 0.0, 1.0)  # (2, bands, S-1)
        self.alpha = special.logit(np.clip(self.target, 1e-12, 1 - 1e-12))
        self.n_states = self.shares.shape[-1]

    def within(self, inside: np.ndarray) -> InitialDistribution:
        """This distribution at the ages ``inside`` (boolean by age); everyone of another age
        starts in the first state (a band of its own, with share 1 there)."""
        first = np.zeros((2, 1, self.n_states))
        first[..., 0] = 1.0
        band_of_age = np.where(inside, self.band_of_age, self.shares.shape[1])
        return InitialDistribution(self.name, np.concatenate([self.shares, first], axis=1),
                                   band_of_age, self.terms, self.smooth, self.shares.shape[1])

    def smooth_by_age(self, ref: Population) -> None:
        """Replace the band shares by shares by single year of age: the logit of each
        P(state >= k) is linear in age between the bands' mean ages in ``ref`` (extended
        with the end segments' slopes beyond the first and last), with node values solved so
        that each band's mean over ``ref``'s people of each sex keeps the band's share."""
        alive = np.flatnonzero(ref.alive)
        age = np.minimum(ref.age_years[alive], MAX_AGE)
        weight = np.zeros((2, MAX_AGE + 1))
        np.add.at(weight, (ref.female[alive].view(np.int8).astype(np.intp), age), 1.0)
        ages = np.arange(MAX_AGE + 1)
        bands = [b for b in range(self.shares.shape[1]) if b != self.outside
                 and np.any(self.band_of_age == b)]
        out = self.shares[:, self.band_of_age, :].copy()  # (2, ages, S)
        for s in range(2):
            members = [ages[self.band_of_age == b] for b in bands]
            w = [weight[s, m] + 1e-9 for m in members]  # a band nobody of this sex is in: its ages alike
            mid = np.array([np.average(m, weights=wm) for m, wm in zip(members, w, strict=True)])
            tails = np.cumsum(self.shares[s, bands, ::-1], axis=-1)[:, ::-1][:, 1:]  # (bands, S-1)
            curve = np.empty((MAX_AGE + 1, tails.shape[1]))
            for k in range(tails.shape[1]):
                goal = tails[:, k]
                if len(bands) < 2 or np.any((goal <= 0) | (goal >= 1)):  # kept as steps
                    curve[:, k] = self.target[s, self.band_of_age, k]
                    continue
                nodes = special.logit(goal)
                for _ in range(50):  # a fixed point: each band's mean moves to its share
                    y = special.expit(_linear(ages, mid, nodes))
                    means = np.array([np.average(y[m], weights=wm) for m, wm in zip(members, w, strict=True)])
                    step = special.logit(goal) - special.logit(np.clip(means, 1e-12, 1 - 1e-12))
                    nodes = nodes + step
                    if np.abs(step).max() < 1e-10:
                        break
                curve[:, k] = special.expit(_linear(ages, mid, nodes))
            curve = np.minimum.accumulate(curve, axis=1)  # P(state >= k) falls with k
            inside = np.isin(self.band_of_age, bands)
            shares = -np.diff(np.concatenate([np.ones((MAX_AGE + 1, 1)), curve,
                                              np.zeros((MAX_AGE + 1, 1))], axis=1), axis=1)
            out[s, inside] = shares[inside]
        outside = self.band_of_age == self.outside if self.outside is not None else np.zeros_like(ages, bool)
        self.band_of_age = np.where(outside, MAX_AGE + 1, ages)
        first = np.zeros((2, 1, self.n_states))
        first[..., 0] = 1.0
        self.shares = np.concatenate([out, first], axis=1)
        self.outside = MAX_AGE + 1 if outside.any() else None
        self.smooth = False  # done: the table is by single year of age now
        self._set_targets()

    def _cells(self, pop: Population, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (pop.female[idx].view(np.int8).astype(np.intp),
                self.band_of_age[np.minimum(pop.age_years[idx], MAX_AGE)])

    def calibrate(self, ref: Population) -> None:
        """Solve intercepts so the reference population matches the published shares (by
        single year of age when ``smooth``)."""
        if self.smooth:
            self.smooth_by_age(ref)
        if not self.terms:
            return
        idx = np.flatnonzero(ref.alive)
        eta = np.log(product(self.terms, ref, idx))
        sex, band = self._cells(ref, idx)
        bands = self.shares.shape[1]
        cell = sex * bands + band
        alpha = self.alpha.reshape(2 * bands, -1)  # a view: solved in place
        occupied = np.bincount(cell, minlength=2 * bands) > 0
        for k in range(self.n_states - 1):
            solved = solve_intercepts(eta, cell, self.target.reshape(2 * bands, -1)[:, k])
            alpha[occupied, k] = solved[occupied]

    def _worse(self, pop: Population, idx: np.ndarray | None = None) -> np.ndarray:
        """(slots, states - 1): the chance of each slot (of ``idx``, or all) being worse than
        state k."""
        idx = np.arange(pop.n) if idx is None else idx
        sex, band = self._cells(pop, idx)
        eta = np.log(product(self.terms, pop, idx)) if self.terms else 0.0
        worse = np.zeros((idx.size, self.n_states - 1))
        for k in range(self.n_states - 1):
            worse[:, k] = special.expit(self.alpha[sex, band, k] + eta)
        return worse

    def draw(self, pop: Population, u: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Initial state of every slot (of ``idx``, or all) from one uniform per slot (``u``:
        one per slot of ``idx``, or of the population)."""
        worse = self._worse(pop, idx)
        state = np.zeros(worse.shape[0], dtype=np.int8)
        for k in range(self.n_states - 1):
            state += (u < worse[:, k]).astype(np.int8)
        return state

    def chances(self, pop: Population) -> np.ndarray:
        """(slots, states): each slot's chance of starting in each state, as ``draw`` draws
        it (the state is the number of chances ``worse`` above the slot's uniform, so at
        least k of them are above it with the k-th largest chance). A published share of
        exactly 0 or 1 of being worse is kept exactly: odds ratios cannot move it, and the
        draw's intercepts stand for it within 1e-12."""
        sex, band = self._cells(pop, np.arange(pop.n))
        target = self.target[sex, band]  # (slots, states - 1)
        worse = np.where(target <= 0.0, 0.0, np.where(target >= 1.0, 1.0, self._worse(pop)))
        worse = -np.sort(-worse, axis=1)
        at_least = np.concatenate([np.ones((pop.n, 1)), worse, np.zeros((pop.n, 1))], axis=1)
        return at_least[:, :-1] - at_least[:, 1:]


def _linear(x: np.ndarray, nodes_x: np.ndarray, nodes_y: np.ndarray) -> np.ndarray:
    """Piecewise-linear through the nodes, extended beyond the ends with the end slopes."""
    y = np.interp(x, nodes_x, nodes_y)
    lo = (nodes_y[1] - nodes_y[0]) / (nodes_x[1] - nodes_x[0])
    hi = (nodes_y[-1] - nodes_y[-2]) / (nodes_x[-1] - nodes_x[-2])
    return np.where(x < nodes_x[0], nodes_y[0] + lo * (x - nodes_x[0]),
                    np.where(x > nodes_x[-1], nodes_y[-1] + hi * (x - nodes_x[-1]), y))


#: Intercepts are sought in [-BOUND, BOUND] (logit scale); a share of 0 or 1 gets the bound.
BOUND = 60.0


def solve_intercepts(eta: np.ndarray, cell: np.ndarray, target: np.ndarray, tol: float = 1e-11) -> np.ndarray:
    """Per cell c, the intercept a_c with mean(expit(a_c + eta)) over the cell's members equal
    to ``target[c]``, all cells at once, to ``tol`` on the logit scale. Newton's method on
    log(mean(expit(a + eta))) = log(target), concave in a, so it converges from any start
    (mirrored for targets above one half, where 1 - the mean is the small quantity). A
    target of 0 or 1 gets -BOUND or BOUND; cells without members get 0."""
    n = target.size
    count = np.bincount(cell, minlength=n)
    size = np.maximum(count, 1)
    live = (count > 0) & (target > 0.0) & (target < 1.0)
    sign = np.where(target > 0.5, -1.0, 1.0)  # solve for the smaller of the share and its complement
    small = np.where(live, np.where(target > 0.5, 1.0 - target, target), 0.5)
    a = np.where(live, special.logit(np.where(live, target, 0.5)) - np.bincount(cell, eta, n) / size, 0.0)
    s = sign[cell]
    for _ in range(100):
        p = special.expit(s * (a[cell] + eta))  # the member's chance of the small outcome
        mean = np.maximum(np.bincount(cell, p, n) / size, 1e-300)
        slope = np.maximum(np.bincount(cell, p * (1.0 - p), n) / size, 1e-300)  # d mean / d(sign * a)
        step = np.where(live, sign * np.log(small / mean) * mean / slope, 0.0)
        a = np.clip(a + step, -BOUND, BOUND)
        if np.all(np.abs(step) < tol):
            break
    return np.where(target <= 0.0, -BOUND, np.where(target >= 1.0, BOUND, np.where(count == 0, 0.0, a)))


#: A chain computes hazards for a subset of slots when the slots that may leave are at most
#: this share of all (below it, gathering the subset costs less than computing everyone).
SUBSET_SHARE = 0.7

class Chain:
    """A chain's states, initial distribution and exits, and its vectorised step.

    For the step, the exits are laid out by the state they leave: slot k of state s is the
    k-th exit from s. Each rate is tabulated over the profile spaces, so one table indexed
    by (static profile, own state) and one indexed by the state profile give every
    tenant's K exit hazards in two gathers, where K is the largest number of exits from
    any state. Slots a state does not use have zero hazard and are never chosen.
    """

    def __init__(self, name: str, states: tuple[str, ...], exits: list[list[Exit]],
                 initial: InitialDistribution, mortality: bool, uses_time_in_state: bool) -> None:
        self.name = name
        self.states = states
        self.exits = exits  # exits[s] = exits from state s
        self.initial = initial
        self.mortality = mortality
        self.uses_time_in_state = uses_time_in_state
        self.ages: Ages | None = None  # whom the chain describes (None: every age; hhsim.health.ages)
        self.slots = max((len(ex) for ex in exits), default=0)
        self.targets = np.zeros((len(states), max(self.slots, 1)), dtype=np.int8)
        self.on_probability = np.zeros((len(states), max(self.slots, 1)), dtype=bool)
        self.period = np.ones(len(states))  # years that a state's exit probabilities refer to
        self.emptying = np.zeros_like(self.on_probability)  # exits that empty their state
        self.rest = np.zeros_like(self.on_probability)  # "rest" exits filled per tenant
        for s, ex in enumerate(exits):
            self.targets[s, :len(ex)] = [e.to for e in ex]
            self.on_probability[s, :len(ex)] = [e.scale == "probability" for e in ex]
            self.period[s] = next((e.per for e in ex if e.scale == "probability"), 1.0)
            self.emptying[s, :len(ex)] = [e.empties for e in ex]
            self.rest[s, :len(ex)] = [e.rest and e.scale == "probability" for e in ex]
        self.empties = self.emptying.any(axis=1)  # states emptied for certain
        self.static_table: np.ndarray | None = None
        self.state_table: np.ndarray | None = None

    @property
    def rates(self) -> list[Rate]:
        """Each distinct rate once (death from every state is one rate)."""
        return list({id(e.rate): e.rate for ex in self.exits for e in ex}.values())

    def tabulate(self, space: ProfileSpace) -> None:
        """Lay the exits' profile tables out by state (after every rate is tabulated)."""
        if not self.slots:
            return
        n_states = len(self.states)
        static = np.zeros((space.static_grid.n, n_states, self.slots), dtype=np.float32)
        state = np.zeros((space.state_grid.n, self.slots), dtype=np.float32)
        own = space.state_grid.states[self.name]  # each state profile's state in this chain
        # Each (slot, rate) once, with the states whose exit it is there (None: every state),
        # so that a rate's dynamic factors (e.g. death from every state) are computed once.
        where: dict[tuple[int, int], tuple[Rate, np.ndarray]] = {}
        for s, ex in enumerate(self.exits):
            for k, e in enumerate(ex):
                static[:, s, k] = e.rate.static_table
                state[own == s, k] = e.rate.state_table[own == s]
                _, states = where.setdefault((k, id(e.rate)), (e.rate, np.zeros(n_states, dtype=bool)))
                states[s] = True
        self._per_slot: list[tuple[int, Rate, np.ndarray | None]] = [
            (k, rate, None if states.all() else states) for (k, _), (rate, states) in where.items()]
        self.static_table = static.reshape(-1, self.slots)
        self.state_table = state

    def step(self, pop: Population, alive: np.ndarray, u: np.ndarray, dt: float,
             effect: EffectFn) -> StepOutcome:
        """Decide exits over ``dt`` years for tenants alive at the start (``alive``: mask).

        ``effect(rate, idx)`` gives any intervention multiplier of a rate for the slots
        ``idx`` (every slot when None). Only the living of the chain's ages can leave (a
        mortality chain's: every age); when they are few (a child chain; waiting-list slots
        with tenancies that turn over) their hazards alone are computed, with the same
        numbers, element by element, as for every slot.
        """
        if self.static_table is None:
            empty = np.empty(0, dtype=np.intp)
            return StepOutcome(empty, np.empty(0, np.int8), empty, np.empty(0))
        own = pop.states[self.name]
        may = alive if self.ages is None or self.mortality else \
            alive & self.ages.inside[np.minimum(pop.age_years, MAX_AGE)]
        idx = np.flatnonzero(may)
        if idx.size > SUBSET_SHARE * pop.n:
            ex = choose_exits(self.hazards(pop, effect), u, dt, may)
            who = ex.who
        else:
            ex = choose_exits(self.hazards(pop, effect, idx=idx), u[idx], dt, np.ones(idx.size, dtype=bool))
            who = idx[ex.who]
        targets = self.targets[own[who], ex.choice]
        dead = targets == DEATH
        return StepOutcome(who[~dead], targets[~dead], who[dead], ex.when[dead])

    def hazards(self, pop: Population, effect: EffectFn, dtype: type = np.float32,
                idx: np.ndarray | None = None) -> np.ndarray:
        """(n, K) hazards per year of the exits of every slot (of the slots ``idx``; zero for
        slots a state lacks), in ``dtype`` (float64: the terms' factors are kept in double
        precision)."""
        own = pop.states[self.name] if idx is None else np.take(pop.states[self.name], idx)
        static = pop.static_profile if idx is None else np.take(pop.static_profile, idx)
        state = pop.state_profile if idx is None else np.take(pop.state_profile, idx)
        row = static * len(self.states) + own
        h = np.take(self.static_table, row, axis=0).astype(dtype, copy=False)
        h *= np.take(self.state_table, state, axis=0)
        for k, rate, states in self._per_slot:
            m = effect(rate, idx)
            dynamic = [t for t in rate.terms if t.kind == "dynamic"]
            if m is None and not dynamic:
                continue
            factor = None if m is None else m.astype(np.float32)
            for term in dynamic:  # a factor may be one number for everyone (a calendar month's)
                f = term.factor(pop, idx)
                factor = f if factor is None else factor * f
            h[:, k] *= factor if states is None else np.where(np.take(states, own), factor, np.float32(1))
        sure = self._fill_rest(h, own) if self.empties.any() else None
        if self.on_probability.any():
            # Probabilities of leaving a state by each exit -> hazards sharing their total.
            on = np.take(self.on_probability, own, axis=0)
            total = np.minimum(row_sums(np.where(on, h, 0)), 1 - 1e-7)
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = np.where(total > 0, -np.log1p(-total) / (np.take(self.period, own) * total), 0)
            h = np.where(on, h * scale[:, None].astype(h.dtype), h)
        if sure is not None:
            h = self._empty(h, own, sure)
        return h

    def _fill_rest(self, h: np.ndarray, own: np.ndarray) -> np.ndarray:
        """Fill in the "rest" exits given as probabilities (1 minus the state's other
        probabilities after rate ratios, at least 0); return whether each tenant's state
        empties this step. A state on the probability scale empties where its probabilities
        add up to 1; on the hazard scale (infinite total hazard), always."""
        sure = np.take(self.empties, own)
        if not self.on_probability.any():
            return sure
        on = np.take(self.on_probability, own, axis=0)
        if self.rest.any():
            rest = np.take(self.rest, own, axis=0)
            others = row_sums(np.where(on & ~rest, h, 0))
            h[:] = np.where(rest, np.maximum(1 - others, 0)[:, None], h)
        given = row_sums(np.where(on, h, 0))
        return sure & (~on.any(axis=1) | (given >= 1 - ROW_TOLERANCE))

    def _empty(self, h: np.ndarray, own: np.ndarray, sure: np.ndarray) -> np.ndarray:
        """Hazards per year where the state empties (``sure``): its emptying exits share
        ``EMPTYING_HAZARD`` in proportion to their values; its other exits get nothing."""
        g = np.where(np.take(self.emptying, own, axis=0), h, np.float32(0))
        total = row_sums(g)
        with np.errstate(invalid="ignore", divide="ignore"):
            emptied = g * (np.float32(EMPTYING_HAZARD) / total)[:, None]
        return np.where((sure & (total > 0))[:, None], emptied, h)


def parse_initial(node: Mapping[str, Any] | None, where: str, n_states: int,
                  ctx: TermContext) -> InitialDistribution:
    """The initial distribution of a chain from its ``initial`` table."""
    if not node or "prevalence" not in node:
        raise HhsimError(where, "has no prevalence",
                         "add prevalence = { value = [...one share per state...], ... }")
    leaf = node["prevalence"]
    pw = f"{where}.prevalence"
    p = leaf_parameter(leaf, pw, '{ value = ..., unit = "share", ... }')
    arr = np.asarray(p.value, dtype=float)
    if arr.shape[-1] != n_states:
        raise HhsimError(pw, f"needs {n_states} shares per row (one per state)",
                         "give one share per state, best state first")
    if "breaks" in leaf:
        nb = len(leaf["breaks"])
        band_of_age = band_lookup(leaf["breaks"], MAX_AGE, pw)
        if arr.shape == (nb, n_states):
            arr = np.stack([arr, arr])
        elif arr.shape != (2, nb, n_states):
            raise HhsimError(pw, f"has shape {arr.shape}; expected ({nb}, {n_states}) "
                             f"or (2, {nb}, {n_states})", "give one row per age band")
    else:
        if arr.shape != (n_states,):
            raise HhsimError(pw, "a table of shares needs breaks", "add breaks = [16, 25, ...]")
        band_of_age = np.zeros(MAX_AGE + 1, dtype=np.intp)
        arr = np.broadcast_to(arr, (2, 1, n_states)).copy()
    sums = arr.sum(axis=-1)
    if not np.allclose(sums, 1.0, atol=SHARE_TOLERANCE):
        raise HhsimError(pw, f"shares sum to {sums.flat[np.argmax(np.abs(sums - 1))]:.4g}, not 1",
                         "make each row of shares add up to 1")
    arr = arr / sums[..., None]
    check_keys(node, where, {"prevalence", "odds_ratio", "smooth"})
    smooth = node.get("smooth", False)
    if not isinstance(smooth, bool):
        raise HhsimError(f"{where}.smooth", "must be true or false", "write smooth = true")
    if smooth and arr.shape[1] < 2:
        raise HhsimError(f"{where}.smooth", "needs shares by at least two age bands",
                         "give prevalence by age band with breaks, or remove smooth")
    terms = parse_terms(node.get("odds_ratio"), f"{where}.odds_ratio", ctx)
    return InitialDistribution(where, arr, band_of_age, terms, smooth)


TRANSITION_KEYS = {"from", "to", "rate", "probability", "rr", "rr_on", "reference", "description"}


def parse_exits(node: Mapping[str, Any] | None, where: str, states: tuple[str, ...],
                ctx: TermContext, cycle_years: float) -> tuple[list[list[Exit]], bool]:
    """The exits of every state from a chain's ``transitions`` table.

    Returns the exits by state and whether any uses time in state.
    """
    exits: list[list[Exit]] = [[] for _ in states]
    prob_groups: dict[int, list[tuple[int, np.ndarray, float, list[Term], str, bool, str]]] = {}
    rests: dict[int, tuple[int, str]] = {}  # state -> (target, name) of its "rest" exit
    uses_tis = False
    for tname, t in (node or {}).items():
        tw = f"{where}.{tname}"
        check_keys(t, tw, TRANSITION_KEYS)
        src = _state_index(t.get("from"), states, f"{tw}.from", allow_dead=False)
        dst = _state_index(t.get("to"), states, f"{tw}.to", allow_dead=True)
        if src == dst:
            raise HhsimError(tw, "goes from a state to itself", "remove it or change 'to'")
        tctx = TermContext(ctx.chains, own_chain=ctx.own_chain, attributes=ctx.attributes, clocks=ctx.clocks)
        terms = parse_terms(t.get("rr"), f"{tw}.rr", tctx)
        uses_tis |= any(term.name.endswith(".time_in_state") for term in terms)
        reference = bool(t.get("reference", False))
        if ("rate" in t) == ("probability" in t):
            raise HhsimError(tw, "needs exactly one of rate or probability",
                             "give rate = {...} or probability = {...}")
        if isinstance(t.get("probability"), str):
            _check_rest(t, tw, rests.get(src))
            rests[src] = (dst, tw)
            prob_groups.setdefault(src, [])  # keeps the state's place in the file order
            continue
        if "rate" in t:
            if "rr_on" in t:
                raise HhsimError(f"{tw}.rr_on", "only applies to exits given as probabilities",
                                 "remove rr_on (rate ratios multiply rates)")
            if is_parametric(t["rate"]):  # a hazard that changes on a clock (health.hazards)
                rate = parametric_rate(t["rate"], tw, src, tctx, cycle_years, terms, reference)
                uses_tis |= rate.terms[0].clock == "time_in_state"
                exits[src].append(Exit(dst, rate))
                continue
            table, unit, _ = base_leaf(t["rate"], f"{tw}.rate")
            if unit.lower().startswith("probability"):
                raise HhsimError(f"{tw}.rate", "is a probability", "call it probability = {...}")
            rate = Rate(tw, table / period_years(unit, f"{tw}.rate", cycle_years), terms, reference)
            exits[src].append(Exit(dst, rate))
        else:
            table, unit, _ = base_leaf(t["probability"], f"{tw}.probability")
            if not unit.lower().startswith("probability"):
                raise HhsimError(f"{tw}.probability", f"has unit '{unit}'",
                                 "use a unit like 'probability per year'")
            per = period_years(unit, f"{tw}.probability", cycle_years)
            rr_on = t.get("rr_on", "hazard")
            if rr_on not in ("hazard", "probability"):
                raise HhsimError(f"{tw}.rr_on", f"unknown scale '{rr_on}'", 'use "hazard" or "probability"')
            prob_groups.setdefault(src, []).append((dst, table, per, terms, tw, reference, rr_on))
    for src, group in prob_groups.items():
        rest = rests.get(src)
        pers = {g[2] for g in group}
        if len(pers) > 1:
            raise HhsimError(f"{where}", f"exits from '{states[src]}' give probabilities over "
                             "different periods", "give them all per the same period")
        per = pers.pop() if pers else cycle_years
        total_p = sum(g[1] for g in group) if group else np.zeros((2, MAX_AGE + 1))
        empties = _empties(total_p, rest is not None, where, states[src], per, cycle_years)
        scales = {g[6] for g in group}
        if len(scales) > 1:
            raise HhsimError(where, f"exits from '{states[src]}' mix rr_on scales",
                             'give the same rr_on to every probability exit of a state')
        scale = scales.pop() if scales else "hazard"
        if scale == "probability":
            for dst, table, _, terms, tw, reference, _ in group:
                exits[src].append(Exit(dst, Rate(tw, table, terms, reference), "probability", per, empties))
            if rest is not None:
                exits[src].append(Exit(rest[0], Rate(rest[1], np.zeros_like(total_p)), "probability",
                                       per, True, rest=True))
            continue
        if empties:  # an infinite total hazard, shared in proportion to the probabilities
            for dst, table, _, terms, tw, reference, _ in group:
                exits[src].append(Exit(dst, Rate(tw, table, terms, reference), empties=True))
            if rest is not None:
                exits[src].append(Exit(rest[0], Rate(rest[1], np.maximum(1 - total_p, 0)),
                                       empties=True, rest=True))
            continue
        total_h = -np.log1p(-total_p) / per
        with np.errstate(invalid="ignore", divide="ignore"):
            share = [np.where(total_p > 0, g[1] / total_p, 0.0) for g in group]
        for (dst, _, _, terms, tw, reference, _), sh in zip(group, share, strict=True):
            exits[src].append(Exit(dst, Rate(tw, total_h * sh, terms, reference)))
    return exits, uses_tis


def _check_rest(t: Mapping[str, Any], where: str, earlier: tuple[int, str] | None) -> None:
    """A ``probability = "rest"`` exit: the only rest of its state, with no rate ratios."""
    if t["probability"] != REST:
        raise HhsimError(f"{where}.probability", f"unknown value '{t['probability']}'",
                         f'give {{ value = ..., unit = ..., source = ... }} or "{REST}"')
    if earlier is not None:
        raise HhsimError(where, f"is a second rest of its state (the first is {earlier[1]})",
                         f'give probability = "{REST}" to one exit of a state only')
    extra = sorted(set(t) & {"rr", "rr_on", "reference"})
    if extra:
        raise HhsimError(f"{where}.{extra[0]}", "does not apply to the rest",
                         "remove it: the rest is what the state's other probability exits leave")


def _empties(total: np.ndarray, rest: bool, where: str, state: str, per: float,
             cycle_years: float) -> bool:
    """Whether a state's probability exits (adding up to ``total`` per ``per`` years, with a
    rest or not) take everyone each step; errors if they add up to more than 1, to 1 only
    at some ages, or to 1 over a period longer than a step."""
    if np.any(total > 1 + ROW_TOLERANCE):
        raise HhsimError(where, f"probabilities of leaving '{state}' add up to {total.max():.7g}, "
                         "more than 1", "make them add up to 1 at most: staying, or the rest, "
                         "takes what is left")
    one = total >= 1 - ROW_TOLERANCE
    if not rest and one.any() and not one.all():
        raise HhsimError(where, f"probabilities of leaving '{state}' add up to 1 at some ages and "
                         "less at others", f'make them add up to 1 at every age, e.g. with one exit '
                         f'probability = "{REST}", or to less than 1')
    empties = rest or bool(one.all())
    if empties and per > cycle_years * (1 + 1e-9):
        raise HhsimError(where, f"probabilities of leaving '{state}' add up to 1 over a period "
                         "longer than a step, so the state would empty in one step",
                         "give them per cycle, unit 'probability per cycle', or leave a share to stay")
    return empties


def _state_index(name: Any, states: tuple[str, ...], where: str, allow_dead: bool) -> int:
    if allow_dead and name == DEAD_NAME:
        return DEATH
    if not isinstance(name, str):
        raise HhsimError(where, "must name a state", f"use one of {list(states)}")
    if name not in states:
        raise unknown_key_error(where, name, [*states, *([DEAD_NAME] if allow_dead else [])],
                                what="state")
    return states.index(name)
