"""Step-down reablement beds (seed 001: Midland Heart's Cedarwood, 29 beds at Good Hope
Hospital, Sutton Coldfield, with Heart of England NHS Foundation Trust).

Patients medically fit for discharge but not ready to go home (a delayed discharge) move
to a bed in the unit when one is free; when the unit is full they wait in hospital, as
delayed-discharge days. A stay lasts a lognormal number of days (``stay.mean``,
``stay.cv``); then they go home, where a 30-day readmission may follow (with any odds
ratio the effects give) and the effects on independence decay. Days in the unit are away
from home (no community services) and are tallied as ``<name>_unit_days``. The unit costs
``costs.bed_day`` for every bed, every day it runs, full or not (a block contract).

Patients are not admitted to the acute wards from the unit in this version: a stay ends
at home (or in death).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hhsim.core.accounting import Activity
from hhsim.core.errors import HhsimError
from hhsim.core.parameters import check_keys
from hhsim.core.resources import data_path
from hhsim.health.hospital import LogNormalDays, Place
from hhsim.health.terms import MAX_AGE
from hhsim.interventions.discharge import DischargeProgramme, DischargeSettings, parse_discharge
from hhsim.interventions.registry import register
from hhsim.interventions.settings import ModelContext, table, value


def parse(tree: Mapping[str, Any], ctx: ModelContext) -> DischargeSettings[LogNormalDays]:
    where = f"interventions.{tree['name']}.stay"
    stay = check_keys(table(tree, "stay", f"interventions.{tree['name']}"), where, ("mean", "cv"))
    mean = value(stay, "mean", where, "days")
    if mean <= 0:
        raise HhsimError(f"{where}.mean", "must be above 0 days", "give the mean stay in days")
    cv = value(stay, "cv", where, "coefficient of variation")
    return parse_discharge(tree, ctx, extra_keys=("stay",), place_unit="beds",
                           cost_bases=("bed-day", "client"), tallies=("unit_days",),
                           details=LogNormalDays(np.full((2, MAX_AGE + 1), mean), cv))


@register("step_down", parse=parse, defaults=data_path("interventions/step_down.toml"))
class StepDown(DischargeProgramme):
    """A step-down unit of ``places`` beds (see the module docstring)."""

    settings: DischargeSettings[LogNormalDays]

    place_basis, place_days = "bed-day", 1.0

    @property
    def tally(self) -> str:
        """Days in the unit, per tenant (days away from home)."""
        return f"{self.name}_{self.settings.tallies[0]}"

    def activities(self) -> list[Activity]:
        return [*super().activities(), Activity(self.tally, "days", payer=None)]

    def start(self) -> None:
        super().start()
        self.code = self.model.hospital.add_place(Place(self.tally, self._end, self._died))

    def _place(self, idx: np.ndarray, day: np.ndarray) -> None:
        hospital = self.model.hospital
        hospital.include(idx)
        stay = self.settings.details.days(self.model.pop, idx, hospital.uniform(f"{self.stream}:stay", idx))
        hospital.transfer(idx, day, self.code, day + stay)

    def _end(self, idx: np.ndarray, day: np.ndarray) -> None:
        """Stays that end: home, with the unit's effects still at full strength today."""
        self.model.hospital.send_home(idx, day)
        self._set(self.row[idx], "discharged_day", day)
        self._leave(idx, day)

    def _died(self, idx: np.ndarray, day: np.ndarray) -> None:
        self._leave(idx, day, died=True)
