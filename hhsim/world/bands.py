"""Age bands: the bands results and local profiles are given in, and the lookup from a
value (age in years, model year, months in a state) to its band."""

from __future__ import annotations

import numpy as np

from hhsim.core.errors import HhsimError

#: Lower bounds (years) of the age bands of results by group and of local profiles.
AGE_BANDS = (16, 25, 35, 45, 55, 65, 75, 85)
AGE_LABELS = ("16-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+")
#: The age bands of results by group: children (under 16) first, then ``AGE_BANDS``.
RESULT_AGE_BANDS = (0, *AGE_BANDS)
RESULT_AGE_LABELS = ("0-15", *AGE_LABELS)


def band_lookup(breaks: list[float], upper: int, where: str) -> np.ndarray:
    """Map 0..upper to the index of the band whose lower bound is the last break <= value."""
    try:
        b = np.asarray(breaks, dtype=float)
    except (TypeError, ValueError):  # text, or lists of different lengths
        b = np.empty(0)
    if b.ndim != 1 or b.size == 0 or np.any(np.diff(b) <= 0):
        raise HhsimError(where, "breaks must be an increasing list of lower bounds",
                         "give e.g. breaks = [16, 25, 35]")
    return np.clip(np.searchsorted(b, np.arange(upper + 1), side="right") - 1, 0, b.size - 1)
