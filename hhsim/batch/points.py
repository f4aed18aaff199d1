"""Run one experiment at many parameter points (sensitivity analysis, PSA).

A *point* is a dict of parameter overrides by dotted name, exactly as the experiment
file's ``[parameters]`` section takes them (model, world and ``interventions.<name>.*``
parameters). Each point is applied at experiment level on top of the file's own
``[parameters]`` (an arm's own ``parameters`` still win), and every arm x replication runs
at every point. Replication ``r`` uses the same seed at every point and in every arm, so
differences between points are differences in parameters, not in random numbers (common
random numbers across samples and arms).

Run ids are ``p<point>__<arm>__r<replication>`` (e.g. ``p00012__repairs__r0003``); records
carry a ``point`` column. Runs are stored by ``ResultsStore``: an interrupted sweep resumes
with ``resume=True``, and only with the same experiment and the same points.

"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from hhsim.api import package_version
from hhsim.batch.design import RunSpec, plan
from hhsim.batch.execution import RunResult, execute, open_executor, resume_hint, warm_up
from hhsim.batch.store import ResultsStore
from hhsim.core.errors import HhsimError
from hhsim.experiment.schema import Experiment

#: The refusal to resume a sweep in a folder of another experiment or other points.
MISMATCH = ("holds results of a different experiment or different parameter points",
            "resume with the same file, options and sampling (method, samples, seed), "
            "or choose another --out")


def point_run_id(point: int, arm: str, replication: int) -> str:
    return f"p{point:05d}__{arm}__r{replication:04d}"


def at_point(exp: Experiment, overrides: Mapping[str, float]) -> Experiment:
    """The experiment with ``overrides`` laid over its ``[parameters]`` section."""
    return exp.model_copy(update={"parameters": {**exp.parameters, **overrides}})


def plan_points(exp: Experiment, points: Sequence[Mapping[str, float]]) -> Iterator[RunSpec]:
    """Every point x replication x arm, point by point (built lazily: a spec holds the
    point's parameter trees)."""
    for i, overrides in enumerate(points):
        for spec in plan(at_point(exp, overrides)):
            yield replace(spec, run_id=point_run_id(i, spec.arm, spec.replication))


def points_digest(exp: Experiment, points: Sequence[Mapping[str, float]], version: str) -> str:
    """What determines a sweep's runs: the experiment (``Experiment.digest``), the points and
    the package version."""
    text = json.dumps([dict(sorted(p.items())) for p in points], default=float)
    return f"{exp.digest()}:points-{hashlib.sha256(text.encode()).hexdigest()}:{version}"


@dataclass
class PointResults:
    """Records of a sweep (one row per run, with a ``point`` column), as stored in ``out``."""

    out: Path
    experiment: Experiment
    points: list[dict[str, float]]
    records: pd.DataFrame


def run_points(exp: Experiment, points: Sequence[Mapping[str, float]], out: str | Path, *,
               workers: int | None = None, scheduler: str | None = None, resume: bool = False,
               progress: bool = False, manifest: dict | None = None,
               tables: tuple[str, ...] = (), digest: str | None = None,
               command: str = "hhsim sensitivity") -> PointResults:
    """Run every arm x replication of ``exp`` at every point; store and return the records.

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
    e = exp.experiment
    order = [point_run_id(i, a.name, r) for i in range(len(points))
             for r in range(e.replications) for a in exp.arms]
    info = {"experiment": e.name, "hhsim_version": package_version(), "seed": e.seed,
            "seeds": "replication r uses numpy SeedSequence(seed, spawn_key=(0, r)) at every point "
                     "and in every arm (common random numbers)",
            "replications": e.replications, "arms": [a.name for a in exp.arms],
            "points": len(points), "run_ids": "p<point>__<arm>__r<replication>", "planned_runs": len(order),
            **(manifest or {})}
    digest = digest or points_digest(exp, points, package_version())
    with (resume_hint(Path(out), command, exp.source),
          open_executor(workers, scheduler) as (executor, in_flight)):
        store = ResultsStore(out, digest, info, exp.model_dump(mode="json"), resume,
                             {"points": {"points": points}}, tables, mismatch=MISMATCH, planned=order)
        done = store.done()
        todo = (s for s in plan_points(exp, points) if s.run_id not in done)

        def keep(result: RunResult) -> None:
            record = {**result.record, "point": int(result.run_id.split("__", 1)[0][1:])}
            store.write(result.run_id, record, result.tables)

        execute(todo, len(order) - len(done & set(order)), keep, executor, in_flight, progress)
    records = store.records(order=order)
    store.finalise(records, {})
    return PointResults(Path(out), exp, points, records)


def check_ranges(exp: Experiment, section: str, ranges: Mapping[str, tuple[float, float]],
                 fixed: Mapping[str, float] | None = None) -> None:
    """One-line errors unless every parameter of a sampling ``section`` (``sensitivity``,
    ``psa``) can vary: none is also set by an arm (its value would replace every sampled
    one), and the experiment validates with all of them at the low, then the high end of
    their ``ranges`` (on a failure, each alone, to name the one at fault). ``fixed`` values
    (e.g. a Dirichlet group at its mean) are in every probe."""
    from hhsim.experiment.schema import validate

    for arm in exp.arms:
        for name in [*ranges, *(fixed or {})]:
            if name in arm.parameters:
                raise HhsimError(f"{section}.parameters.{name}", f"is also set by arm '{arm.name}', "
                                 "whose value would replace every sampled one",
                                 f"remove it from arms.{arm.name}.parameters")
            if set_inline(arm, name):
                raise HhsimError(f"{section}.parameters.{name}", f"is also set in arm '{arm.name}''s "
                                 "intervention table, whose value every sampled one would replace",
                                 "sample it in an experiment where no arm sets it, or set it per arm "
                                 "through arms.<arm>.parameters and leave it out of the section")
    data = exp.model_dump(exclude_unset=True, exclude={"sensitivity", "psa"})

    def probe(values: dict[str, float]) -> None:
        values = {**(fixed or {}), **values}
        validate({**data, "parameters": {**exp.parameters, **values}}, exp.source, probe=False)

    for side in (0, 1):
        try:
            probe({n: r[side] for n, r in ranges.items()})
        except HhsimError:
            for name, r in ranges.items():
                try:
                    probe({name: r[side]})
                except HhsimError as err:
                    where = f"{section}.parameters.{name}"
                    if err.where == f"parameters.{name}" and err.problem.startswith("unknown"):
                        raise HhsimError(where, err.problem, err.fix) from None
                    label = ("low", "high")[side]
                    why = err.problem if err.where == f"parameters.{name}" else f"{err.where}: {err.problem}"
                    raise HhsimError(where, f"its {label} value {r[side]:.4g} is refused ({why})",
                                     "narrow the bounds or choose a distribution within the parameter's "
                                     "range" + (f"; {err.fix}" if err.fix else "")) from None
            raise


def set_inline(arm, name: str) -> bool:
    """Whether ``interventions.<iv>.<path>`` is written in the arm's own intervention table."""
    parts = name.split(".")
    if len(parts) < 3 or parts[0] != "interventions":
        return False
    for table in arm.interventions:
        if table.get("name", table.get("type")) != parts[1]:
            continue
        node = table
        for key in parts[2:]:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            return True
    return False
