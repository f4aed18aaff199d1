"""Dependent children in the households of a population (issue 18).

A run includes children when its health model describes them (``[model] children = true``,
as the default model does) unless the experiment says ``[population] children = false``
(docs/odd.md section 3.1, "Children"). ``with_children`` appends children to a population
before its health states are drawn:

1. each household of a settled tenure, in the dwelling of a living adult, has dependent
   children with the tenure's share (``world.children.share_of_households``);
2. such a household has 1, 2 or 3 children with the shares ``world.children.per_household``;
3. each child's age is uniform over 0 to ``ADULT_AGE`` years (in months), its sex female
   with chance ``world.children.female``;
4. children share their household's dwelling (so its hazards and tenure) and household id,
   and carry the mean weight of its adults. Their slots follow the adults'.

A child is a person under ``ADULT_AGE``: one who turns 16 is an adult from that month on
(``is_child`` reads the age, which advances every step). Random numbers: two uniforms per
dwelling, occupied or not (children or not, how many), then two per child in dwelling order
(age, sex), from a generator of their own, so the adults' draws are as without children.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError
from hhsim.world.population import TENURES, Population
from hhsim.world.stock import MIN_AGE
from hhsim.world.synthetic import world_value

#: Age (years) from which a person is an adult: the youngest age of a simulated tenant.
ADULT_AGE = MIN_AGE
#: The generator of households' children (structure, drawn once per run at set-up).
CHILDREN_KEY = "world:children"
MONTHS_PER_YEAR = 12


@dataclass(frozen=True)
class Children:
    """Children drawn for a population's dwellings, one entry per child."""

    dwelling: np.ndarray  # int32 index into the dwellings
    age_months: np.ndarray  # int16 age in completed months, 0 .. ADULT_AGE * 12 - 1
    female: np.ndarray  # bool

    @property
    def n(self) -> int:
        return int(self.dwelling.size)


def share_with_children(world: Mapping[str, Any]) -> np.ndarray:
    """Share of households with dependent children, by TENURES."""
    return np.array([float(world_value(world, f"world.children.share_of_households.{t}")) for t in TENURES])


def children_per_household(world: Mapping[str, Any]) -> np.ndarray:
    """Shares of households with children that have 1, 2, ... children (summing to 1)."""
    name = "world.children.per_household"
    shares = world_value(world, name)
    if shares.ndim != 1 or shares.size == 0 or abs(shares.sum() - 1.0) > 0.005:
        raise HhsimError(name, "must be a list of shares of households with 1, 2, ... children "
                         "that sum to 1", "give e.g. [0.45, 0.41, 0.14]")
    return shares / shares.sum()


def draw_children(tenure: np.ndarray, occupied: np.ndarray, world: Mapping[str, Any],
                  rng: np.random.Generator) -> Children:
    """Children of the households in the dwellings with tenure codes ``tenure`` (by dwelling),
    for the dwellings where ``occupied`` (a living adult lives there)."""
    u = rng.random((tenure.size, 2))
    has = occupied & (u[:, 0] < share_with_children(world)[tenure])
    cum = np.cumsum(children_per_household(world))
    count = np.where(has, np.minimum(np.searchsorted(cum, u[:, 1], side="right"), cum.size - 1) + 1, 0)
    dwelling = np.repeat(np.arange(tenure.size, dtype=np.int32), count)
    v = rng.random((dwelling.size, 2))
    months = np.floor(v[:, 0] * ADULT_AGE * MONTHS_PER_YEAR).astype(np.int16)
    female = v[:, 1] < float(world_value(world, "world.children.female"))
    return Children(dwelling=dwelling, age_months=months, female=female)


def with_children(pop: Population, world: Mapping[str, Any], rng: np.random.Generator) -> Population:
    """``pop`` with the children of its living adults' households appended (before its
    health states are drawn; see the module docstring). Children are alive as their
    household is (a waiting list's households are added alive and set waiting after)."""
    if pop.states:
        raise ValueError("add children before the health states are drawn")
    adults = np.flatnonzero(pop.alive)
    n_dw = pop.dwellings.n
    occupied = np.zeros(n_dw, dtype=bool)
    occupied[pop.dwelling[adults]] = True
    kids = draw_children(pop.dwellings.tenure, occupied, world, rng)
    household_of = np.zeros(n_dw, dtype=np.int32)
    household_of[pop.dwelling[adults]] = pop.household[adults]
    people = np.bincount(pop.dwelling[adults], minlength=n_dw)
    weight = np.bincount(pop.dwelling[adults], weights=pop.weight[adults].astype(np.float64), minlength=n_dw)
    mean_weight = np.divide(weight, people, out=np.zeros(n_dw), where=people > 0)
    dwelling = np.concatenate([pop.dwelling, kids.dwelling]).astype(np.int32)
    same = pop.household is pop.dwelling
    household = dwelling if same else np.concatenate([pop.household, household_of[kids.dwelling]])
    return Population(age_months=np.concatenate([pop.age_months, kids.age_months]).astype(np.int16),
                      female=np.concatenate([pop.female, kids.female]),
                      alive=np.concatenate([pop.alive, np.ones(kids.n, dtype=bool)]),
                      household=household.astype(np.int32, copy=False), dwelling=dwelling,
                      weight=np.concatenate([pop.weight, mean_weight[kids.dwelling].astype(np.float32)]),
                      dwellings=pop.dwellings)


def is_child(pop: Population) -> np.ndarray:
    """Boolean per slot: a person under ``ADULT_AGE`` (a child; adult from the month they turn 16)."""
    return pop.age_months < ADULT_AGE * MONTHS_PER_YEAR
