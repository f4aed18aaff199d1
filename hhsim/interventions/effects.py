"""What an intervention changes for the tenants it serves, and how evidence becomes a rate ratio.

An effect multiplies one of the model's rates (a transition, mortality, a service's use, an
admission type; named as in the model file, e.g. ``services.community_nursing``), multiplies
the odds of a hospital probability (``hospital.admissions.<type>.delay_probability`` or
``.readmission_30d``: ``odds_ratio`` only), or adds points to the wellbeing target
(``target = "wellbeing"``). It acts at full strength while a
tenant is served and, after the tenant leaves, with a strength that halves every
``decay_half_life`` months: a rate ratio ``RR`` at strength ``s`` is ``RR ** s``; points
``x`` are ``x * s``. Several effects on one rate multiply.

Evidence comes in other forms; each is converted once, at validation, and the converted rate
ratio is what the run uses and reports (``iv_<name>_effect_<effect>`` in the run record):

- ``rate_ratio``: used as it is;
- ``percent_change``: a change in a rate, e.g. -16 for "16% fewer contacts":
  ``RR = 1 + percent / 100``. Before-after percentages from uncontrolled pilots include
  regression to the mean: treat them as optimistic;
- ``odds_ratio`` with ``baseline_probability`` (of the event over one period, e.g.
  "probability per year"): the risk ratio ``OR / (1 - p0 + p0 OR)`` (Zhang & Yu, JAMA
  1998;280:1690), then the ratio of constant hazards giving those two probabilities over
  the period, ``ln(1 - p0 RR_risk) / ln(1 - p0)``.

A QALY gain is not an effect: QALYs follow from the states whose rates an intervention
changes, so adding a published QALY gain on top would count the same benefit twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import check_keys
from hhsim.interventions.settings import ModelContext, parameter, value

WELLBEING = "wellbeing"
FORMS = ("rate_ratio", "percent_change", "odds_ratio", "points")
EFFECT_KEYS = ("target", "area", "description", "baseline_probability", *FORMS)


@dataclass(frozen=True)
class Effect:
    """One effect: a rate ratio on ``target`` (a rate's name), or wellbeing points."""

    name: str
    target: str
    ratio: float = 1.0
    points: float = 0.0
    area: str | None = None  # an assessment area: the effect applies only to clients with that need
    derivation: str = ""  # how the ratio was obtained from the evidence given

    @property
    def on_wellbeing(self) -> bool:
        return self.target == WELLBEING


def rate_ratio_from_odds_ratio(odds_ratio: float, p0: float) -> tuple[float, float]:
    """(risk ratio, hazard ratio) of an odds ratio at baseline probability ``p0`` per period."""
    risk_ratio = odds_ratio / (1.0 - p0 + p0 * odds_ratio)
    p1 = p0 * risk_ratio
    return risk_ratio, math.log1p(-p1) / math.log1p(-p0)


def parse_effect(name: str, node: Any, where: str, ctx: ModelContext,
                 areas: tuple[str, ...] = ()) -> Effect:
    """An effect from its table, checked against the model (``ctx``)."""
    if isinstance(node, Mapping) and "qaly_gain" in node:
        raise HhsimError(f"{where}.qaly_gain", "QALYs follow from the states an intervention changes; "
                         "a QALY gain on top would count the benefit twice",
                         "give the effect on transitions or wellbeing instead (docs/interventions.md)")
    check_keys(node, where, EFFECT_KEYS)
    target = node.get("target")
    if not isinstance(target, str):
        raise HhsimError(f"{where}.target", f"must name one rate, got {target!r}",
                         'write target = "services.gp" (a rate of the model) or "wellbeing"')
    if target == WELLBEING:
        if not ctx.has_wellbeing:
            raise HhsimError(f"{where}.target", "the model has no [wellbeing]",
                             "remove this effect or use a model with wellbeing")
    elif target not in ctx.rates and target not in ctx.probabilities:
        raise unknown_key_error(f"{where}.target", str(target),
                                [*sorted(ctx.rates | ctx.probabilities), WELLBEING], what="rate")
    area = node.get("area")
    if area is not None and (not isinstance(area, str) or area not in areas):
        raise unknown_key_error(f"{where}.area", str(area), areas, what="assessment area")
    given = [f for f in FORMS if f in node]
    if len(given) != 1:
        raise HhsimError(where, f"needs exactly one of {', '.join(FORMS)} (got {len(given)})",
                         "give the effect in one form")
    form = given[0]
    if target in ctx.probabilities:
        if form != "odds_ratio" or "baseline_probability" in node:
            raise HhsimError(f"{where}.{form}", f"{target} is a probability: its effects are odds ratios",
                             "give odds_ratio = ... (without baseline_probability)")
        return Effect(name, target, ratio=value(node, "odds_ratio", where, "odds ratio"), area=area,
                      derivation="odds ratio on the probability")
    if (form == "points") != (target == WELLBEING):
        raise HhsimError(f"{where}.{form}", "wellbeing effects are points; rate effects are ratios",
                         "use points with target = \"wellbeing\", a ratio otherwise")
    if form == "points":
        return Effect(name, target, points=value(node, "points", where, "points"), area=area)
    if form == "rate_ratio":
        rr = value(node, "rate_ratio", where, "rate ratio")
        return Effect(name, target, ratio=rr, area=area, derivation="rate ratio as given")
    if form == "percent_change":
        pct = value(node, "percent_change", where, "percent")
        if pct <= -100:
            raise HhsimError(f"{where}.percent_change", f"{pct:g}% would remove the whole rate",
                             "give a change above -100")
        return Effect(name, target, ratio=1 + pct / 100, area=area,
                      derivation=f"1 + ({pct:g})/100 from a percent change")
    odds = value(node, "odds_ratio", where, "odds ratio")
    p0 = parameter(node, "baseline_probability", where, "probability per")
    if not 0 < float(p0.value) < 1:
        raise HhsimError(f"{where}.baseline_probability", "must be between 0 and 1 (exclusive)",
                         "give the event's probability over one period without the intervention")
    risk, hazard = rate_ratio_from_odds_ratio(odds, float(p0.value))
    return Effect(name, target, ratio=hazard, area=area,
                  derivation=f"odds ratio {odds:g} at baseline {float(p0.value):g} ({p0.unit}): "
                             f"risk ratio {risk:.4f}, hazard ratio {hazard:.4f}")


def parse_effects(node: Any, where: str, ctx: ModelContext, areas: tuple[str, ...] = ()) -> list[Effect]:
    if node is None:
        return []
    if not isinstance(node, Mapping):
        raise HhsimError(where, f"must be a table of effects, got {node!r}",
                         'write effects.<name> = { target = "...", rate_ratio = ... }')
    return [parse_effect(name, sub, f"{where}.{name}", ctx, areas)
            for name, sub in node.items()]
