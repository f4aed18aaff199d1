"""The ages a rule of a model file applies to (issue 18: children in the population).

A chain, a service, an admission type or a state cost may say whom it describes:

    [chains.ltc]
    ages = { from = 16 }              # adults: years, from <= age
    [services.child_gp]
    ages = { from = 0, below = 16 }   # children: from <= age < below

Outside its ages a rule does nothing: a service or an admission type has rate 0, a state
cost costs nothing, a chain's transitions do not happen and a person holds the chain's
first state (drawn so at the start, kept while outside). A child who turns 16 enters an
adult chain drawn from its initial distribution at that age: the cross-section at 16.
Death is not a transition of the chain's own: a mortality chain's death exit applies at
every age. Without ``ages`` a rule applies at every age.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError
from hhsim.health.rates import Rate
from hhsim.health.terms import MAX_AGE

AGES_KEYS = {"from", "below"}


@dataclass(frozen=True)
class Ages:
    """Whole years ``start <= age < stop`` (``stop`` above every age when open)."""

    start: int = 0
    stop: int = MAX_AGE + 1

    @cached_property
    def inside(self) -> np.ndarray:
        """Boolean over ages 0..MAX_AGE: the rule applies."""
        age = np.arange(MAX_AGE + 1)
        return (age >= self.start) & (age < self.stop)

    def restrict(self, table: np.ndarray) -> np.ndarray:
        """``table`` (..., MAX_AGE + 1) with 0 at the ages outside."""
        return np.where(self.inside, table, 0.0)

    def limit(self, rate: Rate) -> Rate:
        """``rate`` made 0 at the ages outside, and knowing its ages (for the check table)."""
        rate.base = self.restrict(rate.base)
        rate.ages = self
        return rate


def within_ages(rate: Rate, node: Any, where: str) -> Rate:
    """``rate`` limited to the ages ``node`` gives (a rule's ``ages``; unchanged when None)."""
    ages = parse_ages(node, where)
    return rate if ages is None else ages.limit(rate)


def parse_ages(node: Any, where: str) -> Ages | None:
    """The ``ages`` of a rule (None when absent: every age)."""
    if node is None:
        return None
    hint = "write ages = { from = 16 } or ages = { from = 0, below = 16 } (whole years)"
    if not isinstance(node, Mapping) or not node or set(node) - AGES_KEYS:
        raise HhsimError(where, "must be a table with 'from' and/or 'below'", hint)
    values = {}
    for key in AGES_KEYS & set(node):
        v = node[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_AGE + 1:
            raise HhsimError(f"{where}.{key}", f"must be a whole number of years from 0 to {MAX_AGE + 1}",
                             hint)
        values[key] = v
    ages = Ages(values.get("from", 0), values.get("below", MAX_AGE + 1))
    if ages.start >= ages.stop:
        raise HhsimError(where, f"is empty: from {ages.start} below {ages.stop}", hint)
    return ages
