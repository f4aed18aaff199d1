"""Distributions of uncertain parameters, written as small TOML tables.

    [low, high]                                       uniform between the bounds
    { dist = "uniform", low = 0.5, high = 1.5 }
    { dist = "normal", mean = 10, sd = 2 }
    { dist = "triangular", low = 0, mode = 1, high = 3 }
    { dist = "beta", mean = 0.3, sd = 0.05 }          or { dist = "beta", alpha = 30, beta = 70 }
    { dist = "gamma", mean = 250, sd = 50 }           or { dist = "gamma", shape = 25, scale = 10 }
    { dist = "lognormal", median = 0.8, sdlog = 0.1 } (location: the median, exp(meanlog))
    { dist = "lognormal", mean = 0.8, sd = 0.1 }      (location: the mean on the natural scale)
    { dist = "dirichlet", parameters = ["a", "b", "c"], alpha = [20, 30, 50] }   (a group)

Each one-parameter spec becomes a ``Distribution``: a scipy frozen distribution (``ppf``,
``rvs``, ``mean``, ``support``) with a short description. A Dirichlet spec becomes a
``Dirichlet`` over a group of parameters that must sum to 1 (shares); it has ``rvs`` only.
Bad specs give one-line ``HhsimError``s naming the key and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError, printable, unknown_key_error

#: Keys each distribution accepts: one tuple per way of giving it.
FORMS: dict[str, tuple[tuple[str, ...], ...]] = {
    "uniform": (("low", "high"),),
    "normal": (("mean", "sd"),),
    "triangular": (("low", "mode", "high"),),
    "beta": (("mean", "sd"), ("alpha", "beta")),
    "gamma": (("mean", "sd"), ("shape", "scale")),
    "lognormal": (("median", "sdlog"), ("mean", "sd")),
    "dirichlet": (("parameters", "alpha"),),
}

#: Quantile at which the tails of unbounded distributions are cut by ``Distribution.ppf``.
TAIL = 1e-3
#: Distributions whose ``ppf`` reaches their bounds (the others' tails are cut at ``TAIL``).
BOUNDED = ("uniform", "triangular")


@dataclass(frozen=True)
class Distribution:
    """One parameter's distribution: ``frozen`` is a scipy frozen distribution."""

    kind: str
    frozen: Any
    description: str

    def ppf(self, u: np.ndarray | float) -> np.ndarray:
        """Values at quantiles ``u`` in [0, 1]. Bounded distributions (uniform, triangular)
        reach their bounds; the others are cut at the ``TAIL`` and ``1 - TAIL`` quantiles
        (a normal's u = 0 gives its 0.1% quantile), so no sample lands on an extreme value."""
        u = np.asarray(u, dtype=float)
        if self.kind not in BOUNDED:
            u = np.clip(u, TAIL, 1 - TAIL)
        return np.asarray(self.frozen.ppf(u), dtype=float)

    def rvs(self, size: int | tuple[int, ...], random_state: np.random.Generator) -> np.ndarray:
        return np.asarray(self.frozen.rvs(size=size, random_state=random_state), dtype=float)

    @property
    def mean(self) -> float:
        return float(self.frozen.mean())

    def range(self) -> tuple[float, float]:
        """The lowest and highest values ``ppf`` can give (tails cut as in ``ppf``)."""
        lo, hi = self.ppf(np.array([0.0, 1.0]))
        return float(lo), float(hi)


@dataclass(frozen=True)
class Dirichlet:
    """Shares of a group of parameters (they sum to 1), e.g. a mix of tenures."""

    parameters: tuple[str, ...]
    alpha: tuple[float, ...]

    @property
    def description(self) -> str:
        return f"Dirichlet(alpha={list(self.alpha)}) over {list(self.parameters)}"

    @property
    def mean(self) -> np.ndarray:
        a = np.asarray(self.alpha)
        return a / a.sum()

    def rvs(self, size: int, random_state: np.random.Generator) -> np.ndarray:
        """``size`` x len(parameters) draws."""
        return random_state.dirichlet(self.alpha, size=size)


def _number(spec: Mapping, key: str, where: str) -> float:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HhsimError(f"{where}.{key}", f"must be a number, got {printable(repr(value))}",
                         "give a finite number")
    return float(value)


def _positive(values: Mapping[str, float], where: str, *keys: str) -> None:
    for key in keys:
        if values[key] <= 0:
            raise HhsimError(f"{where}.{key}", f"must be above 0, got {values[key]:g}",
                             "give a positive number")


def _ordered(low: float, high: float, where: str) -> None:
    if low >= high:
        raise HhsimError(where, f"low ({low:g}) is not below high ({high:g})", "give low < high")


def parse_distribution(spec: Any, where: str) -> Distribution | Dirichlet:
    """The distribution described by ``spec`` (a ``[low, high]`` pair or a table)."""
    from scipy import stats  # here: 0.3 s to import, and most runs draw no distribution

    if isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(spec) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in spec):
            raise HhsimError(where, f"bounds must be two numbers [low, high], got {printable(repr(spec))}",
                             'give [low, high] or a table such as { dist = "normal", mean = ..., sd = ... }')
        low, high = float(spec[0]), float(spec[1])
        if not (math.isfinite(low) and math.isfinite(high)):
            raise HhsimError(where, "bounds must be finite numbers", "give [low, high]")
        _ordered(low, high, where)
        return Distribution("uniform", stats.uniform(loc=low, scale=high - low),
                            f"uniform on [{low:g}, {high:g}]")
    if not isinstance(spec, Mapping):
        raise HhsimError(where, f"expected [low, high] or a distribution table, got {printable(repr(spec))}",
                         'give e.g. { dist = "beta", mean = 0.3, sd = 0.05 }')
    kind = spec.get("dist")
    if kind is None:
        raise HhsimError(where, "has no 'dist'", f"add dist = one of {sorted(FORMS)}")
    if not isinstance(kind, str) or kind not in FORMS:
        raise unknown_key_error(f"{where}.dist", str(kind), FORMS, what="distribution")
    keys = set(spec) - {"dist"}
    form = next((f for f in FORMS[kind] if set(f) == keys), None)
    if form is None:
        allowed = {k for f in FORMS[kind] for k in f}
        extra = sorted(keys - allowed)
        if extra:
            raise unknown_key_error(where, extra[0], sorted(allowed), what=f"{kind} key")
        ways = " or ".join("{" + ", ".join(f) + "}" for f in FORMS[kind])
        raise HhsimError(where, f"a {kind} distribution needs {ways}, got {sorted(keys)}",
                         "give exactly one of those sets of keys")
    if kind == "dirichlet":
        return _dirichlet(spec, where)
    v = {k: _number(spec, k, where) for k in form}
    try:
        dist = _build(kind, form, v, where)
        lo, hi = dist.range()
    except (OverflowError, ZeroDivisionError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise HhsimError(where, f"the {kind} distribution {printable(repr(dict(spec)))} has no finite range",
                         "give numbers of a sensible size")
    return dist


def _build(kind: str, form: tuple[str, ...], v: dict[str, float], where: str) -> Distribution:
    from scipy import stats

    if kind == "uniform":
        _ordered(v["low"], v["high"], where)
        return Distribution(kind, stats.uniform(loc=v["low"], scale=v["high"] - v["low"]),
                            f"uniform on [{v['low']:g}, {v['high']:g}]")
    if kind == "normal":
        _positive(v, where, "sd")
        return Distribution(kind, stats.norm(loc=v["mean"], scale=v["sd"]),
                            f"normal (mean {v['mean']:g}, sd {v['sd']:g})")
    if kind == "triangular":
        _ordered(v["low"], v["high"], where)
        if not v["low"] <= v["mode"] <= v["high"]:
            raise HhsimError(f"{where}.mode", f"{v['mode']:g} is not between low and high",
                             "give low <= mode <= high")
        width = v["high"] - v["low"]
        return Distribution(kind, stats.triang(c=(v["mode"] - v["low"]) / width, loc=v["low"], scale=width),
                            f"triangular ({v['low']:g}, mode {v['mode']:g}, {v['high']:g})")
    if kind == "beta":
        if form == ("alpha", "beta"):
            _positive(v, where, "alpha", "beta")
            a, b = v["alpha"], v["beta"]
        else:
            m, sd = v["mean"], v["sd"]
            if not 0 < m < 1:
                raise HhsimError(f"{where}.mean", f"a beta mean must be between 0 and 1, got {m:g}",
                                 "give a mean in (0, 1), or use another distribution")
            _positive(v, where, "sd")
            if sd * sd >= m * (1 - m):
                raise HhsimError(f"{where}.sd", f"{sd:g} is too large for a beta with mean {m:g}",
                                 f"give sd below {math.sqrt(m * (1 - m)):.3g}")
            common = m * (1 - m) / (sd * sd) - 1
            a, b = m * common, (1 - m) * common
        return Distribution(kind, stats.beta(a, b), f"beta (alpha {a:.3g}, beta {b:.3g})")
    if kind == "gamma":
        if form == ("shape", "scale"):
            _positive(v, where, "shape", "scale")
            shape, scale = v["shape"], v["scale"]
        else:
            _positive(v, where, "mean", "sd")
            shape, scale = (v["mean"] / v["sd"]) ** 2, v["sd"] ** 2 / v["mean"]
        return Distribution(kind, stats.gamma(shape, scale=scale),
                            f"gamma (shape {shape:.3g}, scale {scale:.3g})")
    # lognormal
    if form == ("median", "sdlog"):
        _positive(v, where, "median", "sdlog")
        median, sdlog = v["median"], v["sdlog"]
    else:
        _positive(v, where, "mean", "sd")
        sdlog = math.sqrt(math.log1p((v["sd"] / v["mean"]) ** 2))
        median = v["mean"] * math.exp(-sdlog * sdlog / 2)
    return Distribution(kind, stats.lognorm(s=sdlog, scale=median),
                        f"lognormal (median {median:.3g}, sdlog {sdlog:.3g})")


def _dirichlet(spec: Mapping, where: str) -> Dirichlet:
    names, alpha = spec["parameters"], spec["alpha"]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise HhsimError(f"{where}.parameters", "must list at least two parameter names",
                         'give parameters = ["a", "b", ...]')
    if len(set(names)) != len(names):
        raise HhsimError(f"{where}.parameters", "names a parameter twice", "list each parameter once")
    if (not isinstance(alpha, list) or len(alpha) != len(names)
            or not all(isinstance(a, int | float) and not isinstance(a, bool) and a > 0 for a in alpha)):
        raise HhsimError(f"{where}.alpha", f"must be {len(names)} positive numbers, one per parameter",
                         "give alpha = [...] as long as parameters")
    return Dirichlet(tuple(names), tuple(float(a) for a in alpha))
