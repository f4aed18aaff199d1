"""Sourced parameters addressed by dotted name.

A parameter file is TOML. Any inline table with a ``value`` key is a parameter (a *leaf*):

    rate = { value = 5.7, unit = "per person-year", source = "NHS Digital 2022", status = "V2" }

Required keys: ``value`` (number, or nested list of numbers), ``unit``, ``source``. Money
(a unit starting with "£") also needs ``price_year``. ``status`` tags the evidence (V1, V2,
D, A, and C: calibrated, the median of a shipped posterior whose sd is at most half the
prior's, set by ``hhsim ship-posterior``); ``assumption = true`` (or status A) marks a value
invented for the model, and its ``source`` must then say why the value was chosen. A leaf
may carry structural keys that shape how the value is used (``breaks``, ``first_age``,
``centre``); those are not parameters and cannot be overridden.

Everything else in the file (state names, links between sections) is structure. The dotted
name of a leaf is its path in the file, e.g. ``services.gp.rate``.

A health model file may also name parameters in a top-level ``[parameters]`` table and give
any leaf's ``value`` as an expression over them, text starting with ``=``
(``hhsim.core.expressions``): ``value = "=rate_to_prob(r_sick, 1)"``. An experiment overrides
named parameters like any other (``parameters.r_sick``); ``resolve_expressions`` then
computes every expression from the overridden values, so what is derived follows.

An override named ``scale(<parameter>)`` multiplies the parameter's value (one number, or a
whole table such as a rate by age and sex) by one positive factor: how a sensitivity
analysis, a PSA or a calibration varies a table as one (``"scale(services.gp.rate)" =
[0.75, 1.25]``). The scaled values must stay within the parameter's unit range; a factor
multiplies the value an experiment sets, if it sets one.
"""

from __future__ import annotations

import copy
import keyword
import math
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError, did_you_mean, printable, unknown_key_error
from hhsim.core.expressions import BREAKS, RESERVED, Banding, Expression, Operand, is_expression
from hhsim.core.inputs import read_input
from hhsim.core.version import RETIRED_PARAMETERS

LEAF_KEYS = {
    "value", "unit", "source", "price_year", "assumption", "status", "note",
    "breaks", "first_age", "centre", "payer", "category", "location",
}
STATUS_TAGS = {"V1", "V2", "D", "A", "C"}
#: The table of named parameters that expressions refer to (top level of a model file).
NAMED = "parameters"
#: Largest ratio (rate, odds or relative risk) or coefficient of variation accepted: far
#: beyond any evidence, and small enough that rates stay finite in 32-bit floats.
MAX_RATIO = 1e6


@dataclass(frozen=True)
class Parameter:
    """One sourced number (or table) with its unit and provenance."""

    name: str
    value: Any
    unit: str
    source: str
    price_year: str | None = None
    assumption: bool = False
    status: str | None = None

    @property
    def is_money(self) -> bool:
        return self.unit.startswith("£")


def is_strictly_positive(unit: str) -> bool:
    """Units whose values must be above zero: ratios and coefficients of variation."""
    u = unit.lower()
    return "ratio" in u or "relative risk" in u or "coefficient of variation" in u


def bounds_for_unit(unit: str) -> tuple[float, float]:
    """Allowed range of a parameter's values, read from its unit."""
    u = unit.lower()
    if u.startswith(("probability", "share", "proportion")):
        return 0.0, 1.0
    if is_strictly_positive(unit):
        return 0.0, MAX_RATIO  # ratios, relative risks, coefficients of variation: checked > 0
    if "multiplier" in u:
        return 0.0, math.inf  # zero switches a cost or a utility off
    if u.startswith(("£", "per ", "days", "months", "years", "count", "people", "beds", "fte")):
        return 0.0, math.inf
    return -math.inf, math.inf


def _numbers_only(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return all(_numbers_only(v) for v in value)
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def check_value(name: str, value: Any, unit: str) -> np.ndarray:
    """Validate a parameter value against its unit; return it as a float array."""
    if is_expression(value):
        raise HhsimError(name, f"expected a number or a table of numbers, got {printable(repr(value))}",
                         "give a number: expressions ('=...') are computed in health model files only")
    if not _numbers_only(value) and not isinstance(value, np.ndarray):
        raise HhsimError(name, f"expected a number or a table of numbers, got {printable(repr(value))}",
                         "give a number (not text or true/false)")
    try:
        arr = np.asarray(value, dtype=float) + 0.0  # + 0.0: a -0.0 becomes 0.0
    except (TypeError, ValueError, OverflowError):
        raise HhsimError(name, f"expected a number or a table of numbers, got {value!r}",
                         "give a number") from None
    if arr.size == 0:
        raise HhsimError(name, "is an empty table", "give at least one number")
    if not np.all(np.isfinite(arr)):
        raise HhsimError(name, "contains a value that is not a finite number", "give finite numbers")
    lo, hi = bounds_for_unit(unit)
    strictly_positive = is_strictly_positive(unit)
    bad = arr[(arr < lo) | (arr > hi) | ((arr <= 0) if strictly_positive else False)]
    if bad.size:
        if strictly_positive:
            rng = f"greater than 0 and at most {hi:,.0f}"
        elif hi < math.inf:
            rng = f"between {lo:g} and {hi:g}"
        else:
            rng = f"at least {lo:g}"
        raise HhsimError(name, f"value {bad.flat[0]:g} is out of range for unit '{unit}'",
                         f"give a value {rng}")
    return arr


def missing_parameter(where: str, key: str, unit: str = "...") -> HhsimError:
    """The error for a required parameter that is absent."""
    return HhsimError(where, f"has no {key}",
                      f'add {key} = {{ value = ..., unit = "{unit}", source = "..." }}')


def scalar(node: Mapping[str, Any], key: str, where: str, unit: str = "...") -> float:
    """The single number held by parameter ``key`` of ``node`` (one-line errors otherwise)."""
    if key not in node:
        raise missing_parameter(where, key, unit)
    p = to_parameter(f"{where}.{key}", node[key])
    value = np.asarray(p.value, dtype=float)
    if value.ndim:
        raise HhsimError(f"{where}.{key}", "must be a single number, not a table", "give one number")
    return float(value)


def check_keys(node: Any, where: str, allowed: Iterable[str], what: str = "key") -> Mapping[str, Any]:
    """``node`` if it is a table whose keys are all ``allowed``; else a one-line error."""
    if not isinstance(node, Mapping):
        raise HhsimError(where, "must be a table", f"write [{where}] with its keys")
    extra = set(node) - set(allowed)
    if extra:
        raise unknown_key_error(where, sorted(extra)[0], allowed, what=what)
    return node


def leaf_parameter(node: Any, where: str,
                   hint: str = "{ value = ..., unit = ..., source = ... }") -> Parameter:
    """The parameter at ``where``: ``node`` must be a leaf (an inline table with a value)."""
    if not is_leaf(node):
        raise HhsimError(where, "is not a parameter", f"give {hint}")
    return to_parameter(where, node)


def is_leaf(node: Any) -> bool:
    return isinstance(node, dict) and "value" in node


def iter_leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, dict]]:
    """Every leaf of a parameter tree with its dotted name, in file order."""
    for key, node in tree.items():
        name = f"{prefix}{key}"
        if is_leaf(node):
            yield name, node
        elif isinstance(node, dict):
            yield from iter_leaves(node, name + ".")


def _check_fields(name: str, node: dict) -> None:
    """One-line errors unless a leaf's keys and metadata (not its value) are valid."""
    check_keys(node, name, LEAF_KEYS, what="parameter field")
    for key in ("unit", "source"):
        if not isinstance(node.get(key), str) or not node[key].strip():
            raise HhsimError(name, f"has no '{key}'", f"add {key} = \"...\" to the parameter")
    if node["unit"].startswith("£") and not node.get("price_year"):
        raise HhsimError(name, "is money but has no price_year", 'add price_year = "2023/24"')
    status = node.get("status")
    if status is not None and (not isinstance(status, str) or status not in STATUS_TAGS):
        raise HhsimError(name, f"unknown status {printable(repr(status))}",
                         f"use one of {sorted(STATUS_TAGS)}")


def to_parameter(name: str, node: dict) -> Parameter:
    """Check a leaf's metadata and value; return it as a Parameter."""
    _check_fields(name, node)
    status = node.get("status")
    check_value(name, node["value"], node["unit"])
    return Parameter(name=name, value=node["value"], unit=node["unit"], source=node["source"],
                     price_year=node.get("price_year"),
                     assumption=bool(node.get("assumption", False)) or status == "A", status=status)


#: Deepest nesting of tables and arrays accepted in a TOML file (hhsim's files use under 8).
MAX_DEPTH = 32


def _depth(node: Any) -> int:
    """How deeply tables and arrays nest in ``node`` (iterative: no recursion limit)."""
    deepest, stack = 0, [(node, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def read_toml(path: str | Path, what: str = "file") -> dict:
    """Read a TOML file, turning every failure into a one-line error."""
    data = read_input(path, what, "toml")
    where = str(path)
    try:
        tree = tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise HhsimError(where, f"is not valid TOML ({exc})", "fix the TOML syntax") from None
    except UnicodeDecodeError:
        raise HhsimError(where, "is not a text file", f"give a TOML {what}") from None
    except RecursionError:
        tree = None
    if tree is None or _depth(tree) > MAX_DEPTH:
        raise HhsimError(where, f"nests tables or arrays more than {MAX_DEPTH} deep",
                         f"check the {what}: hhsim's files need only a few levels")
    return tree


def parameters_of(tree: Mapping[str, Any]) -> dict[str, Parameter]:
    """All parameters of a tree, by dotted name, validated, with expressions computed."""
    return {name: to_parameter(name, node) for name, node in iter_leaves(resolve_expressions(tree))}


def named_parameters(tree: Mapping[str, Any]) -> dict[str, dict]:
    """The leaves of a tree's ``[parameters]`` table by name: one-line errors unless each is
    a leaf whose name an expression can use (ASCII letters, digits and _, not reserved)."""
    node = tree.get(NAMED, {})
    if not isinstance(node, Mapping):
        raise HhsimError(NAMED, "must be a table", "write [parameters] with name = { value = ..., ... }")
    for name, leaf in node.items():
        where = f"{NAMED}.{name}"
        if not is_leaf(leaf):
            raise HhsimError(where, "is not a parameter",
                             "give name = { value = ..., unit = ..., source = ... } (names have no dots)")
        if not (name.isascii() and name.isidentifier()) or keyword.iskeyword(name) or name in RESERVED:
            raise HhsimError(where, "is not a name an expression can use: it must be letters, digits "
                             "and _, not start with a digit, and not be a function, a Python keyword "
                             f"or '{BREAKS}'", "rename it, e.g. r_sick")
    return dict(node)


def _banding(node: Mapping[str, Any], where: str) -> Banding | None:
    """How a leaf's table is banded (its ``breaks`` or ``first_age``), or None."""
    for key in (BREAKS, "first_age"):
        if key in node:
            at = node[key] if key == BREAKS else [node[key]]
            if not (isinstance(at, list) and _numbers_only(at)):
                raise HhsimError(f"{where}.{key}", "must be numbers", f"give {key} as numbers")
            return Banding(key, tuple(float(b) for b in at))
    return None


class _Resolver:
    """Computes the expressions of one tree (in place), named parameters first, each once."""

    def __init__(self, tree: dict) -> None:
        self.named = named_parameters(tree)
        self.done: dict[str, Operand] = {}
        self.stack: list[str] = []  # named parameters being computed, to find cycles

    def operand(self, name: str, user: str, text: str) -> Operand:
        """Named parameter ``name`` (computed if it is an expression), used by ``user``."""
        if name not in self.named:
            guess = did_you_mean(name, self.named)
            fix = (f"did you mean '{guess}'?" if guess else
                   f"add it to [parameters] as {name} = {{ value = ..., unit = ..., source = ... }}")
            raise HhsimError(user, f"expression '{text}' uses '{name}', which is not a named parameter", fix)
        if name in self.stack:
            cycle = [*self.stack[self.stack.index(name):], name]
            raise HhsimError(f"{NAMED}.{cycle[0]}", "expressions refer to each other in a cycle: "
                             + " -> ".join(cycle), "give one of them a number")
        if name not in self.done:
            where, node = f"{NAMED}.{name}", self.named[name]
            self.stack.append(name)
            if is_expression(node["value"]):
                self.compute(where, node)
            else:
                to_parameter(where, node)
            self.stack.pop()
            self.done[name] = Operand(np.asarray(node["value"], dtype=float), _banding(node, where))
        return self.done[name]

    def compute(self, where: str, node: dict) -> None:
        """Replace the expression of leaf ``node`` by its checked value."""
        _check_fields(where, node)
        text = node["value"]
        expr = Expression(text, where)
        banding = _banding(node, where)
        operands = {}
        for name in sorted(expr.names):
            if name != BREAKS:
                operands[name] = self.operand(name, where, text)
            elif banding is None or banding.key != BREAKS:
                raise HhsimError(where, f"expression '{text}' uses '{BREAKS}', but the parameter has none",
                                 f"add {BREAKS} = [...] to the parameter")
            else:
                operands[name] = Operand(np.asarray(banding.at), banding)
        value = expr.evaluate(operands, banding)
        try:
            check_value(where, value, node["unit"])
        except HhsimError as err:
            uses = f" and the parameters it uses ({', '.join(sorted(expr.names))})" if expr.names else ""
            raise HhsimError(where, f"{err.problem}, computed by '{text}'",
                             f"check the expression{uses}") from None
        node["value"] = value.tolist() if value.ndim else float(value)
        node["source"] = f"computed by '{text}': {node['source']}"


def resolve_expressions(tree: Mapping[str, Any]) -> Mapping[str, Any]:
    """``tree`` with every expression value replaced by the number or table it gives (a copy;
    ``tree`` itself when it has no expression). One-line errors name the parameter: an
    unknown name, a cycle, a formula that is not allowed, a value out of its unit's range."""
    named_parameters(tree)
    if not any(is_expression(node["value"]) for _, node in iter_leaves(tree)):
        return tree
    out = copy.deepcopy(dict(tree))
    resolver = _Resolver(out)
    for where, node in iter_leaves(out):
        if not is_expression(node["value"]):
            continue
        name = where.removeprefix(f"{NAMED}.")
        if where.startswith(f"{NAMED}.") and name in resolver.named:
            resolver.operand(name, where, node["value"])
        else:
            resolver.compute(where, node)
    return out


def _override_inputs(text: str, leaves: Mapping[str, dict]) -> str:
    """The fix for an override of a parameter computed by expression ``text``: the named
    parameters given as numbers that it is computed from, directly or through others."""
    inputs, seen, todo = set(), set(), [text]
    while todo:
        try:
            names = Expression(todo.pop(), "").names - {BREAKS}
        except HhsimError:
            continue
        for name in names - seen:
            seen.add(name)
            node = leaves.get(f"{NAMED}.{name}")
            if node is not None and is_expression(node["value"]):
                todo.append(node["value"])
            elif node is not None:
                inputs.add(f"{NAMED}.{name}")
    if not inputs:
        return "it uses no named parameter given as a number: change the expression in the model file"
    return "override the named parameters it is computed from instead: " + ", ".join(sorted(inputs))


_SCALED = re.compile(r"^scale\((?P<name>[^()]+)\)$")


def scaled(name: str) -> str | None:
    """The parameter a ``scale(<parameter>)`` override multiplies, or None for a plain name."""
    match = _SCALED.match(name)
    return match["name"] if match else None


def target_of(name: str) -> str:
    """The parameter an override acts on: ``services.gp.rate`` for itself and for
    ``scale(services.gp.rate)``."""
    return scaled(name) or name


def _scale_factor(where: str, value: Any) -> float:
    """A scale override's factor: one finite number above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not math.isfinite(value) or value <= 0:
        raise HhsimError(where, f"must be one number above 0 (a factor), got {printable(repr(value))}",
                         "give e.g. 1.1 to raise every value by 10%")
    return float(value)


def apply_overrides(tree: Mapping[str, Any], overrides: Mapping[str, Any],
                    where: str = "parameters") -> dict:
    """A deep copy of ``tree`` with the values of named leaves replaced, or multiplied by a
    factor (``scale(<parameter>)``, module docstring).

    Each override must name an existing leaf and keep the value's shape and unit range. Values
    are set first, then scaled: a factor multiplies the value an experiment sets.
    """
    out = copy.deepcopy(dict(tree))
    if not overrides:
        return out
    leaves = dict(iter_leaves(out))
    ordered = sorted(overrides.items(), key=lambda item: scaled(item[0]) is not None)
    for key, value in ordered:
        name = target_of(key)
        if name not in leaves and name in RETIRED_PARAMETERS:
            raise HhsimError(f"{where}.{key}", "is no longer a parameter", RETIRED_PARAMETERS[name])
        if name not in leaves:
            raise unknown_key_error(f"{where}.{key}", name, leaves, what="parameter")
        node = leaves[name]
        if is_expression(node["value"]):
            raise HhsimError(f"{where}.{key}", f"is computed by its expression '{node['value']}'",
                             _override_inputs(node["value"], leaves))
        old = np.asarray(node["value"], dtype=float)
        if key == name:
            new = check_value(f"{where}.{key}", value, node["unit"])
            if new.shape != old.shape:
                raise HhsimError(f"{where}.{key}", f"has shape {new.shape}, expected {old.shape}",
                                 "give a value of the same shape as the default")
            how = f"set by {where} in the experiment file"
        else:
            factor = _scale_factor(f"{where}.{key}", value)
            try:
                new = check_value(f"{where}.{key}", old * factor, node["unit"])
            except HhsimError as err:
                raise HhsimError(err.where, f"times {factor:g}: {err.problem}",
                                 "give a factor that keeps every value in its range") from None
            how = f"scaled by {factor:g} by {where} in the experiment file"
        node["value"] = new.tolist() if new.ndim else float(new)
        node["source"] = f"{how} (default {old.tolist()}: {node['source']})"
        for field in ("status", "assumption"):
            node.pop(field, None)
    return out
