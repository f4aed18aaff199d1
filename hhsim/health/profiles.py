"""Profiles: precomputed rates over every combination of slowly changing covariates.

A rate is base(sex, age) times terms. Most terms read covariates that change rarely (sex,
age in years, deprivation decile, tenure, dwelling hazards: the *static profile*) or the
tenant's chain states (the *state profile*). Both spaces are small, so each rate is
tabulated once over them; evaluating it for a tenant is then two gathers, whatever the
number of terms. Terms on continuous or fast-moving covariates (wellbeing, time in state)
are still applied one by one.

The profile index of every tenant is kept in ``Population.static_profile`` and
``Population.state_profile``; ``ProfileSpace.refresh`` recomputes them after ageing, a
change of dwelling attributes, or chain transitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from hhsim.health.terms import MAX_AGE, Term
from hhsim.world.population import DECILES, HAZARDS, TENURES, Population

N_HAZARD_COMBOS = 1 << len(HAZARDS)
STATIC_SHAPE = (2, MAX_AGE + 1, DECILES, len(TENURES), N_HAZARD_COMBOS)
N_STATIC = int(np.prod(STATIC_SHAPE))


def _grid(shape: tuple[int, ...]) -> list[np.ndarray]:
    return [a.ravel() for a in np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")]


@dataclass
class ProfileSpace:
    """The static and state profile spaces of a model with the given chains."""

    chains: Mapping[str, tuple[str, ...]]
    state_shape: tuple[int, ...] = field(init=False)
    static_grid: SimpleNamespace = field(init=False, repr=False)
    state_grid: SimpleNamespace = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.state_shape = tuple(len(s) for s in self.chains.values()) or (1,)
        sex, age, dec, ten, haz = _grid(STATIC_SHAPE)
        self.static_grid = SimpleNamespace(
            n=N_STATIC, female=sex.astype(bool), age_years=age.astype(np.int16),
            deprivation=(dec + 1).astype(np.int8), tenure=ten.astype(np.int8),
            hazards=haz.astype(np.uint8))
        codes = _grid(self.state_shape)
        self.state_grid = SimpleNamespace(
            n=int(np.prod(self.state_shape)),
            states={c: codes[i].astype(np.int8) for i, c in enumerate(self.chains)})

    def static_table(self, base: np.ndarray, terms: list[Term]) -> np.ndarray:
        """base(sex, age) times the static terms, for every static profile (float32)."""
        g = self.static_grid
        out = base[g.female.view(np.int8), g.age_years].astype(np.float32)
        for t in terms:
            if t.kind == "static":
                out *= t.factor(g, None)
        return out

    def state_table(self, terms: list[Term]) -> np.ndarray:
        """Product of the state terms for every state profile (float32)."""
        out = np.ones(self.state_grid.n, dtype=np.float32)
        for t in terms:
            if t.kind == "state":
                out *= t.factor(self.state_grid, None)
        return out

    def sums(self, terms: list[Term]) -> tuple[np.ndarray, np.ndarray]:
        """Sums of additive terms over the static and the state profiles (float32 each)."""
        static = np.zeros(self.static_grid.n, dtype=np.float32)
        state = np.zeros(self.state_grid.n, dtype=np.float32)
        for t in terms:
            if t.kind == "static":
                static += t.factor(self.static_grid, None)
            elif t.kind == "state":
                state += t.factor(self.state_grid, None)
        return static, state

    def marginals(self, pop: Population) -> dict[str, np.ndarray]:
        """People represented by the living tenants in each state of each chain."""
        counts = np.bincount(pop.state_profile[pop.alive], weights=pop.weight[pop.alive],
                             minlength=self.state_grid.n)
        grid = counts.reshape(self.state_shape)
        axes = range(len(self.state_shape))
        return {c: grid.sum(axis=tuple(a for a in axes if a != i))
                for i, c in enumerate(self.chains)}

    def refresh(self, pop: Population, static: np.ndarray | None = None,
                state: np.ndarray | None = None, everyone: bool = True) -> None:
        """Recompute profile indices: of every tenant, or of the tenants ``static`` (whose
        sex, age, area, tenure or hazards changed) and ``state`` (whose states changed)."""
        # Indices are kept as intp: np.take converts any other integer type on every call.
        if everyone:
            pop.static_profile = self.static_index(pop, None)
            pop.state_profile = self.state_index(pop, None)
            return
        if static is not None and static.size:
            pop.static_profile[static] = self.static_index(pop, static)
        if state is not None and state.size:
            pop.state_profile[state] = self.state_index(pop, state)

    def static_index(self, pop: Population, idx: np.ndarray | None) -> np.ndarray:
        def take(a: np.ndarray) -> np.ndarray:
            return a if idx is None else a[idx]

        out = take(pop.female).view(np.int8).astype(np.intp)
        for size, code in ((MAX_AGE + 1, np.minimum(take(pop.age_years), MAX_AGE)),
                           (DECILES, take(pop.deprivation) - 1), (len(TENURES), take(pop.tenure)),
                           (N_HAZARD_COMBOS, take(pop.hazards))):
            out *= size
            out += code
        return out

    def state_index(self, pop: Population, idx: np.ndarray | None) -> np.ndarray:
        out = np.zeros(pop.n if idx is None else idx.size, dtype=np.intp)
        for size, chain in zip(self.state_shape, self.chains, strict=False):
            out *= size
            out += pop.states[chain] if idx is None else pop.states[chain][idx]
        return out
