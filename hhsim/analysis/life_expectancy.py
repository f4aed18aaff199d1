"""Life expectancy and years in good health from a run's period life table.

The life table (``hhsim.model.record.life_table``) holds weighted person-years, years in good
health and deaths by sex, IMD decile and age. For each group it is abridged to 5-year age
bands from ``START_AGE`` (the model's adults) with an open last band, and read as a period
life table with a constant hazard within each band (Chiang's method with a = n/2 is not
needed at monthly exposure):

- m = deaths / person-years in the band; q = 1 - exp(-n m); l(next) = l (1 - q);
- L = (l - l(next)) / m (years lived in the band per person entering at ``START_AGE``; the
  open band L = l / m, with the rate of the oldest band that saw deaths when a small
  population saw none at 90+); e = sum L / l(START_AGE);
- years in good health: sum L x (good-health years / person-years in the band) / l.

ONS publishes life expectancy and healthy life expectancy *at birth*. The table is read from
``START_AGE`` (a run's children, where it has them, are too few at each age, and a closed
cohort has no one under 16 after 16 years), so the birth figures add the childhood years:
LE(0) = CHILD_SURVIVAL x (START_AGE + e) + (1 - CHILD_SURVIVAL) x START_AGE / 2, and HLE(0)
= CHILD_GOOD_HEALTH x START_AGE + CHILD_SURVIVAL x HLE(START_AGE). Both constants are marked
below; the gaps between deciles barely depend on them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

START_AGE = 16
BAND = 5  # years per age band
OPEN_AGE = 90  # the last band is 90+
OLD_AGE = 65  # the age of ONS's expectancies at 65
#: Assumption: about 99.5% of those born survive to 16 in England (infant mortality about 3.9
#: per 1,000 live births, ONS child mortality 2021, and about 1 per 1,000 more by 16).
CHILD_SURVIVAL = 0.995
#: Assumption: about 96% of children are in good or very good health (HSE children's health
#: reported by parents; ONS HLE counts those years as healthy).
CHILD_GOOD_HEALTH = 0.96


def _band(age: pd.Series) -> pd.Series:
    return np.minimum(np.maximum(age, START_AGE) // BAND * BAND, OPEN_AGE)


def life_table_expectancies(table: pd.DataFrame, by: Sequence[str] = ("sex", "decile")) -> pd.DataFrame:
    """One row per group of ``by``: ``le_16``, ``hle_16``, ``le_65``, ``hle_65``, ``le_birth``,
    ``hle_birth`` (years), ``deaths`` and ``person_years`` behind them. ``table`` may stack
    several runs' tables."""
    t = table[table["age"] >= START_AGE].assign(band=lambda d: _band(d["age"]))
    sums = t.groupby([*by, "band"])[["person_years", "good_health_years", "deaths"]].sum()
    rows = []
    for key, g in sums.groupby(level=list(range(len(by)))):
        g = g.droplevel(list(range(len(by))))
        bands = np.arange(START_AGE // BAND * BAND, OPEN_AGE + 1, BAND)
        g = g.reindex(bands, fill_value=0.0)
        py, good, deaths = (g[c].to_numpy(float) for c in ("person_years", "good_health_years", "deaths"))
        m = np.divide(deaths, py, out=np.zeros_like(py), where=py > 0)
        share = np.divide(good, py, out=np.zeros_like(py), where=py > 0)
        widths = np.diff(np.append(np.maximum(bands, START_AGE), OPEN_AGE + BAND)).astype(float)
        alive, le, hle = 1.0, 0.0, 0.0
        at_65, le_65, hle_65 = float("nan"), 0.0, 0.0
        for k, (mk, nk) in enumerate(zip(m, widths, strict=True)):
            if bands[k] == OLD_AGE:
                at_65 = alive
            if k == len(bands) - 1:  # open band; with no deaths seen there, the last band's rate
                rate = mk if mk > 0 else next((x for x in m[::-1] if x > 0), float("nan"))
                lived = alive / rate
            else:
                q = 1.0 - np.exp(-nk * mk)
                lived = (alive * q) / mk if mk > 0 else alive * nk
                alive_next = alive * (1.0 - q)
            le += lived
            hle += lived * share[k]
            if bands[k] >= OLD_AGE:
                le_65 += lived
                hle_65 += lived * share[k]
            if k < len(bands) - 1:
                alive = alive_next
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key, strict=True)), "le_16": le, "hle_16": hle,
                     "le_65": le_65 / at_65 if at_65 > 0 else float("nan"),
                     "hle_65": hle_65 / at_65 if at_65 > 0 else float("nan"),
                     "le_birth": CHILD_SURVIVAL * (START_AGE + le) + (1 - CHILD_SURVIVAL) * START_AGE / 2,
                     "hle_birth": CHILD_GOOD_HEALTH * START_AGE + CHILD_SURVIVAL * hle,
                     "deaths": float(deaths.sum()), "person_years": float(py.sum())})
    return pd.DataFrame(rows)
