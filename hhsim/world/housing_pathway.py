"""The baseline housing pathway of people experiencing homelessness (monthly).

Without any intervention, homelessness is not for ever. Each month, before interventions
act, every living tenant who is homeless or was (and is not held by an intervention, e.g. a
Housing First client whose tenancy the service looks after):

1. sleeping rough moves into temporary accommodation with ``rough_to_temporary``;
2. in temporary accommodation gets a settled social tenancy with ``temporary_to_tenancy``;
3. housed after homelessness (by this pathway, or after leaving an intervention) loses the
   tenancy with ``tenancy_loss``, returning to rough sleeping (share ``loss_to_rough``) or
   to temporary accommodation.

All are probabilities per month (``world.housing_pathway``). A move changes the tenure of
the tenant's dwelling (a placeholder for homeless people, without hazards; a new let keeps
none either) and refreshes its occupants' copies and static profiles, as repairs do after
works, so the health model's tenure terms apply from this month on.

One uniform per tenant per month comes from the named stream ``world:housing_pathway``;
when nobody is homeless at the start, the pathway is off and draws nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import to_parameter
from hhsim.world.population import HOMELESS, TENURES, Population

if TYPE_CHECKING:
    from hhsim.model.simulation import HousingHealthModel

STREAM = "world:housing_pathway"
ROUGH, TEMPORARY, SOCIAL = (TENURES.index(t) for t in ("rough_sleeping", "temporary_accommodation",
                                                        "social_rented"))
HOMELESS_CODES = np.isin(np.arange(len(TENURES)), [TENURES.index(t) for t in HOMELESS])
KEYS = ("rough_to_temporary", "temporary_to_tenancy", "tenancy_loss", "loss_to_rough")


@dataclass(frozen=True)
class PathwaySettings:
    rough_to_temporary: float  # probability per month
    temporary_to_tenancy: float  # probability per month
    tenancy_loss: float  # probability per month, for people housed after homelessness
    loss_to_rough: float  # share of lost tenancies that end in rough sleeping


def parse_pathway(world: Mapping[str, Any]) -> PathwaySettings:
    """The pathway's probabilities from the world parameters (one-line errors)."""
    node = world.get("world", {}).get("housing_pathway")
    if not isinstance(node, Mapping):
        raise HhsimError("world.housing_pathway", "is missing", "restore the default entries")
    got = {}
    for key in KEYS:
        where = f"world.housing_pathway.{key}"
        if key not in node:
            raise HhsimError(where, "is missing", "restore the default entry")
        p = to_parameter(where, node[key])
        unit = "share" if key == "loss_to_rough" else "probability per month"
        if not p.unit.startswith(unit):
            raise HhsimError(where, f"has unit '{p.unit}'", f'use unit = "{unit}"')
        v = float(p.value)
        if not 0.0 <= v <= 1.0:
            raise HhsimError(where, f"must be between 0 and 1, got {v:g}", "give a probability")
        got[key] = v
    return PathwaySettings(**got)


def is_homeless(tenure: np.ndarray) -> np.ndarray:
    """Boolean array: the tenure codes are homeless tenures."""
    return HOMELESS_CODES[tenure]


def move(model: HousingHealthModel, idx: np.ndarray, tenure: int) -> None:
    """Give the dwellings of tenants ``idx`` the tenure ``tenure`` (no hazards) and refresh
    every occupant's dwelling copies and static profile."""
    if not idx.size:
        return
    pop = model.pop
    dw = np.unique(pop.dwelling[idx])
    pop.dwellings.tenure[dw] = tenure
    pop.dwellings.hazards[dw] = 0
    occupants = np.flatnonzero(np.isin(pop.dwelling, dw))
    pop.refresh_from_dwellings(occupants)
    model.health.profiles.refresh(pop, static=occupants, everyone=False)


class HousingPathway:
    """The monthly rule (module docstring); ``held`` marks tenants an intervention keeps."""

    def __init__(self, model: HousingHealthModel, settings: PathwaySettings) -> None:
        pop: Population = model.pop
        self.model = model
        self.settings = settings
        homeless = is_homeless(pop.tenure)
        self.active = bool(homeless.any())
        self.formerly = np.zeros(pop.n, dtype=bool)  # housed after homelessness
        self.held = np.zeros(pop.n, dtype=bool)
        self.counts = dict.fromkeys(("to_temporary", "to_tenancy", "tenancy_lost"), 0.0)

    def _count(self, key: str, idx: np.ndarray) -> None:
        self.counts[key] += float(self.model.pop.weight[idx].sum(dtype=np.float64))

    def step(self, t: int) -> None:
        """This month's moves (nothing, and no draw, when the pathway is off)."""
        if not self.active:
            return
        s, pop = self.settings, self.model.pop
        free = pop.alive & ~self.held
        rough = np.flatnonzero(free & (pop.tenure == ROUGH))
        temporary = np.flatnonzero(free & (pop.tenure == TEMPORARY))
        housed = np.flatnonzero(free & self.formerly & ~is_homeless(pop.tenure))
        u = self.model.streams.uniform(STREAM, t)
        to_temporary = rough[u[rough] < s.rough_to_temporary]
        to_tenancy = temporary[u[temporary] < s.temporary_to_tenancy]
        lost = housed[u[housed] < s.tenancy_loss]
        to_rough = u[lost] < s.tenancy_loss * s.loss_to_rough
        move(self.model, to_temporary, TEMPORARY)
        move(self.model, to_tenancy, SOCIAL)
        self.formerly[to_tenancy] = True
        move(self.model, lost[to_rough], ROUGH)
        move(self.model, lost[~to_rough], TEMPORARY)
        self._count("to_temporary", to_temporary)
        self._count("to_tenancy", to_tenancy)
        self._count("tenancy_lost", lost)

    def record(self) -> dict[str, float]:
        """People represented who moved, over the run (empty when the pathway is off)."""
        if not self.active:
            return {}
        homeless = is_homeless(self.model.pop.tenure) & self.model.pop.alive
        out = {f"pathway_{k}": v for k, v in self.counts.items()}
        out["pathway_homeless_at_end"] = float(self.model.pop.weight[homeless].sum(dtype=np.float64))
        return out
