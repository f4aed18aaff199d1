"""Hazards that change with time on a clock: parametric (exponential, Weibull, Gompertz,
log-logistic) and tabulated (piecewise constant), for a transition's ``rate``:

    rate.distribution = "weibull"
    rate.clock = "time_in_state"      # "model_time", "age", "time_in_state" or a [clocks] name
    rate.shape = { value = 1.5, unit = "Weibull shape", source = "..." }
    rate.scale = { value = 4.0, unit = "years", source = "..." }

Each parameter is a parameter of its own (``...rate.shape``), so experiments, sensitivity
analyses and PSA reach it, and its value may be an expression. Parameters are in years
inside (a scale in months is divided by 12, a rate per month multiplied by 12).

| distribution | parameters | cumulative hazard H(t), t in years on the clock |
|---|---|---|
| exponential | rate | rate × t |
| weibull | shape k, scale λ | (t / λ)^k |
| gompertz | shape a (any sign), rate b | b / a × (exp(a t) - 1); b t when a = 0 |
| loglogistic | shape β, scale α | ln(1 + (t / α)^β) |
| piecewise | hazard by band of t (``breaks`` in the hazard unit's period) | the integral of the bands |

Discretisation: a tenant whose clock reads t years at the start of a step of dt years has
the hazard (H(t + dt) - H(t)) / dt over the step. Alone, the exit is then taken with
probability 1 - exp(-(H(t + dt) - H(t))) = 1 - S(t + dt) / S(t): the distribution's own,
with no error from the step length. With other exits, the step's total hazard is exact and
the exits share it in proportion to their hazards over the step. Rate ratios multiply the
hazard (proportional hazards). The hazard is 0 while the clock is not running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError, printable, unknown_key_error
from hhsim.core.parameters import check_keys, leaf_parameter, missing_parameter
from hhsim.health.clocks import BUILTIN
from hhsim.health.rates import DAYS_PER_YEAR, Rate, period_years
from hhsim.health.terms import MAX_AGE, Term, TermContext
from hhsim.world.population import Population

#: Each distribution's parameters and what each is: a positive number, a time, a rate (per
#: person-period), or a number per period of any sign.
DISTRIBUTIONS: dict[str, dict[str, str]] = {
    "exponential": {"rate": "rate"},
    "weibull": {"shape": "shape", "scale": "time"},
    "gompertz": {"shape": "per time", "rate": "rate"},
    "loglogistic": {"shape": "shape", "scale": "time"},
    "piecewise": {"hazard": "table"},
}
TIME_UNITS = {"years": 1.0, "months": 1.0 / 12.0, "days": 1.0 / DAYS_PER_YEAR}
UNIT_HINTS = {"shape": "shape", "time": "years", "rate": "per person-year",
              "per time": "shape per year", "table": "per person-year"}
#: The increase of the cumulative hazard from t to t + dt years (arrays), by sex for tables.
Increment = Callable[[np.ndarray, float, np.ndarray], np.ndarray]


def is_parametric(node: Any) -> bool:
    """Whether a ``rate`` entry names a distribution rather than giving a value."""
    return isinstance(node, Mapping) and "distribution" in node


def parametric_rate(node: Mapping[str, Any], name: str, src: int, ctx: TermContext,
                    cycle_years: float, terms: list[Term], reference: bool) -> Rate:
    """The rate of transition ``name`` (from state ``src`` of ``ctx.own_chain``) whose
    ``rate`` names a distribution: a hazard term on its clock, then its rate ratios."""
    where = f"{name}.rate"
    dist = node.get("distribution")
    if not isinstance(dist, str) or dist not in DISTRIBUTIONS:
        raise unknown_key_error(f"{where}.distribution", printable(str(dist)), DISTRIBUTIONS,
                                what="distribution")
    check_keys(node, where, {"distribution", "clock", *DISTRIBUTIONS[dist]})
    if reference:
        raise HhsimError(f"{name}.reference", "a hazard given by a distribution cannot be de-averaged",
                         "remove reference = true, or give the rate as a value")
    clock = node.get("clock")
    if clock is None:
        raise HhsimError(where, "has no clock",
                         'add clock = "time_in_state" (or "model_time", "age", or a clock of [clocks])')
    if not isinstance(clock, str) or (clock not in BUILTIN and clock not in ctx.clocks):
        raise unknown_key_error(f"{where}.clock", printable(str(clock)), [*BUILTIN, *ctx.clocks],
                                what="clock")
    spec = ctx.clocks.get(clock)
    if spec is not None and spec.starts == "enter" and (spec.chain != ctx.own_chain or not spec.group[src]):
        raise HhsimError(f"{where}.clock", f"clock '{clock}' does not run in the state this transition "
                         "leaves, so the hazard would always be 0",
                         "use a clock that runs there, e.g. one whose states include it")
    values = {key: _parameter(node, key, kind, where) for key, kind in DISTRIBUTIONS[dist].items()}
    increment = _increment(dist, values)
    read = _reader(clock, ctx.own_chain)

    def direct(pop: Population, idx: np.ndarray | None) -> np.ndarray:
        months = read(pop, idx)
        female = (pop.female if idx is None else np.take(pop.female, idx)).view(np.int8)
        years = np.maximum(months, 0) / 12.0
        return np.where(months >= 0, increment(years, cycle_years, female) / cycle_years, 0.0)

    hazard = Term(where, lambda pop, idx: np.zeros(0, dtype=np.intp), np.ones(0, dtype=np.float32),
                  kind="dynamic", direct=direct, clock=clock)
    return Rate(name, np.ones((2, MAX_AGE + 1)), [hazard, *terms])


def _reader(clock: str, chain: str | None) -> Callable[[Population, np.ndarray | None], np.ndarray]:
    """Months on ``clock`` of tenants ``idx`` (all slots when None)."""
    def read(pop: Population, idx: np.ndarray | None) -> np.ndarray:
        months = (pop.age_months if clock == "age" else pop.time_in_state[chain]
                  if clock == "time_in_state" else pop.clocks[clock])
        return months if idx is None else np.take(months, idx)

    return read


def _parameter(node: Mapping[str, Any], key: str, kind: str, where: str) -> Any:
    """A distribution parameter in years: a number, or (values by sex and band, per year;
    band edges in years) for a table."""
    if key not in node:
        raise missing_parameter(where, key, UNIT_HINTS[kind])
    pw = f"{where}.{key}"
    leaf = node[key]
    p = leaf_parameter(leaf, pw)
    value = np.asarray(p.value, dtype=float)
    unit = p.unit.strip().lower()
    if kind == "table":
        return _table(value, leaf, pw, _period(unit, pw))
    if value.ndim:
        raise HhsimError(pw, "must be a single number", "give one number")
    x = float(value)
    if kind == "shape" and x <= 0:
        raise HhsimError(pw, f"value {x:g} is not above 0", "give a shape greater than 0")
    if kind == "time":
        first = unit.split(" ", 1)[0]
        if first not in TIME_UNITS:
            raise HhsimError(pw, f"unit '{p.unit}' is not a time", 'use unit "years", "months" or "days"')
        if x <= 0:
            raise HhsimError(pw, f"value {x:g} is not above 0", "give a scale greater than 0")
        return x * TIME_UNITS[first]
    if kind in ("rate", "per time"):
        return x / _period(unit, pw)
    return x


def _period(unit: str, where: str) -> float:
    if unit.startswith("probability"):
        raise HhsimError(where, "is a probability where a hazard is needed",
                         "give a rate (unit 'per person-year')")
    return period_years(unit, where)


def _table(value: np.ndarray, leaf: Mapping[str, Any], where: str,
           period: float) -> tuple[np.ndarray, np.ndarray]:
    """Hazards per year (2, bands) and the bands' lower edges in years of a piecewise hazard."""
    if value.ndim == 0:
        return np.full((2, 1), float(value) / period), np.zeros(1)
    if "breaks" not in leaf:
        raise HhsimError(where, "a table of hazards needs breaks (lower bounds of the bands of the clock)",
                         "add breaks = [0, 1, 5] (in the period of the unit: years for per person-year)")
    try:
        breaks = np.asarray(leaf["breaks"], dtype=float)
    except (TypeError, ValueError):  # text, or lists of different lengths
        breaks = np.empty(0)
    nb = breaks.size
    if breaks.ndim != 1 or nb == 0 or np.any(np.diff(breaks) <= 0) or breaks[0] < 0:
        raise HhsimError(f"{where}.breaks", "must be an increasing list of lower bounds, from 0 up",
                         "give e.g. breaks = [0, 1, 5]")
    if value.shape not in ((nb,), (2, nb)):
        raise HhsimError(where, f"has shape {value.shape}; expected ({nb},) or (2, {nb})",
                         "give one hazard per band, or [men, women] lists")
    return np.broadcast_to(value / period, (2, nb)).copy(), breaks * period


def _increment(dist: str, p: dict[str, Any]) -> Increment:
    """H(t + dt) - H(t) of a distribution with parameters ``p`` (in years)."""
    if dist == "exponential":
        return lambda t, dt, female: np.full(t.shape, p["rate"] * dt)
    if dist == "weibull":
        k, scale = p["shape"], p["scale"]
        return lambda t, dt, female: ((t + dt) / scale) ** k - (t / scale) ** k
    if dist == "gompertz":
        a, b = p["shape"], p["rate"]
        if a == 0:
            return lambda t, dt, female: np.full(t.shape, b * dt)
        return lambda t, dt, female: b / a * np.exp(a * t) * np.expm1(a * dt)
    if dist == "loglogistic":
        beta, scale = p["shape"], p["scale"]

        def loglogistic(t: np.ndarray, dt: float, female: np.ndarray) -> np.ndarray:
            x0, x1 = (t / scale) ** beta, ((t + dt) / scale) ** beta
            return np.log1p((x1 - x0) / (1 + x0))

        return loglogistic
    hazard, edges = p["hazard"]
    start = edges.copy()
    start[0] = 0.0  # the first band also holds the times below its lower bound
    # Cumulative hazard at the start of each band, by sex.
    before = np.concatenate([np.zeros((2, 1)), np.cumsum(hazard[:, :-1] * np.diff(start), axis=1)], axis=1)

    def cumulative(t: np.ndarray, female: np.ndarray) -> np.ndarray:
        band = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, edges.size - 1)
        return before[female, band] + hazard[female, band] * (t - start[band])

    return lambda t, dt, female: cumulative(t + dt, female) - cumulative(t, female)
