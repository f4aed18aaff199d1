"""Cohort mode with clocks: a chain's states expanded into tunnel states.

A cohort of alike people is followed by its share in each state. Where a rate, the utility
or a state cost reads a clock that can differ between people in the same state at the same
time (time in state, time in a group of states, time since an event), the cohort is
followed by state and clock values instead: one *row* per combination that can be reached,
a tunnel state. Clocks that are the same for everyone at a time (model time, time since
entry, age) need no rows; they are set each cycle.

The rows are found by following every possible move from the start for the number of
cycles run. A clock read only by terms is followed up to the start of its last band (every
later value reads the same); one read by a hazard, to the horizon. Without such clocks the
rows are the states in order, and cohort mode computes exactly what it did before clocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from hhsim.core.errors import HhsimError
from hhsim.health.chains import DEATH, Chain
from hhsim.health.clocks import MAX_MONTHS, Clocks
from hhsim.health.terms import MAX_MONTHS_IN_STATE, Term
from hhsim.world.population import Population

TIME_IN_STATE = "time_in_state"
#: Most rows (tunnel states) cohort mode follows.
MAX_ROWS = 20_000


@dataclass
class Rows:
    """The cohort's rows: each a state of the chain with a value of each clock followed."""

    chain: str
    state: np.ndarray  # (R,) chain state of each row; row s < states is state s at the start
    values: np.ndarray  # (R, C) months on each clock followed (-1: not running)
    columns: list[str]  # the clocks followed: "time_in_state" or names of [clocks]
    same_for_all: list[str]  # clocks set each cycle (time since entry, model time)
    stay: np.ndarray  # (R,) the row of a person of row r after a cycle in the same state
    move: np.ndarray  # (R, K) the row after the state's exit k (R: dead)
    dtype: type  # of the hazards: float64 where a term reads a clock

    @property
    def n(self) -> int:
        return int(self.state.size)

    def place(self, pop: Population, months: int) -> None:
        """Set each representative's state and clocks, ``months`` after model start."""
        pop.states[self.chain] = self.state
        for j, column in enumerate(self.columns):
            months_on = np.ascontiguousarray(self.values[:, j])
            if column == TIME_IN_STATE:
                pop.time_in_state[self.chain] = months_on
            else:
                pop.clocks[column] = months_on
        for name in self.same_for_all:
            pop.clocks[name] = np.full(self.n, min(months, MAX_MONTHS), dtype=np.int16)

    def propagate(self, occupancy: np.ndarray, leave: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Occupancy of the rows (then dead) a cycle later: rows leave with probability
        ``leave``, by exit k with probability ``p[:, k]``."""
        n, rows = self.n, np.arange(self.n)
        if not self.columns:  # a dense matrix, built in the order cohort mode always used
            matrix = np.zeros((n + 1, n + 1))
            matrix[n, n] = 1.0
            matrix[rows, self.stay] = 1.0 - leave
            for k in range(p.shape[1]):
                np.add.at(matrix, (rows, self.move[:, k]), p[:, k])
            return occupancy @ matrix
        k = p.shape[1]
        matrix = sparse.csr_matrix(
            (np.concatenate([1.0 - leave, p.T.ravel(), [1.0]]),
             (np.concatenate([rows, np.tile(rows, k), [n]]),
              np.concatenate([self.stay, self.move.T.ravel(), [n]]))), shape=(n + 1, n + 1))
        return matrix.T @ occupancy

    def by_state(self, trace: np.ndarray, n_states: int) -> np.ndarray:
        """A trace over rows (then dead) summed by state (then dead)."""
        if not self.columns:
            return trace
        out = np.zeros((trace.shape[0], n_states + 1))
        for s in range(n_states):
            out[:, s] = trace[:, :self.n][:, self.state == s].sum(axis=1)
        out[:, n_states] = trace[:, self.n]
        return out


def cohort_rows(name: str, chain: Chain, clocks: Clocks, terms: list[Term], steps: int) -> Rows:
    """The rows of a cohort of chain ``name`` followed for ``steps`` cycles, given every term
    of its rates and rewards; a one-line error beyond ``MAX_ROWS``."""
    read = {t.clock for t in terms if t.clock is not None}
    columns = [c for c in [TIME_IN_STATE, *clocks.named] if c in read
               and (c == TIME_IN_STATE or clocks.named[c].chain is not None)]
    same_for_all = [c for c, clock in clocks.named.items() if clock.chain is None]
    dtype = np.float64 if read else np.float32
    n_states, m = len(chain.states), clocks.cycle_months
    caps = [_saturation(c, terms, m, steps) for c in columns]

    def after(values: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        for j, c in enumerate(columns):
            if c == TIME_IN_STATE:
                v = np.where(old == new, np.minimum(values[:, j].astype(np.int32) + m, MAX_MONTHS), 0)
            else:
                v = clocks.named[c].after(values[:, j], old, new, m)
            out[:, j] = np.minimum(v, caps[j])
        return out

    start = np.arange(n_states, dtype=np.int8)
    values = np.zeros((n_states, len(columns)), dtype=np.int16)  # time in state starts at 0
    for j, c in enumerate(columns):
        if c != TIME_IN_STATE:
            values[:, j] = clocks.named[c].start(start, n_states)
    if not columns:
        targets = np.where(chain.targets == DEATH, n_states, chain.targets).astype(np.intp)
        return Rows(name, start, values, columns, same_for_all, np.arange(n_states), targets, dtype)
    space = _KeySpace(n_states, caps)
    state, values = _reachable(chain, start, values, after, space, steps)
    # The row after each move; a row first reached at the horizon has no successor rows
    # (nobody is in it before then), so its moves point back to itself.
    n, slots = state.size, max(chain.slots, 1)
    rows = np.arange(n)
    stay = space.find(state, after(values, state, state), fallback=rows)
    move = np.empty((n, slots), dtype=np.intp)
    for k in range(slots):
        target = chain.targets[state, k]
        to = np.where(target == DEATH, state, target).astype(np.int8)
        move[:, k] = np.where(target == DEATH, n, space.find(to, after(values, state, to), fallback=rows))
    return Rows(name, state, values, columns, same_for_all, stay, move, dtype)


def _saturation(column: str, terms: list[Term], months: int, steps: int) -> int:
    """Months beyond which clock ``column`` need not be followed: the horizon if a hazard
    reads it, else the start of the last band of the terms that read it (cycle multiple)."""
    readers = [t for t in terms if t.clock == column]
    horizon = min(steps * months, MAX_MONTHS)
    if any(t.direct is not None for t in readers):
        return horizon
    last = 0
    for t in readers:
        table = t.table[:MAX_MONTHS_IN_STATE + 1]
        changes = np.flatnonzero(table[1:] != table[:-1])
        last = max(last, int(changes[-1]) + 1 if changes.size else 0)
    return min(math.ceil(last / months) * months, horizon)


class _KeySpace:
    """Rows encoded as one integer each (state, then each clock's months + 1), and the rows
    found so far in the order found."""

    def __init__(self, n_states: int, caps: list[int]) -> None:
        self.bases = [n_states, *(c + 2 for c in caps)]
        if math.prod(self.bases) >= 2 ** 62:
            raise HhsimError("cohort mode", "follows too many clocks at once",
                             "run it as a microsimulation, or use fewer clocks")
        self.keys = np.empty(0, dtype=np.int64)

    def encode(self, state: np.ndarray, values: np.ndarray) -> np.ndarray:
        key = np.zeros(state.size, dtype=np.int64)
        for j in range(values.shape[1] - 1, -1, -1):
            key = key * self.bases[j + 1] + (values[:, j].astype(np.int64) + 1)
        return key * self.bases[0] + state

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Add the rows of distinct ``keys`` not found yet, in order; which were new."""
        fresh = ~np.isin(keys, self.keys)
        self.keys = np.concatenate([self.keys, keys[fresh]])
        if self.keys.size > MAX_ROWS:
            raise HhsimError("cohort mode", f"the model's clocks need more than {MAX_ROWS:,} tunnel states "
                             "(states times months on each clock)",
                             "run it as a microsimulation, or shorten the horizon or the clocks' bands")
        return fresh

    def find(self, state: np.ndarray, values: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """The row of each (state, values); ``fallback`` where it is not a row."""
        keys = self.encode(state, values)
        order = np.argsort(self.keys)
        at = np.minimum(np.searchsorted(self.keys, keys, sorter=order), self.keys.size - 1)
        found = self.keys[order[at]] == keys
        return np.where(found, order[at], fallback)


def _reachable(chain: Chain, state: np.ndarray, values: np.ndarray,
               after: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], space: _KeySpace,
               steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row reachable from the start rows within ``steps`` cycles (start rows first)."""
    all_state, all_values = [state], [values]
    level = np.sort(space.encode(state, values))
    space.add(space.encode(state, values))
    n_exits = np.array([len(ex) for ex in chain.exits])
    slots = np.arange(max(chain.slots, 1))
    for _ in range(steps):
        targets = chain.targets[state][:, :slots.size]
        ok = (slots[None, :] < n_exits[state][:, None]) & (targets != DEATH)
        rows = np.nonzero(ok)[0]
        old = np.concatenate([state, state[rows]])
        new = np.concatenate([state, targets[ok]]).astype(np.int8)
        nv = after(np.concatenate([values, values[rows]]), old, new)
        nxt, pick = np.unique(space.encode(new, nv), return_index=True)
        if np.array_equal(nxt, level):
            break  # the same rows as a cycle before: nothing new can follow
        state, values, level = new[pick], nv[pick], nxt
        fresh = space.add(level)
        all_state.append(state[fresh])
        all_values.append(values[fresh])
    return np.concatenate(all_state), np.concatenate(all_values)
