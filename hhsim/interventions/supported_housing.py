"""Supported homes for mental-health discharge (seed 003: the Keep Well Collaborative's
Step Out pathway in Hampshire and the Isle of Wight, with Abri, Southern Health NHS FT and
the Society of St James; initially five permanent homes).

Mental-health inpatients ready for discharge but without suitable housing (a delayed
discharge) move into a supported home when one is free, and leave hospital that day; when
all homes are let they wait in hospital. A home is a tenancy: it frees only when its
tenant moves on (``tenancy.move_on`` per month), the tenancy fails (``tenancy.failure``
per month) or the tenant dies. While a tenant lives there the effects apply (e.g. fewer
readmissions, an odds ratio on ``hospital.admissions.mental_health.readmission_30d``);
residents live at home for every other purpose (community services, admissions from
home). The homes cost ``costs.home_year`` per home per year, let or not. A home whose
tenant dies is free from the start of the next month.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import check_keys
from hhsim.core.resources import data_path
from hhsim.interventions.base import Measure
from hhsim.interventions.discharge import PLACED, DischargeProgramme, DischargeSettings, parse_discharge
from hhsim.interventions.registry import register
from hhsim.interventions.settings import ModelContext, monthly_probability, table


@dataclass(frozen=True)
class Tenancy:
    move_on: float  # probability per month that a tenant moves on (planned)
    failure: float  # probability per month that a tenancy fails


def parse(tree: Mapping[str, Any], ctx: ModelContext) -> DischargeSettings[Tenancy]:
    where = f"interventions.{tree['name']}.tenancy"
    node = check_keys(table(tree, "tenancy", f"interventions.{tree['name']}"), where,
                      ("move_on", "failure"))
    tenancy = Tenancy(monthly_probability(node, "move_on", where),
                      monthly_probability(node, "failure", where))
    if tenancy.move_on + tenancy.failure > 1:
        raise HhsimError(where, "move_on and failure add up to more than 1 a month",
                         "give monthly probabilities that add up to at most 1")
    return parse_discharge(tree, ctx, extra_keys=("tenancy",), place_unit="homes",
                           cost_bases=("place-year", "client"), details=tenancy)


@register("supported_housing", parse=parse, defaults=data_path("interventions/supported_housing.toml"))
class SupportedHousing(DischargeProgramme):
    """``places`` supported homes let to patients leaving hospital (module docstring)."""

    settings: DischargeSettings[Tenancy]
    printed = (*DischargeProgramme.printed, Measure("moved_on", "tenants moved on"),
               Measure("tenancy_failed", "tenancies failed"))

    place_basis, place_days = "place-year", 365.0

    def start(self) -> None:
        super().start()
        self.counts.update(moved_on=0.0, tenancy_failed=0.0)

    def _place(self, idx: np.ndarray, day: np.ndarray) -> None:
        self.model.hospital.send_home(idx, day)  # the supported home is their home now

    def step(self, t: int, discount: float) -> None:
        """Tenancies that end this month free their homes (from its first day)."""
        super().step(t, discount)
        pop = self.model.pop
        residents = np.flatnonzero(self.status == PLACED)
        if not residents.size:
            return
        day = np.full(residents.size, self.model.day, dtype=np.int32)
        died = ~pop.alive[residents]
        if died.any():
            self._leave(residents[died], day[died], died=True)
        residents, day = residents[~died], day[~died]
        tenancy = self.settings.details
        u = self.model.streams.uniform(f"{self.stream}:tenancy", t)[residents]
        ends = tenancy.move_on + tenancy.failure
        for key, out in (("moved_on", u < tenancy.move_on),
                         ("tenancy_failed", (u >= tenancy.move_on) & (u < ends))):
            if out.any():
                self.counts[key] += float(pop.weight[residents[out]].sum(dtype=np.float64))
                self._leave(residents[out], day[out])
