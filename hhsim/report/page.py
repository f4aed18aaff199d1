"""The report page: one self-contained HTML file (figures embedded as base64 PNG).

The page is a list of sections, each made by a *section builder*: a function taking the
``Batch`` and returning a ``Section`` (or None to leave it out). ``SECTIONS`` is the
built-in list; ``write_report(out, extra=[...])`` appends more, so later analyses add their
own section without touching this module. Results folders named ``sensitivity*`` inside
the output folder get a section each automatically: their PNG figures, and a
``section.html`` fragment (written by hhsim) if there is one.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hhsim.analysis.cost_effectiveness import pounds
from hhsim.analysis.tables import TABLES
from hhsim.batch.files import atomic_write
from hhsim.core.version import package_version
from hhsim.report import paramtable
from hhsim.report.batch import Batch, load_batch
from hhsim.report.figures import FIGURES, save_figures
from hhsim.report.findings import findings


@dataclass(frozen=True)
class Section:
    """A part of the page: its anchor id, heading and HTML body (escaped by its builder)."""

    id: str
    title: str
    body: str


SectionBuilder = Callable[[Batch], "Section | None"]
esc = html.escape


#: Column headers in words, for the code names of the written tables.
HEADERS = {"mean": "mean", "mc_low": "95% MC low", "mc_high": "95% MC high",
           "difference": "difference from the baseline", "diff_mc_low": "difference, 95% MC low",
           "diff_mc_high": "difference, 95% MC high", "care_cost": "care cost",
           "scale": "cost scale at break-even", "nhs_saving": "NHS care saving", "roi": "ROI (£ saved per £)",
           "qalys_gained": "QALYs gained", "inmb": "incremental NMB", "nmb": "NMB",
           "break_even_cost_per_served": "break-even cost per person served",
           "cost_per_served": "cost per person served", "d_qalys": "QALYs gained", "d_cost": "extra cost"}


def header(name: str) -> str:
    """A column's header in words: ``mc_low`` -> "95% MC low", ``inmb_20000`` ->
    "incremental NMB at £20,000/QALY", ``saving_low`` -> "saving, 95% MC low"."""
    if name in HEADERS:
        return HEADERS[name]
    for code, words in (("inmb_", "incremental NMB"), ("nmb_", "NMB")):
        if name.startswith(code) and name[len(code):].isdigit():
            return f"{words} at £{int(name[len(code):]):,}/QALY"
    for end, words in (("_low", "95% MC low"), ("_high", "95% MC high")):
        if name.endswith(end) and name != end:
            return f"{header(name[:-len(end)])}, {words}"
    return name.replace("_", " ")


def table_html(df: pd.DataFrame, money: Sequence[str] = (), digits: dict[str, int] | None = None) -> str:
    """A DataFrame as an HTML table with headers in words (``header``): ``money`` columns
    as £, others with ``digits`` decimals."""
    digits = digits or {}
    fmt = {c: pounds for c in money if c in df}
    for c in df.columns:
        if c not in fmt and pd.api.types.is_float_dtype(df[c]):
            fmt[c] = (lambda d: lambda x: "" if pd.isna(x) else f"{x:,.{d}f}")(digits.get(c, 1))
    shown = df.copy()
    for c, f in fmt.items():
        shown[c] = shown[c].map(lambda x, f=f: "" if pd.isna(x) else f(x))
    shown.columns = [header(str(c)) for c in shown.columns]
    return shown.to_html(index=False, escape=True, border=0, classes="t", na_rep="")


def _interval(mean: float, lo: float, hi: float, f: Callable[[float], str]) -> str:
    return f(mean) + ("" if not np.isfinite(lo) else f" ({f(lo)} to {f(hi)})")


def payback_label(b: Batch) -> str:
    """Payback is counted in model steps: months, or years for a yearly model."""
    return "payback year" if b.settings.months_per_step == 12 else "payback month"


def summary_section(b: Batch) -> Section:
    e = b.experiment["experiment"]
    pop = b.records["population"].iloc[0]
    prices = (f"costs in {esc(e['price_year'])} prices, discounted at {e['discount']['costs']:.1%} a year "
              f"(costs) and {e['discount']['effects']:.1%} (effects)")
    if b.plan.get("mode") == "cohort":
        run = (f"Cohort mode: the expected values of a cohort of {pop:,.0f} people alike, computed exactly; "
               f"{e['months']} months; each arm run once; {prices}. Nothing is sampled, so there are no "
               "Monte-Carlo intervals: their columns are empty.")
    else:
        run = (f"{int(b.records['tenants'].iloc[0]):,} tenants simulated, representing {pop:,.0f} people; "
               f"{e['months']} months; {e['replications']} replication(s) per arm; {prices}. Intervals are "
               "95% Monte-Carlo intervals: simulation noise with these parameters, not parameter "
               "uncertainty.")
    intro = f"<p><b>{esc(e['name'])}</b>: {esc(e.get('description', ''))}</p><p>{run}</p>"
    if not b.others:
        return Section("summary", "Summary", intro + "<p>One arm only: nothing to compare.</p>")
    econ = b.summaries["economics"]
    ce = b.analysis["cost_effectiveness"]
    ce = ce[ce["perspective"] == "public_sector"].set_index("arm")
    nmb = b.analysis["nmb"]
    nmb = nmb[nmb["perspective"] == "public_sector"]
    rows = []
    for r in econ.itertuples(index=False):
        c = ce.loc[r.arm]
        row = {"arm": r.arm,
               "NHS care saving": _interval(r.nhs_saving, r.nhs_saving_low, r.nhs_saving_high, pounds),
               "intervention cost": _interval(r.intervention_cost, r.intervention_cost_low,
                                              r.intervention_cost_high, pounds),
               "net saving": _interval(r.net_saving, r.net_saving_low, r.net_saving_high, pounds),
               "ROI (£ saved per £)": _interval(r.roi, r.roi_low, r.roi_high, lambda x: f"{x:,.2f}"),
               payback_label(b): "none" if np.isnan(r.payback_month) else f"{r.payback_month:.0f}",
               "QALYs gained": _interval(c["d_qalys"], c["d_qalys_low"], c["d_qalys_high"],
                                         lambda x: f"{x:,.2f}"),
               "frontier": c["status"] + (f" vs {c['comparator']}" if isinstance(c["comparator"], str)
                                          else ""),
               "ICER £/QALY": "" if not np.isfinite(c["icer"]) else
               _interval(c["icer"], c["icer_low"], c["icer_high"], lambda x: f"£{x:,.0f}")}
        for t in nmb[nmb["arm"] == r.arm].itertuples(index=False):
            row[f"incremental NMB at £{t.threshold:,.0f}"] = _interval(t.inmb, t.inmb_low, t.inmb_high,
                                                                       pounds)
        rows.append(row)
    table = table_html(pd.DataFrame(rows))
    return Section("summary", "Summary", intro + f"<p>Against {esc(b.baseline)}, paired by replication "
                   "(discounted; ICER and NMB with public-sector costs):</p>" + table)


def findings_section(b: Batch) -> Section | None:
    found = findings(b)
    if not found:
        return None
    body = "".join(f"<h3>{esc(arm)}</h3><ul>" + "".join(f"<li>{esc(s)}</li>" for s in sentences) + "</ul>"
                   for arm, sentences in found.items())
    return Section("findings", "Findings in plain language", body)


def figures_section(b: Batch) -> Section:
    saved = save_figures(b, b.out / "figures", svg=b.svg)
    blocks = []
    for spec in FIGURES:
        if spec.name not in saved:
            continue
        blocks.append(f"<figure id='fig-{spec.name}'><h3>{esc(spec.title)}</h3>"
                      f"{img(saved[spec.name], spec.title)}"
                      f"<figcaption>{esc(spec.caption)}"
                      + (f" (Also as <code>figures/{spec.name}.svg</code>.)" if b.svg else "")
                      + "</figcaption></figure>")
    return Section("figures", "Figures", "".join(blocks))


def img(path: Path, alt: str) -> str:
    """An <img> with the PNG embedded as a data URI."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{data}'>"


def categories_section(b: Batch) -> Section:
    """Mean discounted cost per arm and category (activity), with the paired difference."""
    r = b.records
    cols = [f"cost_{c[len('use_'):-len('_disc')]}" for c in r.columns
            if c.startswith("use_") and c.endswith("_disc")]
    cols = [c for c in cols if r[c].abs().sum() > 0]
    rows = pd.DataFrame([(arm, c) for arm in b.arms for c in cols], columns=["arm", "outcome"])
    # an arm without an intervention has no mean cost of it
    s = rows.merge(b.summaries["summary"], on=["arm", "outcome"]).dropna(subset=["mean"])
    s["category"] = s["outcome"].str.removeprefix("cost_").str.replace("_", " ")
    keep = ["arm", "category", "mean", "mc_low", "mc_high"]
    keep += [c for c in ("difference", "diff_mc_low", "diff_mc_high") if c in s]
    return Section("categories", "Costs by category",
                   "<p>Mean discounted cost per arm and category (NHS care, social care and each "
                   "intervention's costs), with 95% MC intervals and the paired difference from the "
                   "baseline.</p>" + table_html(s[keep], money=keep[2:]))


def payers_section(b: Batch) -> Section | None:
    p = b.analysis["payers"]
    if p.empty or "saving" not in p:
        return None
    p = p[p["discounted"]][["arm", "payer", "care_cost", "intervention_cost", "cost", "saving",
                            "saving_low", "saving_high"]]
    return Section("payers", "Who pays and who saves",
                   "<p>Mean discounted cost per payer and arm; saving = baseline minus arm "
                   "(negative: the payer spends more).</p>"
                   + table_html(p, money=["care_cost", "intervention_cost", "cost", "saving",
                                          "saving_low", "saving_high"]))


def budget_section(b: Batch) -> Section | None:
    bi = b.analysis["budget_impact"]
    if bi.empty or "difference" not in bi:
        return None
    bi = bi[bi["arm"] != b.baseline]
    wide = bi.pivot_table(index=["arm", "payer", "component"], columns="year", values="difference",
                          aggfunc="first", sort=False)
    wide.columns = [f"year {y}" for y in wide.columns]
    wide["all years"] = wide.sum(axis=1)
    wide = wide.reset_index()
    body = ("<p>Undiscounted change in spending against the baseline (£, + pays more), by payer and "
            "year. <i>bed days</i> is the value of hospital bed days: beds freed are refilled, so this is "
            "capacity released, not cash.</p>" + table_html(wide, money=[c for c in wide if "year" in c]))
    cap = b.analysis["capacity"]
    if not cap.empty:
        cw = cap.pivot_table(index=["arm", "measure"], columns="year", values="freed", aggfunc="first",
                             sort=False)
        cw.columns = [f"year {y}" for y in cw.columns]
        cw["all years"] = cw.sum(axis=1)
        body += ("<h3>Capacity released (counts, not money)</h3><p>Baseline minus arm, people "
                 "represented, mean over replications.</p>" + table_html(cw.reset_index()))
    return Section("budget", "Budget impact", body)


def break_even_section(b: Batch) -> Section | None:
    be = b.analysis["break_even"]
    if be.empty:
        return None
    cols = [c for c in ("arm", "target", "perspective", "scale", "scale_low", "scale_high",
                        "intervention_cost", "break_even_cost", "cost_per_served",
                        "break_even_cost_per_served") if c in be]
    return Section("break-even", "Break-even",
                   "<p>The factor by which every intervention cost of an arm could be multiplied (a unit "
                   "cost, a budget) before ROI falls to 1 or the ICER reaches each threshold; all else "
                   "equal. For an effect size or caseload, see <code>hhsim.analysis.break_even."
                   "search_break_even</code> (reruns).</p>"
                   + table_html(be[cols], money=["intervention_cost", "break_even_cost", "cost_per_served",
                                                 "break_even_cost_per_served"],
                                digits={"scale": 2, "scale_low": 2, "scale_high": 2}))


GROUP_MEASURES = ("qalys_gained", "net_saving", "nhs_saving", "intervention_cost")


def groups_section(b: Batch) -> Section | None:
    ge = b.analysis["group_economics"]
    if ge.empty:
        return None
    ge = ge[ge["measure"].isin(GROUP_MEASURES) | ge["measure"].str.startswith("inmb_")]
    body = ("<p>Per group of tenants at the start: the change against the baseline per 1,000 people in "
            "the group (discounted; QALYs, or £). An intervention's staff, beds and places are shared "
            "among the people it served, in proportion to the months served, so the groups add up "
            "to the whole.</p>")
    for dim, g in ge.groupby("dimension", sort=False):
        wide = g.pivot_table(index=["arm", "group"], columns="measure", values="per_1000", aggfunc="first",
                             sort=False).reset_index()
        people = g.drop_duplicates(["arm", "group"])[["arm", "group", "people"]]
        wide = people.merge(wide, on=["arm", "group"])
        money = [c for c in wide if c not in ("arm", "group", "people", "qalys_gained")]
        table = table_html(wide, money=money, digits={"qalys_gained": 2, "people": 0})
        opened = " open" if dim == "deprivation_decile" else ""
        body += f"<details{opened}><summary>{esc(dim.replace('_', ' '))}</summary>{table}</details>"
    return Section("groups", "Results by group", body)


def experiment_section(b: Batch) -> Section:
    e = b.experiment["experiment"]
    params = paramtable.default_parameters() if e.get("model", "default") == "default" else []
    table = pd.DataFrame([{"parameter": p.name, "value": paramtable.short_value(p.value), "unit": p.unit,
                           "price year": p.price_year or "", "status": paramtable.status_of(p),
                           "source": p.source} for p in params])
    defaults = (f"<details><summary>Default parameters ({len(params)}; overrides above take precedence)"
                f"</summary>{table_html(table)}</details>"
                if params else "<p>The experiment uses its own model file; see its parameters there.</p>")
    return Section("experiment", "Experiment and parameters",
                   f"<p>Price year <b>{esc(e['price_year'])}</b>; thresholds "
                   f"{', '.join(f'£{t:,.0f}' for t in e['thresholds'])} per QALY; baseline arm "
                   f"<b>{esc(e['baseline'])}</b>.</p><h3>The experiment (as validated)</h3>"
                   f"<pre>{esc(json.dumps(b.experiment, indent=2))}</pre>"
                   f"<details><summary>Interventions as run (defaults, file and overrides merged)</summary>"
                   f"<pre>{esc(json.dumps(b.interventions, indent=2))}</pre></details>{defaults}")


def provenance_section(b: Batch) -> Section:
    m = b.manifest
    rows = [("hhsim version (runs)", m.get("hhsim_version")), ("hhsim version (report)", package_version()),
            ("model version", m.get("model_version", "before model versions (hhsim 0.2.0 or earlier)")),
            ("Python / numpy / Mesa", f"{m.get('python')} / {m.get('numpy')} / {m.get('mesa')}"),
            ("experiment seed", m.get("seed")), ("seeds", m.get("seeds")),
            ("runs", f"{len(b.records)} ({len(b.arms)} arms x {m.get('replications')} replications)"),
            ("experiment digest", m.get("experiment_digest")), ("batch started", m.get("started")),
            ("report written", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")),
            ("output folder", str(b.out.resolve())),
            ("tables", ", ".join(f"{t}.csv" for t in TABLES))]
    body = "<table class='t'>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in rows)
    return Section("provenance", "Provenance", body + "</table>")


#: Result folders inside an output folder that get a section each.
FOLDERS = ("sensitivity*", "psa*", "calibration*")


def sensitivity_sections(b: Batch) -> list[Section]:
    """A section per ``sensitivity*``, ``psa*`` or ``calibration*`` folder of the output
    folder: its ``section.html`` fragment, if any, and its PNG figures."""
    out = []
    folders = [p for pattern in FOLDERS for p in sorted(b.out.glob(pattern)) if p.is_dir()]
    for folder in folders:
        fragment = folder / "section.html"
        body = fragment.read_text() if fragment.exists() else ""
        body += "".join(f"<figure>{img(png, png.stem)}<figcaption>{esc(png.stem.replace('_', ' '))}"
                        "</figcaption></figure>" for png in sorted(folder.rglob("*.png")))
        if body:
            title = folder.name.replace("_", " ").replace("-", " ").capitalize()
            out.append(Section(folder.name, title, body))
    return out


SECTIONS: list[SectionBuilder] = [summary_section, findings_section, figures_section, categories_section,
                                  payers_section, budget_section, break_even_section, groups_section]
CLOSING: list[SectionBuilder] = [experiment_section, provenance_section]

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table.t{border-collapse:collapse;font-size:.85em;margin:.5em 0} .t th,.t td{padding:.25em .6em;
border-bottom:1px solid #e4e4e4;text-align:right} .t td:first-child,.t th:first-child{text-align:left}
figure{margin:1.5em 0} figure img{max-width:100%;height:auto} figcaption{font-size:.9em;color:#555}
pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.8em;max-height:30em}
nav a{margin-right:1em} details{margin:.5em 0}
"""


def render(b: Batch, sections: Sequence[Section]) -> str:
    """The whole page."""
    name = esc(b.experiment["experiment"]["name"])
    nav = "".join(f"<a href='#{esc(s.id)}'>{esc(s.title)}</a>" for s in sections)
    body = "".join(f"<section id='{esc(s.id)}'><h2>{esc(s.title)}</h2>{s.body}</section>" for s in sections)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>hhsim report: {name}</title>"
            f"<style>{STYLE}</style></head><body><h1>hhsim report: {name}</h1><nav>{nav}</nav>{body}"
            "</body></html>")


def write_report(out: str | Path, extra: Sequence[SectionBuilder] = (), svg: bool = False) -> Path:
    """Write ``out/report.html`` (and ``out/figures/*.png``, and ``.svg`` with ``svg``) for a
    finished output folder; ``extra`` section builders come after the built-in ones and any
    sensitivity folders."""
    b = load_batch(out)
    b.svg = svg
    sections = [s for build in SECTIONS for s in [build(b)] if s is not None]
    sections += sensitivity_sections(b)
    sections += [s for build in [*extra, *CLOSING] for s in [build(b)] if s is not None]
    path = b.out / "report.html"
    atomic_write(path, lambda p: p.write_text(render(b, sections), encoding="utf-8"))
    return path
