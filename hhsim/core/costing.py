"""Unit costs in one price year (NHS Cost Inflation Index)."""

from __future__ import annotations

from hhsim.core.errors import unknown_key_error
from hhsim.core.resources import cost_index


def uprating_factor(from_year: str, to_year: str) -> float:
    """Multiplier turning a cost in ``from_year`` prices into ``to_year`` prices (1 when
    they are the same year, whether or not the index covers it)."""
    if from_year == to_year:
        return 1.0
    index = cost_index()
    for year, where in ((from_year, "price_year"), (to_year, "experiment.price_year")):
        if year not in index:
            raise unknown_key_error(where, year, index, what="price year")
    return index[to_year] / index[from_year]

