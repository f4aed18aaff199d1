"""An intervention type registered from outside hhsim, run end to end: the worked example of
docs/interventions.md, "Adding an intervention type".

"Falls prevention visits": a falls team visits older tenants whose homes have a falls
hazard, ``visits`` times a month apart from admission, with a rate ratio on emergency
admissions while they are its clients. The type is its settings and parser, its runtime
class (which says what it prints, whom it serves and the per-run table it writes) and its
registration, with its defaults given here as a table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import hhsim
from hhsim.cli import main
from hhsim.core.errors import HhsimError
from hhsim.interventions.base import Intervention, Measure, RunTable
from hhsim.interventions.programme import SERVED, ClientProgramme, ProgrammeSettings, parse_programme
from hhsim.interventions.registry import TYPES, register
from hhsim.interventions.settings import ModelContext, table, value
from hhsim.model.record import table_names


def leaf(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "status": "A", "source": "Toy type for a test."}


#: The type's defaults (a package would ship them as a TOML file and give its path).
DEFAULTS = {
    "type": "falls_visits",
    "description": "A falls team visits older tenants whose homes have a falls hazard.",
    "payer": "nhs",
    "start_month": 0,
    "eligibility": {"age": [65, 200], "hazards": ["falls"]},
    "referrals": {"everyone": {"probability": leaf(0.3, "probability per month")}},
    "capacity": {"places": leaf(40, "people")},
    "enrolment": {"duration": leaf(3, "months")},
    "visits": leaf(2, "visits"),
    "effects": {"admissions": {"target": "hospital.admissions.emergency",
                               "rate_ratio": leaf(0.9, "rate ratio")}},
    "costs": {"visit_month": {**leaf(60.0, "£ per client-month"), "price_year": "2023/24"}},
}
#: One row per home visit.
VISITS = RunTable("visits")


# -- 1. settings and parser --------------------------------------------------------------------
@dataclass(frozen=True)
class FallsVisitsSettings(ProgrammeSettings):
    visits: int  # home visits per client, one a month from admission


def parse(tree: Mapping[str, Any], ctx: ModelContext) -> FallsVisitsSettings:
    where = f"interventions.{tree['name']}"
    capacity = table(tree, "capacity", where)
    base = parse_programme(tree, ctx, places=value(capacity, "places", f"{where}.capacity", "people"),
                           cost_bases=("client-month", "client"), capacity_keys=("places",),
                           extra_keys=("visits",))
    return FallsVisitsSettings(**vars(base), visits=int(value(tree, "visits", where, "visits")))


# -- 2. the runtime class -----------------------------------------------------------------------
class FallsVisits(ClientProgramme):
    """A falls team's clients get ``visits`` home visits, a month apart from admission."""

    settings: FallsVisitsSettings
    tables = (*ClientProgramme.tables, VISITS)
    printed = (*ClientProgramme.printed, Measure("visits", "home visits"))
    served = Measure("visited", "tenant visited")

    def start(self) -> None:
        super().start()
        self.counts.update(visits=0.0, visited=0.0)
        self.rows: dict[str, list[int]] = {"id": [], "month": []}

    def step(self, t: int, discount: float) -> None:
        super().step(t, discount)
        due = np.flatnonzero((self.status == SERVED) & (t - self.since < self.settings.visits))
        self._count("visits", due)
        self._count("visited", due[self.since[due] == t])
        self.rows["id"] += due.tolist()
        self.rows["month"] += [t] * due.size

    def run_tables(self) -> dict[str, pd.DataFrame]:
        visits = pd.DataFrame({"intervention": self.name, **self.rows})
        return {**super().run_tables(), VISITS.name: visits}


# -- 3. the registration -------------------------------------------------------------------------
@pytest.fixture
def falls_visits() -> Iterator[None]:
    """The type registered, as ``@register(...)`` above the class would; unregistered after
    the test, since other tests list every registered type (parameters, per-run tables)."""
    register("falls_visits", parse=parse, defaults=DEFAULTS)(FallsVisits)
    yield
    del TYPES["falls_visits"]


EXPERIMENT = """
[experiment]
name = "falls"
seed = 4
months = 6
replications = 2

[population]
tenants = 1500

[[arms]]
name = "baseline"

[[arms]]
name = "falls"

  [[arms.interventions]]
  type = "falls_visits"
  name = "falls"
  visits = 3
"""


def test_a_type_registered_outside_hhsim_runs_end_to_end(falls_visits, tmp_path, capsys):
    """``hhsim run`` (``run_experiment``) in this process: its record fields, its printed
    measures and whom it serves, and its per-run table, stored and read back."""
    path, out = tmp_path / "falls.toml", tmp_path / "out"
    path.write_text(EXPERIMENT)
    assert main(["run", str(path), "--out", str(out), "--workers", "1", "--verbose"]) == 0
    res = hhsim.load_results(out)
    falls = res.records.set_index("arm").loc["falls"]
    assert (falls["iv_falls_visited"] > 0).all()
    assert (falls["iv_falls_visited"] <= falls["iv_falls_admitted"]).all()
    assert (falls["iv_falls_visits"] <= 3 * falls["iv_falls_admitted"]).all()
    assert (falls["iv_falls_effect_admissions"] == 0.9).all() and (falls["intervention_cost_falls"] > 0).all()

    printed = capsys.readouterr().out
    block = printed[printed.index("  falls / falls"):].splitlines()
    assert [line[:50].strip() for line in block[1:9]] == [
        "referred", "admitted", "mean wait, months", "most served at once", "places", "home visits",
        "cost per tenant visited, £ (disc.)", "NHS care saving per tenant visited, £"]
    assert set(res.analysis["break_even"]["served_by"]) == {"iv_falls_visited"}

    assert "visits" in table_names() and (out / "visits").is_dir()
    visits = res.table("visits")
    arm = visits.merge(res.records[["run_id", "arm"]], on="run_id")["arm"]
    assert len(visits) and set(arm) == {"falls"} and set(visits["intervention"]) == {"falls"}
    per_run = visits.merge(res.records[["run_id", "iv_falls_visits"]], on="run_id").groupby("run_id")
    assert (per_run.size() == per_run["iv_falls_visits"].first()).all()  # weight 1: a row a visit
    baseline = res.records.loc[res.records["arm"] == "baseline", "run_id"].iloc[0]
    assert pd.read_parquet(out / "visits" / f"{baseline}.parquet").columns.tolist() == ["intervention"]


def test_without_the_type_registered_the_experiment_is_refused(tmp_path):
    path = tmp_path / "falls.toml"
    path.write_text(EXPERIMENT)
    with pytest.raises(HhsimError, match="unknown intervention type 'falls_visits'"):
        hhsim.load_experiment(path)
    assert "visits" not in table_names()


def test_registration_refuses_a_taken_name_an_unfinished_class_and_a_bad_name(falls_visits):
    with pytest.raises(ValueError, match="already registered"):
        register("falls_visits", parse=parse, defaults=DEFAULTS)(FallsVisits)

    class Unfinished(Intervention):
        def start(self) -> None: ...

    with pytest.raises(TypeError, match="does not implement record, step"):
        register("unfinished", parse=parse, defaults=DEFAULTS)(Unfinished)
    with pytest.raises(ValueError, match="lower-case"):
        register("Falls-Visits", parse=parse, defaults=DEFAULTS)(FallsVisits)
    with pytest.raises(ValueError, match="no defaults file"):
        register("other_visits", parse=parse, defaults=Path(__file__).with_suffix(".toml"))(FallsVisits)
    assert "unfinished" not in TYPES and "other_visits" not in TYPES
