"""``hhsim psa``: draw, run, analyse, write.

The experiment seed (``seed`` overrides it) seeds the draws and every run; replication ``r``
uses the same random numbers at every draw and in every arm (common random numbers), so the
spread between draws is parameter uncertainty, with the Monte-Carlo noise of one set of
random numbers on top. Runs go through the batch layer: a local process pool or a Dask
cluster, written as they finish, resumable.
"""

from __future__ import annotations

import hashlib
import html
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from hhsim.analysis.precision import MIN_REPLICATIONS, Precision, assess, next_round, stop_reason
from hhsim.analysis.sweep import point_outcomes
from hhsim.batch.files import atomic_write, write_csv, write_json
from hhsim.batch.pipeline import default_out
from hhsim.batch.points import run_points
from hhsim.core.errors import HhsimError, warn
from hhsim.core.parameters import target_of
from hhsim.core.version import MODEL_VERSION
from hhsim.experiment.outputs import check_output
from hhsim.experiment.plan import Plan, compile_plan
from hhsim.experiment.psa_section import Setup, setup
from hhsim.experiment.schema import PSA, Experiment
from hhsim.studies.calibration.ship import Shipped, shipped_posteriors
from hhsim.studies.psa.analysis import (
    acceptability,
    draws_for_evpi,
    evpi,
    evppi,
    evppi_above_evpi,
    incremental,
    per_draw,
)
from hhsim.studies.psa.draws import psa_draws, read_posterior
from hhsim.studies.psa.plots import plot_psa


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


def decisions(table: pd.DataFrame, thresholds: tuple[float, ...], ev: pd.DataFrame, draws: int) -> list[dict]:
    """At each decision threshold: the frontier arm, its probability, and EVPI with its
    Monte-Carlo error (and the draws projected to give it within +/- 10%)."""
    out = []
    for lam in thresholds:
        rows = table[table["threshold"] == lam]
        best = rows[rows["on_frontier"]].iloc[0]
        e = ev[ev["threshold"] == lam].iloc[0]
        out.append({"threshold": lam, "best_arm": best["arm"], "probability": float(best["probability"]),
                    "probabilities": dict(zip(rows["arm"], rows["probability"].astype(float), strict=True)),
                    **{k: float(e[k]) for k in ev.columns if k.startswith("evpi")},
                    "evpi_distinguishable": bool(e["distinguishable"]),
                    "evpi_draws_for_10_percent": draws_for_evpi(e, draws)})
    return out


def _evpi_sentence(d: dict, draws: int, population: float) -> str:
    """What EVPI at one decision threshold is, and how sure the draws make it."""
    if d["evpi"] == 0:  # exactly: the frontier arm was best in every draw
        unseen = 1 - 0.05 ** (1 / draws)  # the largest share of draws an arm could win unseen (95%)
        return (f"EVPI is £0: no arm did better than '{d['best_arm']}' in any of the {draws} draws, so "
                f"resolving the uncertainty drawn would change no decision (with {draws} draws, an arm that "
                f"is best in up to {unseen:.0%} of cases could have gone unseen).")
    text = (f"Resolving all the uncertainty drawn would be worth £{d['evpi_per_person']:,.2f} per person "
            f"(EVPI; 95% interval £{d['evpi_per_person_low']:,.2f} to £{d['evpi_per_person_high']:,.2f} over "
            f"the {draws} draws; £{d['evpi']:,.0f} for the {population:,.0f} people simulated)")
    need = d["evpi_draws_for_10_percent"]
    if not d["evpi_distinguishable"]:
        return text + f", which cannot be told from zero at {draws} draws."
    if need is not None and need > draws:
        return text + f"; about {need:,} draws would give it within ±10%."
    return text + "."


def findings(summary: dict) -> list[str]:
    """Plain-language sentences for each decision threshold."""
    return [f"At £{d['threshold']:,.0f} per QALY, '{d['best_arm']}' has the highest expected net benefit; "
            f"the probability that it is the most cost-effective is {d['probability']:.0%}. "
            + _evpi_sentence(d, summary["draws"], summary["population"]) for d in summary["decisions"]]


def evppi_findings(ev_pp: pd.DataFrame, draws: int) -> list[str]:
    """One line per group and decision threshold (£ per person, 95% interval), or one line
    per group saying why its EVPPI was not computed."""
    lines = []
    for group, rows in ev_pp.groupby("group", sort=False):
        if rows["note"].iloc[0]:
            lines.append(f"{group}: {rows['note'].iloc[0]}.")
            continue
        for r in rows.itertuples():
            zero = "" if r.distinguishable else f", cannot be told from zero at {draws} draws"
            lines.append(f"{group} at £{r.threshold:,.0f}/QALY: £{r.evppi_per_person:,.2f} (95% interval "
                         f"£{r.evppi_per_person_low:,.2f} to £{r.evppi_per_person_high:,.2f}){zero}  "
                         f"({r.parameters})")
    return lines


def section_html(summary: dict) -> str:
    """The report fragment (``hhsim report`` includes ``psa*`` folders)."""
    esc = html.escape
    items = "".join(f"<li>{esc(s)}</li>" for s in summary["findings"])
    body = (f"<p>{summary['draws']} parameter draws x {summary['replications']} replication(s); "
            f"{esc(summary['perspective'])} costs.</p><ul>{items}</ul>")
    if summary["evppi_findings"]:
        lines = "".join(f"<li>{esc(s)}</li>" for s in summary["evppi_findings"])
        body += f"<p>EVPPI, £ per person (95% interval):</p><ul>{lines}</ul>"
    if summary["warnings"]:
        body += "".join(f"<p><strong>Warning:</strong> {esc(w)}</p>" for w in summary["warnings"])
    return body


def shipped_draws(exp: Experiment, plan_version: str = MODEL_VERSION) -> tuple[list[Shipped], list[str]]:
    """The shipped posteriors (``hhsim.studies.calibration.ship``) a PSA of ``exp`` draws
    from, and one-line notes of what they do not apply to. They are posteriors of the
    default model: an experiment with its own model file draws none of them (noted). Of the
    rest, a parameter the experiment gives its own ``[psa]`` distribution (or Dirichlet
    share), or a value in its ``[parameters]`` or an arm's, is left out (noted, with the
    parameters). A posterior calibrated at another model version is drawn, with a note."""
    ships = shipped_posteriors()
    if not ships:
        return [], []
    if exp.experiment.model != "default":
        names = ", ".join(s.name for s in ships)
        return [], [f"the shipped posterior ({names}) is of the default model, and "
                    f"this experiment uses its own model file ({exp.experiment.model}): not drawn (give "
                    "--posterior to draw from a posterior of that model)"]
    own = {target_of(n) for n in setup(exp, None).names}
    fixed = {target_of(n) for n in set(exp.parameters).union(*(a.parameters for a in exp.arms))}
    out, notes = [], []
    for s in ships:
        if s.model_version != plan_version:
            notes.append(f"the shipped posterior '{s.name}' was calibrated at model version "
                         f"{s.model_version or '?'}, and the model is now version {plan_version}: calibrate "
                         "again and ship the new posterior")
        mine = [p for p in s.parameters if p in own]
        if mine:
            notes.append(f"the [psa] distributions of {', '.join(mine)} take precedence over the shipped "
                         f"posterior '{s.name}'")
        set_here = [p for p in s.parameters if p in fixed and p not in own]
        if set_here:
            notes.append(f"the experiment's own values of {', '.join(set_here)} (in [parameters] or an arm) "
                         f"are kept, not drawn from the shipped posterior '{s.name}'")
        keep = [p for p in s.parameters if p not in own and p not in fixed]
        if keep:
            out.append(replace(s, rows=s.rows[[*keep, "weight"]]))
    return out, notes


def run_psa(experiment: Experiment | str | Path | None = None, out: str | Path | None = None, *,
            draws: int | None = None, posterior: str | Path | None = None, workers: int | None = None,
            scheduler: str | None = None, resume: bool = False, progress: bool = False,
            seed: int | None = None, tenants: int | None = None, months: int | None = None,
            replications: int | None = None, precision: Precision | None = None,
            shipped: bool = True) -> PSAResults:
    """Draw the ``[psa]`` parameters (and/or a posterior), run every arm at every draw,
    and write the PSA's tables, summary and figures into ``out``. Without ``posterior``, the
    posteriors shipped in the package are drawn (whole rows) for the parameters the
    experiment does not give a distribution or a value of its own (``shipped_draws``; not
    with ``shipped=False``); ``posterior`` replaces them. With ``precision``
    (``hhsim.analysis.precision``), draws are added in rounds until the mean over draws of
    the outcome meets it for every arm compared (``precision.max_replications`` is then the
    most draws); draw i is the same however many there are (``psa_draws``)."""
    started = time.perf_counter()
    plan = compile_plan(experiment, seed=seed, tenants=tenants, months=months, replications=replications)
    ships, notes = (shipped_draws(plan.experiment, plan.model_version) if posterior is None and shipped
                    else ([], []))
    for note in notes:
        warn(note)
    if plan.experiment.psa is None and posterior is None and not ships:
        raise HhsimError(str(plan.source or "experiment"), "has no [psa] section",
                         "add one with parameters (docs/psa.md), or give --posterior")
    if plan.experiment.psa is None:
        plan = replace(plan, experiment=plan.experiment.model_copy(update={"psa": PSA()}))
    exp = plan.experiment
    post = read_posterior(posterior) if posterior is not None else None
    frames = [post] if post is not None else [s.rows for s in ships]
    st = setup(exp, tuple(c for f in frames for c in f.columns if c != "weight"))
    n = draws or st.draws
    followed = [a.name for a in exp.arms if a.name != exp.baseline]
    if precision is not None:
        if not followed:
            raise HhsimError("--precision", "a PSA of one arm has no difference to follow", "add an arm")
        check_output(precision.outcome, [a.name for a in exp.arms], exp.baseline, followed[0],
                     "--precision-outcome")
        n = min(max(n, MIN_REPLICATIONS), precision.max_replications)
    out = Path(out) if out is not None else default_out(plan.name, "psa")
    digest = _digest(plan, post, ships)
    used = [{"name": s.name, "sha256": s.sha256, "parameters": list(s.parameters)} for s in ships]
    rounds: list[int] = []
    while True:
        params = psa_draws(st, n, exp.experiment.seed, frames)
        res = run_points(plan, params.to_dict("records"), out, workers=workers, scheduler=scheduler,
                         resume=resume or bool(rounds), progress=progress, digest=digest, command="hhsim psa",
                         manifest={"psa": {"draws": n, "posterior": str(posterior or ""),
                                           **({"shipped_posterior": used} if used else {})}})
        if precision is None:
            break
        rounds.append(n)
        values = point_outcomes(res.records, [precision.outcome], exp.baseline, followed)
        verdicts = {arm: assess(values.loc[values["arm"] == arm].sort_values("point")["value"], precision)
                    for arm in followed}
        more = next_round(list(verdicts.values()), n, precision.max_replications)
        if more == n:
            break
        n = more
    arms = [a.name for a in exp.arms]
    table = per_draw(res.records, st.perspective)
    params = params.assign(point=range(n))
    thresholds = tuple(sorted(set(st.thresholds) | set(st.decision_thresholds)))
    ce = acceptability(table, arms, thresholds)
    ev = evpi(table, arms, thresholds, seed=exp.experiment.seed)
    ev_pp = evppi(table, params, arms, exp.baseline, st.groups, st.decision_thresholds,
                  seed=exp.experiment.seed)
    inc = incremental(table, arms, exp.baseline)
    e = exp.experiment
    summary = {"experiment": e.name, "model_version": plan.model_version, "draws": n,
               "replications": e.replications,
               "tenants": exp.population.tenants, "months": e.months, "seed": e.seed,
               "perspective": st.perspective, "arms": arms, "baseline": exp.baseline,
               "population": float(table["population"].mean()),
               "parameters": {k: getattr(d, "description", "") for k, d in st.distributions.items()},
               "posterior": str(posterior) if posterior is not None else None,
               "shipped_posterior": used, "posterior_notes": notes,
               "decision_thresholds": list(st.decision_thresholds)}
    if precision is not None:
        stopped = stop_reason(verdicts, n, precision.max_replications, precision, "draws")
        summary["precision"] = {"outcome": precision.outcome, "target": precision.describe(),
                                "rounds": rounds, "stopped": stopped}
    summary["decisions"] = decisions(ce, st.decision_thresholds, ev, n)
    summary["findings"] = findings(summary)
    summary["evppi_findings"] = evppi_findings(ev_pp, n)
    summary["warnings"] = evppi_above_evpi(ev, ev_pp)
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
    atomic_write(out / "section.html", lambda p: p.write_text(section_html(summary)))
    return PSAResults(out, exp, st, params, table, ce, ev, ev_pp, summary)


def _digest(plan: Plan, posterior: pd.DataFrame | None, ships: Sequence[Shipped] = ()) -> str:
    """What identifies a PSA's runs, whatever its number of draws: the experiment, its
    ``[psa]`` distributions (not ``draws``), the posterior drawn from (a shipped one by its
    name, file digest and the columns drawn), and the version."""
    psa = plan.experiment.psa
    spec = psa.model_dump(mode="json", exclude={"draws"}) if psa is not None else {}
    post = (hashlib.sha256(pd.util.hash_pandas_object(posterior, index=True).to_numpy().tobytes()).hexdigest()
            if posterior is not None else None)
    shipped = {"shipped": [[s.name, s.sha256, list(s.parameters)] for s in ships]} if ships else {}
    text = json.dumps({"psa": spec, "posterior": post, **shipped}, sort_keys=True, default=str)
    experiment, _, version = plan.digest.rpartition(":")
    return f"{experiment}:psa-{hashlib.sha256(text.encode()).hexdigest()}:{version}"
