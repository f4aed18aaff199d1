"""Hospital-flow programmes: places for patients who are medically fit but cannot go home.

A programme of this kind runs ``places`` (beds in a step-down unit, or supported homes).
When an eligible patient is found medically fit but cannot go home yet (a delayed
discharge in the hospital model), they join the provider's queue and wait in hospital.
Day by day, within the hospital's event loop, the provider moves whoever is waiting into
the places that are free, in priority order (first come, or risk from observables). A
patient still waiting when their own delay ends goes home, as they would have without the
programme. Subclasses say what a place is (``hhsim.interventions.step_down``,
``hhsim.interventions.supported_housing``).

Counterfactual. The hospital draws each delay's length before anyone is placed, so a
patient's ``counterfactual_end_day`` is the day they would have left hospital in the same
replication without the programme (common random numbers; exact up to the first point
where their paths part, e.g. a later admission that the programme changed). Days saved
per patient = ``counterfactual_end_day - placed_day``.

The stays table (the per-run table ``stays``; one row per eligible delayed patient): fit
day, counterfactual end day, day placed (-1 if never), days waited, days saved, days in the
place, the place's cost for those days, and whether they were readmitted within 30 days of
leaving hospital (or the unit, for step-down beds).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from hhsim.core.costing import uprating_factor
from hhsim.core.errors import HhsimError
from hhsim.core.parameters import check_keys
from hhsim.health.hospital import READMISSION_WINDOW_DAYS
from hhsim.interventions.base import (
    Intervention,
    Measure,
    RunTable,
    Settings,
    faded,
    parse_costs,
    parse_payer,
    with_fading,
)
from hhsim.interventions.effects import parse_effects
from hhsim.interventions.settings import (
    PRIORITIES,
    Condition,
    Enrolment,
    ModelContext,
    RiskScore,
    Window,
    choice_list,
    flag,
    parse_condition,
    parse_enrolment,
    parse_risk,
    parse_window,
    table,
    text,
    value,
)
from hhsim.world.population import DELAYED

if TYPE_CHECKING:
    import pandas as pd

COMMON_KEYS = ("type", "name", "description", "payer", "start_month", "end_month", "priority", "log",
               "admission_types", "eligibility", "capacity", "costs", "effects", "enrolment", "risk")
# Patient status codes.
NEVER, WAITING, PLACED, LEFT = range(4)
#: What a type's places are like (stay lengths, tenancies): read by the type itself.
D = TypeVar("D")
#: One row per eligible delayed patient (see the module docstring).
STAYS = RunTable("stays")


@dataclass(frozen=True)
class DischargeSettings(Settings, Generic[D]):
    window: Window
    admission_types: tuple[int, ...]  # codes of the hospital admission types served
    eligibility: Condition
    places: float
    priority: str
    risk: RiskScore | None
    enrolment: Enrolment  # only decay_half_life: effects after a patient leaves
    details: D  # what the type reads (stay lengths, tenancies)
    tallies: tuple[str, ...] = ()  # ledger tallies besides costs, as <name>_<tally>

    @property
    def services(self) -> tuple[str, ...]:
        return self.risk.services if self.risk else ()


def parse_discharge(tree: Mapping[str, Any], ctx: ModelContext, *, extra_keys: tuple[str, ...],
                    place_unit: str, cost_bases: tuple[str, ...], details: D,
                    tallies: tuple[str, ...] = ()) -> DischargeSettings[D]:
    """The settings shared by hospital-flow programmes."""
    name, kind = tree["name"], tree["type"]
    where = f"interventions.{name}"
    check_keys(tree, where, COMMON_KEYS + extra_keys)
    if not ctx.admission_types:
        raise HhsimError(where, "needs a model with a [hospital]", "use a model with hospital admissions")
    types = choice_list(tree.get("admission_types"), f"{where}.admission_types", ctx.admission_types,
                        "admission type")
    capacity = check_keys(table(tree, "capacity", where), f"{where}.capacity", ("places",))
    priority = text(tree, "priority", where, PRIORITIES, "first_come")
    enrolment = parse_enrolment(tree.get("enrolment"), f"{where}.enrolment")
    if enrolment.duration or enrolment.dropout:
        raise HhsimError(f"{where}.enrolment", "only decay_half_life applies here",
                         "remove duration and dropout (stays and tenancies have their own settings)")
    return DischargeSettings(
        name=name, kind=kind, payer=parse_payer(tree, where), window=parse_window(tree, where, ctx.months),
        admission_types=tuple(ctx.admission_types.index(t) for t in types),
        eligibility=parse_condition(tree.get("eligibility"), f"{where}.eligibility", ctx.chains),
        places=value(capacity, "places", f"{where}.capacity", place_unit),
        priority=priority,
        risk=parse_risk(tree.get("risk"), f"{where}.risk", ctx.chains, ctx.services)
        if priority == "risk" else None,
        effects=tuple(parse_effects(tree.get("effects"), f"{where}.effects", ctx)),
        costs=tuple(parse_costs(tree, where, cost_bases, ctx.price_year)),
        enrolment=enrolment, log=flag(tree, "log", where, False), details=details, tallies=tallies)


class DischargeProgramme(Intervention):
    """Places for delayed patients, filled day by day (see the module docstring)."""

    settings: DischargeSettings
    tables = (*Intervention.tables, STAYS)
    printed = (Measure("places", "places"), Measure("eligible", "delayed and eligible"),
               Measure("placed", "placed"),
               Measure("not_placed", "not placed (waited to the end of their delay)"),
               Measure("mean_wait_days", "mean wait in hospital, days"),
               Measure("days_saved", "hospital days saved"),
               Measure("days_saved_per_patient", "hospital days saved per patient"),
               Measure("peak_occupied", "most places used"),
               Measure("readmitted_30d", "placed and readmitted within 30 days"))
    served = Measure("placed", "patient placed")
    #: Columns kept per patient; the stays table adds waited_days, days_saved, place_cost.
    STAY_COLUMNS = ("tenant", "fit_day", "counterfactual_end_day", "placed_day", "discharged_day",
                    "left_place_day", "place_days", "readmitted_30d")

    def services_to_track(self) -> tuple[str, ...]:
        return self.settings.services

    def start(self) -> None:
        from hhsim.interventions.provider import Provider  # Mesa: not for 'hhsim validate'

        s, n = self.settings, self.model.pop.n
        self.status = np.zeros(n, dtype=np.int8)
        self.since = np.zeros(n, dtype=np.int16)  # month the tenant last left a place
        self.row = np.full(n, -1, dtype=np.int64)  # the tenant's latest row of the stays table
        self.rows: dict[str, list] = {c: [] for c in self.STAY_COLUMNS}
        self.provider = Provider(self.model, self.name, s.places, None, s.priority, s.window.start,
                                 work=self.step)
        hospital = self.model.hospital
        hospital.on_delay.append(self._on_delay)
        hospital.on_day.append(self._on_day)
        hospital.on_admit.append(self._on_admit)
        self.counts = dict.fromkeys(("eligible", "placed", "not_placed", "days_saved", "died_in_place"), 0.0)
        self._month = {"placed": 0.0}
        cost = next((c for c in s.costs if c.basis == self.place_basis), None)
        self.price_per_day = 0.0 if cost is None else (
            cost.amount * uprating_factor(cost.price_year, self.model.config.price_year) / self.place_days)

    # -- what a subclass provides ---------------------------------------------------------------
    place_basis = "bed-day"  # the cost basis that prices a patient's days in the place
    place_days = 1.0  # days that one unit of that basis covers

    @abstractmethod
    def _place(self, idx: np.ndarray, day: np.ndarray) -> None:
        """Move patients ``idx`` into their places on ``day``."""

    # -- hospital hooks ---------------------------------------------------------------------------
    def _running(self) -> bool:
        return self.settings.window.open(self.model.month)

    def _on_delay(self, idx: np.ndarray, day: np.ndarray, end: np.ndarray) -> None:
        """Delayed patients: the eligible join the queue (while the programme runs)."""
        s, pop, hospital = self.settings, self.model.pop, self.model.hospital
        if not self._running():
            return
        # Residents of a supported home have a home to go to; patients already waiting wait.
        ok = (np.isin(hospital.admit_type[idx], s.admission_types) & s.eligibility.holds(pop, idx)
              & (self.status[idx] != PLACED) & (self.status[idx] != WAITING))
        idx, day, end = idx[ok], day[ok], end[ok]
        if not idx.size:
            return
        rows = len(self.rows["tenant"])
        self.row[idx] = np.arange(rows, rows + idx.size)
        for col, values in (("tenant", idx), ("fit_day", day), ("counterfactual_end_day", end),
                            ("placed_day", np.full(idx.size, -1)), ("discharged_day", end),
                            ("left_place_day", np.full(idx.size, -1)), ("place_days", np.zeros(idx.size)),
                            ("readmitted_30d", np.zeros(idx.size, dtype=bool))):
            self.rows[col].extend(values.tolist())
        self.status[idx] = WAITING
        self.counts["eligible"] += float(pop.weight[idx].sum(dtype=np.float64))
        score = s.risk.score(pop, idx) if s.risk else None
        self.provider.join(idx, day, score, pop.weight[idx])
        self.log.add(self.model.month, idx, "waiting")

    def _on_day(self, day: int) -> None:
        """After the day's events: drop those no longer waiting; fill free places."""
        prov, hospital, pop = self.provider, self.model.hospital, self.model.pop
        if prov.ids.size:
            ids = prov.ids
            gone = (hospital.location[ids] != DELAYED) | (hospital.death_day[ids] <= day)
            if gone.any():
                left = prov.leave(gone)
                self.status[left] = NEVER
                self.counts["not_placed"] += float(pop.weight[left].sum(dtype=np.float64))
                self.log.add(self.model.month, left, "not_placed")
        if not prov.ids.size or not self._running():
            return
        placed = prov.admit(day)
        if placed.size:
            days = np.full(placed.size, day, dtype=np.int32)
            rows = self.row[placed]
            self._set(rows, "placed_day", days)
            self._set(rows, "discharged_day", days)
            saved = np.asarray(self.rows["counterfactual_end_day"], dtype=np.int64)[rows] - day
            self.counts["placed"] += float(pop.weight[placed].sum(dtype=np.float64))
            self.counts["days_saved"] += float((pop.weight[placed] * saved).sum(dtype=np.float64))
            self._month["placed"] += float(pop.weight[placed].sum(dtype=np.float64))
            self.status[placed] = PLACED
            self.model.refresh_effects(placed)  # before the move: a readmission draw may follow
            self._place(placed, days)
            self.log.add(self.model.month, placed, "placed")
            for c in self.settings.costs:
                if c.basis == "client":  # a one-off cost per patient placed (assessment, set-up)
                    self.model.ledger.add(f"{self.name}_{c.key}", placed, 1.0, self._discount)

    def _on_admit(self, idx: np.ndarray, day: np.ndarray) -> None:
        """Admissions within 30 days of leaving hospital (or the unit) count as readmissions."""
        rows = self.row[idx]
        has = rows >= 0
        if not has.any():
            return
        rows, day = rows[has], day[has]
        left = np.asarray(self.rows["discharged_day"], dtype=np.int64)[rows]
        back = (day > left) & (day - left <= READMISSION_WINDOW_DAYS)
        self._set(rows[back], "readmitted_30d", np.ones(int(back.sum()), dtype=bool))

    def _set(self, rows: np.ndarray, column: str, values: np.ndarray) -> None:
        col = self.rows[column]
        for r, v in zip(rows.tolist(), np.asarray(values).tolist(), strict=True):
            col[r] = v

    def _leave(self, idx: np.ndarray, day: np.ndarray, died: bool = False) -> None:
        """Patients leave their place on ``day``: the place is free again."""
        pop = self.model.pop
        self.provider.discharge(float(pop.weight[idx].sum(dtype=np.float64)))
        rows = self.row[idx]
        self._set(rows, "left_place_day", day)
        placed = np.asarray(self.rows["placed_day"], dtype=np.int64)[rows]
        self._set(rows, "place_days", day - placed)
        self.status[idx] = LEFT
        self.since[idx] = self.model.month
        if died:
            self.counts["died_in_place"] += float(pop.weight[idx].sum(dtype=np.float64))
        self.log.add(self.model.month, idx, "died" if died else "left")

    # -- the month ---------------------------------------------------------------------------------
    def step(self, t: int, discount: float) -> None:
        s = self.settings
        self._month = {"placed": 0.0}
        self._discount = discount  # for costs charged at placement, during the month
        if not s.window.open(t):
            return
        days = self.model.step_days(t)
        for c in s.costs:
            activity = f"{self.name}_{c.key}"
            if c.basis == "bed-day":
                self.model.ledger.add(activity, None, s.places * days, discount)
            elif c.basis == "place-year":
                self.model.ledger.add(activity, None, s.places / 12.0, discount)

    def strengths(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        after = np.flatnonzero(self.status == LEFT)
        return with_fading(np.flatnonzero(self.status == PLACED), after, self.since[after], t,
                           self.settings.enrolment.decay_half_life)

    def strength_of(self, t: int, idx: np.ndarray) -> np.ndarray:
        out = (self.status[idx] == PLACED).astype(np.float32)
        hl = self.settings.enrolment.decay_half_life
        after = self.status[idx] == LEFT
        if hl > 0 and after.any():
            out[after] = faded(t, self.since[idx[after]], hl)
        return out

    # -- reports -------------------------------------------------------------------------------------
    def stays(self) -> pd.DataFrame:
        """One row per eligible delayed patient (see the module docstring)."""
        import pandas as pd  # not for 'hhsim validate'

        df = pd.DataFrame(self.rows, columns=list(self.STAY_COLUMNS))
        placed = df["placed_day"] >= 0
        end = df["placed_day"].where(placed, df["counterfactual_end_day"])
        df["waited_days"] = end - df["fit_day"]
        df["days_saved"] = (df["counterfactual_end_day"] - df["placed_day"]).where(placed, 0)
        still = placed & (df["left_place_day"] < 0)
        horizon = self.model.day
        df.loc[still, "place_days"] = horizon - df.loc[still, "placed_day"]
        df["place_cost"] = df["place_days"] * self.price_per_day
        df.insert(0, "intervention", self.name)
        return df

    def run_tables(self) -> dict[str, pd.DataFrame]:
        return {**super().run_tables(), STAYS.name: self.stays()}

    def month_stats(self) -> dict[str, float]:
        p = self.provider
        return {f"{self.name}:placed": self._month["placed"], f"{self.name}:queue": p.queue_size,
                f"{self.name}:occupied": p.served}

    def record(self) -> dict[str, float]:
        p, s = self.provider, self.settings
        out = {f"iv_{self.name}_{k}": v for k, v in self.counts.items()}
        out[f"iv_{self.name}_places"] = s.places
        out[f"iv_{self.name}_peak_occupied"] = p.peak_served
        out[f"iv_{self.name}_mean_wait_days"] = p.mean_wait
        out[f"iv_{self.name}_days_saved_per_patient"] = (self.counts["days_saved"] / self.counts["placed"]
                                                         if self.counts["placed"] else float("nan"))
        stays = self.stays()
        placed = stays[stays["placed_day"] >= 0]
        weight = self.model.pop.weight[placed["tenant"].to_numpy()] if len(placed) else np.empty(0)
        out[f"iv_{self.name}_readmitted_30d"] = float((weight * placed["readmitted_30d"].to_numpy()).sum())
        return out
