"""Housing First (seed 003: the Keep Well Collaborative's homelessness work in Hampshire and
the Isle of Wight; the England Housing First pilots in Greater Manchester, Liverpool City
Region and the West Midlands).

People sleeping rough or in temporary accommodation (optionally only those with complex
needs: a long-term condition or a common mental disorder) are referred by ambulance crews
who attended them, by the 111 service under its duty to refer, or by council outreach. A
service of ``staff_fte`` workers with caseloads of ``caseload_per_fte`` takes them in
order. On admission the client gets a settled tenancy at once (the dwelling's tenure
becomes ``social_rented``: the health model's tenure terms for homelessness stop applying
from that month; that is the housing effect) and open-ended intensive support (the
``effects``: cautious rate ratios on top of the housing effect, never a second count of
it). Each month a client's tenancy fails with ``tenancy.failure`` (derived from 84% still
housed after three years); a failed tenancy returns the person to rough sleeping (share
``tenancy.to_rough_sleeping``) or temporary accommodation and ends the service. When the
service closes, its tenants keep their homes without the support, under the baseline
pathway's tenancy loss (``hhsim.world.housing_pathway``), whose moves leave clients alone
while they are served.

Record (``iv_<name>_...``): people housed, tenancies failed, client-months housed, the share
of tenancies sustained 12 and 36 months after entry (clients who entered early enough;
deaths in a tenancy are not failures and leave the denominator), and the baseline pathway's
moves and the people homeless at the end of the run (``iv_<name>_pathway_...``).
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
from hhsim.interventions.programme import DONE, SERVED, ClientProgramme, ProgrammeSettings, parse_programme
from hhsim.interventions.registry import register
from hhsim.interventions.settings import Condition, ModelContext, flag, monthly_probability, table, value
from hhsim.world.housing_pathway import HOMELESS_CODES, ROUGH, SOCIAL, TEMPORARY, move
from hhsim.world.population import HOMELESS, Population

OWN_KEYS = ("tenancy", "complex_needs")
SUSTAINMENT_MONTHS = (12, 36)
NEVER_MONTH = -1


@dataclass(frozen=True)
class ComplexNeeds(Condition):
    """The eligibility condition, and also a long-term condition or a common mental disorder."""

    def holds(self, pop: Population, idx: np.ndarray | None = None) -> np.ndarray:
        ok = super().holds(pop, idx)
        ltc, cmd = pop.states["ltc"], pop.states["mental_health"]
        if idx is not None:
            ltc, cmd = ltc[idx], cmd[idx]
        return ok & ((ltc > 0) | (cmd > 0))


@dataclass(frozen=True)
class HousingFirstSettings(ProgrammeSettings):
    failure: float  # probability per month that a client's tenancy fails
    to_rough: float  # share of failed tenancies that end in rough sleeping


def parse(tree: Mapping[str, Any], ctx: ModelContext) -> HousingFirstSettings:
    name = tree["name"]
    where = f"interventions.{name}"
    capacity = table(tree, "capacity", where)
    fte = value(capacity, "staff_fte", f"{where}.capacity", "fte")
    caseload = value(capacity, "caseload_per_fte", f"{where}.capacity", "people per fte")
    base = parse_programme({k: v for k, v in tree.items() if k not in OWN_KEYS}, ctx,
                           places=fte * caseload, staff_fte=fte,
                           cost_bases=("fte-year", "programme-year", "client-month", "client"),
                           capacity_keys=("staff_fte", "caseload_per_fte", "budget_per_year"))
    tenure = base.eligibility.tenure
    if tenure is None or (tenure & ~HOMELESS_CODES).any():
        raise HhsimError(f"{where}.eligibility.tenure", "must list only homeless tenures",
                         f"give tenure = {list(HOMELESS)} (or one of them)")
    eligibility = base.eligibility
    if flag(tree, "complex_needs", where, False):
        if not {"ltc", "mental_health"} <= set(ctx.chains):
            raise HhsimError(f"{where}.complex_needs", "needs chains ltc and mental_health in the model",
                             "set complex_needs = false, or use a model with those chains")
        eligibility = ComplexNeeds(**vars(base.eligibility))
    node = check_keys(table(tree, "tenancy", where), f"{where}.tenancy", ("failure", "to_rough_sleeping"))
    failure = monthly_probability(node, "failure", f"{where}.tenancy")
    if not 0.0 <= failure <= 1.0:
        raise HhsimError(f"{where}.tenancy.failure", f"must be a probability, got {failure:g}",
                         "give a probability between 0 and 1")
    to_rough = value(node, "to_rough_sleeping", f"{where}.tenancy", "share")
    if not 0.0 <= to_rough <= 1.0:
        raise HhsimError(f"{where}.tenancy.to_rough_sleeping", f"must be a share, got {to_rough:g}",
                         "give a share between 0 and 1")
    fields = {**vars(base), "eligibility": eligibility}
    return HousingFirstSettings(**fields, failure=failure, to_rough=to_rough)


@register("housing_first", parse=parse, defaults=data_path("interventions/housing_first.toml"))
class HousingFirst(ClientProgramme):
    """Settled tenancies with intensive support for people experiencing homelessness."""

    settings: HousingFirstSettings
    printed = (*ClientProgramme.printed, Measure("tenancy_failed", "tenancies failed"))

    def start(self) -> None:
        super().start()
        n = self.model.pop.n
        self.housed_at = np.full(n, NEVER_MONTH, dtype=np.int32)
        self.failed_at = np.full(n, NEVER_MONTH, dtype=np.int32)
        self.died_at = np.full(n, NEVER_MONTH, dtype=np.int32)
        self.counts.update(housed=0.0, tenancy_failed=0.0, client_months_housed=0.0)

    def _exit_reasons(self, t: int, served: np.ndarray, running: bool):
        # A client housed by the service is no longer homeless: that is not a reason to leave.
        for key, out in super()._exit_reasons(t, served, running):
            if key != "ineligible":
                yield key, out

    def step(self, t: int, discount: float) -> None:
        pop, pathway = self.model.pop, self.model.pathway
        if t >= self.settings.window.start:
            self._fail_tenancies(t)
        before = self.status == SERVED
        super().step(t, discount)
        now = self.status == SERVED
        admitted = np.flatnonzero(now & ~before)
        if admitted.size:
            move(self.model, admitted, SOCIAL)
            self.housed_at[admitted] = t
            pathway.held[admitted] = True
            pathway.formerly[admitted] = True
            self._count("housed", admitted)
        left = np.flatnonzero(before & ~now)
        if left.size:
            pathway.held[left] = False
            died = left[~pop.alive[left]]
            self.died_at[died] = self.model.death_month[died]  # the month they died in
        served = np.flatnonzero(now)
        if served.size:
            self._count("client_months_housed", served)

    def _fail_tenancies(self, t: int) -> None:
        """Tenancies that fail this month: back to the streets or temporary accommodation."""
        s, pop = self.settings, self.model.pop
        served = np.flatnonzero((self.status == SERVED) & pop.alive)
        if not served.size or s.failure <= 0:
            return
        u = self._u("tenancy", t, served)
        failed = served[u < s.failure]
        if not failed.size:
            return
        rough = u[u < s.failure] < s.failure * s.to_rough
        self.status[failed] = DONE
        self.since[failed] = t
        self.failed_at[failed] = t
        self.provider.discharge(float(pop.weight[failed].sum(dtype=np.float64)))
        self._count("tenancy_failed", failed)
        self.log.add(t, failed, "tenancy_failed")
        self.model.pathway.held[failed] = False
        move(self.model, failed[rough], ROUGH)
        move(self.model, failed[~rough], TEMPORARY)

    def _sustained_share(self, months: int) -> float:
        """Share of tenancies not failed ``months`` after entry, among clients who entered at
        least ``months`` before the end (deaths in the tenancy before then left out)."""
        w = self.model.pop.weight.astype(np.float64)
        entered = (self.housed_at != NEVER_MONTH) & (self.housed_at <= self.model.month - months)
        failed = entered & (self.failed_at != NEVER_MONTH) & (self.failed_at - self.housed_at < months)
        died = entered & (self.died_at != NEVER_MONTH) & (self.died_at - self.housed_at <= months) & ~failed
        base = float(w[entered & ~died].sum())
        return 1.0 - float(w[failed].sum()) / base if base > 0 else float("nan")

    def record(self) -> dict[str, float]:
        out = super().record()
        for m in SUSTAINMENT_MONTHS:
            out[f"iv_{self.name}_sustained_{m}m_share"] = self._sustained_share(m)
        out.update({f"iv_{self.name}_{k}": v for k, v in self.model.pathway.record().items()})
        return out
