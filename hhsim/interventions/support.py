"""Personalised housing support (seed 000: Connect Housing with Locala, Yorkshire).

Support workers employed by a housing provider give tenants with a long-term condition,
referred by community health professionals, tailored one-to-one support after an
assessment across five areas: economic wellbeing, home and housing, maintaining health and
wellbeing, life skills, social isolation. Capacity is staff: ``staff_fte`` workers with a
caseload of ``caseload_per_fte`` clients each at a time; staff are paid per FTE-year while
the service runs, whether or not every place is filled.

Defaults (``hhsim/data/interventions/personalised_support.toml``) follow the pilot: one
part-time worker, one housing provider's tenants, referral by community health teams. The
pilot published no client count, effect sizes or worker cost, so the effects are
assumptions to be calibrated against its reported saving (issue 10); docs/interventions.md
shows what hhsim gives for the pilot's setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hhsim.core.resources import data_path
from hhsim.interventions.programme import ClientProgramme, ProgrammeSettings, parse_programme
from hhsim.interventions.registry import register
from hhsim.interventions.settings import ModelContext, table, value


def parse(tree: Mapping[str, Any], ctx: ModelContext) -> ProgrammeSettings:
    capacity = table(tree, "capacity", f"interventions.{tree['name']}")
    where = f"interventions.{tree['name']}.capacity"
    fte = value(capacity, "staff_fte", where, "fte")
    caseload = value(capacity, "caseload_per_fte", where, "people per fte")
    return parse_programme(tree, ctx, places=fte * caseload, staff_fte=fte,
                           cost_bases=("fte-year", "programme-year", "client-month", "client"),
                           capacity_keys=("staff_fte", "caseload_per_fte", "budget_per_year"))


@register("personalised_support", parse=parse, defaults=data_path("interventions/personalised_support.toml"))
class PersonalisedSupport(ClientProgramme):
    """Support workers with caseloads (see the module docstring)."""
