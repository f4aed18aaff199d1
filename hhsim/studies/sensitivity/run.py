"""Run a global sensitivity analysis: sample, run through the batch layer, analyse, report.

    from hhsim.studies.sensitivity.run import run_sensitivity
    res = run_sensitivity("experiments/sensitivity-default.toml", samples=64, out="results/gsa")
    res.indices          # SALib indices with 95% intervals, one row per output, parameter, index
    res.summary["outputs"]["net_saving"]["text"]   # the plain-language ranking

Files in the output folder, besides the results store's (``runs/``, ``monthly/``, ...,
``runs.parquet``; see ``hhsim.batch.store``):

    design.csv, design.parquet       one row per point: kind (sample, base, low, high),
                                     quantiles q:<name>, parameter values
    outcomes.csv, outcomes.parquet   per point and output: value (mean over replications of
                                     the paired difference), se, replications
    indices.csv, indices.parquet     SALib's indices with 95% intervals and ranks
    oneway.csv                       per output: the base, low and high one-way values
    sensitivity.json, sensitivity.md settings, rankings, sample and noise checks, plots
    section.html                     the same for the HTML report (``hhsim report``)
    plots/                           PNG and SVG (``plot_sensitivity``)
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hhsim.analysis.sweep import point_outcomes
from hhsim.batch.files import atomic_write, write_csv, write_json
from hhsim.batch.pipeline import default_out
from hhsim.batch.points import run_points
from hhsim.experiment.plan import compile_plan, experiment_data
from hhsim.experiment.schema import Experiment
from hhsim.experiment.sensitivity_section import Setup, setup
from hhsim.studies.sensitivity.analysis import (
    RANKED_BY,
    index_table,
    interval_text,
    noise_check,
    ranked,
    ranking_text,
    salib_indices,
    sample_check,
)
from hhsim.studies.sensitivity.design import build_design, design_points
from hhsim.studies.sensitivity.plots import file_stem, plot_sensitivity


@dataclass
class SensitivityResults:
    """A finished sensitivity analysis, as stored in ``out``."""

    out: Path
    experiment: Experiment
    setup: Setup
    design: pd.DataFrame
    outcomes: pd.DataFrame
    indices: pd.DataFrame
    oneway: pd.DataFrame
    summary: dict


def with_sampling(data: dict, method: str | None = None, samples: int | None = None) -> dict:
    """Experiment data with the ``[sensitivity]`` method and samples replaced (None keeps
    the file's)."""
    given = {k: v for k, v in (("method", method), ("samples", samples)) if v is not None}
    return {**data, "sensitivity": {**data.get("sensitivity", {}), **given}} if given else data


def _write_table(out: Path, name: str, table: pd.DataFrame, parquet: bool = True) -> None:
    write_csv(out / f"{name}.csv", table)
    if parquet:
        atomic_write(out / f"{name}.parquet", lambda p: table.to_parquet(p, index=False))


def run_sensitivity(experiment: Experiment | str | Path | None = None, out: str | Path | None = None, *,
                    method: str | None = None, samples: int | None = None, workers: int | None = None,
                    scheduler: str | None = None, resume: bool = False, progress: bool = False,
                    seed: int | None = None, tenants: int | None = None, months: int | None = None,
                    replications: int | None = None) -> SensitivityResults:
    """Sample the ``[sensitivity]`` parameters with SALib, run every point through the batch
    layer (resumable; common random numbers across points), analyse and write the results.

    The experiment seed (``seed`` overrides it) seeds the sample, every run and SALib's
    bootstrap: the same seed gives the same indices.
    """
    started = time.perf_counter()
    data, source = experiment_data(experiment)
    plan = compile_plan(with_sampling(data, method, samples), source, seed=seed, tenants=tenants,
                        months=months, replications=replications)
    exp = plan.experiment
    st = setup(exp)
    e = exp.experiment
    design = build_design(st, e.seed)
    out = Path(out) if out is not None else default_out(plan.name, "sensitivity")
    sampling = {"method": st.method, "samples": st.samples, "second_order": st.second_order,
                "levels": st.levels, "oneway": st.oneway}
    res = run_points(plan, design_points(design, st.names), out, workers=workers, scheduler=scheduler,
                     resume=resume, progress=progress, manifest={"sensitivity": sampling})
    outcomes = point_outcomes(res.records, st.outputs, exp.baseline, arms=[st.arm])
    outcomes = outcomes.merge(design[["point", "kind", "parameter"]], on="point")
    is_sample = design["kind"] == "sample"
    u = design.loc[is_sample, [f"q:{n}" for n in st.names]].to_numpy()
    tables, texts = [], {}
    for output in st.outputs:
        rows = outcomes[(outcomes["output"] == output) & (outcomes["kind"] == "sample")].sort_values("point")
        y = rows["value"].to_numpy(dtype=float)
        spread = float(np.var(y)) if np.isfinite(y).all() else float("nan")
        if np.isfinite(spread) and spread > 0:
            table = index_table(st, output, salib_indices(st, u, y, e.seed))
        else:
            table = index_table(st, output, _undefined(st))
        tables.append(table)
        texts[output] = {"text": ranking_text(output, table, st.method, spread, st.samples),
                         "ranking": [n for n, _, _ in ranked(table, st.method)],
                         "sample_warning": sample_check(output, table, st.method, st.samples),
                         "noise": noise_check(y, rows["se_paired"].to_numpy(dtype=float), output),
                         "mean": float(np.mean(y)), "sd": float(np.std(y, ddof=1)) if len(y) > 1 else None}
    indices = pd.concat(tables, ignore_index=True)
    oneway = outcomes[outcomes["kind"] != "sample"][["output", "kind", "parameter", "value", "se"]]
    summary = {
        "experiment": e.name, "model_version": plan.model_version, **sampling, "index": RANKED_BY[st.method],
        "points": len(design), "sample_points": int(is_sample.sum()), "runs": len(res.records),
        "replications": e.replications, "tenants": exp.population.tenants, "months": e.months,
        "seed": e.seed, "arm": st.arm, "baseline": exp.baseline,
        "parameters": [{"name": n, "distribution": d.description, "low": d.range()[0], "high": d.range()[1]}
                       for n, d in zip(st.names, st.distributions, strict=True)],
        "outputs": texts,
        "warnings": [w for t in texts.values() for w in (t["sample_warning"], t["noise"]["warning"]) if w],
    }
    _write_table(out, "design", design)
    _write_table(out, "outcomes", outcomes)
    _write_table(out, "indices", indices)
    _write_table(out, "oneway", oneway, parquet=False)
    write_json(out / "sensitivity.json", summary)
    summary["plots"] = plot_sensitivity(out)
    summary["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    write_json(out / "sensitivity.json", summary)
    atomic_write(out / "sensitivity.md", lambda p: p.write_text(markdown(summary, indices)))
    atomic_write(out / "section.html", lambda p: p.write_text(section_html(summary, indices)))
    return SensitivityResults(out, exp, st, design, outcomes, indices, oneway, summary)


def _undefined(st: Setup) -> dict:
    """An all-NaN SALib-like result, for an output that is constant or undefined."""
    nan = np.full(len(st.names), np.nan)
    keys = {"sobol": ("S1", "ST"), "fast": ("S1", "ST"), "morris": ("mu_star", "mu", "sigma"),
            "delta": ("delta", "S1")}[st.method]
    result = {k: nan for k in keys} | {f"{k}_conf": nan for k in keys}
    if st.method == "sobol" and st.second_order:
        d = len(st.names)
        result |= {"S2": np.full((d, d), np.nan), "S2_conf": np.full((d, d), np.nan)}
    return result


Rows = list[tuple[int, str, list[str]]]


def index_rows(indices: pd.DataFrame, output: str, key: str) -> tuple[list[str], Rows]:
    """The index kinds of an output, and per parameter in rank order (by ``key``): rank, name,
    and each index with its 95% interval as the ranking text prints it."""
    t = indices[indices["output"] == output]
    kinds = list(dict.fromkeys(t["index"]))
    by = t.set_index(["index", "parameter"])
    ordered = t[t["index"] == key].sort_values("rank")["parameter"]
    rows = []
    for rank, name in enumerate(ordered, 1):
        cells = []
        for k in kinds:
            r = by.loc[(k, name)] if (k, name) in by.index else None
            cells.append("" if r is None else interval_text(r["value"], r["low"], r["high"], k))
        rows.append((rank, name, cells))
    return kinds, rows


def section_html(summary: dict, indices: pd.DataFrame) -> str:
    """The report fragment (``hhsim report`` includes ``sensitivity*`` folders): per output,
    the ranking, the warnings and the indices with their 95% intervals."""
    esc, s = html.escape, summary
    body = (f"<p>Method {esc(s['method'])} (SALib), N = {s['samples']}: {s['runs']} runs of "
            f"{s['tenants']:,} tenants over {s['months']} months; arm {esc(s['arm'])}.</p>")
    for output, info in s["outputs"].items():
        body += f"<h3>{esc(output)}</h3><p>{esc(info['text'])}</p>"
        body += "".join(f"<p><strong>Warning:</strong> {esc(w)}</p>"
                        for w in (info["sample_warning"], info["noise"]["warning"]) if w)
        kinds, rows = index_rows(indices, output, s["index"])
        head = "".join(f"<th>{esc(k)} (95% interval)</th>" for k in kinds)
        cells = ["".join(f"<td>{esc(c)}</td>" for c in row) for _, _, row in rows]
        body += (f"<table class='t'><tr><th>rank</th><th>parameter</th>{head}</tr>"
                 + "".join(f"<tr><td>{rank}</td><td>{esc(name)}</td>{c}</tr>"
                           for (rank, name, _), c in zip(rows, cells, strict=True))
                 + "</table>")
    return body


def markdown(summary: dict, indices: pd.DataFrame) -> str:
    """``sensitivity.md``: the settings, the ranking per output, the noise checks and plots."""
    s = summary
    oneway = f" plus {s['points'] - s['sample_points']} one-way points" if s["oneway"] else ""
    lines = [f"# Sensitivity analysis: {s['experiment']}", "",
             f"Method **{s['method']}** (SALib), samples N = {s['samples']}: {s['sample_points']} sampled "
             f"points{oneway}"
             f", {s['runs']} runs ({s['replications']} replication(s) of {s['tenants']:,} tenants over "
             f"{s['months']} months per arm and point; seed {s['seed']}). Arm analysed: **{s['arm']}**"
             + (f" against {s['baseline']}." if s["arm"] != s["baseline"] else "."), "",
             "| parameter | distribution | low | high |", "|---|---|---|---|"]
    lines += [f"| `{p['name']}` | {p['distribution']} | {p['low']:.4g} | {p['high']:.4g} |"
              for p in s["parameters"]]
    key = s["index"]
    for output, info in s["outputs"].items():
        lines += ["", f"## {output}", "", info["text"], ""]
        if info["sample_warning"]:
            lines += [f"**Warning:** {info['sample_warning']}", ""]
        if info["noise"]["warning"]:
            lines += [f"**Warning:** {info['noise']['warning']}", ""]
        elif info["noise"]["noise_share"] is not None:
            share = info["noise"]["noise_share"]
            lines += [f"Monte-Carlo noise: {share:.1%} of the variance across samples.", ""]
        kinds, rows = index_rows(indices, output, key)
        lines += ["| rank | parameter | " + " | ".join(f"{k} (95% interval)" for k in kinds) + " |",
                  "|---|---|" + "---|" * len(kinds)]
        lines += [f"| {rank} | `{name}` | " + " | ".join(cells) + " |" for rank, name, cells in rows]
        lines += [""] + [f"![{output}]({p})" for p in s.get("plots", [])
                         if p.endswith(".png") and Path(p).stem.rsplit("-", 1)[0] == file_stem(output)]
    return "\n".join(lines) + "\n"
