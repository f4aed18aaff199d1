"""Run one experiment at many parameter points (sensitivity analysis, PSA).

A *point* is a dict of parameter overrides by dotted name, exactly as the experiment
file's ``[parameters]`` section takes them (model, world and ``interventions.<name>.*``
parameters). Each point is applied at experiment level on top of the file's own
``[parameters]`` (an arm's own ``parameters`` still win), and every arm x replication runs
at every point. Replication ``r`` uses the same seed at every point and in every arm, so
differences between points are differences in parameters, not in random numbers (common
random numbers across samples and arms).

Run ids are ``p<point>__<arm>__r<replication>`` (e.g. ``p00012__repairs__r0003``); records
carry a ``point`` column. Runs go through the one run-and-store pipeline (``hhsim.batch.pipeline``): an
interrupted sweep resumes with ``resume=True``, and only with the same experiment and the
same points.

"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from hhsim.batch.design import RunSpec, runs
from hhsim.batch.execution import RunResult, open_executor, resume_hint, warm_up
from hhsim.batch.pipeline import Batch, run_batch
from hhsim.experiment.plan import Plan
from hhsim.experiment.schema import Experiment

#: The refusal to resume a sweep in a folder of another experiment or other points.
MISMATCH = ("holds results of a different experiment or different parameter points",
            "resume with the same file, options and sampling (method, samples, seed), "
            "or choose another --out")


def point_run_id(point: int, arm: str, replication: int) -> str:
    return f"p{point:05d}__{arm}__r{replication:04d}"


def plan_points(plan: Plan, points: Sequence[Mapping[str, float]]) -> Iterator[RunSpec]:
    """Every point x replication x arm, point by point (built lazily: a spec holds the
    point's parameter trees)."""
    for i, overrides in enumerate(points):
        for spec in runs(plan.at_point(overrides)):
            yield replace(spec, run_id=point_run_id(i, spec.arm, spec.replication))


def points_digest(plan: Plan, points: Sequence[Mapping[str, float]]) -> str:
    """What determines a sweep's runs: the plan (its digest: the experiment and the package
    version) and the points."""
    text = json.dumps([dict(sorted(p.items())) for p in points], default=float)
    experiment, _, version = plan.digest.rpartition(":")
    return f"{experiment}:points-{hashlib.sha256(text.encode()).hexdigest()}:{version}"


@dataclass
class PointResults:
    """Records of a sweep (one row per run, with a ``point`` column), as stored in ``out``."""

    out: Path
    experiment: Experiment
    points: list[dict[str, float]]
    records: pd.DataFrame


def run_points(plan: Plan, points: Sequence[Mapping[str, float]], out: str | Path, *,
               workers: int | None = None, scheduler: str | None = None, resume: bool = False,
               progress: bool = False, manifest: dict | None = None,
               tables: tuple[str, ...] = (), digest: str | None = None,
               command: str = "hhsim sensitivity") -> PointResults:
    """Run every arm x replication of ``plan`` at every point; store and return the records.

    ``manifest`` adds entries to the store's manifest (e.g. the sampling method); ``tables``
    names the per-run tables to keep besides the records (``hhsim.model.record.table_names``:
    none by default, since a sweep may have thousands of runs). ``digest``: what identifies
    the sweep when its points come from a generator whose point i does not depend on how
    many there are (a PSA's draws): the sweep may then be extended with more points
    (default: the points themselves, ``points_digest``). ``command``: the command that
    continues the sweep, for the one-line error when a worker dies.
    """
    warm_up(workers, scheduler)
    points = [{k: float(v) for k, v in p.items()} for p in points]
    order = [point_run_id(i, arm, r) for i in range(len(points))
             for r in range(plan.replications) for arm in plan.arm_names]
    info = {"experiment": plan.name, "hhsim_version": plan.hhsim_version,
            "model_version": plan.model_version, "seed": plan.seed,
            "seeds": "replication r uses numpy SeedSequence(seed, spawn_key=(0, r)) at every point "
                     "and in every arm (common random numbers)",
            "replications": plan.replications, "arms": plan.arm_names,
            "points": len(points), "run_ids": "p<point>__<arm>__r<replication>", "planned_runs": len(order),
            **(manifest or {})}

    def label(result: RunResult) -> dict:
        return {**result.record, "point": int(result.run_id.split("__", 1)[0][1:])}

    batch = Batch(Path(out), digest or points_digest(plan, points), info,
                  {"experiment": plan.experiment.model_dump(mode="json"), "points": {"points": points}},
                  order, tables, MISMATCH, label)
    with (resume_hint(Path(out), command, plan.source),
          open_executor(workers, scheduler) as (executor, in_flight)):
        store = run_batch(batch, plan_points(plan, points), executor, in_flight, resume=resume,
                          progress=progress)
    records = store.records(order=order)
    store.finalise(records, {})
    return PointResults(Path(out), plan.experiment, points, records)
