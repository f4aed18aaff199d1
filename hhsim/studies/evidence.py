"""Published studies re-run inside hhsim (issue 17): ``hhsim evidence``.

A study file (``hhsim.studies.calibration.study_files``) describes a study and the estimates
it published; an experiment beside it replays the study's comparison. ``simulate_study``
runs the study's experiment (its arms and replications; common random numbers across arms)
and gives, per outcome, the simulated estimate pooled over replications (the estimator's
own pooling, as calibration uses it) and its 95% Monte-Carlo interval: the 2.5th and 97.5th
percentiles of the estimate over ``BOOTSTRAP`` resamples of the replications (whole
replications, every arm together, so a paired estimator stays paired). ``verdict`` compares the two:

- "within": the Monte-Carlo interval lies inside the published 95% interval;
- "outside": the Monte-Carlo interval lies wholly outside it (beyond Monte-Carlo error);
- "unknown": the Monte-Carlo interval reaches across an end of the published interval:
  more replications would tell;
- "not judged": the study published no interval (a pilot report's figure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hhsim.batch.design import runs
from hhsim.batch.execution import RunResult, execute, open_executor
from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.experiment.plan import Plan, compile_plan
from hhsim.studies.calibration.study_files import Outcome, Study

#: Resamples of the replications for the Monte-Carlo interval.
BOOTSTRAP = 400


@dataclass(frozen=True)
class Estimate:
    """One outcome of one study: the published and the simulated estimate."""

    study: str
    outcome: str
    estimator: str
    published: float
    low: float
    high: float
    simulated: float
    mc_low: float
    mc_high: float
    replications: int
    verdict: str


def verdict(published: tuple[float, float] | None, mc: tuple[float, float]) -> str:
    """'within', 'outside', 'unknown' or 'not judged' (module docstring): a simulated
    estimate's 95% Monte-Carlo interval ``mc`` against the published 95% interval."""
    if published is None:
        return "not judged"
    low, high = published
    a, b = mc
    if not (math.isfinite(a) and math.isfinite(b)):
        return "unknown"
    if b < low or a > high:
        return "outside"
    return "within" if low <= a and b <= high else "unknown"


def _arm(study: Study, outcome: Outcome, plan: Plan) -> str:
    arm = outcome.arm or study.arm
    names = plan.arm_names
    if arm is not None:
        if arm not in names:
            raise unknown_key_error(f"{study.path.name}: arm", arm, names, what="arm")
        return arm
    others = [n for n in names if n != plan.baseline]
    if len(others) != 1:
        raise HhsimError(f"{study.path.name}: study.arm",
                         f"the experiment has arms {others} besides the baseline",
                         'say which the study compares: arm = "..."')
    return others[0]


def run_study(study: Study, replications: int | None = None, workers: int | None = None,
              seed: int | None = None, tenants: int | None = None,
              progress: bool = False) -> tuple[Plan, list[RunResult]]:
    """Every run of the study's experiment (``replications``, ``seed``, ``tenants``: the
    file's unless given)."""
    plan = compile_plan(study.experiment, replications=replications, seed=seed, tenants=tenants)
    specs = runs(plan)
    results: list[RunResult] = []
    with open_executor(workers, None) as (executor, in_flight):
        execute(specs, len(specs), results.append, executor, in_flight, progress=progress)
    return plan, results


def estimate(study: Study, outcome: Outcome, plan: Plan, results: Sequence[RunResult],
             seed: int = 0) -> Estimate:
    """The outcome's simulated estimate, its Monte-Carlo interval and the verdict."""
    arm = _arm(study, outcome, plan)
    value = float(outcome.spec.function(results, arm, plan.baseline, outcome.options))
    by_rep: dict[int, list[RunResult]] = {}
    for r in results:
        by_rep.setdefault(int(r.record["replication"]), []).append(r)
    reps = sorted(by_rep)
    rng = np.random.default_rng(seed)
    draws = []
    if len(reps) > 1:
        for _ in range(BOOTSTRAP):
            pick = rng.choice(reps, size=len(reps), replace=True)
            sample = [r for k in pick for r in by_rep[int(k)]]
            try:
                draws.append(float(outcome.spec.function(sample, arm, plan.baseline, outcome.options)))
            except HhsimError:  # e.g. a resample where a share is 0: no estimate
                draws.append(math.nan)
    finite = np.array([d for d in draws if math.isfinite(d)])
    if len(finite) >= 0.95 * BOOTSTRAP:
        mc_low, mc_high = (float(x) for x in np.percentile(finite, [2.5, 97.5]))
    else:  # one replication, or too many resamples without an estimate: unknowable
        mc_low = mc_high = math.nan
    low, high = outcome.interval if outcome.interval is not None else (math.nan, math.nan)
    return Estimate(study.name, outcome.name, outcome.estimator, outcome.published, low, high, value,
                    mc_low, mc_high, len(reps), verdict(outcome.interval, (mc_low, mc_high)))


def simulate_study(study: Study, replications: int | None = None, workers: int | None = None,
                   seed: int | None = None, tenants: int | None = None,
                   progress: bool = False) -> list[Estimate]:
    """Run the study and estimate every outcome."""
    plan, results = run_study(study, replications, workers, seed, tenants, progress)
    return [estimate(study, o, plan, results, seed=plan.seed) for o in study.outcomes]


def table(estimates: Sequence[Estimate]) -> pd.DataFrame:
    """The estimates as a table, one row per outcome."""
    return pd.DataFrame([e.__dict__ for e in estimates])


def _number(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def text(estimates: Sequence[Estimate]) -> str:
    """The estimates as the command prints them: one block per outcome."""
    lines = []
    for e in estimates:
        mc = ("no Monte-Carlo interval (run at least 2 replications)" if not math.isfinite(e.mc_low)
              else f"Monte-Carlo 95% interval {_number(e.mc_low)} to {_number(e.mc_high)}")
        published = ("no interval published" if not math.isfinite(e.low)
                     else f"{_number(e.low)} to {_number(e.high)}")
        lines.append(f"{e.study}: {e.outcome} ({e.estimator}): published {_number(e.published)} "
                     f"({published}); simulated {_number(e.simulated)}, {mc}, "
                     f"{e.replications} replications: {e.verdict}")
    return "\n".join(lines)
