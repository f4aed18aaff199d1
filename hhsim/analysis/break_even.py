"""Break-even: where an arm stops (or starts) paying for itself.

Intervention cost (analytic). Costs scale linearly: if every intervention cost of an arm is
multiplied by ``k`` (a unit cost, a budget), its incremental intervention cost becomes
``k x I`` and nothing else changes. So from the paired means, with ``S`` the NHS care
saving, ``S_p`` the saving in every other cost of the perspective and ``dQ`` the QALYs gained:

- ROI = 1 when ``k = S / I`` (the ROI itself);
- ICER = threshold ``t`` (incremental NMB = 0) when ``k = (t x dQ + S_p) / I``.

The break-even cost is ``k x I`` (£), and per person or dwelling served where the arm has
one intervention that reports it. Intervals are delta-method 95% MC intervals of the ratios.

Effect size or caseload (reruns). An effect is not linear in the results, so
``hhsim.studies.break_even.search_break_even`` reruns the arm over one of its parameters and
measures a *gap* that is zero at break-even: the net saving (NHS care saving - incremental intervention cost,
zero exactly where ROI = 1 while the arm costs something) or the incremental NMB at a
threshold. Replication r has the same seed at every value and in the baseline (common
random numbers), and the baseline, which does not depend on the parameter, runs once.

1. The gap is measured on a grid over the range, each value with its 95% MC interval.
2. The answer is refused unless the gap is clear of zero on both sides (beyond MC error)
   and monotone within MC error (no step between neighbouring values goes against the
   trend beyond its paired MC error, Bonferroni over the steps).
3. Values are added inside the grid cell where the mean gap changes sign. A curve is fitted
   by least squares, replication by replication, through the values near the crossing (the
   first of ``FITS`` that is within MC error of every mean: a parabola over the cell, over
   the cell and its neighbours, then a line around the change of sign); its root is the
   answer, with a Fieller 95% interval from the fit's value and slope there (the values
   at which its pointwise interval holds zero).
4. The arm is run at the answer: its measured gap must agree with the fit (else the next
   fit is tried), and its ROI or NMB is reported with its interval.
5. No answer (one line, with the replications needed where more would help) when the gap
   is not clear of zero on one side, is not monotone, has no slope told apart from zero at
   the crossing, or the interval covers more than half the range.

With a precision target (``hhsim.analysis.precision``) on the break-even value's interval,
replications run in rounds; each round repeats the analysis on the replications so far, so
its result is the one a single batch of that many replications gives.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from hhsim.analysis.cost_effectiveness import perspective_cost, pounds
from hhsim.analysis.intervals import ratio_interval
from hhsim.analysis.pairing import paired
from hhsim.analysis.precision import (
    MIN_REPLICATIONS,
    Precision,
    Verdict,
    assess,
    half_width,
    next_round,
    stop_reason,
)
from hhsim.analysis.summary import served_by
from hhsim.core.errors import HhsimError


def _served(records: pd.DataFrame, arm: str, kinds: Mapping[str, str]) -> tuple[str, float] | None:
    """(column, mean count) of who the arm's one costed intervention served, if it says
    (``kinds``: the arm's intervention types by name, where known)."""
    g = records[records["arm"] == arm]
    names = [c[len("intervention_cost_"):] for c in g.columns
             if c.startswith("intervention_cost_") and not c.endswith("_undisc") and g[c].abs().sum() > 0]
    if len(names) != 1:
        return None
    served = served_by(g.columns, names[0], kinds.get(names[0]))
    col = f"iv_{names[0]}_{served.key}" if served else None
    if col is None or not (g[col] > 0).all():
        return None
    return col, float(g[col].mean())


def break_even_costs(records: pd.DataFrame, baseline: str, thresholds: Sequence[float],
                     perspective: str = "public_sector",
                     kinds: Mapping[str, Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Per arm and target (ROI = 1; ICER = each threshold): the intervention-cost scale
    factor at break-even with its interval, the break-even cost (£) and, where known, the
    break-even cost per person or dwelling served (``kinds``: each arm's intervention
    types by name, for what each counts as served)."""
    if records.empty:
        return pd.DataFrame()
    df = records.assign(cost=perspective_cost(records, perspective))
    rows = []
    for arm, d in paired(df, baseline, ["nhs_cost", "intervention_cost", "cost", "qalys"]).items():
        spend = d["intervention_cost"].to_numpy()
        if not np.any(spend):
            continue
        other_saving = (d["intervention_cost"] - d["cost"]).to_numpy()
        targets = [("ROI = 1", -d["nhs_cost"].to_numpy())]
        targets += [(f"ICER = £{t:,.0f} per QALY", t * d["qalys"].to_numpy() + other_saving)
                    for t in thresholds]
        served = _served(records, arm, (kinds or {}).get(arm, {}))
        for target, numerator in targets:
            k, lo, hi = ratio_interval(numerator, spend)
            row = {"arm": arm, "target": target, "perspective": perspective if target != "ROI = 1" else "nhs",
                   "scale": k, "scale_low": lo, "scale_high": hi,
                   "intervention_cost": float(spend.mean()), "break_even_cost": k * float(spend.mean())}
            if served:
                col, count = served
                row["served_by"] = col
                row["cost_per_served"] = float(spend.mean()) / count
                row["break_even_cost_per_served"] = k * row["cost_per_served"]
            rows.append(row)
    return pd.DataFrame(rows)



GRID = 7  # values on the first grid over the range
REFINE = 4  # values added inside the cell where the mean gap changes sign
WIDE = 0.05  # an answer whose half-width exceeds this share of the range gets a warning
TOO_WIDE = 0.5  # an interval covering more than this share of the range is no answer
MAX_REPLICATIONS = 200  # default most replications with a precision target
#: The fits tried around the crossing, in order, until one is within MC error: a parabola over
#: the grid cell where the mean gap changes sign, then over that cell and its neighbours; a line
#: through the values around the change of sign with one more each side, then without.
FITS = (("cell", 2), ("cells", 2), ("near", 1), ("pair", 1))


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The arm at one parameter value, paired with the baseline replication by replication
    (£, discounted). ``gap`` is zero at break-even: the net saving (ROI = 1) or the
    incremental NMB (ICER = threshold); ``saving`` and ``cost``, the NHS care saving and the
    incremental intervention cost behind the ROI (ROI target only)."""

    value: float
    gap: np.ndarray
    saving: np.ndarray | None = None
    cost: np.ndarray | None = None

    @property
    def mean(self) -> float:
        return float(self.gap.mean())

    @functools.cached_property
    def half_width(self) -> float:
        """Half-width of the gap's 95% MC interval (£)."""
        return half_width(self.gap)

    @property
    def side(self) -> int:
        """+1 or -1 when the gap's 95% MC interval is above or below zero, else 0."""
        return int(np.sign(self.mean)) if abs(self.mean) > self.half_width else 0

    def roi(self) -> tuple[float, float, float]:
        """ROI with its 95% delta-method MC interval (NaN for an NMB target)."""
        if self.saving is None or self.cost is None:
            return math.nan, math.nan, math.nan
        return ratio_interval(self.saving, self.cost)


#: Measures the arm at some values with replications 0..n-1, one Evaluation per value.
Evaluate = Callable[[Sequence[float], int], list[Evaluation]]


@dataclass
class BreakEven:
    """Result of ``search_break_even``: the parameter value at break-even with its 95% MC
    interval (NaN with a ``refusal``: why there is no answer, one line), the measurement
    there (``answer``), every value measured (``evaluations``, by value), a ``warning``
    for a wide interval and, with a precision target, why the rounds ``stopped``."""

    parameter: str
    target: str
    bounds: tuple[float, float]
    roi: bool = True
    replications: int = 0
    value: float = math.nan
    low: float = math.nan
    high: float = math.nan
    answer: Evaluation | None = None
    evaluations: list[Evaluation] = field(default_factory=list)
    refusal: HhsimError | None = None
    warning: str | None = None
    stopped: str | None = None


class _NoAnswer(Exception):
    """Why an analysis has no answer. ``values`` (per replication) and ``precision`` say what
    more replications would have to resolve; ``resolve`` says it in words (no ``values``:
    more replications would not help)."""

    def __init__(self, problem: str, fix: str = "", values: np.ndarray | None = None,
                 precision: Precision | None = None, resolve: str = "") -> None:
        super().__init__(problem)
        self.problem, self.fix, self.values, self.precision, self.resolve = (
            problem, fix, values, precision, resolve)


@dataclass(frozen=True)
class _Words:
    """How messages name the curve and the target."""

    roi: bool
    arm: str
    target: str

    @property
    def curve(self) -> str:
        return "net saving" if self.roi else "incremental NMB"

    def side(self, sign: int) -> str:
        word = "above" if sign > 0 else "below"
        return f"{word} £0 (ROI {word} 1)" if self.roi else f"{word} £0"

    def describe(self, e: Evaluation) -> str:
        """The measurement at a value: the gap and, for ROI, the ROI, with 95% MC intervals."""
        h = e.half_width
        text = f"{self.curve} {pounds(e.mean)} (95% MC interval {pounds(e.mean - h)} to {pounds(e.mean + h)}"
        if self.roi:
            r, lo, hi = e.roi()
            text += f"; ROI {r:.3g}" + (f", {lo:.3g} to {hi:.3g}" if np.isfinite(lo) else "")
        return text + ")"


def _beyond(values: np.ndarray, t: float, scale: np.ndarray) -> bool:
    """Whether the mean of per-replication ``values`` (differences of gaps) is more than ``t``
    standard errors from zero, and more than rounding of the gaps ``scale``."""
    mean, se = abs(float(values.mean())), float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean > t * se and mean > 1e-9 * float(np.abs(scale).max())


@functools.cache
def _t(n: int, tests: int = 1) -> float:
    """Two-sided 95% t quantile over ``n`` replications, Bonferroni over ``tests``."""
    return float(stats.t.ppf(1 - 0.025 / tests, n - 1))


def _direction(points: list[Evaluation], words: _Words, n: int, maximum: int) -> int:
    """-1 when the gap falls through zero along the range, +1 when it rises: it must be clear
    of zero on both sides beyond MC error."""
    above = [p.value for p in points if p.side > 0]
    below = [p.value for p in points if p.side < 0]
    lo, hi = points[0].value, points[-1].value
    if above and below:
        if max(above) < min(below):
            return -1
        if max(below) < min(above):
            return 1
        first, second = (above, below) if min(above) < min(below) else (below, above)
        middle = next(x for x in second if x > min(first))
        other = next(x for x in first if x > middle)
        sign = 1 if first is above else -1
        raise _NoAnswer(f"the {words.curve} is {words.side(sign)} at {min(first):g} and {other:g} but "
                        f"{words.side(-sign)} at {middle:g} (beyond MC error): it is not monotone, so "
                        "break-even is not unique", "narrow --between to one crossing")
    means = np.array([p.mean for p in points])
    tell = Precision(relative=1.0, outcome="sign", max_replications=maximum)  # half-width < |mean|
    if np.all(means >= 0) or np.all(means <= 0):
        sign = 1 if means.sum() >= 0 else -1
        if all(p.side == sign for p in points):
            nearest = min(points, key=lambda p: abs(p.mean))
            raise _NoAnswer(f"{words.arm} does not reach {words.target} between {lo:g} and {hi:g}: its "
                            f"{words.curve} stays {words.side(sign)} beyond MC error; nearest at "
                            f"{nearest.value:g}: {words.describe(nearest)}", "widen --between")
        # every mean on one side, but not every value clear of £0: whether the arm reaches the
        # target here is not known at this number of replications
        p = min(points, key=lambda p: abs(p.mean) / max(p.half_width, 1e-300))
        raise _NoAnswer(f"the {words.curve} is {words.side(sign)} at every value from {lo:g} to {hi:g} by "
                        f"its mean but not beyond MC error at {n} replications, so whether {words.arm} "
                        f"reaches {words.target} here cannot be told; least clear at {p.value:g}: "
                        f"{words.describe(p)}", "or widen --between", p.gap, tell, "tell its sign there")
    missing = [s for s, have in ((1, above), (-1, below)) if not have]
    best = {s: max((p for p in points if np.sign(p.mean) == s), key=lambda p: abs(p.mean) / p.half_width)
            for s in missing}
    worst = max(missing, key=lambda s: assess(best[s].gap, tell).needed)
    p = best[worst]
    if len(missing) == 2:
        problem = (f"at {n} replications no value from {lo:g} to {hi:g} has a {words.curve} told apart "
                   f"from £0 (every 95% MC interval holds it)")
    else:
        clear = above or below
        problem = (f"the {words.curve} is {words.side(-worst)} beyond MC error at "
                   f"{min(clear):g}{f' to {max(clear):g}' if len(clear) > 1 else ''} but nowhere clearly "
                   f"{words.side(worst)} at {n} replications")
    raise _NoAnswer(f"{problem}; clearest at {p.value:g}: {words.describe(p)}",
                    "or widen --between", p.gap, tell, "tell its sign there")


def _check_monotone(points: list[Evaluation], direction: int, words: _Words, n: int) -> None:
    """No step between neighbouring values against ``direction`` beyond its paired MC error."""
    t = _t(n, len(points) - 1)
    for p, q in itertools.pairwise(points):
        step = q.gap - p.gap
        if direction * step.mean() < 0 and _beyond(step, t, np.r_[p.gap, q.gap]):
            way = "rises" if step.mean() > 0 else "falls"
            raise _NoAnswer(f"the {words.curve} is not monotone within MC error: it {way} from "
                            f"{pounds(p.mean)} at {p.value:g} to {pounds(q.mean)} at {q.value:g} against "
                            "its trend, beyond the paired MC error of the step, so break-even may not be "
                            "unique", "narrow --between to a range where it only rises or only falls")


def _crossing(points: list[Evaluation]) -> tuple[int, int]:
    """Indices of the values around the changes of sign of the mean gap (first to last)."""
    positive = np.array([p.mean > 0 for p in points])
    changes = np.flatnonzero(positive[:-1] != positive[1:])
    return int(changes[0]), int(changes[-1]) + 1


@dataclass(frozen=True)
class _Curve:
    """A polynomial in ``x - x0`` (a line or a parabola) fitted to the gap by least squares,
    replication by replication: ``coef`` has one column per replication, lowest power first."""

    x0: float
    coef: np.ndarray

    @classmethod
    def fit(cls, points: list[Evaluation], degree: int) -> _Curve:
        x = np.array([p.value for p in points])
        design = np.vander(x - x.mean(), degree + 1, increasing=True)
        return cls(float(x.mean()), np.linalg.lstsq(design, np.stack([p.gap for p in points]), rcond=None)[0])

    def at(self, value: float) -> np.ndarray:
        """Per-replication value of the fitted curve at ``value``."""
        return np.vander([value - self.x0], len(self.coef), increasing=True)[0] @ self.coef

    def slope(self, value: float) -> np.ndarray:
        """Per-replication slope of the fitted curve at ``value``."""
        powers = np.arange(1, len(self.coef))
        return (powers * (value - self.x0) ** (powers - 1)) @ self.coef[1:]

    def fits(self, points: list[Evaluation]) -> bool:
        """Whether no value's mean gap is off the curve beyond MC error (Bonferroni)."""
        t = _t(self.coef.shape[1], len(points))
        return not any(_beyond(p.gap - self.at(p.value), t, p.gap) for p in points)

    def root(self, low: float, high: float) -> float | None:
        """Where the mean curve crosses zero between ``low`` and ``high`` (the crossing
        nearest the middle), or None."""
        roots = np.roots(self.coef.mean(axis=1)[::-1]) + self.x0
        roots = roots[np.isreal(roots)].real
        roots = roots[(roots >= low) & (roots <= high)]
        return float(roots[np.argmin(np.abs(roots - 0.5 * (low + high)))]) if roots.size else None

    def interval(self, value: float) -> tuple[float, float] | None:
        """Fieller 95% interval of the root ``value``, from the curve's value and slope there
        replication by replication (the values whose pointwise interval of the tangent holds
        zero); None when the slope is not told apart from zero."""
        a, b = self.at(value), self.slope(value)
        n, t = a.size, _t(a.size)
        ma, mb = float(a.mean()), float(b.mean())
        c = np.cov(a, b, ddof=1) / n
        qa = mb * mb - t * t * c[1, 1]
        if not qa > 0:
            return None
        qb, qc = 2 * (ma * mb - t * t * c[0, 1]), ma * ma - t * t * c[0, 0]
        root = math.sqrt(max(qb * qb - 4 * qa * qc, 0.0))
        return value + (-qb - root) / (2 * qa), value + (-qb + root) / (2 * qa)

    def pseudo(self, value: float) -> np.ndarray:
        """Per-replication values whose mean is (about) the root ``value`` and whose standard
        error is its delta-method one (to project the replications needed)."""
        return value - self.at(value) / float(self.slope(value).mean())


@dataclass
class _State:
    """One analysis at ``result.replications``: the result, and what more replications would
    resolve (``values`` against ``precision``; None: nothing more replications would fix)."""

    result: BreakEven
    values: np.ndarray | None = None
    precision: Precision | None = None
    no_answer: _NoAnswer | None = None
    fieller_half_width: float = math.nan

    def verdict(self) -> Verdict | None:
        if self.values is None or self.precision is None:
            return None
        v = assess(self.values, self.precision)
        if self.no_answer is None:  # the answer's own (Fieller) interval decides
            hw = self.fieller_half_width
            reached = hw <= v.target
            need = v.needed
            if not reached and need <= v.replications:  # project from the Fieller half-width (1/sqrt(n))
                need = math.ceil(v.replications * (hw / v.target) ** 2) if v.target > 0 else need
            return replace(v, half_width=hw, reached=reached, needed=max(need, v.replications + 1)
                           if not reached else need)
        if v.reached:  # the delta method is too hopeful where there is no answer yet
            return replace(v, reached=False, needed=max(v.needed, 2 * v.replications))
        return v


def _analyse(evaluate: Evaluate, bounds: tuple[float, float], n: int, words: _Words, where: str,
             goal: Precision) -> _State:
    """Measure, check and locate the crossing with ``n`` replications."""
    lo, hi = bounds
    measured: dict[float, Evaluation] = {}
    result = BreakEven(where, words.target, bounds, words.roi, n)

    def measure(values: Sequence[float]) -> list[Evaluation]:
        new = [float(v) for v in values if float(v) not in measured]
        for e in evaluate(new, n) if new else []:
            if words.roi and not e.cost.mean() > 0:
                raise HhsimError(where, f"at {e.value:g} the arm's ROI is not defined (no intervention "
                                 "cost?)", "move the bounds where the arm costs something")
            measured[e.value] = e
        return [measured[float(v)] for v in values]

    def ordered() -> list[Evaluation]:
        return [measured[v] for v in sorted(measured)]

    try:
        grid = measure(np.linspace(lo, hi, GRID))
        direction = _direction(grid, words, n, goal.max_replications)
        _check_monotone(grid, direction, words, n)
        i, j = _crossing(grid)
        measure(np.linspace(grid[i].value, grid[j].value, REFINE + 2)[1:-1])
        _check_monotone(ordered(), direction, words, n)
        bracket = (grid[i].value, grid[j].value)

        def span(name: str) -> tuple[float, float]:
            """The values a fit of ``FITS`` uses lie in this span."""
            if name == "cell":
                return bracket
            if name == "cells":
                return grid[max(i - 1, 0)].value, grid[min(j + 1, GRID - 1)].value
            inner = [p for p in ordered() if bracket[0] <= p.value <= bracket[1]]
            k, m = _crossing(inner)
            pad = int(name == "near")
            return inner[max(k - pad, 0)].value, inner[min(m + pad, len(inner) - 1)].value

        first: _NoAnswer | None = None  # the first fit's reason for no answer
        for name, degree in FITS:
            a, b = span(name)
            window = [p for p in ordered() if a <= p.value <= b]
            curve = _Curve.fit(window, degree)
            value = curve.root(a, b)
            if value is None or not curve.fits(window):
                continue
            found = curve.interval(value)
            if found is None:
                first = first or _NoAnswer(
                    f"the {words.curve} changes sign between {a:g} and {b:g}, but its slope there is not "
                    f"told apart from zero at {n} replications, so the break-even value cannot be placed",
                    "", curve.pseudo(value), goal, f"pin it to {goal.describe()}")
                continue
            low, high = found
            if high - low > TOO_WIDE * (hi - lo):
                first = first or _NoAnswer(
                    f"the 95% MC interval of the break-even value, {low:.6g} to {high:.6g}, covers "
                    f"{(high - low) / (hi - lo):.0%} of the range at {n} replications", "",
                    curve.pseudo(value), goal, f"narrow it to {goal.describe()}")
                continue
            at = measure([value])[0]
            if not _beyond(at.gap - curve.at(value), _t(n), at.gap):
                break
        else:
            raise first or _NoAnswer(
                f"the {words.curve} is not a smooth curve within MC error anywhere around its crossing "
                f"between {bracket[0]:g} and {bracket[1]:g}", f"search a narrower range, e.g. --between "
                f"{bracket[0]:g} {bracket[1]:g}")
    except _NoAnswer as no:
        result.evaluations = ordered()
        return _State(result, no.values, no.precision, no)
    result.value, result.low, result.high, result.answer = value, low, high, at
    result.evaluations = ordered()
    return _State(result, curve.pseudo(value), goal, None, 0.5 * (high - low))


def find_break_even(evaluate: Evaluate, bounds: tuple[float, float], replications: int, *,
                    roi: bool = True, where: str = "parameter", arm: str = "the arm",
                    target: str = "ROI = 1", precision: Precision | None = None) -> BreakEven:
    """The break-even value of a parameter within ``bounds`` from ``evaluate`` (see the
    module docstring), with ``replications``; with a ``precision`` target on the
    break-even value's 95% MC interval (half-width, in the parameter's units or as a share
    of the value), in rounds from at least ``MIN_REPLICATIONS`` to at most its
    ``max_replications``."""
    lo, hi = bounds
    if not lo < hi:
        raise HhsimError("--between", f"{lo:g} is not below {hi:g}", "give LOW then HIGH")
    if precision is None and replications < 2:
        raise HhsimError("--replications", f"{replications} replication has no Monte-Carlo error, so "
                         "break-even cannot be told from simulation noise",
                         f"give --replications {MIN_REPLICATIONS} or more, or --precision")
    words = _Words(roi, arm, target)
    maximum = precision.max_replications if precision else MAX_REPLICATIONS
    usual = Precision(absolute=WIDE * (hi - lo), outcome="break-even value", max_replications=maximum)
    goal = precision or usual
    n = replications if precision is None else min(max(replications, MIN_REPLICATIONS), maximum)
    while True:
        state = _analyse(evaluate, bounds, n, words, where, goal)
        verdict = state.verdict()
        if precision is None or verdict is None:
            break
        more = next_round([verdict], n, maximum)
        if more == n:
            break
        n = more
    result, no = state.result, state.no_answer
    if no is not None:
        fix = no.fix
        if verdict is not None and no.resolve:
            need = max(verdict.needed, MIN_REPLICATIONS)
            if precision is None:
                more = (f"about {need:,} replications would {no.resolve}: give --replications {need}, or "
                        "--precision to run rounds")
            else:
                more = (f"about {need:,} replications would {no.resolve} (stopped at {n} of at most "
                        f"{maximum}: raise --max-replications)")
            fix = f"{more}; {fix}" if fix else more
        result.refusal = HhsimError(where, no.problem, fix or None)
        return result
    if precision is not None:
        result.stopped = stop_reason({"the break-even value": verdict}, n, maximum, precision)
        if not verdict.reached:
            result.warning = result.stopped
    elif not verdict.reached:
        result.warning = (f"the 95% MC interval of the break-even value is wide (+/- "
                          f"{verdict.half_width:.4g}, {verdict.half_width / (hi - lo):.0%} of the range); "
                          f"about {verdict.needed:,} replications would narrow it to {usual.describe()} "
                          f"(--replications {verdict.needed}, or --precision)")
    return result


def format_break_even(res: BreakEven, arm: str, baseline: str, size: str) -> str:
    """The evaluations table and the answer (nothing after the table when refused); ``size``
    says what was simulated (e.g. "2,000 tenants, 24 months")."""
    words = _Words(res.roi, arm, res.target)
    gap = "net saving £" if res.roi else "incremental NMB £"
    lines = [f"Break-even of {arm} against {baseline} at {res.target}"
             + (" (net saving = £0)" if res.roi else " (incremental NMB = £0)")
             + f" over {res.parameter} from {res.bounds[0]:g} to {res.bounds[1]:g}.",
             f"{size}, {res.replications} replications per value; each "
             "replication has the same seed at every value and in the baseline (common random numbers). "
             "95% Monte-Carlo intervals.",
             f"{'value':>12}  {gap + ' (95% MC interval)':<40}"
             + ("  ROI (95% MC interval)" if res.roi else "")]

    def money(x: float) -> str:
        return f"{round(x) + 0.0:,.0f}"  # no "-0"

    for e in res.evaluations:
        h = e.half_width
        row = f"{e.value:>12.6g}  {f'{money(e.mean)} ({money(e.mean - h)} to {money(e.mean + h)})':<40}"
        if res.roi:
            r, lo, hi = e.roi()
            row += f"  {r:.3g} ({lo:.3g} to {hi:.3g})"
        lines.append(row + ("  <- answer" if e is res.answer else ""))
    if res.refusal is None:
        lines.append(f"{arm} reaches {res.target} at {res.parameter} = {res.value:.6g} "
                     f"(95% MC interval {res.low:.6g} to {res.high:.6g}).")
        lines.append(f"Measured there: {words.describe(res.answer)}.")
    if res.stopped:
        lines.append(f"Stopped: {res.stopped}.")
    return "\n".join(line.rstrip() for line in lines)
