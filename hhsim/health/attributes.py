"""Attributes: a number drawn once per person from a distribution (a frailty, an effect modifier).

A model file declares each attribute in ``[attributes.<name>]``, its numbers as parameters:

    [attributes.frailty]
    dist = "gamma"
    mean = { value = 1.0, unit = "multiplier", source = "..." }
    sd = { value = 0.5, unit = "multiplier", source = "..." }

and any multiplicative term table uses it as a term (``rr.frailty = { value = 1, unit =
"power", ... }``: times the frailty to the power 1; ``hhsim.health.terms``). The numbers are
parameters (``attributes.frailty.sd``): an experiment, a sensitivity analysis or a PSA draw
sets them, directly or through expressions over named parameters.

Each tenant's value is drawn once, when the population is initialised, by inverting one
uniform from the attribute's own stream (``attribute:<name>``): no other stream moves, and a
tenant has the same value in every arm. Cohort mode integrates over the attributes with
``integration_points``: exactly over a discrete distribution (each value with its share), by
Gaussian quadrature over a continuous one.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from hhsim.core.distributions import FORMS, parse_distribution
from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import is_leaf, leaf_parameter
from hhsim.core.randomness import Streams
from hhsim.world.population import Population

#: Distributions an attribute may have, and the parameters each needs (one set per way of
#: giving it). Every value is 0 or more: attributes multiply rates and utilities.
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "discrete": (("values", "shares"),),
    "gamma": FORMS["gamma"],
    "lognormal": FORMS["lognormal"],
    "uniform": FORMS["uniform"],
}
SHARE_TOLERANCE = 0.005  # shares are rounded like initial prevalence; renormalised to sum to 1
#: Quadrature nodes per continuous attribute that cohort mode starts from.
QUADRATURE_NODES = 16


def stream_name(attribute: str) -> str:
    """The random stream an attribute is drawn from (its own: no other stream moves)."""
    return f"attribute:{attribute}"


@dataclass(frozen=True)
class Attribute:
    """One attribute's distribution: discrete (``values`` with ``shares``) or continuous
    (``frozen``, a scipy frozen gamma, lognormal or uniform distribution)."""

    name: str
    kind: str
    frozen: Any = None
    values: np.ndarray | None = None
    shares: np.ndarray | None = None

    def draw(self, u: np.ndarray) -> np.ndarray:
        """The values (float32) at uniforms ``u`` in [0, 1): the inverse distribution function."""
        if self.kind == "discrete":
            k = np.searchsorted(np.cumsum(self.shares), u, side="right")
            return self.values[np.minimum(k, self.values.size - 1)].astype(np.float32)
        return np.asarray(self.frozen.ppf(u), dtype=np.float32)

    def nodes(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Values and weights (summing to 1) whose weighted sum of f(value) is E f(X): every
        value of a discrete distribution with its share (exact); for a continuous one the
        ``n``-point Gaussian rule of its density (exact for f a polynomial of degree < 2n)."""
        if self.kind == "discrete":
            return self.values, self.shares
        if self.kind == "gamma":
            x, w = _laguerre(n, self.frozen.args[0] - 1.0)
            return x * self.frozen.kwds["scale"], w
        if self.kind == "lognormal":
            z, w = special.roots_hermitenorm(n)
            return self.frozen.kwds["scale"] * np.exp(self.frozen.kwds["s"] * z), w / w.sum()
        z, w = special.roots_legendre(n)  # uniform
        low, width = self.frozen.kwds["loc"], self.frozen.kwds["scale"]
        return low + (z + 1.0) / 2.0 * width, w / w.sum()


def _laguerre(n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and normalised weights of the generalised Gauss-Laguerre rule (weight x^alpha
    e^-x), by Golub-Welsch: scipy's weights overflow for alpha above about 170, these do not."""
    from scipy import linalg  # here: only cohort mode over a gamma attribute needs it

    k = np.arange(n, dtype=float)
    x, vectors = linalg.eigh_tridiagonal(2.0 * k + alpha + 1.0, np.sqrt(k[1:] * (k[1:] + alpha)))
    w = vectors[0] ** 2
    return x, w / w.sum()


def _number(node: Mapping[str, Any], key: str, where: str) -> float:
    value = np.asarray(leaf_parameter(node[key], f"{where}.{key}").value, dtype=float)
    if value.ndim:
        raise HhsimError(f"{where}.{key}", "must be a single number, not a table", "give one number")
    return float(value)


def _discrete(name: str, node: Mapping[str, Any], where: str) -> Attribute:
    values = np.asarray(leaf_parameter(node["values"], f"{where}.values").value, dtype=float)
    shares = np.asarray(leaf_parameter(node["shares"], f"{where}.shares").value, dtype=float)
    if values.ndim != 1:
        raise HhsimError(f"{where}.values", "must be a list of numbers", "give values = [0.5, 1.0, 2.0]")
    if np.any(values < 0):
        raise HhsimError(f"{where}.values", f"has the value {values.min():g}, below 0",
                         "give values of 0 or more: attributes multiply rates and utilities")
    if shares.shape != values.shape or np.any(shares < 0):
        raise HhsimError(f"{where}.shares", f"needs {values.size} shares of 0 or more, one per value",
                         "give one share per value")
    if abs(shares.sum() - 1.0) > SHARE_TOLERANCE:
        raise HhsimError(f"{where}.shares", f"shares sum to {shares.sum():.4g}, not 1",
                         "make the shares add up to 1")
    return Attribute(name, "discrete", values=values, shares=shares / shares.sum())


def parse_attributes(node: Any, reserved: Collection[str]) -> dict[str, Attribute]:
    """The ``[attributes]`` of a model file; ``reserved``: covariate and chain names, which
    term tables would read before an attribute of that name."""
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise HhsimError("attributes", "must be a table", 'write [attributes.<name>] with dist = "gamma" '
                         "and its parameters")
    out = {}
    for name, sub in node.items():
        where = f"attributes.{name}"
        if name in reserved:
            raise HhsimError(where, f"'{name}' is also a covariate or a chain, so a term could not tell "
                             "them apart", "rename the attribute, e.g. frailty")
        if not isinstance(sub, Mapping) or is_leaf(sub):
            raise HhsimError(where, "must be a table with dist and its parameters",
                             f'write [{where}] with dist = "gamma", mean = {{ value = ..., ... }}, sd = ...')
        kind = sub.get("dist")
        if not isinstance(kind, str) or kind not in DISTRIBUTIONS:
            raise unknown_key_error(f"{where}.dist", str(kind), DISTRIBUTIONS, what="distribution")
        keys = set(sub) - {"dist", "description"}
        form = next((f for f in DISTRIBUTIONS[kind] if set(f) == keys), None)
        if form is None:
            allowed = {k for f in DISTRIBUTIONS[kind] for k in f}
            extra = sorted(keys - allowed)
            if extra:
                raise unknown_key_error(where, extra[0], sorted(allowed | {"dist", "description"}))
            ways = " or ".join("{" + ", ".join(f) + "}" for f in DISTRIBUTIONS[kind])
            raise HhsimError(where, f"a {kind} attribute needs {ways}, got {sorted(keys)}",
                             "give exactly one of those sets of parameters")
        if kind == "discrete":
            out[name] = _discrete(name, sub, where)
            continue
        numbers = {k: _number(sub, k, where) for k in form}
        dist = parse_distribution({"dist": kind, **numbers}, where)
        if dist.frozen.support()[0] < 0:
            raise HhsimError(f"{where}.low", f"is {numbers['low']:g}, below 0",
                             "give low of 0 or more: attributes multiply rates and utilities")
        out[name] = Attribute(name, kind, frozen=dist.frozen)
    return out


def draw_attributes(attributes: Mapping[str, Attribute], pop: Population, streams: Streams) -> None:
    """Draw every slot's value of each attribute, once, from the attribute's own stream."""
    for name, attribute in attributes.items():
        u = streams.generator(stream_name(name)).random(pop.n)
        pop.attributes[name] = attribute.draw(u)


def integration_points(attributes: Mapping[str, Attribute],
                       nodes: int = QUADRATURE_NODES) -> list[tuple[float, dict[str, float]]]:
    """Weights (summing to 1) and values of the attributes at which an expectation over them
    is taken: every combination of each attribute's ``nodes`` (attributes are independent)."""
    if nodes < 1:
        raise HhsimError("nodes", f"must be at least 1, got {nodes}", "give a number of quadrature nodes")
    rules = {name: a.nodes(nodes) for name, a in attributes.items()}
    points = []
    for combination in itertools.product(*(range(v.size) for v, _ in rules.values())):
        weight = float(np.prod([w[i] for (_, w), i in zip(rules.values(), combination, strict=True)]))
        values = {name: float(v[i]) for (name, (v, _)), i in zip(rules.items(), combination, strict=True)}
        points.append((weight, values))
    return points
