"""The results store: the only writer of results, and their checked reader.

Layout of an output folder::

    experiment.json          the validated experiment, for provenance
    plan.json                the experiment compiled (``hhsim.experiment.plan.Plan.to_json``): model
                             version, digest, steps and step length, the analysis settings, and per
                             arm its model and world trees and its interventions as run (defaults,
                             file and overrides merged); folders of hhsim 0.2.0 and before have
                             interventions.json instead
    points.json              the parameter points of a sweep (``hhsim.batch.points``)
    manifest.json            experiment digest, package version, seeds, start time, plan size,
                             and the SHA-256 of the files above       (written after them)
    monthly/<run_id>.parquet the run's monthly aggregates
    groups/<run_id>.parquet  the run's outcomes by group (decile, age band, sex, tenure, ...)
    checks/<run_id>.parquet  the run's simulated rates against their input rates
    events/<run_id>.parquet  intervention event logs (referred, admitted, ...; when asked for)
    stays/<run_id>.parquet   one row per patient of a hospital-flow intervention (days saved, ...)
    referrals/<run_id>.parquet  the referral log of social-prescribing interventions (one row per referral)
    lifetable/<run_id>.parquet  person-years, years in good health and deaths by sex, IMD decile and age
    tenancies/<run_id>.parquet  tenancy flows by model year (empty in a closed cohort)
    <table>/<run_id>.parquet any other table a registered intervention type writes
                             (every per-run table: ``hhsim.model.record.table_names``)
    runs/<run_id>.parquet    the run's record (one row)
    runs/<run_id>.json       the run's checksum record: the experiment digest and the SHA-256
                             and size of each file above           (written last: the run is done)
    runs.parquet             all records, in design order          (written at the end)
    summary.csv              per-arm results and differences, totals and per 1,000 (at the end)
    economics.csv            per arm vs baseline: savings, net saving, ROI, QALYs, payback (at the end)
    groups.csv               results by group per arm, with differences   (at the end)
    checks.csv               the baseline arm's checks, mean of replications  (at the end)
    cost_effectiveness.csv, nmb.csv, payers.csv, budget_impact.csv, capacity.csv,
    break_even.csv, group_economics.csv   the economic analysis (hhsim.analysis.tables; at the end)
    checksums.json           the SHA-256 and size of every file at the top of the folder
                             (written last: the batch is finished)

A sweep over parameter points keeps the records only (no per-run tables, no summaries).

Every file is written to a temporary name and renamed into place (``hhsim.batch.files``),
and the record of its digest is written after it, so a kill at any moment leaves a
consistent folder: a run is done when its checksum record exists and every file it lists
matches; a batch is finished when ``checksums.json`` exists and matches. A folder that holds
results is only reused with ``resume``, and only by the same experiment (same digest).
Resuming removes stray temporary files, checks every stored run and reruns the damaged
ones, rebuilds a lost ``experiment.json`` (or the other provenance files) and a lost
manifest (when the stored runs' checksum records match the experiment), and removes
``checksums.json`` until the batch is finished again. Readers (``ResultsFolder.finished``,
``read_table``) refuse a damaged file in one line naming it. A folder written before
checksums (no ``checksums`` in its manifest) is still read and resumed, unverified.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hhsim.batch.files import (
    TEMPORARY,
    Digest,
    atomic_write,
    check_writable,
    digest,
    json_bytes,
    plain_name,
    remove_temporary,
    write_csv,
    write_json,
)
from hhsim.core.errors import HhsimError, warn
from hhsim.model.record import table_names

MANIFEST = "manifest.json"
CHECKSUMS = "checksums.json"
#: The manifest's ``checksums`` entry in folders whose files have checksum records.
FORMAT = "sha256"
#: The folder of the runs' records (and of their checksum records).
RECORD = "runs"
#: Damaged runs named on stderr by a resume (the rest are counted).
SHOWN = 5
_HEX = re.compile(r"[0-9a-f]{64}")
#: Manifest entries that follow the number of replications (a batch can be extended).
PLAN = ("replications", "runs", "planned_runs", "points", "psa")


def verify(path: Path, expected: Digest | None) -> tuple[bytes | None, str | None]:
    """The file's bytes, and what is wrong with them: None when they match ``expected``
    (or, without it, when the file can be read)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable: {exc.strerror}"
    if expected is None:
        return data, None
    size = expected["bytes"]
    if not data and size:
        return data, "empty"
    if len(data) < size:
        return data, f"truncated to {len(data):,} of {size:,} bytes"
    if digest(data) != expected:
        return data, "checksum mismatch"
    return data, None


def _checksum_record(data: bytes | None) -> dict | None:
    """A checksum record (``{"experiment_digest": ..., "files": {name: digest}}``) parsed and
    checked for shape, or None."""
    try:
        sums = json.loads(data) if data else None
    except ValueError:
        return None
    if not isinstance(sums, dict) or not isinstance(sums.get("experiment_digest"), str) \
            or not isinstance(sums.get("files"), dict):
        return None
    return sums if all(_is_digest(d) for d in sums["files"].values()) else None


def _is_digest(d: object) -> bool:
    return (isinstance(d, dict) and set(d) == {"sha256", "bytes"} and isinstance(d["sha256"], str)
            and _HEX.fullmatch(d["sha256"]) is not None and type(d["bytes"]) is int and d["bytes"] >= 0)


def _parquet_problem(path: Path) -> str | None:
    """What keeps a Parquet file from being read (for files without a checksum), or None."""
    try:
        pq.read_metadata(path)
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError, pa.ArrowException):
        return "empty" if path.exists() and path.stat().st_size == 0 else "not readable Parquet"
    return None


def _extended(name: str, stored: dict | None, ours: dict, manifest: dict | None) -> bool:
    """Whether a provenance file differs from ours only as an extended (or cut) batch's does,
    in a folder whose manifest is ours: ``experiment.json`` in its number of replications,
    ``plan.json`` in its number of replications, ``points.json`` by points at the end (one
    list of points starts the other)."""
    if stored is None or manifest is None:
        return False
    ours = json.loads(json.dumps(ours, default=str))
    if name == "points":
        a, b = stored.get("points"), ours.get("points")
        return isinstance(a, list) and isinstance(b, list) and a[:len(b)] == b[:len(a)]
    if name == "plan":
        return {**stored, "replications": None} == {**ours, "replications": None}
    if name != "experiment" or "experiment" not in stored or "experiment" not in ours:
        return False

    def without(e: dict) -> dict:
        return {**e, "experiment": {k: v for k, v in e["experiment"].items() if k != "replications"}}
    return without(stored) == without(ours)


def _json_file(path: Path) -> dict | None:
    data, problem = verify(path, None)
    try:
        found = json.loads(data) if not problem else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


class ResultsFolder:
    """An output folder read back: each file checked against its checksum record."""

    def __init__(self, root: str | Path, digest: str | None, checksummed: bool, fix: str) -> None:
        """``digest``: the experiment's (a run's checksum record must carry it);
        ``checksummed``: whether every run must have a checksum record (False for a folder
        written before checksums); ``fix``: the advice given with a refused file."""
        self.root = Path(root)
        self.runs = self.root / RECORD
        self.digest = digest
        self.checksummed = checksummed
        self.fix = fix

    @classmethod
    def open(cls, root: str | Path) -> ResultsFolder:
        """A folder written by ``hhsim run`` (or a sweep), for reading."""
        root = Path(root)
        fix = f"finish or repair it with 'hhsim run FILE --out {root} --resume'"
        manifest = _json_file(root / MANIFEST)
        if manifest is None:
            problem = "is missing" if not (root / MANIFEST).exists() else "is not readable"
            raise HhsimError(str(root / MANIFEST), problem, fix)
        return cls(root, manifest.get("experiment_digest"), manifest.get("checksums") == FORMAT, fix)

    def _refuse(self, path: Path, problem: str) -> HhsimError:
        """The one-line refusal of a damaged file (``problem`` as ``verify`` words it)."""
        return HhsimError(str(path), "is missing" if problem == "missing" else f"is damaged ({problem})",
                          self.fix)

    def _run_checksums(self, run_id: str) -> tuple[dict | None, str | None]:
        data, problem = verify(self.runs / f"{run_id}.json", None)
        if problem:
            return None, problem
        sums = _checksum_record(data)
        if sums is None:
            return None, "not a readable checksum record"
        if sums["experiment_digest"] != self.digest:
            return None, "of another experiment"
        return sums, None

    def check_run(self, run_id: str, tables: Collection[str] = ()) -> tuple[Path, str, str] | None:
        """The first damaged file of a stored run: its path, its table (``checksums`` for the
        checksum record) and the problem; None when the run is whole. The record and
        ``tables`` must be there; every file its checksum record lists is checked."""
        sums_path = self.runs / f"{run_id}.json"
        required = [RECORD, *tables]
        if not self.checksummed and not sums_path.exists():  # stored before checksums
            for table in required:
                path = self.root / table / f"{run_id}.parquet"
                problem = _parquet_problem(path)
                if problem:
                    return path, table, problem
            return None
        sums, problem = self._run_checksums(run_id)
        if problem:
            return sums_path, "checksums", problem
        listed = {f"{t}/{run_id}.parquet": t for t in (RECORD, *table_names())}
        for name in sums["files"]:
            if name not in listed:
                return sums_path, "checksums", f"lists an unexpected file '{name[:80]}'"
        for table in [*required, *(t for t in listed.values() if t not in required)]:
            path = self.root / table / f"{run_id}.parquet"
            expected = sums["files"].get(f"{table}/{run_id}.parquet")
            if expected is None:
                if table in required:
                    return path, table, "not in the run's checksum record"
                continue
            problem = verify(path, expected)[1]
            if problem:
                return path, table, problem
        return None

    def read(self, table: str, run_id: str) -> pa.Table:
        """One run's table (``runs`` for its record), checked; a one-line error naming the
        file when it is damaged."""
        path = self.root / table / f"{plain_name(run_id, 'run', self.root)}.parquet"
        expected = None
        if self.checksummed or (self.runs / f"{run_id}.json").exists():
            sums, problem = self._run_checksums(run_id)
            if problem:
                raise self._refuse(self.runs / f"{run_id}.json", problem)
            expected = sums["files"].get(f"{table}/{run_id}.parquet")
            if expected is None:
                raise self._refuse(path, "not in the run's checksum record")
        data, problem = verify(path, expected)
        if problem:
            raise self._refuse(path, problem)
        try:
            return pq.read_table(pa.BufferReader(data), use_threads=False)
        except (OSError, ValueError, pa.ArrowException):
            raise self._refuse(path, "empty" if not data else "not readable Parquet") from None

    def table(self, table: str, ids: Iterable[str]) -> pd.DataFrame:
        """A per-run table of the given runs, stacked with a ``run_id`` column."""
        frames = []
        for i in ids:
            df = self.read(table, i).to_pandas()
            df.insert(0, "run_id", i)
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def finished(self) -> pd.DataFrame:
        """The records (``runs.parquet``) of a finished folder, after checking every file
        that has a checksum: the files at the top and every run's. A damaged or unfinished
        folder is refused in one line naming the file; a folder written before checksums
        is read with a note that it could not be verified."""
        end_path, runs_path = self.root / CHECKSUMS, self.root / "runs.parquet"
        end = None
        if self.checksummed or end_path.exists():
            data, problem = verify(end_path, None)
            if problem == "missing":
                raise HhsimError(str(end_path), "is missing: the batch did not finish", self.fix)
            end = _checksum_record(data) if not problem else None
            if end is None or end["experiment_digest"] != self.digest:
                raise self._refuse(end_path, problem or "not the checksum record of this folder's experiment")
            for name, expected in end["files"].items():
                path = self.root / plain_name(name, "file", self.root)
                problem = verify(path, expected)[1]
                if problem:
                    raise self._refuse(path, problem)
        if not self.checksummed:
            warn(f"note: {self.root} was written without checksums (by an earlier hhsim): "
                 "its files could not be verified")
        if end is not None and "runs.parquet" not in end["files"]:
            raise HhsimError(str(runs_path), "is not in checksums.json", self.fix)
        data, problem = verify(runs_path, None)
        if problem:
            raise self._refuse(runs_path, problem)
        try:
            records = pq.read_table(pa.BufferReader(data), use_threads=False).to_pandas()
        except (OSError, ValueError, pa.ArrowException):
            raise self._refuse(runs_path, "not readable Parquet") from None
        for run_id in records.get("run_id", ()):
            bad = self.check_run(plain_name(str(run_id), "run", self.root))
            if bad:
                raise self._refuse(bad[0], bad[2])
        return records


class ResultsStore(ResultsFolder):
    """An output folder of run records, safe to interrupt and resume."""

    def __init__(self, root: str | Path, digest: str, manifest: dict, experiment: dict,
                 resume: bool = False, provenance: dict[str, dict] | None = None,
                 tables: tuple[str, ...] | None = None, mismatch: tuple[str, str] | None = None,
                 planned: Collection[str] = ()) -> None:
        """``tables``: the per-run tables to keep (all by default: ``table_names``; a sweep
        of many points may keep none, only the records). ``mismatch``: the problem and fix reported when
        resuming a folder with another digest. ``planned``: the ids of the runs the
        experiment plans (a lost manifest is rebuilt only when every stored run is one)."""
        super().__init__(root, digest, True, "run the same command with --resume")
        self.tables = tuple(plain_name(t, "table", self.root)
                            for t in (table_names() if tables is None else tables))
        start = {"experiment": experiment, **(provenance or {})}
        for name in start:
            plain_name(f"{name}.json", "file", self.root)
        for run_id in planned:  # before anything is written or simulated
            plain_name(run_id, "run", self.root)
        if self.root.exists() and not self.root.is_dir():
            raise HhsimError(str(self.root), "is a file, not a folder", "give a folder for --out")
        existing = self.root.exists() and any(self.root.iterdir())
        if existing and not resume:
            raise HhsimError(str(self.root), "already holds files",
                             "add --resume to continue that batch, or choose another --out")
        if existing:
            self.manifest = self._reopen(manifest, start, mismatch, planned)
        else:
            try:
                self.runs.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HhsimError(str(self.root), f"cannot be created ({exc.strerror})",
                                 "choose a writable --out folder") from None
            started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            files = {f"{name}.json": write_json(self.root / f"{name}.json", data)
                     for name, data in start.items()}
            self.manifest = {**manifest, "experiment_digest": digest, "started": started,
                             "checksums": FORMAT, "files": files}
            self._top = {**files, MANIFEST: write_json(self.root / MANIFEST, self.manifest)}
        for folder in (self.runs, *(self.root / t for t in self.tables)):
            try:
                folder.mkdir(exist_ok=True)
            except OSError as exc:
                raise HhsimError(str(folder), f"cannot be created ({exc.strerror})",
                                 "choose a writable --out folder") from None

    def _folders(self) -> list[Path]:
        return [self.root, *(f for f in (self.runs, *(self.root / t for t in self.tables)) if f.is_dir())]

    def _reopen(self, manifest: dict, start: dict[str, dict], mismatch: tuple[str, str] | None,
                planned: Collection[str]) -> dict:
        """Check and repair an existing folder for resuming; return its manifest."""
        found, why = self._stored_manifest()
        ours = (RECORD, "experiment.json", CHECKSUMS)
        if found is None and not any((self.root / n).exists() for n in ours):
            raise HhsimError(str(self.root), "is not an hhsim results folder (no readable manifest)",
                             "choose another --out")
        if found is not None and found.get("experiment_digest") != self.digest:
            theirs, ours = found.get("hhsim_version"), manifest.get("hhsim_version")
            if theirs and ours and theirs != ours:
                raise HhsimError(str(self.root), f"holds results of hhsim {theirs}, and this is hhsim "
                                 f"{ours}: a batch cannot be continued by another version (docs/changes.md "
                                 "says what changed)", "read it with hhsim.load_results or hhsim report, "
                                 "or run the experiment again into another --out")
            raise HhsimError(str(self.root), *(mismatch or (
                "holds results of a different experiment",
                "resume with the same experiment file and options, or choose another --out")))
        for folder in self._folders():
            check_writable(folder)
            remove_temporary(folder)
        if found is None:
            self._confirm(why, start["experiment"], planned)
        self.checksummed = found is None or found.get("checksums") == FORMAT
        (self.root / CHECKSUMS).unlink(missing_ok=True)  # unfinished until finalise writes it again
        files, rebuilt = {}, []
        for name, data in start.items():  # known exactly: what this experiment writes
            path, text = self.root / f"{name}.json", json_bytes(data)
            files[path.name] = digest(text)
            problem = verify(path, files[path.name])[1]
            if problem:
                extended = _extended(name, _json_file(path), data, found)
                write_json(path, data)
                if not extended:
                    rebuilt.append(f"{path.name} ({problem})")
        recorded = (found or {}).get("files")
        plan = {k: manifest[k] for k in PLAN if k in manifest}
        if found is not None and any(found.get(k) != v for k, v in plan.items()):
            found = {**found, **plan}  # extended (or cut) to another number of replications
            recorded = None
        if found is not None and (not self.checksummed or recorded == files):
            self._top = {**files, MANIFEST: self._manifest_digest}
        else:
            if found is None:
                now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
                found = {**manifest, "experiment_digest": self.digest, "started": None,
                         "rebuilt": f"{now}, by --resume: the manifest was {why}",
                         "checksums": FORMAT}
                rebuilt.append(f"{MANIFEST} ({why})")
            found = {**found, "files": files}
            self._top = {**files, MANIFEST: write_json(self.root / MANIFEST, found)}
        if rebuilt:
            warn(f"rebuilt {', '.join(rebuilt)} in {self.root} from the given experiment")
        return found

    def _stored_manifest(self) -> tuple[dict | None, str | None]:
        """The manifest, or None and why it cannot be used (missing, unreadable, or not
        matching its digest in ``checksums.json``)."""
        data, problem = verify(self.root / MANIFEST, None)
        if problem:
            return None, problem
        try:
            found = json.loads(data)
        except ValueError:
            found = None
        if not isinstance(found, dict):
            return None, "not readable JSON"
        end = _checksum_record(verify(self.root / CHECKSUMS, None)[0])
        if end is not None and MANIFEST in end["files"] and digest(data) != end["files"][MANIFEST]:
            return None, "damaged (it does not match checksums.json)"
        self._manifest_digest = digest(data)
        return found, None

    def _confirm(self, why: str, experiment: dict, planned: Collection[str]) -> None:
        """Refuse to rebuild a lost manifest unless what is stored belongs to the experiment:
        its experiment.json (if any) is the experiment, every stored run is planned, every
        readable checksum record carries the experiment's digest, and stored records have
        at least one such record to vouch for them."""
        def refuse(reason: str) -> HhsimError:
            return HhsimError(str(self.root), f"has no usable {MANIFEST} ({why}), and {reason}",
                              "resume with the experiment file and options that wrote it, "
                              "or choose another --out")

        stored = _json_file(self.root / "experiment.json")
        if stored is not None and stored != json.loads(json.dumps(experiment, default=str)):
            raise refuse("its experiment.json is a different experiment")
        end = _checksum_record(verify(self.root / CHECKSUMS, None)[0])
        if end is not None and end["experiment_digest"] != self.digest:
            raise refuse("its checksums.json is of a different experiment")
        planned, vouched = set(planned), 0
        for folder in self._folders()[1:]:
            for p in sorted(folder.glob("*.parquet")):
                if p.stem not in planned:
                    raise refuse(f"it holds run '{p.stem[:80]}', which the given experiment does not plan")
        for p in sorted(self.runs.glob("*.json")):
            sums = _checksum_record(verify(p, None)[0])
            if p.stem not in planned or (sums is not None and sums["experiment_digest"] != self.digest):
                raise refuse(f"run '{p.stem[:80]}' is of a different experiment")
            vouched += sums is not None
        if not vouched and any(self.runs.glob("*.parquet")):
            raise refuse("its runs have no checksum records to match them with the given experiment")

    def done(self) -> set[str]:
        """Ids of the runs stored whole (``check_run``). Damaged runs are named on stderr;
        they count as not done, so they run again."""
        candidates = {p.name.removesuffix(".parquet").removesuffix(".json") for p in self.runs.iterdir()
                      if p.suffix in (".parquet", ".json") and not TEMPORARY.fullmatch(p.name)}
        whole, damaged, count = set(), [], 0
        for run_id in sorted(candidates):
            bad = self.check_run(run_id, self.tables)
            if bad is None:
                whole.add(run_id)
                continue
            count += 1
            if len(damaged) < SHOWN:
                damaged.append(f"{run_id} ({bad[1]}: {bad[2]})")
        if count:
            more = f", and {count - SHOWN} more" if count > SHOWN else ""
            warn(f"{count} damaged run{'s' * (count > 1)} will be rerun: {', '.join(damaged)}{more}")
        return whole

    def write(self, run_id: str, record: dict, tables: dict[str, pd.DataFrame]) -> None:
        """Store one finished run: its tables, its record, then its checksum record (which
        marks it done)."""
        plain_name(run_id, "run", self.root)
        files = {}
        for table in self.tables:
            files[f"{table}/{run_id}.parquet"] = atomic_write(
                self.root / table / f"{run_id}.parquet",
                lambda p, t=table: tables[t].to_parquet(p, index=False))
        row = pd.DataFrame([record])
        files[f"{RECORD}/{run_id}.parquet"] = atomic_write(self.runs / f"{run_id}.parquet",
                                                           lambda p: row.to_parquet(p, index=False))
        write_json(self.runs / f"{run_id}.json", {"experiment_digest": self.digest, "files": files})

    def records(self, order: Iterable[str]) -> pd.DataFrame:
        """The stored records of the runs in ``order`` (runs not stored are left out)."""
        ids = [i for i in order if (self.runs / f"{i}.json").exists()
               or (not self.checksummed and (self.runs / f"{i}.parquet").exists())]
        # One small read per shard without reader threads: memory stays flat however many
        # runs there are (threaded reads grow per-thread memory arenas).
        return pd.DataFrame([self.read(RECORD, i).to_pylist()[0] for i in ids])

    def finalise(self, records: pd.DataFrame, summaries: Mapping[str, pd.DataFrame]) -> None:
        """Write the combined records and the summary tables (``name.csv``), then
        ``checksums.json``, which marks the batch finished."""
        files: dict[str, Digest] = dict(self._top)
        files["runs.parquet"] = atomic_write(self.root / "runs.parquet",
                                             lambda p: records.to_parquet(p, index=False))
        for name, table in summaries.items():
            path = self.root / plain_name(f"{name}.csv", "table", self.root)
            files[path.name] = write_csv(path, table)
        write_json(self.root / CHECKSUMS, {"experiment_digest": self.digest, "files": files})


def read_table(root: str | Path, table: str, ids: Iterable[str]) -> pd.DataFrame:
    """A per-run table (monthly, groups, checks, ...) of the given runs, stacked with a
    ``run_id`` column; every file is checked against its checksum record."""
    return ResultsFolder.open(root).table(table, ids)
