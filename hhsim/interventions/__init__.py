"""Interventions as plug-ins: each type has a defaults file, a parser and a runtime class,
registered together (``hhsim.interventions.registry``).

An arm lists its interventions in the experiment file:

    [[arms.interventions]]
    type = "personalised_support"      # a registered type (registry.TYPES)
    name = "support"                   # optional (default: the type); letters, digits, _
    capacity.staff_fte = 1.0           # anything here replaces the type's default

``resolve`` lays that table over the type's defaults (the shipped types':
``hhsim/data/interventions``);
``[parameters]`` may then override any of its numbers as ``interventions.<name>.<path>``.
``parse`` checks the result against the arm's health model (one-line errors) and ``build``
makes the run's intervention object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.health.hospital import DAY_TALLIES
from hhsim.interventions.base import Intervention, ReferralTarget, Settings
from hhsim.interventions.registry import NAME, TYPES
from hhsim.interventions.settings import ModelContext, merge

# The shipped types register themselves when imported, in the order they are listed in.
# isort: off
from hhsim.interventions import support, repairs, rate_ratio, step_down  # noqa: F401
from hhsim.interventions import supported_housing, social_prescribing, housing_first  # noqa: F401
# isort: on

if TYPE_CHECKING:
    from hhsim.health.model_file import HealthModel
    from hhsim.model.simulation import HousingHealthModel

RESERVED = {"undisc", "disc"}  # would make intervention_cost_<name> ambiguous


def resolve(table: Mapping[str, Any], where: str) -> dict:
    """An arm's intervention table laid over its type's defaults, with its name set."""
    if not isinstance(table, Mapping):
        raise HhsimError(where, "must be a table", 'write [[arms.interventions]] with type = "..."')
    kind = table.get("type")
    if kind is None:
        raise HhsimError(where, "has no type", f"add type = \"...\", one of: {', '.join(TYPES)}")
    if not isinstance(kind, str) or kind not in TYPES:
        raise unknown_key_error(f"{where}.type", str(kind), TYPES, what="intervention type")
    name = table.get("name", kind)
    if not isinstance(name, str) or not NAME.match(name) or name in RESERVED:
        raise HhsimError(f"{where}.name", f"{name!r} is not a usable name",
                         "use lower-case letters, digits and _ (e.g. support_east), up to 40")
    try:
        merged = merge(TYPES[kind].defaults(), table)
    except HhsimError as err:
        raise HhsimError(f"{where}.{err.where}", err.problem, err.fix) from None
    merged["name"] = name
    return merged


def model_context(health: HealthModel, price_year: str, months: int | None = None) -> ModelContext:
    """What intervention parsing needs from an arm's health model."""
    services = tuple(s.name for s in health.services) + (("admissions",) if health.admissions else ())
    tallies = [a.name for a in health.activities]
    tallies += [a.name for a in DAY_TALLIES] if health.admissions else []
    return ModelContext(chains={n: c.states for n, c in health.chains.items()}, services=services,
                        rates=frozenset([*(r.name for r in health.rates),
                                         *(t.rate.name for t in health.admissions)]),
                        has_wellbeing=health.wellbeing is not None,
                        monthly=health.cycle_months == 1, price_year=price_year, months=months,
                        activities=frozenset(tallies),
                        probabilities=frozenset(p.name for t in health.admissions
                                                for p in (t.delay, t.readmission)),
                        admission_types=tuple(t.name for t in health.admissions))


def parse(tree: Mapping[str, Any], ctx: ModelContext) -> Settings:
    """The settings of one resolved intervention table."""
    if not ctx.monthly:
        raise HhsimError(f"interventions.{tree['name']}", "interventions need a monthly model",
                         "use a model with cycle = \"month\"")
    kind = tree["type"]
    if kind not in TYPES:  # registered in another process (a worker imports only hhsim)
        raise HhsimError(f"interventions.{tree['name']}.type", f"intervention type '{kind}' is not "
                         "registered in this process", "run with one worker (workers=1), or import "
                         "the module that registers it where the runs are made")
    return TYPES[kind].parse(tree, ctx)


def parse_arm(trees: list[Mapping[str, Any]], ctx: ModelContext, where: str) -> list[Settings]:
    """Settings of an arm's interventions, with the checks that span them; errors name
    the arm (``where``)."""
    try:
        settings = [parse(t, ctx) for t in trees]
    except HhsimError as err:
        raise HhsimError(f"{where}.{err.where}", err.problem, err.fix) from None
    kinds = {s.name: s.kind for s in settings}
    taken = set(ctx.activities)
    for s in settings:
        names = [c.activity(s.name, s.payer).name for c in s.costs]
        names += [f"{s.name}_{t}" for t in s.tallies]
        for activity in names:
            if activity in taken:
                raise HhsimError(f"{where}.interventions.{s.name}",
                                 f"its tally '{activity}' clashes with another of the same name",
                                 "rename the intervention")
            taken.add(activity)
    takers = " or ".join(k for k, t in TYPES.items() if issubclass(t.runtime, ReferralTarget))
    for s in settings:
        for target in s.refers_to:
            if target not in kinds or not issubclass(TYPES[kinds[target]].runtime, ReferralTarget):
                raise HhsimError(f"{where}.interventions.{s.name}.assessment",
                                 f"refers to '{target}', which is not a {takers} intervention "
                                 "of this arm",
                                 f"add a {takers} intervention with that name, or remove refer_to")
    return settings


def build(arm: list[Settings], model: HousingHealthModel) -> list[Intervention]:
    """The runtime objects of an arm's interventions (settings from ``parse_arm``)."""
    out, rank = [], {}
    for s in arm:
        rank[s.kind] = rank.get(s.kind, -1) + 1
        out.append(TYPES[s.kind].runtime(s, model, f"iv:{s.kind}:{rank[s.kind]}"))
    return out
