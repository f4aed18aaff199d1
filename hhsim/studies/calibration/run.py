"""``hhsim calibrate``: run a calibration file and write its output folder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from hhsim.analysis.precision import Precision, assess, next_round, stop_reason
from hhsim.batch.execution import open_executor
from hhsim.core.errors import HhsimError
from hhsim.core.parameters import read_toml
from hhsim.core.version import MODEL_VERSION, package_version
from hhsim.studies.calibration.fit import MIN_DRAWS, bound_warning
from hhsim.studies.calibration.outputs import (
    final,
    fit_table,
    plot_calibration,
    summary_table,
    write_manifest,
    write_section,
    write_table,
)
from hhsim.studies.calibration.problem import Problem, load_problem


def _predict(problem: Problem, point: dict[str, float], seed: int) -> tuple[dict, dict]:
    values = problem.simulate(point, seed)
    return values, problem.observe(values, np.random.default_rng(seed))


def draw_seeds(seed: int, start: int, stop: int) -> np.ndarray:
    """The model seeds of predictive draws ``start`` to ``stop - 1``: draw i always has the
    i-th word of ``SeedSequence(seed, spawn_key=(1,))``, however many draws are run."""
    return np.random.SeedSequence(seed, spawn_key=(1,)).generate_state(stop)[start:] % (2**31 - 1)


def draw_rows(weights: np.ndarray, seed: int, stop: int) -> np.ndarray:
    """The posterior rows of predictive draws 0 to ``stop - 1``, resampled with ``weights``
    (``default_rng(seed)``, one uniform per draw in order: draw i's row does not depend on
    ``stop``; the same rows as ``Generator.choice``)."""
    cdf = np.cumsum(weights, dtype=float)
    return cdf.searchsorted(np.random.default_rng(seed).random(stop) * cdf[-1], side="right")


def predictive(
    problem: Problem,
    points: pd.DataFrame,
    seed: int,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    start: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulated values and simulated observations at each point (row of ``points``, draws
    ``start``, ``start + 1``, ...), each draw with its own model seed (``draw_seeds``)."""
    seeds = draw_seeds(seed, start, start + len(points))
    rows = [dict(r) for _, r in points.iterrows()]
    with open_executor(workers, scheduler) as (executor, _):
        futures = [executor.submit(_predict, problem, r, int(s)) for r, s in zip(rows, seeds, strict=True)]
        results = [f.result() for f in tqdm(futures, unit="draw", desc="fit", disable=not progress)]
    index = pd.RangeIndex(start, start + len(points))
    return (pd.DataFrame([v for v, _ in results], index=index),
            pd.DataFrame([o for _, o in results], index=index))


def _simulated(problem: Problem, values: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each target's finite simulated values, as the fit table shows them (binomial: counts)."""
    out = {}
    for t in problem.targets:
        v = values[t.name].to_numpy(float) * (t.n if t.likelihood == "binomial" else 1)
        out[t.name] = v[np.isfinite(v)]
    return out


def predictive_rounds(
    problem: Problem,
    draws_until,
    seed: int,
    first: int,
    precision: Precision | None,
    **run,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """``first`` predictive draws, then (with ``precision``) more in rounds until every
    target's simulated mean meets it (``hhsim.analysis.precision``: its 95% MC half-width),
    the maximum is reached or a relative target proves indistinguishable from zero.
    ``draws_until(n)`` gives the parameter rows of draws 0 to n - 1 (draw i the same for any
    n); the draws are those one run of the final number would give. Returns values,
    observations and what was done (rounds, and why they stopped)."""
    values, observations = predictive(problem, draws_until(first), seed, **run)
    have, rounds = first, [first]
    info: dict = {"draws": first, "rounds": rounds}
    if precision is None:
        return values, observations, info
    while True:
        verdicts = {t: assess(v, precision) for t, v in _simulated(problem, values).items()}
        total = next_round(list(verdicts.values()), have, precision.max_replications)
        if total <= have:
            break
        more = predictive(problem, draws_until(total).iloc[have:], seed, start=have, **run)
        values, observations = pd.concat([values, more[0]]), pd.concat([observations, more[1]])
        have = total
        rounds.append(total)
    info.update(draws=have, precision=precision.describe(), max_draws=precision.max_replications,
                stop=stop_reason(verdicts, have, precision.max_replications, precision, "predictive draws"))
    return values, observations, info


def shown_path(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it (a repository's
    ``calibration/baseline.toml``, not one machine's absolute path), else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def describe(problem: Problem, fast: bool, sizes: dict, precision: Precision | None,
             generations: int | None = None) -> list[str]:
    """The header ``hhsim calibrate`` prints before it runs: what will be run, at what size
    (``generations``: the ABC-SMC generations asked for, when fewer than the file's)."""
    s = problem.settings
    stop = f" (stopping after {generations})" if generations and generations < s["generations"] else ""
    method = (f"--fast: up to {s['evaluations']} evaluations" if fast else
              f"ABC-SMC: {s['particles']} particles x {s['generations']} generations{stop}")
    lines = [f"Calibrating {s['name']} ({len(problem.names)} parameter(s), {len(problem.targets)} "
             f"target(s)) with {method} of {s['replications']} replication(s) each, then "
             f"{s['predictive']} predictive draws"
             + (f" and more up to {precision.max_replications} until each target's simulated mean is "
                f"within {precision.describe()}" if precision else "") + "."]
    hm = problem.history_matching
    if hm and fast:
        lines.append("  [history_matching] is not used by --fast")
    elif hm:
        lines.append(f"  first history matching: up to {hm['waves']} wave(s) of {hm['points']} runs, "
                     f"ruling out points whose {'second-largest' if hm['rule'] == 'second' else 'largest'} "
                     f"implausibility is above {hm['cutoff']:g} (discrepancy {hm['discrepancy']:g} x sd^2)")
    for exp in problem.experiments.values():
        e = exp.experiment
        who = (f"tenants from {exp.population.stock}" if exp.population.stock is not None else
               f"{exp.population.tenants:,} tenants")
        lines.append(f"  {e.name}: {who}, {e.months} months, arm(s) {', '.join(a.name for a in exp.arms)}")
    if sizes:
        lines.append("  overrides (recorded in calibration.json): "
                     + " ".join(f"--{k} {v}" for k, v in sizes.items()))
    return lines


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
    sizes: dict[str, int] | None = None,
    precision: Precision | None = None,
) -> Path:
    """Calibrate the file at ``path`` into ``out`` (ABC-SMC, after history matching when
    the file has a ``[history_matching]`` table; or ``fast``: a point estimate).
    ``sizes`` overrides tenants, months, replications, evaluations and predictive draws
    (``load_problem``); ``precision`` runs predictive draws in rounds until each target's
    simulated mean meets it. Warnings (a parameter at a prior bound, a search out of
    evaluations, too few predictive draws) go to ``calibration.json``. An ABC calibration
    interrupted part way continues from ``out/abc.db`` and the stored history-matching
    waves when run again."""
    from hhsim.studies.calibration.abc import diagnostics_table, import_pyabc, posterior_table, run_abc
    from hhsim.studies.calibration.fast import run_fast

    if not fast:
        import_pyabc()  # before anything is written
    sizes = dict(sizes or {})
    problem = load_problem(path, sizes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digest = problem.digest()
    manifest = out / "calibration.json"
    if manifest.is_file() and ((out / "abc.db").exists() or (out / "history_matching").exists()):
        import json

        if json.loads(manifest.read_text()).get("digest") != digest:
            raise HhsimError(
                str(out), "holds a different calibration", "choose another --out or remove the folder"
            )
    s = problem.settings
    info = {
        "name": s["name"],
        "description": s["description"],
        "file": shown_path(problem.source),
        "digest": digest,
        "method": "fast" if fast else "abc-smc",
        "hhsim_version": package_version(),
        "model_version": MODEL_VERSION,
        "sampler": None if fast else ("dask" if scheduler else sampler),
        "seed": s["seed"],
        "settings": s,
        "overrides": sizes,
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
    warnings: list[str] = []
    local = 1 if sampler == "single" and not scheduler else workers  # runs outside pyabc: here too
    start = time.perf_counter()
    if fast:
        best, trace = run_fast(problem, progress)
        warnings += [trace.attrs["warning"]] if "warning" in trace.attrs else []
        write_table(out / "trace.csv", trace)
        posterior = pd.DataFrame([{"generation": 0, "weight": 1.0, **best}])

        def draws_until(n: int) -> pd.DataFrame:
            return pd.DataFrame([best] * n)
    else:
        nroy = None
        if problem.history_matching:
            from hhsim.studies.calibration.history_matching import history_match

            waves = history_match(problem, out, workers=local, scheduler=scheduler,
                                  say=print)
            write_table(out / "history_matching.csv", waves.table)
            write_table(out / "history_matching_targets.csv", waves.emulators)
            write_table(out / "nroy.parquet", waves.samples)
            info["history_matching"] = {"waves": len(waves.table), "runs": int(waves.table["runs"].iloc[-1]),
                                        "nroy_share": float(waves.table["nroy_share"].iloc[-1])}
            info["seconds_history_matching"] = round(time.perf_counter() - start, 1)
            nroy = waves.nroy
        history = run_abc(problem, out, sampler_kind=sampler, scheduler=scheduler, workers=workers,
                          generations=generations, nroy=nroy)
        posterior = posterior_table(problem, history)
        info["generations_run"] = int(history.max_t) + 1
        if info["generations_run"] < s["generations"]:
            warnings.append(f"stopped after {info['generations_run']} of the file's {s['generations']} "
                            "generations (--generations): the posterior is the last generation's, wider "
                            "than a full run's; run again with more to continue")
        write_table(out / "diagnostics.csv", diagnostics_table(history))
        last = final(posterior)

        def draws_until(n: int) -> pd.DataFrame:
            rows = draw_rows(last["weight"].to_numpy(), s["seed"], n)
            return last[list(problem.names)].iloc[rows].reset_index(drop=True)
    info["seconds_calibration"] = round(time.perf_counter() - start, 1)
    write_table(out / "posterior.parquet", posterior)
    summary = summary_table(problem.names, problem.priors, posterior)
    write_table(out / "summary.csv", summary)
    for name, prior, row in zip(problem.names, problem.priors, summary.itertuples(), strict=True):
        if row.at_bound:
            value, share = (row.estimate, 0.0) if fast else (row.posterior_median, row.edge_share)
            warnings.append(bound_warning(name, prior, value, row.at_bound, row.prior_quantile, share, fast))
    start = time.perf_counter()
    values, observations, info["predictive"] = predictive_rounds(
        problem, draws_until, s["seed"], s["predictive"], precision,
        workers=local, scheduler=scheduler, progress=progress)
    fit = fit_table(problem, values, observations, summary)
    write_table(out / "fit.csv", fit)
    few = int(fit["draws"].min())
    if few < MIN_DRAWS:
        warnings.append(f"the fit table's 95% predictive intervals rest on {few} draws, too few for "
                        f"their ends to mean anything: 'covered' is unknown (give --predictive {MIN_DRAWS} "
                        "or more)")
    info["seconds_fit"] = round(time.perf_counter() - start, 1)
    info["warnings"] = warnings
    write_manifest(out, info)
    plot_calibration(out)
    write_section(out)
    return out
