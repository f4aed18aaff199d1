"""Clocks: whole months since something happened to a tenant, read by terms and hazards.

``time_in_state`` restarts whenever a tenant changes state, and only transitions read it. A
model file may name other clocks in a top-level ``[clocks]`` table:

    [clocks]
    since_entry = { starts = "entry" }                                             # model entry
    ill = { starts = "enter", chain = "health", states = ["sick", "sicker"] }       # time in a group
    since_first_ill = { starts = "first_enter", chain = "health", states = ["sick", "sicker"] }
    since_relapse = { starts = "event", chain = "health", transitions = ["relapse"] }

A term ``rr.<clock>`` (or ``multiplier.<clock>``) reads a clock like ``rr.time_in_state``:
one value per band of months. A parametric hazard (``hhsim.health.hazards``) may run on one.
Each clock is an int16 array of months per tenant (``Population.clocks``), ``NOT_RUNNING``
(-1) while it is not running: a term is neutral and a hazard 0 there. Transitions read the
value at the start of the step, rewards the value at the step boundary; clocks advance by
the cycle after each step, with the states (``Clock.after``), as ``time_in_state`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError, printable, unknown_key_error
from hhsim.core.parameters import check_keys, leaf_parameter
from hhsim.health.terms import COVARIATES, MAX_MONTHS_IN_STATE, Term, TermContext
from hhsim.world.bands import band_lookup
from hhsim.world.population import Population

NOT_RUNNING = -1
MAX_MONTHS = int(np.iinfo(np.int16).max)  # clocks stop advancing here (2,730 years)
#: What starts a clock: model entry, entering a group of states (restarting on each entry,
#: stopping on leaving it), first entering it (never stopping), or a transition.
STARTS = {"entry": set(), "enter": {"chain", "states"}, "first_enter": {"chain", "states"},
          "event": {"chain", "transitions"}}
MODEL_TIME = "model_time"
#: Clocks a hazard may run on without a [clocks] entry.
BUILTIN = (MODEL_TIME, "age", "time_in_state")


@dataclass(frozen=True)
class Clock:
    """One named clock: what starts it and, for a chain's clock, which states or moves.

    ``group`` marks the states of the group (``enter``, ``first_enter``): tenants who start
    the model there start the clock at 0 months, as ``time_in_state`` does.
    ``events[from, to]`` marks the moves that restart an ``event`` clock, which runs for
    nobody at model start (no event has happened in the model yet).
    """

    name: str
    starts: str
    chain: str | None = None
    group: np.ndarray | None = None
    events: np.ndarray | None = None

    def start(self, state: np.ndarray | None, n: int) -> np.ndarray:
        """Months at model start of ``n`` tenants in chain states ``state``."""
        if self.starts == "entry":
            return np.zeros(n, dtype=np.int16)
        if self.starts == "event":
            return np.full(n, NOT_RUNNING, dtype=np.int16)
        return np.where(self.group[state], 0, NOT_RUNNING).astype(np.int16)

    def after(self, value: np.ndarray, old: np.ndarray | None, new: np.ndarray | None,
              months: int) -> np.ndarray:
        """Months one step of ``months`` later, for tenants in chain states ``old`` at the
        start of the step and ``new`` at its end (``old`` where they stayed)."""
        running = value >= 0
        out = np.where(running, np.minimum(value.astype(np.int32) + months, MAX_MONTHS), NOT_RUNNING)
        if self.starts == "enter":
            inside = self.group[new]
            out = np.where(inside, np.where(self.group[old], out, 0), NOT_RUNNING)
        elif self.starts == "first_enter":
            out = np.where(~running & self.group[new], 0, out)
        elif self.starts == "event":
            out = np.where(self.events[old, new], 0, out)
        return out.astype(np.int16)

    def term(self, name: str, node: Any, ctx: TermContext) -> Term:
        """A term with one value per band of months on this clock (``breaks`` in months).
        While the clock is not running it reads -1 months: the band holding -1 gives the
        value then if there is one (a first break of -1), else the term is neutral."""
        p = leaf_parameter(node, name)
        value = np.asarray(p.value, dtype=float)
        if "breaks" not in node:
            raise HhsimError(name, f"needs breaks (months on clock '{self.name}')",
                             "add breaks = [0, 6, 12]")
        if value.shape != (len(node["breaks"]),):
            raise HhsimError(name, "needs one value per band of months", "give one value per break")
        lut = band_lookup(node["breaks"], MAX_MONTHS_IN_STATE, name)
        band = int(np.searchsorted(np.asarray(node["breaks"], dtype=float), NOT_RUNNING, side="right")) - 1
        stopped = value[band] if band >= 0 else ctx.neutral
        table = np.append(value[lut], stopped).astype(np.float32)  # last: not running
        clock = self.name

        def codes(pop: Population, idx: np.ndarray | None) -> np.ndarray:
            v = pop.clocks[clock] if idx is None else np.take(pop.clocks[clock], idx)
            return np.where(v < 0, MAX_MONTHS_IN_STATE + 1, np.minimum(v, MAX_MONTHS_IN_STATE))

        return Term(name, codes, table, kind="dynamic", clock=clock)


@dataclass
class Clocks:
    """The model's clocks (``named``), kept per tenant in ``Population.clocks``."""

    named: dict[str, Clock] = field(default_factory=dict)
    cycle_months: int = 1

    def with_model_time(self, terms: list[Term]) -> Clocks:
        """These clocks, and the clock ``model_time`` if one of ``terms`` runs on it."""
        if not any(t.clock == MODEL_TIME for t in terms):
            return self
        return Clocks({**self.named, MODEL_TIME: Clock(MODEL_TIME, "entry")}, self.cycle_months)

    def start(self, pop: Population) -> None:
        """Set every clock of every slot to its value at model start (states drawn)."""
        for name, clock in self.named.items():
            pop.clocks[name] = clock.start(pop.states.get(clock.chain), pop.n)

    def advance(self, pop: Population, alive: np.ndarray, outcomes: Mapping[str, Any],
                died: np.ndarray) -> None:
        """Advance the clocks of the tenants ``alive`` at the start of a step, before the
        step's moves (``outcomes`` by chain: ``moved``, ``new_state``) take effect; the
        moves of the tenants who ``died`` do not count."""
        after: dict[str, np.ndarray] = {}
        for name, clock in self.named.items():
            value = pop.clocks[name]
            if clock.chain is None:
                value[alive] = clock.after(value[alive], None, None, self.cycle_months)
                continue
            if clock.chain not in after:
                o = outcomes[clock.chain]
                keep = ~np.isin(o.moved, died)
                after[clock.chain] = pop.states[clock.chain].copy()
                after[clock.chain][o.moved[keep]] = o.new_state[keep]
            value[alive] = clock.after(value[alive], pop.states[clock.chain][alive],
                                       after[clock.chain][alive], self.cycle_months)


def refuse_elsewhere(tree: Mapping[str, Any], clocks: Clocks) -> None:
    """One-line errors for terms on a clock where clocks are not read: initial odds ratios
    (drawn before any clock runs), ``[mortality]`` and wellbeing effects."""
    def table(node: Any, *keys: str) -> Any:
        for key in keys:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node if isinstance(node, Mapping) else {}

    places = {"mortality.rr": table(tree, "mortality", "rr"),
              "wellbeing.effect": table(tree, "wellbeing", "effect")}
    places |= {f"chains.{c}.initial.odds_ratio": table(sub, "initial", "odds_ratio")
               for c, sub in table(tree, "chains").items()}
    for where, terms in places.items():
        for key in terms:
            if key in clocks.named:
                raise HhsimError(f"{where}.{key}", f"reads clock '{key}', but only transitions, services, "
                                 "admissions, utility and state costs read clocks",
                                 'remove it; for death, give transitions to = "dead" with rr.<clock>')


def parse_clocks(node: Any, chain_tree: Mapping[str, Any], chains: Mapping[str, tuple[str, ...]],
                 cycle_months: int) -> Clocks:
    """The clocks of a ``[clocks]`` table; ``chain_tree`` is the model's ``[chains]``."""
    if node is None:
        return Clocks(cycle_months=cycle_months)
    if not isinstance(node, Mapping):
        raise HhsimError("clocks", "must be a table", 'write [clocks] with name = { starts = "...", ... }')
    return Clocks({name: _clock(name, spec, chain_tree, chains) for name, spec in node.items()},
                  cycle_months)


def _clock(name: str, spec: Any, chain_tree: Mapping[str, Any],
           chains: Mapping[str, tuple[str, ...]]) -> Clock:
    where = f"clocks.{name}"
    taken = ("a covariate" if name in COVARIATES else "a chain" if name in chains
             else "a built-in clock" if name in BUILTIN else None)
    if taken:
        raise HhsimError(where, f"'{name}' is already the name of {taken}", "give the clock another name")
    check_keys(spec, where, {"starts", "description", *set().union(*STARTS.values())})
    starts = spec.get("starts")
    if not isinstance(starts, str) or starts not in STARTS:
        raise unknown_key_error(f"{where}.starts", printable(str(starts)), STARTS, what="start")
    extra = sorted(set(spec) - STARTS[starts] - {"starts", "description"})
    missing = sorted(STARTS[starts] - set(spec))
    if extra:
        raise HhsimError(f"{where}.{extra[0]}", f'does not apply to starts = "{starts}"', "remove it")
    if missing:
        raise HhsimError(where, f'needs {missing[0]} for starts = "{starts}"', f"add {missing[0]} = ...")
    if starts == "entry":
        return Clock(name, starts)
    chain = spec["chain"]
    if chain not in chains:
        raise unknown_key_error(f"{where}.chain", printable(str(chain)), chains, what="chain")
    states = chains[chain]
    key = "transitions" if starts == "event" else "states"
    names = spec[key]
    if not isinstance(names, list) or not names or not all(isinstance(s, str) for s in names):
        raise HhsimError(f"{where}.{key}", f"must be a list of {key}", f'write {key} = ["..."]')
    if starts != "event":
        group = np.zeros(len(states), dtype=bool)
        for s in names:
            if s not in states:
                raise unknown_key_error(f"{where}.states", s, states, what="state")
            group[states.index(s)] = True
        return Clock(name, starts, chain, group)
    transitions = chain_tree[chain].get("transitions")
    events = _events(names, f"{where}.transitions",
                     transitions if isinstance(transitions, Mapping) else {}, states)
    return Clock(name, starts, chain, events=events)


def _events(names: list[str], where: str, transitions: Mapping[str, Any],
            states: tuple[str, ...]) -> np.ndarray:
    """(from, to) mask of the moves made by the transitions ``names``; a clock sees moves,
    so a transition must not share its move with one that is not listed."""
    events = np.zeros((len(states), len(states)), dtype=bool)
    moves: dict[tuple[Any, Any], list[str]] = {}
    for tname, t in transitions.items():
        move = tuple(str(t.get(k)) for k in ("from", "to")) if isinstance(t, Mapping) else ()
        moves.setdefault(move, []).append(tname)
    for tname in names:
        if tname not in transitions:
            raise unknown_key_error(where, tname, transitions, what="transition")
        src, dst = transitions[tname].get("from"), transitions[tname].get("to")
        if src not in states or dst not in states:
            raise HhsimError(where, f"'{tname}' does not move between two states of the chain (it "
                             f"goes to '{dst}')", "list transitions to another state, not to death")
        twin = next((o for o in moves[(src, dst)] if o not in names), None)
        if twin is not None:
            raise HhsimError(where, f"'{tname}' and '{twin}' both go from '{src}' to '{dst}', so the "
                             "clock cannot tell them apart", f"list '{twin}' too, or merge the two")
        events[states.index(src), states.index(dst)] = True
    return events
