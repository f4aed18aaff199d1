"""Community service use: GP and practice-nurse contacts, community nursing, A&E
attendances, ambulance call-outs. Each month each tenant at home has a Poisson count of each
service, with mean ``rate x dt x share of the month spent at home``.

A model file declares each service:

    [services.gp]
    activity_unit = "contacts"
    payer = "nhs"
    reference = true                       # the rate is a national average: de-average it
    rate = { value = [...], breaks = [...], unit = "per person-year", source = "..." }
    rr.health.fair = { value = 1.6, unit = "rate ratio", source = "..." }
    unit_cost = { value = 42.0, unit = "£ per contact", price_year = "2022/23", source = "..." }
    track_recent = true                    # keep rolling 12-month counts (hhsim.world.recent_use)
    ages = { from = 16 }                   # whom it describes (hhsim.health.ages); every age if absent
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hhsim.core.accounting import Activity
from hhsim.core.errors import HhsimError
from hhsim.core.parameters import check_keys, to_parameter
from hhsim.health.ages import within_ages
from hhsim.health.rates import Rate, parse_rate
from hhsim.health.terms import TermContext

SERVICE_KEYS = {"description", "activity_unit", "payer", "reference", "rate", "rr", "unit_cost",
                "track_recent", "ages"}


@dataclass
class Service:
    """A community service used at a Poisson rate while a tenant is at home."""

    name: str
    rate: Rate
    activity: Activity
    track_recent: bool = False  # keep 12-month counts that providers can observe


def parse_cost(node: Mapping[str, Any], where: str, name: str, unit: str,
               payer: str | None, key: str = "unit_cost", whole: bool = True) -> Activity:
    """The activity ``name`` with the unit cost in ``node[key]`` (if any)."""
    if key not in node:
        return Activity(name, unit, payer=payer, whole=whole)
    p = to_parameter(f"{where}.{key}", node[key])
    if not p.is_money:
        raise HhsimError(f"{where}.{key}", f"has unit '{p.unit}'", "use a unit like '£ per contact'")
    return Activity(name, unit, float(p.value), p.price_year, payer or "nhs", p.name, whole=whole)


def parse_services(node: Mapping[str, Any] | None, ctx: TermContext) -> list[Service]:
    """Every service of a model file's ``[services]`` table."""
    services = []
    for name, sub in (node or {}).items():
        where = f"services.{name}"
        check_keys(sub, where, SERVICE_KEYS)
        rate = within_ages(parse_rate(sub, where, ctx), sub.get("ages"), f"{where}.ages")
        activity = parse_cost(sub, where, name, sub.get("activity_unit", "contacts"), sub.get("payer"))
        track = sub.get("track_recent", False)
        if not isinstance(track, bool):
            raise HhsimError(f"{where}.track_recent", "must be true or false", "write track_recent = true")
        services.append(Service(name, rate, activity, track))
    return services
