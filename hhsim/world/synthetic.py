"""A synthetic population from published marginals, so hhsim runs with no data.

The ``world`` parameters (``hhsim/data/world.toml``) give, for each tenure: the age
distribution of adults, the share who are women, household sizes (adults per household),
the deprivation deciles of the areas its homes are in, and the prevalence of each dwelling
hazard. Generation, in order:

1. tenants are split between tenures by the requested mix (largest remainder);
2. households of 1, 2 or 3 adults fill each tenure; each household has its own dwelling;
3. each dwelling's area deprivation decile is drawn from the tenure's decile distribution;
   dwellings of one tenure and decile are grouped into estates of ``world.estate_size``;
4. each dwelling has each hazard independently with the tenure's prevalence;
5. adults' ages are drawn from the tenure's age bands (uniform within a band; in the open
   top band, a truncated exponential with mean ``world.top_band_mean_years`` above its
   floor); a second adult's age is the first's plus normal noise
   (``world.partner_age_sd``); sex is drawn with the tenure's female share;
6. each dwelling's type, build period, energy band and heating are drawn from the tenure's
   shares (``world.dwelling``), and its household's low-income flag so that the tenure's
   share in fuel poverty (LILEE: low income and band D or worse) is ``world.fuel_poverty``
   (``draw_dwelling_attributes``).

The hazards drawn in step 4 are those of England as observed (the reference population
that national rates are de-averaged over); a simulation run redraws them from each
dwelling's stationary chance (``hhsim.world.hazard_dynamics``).

Health states are drawn afterwards by the health model (``HealthModel.initialise``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import to_parameter
from hhsim.world.bands import band_lookup
from hhsim.world.population import (
    DECILES,
    DWELLING_ATTRIBUTES,
    FUEL_POOR_FROM_BAND,
    HAZARD_BITS,
    HAZARDS,
    TENURES,
    Dwellings,
    Population,
)

OLDEST = 100  # upper age of the open top band, years
SHARE_TOLERANCE = 0.005  # published shares are rounded; they are renormalised to sum to 1
MAX_ESTATE = 1_000_000  # dwellings in one estate


def world_value(tree: Mapping[str, Any], name: str, unit: str = "") -> np.ndarray:
    """The value of the world parameter ``name`` (dotted, e.g. ``world.estate_size``), whose
    unit must start with ``unit``; one-line errors when it is missing or in another unit."""
    node: Any = tree
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise HhsimError(name, "is missing from the world parameters", "restore the default entry")
        node = node[part]
    p = to_parameter(name, node)
    if not p.unit.startswith(unit):
        raise HhsimError(name, f"has unit '{p.unit}'", f'use unit = "{unit}"')
    return np.asarray(p.value, dtype=float)


def estate_size(world: Mapping[str, Any]) -> int:
    """``world.estate_size``: a whole number of dwellings from 1 to ``MAX_ESTATE``."""
    size = float(world_value(world, "world.estate_size"))
    if not (size.is_integer() and 1 <= size <= MAX_ESTATE):
        raise HhsimError("world.estate_size", f"must be a whole number of dwellings from 1 to "
                         f"{MAX_ESTATE:,}, got {size:g}", "give a number of dwellings, e.g. 200")
    return int(size)


def _shares(value: np.ndarray, where: str) -> np.ndarray:
    total = value.sum()
    if value.ndim != 1 or total <= 0:
        raise HhsimError(where, "must be a list of non-negative shares", "give shares that sum to 1")
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise HhsimError(where, f"shares sum to {total:.4g}, not 1", "make the shares add up to 1")
    return value / total


def split_counts(n: int, shares: np.ndarray, every_share: bool = False) -> np.ndarray:
    """Integer counts summing to ``n`` in proportion to ``shares`` (largest remainder); with
    ``every_share``, at least 1 for every share above 0 (each taken from the largest count)."""
    raw = n * np.asarray(shares, dtype=float)
    counts = np.floor(raw).astype(np.int64)
    short = n - int(counts.sum())
    if short:
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:short]] += 1
    if every_share:
        for i in np.flatnonzero((np.asarray(shares) > 0) & (counts == 0)):
            counts[int(np.argmax(counts))] -= 1
            counts[i] = 1
    return counts


def estates_by_decile(decile: np.ndarray, estate_size: int) -> tuple[np.ndarray, int]:
    """Estate of each dwelling: dwellings of one decile, in order, in blocks of ``estate_size``.

    Returns the estate ids (0..n-1) and their number n.
    """
    est = np.empty(decile.size, dtype=np.int64)
    first = 0
    for d in np.unique(decile):
        members = np.flatnonzero(decile == d)
        est[members] = first + np.arange(members.size) // estate_size
        first += -(-members.size // estate_size)
    return est, first


def tenure_mix(mix: Mapping[str, float]) -> np.ndarray:
    """Shares by TENURES from a mapping such as {"social_rented": 1.0}."""
    shares = np.zeros(len(TENURES))
    for name, share in mix.items():
        if name not in TENURES:
            raise unknown_key_error("population.tenure", name, TENURES, what="tenure")
        shares[TENURES.index(name)] = share
    return _shares(shares, "population.tenure")


def england_mix(world: Mapping[str, Any]) -> np.ndarray:
    """England's tenure shares (households) from the world parameters."""
    return _shares(np.array([world_value(world, f"world.tenure_share.{t}") for t in TENURES]),
                   "world.tenure_share")


def _by_tenure_shares(world: Mapping[str, Any], name: str, size: int) -> np.ndarray:
    """(len(TENURES), size) shares of ``world.dwelling.<name>.<tenure>``, each row summing to 1."""
    rows = []
    for t in TENURES:
        where = f"world.dwelling.{name}.{t}"
        shares = _shares(world_value(world, where), where)
        if shares.size != size:
            raise HhsimError(where, f"needs {size} shares, one per level",
                             "give one share per level in the unit")
        rows.append(shares)
    return np.array(rows)


def low_income_chance(world: Mapping[str, Any]) -> np.ndarray:
    """Chance by tenure that a household is low-income: ``world.fuel_poverty.<tenure>`` over the
    tenure's share of band D-G homes (income is not modelled; independent of the band)."""
    bands = _by_tenure_shares(world, "energy_band", len(DWELLING_ATTRIBUTES["energy_band"]))
    out = np.zeros(len(TENURES))
    for t, tname in enumerate(TENURES):
        where = f"world.fuel_poverty.{tname}"
        target, poor_bands = float(world_value(world, where)), float(bands[t, FUEL_POOR_FROM_BAND:].sum())
        if target > poor_bands + 1e-12:
            raise HhsimError(where, f"{target:g} is more than the tenure's share of band D-G homes "
                             f"({poor_bands:g}), the most that can be fuel poor",
                             "lower it, or raise the share")
        out[t] = target / poor_bands if poor_bands > 0 else 0.0
    return np.minimum(out, 1.0)


def draw_dwelling_attributes(tenure: np.ndarray, world: Mapping[str, Any], rng: np.random.Generator,
                             given: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Each dwelling's attribute codes (``DWELLING_ATTRIBUTES``) and its household's
    ``low_income`` and ``overcrowded`` flags, drawn from its tenure's shares (overcrowding:
    ``world.overcrowding``, independent of the household's size, an assumption); ``given``
    codes (-1 where not given) are kept. Uses one uniform per dwelling per attribute (six, in
    that order), whatever is given."""
    given = given or {}
    out: dict[str, np.ndarray] = {}
    for name, levels in DWELLING_ATTRIBUTES.items():
        cum = np.cumsum(_by_tenure_shares(world, name, len(levels)), axis=1)
        u = rng.random(tenure.size)
        drawn = np.empty(tenure.size, dtype=np.int8)
        for t in range(len(TENURES)):
            mine = tenure == t
            drawn[mine] = np.minimum(np.searchsorted(cum[t], u[mine], side="right"), len(levels) - 1)
        code = given.get(name)
        out[name] = drawn if code is None else np.where(code >= 0, code, drawn).astype(np.int8)
    low = rng.random(tenure.size) < low_income_chance(world)[tenure]
    code = given.get("low_income")
    out["low_income"] = low if code is None else np.where(code >= 0, code == 1, low)
    shares = np.array([float(world_value(world, f"world.overcrowding.{t}", "share of households"))
                       for t in TENURES])
    crowded = rng.random(tenure.size) < shares[tenure]
    code = given.get("overcrowded")
    out["overcrowded"] = crowded if code is None else np.where(code >= 0, code == 1, crowded)
    return out


def generate(n: int, mix: np.ndarray, world: Mapping[str, Any], rng: np.random.Generator,
             every_tenure: bool = False) -> Population:
    """A population of ``n`` adult tenants with tenure shares ``mix`` (by TENURES); with
    ``every_tenure``, at least one tenant of every tenure with a share (a local profile's
    people of each tenure need someone to stand for them)."""
    if n < 1:
        raise HhsimError("population.tenants", f"must be at least 1, got {n}", "give a positive number")
    present = int((np.asarray(mix) > 0).sum())
    if every_tenure and n < present:
        raise HhsimError("population.tenants", f"{n} tenant(s) cannot stand for the {present} tenures of the "
                         "profile", f"give at least {present} tenants")
    size = estate_size(world)
    partner_sd = float(world_value(world, "world.partner_age_sd"))
    top_mean = float(world_value(world, "world.top_band_mean_years"))
    age_breaks = world["world"]["age"]["breaks"]
    band_lookup(age_breaks, OLDEST, "world.age.breaks")  # validates the breaks
    lows = np.asarray(age_breaks, dtype=float)
    highs = np.append(lows[1:], OLDEST + 1)

    ages, female, dwelling = [], [], []
    d_tenure, d_dep, d_haz, d_estate = [], [], [], []
    n_dw = n_est = 0
    for t, count in enumerate(split_counts(n, mix, every_tenure)):
        if count == 0:
            continue
        tname = TENURES[t]
        sizes = _shares(world_value(world, f"world.household_adults.{tname}"),
                        f"world.household_adults.{tname}")
        mean = float(np.dot(sizes, np.arange(1, sizes.size + 1)))
        hh = rng.choice(np.arange(1, sizes.size + 1), size=int(count / mean * 1.2) + 10, p=sizes)
        end = np.searchsorted(np.cumsum(hh), count)
        hh = hh[: end + 1].copy()
        hh[-1] -= int(hh.sum() - count)  # trim the last household to hit the count exactly
        n_hh = hh.size
        member = np.arange(count) - np.repeat(np.cumsum(hh) - hh, hh)  # 0 = first adult
        hh_id = np.repeat(np.arange(n_hh), hh)

        # dwellings: area decile, then estates of up to estate_size dwellings per decile
        dep_shares = _shares(world_value(world, f"world.deprivation.{tname}"),
                             f"world.deprivation.{tname}")
        if dep_shares.size != DECILES:
            raise HhsimError(f"world.deprivation.{tname}", "needs 10 shares (deciles 1..10)",
                             "give one share per IMD decile")
        dep = rng.choice(np.arange(1, DECILES + 1), size=n_hh, p=dep_shares)
        est, n_e = estates_by_decile(dep, size)
        haz = np.zeros(n_hh, dtype=np.uint8)
        for h in HAZARDS:
            prev = float(world_value(world, f"world.hazards.{h}.{tname}"))
            haz |= np.where(rng.random(n_hh) < prev, HAZARD_BITS[h], 0).astype(np.uint8)
        d_tenure.append(np.full(n_hh, t, dtype=np.int8))
        d_dep.append(dep.astype(np.int8))
        d_haz.append(haz)
        d_estate.append((est + n_est).astype(np.int32))

        # adults
        age_shares = _shares(world_value(world, f"world.age.{tname}"), f"world.age.{tname}")
        if age_shares.size != lows.size:
            raise HhsimError(f"world.age.{tname}", f"needs {lows.size} shares, one per age band",
                             "give one share per break in world.age.breaks")
        band = rng.choice(lows.size, size=count, p=age_shares)
        age = lows[band] + rng.random(count) * (highs[band] - lows[band])
        top = band == lows.size - 1  # open top band: a truncated exponential above its floor
        span = OLDEST + 1 - lows[-1]
        u_top = rng.random(int(top.sum()))
        age[top] = lows[-1] - top_mean * np.log1p(-u_top * -np.expm1(-span / top_mean))
        first = np.repeat(np.cumsum(hh) - hh, hh)
        second = member == 1
        age[second] = np.clip(age[first[second]] + rng.normal(0.0, partner_sd, second.sum()),
                              lows[0], OLDEST + 0.99)
        fem = rng.random(count) < float(world_value(world, f"world.female.{tname}"))
        ages.append(age)
        female.append(fem)
        dwelling.append(hh_id + n_dw)
        n_dw += n_hh
        n_est += n_e

    tenure = np.concatenate(d_tenure)
    dwellings = Dwellings(
        tenure=tenure,
        hazards=np.concatenate(d_haz),
        deprivation=np.concatenate(d_dep),
        estate=np.concatenate(d_estate),
        **draw_dwelling_attributes(tenure, world, rng),
    )
    age_years = np.concatenate(ages)
    dwelling_of = np.concatenate(dwelling).astype(np.int32)
    return Population(
        age_months=np.floor(age_years * 12).astype(np.int16),
        female=np.concatenate(female),
        alive=np.ones(n, dtype=bool),
        household=dwelling_of,  # one household per dwelling: the same array, not a copy
        dwelling=dwelling_of,
        weight=np.ones(n, dtype=np.float32),
        dwellings=dwellings,
    )
