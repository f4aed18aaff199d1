"""``hhsim calibrate``: run a calibration file and write its output folder."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from hhsim.api import package_version
from hhsim.batch.execution import open_executor
from hhsim.calibration.outputs import (
    final,
    fit_table,
    plot_calibration,
    summary_table,
    write_manifest,
    write_section,
    write_table,
)
from hhsim.calibration.problem import Problem, load_problem
from hhsim.errors import HhsimError
from hhsim.parameters import read_toml


def _predict(problem: Problem, point: dict[str, float], seed: int) -> tuple[dict, dict]:
    values = problem.simulate(point, seed)
    return values, problem.observe(values, np.random.default_rng(seed))


def predictive(
    problem: Problem,
    points: pd.DataFrame,
    seed: int,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulated values and simulated observations at each point (row of ``points``), each
    with its own model seed from ``SeedSequence(seed, spawn_key=(1,))``."""
    seeds = np.random.SeedSequence(seed, spawn_key=(1,)).generate_state(len(points)) % (2**31 - 1)
    rows = [dict(r) for _, r in points.iterrows()]
    with open_executor(workers, scheduler) as (executor, _):
        futures = [executor.submit(_predict, problem, r, int(s)) for r, s in zip(rows, seeds, strict=True)]
        results = [f.result() for f in tqdm(futures, unit="draw", desc="fit", disable=not progress)]
    return pd.DataFrame([v for v, _ in results]), pd.DataFrame([o for _, o in results])


def calibrate(
    path: str | Path,
    out: str | Path,
    *,
    fast: bool = False,
    scheduler: str | None = None,
    sampler: str = "multicore",
    workers: int | None = None,
    generations: int | None = None,
    progress: bool = False,
) -> Path:
    """Calibrate the file at ``path`` into ``out`` (ABC-SMC, or ``fast``: a point estimate).
    An ABC calibration interrupted part way continues from ``out/abc.db`` when run again."""
    from hhsim.calibration.abc import diagnostics_table, posterior_table, run_abc
    from hhsim.calibration.fast import run_fast

    problem = load_problem(path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digest = problem.digest()
    manifest = out / "calibration.json"
    if manifest.is_file() and (out / "abc.db").exists():
        import json

        if json.loads(manifest.read_text()).get("digest") != digest:
            raise HhsimError(
                str(out), "holds a different calibration", "choose another --out or remove the folder"
            )
    s = problem.settings
    info = {
        "name": s["name"],
        "description": s["description"],
        "file": str(problem.source),
        "digest": digest,
        "method": "fast" if fast else "abc-smc",
        "hhsim_version": package_version(),
        "sampler": None if fast else ("dask" if scheduler else sampler),
        "seed": s["seed"],
        "settings": s,
        "parameters": dict(read_toml(problem.source)["parameters"]),
        "targets": [
            {
                "name": t.name,
                "experiment": str(t.experiment),
                "arm": t.arm,
                "estimator": t.estimator,
                "options": t.options,
                "likelihood": t.likelihood,
                "observed": t.observed,
                "sd": t.sd,
                "n": t.n,
                "source": t.source,
                "status": t.status,
            }
            for t in problem.targets
        ],
    }
    write_manifest(out, info)
    start = time.perf_counter()
    if fast:
        best, trace = run_fast(problem, progress)
        if "warning" in trace.attrs:
            info["warning"] = trace.attrs["warning"]
            print(f"Warning: {trace.attrs['warning']}", file=sys.stderr)
        write_table(out / "trace.csv", trace)
        posterior = pd.DataFrame([{"generation": 0, "weight": 1.0, **best}])
        draws = pd.DataFrame([best] * s["predictive"])
    else:
        history = run_abc(
            problem, out, sampler_kind=sampler, scheduler=scheduler, workers=workers, generations=generations
        )
        posterior = posterior_table(problem, history)
        write_table(out / "diagnostics.csv", diagnostics_table(history))
        last = final(posterior)
        rng = np.random.default_rng(s["seed"])
        rows = rng.choice(len(last), size=s["predictive"], p=last["weight"].to_numpy())
        draws = last[list(problem.names)].iloc[rows].reset_index(drop=True)
    info["seconds_calibration"] = round(time.perf_counter() - start, 1)
    write_table(out / "posterior.parquet", posterior)
    write_table(out / "summary.csv", summary_table(problem.names, problem.priors, posterior))
    start = time.perf_counter()
    if sampler == "single" and not scheduler:
        workers = 1  # the fit's simulations in this process too
    values, observations = predictive(problem, draws, s["seed"], workers, scheduler, progress)
    write_table(out / "fit.csv", fit_table(problem, values, observations))
    info["seconds_fit"] = round(time.perf_counter() - start, 1)
    write_manifest(out, info)
    plot_calibration(out)
    write_section(out)
    return out
