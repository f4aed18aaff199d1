"""``hhsim psa``: draw, run, analyse, write.

The experiment seed (``seed`` overrides it) seeds the draws and every run; replication ``r``
uses the same random numbers at every draw and in every arm (common random numbers), so the
spread between draws is parameter uncertainty, with the Monte-Carlo noise of one set of
random numbers on top. Runs go through the batch layer: a local process pool or a Dask
cluster, written as they finish, resumable.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hhsim.api import default_out
from hhsim.batch.files import atomic_write, write_csv, write_json
from hhsim.batch.points import run_points
from hhsim.experiment import PSA, Experiment, load_experiment
from hhsim.psa.analysis import (
    DRAWS_PER_COEFFICIENT,
    SPLINE_DF,
    acceptability,
    evpi,
    evppi,
    evppi_possible,
    incremental,
    per_draw,
)
from hhsim.psa.draws import draw_parameters, read_posterior, resample_posterior, rng_for
from hhsim.psa.plots import plot_psa
from hhsim.psa.section import Setup, setup


@dataclass
class PSAResults:
    out: Path
    experiment: Experiment
    setup: Setup
    parameters: pd.DataFrame  # one row per draw (point)
    draws: pd.DataFrame  # arm x point: cost, qalys, population
    ceac: pd.DataFrame
    evpi: pd.DataFrame
    evppi: pd.DataFrame
    summary: dict


def _write(out: Path, name: str, table: pd.DataFrame, parquet: bool = False) -> None:
    if parquet:
        atomic_write(out / f"{name}.parquet", lambda p: table.to_parquet(p, index=False))
    else:
        write_csv(out / f"{name}.csv", table)


def decisions(table: pd.DataFrame, thresholds: tuple[float, ...], ev: pd.DataFrame) -> list[dict]:
    """At each decision threshold: the frontier arm, its probability, and the EVPI."""
    out = []
    for lam in thresholds:
        rows = table[table["threshold"] == lam]
        best = rows[rows["on_frontier"]].iloc[0]
        e = ev[ev["threshold"] == lam].iloc[0]
        out.append({"threshold": lam, "best_arm": best["arm"], "probability": float(best["probability"]),
                    "probabilities": dict(zip(rows["arm"], rows["probability"].astype(float), strict=True)),
                    "evpi": float(e["evpi"]), "evpi_per_person": float(e["evpi_per_person"])})
    return out


def findings(summary: dict) -> list[str]:
    """Plain-language sentences for each decision threshold."""
    lines = []
    for d in summary["decisions"]:
        lines.append(
            f"At £{d['threshold']:,.0f} per QALY, '{d['best_arm']}' has the highest expected net benefit; "
            f"the probability that it is the most cost-effective is {d['probability']:.0%}. Resolving all "
            f"the uncertainty drawn would be worth £{d['evpi_per_person']:,.2f} per person (EVPI; "
            f"£{d['evpi']:,.0f} for the {summary['population']:,.0f} people simulated).")
    return lines


def section_html(summary: dict, ev_pp: pd.DataFrame) -> str:
    """The report fragment (``hhsim report`` includes ``psa*`` folders)."""
    esc = html.escape
    items = "".join(f"<li>{esc(s)}</li>" for s in summary["findings"])
    body = (f"<p>{summary['draws']} parameter draws x {summary['replications']} replication(s); "
            f"{esc(summary['perspective'])} costs.</p><ul>{items}</ul>")
    if len(ev_pp):
        rows = "".join(f"<tr><td>{esc(r.group)}</td><td>{esc(r.parameters)}</td><td>£{r.threshold:,.0f}</td>"
                       f"<td>£{r.evppi_per_person:,.2f}</td></tr>" for r in ev_pp.itertuples())
        body += ("<table class='t'><tr><th>group</th><th>parameters</th><th>threshold</th>"
                 f"<th>EVPPI per person</th></tr>{rows}</table>")
    return body


def run_psa(experiment: Experiment | str | Path | None = None, out: str | Path | None = None, *,
            draws: int | None = None, posterior: str | Path | None = None, workers: int | None = None,
            scheduler: str | None = None, resume: bool = False, progress: bool = False,
            seed: int | None = None, tenants: int | None = None, months: int | None = None,
            replications: int | None = None) -> PSAResults:
    """Draw the ``[psa]`` parameters (and/or a posterior), run every arm at every draw,
    and write the PSA's tables, summary and figures into ``out``."""
    started = time.perf_counter()
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    exp = exp.with_options(seed=seed, tenants=tenants, months=months, replications=replications)
    if exp.psa is None:
        exp = exp.model_copy(update={"psa": PSA()})
    post = read_posterior(posterior) if posterior is not None else None
    st = setup(exp, tuple(c for c in post.columns if c != "weight") if post is not None else ())
    n = draws or st.draws
    rng = rng_for(exp.experiment.seed)
    params = draw_parameters(st, n, rng)
    if post is not None:
        params = pd.concat([params, resample_posterior(post, n, rng)], axis=1)
    points = params.to_dict("records")
    out = Path(out) if out is not None else default_out(exp, "psa")
    res = run_points(exp, points, out, workers=workers, scheduler=scheduler, resume=resume,
                     progress=progress, manifest={"psa": {"draws": n, "posterior": str(posterior or "")}})
    arms = [a.name for a in exp.arms]
    table = per_draw(res.records, st.perspective)
    params = params.assign(point=range(n))
    thresholds = tuple(sorted(set(st.thresholds) | set(st.decision_thresholds)))
    ce = acceptability(table, arms, thresholds)
    ev = evpi(table, arms, thresholds)
    ev_pp = evppi(table, params, arms, exp.baseline, st.groups, st.decision_thresholds)
    inc = incremental(table, arms, exp.baseline)
    e = exp.experiment
    summary = {"experiment": e.name, "draws": n, "replications": e.replications,
               "tenants": exp.population.tenants, "months": e.months, "seed": e.seed,
               "perspective": st.perspective, "arms": arms, "baseline": exp.baseline,
               "population": float(table["population"].mean()),
               "parameters": {k: getattr(d, "description", "") for k, d in st.distributions.items()},
               "posterior": str(posterior) if posterior is not None else None,
               "decision_thresholds": list(st.decision_thresholds)}
    summary["decisions"] = decisions(ce, st.decision_thresholds, ev)
    summary["findings"] = findings(summary)
    summary["warnings"] = [
        f"EVPPI of '{g}' needs at least {DRAWS_PER_COEFFICIENT * SPLINE_DF * len(m)} draws ({n} given): "
        "left blank" for g, m in st.groups.items() if not evppi_possible(n, len(m))]
    _write(out, "parameters", params, parquet=True)
    _write(out, "draws", table, parquet=True)
    _write(out, "incremental", inc, parquet=True)
    _write(out, "ceac", ce)
    _write(out, "evpi", ev)
    _write(out, "evppi", ev_pp)
    write_json(out / "psa.json", summary)
    summary["plots"] = plot_psa(out)
    summary["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    write_json(out / "psa.json", summary)
    atomic_write(out / "section.html", lambda p: p.write_text(section_html(summary, ev_pp)))
    return PSAResults(out, exp, st, params, table, ce, ev, ev_pp, summary)
