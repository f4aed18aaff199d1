"""Expressions over named parameters: a small, safe arithmetic language for parameter values.

A parameter's ``value`` may be text starting with ``=``, an expression over the model file's
named parameters (``hhsim.core.parameters.resolve_expressions`` computes them):

    probability = { value = "=rate_to_prob(r_sick, 1)", unit = "probability per year", ... }

The text is parsed by Python's ``ast`` and evaluated by walking a whitelist of node types;
it is never given to ``eval``. Allowed: numbers, names, ``+ - * / **``, unary ``+`` and
``-``, parentheses, and calls of ``FUNCTIONS`` and ``lookup``. Everything else (attribute
access, indexing, strings, lists, comparisons, lambdas, comprehensions, keyword arguments,
...) is refused with a one-line error. Values are numpy float64 arrays, so an operand may be
a table and arithmetic is element-wise; every intermediate result must be finite.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce

import numpy as np

from hhsim.core.errors import HhsimError, shortened

#: What marks a parameter value as an expression.
PREFIX = "="
#: Longest expression accepted (characters): far more than a formula needs.
MAX_LENGTH = 1000
#: ``lookup(table, x)``: the value of the band of a banded table that holds x (an age, or a
#: month or year for tables by time in state or model year).
LOOKUP = "lookup"
#: The name of a parameter's own ``breaks`` (lower bounds of its bands) in its expression.
BREAKS = "breaks"


def rate_to_prob(rate: np.ndarray, years: np.ndarray | float = 1.0) -> np.ndarray:
    """Probability of at least one event in ``years`` at a constant ``rate`` per year:
    1 - exp(-rate x years)."""
    return -np.expm1(-rate * years)


def prob_to_rate(prob: np.ndarray, years: np.ndarray | float = 1.0) -> np.ndarray:
    """Constant rate per year that gives probability ``prob`` over ``years``:
    -ln(1 - prob) / years."""
    return -np.log1p(-prob) / years


def by_sex(men: np.ndarray, women: np.ndarray) -> np.ndarray:
    """A table of two rows, men then women, as a term by sex reads it (a number or a table each)."""
    return np.stack(np.broadcast_arrays(men, women))


#: The functions an expression may call: name -> (fewest, most arguments (None: any), function).
FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., np.ndarray]]] = {
    "exp": (1, 1, np.exp),
    "log": (1, 1, np.log),
    "sqrt": (1, 1, np.sqrt),
    "pow": (2, 2, np.power),
    "min": (2, None, lambda *a: reduce(np.minimum, a)),
    "max": (2, None, lambda *a: reduce(np.maximum, a)),
    "rate_to_prob": (1, 2, rate_to_prob),
    "prob_to_rate": (1, 2, prob_to_rate),
    "by_sex": (2, 2, by_sex),
}
#: Names a named parameter cannot have.
RESERVED = frozenset({*FUNCTIONS, LOOKUP, BREAKS})
ALLOWED = (f"use numbers, named parameters, + - * / ** and parentheses, and the functions "
           f"{', '.join(FUNCTIONS)}, {LOOKUP}")

_OPERATORS: dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide,
    ast.Pow: np.power,
}
_UNARY: dict[type, Callable[[np.ndarray], np.ndarray]] = {ast.USub: np.negative, ast.UAdd: np.positive}
#: What the refused node types are called in errors.
_REFUSED = {
    ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension", ast.Compare: "a comparison", ast.BoolOp: "and/or",
    ast.IfExp: "if-else", ast.List: "a list", ast.Tuple: "a tuple", ast.Set: "a set",
    ast.Dict: "a table", ast.JoinedStr: "text", ast.NamedExpr: "an assignment", ast.Starred: "*",
}


def is_expression(value: object) -> bool:
    """Whether a parameter value is an expression (text starting with ``=``)."""
    return isinstance(value, str) and value.startswith(PREFIX)


@dataclass(frozen=True)
class Banding:
    """How a table is banded along its last axis: by ``breaks`` (lower bounds of the bands)
    or by single years from ``first_age``."""

    key: str  # "breaks" or "first_age"
    at: tuple[float, ...]  # the breaks, or (first_age,)

    def bounds(self, length: int) -> np.ndarray:
        """Lower bounds of the ``length`` bands of a table with this banding."""
        if self.key == BREAKS:
            return np.asarray(self.at, dtype=float)
        return self.at[0] + np.arange(length, dtype=float)

    def __str__(self) -> str:
        return (f"breaks [{', '.join(f'{b:g}' for b in self.at)}]" if self.key == BREAKS
                else f"first_age {self.at[0]:g}")


@dataclass(frozen=True)
class Operand:
    """A value an expression may name: a number or a table, with its banding if it has one."""

    value: np.ndarray
    banding: Banding | None = None


class Expression:
    """An expression checked against the whitelist; ``evaluate`` computes it."""

    def __init__(self, text: str, where: str) -> None:
        """``text`` starts with ``=``; ``where`` is the dotted name of the parameter it is the
        value of (for errors)."""
        self.text, self.where = text, where
        self._operands: Mapping[str, Operand] = {}
        self._banding: Banding | None = None
        body = text[len(PREFIX):].strip()
        if len(body) > MAX_LENGTH:
            raise self._error(f"is longer than {MAX_LENGTH} characters", "split it with named parameters")
        if not body:
            raise self._error("is empty", "write a formula after '=', e.g. '=1 - exp(-r * 2)'")
        try:
            self.tree = ast.parse(body, mode="eval")
        except (SyntaxError, ValueError) as err:
            raise self._error(f"is not a valid formula ({err.msg if isinstance(err, SyntaxError) else err})",
                              "write e.g. '=1 - exp(-r * 2)' with named parameters") from None
        except (RecursionError, MemoryError):
            raise self._error("nests too deeply", "split it with named parameters") from None
        self.names = frozenset(self._check())

    def _error(self, problem: str, fix: str = ALLOWED) -> HhsimError:
        return HhsimError(self.where, f"expression '{shortened(self.text, 80)}' {problem}", fix)

    def _refuse(self, node: ast.AST, what: str, fix: str = ALLOWED) -> HhsimError:
        return self._error(f"uses {what} ('{shortened(ast.unparse(node), 40)}'), which is not allowed", fix)

    def _check(self) -> set[str]:
        """The names the expression uses; a one-line error at the first node not allowed."""
        nodes = list(ast.walk(self.tree.body))
        called = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
        for node in nodes:
            if isinstance(node, ast.Constant):
                if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                    what = "text" if isinstance(node.value, str) else "a constant that is not a number"
                    raise self._refuse(node, what)
            elif isinstance(node, ast.BinOp):
                if isinstance(node.op, ast.BitXor):
                    raise self._refuse(node, "'^'", "write powers as x ** y or pow(x, y)")
                if type(node.op) not in _OPERATORS:
                    raise self._refuse(node, "an operator other than + - * / **")
            elif isinstance(node, ast.UnaryOp):
                if type(node.op) not in _UNARY:
                    raise self._refuse(node, "an operator other than + - * / **")
            elif isinstance(node, ast.Call):
                self._check_call(node)
            elif not isinstance(node, ast.Name | ast.operator | ast.unaryop | ast.expr_context):
                raise self._refuse(node, _REFUSED.get(type(node), type(node).__name__))
        return {n.id for n in nodes if isinstance(n, ast.Name) and id(n) not in called}

    def _check_call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name) or node.func.id not in (*FUNCTIONS, LOOKUP):
            what = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise self._error(f"calls '{shortened(what, 40)}', which is not an allowed function",
                              f"call only {', '.join(FUNCTIONS)} and {LOOKUP}")
        name = node.func.id
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self._refuse(node, "named or * arguments", f"give {name}'s arguments in order")
        fewest, most = (2, 2) if name == LOOKUP else FUNCTIONS[name][:2]
        if len(node.args) < fewest or (most is not None and len(node.args) > most):
            count = f"{fewest}" if fewest == most else f"{fewest} to {most}" if most else f"{fewest} or more"
            raise self._error(f"calls {name} with {len(node.args)} argument(s)",
                              f"give {name} {count} argument(s)")
        if name == LOOKUP and not isinstance(node.args[0], ast.Name):
            raise self._error(f"calls {LOOKUP} on '{shortened(ast.unparse(node.args[0]), 40)}'",
                              f"give {LOOKUP} a named parameter with breaks or first_age, e.g. "
                              f"{LOOKUP}(life_table, 50)")

    def evaluate(self, operands: Mapping[str, Operand], banding: Banding | None) -> np.ndarray:
        """The value (float64) with ``operands`` for the names; ``banding`` is the parameter's
        own, which every banded table used outside ``lookup`` must share."""
        self._operands, self._banding = operands, banding
        try:
            with np.errstate(all="ignore"):
                return self._eval(self.tree.body)
        except RecursionError:
            raise self._error("nests too deeply", "split it with named parameters") from None

    def _eval(self, node: ast.expr) -> np.ndarray:
        if isinstance(node, ast.Constant):
            try:
                out = np.asarray(float(node.value))
            except OverflowError:
                out = np.asarray(np.inf)
        elif isinstance(node, ast.Name):
            out = self._operand(node.id)
        elif isinstance(node, ast.BinOp):
            out = self._apply(node, _OPERATORS[type(node.op)], node.left, node.right)
        elif isinstance(node, ast.UnaryOp):
            out = _UNARY[type(node.op)](self._eval(node.operand))
        else:  # a call of a whitelisted function: _check allows nothing else
            assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            if node.func.id == LOOKUP:
                table, at = node.args
                assert isinstance(table, ast.Name)
                out = self._lookup(table.id, at)
            else:
                out = self._apply(node, FUNCTIONS[node.func.id][2], *node.args)
        if not np.all(np.isfinite(out)):
            raise self._error(f"gives a value that is not a finite number at "
                              f"'{shortened(ast.unparse(node), 40)}'",
                              "check the formula and the values of the parameters it uses")
        return np.asarray(out, dtype=float)

    def _apply(self, node: ast.expr, fn: Callable[..., np.ndarray], *args: ast.expr) -> np.ndarray:
        values = [self._eval(a) for a in args]
        try:
            return fn(*values)
        except ValueError:
            shapes = " and ".join(str(v.shape) for v in values)
            raise self._error(f"combines tables of shapes {shapes} at '{shortened(ast.unparse(node), 40)}'",
                              "combine tables of the same shape, or a table and a number") from None

    def _operand(self, name: str) -> np.ndarray:
        """The value of ``name``; a banded table must have the parameter's own banding."""
        op = self._operands[name]
        if op.value.ndim and op.banding is not None and op.banding != self._banding:
            mine = str(self._banding) if self._banding else "no breaks"
            raise self._error(f"uses table '{name}' with {op.banding}, but this parameter has {mine}",
                              f"give both the same breaks (or first_age), or re-band it with "
                              f"{LOOKUP}({name}, {BREAKS})")
        return op.value

    def _lookup(self, name: str, at: ast.expr) -> np.ndarray:
        """``lookup(name, at)``: the value of banded table ``name`` in the band holding ``at``."""
        op = self._operands[name]
        if op.banding is None:
            raise self._error(f"looks up '{name}', which has no breaks or first_age",
                              f"give [parameters].{name} breaks or first_age")
        if not op.value.ndim:
            return op.value
        bounds = op.banding.bounds(op.value.shape[-1])
        if len(bounds) != op.value.shape[-1] or np.any(np.diff(bounds) <= 0):
            raise self._error(f"looks up '{name}', whose {len(bounds)} breaks do not increase or do not "
                              f"match its {op.value.shape[-1]} values per row",
                              f"give [parameters].{name} increasing breaks, one per value")
        band = np.clip(np.searchsorted(bounds, self._eval(at), side="right") - 1, 0, len(bounds) - 1)
        return np.take(op.value, band, axis=-1)
