"""A cohort of identical people: every tenant of the same age, sex, tenure and area.

Textbook cohort models follow people who are alike (a cohort of 60-year-old men). A run asks
for one with a table such as ``{ age = 60, sex = "male" }`` instead of a stock file of
identical rows:

    age = 60                  # years at the start, 16 to 120 (required)
    sex = "male"              # "male" or "female" (required)
    tenure = "social_rented"  # one of TENURES (default social_rented)
    imd_decile = 5            # area deprivation decile, 1 (most deprived) to 10 (default 5)

Each tenant lives alone in a dwelling without hazards; the dwellings are grouped into
estates of ``world.estate_size``. The defaults are those of cohort mode
(``hhsim.health.cohort.cohort_run``). Health states are drawn afterwards by the health
model, as for any population.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import check_keys
from hhsim.world.population import DECILES, SEXES, TENURES, Dwellings, Population
from hhsim.world.stock import MAX_AGE, MIN_AGE
from hhsim.world.synthetic import estate_size, estates_by_decile

COHORT_KEYS = ("age", "sex", "tenure", "imd_decile")


@dataclass(frozen=True)
class Cohort:
    """What every member of a cohort of identical people is like."""

    age: float  # years at the start
    female: bool
    tenure: int  # code into TENURES
    decile: int  # IMD decile of the area, 1 (most deprived) to 10


def _number(node: Mapping[str, Any], key: str, where: str) -> float:
    value = node[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HhsimError(f"{where}.{key}", f"must be a number, got {value!r}", "give a number")
    return float(value)


def parse_cohort(node: Any, where: str = "population.cohort") -> Cohort:
    """The cohort described by ``node``; one-line errors naming ``where``."""
    check_keys(node, where, COHORT_KEYS)
    for key in ("age", "sex"):
        if key not in node:
            raise HhsimError(where, f"has no {key}", 'give e.g. { age = 60, sex = "male" }')
    age = _number(node, "age", where)
    if not MIN_AGE <= age <= MAX_AGE:
        raise HhsimError(f"{where}.age", f"{age:g} is outside {MIN_AGE} to {MAX_AGE}",
                         f"give an age in years from {MIN_AGE} to {MAX_AGE}")
    sex = node["sex"]
    if sex not in SEXES:
        raise unknown_key_error(f"{where}.sex", str(sex), SEXES, what="sex")
    tenure = node.get("tenure", "social_rented")
    if tenure not in TENURES:
        raise unknown_key_error(f"{where}.tenure", str(tenure), TENURES, what="tenure")
    decile = _number(node, "imd_decile", where) if "imd_decile" in node else 5.0
    if not (decile.is_integer() and 1 <= decile <= DECILES):
        raise HhsimError(f"{where}.imd_decile", f"{decile:g} is not a whole number from 1 to {DECILES}",
                         "give a decile from 1 (most deprived) to 10")
    return Cohort(age, sex == "female", TENURES.index(tenure), int(decile))


def cohort_population(n: int, cohort: Cohort, world: Mapping[str, Any]) -> Population:
    """``n`` identical tenants, each alone in a dwelling without hazards."""
    if n < 1:
        raise HhsimError("population.tenants", f"must be at least 1, got {n}", "give a positive number")
    decile = np.full(n, cohort.decile, dtype=np.int8)
    estate, _ = estates_by_decile(decile, estate_size(world))
    one_each = np.arange(n, dtype=np.int32)
    return Population(
        age_months=np.full(n, math.floor(cohort.age * 12), dtype=np.int16),
        female=np.full(n, cohort.female),
        alive=np.ones(n, dtype=bool),
        household=one_each,  # one household per dwelling: the same array, as in synthetic
        dwelling=one_each,
        weight=np.ones(n, dtype=np.float32),
        dwellings=Dwellings(tenure=np.full(n, cohort.tenure, dtype=np.int8),
                            hazards=np.zeros(n, dtype=np.uint8), deprivation=decile,
                            estate=estate.astype(np.int32)),
    )
