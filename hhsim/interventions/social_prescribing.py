"""Social prescribing by housing associations (seed 002: ForHousing, Poplar HARCA).

Housing officers and GPs refer tenants (through a digital referral platform in the seed)
to link workers employed by the housing association. A referred tenant who engages joins
a link worker's caseload (``staff_fte`` x ``caseload_per_fte`` places) for
``enrolment.duration`` months, and is matched at the first meeting to one activity held
at the community centre of their estate:

- each ``activities.<name>`` has ``places_per_centre`` (people at a time at each estate's
  centre), a ``duration`` (months), a monthly ``dropout``, a monthly ``renege`` while
  waiting for a place, an optional ``need`` (who it suits, from observables) and a
  ``share`` (how often link workers choose it among the activities that suit a client);
- a client waits for a place at their own centre; a full centre does not hold up others;
- costs per participant-month are charged per activity, with the programme's payer;
- each activity's centres are one provider (a site per centre), whose month follows the
  link workers' (activities in the order listed).

Effects act while a client is with a link worker or in an activity, and decay after the
later of the two ends. An effect with ``area = "<activity>"`` acts only on clients who
started that activity. The referral log (``referrals()``, the per-run table ``referrals``)
has one row per referral: source, months of referral, engagement and activity, and the
outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from hhsim.core.accounting import Activity
from hhsim.core.errors import HhsimError
from hhsim.core.parameters import check_keys
from hhsim.core.resources import data_path
from hhsim.interventions.base import CostItem, RunTable, parse_costs, with_fading
from hhsim.interventions.programme import (
    DECLINED,
    DONE,
    EXIT_REASONS,
    LEFT,
    QUEUE_REASONS,
    QUEUED,
    SERVED,
    ClientProgramme,
    ProgrammeSettings,
    parse_programme,
)
from hhsim.interventions.registry import register
from hhsim.interventions.settings import (
    Condition,
    ModelContext,
    monthly_probability,
    parse_condition,
    table,
    value,
    whole_months,
)

if TYPE_CHECKING:
    import pandas as pd

    from hhsim.interventions.provider import Provider

ACTIVITY_KEYS = ("description", "share", "need", "places_per_centre", "duration", "dropout",
                 "renege", "costs")
# Activity status of a client.
A_NONE, A_WAITING, A_IN, A_COMPLETED, A_DROPPED, A_NO_PLACE, A_DIED, A_CLOSED, A_DISENGAGED = range(9)
ACTIVITY_OUTCOMES = {A_WAITING: "waiting_for_activity", A_IN: "in_activity", A_COMPLETED: "completed",
                     A_DROPPED: "dropped_out_of_activity", A_NO_PLACE: "no_activity_place",
                     A_DIED: "died", A_CLOSED: "programme_closed", A_DISENGAGED: "dropped_out"}
LINK_OUTCOMES = {"died_while_served": "died", "closed_while_served": "programme_closed",
                 "completed": "link_support_only", "ineligible": "ineligible",
                 "dropped_out": "dropped_out", "left_tenancy_while_served": "left_tenancy"}


@dataclass(frozen=True)
class ActivitySettings:
    """An activity held at every estate's community centre."""

    name: str
    share: float  # relative choice weight among the activities that suit a client
    need: Condition
    places_per_centre: float  # people at a time at each centre
    duration: int  # months
    dropout: float  # probability per month
    renege: float  # probability per month of giving up waiting for a place
    costs: tuple[CostItem, ...]


@dataclass(frozen=True)
class SocialPrescribingSettings(ProgrammeSettings):
    activities: tuple[ActivitySettings, ...] = ()

    @property
    def tallies(self) -> tuple[str, ...]:
        """Ledger names of the activities' costs (after the intervention's name)."""
        return tuple(c.key for a in self.activities for c in a.costs)


def parse_activity(name: str, node: Any, where: str, ctx: ModelContext) -> ActivitySettings:
    check_keys(node, where, ACTIVITY_KEYS)
    share = value(node, "share", where, "share")
    places = value(node, "places_per_centre", where, "people")
    if share <= 0:
        raise HhsimError(f"{where}.share", f"must be positive, got {share:g}",
                         "give a positive weight, or remove the activity with an empty table")
    costs = tuple(CostItem(f"{name}_{c.key}", c.basis, c.amount, c.price_year, c.parameter)
                  for c in parse_costs(node, where, ("client-month",), ctx.price_year))
    return ActivitySettings(
        name, share, parse_condition(node.get("need"), f"{where}.need", ctx.chains), places,
        whole_months(node, "duration", where, allow_zero=False),
        monthly_probability(node, "dropout", where) if "dropout" in node else 0.0,
        monthly_probability(node, "renege", where) if "renege" in node else 0.0, costs)


def parse(tree: Mapping[str, Any], ctx: ModelContext) -> SocialPrescribingSettings:
    where = f"interventions.{tree['name']}"
    capacity = table(tree, "capacity", where)
    fte = value(capacity, "staff_fte", f"{where}.capacity", "fte")
    caseload = value(capacity, "caseload_per_fte", f"{where}.capacity", "people per fte")
    node = table(tree, "activities", where)
    activities = tuple(parse_activity(a, sub, f"{where}.activities.{a}", ctx) for a, sub in node.items())
    if not activities:
        raise HhsimError(f"{where}.activities", "has no activity",
                         "add [activities.<name>] with share, places_per_centre and duration")
    base = parse_programme(tree, ctx, places=fte * caseload, staff_fte=fte,
                           cost_bases=("fte-year", "programme-year", "client-month", "client"),
                           capacity_keys=("staff_fte", "caseload_per_fte"), extra_keys=("activities",),
                           effect_areas=tuple(a.name for a in activities))
    return SocialPrescribingSettings(**{f.name: getattr(base, f.name) for f in fields(base)},
                                     activities=activities)


#: The referral log, one row per referral.
REFERRALS = RunTable("referrals")


@register("social_prescribing", parse=parse, defaults=data_path("interventions/social_prescribing.toml"))
class SocialPrescribing(ClientProgramme):
    """Link workers with caseloads, and activities at estates' community centres."""

    settings: SocialPrescribingSettings
    tables = (*ClientProgramme.tables, REFERRALS)

    def activities(self) -> list[Activity]:
        out = super().activities()
        out += [c.activity(self.name, self.settings.payer) for a in self.settings.activities
                for c in a.costs]
        return out

    def start(self) -> None:
        from hhsim.interventions.provider import Provider  # Mesa: not for 'hhsim validate'

        super().start()
        s, pop = self.settings, self.model.pop
        n = pop.n
        self.centres = int(pop.dwellings.estate.max()) + 1 if pop.dwellings.n else 1
        # A simulated estate whose tenants each stand for w people stands for w estates: its
        # centre has w times the places (weights from the tenants at the start).
        estate = self._centre(np.arange(n))
        people = np.bincount(estate, minlength=self.centres)
        weight = np.bincount(estate, weights=pop.weight.astype(np.float64), minlength=self.centres)
        self.centre_scale = np.divide(weight, people, out=np.ones(self.centres), where=people > 0)
        # Each activity's venues (one site per centre) do its month after the link workers'.
        self.venues = [Provider(self.model, f"{self.name}:{a.name}", a.places_per_centre * self.centre_scale,
                                None, "first_come", s.window.start, groups=self.centres,
                                work=partial(self._activity_month, k))
                       for k, a in enumerate(s.activities)]
        self.activity = np.full(n, -1, dtype=np.int8)  # matched activity (index)
        self.activity_status = np.zeros(n, dtype=np.int8)
        self.engaged_month = np.full(n, -1, dtype=np.int16)
        self.activity_start = np.full(n, -1, dtype=np.int16)
        self.activity_end = np.full(n, -1, dtype=np.int16)
        self.peak_at_centre = np.zeros(len(s.activities))  # most people at one centre
        for a in s.activities:
            self.counts.update({f"{a.name}_{k}": 0.0 for k in (
                "matched", "started", "completed", "dropped_out", "no_place", "died", "closed")})

    def _centre(self, idx: np.ndarray) -> np.ndarray:
        pop = self.model.pop
        return pop.dwellings.estate[pop.dwelling[idx]]

    # -- engagement: the link worker's first meeting matches the client to an activity ----------
    def _assess(self, t: int, admitted: np.ndarray) -> None:
        super()._assess(t, admitted)
        s, pop = self.settings, self.model.pop
        self.engaged_month[admitted] = t
        weights = np.stack([a.share * a.need.holds(pop, admitted) for a in s.activities])
        total = weights.sum(axis=0)
        suited = total > 0
        cum = np.cumsum(weights[:, suited], axis=0) / total[suited]
        u = self._u("match", t, admitted[suited])
        choice = np.minimum((u[None, :] >= cum).sum(axis=0), len(s.activities) - 1)
        ids = admitted[suited]
        self.activity[ids] = choice
        self.activity_status[ids] = A_WAITING
        for k, (a, venue) in enumerate(zip(s.activities, self.venues, strict=True)):
            mine = ids[choice == k]
            self._count(f"{a.name}_matched", mine)
            venue.join(mine, t, weight=pop.weight[mine], group=self._centre(mine))

    # -- the month at an activity's venues (their provider's step) ---------------------------------
    def _activity_month(self, k: int, t: int, discount: float) -> None:
        """Month ``t`` of activity ``k``: exits, the waiting list, starts within each centre's
        places, and participant-month costs discounted by ``discount``."""
        s = self.settings
        if t < s.window.start:
            return
        a, venue, running = s.activities[k], self.venues[k], s.window.open(t)
        self._activity_exits(t, k, a, venue, running)
        self._activity_queue(t, k, a, venue, running)
        if running:
            self._activity_admit(t, a, venue)
            at_one = venue.served_at / self.centre_scale  # people at one centre represented
            self.peak_at_centre[k] = max(self.peak_at_centre[k], float(at_one.max(initial=0)))
            here = np.flatnonzero((self.activity == k) & (self.activity_status == A_IN))
            for c in a.costs:
                if here.size:
                    self.model.ledger.add(f"{self.name}_{c.key}", here, 1.0, discount)

    def _end(self, t: int, a: ActivitySettings, ids: np.ndarray, status: int, count: str) -> None:
        self.activity_status[ids] = status
        self._count(f"{a.name}_{count}", ids)

    def _activity_exits(self, t: int, k: int, a: ActivitySettings, venue: Provider, running: bool) -> None:
        pop = self.model.pop
        here = np.flatnonzero((self.activity == k) & (self.activity_status == A_IN))
        if not here.size:
            return
        left = np.zeros(here.size, dtype=bool)
        u = self._u(f"activity:{a.name}", t, here)
        for status, count, out in (
                (A_DIED, "died", ~pop.alive[here]),
                (A_CLOSED, "closed", np.full(here.size, not running)),
                (A_COMPLETED, "completed", t - self.activity_start[here] >= a.duration),
                (A_DROPPED, "dropped_out", u < a.dropout)):
            out &= ~left
            if out.any():
                self._end(t, a, here[out], status, count)
                left |= out
        if left.any():
            ids = here[left]
            self.activity_end[ids] = t
            venue.discharge(pop.weight[ids].astype(np.float64), self._centre(ids))

    def _activity_queue(self, t: int, k: int, a: ActivitySettings, venue: Provider, running: bool) -> None:
        pop = self.model.pop
        ids = venue.ids
        if not ids.size:
            return
        disengaged = (self.status[ids] == DONE) & (
            self.exit_reason[ids] == EXIT_REASONS.index("dropped_out"))
        earlier = venue.joined < t  # those matched this month have not waited yet
        reasons = ((A_DIED, "died", ~pop.alive[ids]),
                   (A_CLOSED, "closed", np.full(ids.size, not running)),
                   (A_DISENGAGED, "dropped_out", disengaged),
                   (A_NO_PLACE, "no_place", earlier & (self._u(f"waiting:{a.name}", t, ids) < a.renege)))
        gone = np.zeros(ids.size, dtype=bool)
        for status, count, out in reasons:
            out &= ~gone
            if out.any():
                self._end(t, a, ids[out], status, count)
                gone |= out
        if gone.any():
            venue.leave(gone)

    def _activity_admit(self, t: int, a: ActivitySettings, venue: Provider) -> None:
        started = venue.admit(t)
        if started.size:
            self.activity_status[started] = A_IN
            self.activity_start[started] = t
            self._count(f"{a.name}_started", started)

    # -- effects ----------------------------------------------------------------------------
    def strengths(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        active = (self.status == SERVED) | (self.activity_status == A_IN)
        # Effects fade from the later of leaving the link worker and leaving the activity.
        after = np.flatnonzero(~active & (self.status == DONE))
        ended = np.maximum(self.since[after], self.activity_end[after])
        return with_fading(np.flatnonzero(active), after, ended, t, self.settings.enrolment.decay_half_life)

    def needs(self, area: str, idx: np.ndarray) -> np.ndarray:
        names = [a.name for a in self.settings.activities]
        if area not in names:
            return super().needs(area, idx)
        started = self.activity_start[idx] >= 0
        return started & (self.activity[idx] == names.index(area))

    # -- reports ------------------------------------------------------------------------------
    def month_stats(self) -> dict[str, float]:
        out = super().month_stats()
        for a, venue in zip(self.settings.activities, self.venues, strict=True):
            out[f"{self.name}:{a.name}_participants"] = venue.served
            out[f"{self.name}:{a.name}_waiting"] = venue.queue_size
        return out

    def record(self) -> dict[str, float]:
        out = super().record()
        for k, a in enumerate(self.settings.activities):
            out[f"iv_{self.name}_{a.name}_places_per_centre"] = a.places_per_centre
            out[f"iv_{self.name}_{a.name}_peak_at_centre"] = float(self.peak_at_centre[k])
            out[f"iv_{self.name}_{a.name}_cannot_fit"] = self.venues[k].cannot_fit
        out[f"iv_{self.name}_centres"] = float(self.centres)
        return out

    def outcomes(self, idx: np.ndarray) -> np.ndarray:
        """What became of each referral ``idx`` by the end of the run."""
        out = np.full(idx.size, "with_link_worker", dtype=object)
        status, reason = self.status[idx], self.exit_reason[idx]
        out[status == DECLINED] = "declined"
        out[status == QUEUED] = "waiting_for_link_worker"
        left = status == LEFT
        out[left] = [f"left_waiting_list:{QUEUE_REASONS[r]}" for r in reason[left]]
        done = status == DONE
        out[done] = [LINK_OUTCOMES[EXIT_REASONS[r]] for r in reason[done]]
        act = self.activity_status[idx]
        has = act != A_NONE
        out[has] = [ACTIVITY_OUTCOMES[x] for x in act[has]]
        return out

    def referrals(self) -> pd.DataFrame:
        """The referral log: one row per referral (months are 0-based model months; -1: never)."""
        import pandas as pd  # not for 'hhsim validate'

        s = self.settings
        idx = np.flatnonzero(self.referred_month >= 0)
        names = np.array([a.name for a in s.activities] + [""], dtype=object)
        sources = np.array([r.name for r in s.referrals], dtype=object)
        return pd.DataFrame({
            "intervention": self.name,
            "id": idx.astype(np.int64),
            "weight": self.model.pop.weight[idx],
            "source": sources[self.source[idx]],
            "referred_month": self.referred_month[idx],
            "engaged": self.engaged_month[idx] >= 0,
            "engaged_month": self.engaged_month[idx],
            "activity": names[self.activity[idx]],
            "activity_start": self.activity_start[idx],
            "activity_end": self.activity_end[idx],
            "outcome": self.outcomes(idx).astype(str),
        })

    def run_tables(self) -> dict[str, pd.DataFrame]:
        return {**super().run_tables(), REFERRALS.name: self.referrals()}
