"""Precision targets: how many replications (or draws) an answer needs, and when to stop.

One rule serves every command that repeats simulations (``run --precision``, ``psa``,
``break-even``, ``calibrate``'s predictive intervals). Given the per-replication values of
an outcome (e.g. an arm's NHS cost minus the baseline's, paired within a replication):

- the 95% Monte-Carlo interval of their mean has half-width ``t(0.975, n-1) x sd / sqrt(n)``;
- the target is met when that half-width is at most the target: ``relative`` x |mean|
  (``--precision 5%``) or an ``absolute`` amount (``--precision 500``, in the outcome's unit,
  e.g. £);
- otherwise the replications needed are projected from the sd seen so far (the half-width
  falls as 1/sqrt(n)); the next round runs towards that number, at most ``GROWTH`` times
  the replications so far (an sd from few replications is itself noisy);
- a relative target on a mean whose interval holds zero can only be met by running until
  the mean is told apart from zero: when even the most hopeful projection (as if the mean
  were at the far end of its interval) exceeds the maximum, the answer is
  "indistinguishable from zero at n replications" (give an absolute target instead), not a
  silent run to the maximum.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from hhsim.core.errors import HhsimError

MIN_REPLICATIONS = 5  # fewer give an interval too wide (t = 2.78 at 5) to plan from
GROWTH = 4.0  # most a round multiplies the replications by
_TARGET = re.compile(r"^\s*(£?)\s*([0-9][0-9,]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*(%?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Precision:
    """A precision target on one outcome: the 95% MC interval's half-width at most
    ``relative`` x |mean| (a share, 0.05 for 5%) or ``absolute`` (the outcome's unit)."""

    relative: float | None = None
    absolute: float | None = None
    outcome: str = "incremental_nhs_cost"
    max_replications: int = 1000

    def __post_init__(self) -> None:
        if (self.relative is None) == (self.absolute is None):
            raise ValueError("give exactly one of relative and absolute")

    def target(self, mean: float) -> float:
        """The largest half-width that meets the target, for a mean of ``mean``."""
        return self.absolute if self.absolute is not None else self.relative * abs(mean)

    def describe(self) -> str:
        if self.relative is not None:
            return f"+/- {100 * self.relative:.3g}% of the mean"
        amount = f"{self.absolute:,.0f}" if self.absolute >= 100 else f"{self.absolute:.3g}"
        return f"+/- {amount}"


def parse_precision(text: str, outcome: str = "incremental_nhs_cost", max_replications: int = 1000,
                    where: str = "--precision") -> Precision:
    """``"5%"`` (relative) or ``"500"`` / ``"£500"`` (absolute) as a Precision."""
    m = _TARGET.match(str(text))
    if not m or (m.group(1) and m.group(3)):
        raise HhsimError(where, f"'{text}' is not a precision target",
                         "give a share of the mean such as 5% or an amount such as 500 (or £500)")
    value = float(m.group(2).replace(",", ""))
    if m.group(3):
        if not 0 < value < 100:
            raise HhsimError(where, f"{value:g}% is not between 0% and 100%", "give e.g. 5%")
        return Precision(relative=value / 100, outcome=outcome, max_replications=max_replications)
    if not (value > 0 and math.isfinite(value)):
        raise HhsimError(where, f"{text} is not above zero", "give an amount above zero, e.g. 500")
    return Precision(absolute=value, outcome=outcome, max_replications=max_replications)


def half_width(values: Sequence[float]) -> float:
    """Half-width of the 95% Monte-Carlo (t) interval of the mean of ``values``."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return math.inf
    return float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))


def needed(sd: float, target: float, have: int) -> int:
    """Fewest replications whose 95% t-interval half-width is at most ``target`` for a
    standard deviation ``sd`` (at least ``have``; a large number when ``target`` is 0)."""
    if sd == 0:
        return have
    if target <= 0:
        return 2**31
    n = max(have, 2, math.ceil((1.96 * sd / target) ** 2))
    while stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) > target:
        n = math.ceil(n * 1.05) + 1
    return n


@dataclass(frozen=True)
class Verdict:
    """Where an outcome stands against a precision target after ``replications``."""

    replications: int
    mean: float
    half_width: float
    target: float  # the half-width the target allows at this mean
    needed: int  # replications projected to meet the target
    reached: bool
    indistinguishable: bool  # relative target, interval holds zero, projection beyond the maximum

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def assess(values: Sequence[float], precision: Precision) -> Verdict:
    """The verdict on per-replication ``values`` of the target's outcome."""
    v = np.asarray(values, dtype=float)
    mean = float(v.mean()) if v.size else math.nan
    hw = half_width(v)
    target = precision.target(mean)
    sd = float(v.std(ddof=1)) if v.size > 1 else math.inf
    need = needed(sd, target, v.size) if math.isfinite(sd) else MIN_REPLICATIONS
    reached = v.size >= 2 and hw <= target
    hopeful = False
    if precision.relative is not None and abs(mean) <= hw and v.size >= MIN_REPLICATIONS:
        # as if the mean were at the far end of its interval: the fewest it could need
        hopeful = needed(sd, precision.relative * (abs(mean) + hw), v.size) > precision.max_replications
    indistinguishable = not reached and hopeful
    return Verdict(int(v.size), mean, hw, target, need, reached, indistinguishable)


def next_round(verdicts: Sequence[Verdict], have: int, maximum: int) -> int:
    """Total replications to have after the next round (``have`` when done): enough for
    every unmet target's projection, at most ``GROWTH`` x ``have`` and ``maximum``."""
    if have < MIN_REPLICATIONS:
        return min(MIN_REPLICATIONS, maximum)
    open_ = [v for v in verdicts if not (v.reached or v.indistinguishable)]
    if not open_ or have >= maximum:
        return have
    want = max(math.ceil(1.1 * v.needed) for v in open_)
    return int(min(maximum, max(have + 1, min(want, math.ceil(GROWTH * have)))))


def stop_reason(verdicts: Mapping[str, Verdict], have: int, maximum: int, precision: Precision,
                unit: str = "replications") -> str:
    """Why the rounds stopped, in words, by arm (or target) where they differ; ``unit``: what
    was counted (replications, draws)."""
    target = precision.describe()
    if all(v.reached for v in verdicts.values()):
        return f"precision {target} reached at {have} {unit}"
    reached = [arm for arm, v in verdicts.items() if v.reached]
    zero = [arm for arm, v in verdicts.items() if v.indistinguishable]
    short = {arm: v.needed for arm, v in verdicts.items() if not (v.reached or v.indistinguishable)}
    parts = [f"{', '.join(reached)}: reached"] if reached else []
    parts += [f"{arm}: not reached (about {need:,} {unit} would be needed)"
              for arm, need in short.items()]
    if zero:
        parts.append(f"{', '.join(zero)}: indistinguishable from zero (a relative target cannot be met when "
                     "the difference may be zero: give an absolute target, e.g. --precision 500)")
    limit = " (the maximum)" if have >= maximum else ""
    return f"stopped at {have} {unit}{limit} before precision {target}: " + "; ".join(parts)


@dataclass(frozen=True)
class Rounds:
    """How a precision target was pursued: the target, the replications after each round,
    each followed arm's verdict at the end, and why the rounds stopped."""

    precision: Precision
    replications: tuple[int, ...]
    verdicts: dict[str, Verdict]
    reason: str

    def table(self) -> pd.DataFrame:
        """One row per arm: the outcome, its mean and 95% MC interval, the target, whether it
        was met, and the replications it would need."""
        p = self.precision
        return pd.DataFrame([{
            "arm": arm, "outcome": p.outcome, "replications": v.replications, "mean": v.mean,
            "low": v.low, "high": v.high, "half_width": v.half_width, "target_half_width": v.target,
            "target_share_of_mean": p.relative, "target_amount": p.absolute, "reached": v.reached,
            "indistinguishable_from_zero": v.indistinguishable,
            "replications_needed": v.needed, "rounds": " ".join(map(str, self.replications)),
            "stopped": self.reason} for arm, v in self.verdicts.items()])
