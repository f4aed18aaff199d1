"""Background mortality: a life table or a Gompertz-Makeham curve, with rate ratios.

``[mortality]`` in a model file gives the chain it competes in (death is one more exit
from every state of that chain, sharing the total hazard with the chain's transitions),
the age-specific rate, and rate ratios (deprivation, the chain's states, ...):

    [mortality]
    chain = "health"
    reference = true          # national life tables: de-average over the reference population
    life_table = { value = [[...male qx...], [...female qx...]], first_age = 16,
                   unit = "probability per year", source = "ONS National life tables ..." }
    # or: gompertz_makeham = { value = [[A, B, c], [A, B, c]], unit = "coefficients per year", ... }
    rr.deprivation = { ... }
    states = ["well", "ill"]  # optional: only these states of the chain (default: all)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import check_keys, leaf_parameter
from hhsim.health.rates import Rate, age_sex_table, period_years
from hhsim.health.terms import MAX_AGE, TermContext, parse_terms

MORTALITY_KEYS = {"chain", "reference", "life_table", "gompertz_makeham", "rr", "states"}


def gompertz_makeham_hazard(a: float, b: float, c: float, ages: np.ndarray) -> np.ndarray:
    """Hazard per year at ``ages``: a + b * exp(c * age)."""
    return a + b * np.exp(c * ages)


def mortality_states(node: Mapping[str, Any], states: tuple[str, ...]) -> list[int]:
    """Indices of the states of the mortality chain that background mortality applies in:
    ``states`` if given, else every state."""
    chosen = node.get("states")
    if chosen is None:
        return list(range(len(states)))
    where = "mortality.states"
    if not isinstance(chosen, list) or not chosen or len(set(map(str, chosen))) != len(chosen):
        raise HhsimError(where, "must be a list of distinct states of the chain",
                         f'write states = ["{states[0]}"], or leave it out for every state')
    for s in chosen:
        if s not in states:
            raise unknown_key_error(where, str(s), states, what="state")
    return [i for i, s in enumerate(states) if s in chosen]


def parse_mortality(node: Mapping[str, Any], chains: Mapping[str, tuple[str, ...]],
                    attributes: tuple[str, ...] = ()) -> tuple[str, Rate]:
    """The chain mortality competes in, and the mortality rate."""
    where = "mortality"
    check_keys(node, where, MORTALITY_KEYS)
    chain = node.get("chain")
    if chain not in chains:
        raise unknown_key_error(f"{where}.chain", str(chain), chains, what="chain")
    if ("life_table" in node) == ("gompertz_makeham" in node):
        raise HhsimError(where, "needs exactly one of life_table or gompertz_makeham",
                         "give one of them")
    if "life_table" in node:
        leaf = node["life_table"]
        lw = f"{where}.life_table"
        p = leaf_parameter(leaf, lw)
        if not p.unit.lower().startswith("probability"):
            raise HhsimError(lw, f"has unit '{p.unit}'", "use unit = \"probability per year\"")
        qx = np.clip(age_sex_table(p.value, leaf, lw), 0.0, 1.0 - 1e-12)
        base = -np.log1p(-qx) / period_years(p.unit, lw)
    else:
        gw = f"{where}.gompertz_makeham"
        p = leaf_parameter(node["gompertz_makeham"], gw, "{ value = [[A, B, c], [A, B, c]], ... }")
        coef = np.asarray(p.value, dtype=float)
        if coef.shape != (2, 3):
            raise HhsimError(gw, "needs [[A, B, c] for men], [A, B, c] for women]]",
                             "give a 2 x 3 table")
        ages = np.arange(MAX_AGE + 1, dtype=float)
        base = np.vstack([gompertz_makeham_hazard(*coef[s], ages) for s in range(2)])
    reference = node.get("reference", False)
    if not isinstance(reference, bool):
        raise HhsimError(f"{where}.reference", "must be true or false", "write reference = true")
    terms = parse_terms(node.get("rr"), f"{where}.rr", TermContext(chains, attributes=attributes))
    return chain, Rate(where, base, terms, reference)
