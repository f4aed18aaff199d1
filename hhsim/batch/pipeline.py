"""The one run-and-store pipeline: a batch of runs made by an executor and written to a
results folder as they finish (``hhsim run``, and the sweeps of ``hhsim psa`` and ``hhsim
sensitivity`` through ``hhsim.batch.points``).

Runs already stored are not made again (``resume``); an interrupted batch continues where it
stopped, and a batch extended to more replications or points makes only the new runs.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from hhsim.batch.design import RunSpec
from hhsim.batch.execution import RunResult, execute
from hhsim.batch.store import ResultsStore


@dataclass(frozen=True)
class Batch:
    """Where a batch is stored and what identifies it."""

    out: Path
    digest: str  # a folder holding another digest is not resumed
    manifest: dict  # provenance (manifest.json)
    files: Mapping[str, dict]  # JSON files written at the start, by name: experiment, plan, points
    order: list[str]  # every run id of the batch, in the order records are read back
    tables: tuple[str, ...] | None = None  # per-run tables kept (None: all)
    mismatch: tuple[str, str] | None = None  # problem and fix when resuming another batch's folder
    label: Callable[[RunResult], dict] = field(default=lambda r: r.record)  # a record as stored


def run_batch(batch: Batch, specs: Iterable[RunSpec], executor: Executor, in_flight: int, *,
              resume: bool = False, progress: bool = False,
              run: Callable[[RunSpec], RunResult] | None = None) -> ResultsStore:
    """Make the runs of ``specs`` that ``batch.out`` does not hold yet (``run``: how a spec
    becomes a result; None: a simulation), writing each as it finishes; return the store
    (``store.records(order=batch.order)`` reads them back)."""
    files = dict(batch.files)
    store = ResultsStore(batch.out, batch.digest, batch.manifest, files.pop("experiment"), resume, files,
                         batch.tables, mismatch=batch.mismatch, planned=batch.order)
    done = store.done()
    todo = (s for s in specs if s.run_id not in done)
    execute(todo, len(batch.order) - len(done & set(batch.order)),
            lambda r: store.write(r.run_id, batch.label(r), r.tables), executor, in_flight, progress, run)
    return store


def default_out(name: str, kind: str = "") -> Path:
    """``hhsim-results/<name>-<time>`` (``<name>-<kind>-<time>`` with a kind, e.g.
    sensitivity), from an experiment's name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "experiment"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("hhsim-results") / "-".join(filter(None, (slug, kind, stamp)))
