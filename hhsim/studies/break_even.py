"""The break-even search: an arm rerun over one of its parameters until its gap (net saving,
or incremental NMB at a threshold) is found to cross zero (``hhsim.analysis.break_even``
analyses the runs; its docstring gives the method).

Replication r has the same seed at every value and in the baseline (common random
numbers); the baseline, which does not depend on the parameter, runs once; each value's
arm is compiled once from the plan, and refused in one line if the parameter cannot take it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path

import pandas as pd

from hhsim.analysis.break_even import BreakEven, Evaluation, find_break_even
from hhsim.analysis.cost_effectiveness import nmb, perspective_cost
from hhsim.analysis.economics import savings
from hhsim.analysis.precision import Precision
from hhsim.batch.design import RunSpec, runs
from hhsim.batch.execution import RunResult, execute, open_executor, warm_up
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import Plan, compile_plan
from hhsim.experiment.schema import Experiment


class _Runs:
    """Runs of the baseline and of the arm at each value, kept by (value, replication):
    replication r is run once, whatever the number of replications, so later rounds and
    values extend earlier ones."""

    def __init__(self, plan: Plan, arm: str, parameter: str, threshold: float | None, perspective: str,
                 executor: Executor, in_flight: int) -> None:
        self.plan, self.arm, self.parameter = plan, arm, parameter
        self.threshold, self.perspective = threshold, perspective
        self.executor, self.in_flight = executor, in_flight
        self.plans: dict[float | None, Plan] = {None: plan.only([plan.baseline])}
        self.records: dict[tuple[float | None, int], dict] = {}

    def _plan(self, value: float | None) -> Plan:
        """The arm alone at ``value`` (None: the baseline alone)."""
        if value not in self.plans:
            self.plans[value] = self.plan.with_arm_value(self.arm, self.parameter, value).only([self.arm])
        return self.plans[value]

    def __call__(self, values: Sequence[float], n: int) -> list[Evaluation]:
        specs: list[RunSpec] = []
        keys: dict[str, tuple[float | None, int]] = {}
        for value in [None, *values]:
            for spec in runs(self._plan(value).with_replications(n)):
                if (value, spec.replication) not in self.records:
                    keys[str(len(specs))] = (value, spec.replication)
                    specs.append(replace(spec, run_id=str(len(specs))))

        def keep(result: RunResult) -> None:
            self.records[keys[result.run_id]] = result.record

        execute(specs, len(specs), keep, self.executor, self.in_flight, progress=False)
        return [self._evaluation(v, n) for v in values]

    def _evaluation(self, value: float, n: int) -> Evaluation:
        base = pd.DataFrame([self.records[(None, r)] for r in range(n)])
        arm = pd.DataFrame([self.records[(value, r)] for r in range(n)])
        if self.threshold is None:
            s = savings(arm, base)
            return Evaluation(value, s["net_saving"].to_numpy(float), s["nhs_saving"].to_numpy(float),
                              s["intervention_cost"].to_numpy(float))
        d_cost = perspective_cost(arm, self.perspective) - perspective_cost(base, self.perspective)
        return Evaluation(value, nmb(arm["qalys"] - base["qalys"], self.threshold, d_cost).to_numpy(float))


def search_break_even(experiment: Experiment | str | Path | None, arm: str, parameter: str,
                      bounds: tuple[float, float], threshold: float | None = None,
                      perspective: str = "public_sector", *, tenants: int | None = None,
                      months: int | None = None, replications: int | None = None,
                      precision: Precision | None = None, workers: int | None = None,
                      scheduler: str | None = None) -> BreakEven:
    """The value of ``parameter`` (an arm parameter override, e.g.
    ``interventions.<name>.effects.admissions.rate_ratio``, a capacity or a unit cost)
    within ``bounds`` at which the arm's ROI = 1 (``threshold`` None: net saving = 0) or its
    incremental NMB at ``threshold`` (£ per QALY, ``perspective`` costs) is 0, with a 95% MC
    interval (``hhsim.analysis.break_even.find_break_even``). ``tenants``, ``months`` and
    ``replications`` override the file's; runs go to local ``workers`` or a Dask
    ``scheduler`` in one batch per step."""
    plan = compile_plan(experiment, tenants=tenants, months=months, replications=replications)
    if arm not in plan.arm_names or arm == plan.baseline:
        raise HhsimError("arm", f"'{arm}' is not a non-baseline arm of the experiment",
                         f"use one of {[a for a in plan.arm_names if a != plan.baseline]}")
    target = "ROI = 1" if threshold is None else f"ICER = £{threshold:,.0f} per QALY"
    warm_up(workers, scheduler)
    with open_executor(workers, scheduler) as (executor, in_flight):
        evaluate = _Runs(plan, arm, parameter, threshold, perspective, executor, in_flight)
        return find_break_even(evaluate, bounds, plan.replications, roi=threshold is None,
                               where=parameter, arm=arm, target=target, precision=precision)
