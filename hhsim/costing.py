"""Unit costs in one price year (NHS Cost Inflation Index)."""

from __future__ import annotations

from hhsim.errors import HhsimError, unknown_key_error
from hhsim.resources import cost_index


def uprating_factor(from_year: str, to_year: str) -> float:
    """Multiplier turning a cost in ``from_year`` prices into ``to_year`` prices."""
    index = cost_index()
    for year, where in ((from_year, "price_year"), (to_year, "experiment.price_year")):
        if year not in index:
            raise unknown_key_error(where, year, index, what="price year")
    return index[to_year] / index[from_year]


def check_price_year(year: str) -> str:
    """Return ``year`` if the cost index covers it, else a one-line error."""
    if year not in cost_index():
        raise HhsimError("experiment.price_year", f"no cost index for '{year}'",
                         f"use one of {sorted(cost_index())}")
    return year
