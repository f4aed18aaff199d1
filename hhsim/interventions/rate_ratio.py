"""The generic what-if: multiply named rates for an eligible group during a window.

For questions no named intervention covers ("what if A&E use by people over 75 in damp homes
fell by 10% for two years, at £5 per person-month?"): every eligible tenant is enrolled
(with probability ``uptake``, once) while the window is open and stays enrolled while
eligible; ``[effects]`` give the rate ratios (or wellbeing points); costs are per
person-month and per person. Optional ``capacity.places`` limits how many are enrolled at
a time (first come, first served), and ``capacity.budget_per_year`` what enrolments may
commit (costs per person, and per person-month for the longest enrolment).

    [[arms.interventions]]
    type = "rate_ratio"
    name = "fewer_ae_visits"
    start_month = 0
    end_month = 24
    eligibility = { age = [75, 200], hazards = ["damp"] }
    effects.ae = { target = "services.ae", rate_ratio = 0.9 }
    [arms.interventions.costs]
    per_person_month = { value = 5.0, unit = "£ per person-month", price_year = "2023/24", source = "..." }
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hhsim.core.errors import HhsimError
from hhsim.core.resources import data_path
from hhsim.interventions.programme import ClientProgramme, ProgrammeSettings, parse_programme
from hhsim.interventions.registry import register
from hhsim.interventions.settings import ModelContext, table, value


def parse(tree: Mapping[str, Any], ctx: ModelContext) -> ProgrammeSettings:
    where = f"interventions.{tree['name']}"
    capacity = table(tree, "capacity", where)
    places = value(capacity, "places", f"{where}.capacity", "people") if "places" in capacity else None
    settings = parse_programme(tree, ctx, places=places,
                               cost_bases=("client-month", "client", "programme-year"),
                               capacity_keys=("places", "budget_per_year"))
    if not settings.effects:
        raise HhsimError(f"{where}.effects", "is empty",
                         'add effects.<name> = { target = "services.gp", rate_ratio = 0.9 }')
    return settings


@register("rate_ratio", parse=parse, defaults=data_path("interventions/rate_ratio.toml"))
class RateRatio(ClientProgramme):
    """Rate ratios for an eligible group in a window (see the module docstring)."""
