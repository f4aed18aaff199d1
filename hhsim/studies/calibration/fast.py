"""``--fast``: a point estimate by scipy.optimize, with fixed common random numbers.

The objective is ``Problem.neg_log_likelihood`` of the simulated values at a point, every
point simulated with the same model seed (the calibration seed): differences between
points are then differences in parameters, not in random numbers, which makes the
objective smooth enough for a derivative-free optimiser. Powell's method searches the
prior's quantile space (each parameter's prior cdf, within [0.001, 0.999]), so the prior
bounds the search; the result is the maximum-likelihood point within the prior's range,
conditional on one stream of random numbers (the fit table shows how much the model's
randomness moves the fit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize
from tqdm import tqdm

from hhsim.core.distributions import TAIL
from hhsim.studies.calibration.problem import Problem


def point(problem: Problem, u: np.ndarray) -> dict[str, float]:
    return {n: float(d.ppf(x)) for n, d, x in zip(problem.names, problem.priors, u, strict=True)}


def run_fast(problem: Problem, progress: bool = False) -> tuple[dict[str, float], pd.DataFrame]:
    """The point estimate and the trace of every evaluation (parameters and objective)."""
    seed = problem.settings["seed"]
    trace = []
    bar = tqdm(
        total=problem.settings["evaluations"], unit="evaluation", disable=not progress, dynamic_ncols=True
    )

    def objective(u: np.ndarray) -> float:
        p = point(problem, np.clip(u, TAIL, 1 - TAIL))
        value = problem.neg_log_likelihood(problem.simulate(p, seed))
        trace.append({**p, "objective": value})
        bar.update(1)
        return value

    d = len(problem.names)
    try:
        result = optimize.minimize(
            objective,
            np.full(d, 0.5),
            method="Powell",
            bounds=[(TAIL, 1 - TAIL)] * d,
            options={"maxfev": problem.settings["evaluations"], "xtol": 1e-3, "ftol": 1e-4},
        )
    finally:
        bar.close()
    # The lowest objective evaluated (deterministic under the fixed random numbers): Powell's
    # own result is its last finished step, not its best point, when the budget runs out.
    table = pd.DataFrame(trace)
    best = {n: float(table.loc[table["objective"].idxmin(), n]) for n in problem.names}
    if not result.success or result.nfev >= problem.settings["evaluations"]:
        table.attrs["warning"] = (f"the search used all {problem.settings['evaluations']} evaluations "
                                  "before converging: raise calibration.evaluations")
    return best, table
