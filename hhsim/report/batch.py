"""A finished output folder read back for reporting: records, tables and provenance.

The summary and analysis tables are those ``hhsim run`` stored with the records (checked
against ``checksums.json`` with every other file), read back exactly (``stored``): the
report computes none of them again. A folder written by an earlier hhsim is reported with
the tables that version stored, with a note; analysis tables it lacks (hhsim 0.1.0 did not
always store them) are computed from its records, with a note; a folder without the summary
tables the report reads is refused in one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hhsim.analysis.tables import TABLES, Settings, analyse
from hhsim.batch.store import MANIFEST, ResultsFolder
from hhsim.core.errors import HhsimError, warn
from hhsim.core.version import package_version
from hhsim.report.stored import read_stored

#: The summary tables ``hhsim run`` stores besides ``TABLES`` (all of them since it first
#: wrote economics.csv: 0.1.0, with interventions); the report reads summary and economics.
SUMMARIES = ("summary", "economics", "groups", "checks")


@dataclass
class Batch:
    """Everything a report needs from an output folder: ``analysis`` (``TABLES``) and
    ``summaries`` (``SUMMARIES``) as ``hhsim run`` stored them."""

    out: Path
    experiment: dict
    manifest: dict
    interventions: dict[str, list[dict]]
    records: pd.DataFrame
    monthly: pd.DataFrame
    groups: pd.DataFrame
    settings: Settings
    analysis: dict[str, pd.DataFrame] = field(default_factory=dict)
    summaries: dict[str, pd.DataFrame] = field(default_factory=dict)
    svg: bool = False  # figures also as SVG (for slides and papers), not only PNG
    plan: dict = field(default_factory=dict)  # plan.json ({} in folders of hhsim 0.2.0 and before)

    @property
    def baseline(self) -> str:
        return self.settings.baseline

    @property
    def arms(self) -> list[str]:
        """Arms in the order of the experiment file."""
        return list(dict.fromkeys(self.records["arm"]))

    @property
    def others(self) -> list[str]:
        return [a for a in self.arms if a != self.baseline]


def _json(path: Path, default: dict | None = None) -> dict:
    fix = f"rebuild it with 'hhsim run FILE --out {path.parent} --resume'"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        if default is not None:
            return default
        raise HhsimError(str(path), "is missing", fix) from None
    except (OSError, ValueError):
        raise HhsimError(str(path), "is not readable JSON", fix) from None


def load_batch(out: str | Path) -> Batch:
    """Read a finished output folder written by ``hhsim run``, every file checked against
    its checksum (``ResultsFolder.finished``: one line naming a damaged file)."""
    out = Path(out)
    if not out.is_dir():
        raise HhsimError(str(out), "is not a folder", "give the output folder of 'hhsim run'")
    folder = ResultsFolder.open(out)
    records = folder.finished()
    manifest, experiment = _json(out / MANIFEST), _json(out / "experiment.json")
    plan = _json(out / "plan.json", {})
    interventions = ({a["name"]: a["interventions"] for a in plan["arms"]} if plan
                     else _json(out / "interventions.json", {}))
    if "point" in records.columns:
        raise HhsimError(str(out), "holds a sweep over parameter points (psa or sensitivity), not a run",
                         "report the run folder it belongs to: hhsim run FILE --out R, put the sweep in "
                         "R/psa or R/sensitivity, then hhsim report R")
    if records.empty:
        raise HhsimError(str(out / "runs.parquet"), "holds no runs", "rerun the experiment")
    monthly = folder.table("monthly", records["run_id"])
    groups = folder.table("groups", records["run_id"])
    e = experiment["experiment"]
    if plan:
        a = plan["analysis"]
        settings = Settings(a["baseline"], tuple(a["thresholds"]), a["months_per_step"], interventions,
                            exact=plan.get("mode") == "cohort")
    else:  # hhsim 0.2.0 and before: the step length from the monthly table
        steps = int(monthly["step"].max()) if not monthly.empty else e["months"]
        settings = Settings(e["baseline"], tuple(float(t) for t in e["thresholds"]),
                            max(1, e["months"] // steps), interventions or None)
    batch = Batch(out, experiment, manifest, interventions, records, monthly, groups, settings, plan=plan)
    stored = _tables(batch)
    batch.analysis = {name: stored[name] for name in TABLES}
    batch.summaries = {name: stored[name] for name in SUMMARIES}
    return batch


def _tables(b: Batch) -> dict[str, pd.DataFrame]:
    """``TABLES`` and ``SUMMARIES`` as stored in the folder; analysis tables it lacks are
    computed from its records, with a note; a missing summary table is a one-line error."""
    written = b.manifest.get("hhsim_version", "0.1.0")
    stored = {name: _stored(b.out, name) for name in (*TABLES, *SUMMARIES)}
    for name in SUMMARIES:
        if stored[name] is None:
            raise HhsimError(str(b.out / f"{name}.csv"), f"is missing: hhsim {written} wrote this folder "
                             f"before results had {name}.csv", "run the experiment again with this hhsim")
    running = package_version()
    if written != running and "unknown" not in (written, running):
        warn(f"note: {b.out} was written by hhsim {written}: its tables are shown as that version "
             "stored them (docs/changes.md says what has changed since)")
    missing = [name for name in TABLES if stored[name] is None]
    if missing:
        warn(f"note: {b.out} has no {', '.join(f'{n}.csv' for n in missing)} (hhsim {written} did not "
             "store them): computed from its run records")
        stored.update(analyse(b.records, b.monthly, b.groups, b.settings, missing))
    return stored


def _stored(out: Path, name: str) -> pd.DataFrame | None:
    """The table ``out/name.csv`` as ``hhsim run`` stored it; None when there is none."""
    path = out / f"{name}.csv"
    if not path.exists():
        return None
    fix = f"rebuild it with 'hhsim run FILE --out {out} --resume'"
    try:
        if not path.stat().st_size:
            raise HhsimError(str(path), "is empty", fix)
        return read_stored(path)
    except (OSError, ValueError):
        raise HhsimError(str(path), "is not a readable table", fix) from None
