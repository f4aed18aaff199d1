"""A finished output folder read back for reporting: records, tables and provenance."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hhsim.analysis.tables import Settings, analyse
from hhsim.batch.store import MANIFEST, ResultsFolder
from hhsim.core.errors import HhsimError


@dataclass
class Batch:
    """Everything a report needs from an output folder; ``analysis`` is recomputed from
    the stored run records (``hhsim.analysis.tables``), so it always matches them."""

    out: Path
    experiment: dict
    manifest: dict
    interventions: dict[str, list[dict]]
    records: pd.DataFrame
    monthly: pd.DataFrame
    groups: pd.DataFrame
    settings: Settings
    analysis: dict[str, pd.DataFrame] = field(default_factory=dict)
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
        settings = Settings(a["baseline"], tuple(a["thresholds"]), a["months_per_step"], interventions)
    else:  # hhsim 0.2.0 and before: the step length from the monthly table
        steps = int(monthly["step"].max()) if not monthly.empty else e["months"]
        settings = Settings(e["baseline"], tuple(float(t) for t in e["thresholds"]),
                            max(1, e["months"] // steps), interventions or None)
    batch = Batch(out, experiment, manifest, interventions, records, monthly, groups, settings, plan=plan)
    batch.analysis = analyse(records, monthly, groups, settings)
    return batch
