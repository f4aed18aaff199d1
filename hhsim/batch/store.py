"""The results store: the only writer of results.

Layout of an output folder::

    manifest.json            experiment digest, package version, seeds, start time, plan size
    experiment.json          the validated experiment, for provenance
    interventions.json       each arm's interventions as run: defaults, file and overrides merged
    points.json              the parameter points of a sweep (``hhsim.batch.points``)
    runs/<run_id>.parquet    one record per finished run (written when the run finishes)
    monthly/<run_id>.parquet the run's monthly aggregates
    groups/<run_id>.parquet  the run's outcomes by group (decile, age band, sex, tenure, ...)
    checks/<run_id>.parquet  the run's simulated rates against their input rates
    events/<run_id>.parquet  intervention event logs (referred, admitted, ...; when asked for)
    stays/<run_id>.parquet   one row per patient of a hospital-flow intervention (days saved, ...)
    referrals/<run_id>.parquet  the referral log of social-prescribing interventions (one row per referral)
    lifetable/<run_id>.parquet  person-years, years in good health and deaths by sex, IMD decile and age
    runs.parquet             all records, in design order          (written at the end)
    summary.csv              per-arm results and differences, totals and per 1,000 (at the end)
    economics.csv            per arm vs baseline: savings, net saving, ROI, QALYs, payback (at the end)
    groups.csv               results by group per arm, with differences   (at the end)
    checks.csv               the baseline arm's checks, mean of replications  (at the end)
    cost_effectiveness.csv, nmb.csv, payers.csv, budget_impact.csv, capacity.csv,
    break_even.csv, group_economics.csv   the economic analysis (hhsim.analysis.tables; at the end)

A sweep over parameter points keeps the records only (no per-run tables, no summaries).

Every file is written to a temporary name and renamed into place (``hhsim.batch.files``),
so a crash at any moment leaves only whole files. A run counts as done when its record
exists (its other tables are written first). A folder that holds results is only reused
with ``resume``, and only by the same experiment (same digest).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from hhsim.batch.files import atomic_write, write_csv, write_json
from hhsim.errors import HhsimError

MANIFEST = "manifest.json"
TABLES = ("monthly", "groups", "checks", "events", "stays", "referrals", "lifetable")


class ResultsStore:
    """An output folder of run records, safe to interrupt and resume."""

    def __init__(self, root: str | Path, digest: str, manifest: dict, experiment: dict,
                 resume: bool = False, provenance: dict[str, dict] | None = None,
                 tables: tuple[str, ...] = TABLES, mismatch: tuple[str, str] | None = None) -> None:
        """``tables``: the per-run tables to keep (all by default; a sweep of many points may
        keep none, only the records). ``mismatch``: the problem and fix reported when
        resuming a folder with another digest."""
        self.root = Path(root)
        self.tables = tables
        self.runs = self.root / "runs"
        if self.root.exists() and not self.root.is_dir():
            raise HhsimError(str(self.root), "is a file, not a folder", "give a folder for --out")
        existing = self.root.exists() and any(self.root.iterdir())
        if existing and not resume:
            raise HhsimError(str(self.root), "already holds files",
                             "add --resume to continue that batch, or choose another --out")
        if existing:
            found = self._read_manifest()
            if found.get("experiment_digest") != digest:
                raise HhsimError(str(self.root), *(mismatch or (
                    "holds results of a different experiment",
                    "resume with the same experiment file and options, or choose another --out")))
        else:
            try:
                self.runs.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HhsimError(str(self.root), f"cannot be created ({exc.strerror})",
                                 "choose a writable --out folder") from None
            started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            write_json(self.root / "experiment.json", experiment)
            for name, data in (provenance or {}).items():
                write_json(self.root / f"{name}.json", data)
            write_json(self.root / MANIFEST, {**manifest, "experiment_digest": digest,
                                              "started": started})
        self.runs.mkdir(exist_ok=True)
        for table in self.tables:
            (self.root / table).mkdir(exist_ok=True)

    def _read_manifest(self) -> dict:
        try:
            return json.loads((self.root / MANIFEST).read_text())
        except (OSError, ValueError):
            raise HhsimError(str(self.root), "is not an hhsim results folder (no readable manifest)",
                             "choose another --out") from None

    @property
    def manifest(self) -> dict:
        return self._read_manifest()

    def done(self) -> set[str]:
        """Ids of the runs whose record is stored."""
        return {p.stem for p in self.runs.glob("*.parquet")}

    def write(self, run_id: str, record: dict, tables: dict[str, pd.DataFrame]) -> None:
        """Store one finished run (its tables first; the record marks it done)."""
        for table in self.tables:
            atomic_write(self.root / table / f"{run_id}.parquet",
                         lambda p, t=table: tables[t].to_parquet(p, index=False))
        row = pd.DataFrame([record])
        atomic_write(self.runs / f"{run_id}.parquet", lambda p: row.to_parquet(p, index=False))

    def records(self, order: Iterable[str] | None = None) -> pd.DataFrame:
        """All stored records, in ``order`` of run ids when given (else sorted by id)."""
        done = self.done()
        ids = sorted(done) if order is None else [i for i in order if i in done]
        if not ids:
            return pd.DataFrame()
        # One small read per shard without reader threads: memory stays flat however many
        # runs there are (threaded reads grow per-thread memory arenas).
        return pd.DataFrame([pq.read_table(self.runs / f"{i}.parquet", use_threads=False).to_pylist()[0]
                             for i in ids])

    def finalise(self, records: pd.DataFrame, summaries: dict[str, pd.DataFrame]) -> None:
        """Write the combined records and the summary tables (``name.csv``)."""
        atomic_write(self.root / "runs.parquet", lambda p: records.to_parquet(p, index=False))
        for name, table in summaries.items():
            write_csv(self.root / f"{name}.csv", table)


def read_table(root: str | Path, table: str, ids: Iterable[str]) -> pd.DataFrame:
    """A per-run table (monthly, groups, checks or events) of the given runs, stacked with a
    ``run_id`` column."""
    frames = []
    for i in ids:
        df = pq.read_table(Path(root) / table / f"{i}.parquet", use_threads=False).to_pandas()
        df.insert(0, "run_id", i)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
