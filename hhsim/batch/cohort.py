"""Cohort mode in a batch (``hhsim run --cohort``): the plan set for it, each arm run once as
an exact cohort (``hhsim.model.cohort_mode``), every run made before anything is written.

A batch in cohort mode goes through the same store, analyses and printouts as a
microsimulation (``hhsim.batch.pipeline``): its runs are records and per-run tables of the
same columns, one replication per arm. Options that only a microsimulation has a use for
(more replications, a precision target, workers, resuming, a seed) are refused in one line.
"""

from __future__ import annotations

from hhsim.batch.design import RunSpec, runs
from hhsim.batch.execution import RunResult
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import COHORT, Plan
from hhsim.model.cohort_mode import cohort_record, cohort_refusal

#: Why each option has no use in cohort mode, by option (``check_options``).
NO_USE = {
    "--replications": "cohort mode computes expected values exactly, once per arm",
    "--precision": "cohort mode has no Monte-Carlo error to bring within a target",
    "--workers": "cohort mode runs each arm once, in this process",
    "--scheduler": "cohort mode runs each arm once, in this process",
    "--resume": "cohort mode runs in one go: there is no batch to continue",
    "--seed": "cohort mode draws no random numbers",
}


def check_options(*, replications: int | None = None, precision: object = None, workers: int | None = None,
                  scheduler: str | None = None, resume: bool = False, seed: int | None = None) -> None:
    """A one-line error for the first option given that cohort mode has no use for
    (``--replications 1`` is allowed: it is what cohort mode does)."""
    given = {"--replications": replications is not None and replications != 1,
             "--precision": precision is not None, "--workers": workers is not None,
             "--scheduler": scheduler is not None, "--resume": resume, "--seed": seed is not None}
    for option, used in given.items():
        if used:
            raise HhsimError(option, f"has no use with --cohort: {NO_USE[option]}",
                             f"drop {option}, or drop --cohort to run a microsimulation")


def cohort_plan(plan: Plan) -> Plan:
    """``plan`` in cohort mode, one run per arm; a one-line error (before anything is
    written) if cohort mode cannot run one of its arms."""
    plan = plan.with_replications(1).with_mode(COHORT)
    for spec in runs(plan):
        refusal = cohort_refusal(spec.config)
        if refusal is not None:
            raise refusal
    return plan


def cohort_runs(specs: list[RunSpec]) -> dict[str, RunResult]:
    """Every run of ``specs`` in cohort mode, by run id: records as ``simulate`` makes them
    (``tenants`` is the size of the cohort: nobody is simulated, everyone is represented)."""
    out = {}
    for spec in specs:
        c = spec.config
        outcomes, tables = cohort_record(c)
        record = {"run_id": spec.run_id, "arm": spec.arm, "replication": spec.replication, "seed": c.seed,
                  "tenants": c.tenants, "children": 0, "steps": c.steps, **outcomes}
        out[spec.run_id] = RunResult(spec.run_id, record, tables)
    return out
