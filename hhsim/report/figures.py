"""The report's figures (matplotlib, Agg backend), each saved as PNG and SVG.

Every figure function takes a ``Batch`` and returns a matplotlib Figure, or None when it
has nothing to show (e.g. one arm only). ``FIGURES`` lists them in report order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from hhsim.analysis.budget_impact import BED_DAYS, CASH
from hhsim.analysis.ceac import RUN_LEVEL_LABEL, ceac
from hhsim.analysis.cost_effectiveness import with_cost
from hhsim.analysis.economics import cash_savings, per_1000
from hhsim.analysis.pairing import paired
from hhsim.batch.files import atomic_write
from hhsim.core.accounting import PAYERS
from hhsim.report.batch import Batch

PAYER_LABELS = {"nhs": "NHS", "social_care": "Social care", "housing_provider": "Housing provider",
                "local_authority": "Local authority"}
POUNDS = FuncFormatter(lambda x, _: f"-£{abs(x):,.0f}" if x < 0 else f"£{x:,.0f}")


@dataclass(frozen=True)
class FigureSpec:
    """A figure of the report: file stem, title, caption (plain language) and builder."""

    name: str
    title: str
    caption: str
    build: Callable[[Batch], Figure | None]


def _errorbar(ax, x, mean, low, high, **kw) -> None:
    mean, low, high = (np.asarray(v, float) for v in (mean, low, high))
    err = np.vstack([mean - np.where(np.isfinite(low), low, mean),
                     np.where(np.isfinite(high), high, mean) - mean])
    ax.errorbar(x, mean, yerr=err, fmt="o", capsize=4, **kw)


def costs_by_category(b: Batch) -> Figure:
    """Stacked mean discounted cost per arm: by activity, and by payer."""
    r = b.records
    cats = [c[len("use_"):-len("_disc")] for c in r.columns if c.startswith("use_") and c.endswith("_disc")]
    means = b.summaries["summary"].pivot(index="arm", columns="outcome", values="mean")
    mean = means.loc[b.arms, [f"cost_{c}" for c in cats]]
    mean = mean.loc[:, mean.abs().sum() > 0]
    payer = means.loc[b.arms, [f"cost_{p}" for p in PAYERS]]
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8), constrained_layout=True)
    for ax, table, labels, title in (
            (axes[0], mean, [c[len("cost_"):].replace("_", " ") for c in mean.columns], "by category"),
            (axes[1], payer, [PAYER_LABELS[p] for p in PAYERS], "by payer")):
        bottom = np.zeros(len(table))
        colours = plt.cm.tab20(np.linspace(0, 1, max(len(table.columns), 2)))
        for k, col in enumerate(table.columns):
            ax.bar(table.index, table[col], bottom=bottom, label=labels[k], color=colours[k])
            bottom += table[col].to_numpy()
        ax.set_title(f"Mean cost per arm {title} (discounted)")
        ax.yaxis.set_major_formatter(POUNDS)
        ax.tick_params(axis="x", rotation=15)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def incremental(b: Batch) -> Figure | None:
    """Incremental cost (public sector) and QALYs against the baseline, with intervals."""
    ce = b.analysis["cost_effectiveness"]
    ce = ce[(ce["perspective"] == "public_sector") & (ce["arm"] != b.baseline)]
    if ce.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    x = np.arange(len(ce))
    for ax, col, title in ((axes[0], "d_cost", "Incremental cost, £ (public sector, discounted)"),
                           (axes[1], "d_qalys", "QALYs gained (discounted)")):
        _errorbar(ax, x, ce[col], ce[f"{col}_low"], ce[f"{col}_high"], color="C0")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(x, ce["arm"], rotation=15)
        ax.set_title(title + f"\nagainst {b.baseline}, 95% MC intervals", fontsize=10)
    axes[0].yaxis.set_major_formatter(POUNDS)
    return fig


def _draws(b: Batch) -> pd.DataFrame:
    return with_cost(b.records, "public_sector")


def ce_plane(b: Batch) -> Figure | None:
    """Paired replications (QALYs gained, incremental cost) per arm, with threshold lines."""
    diffs = paired(_draws(b), b.baseline, ["cost", "qalys"])
    if not diffs:
        return None
    fig, ax = plt.subplots(figsize=(7, 5.5), constrained_layout=True)
    for k, (arm, d) in enumerate(diffs.items()):
        ax.scatter(d["qalys"], d["cost"], s=14, alpha=0.5, color=f"C{k}", label=f"{arm} (replications)")
        ax.scatter(d["qalys"].mean(), d["cost"].mean(), s=90, marker="D", color=f"C{k}",
                   edgecolor="black", label=f"{arm} (mean)")
    q = np.concatenate([d["qalys"].to_numpy() for d in diffs.values()])
    span = np.array([min(q.min(), 0) * 1.1 - 1e-9, max(q.max(), 0) * 1.1 + 1e-9])
    for t, style in zip(b.settings.thresholds, ("--", ":", "-."), strict=False):
        ax.plot(span, t * span, ls=style, color="grey", lw=1, label=f"£{t:,.0f} per QALY")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("QALYs gained (discounted)")
    ax.set_ylabel("Incremental cost, public sector (discounted)")
    ax.yaxis.set_major_formatter(POUNDS)
    ax.set_title(f"Cost-effectiveness plane against {b.baseline}\n(each point a replication: "
                 "simulation noise, not parameter uncertainty)", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def acceptability(b: Batch) -> Figure | None:
    """Share of replications in which each arm has the highest NMB, over thresholds."""
    if len(b.arms) < 2:
        return None
    grid = np.linspace(0, max(100_000, 2 * max(b.settings.thresholds)), 101)
    curve = ceac(_draws(b), grid)
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for arm, g in curve.groupby("arm", sort=False):
        ax.plot(g["threshold"], g["probability"], label=arm)
    for t in b.settings.thresholds:
        ax.axvline(t, color="grey", ls=":", lw=1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("Threshold, £ per QALY")
    ax.set_ylabel("Share of replications")
    ax.xaxis.set_major_formatter(POUNDS)
    ax.set_title("Share of replications in which each arm has the highest NMB\n"
                 "(simulation noise only: not a CEAC of parameter uncertainty)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def budget_impact(b: Batch) -> Figure | None:
    """Undiscounted change in spending per payer and year against the baseline: cash bars,
    bed-day capacity (not cash) hatched."""
    bi = b.analysis["budget_impact"]
    if bi.empty or "difference" not in bi:
        return None
    bi = bi[bi["arm"] != b.baseline]
    arms = [a for a in b.others if a in set(bi["arm"])]
    fig, axes = plt.subplots(1, len(arms), figsize=(5.5 * len(arms), 4.5), squeeze=False,
                             sharey=True, constrained_layout=True)
    for ax, arm in zip(axes[0], arms, strict=True):
        a = bi[bi["arm"] == arm]
        years = sorted(a["year"].unique())
        width = 0.8 / len(PAYERS)
        for k, payer in enumerate(PAYERS):
            p = a[a["payer"] == payer].set_index(["component", "year"])["difference"]
            x = np.arange(len(years)) + (k - (len(PAYERS) - 1) / 2) * width
            cash = np.array([p.get((CASH, y), 0.0) for y in years])
            beds = np.array([p.get((BED_DAYS, y), 0.0) for y in years])
            ax.bar(x, cash, width, color=f"C{k}", label=f"{PAYER_LABELS[payer]} (cash)")
            if np.any(beds):
                ax.bar(x, beds, width, bottom=np.where(np.sign(beds) == np.sign(cash), cash, 0),
                       color="white", edgecolor=f"C{k}", hatch="///",
                       label=f"{PAYER_LABELS[payer]}: {BED_DAYS}")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(np.arange(len(years)), [f"year {y}" for y in years], rotation=30)
        ax.set_title(f"{arm}: change in spending against {b.baseline}\n(undiscounted; + pays more)",
                     fontsize=10)
        ax.yaxis.set_major_formatter(POUNDS)
    axes[0][0].legend(fontsize=7)
    return fig


def _decile_order(groups: pd.Series) -> list[str]:
    return sorted(groups.unique(), key=lambda g: int(g) if str(g).isdigit() else str(g))


def by_deprivation(b: Batch) -> Figure | None:
    """QALYs gained and net NHS saving per 1,000 people by deprivation decile."""
    ge = b.analysis["group_economics"]
    if ge.empty:
        return None
    ge = ge[ge["dimension"] == "deprivation_decile"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    order = _decile_order(ge["group"])
    width = 0.8 / max(len(b.others), 1)
    for ax, measure, title in ((axes[0], "qalys_gained", "QALYs gained per 1,000 people"),
                               (axes[1], "net_saving", "Net saving per 1,000 people\n(NHS care saving "
                                                       "- intervention cost)")):
        for k, arm in enumerate(b.others):
            g = ge[(ge["arm"] == arm) & (ge["measure"] == measure)].set_index("group").loc[order]
            people = g["people"].replace(0, np.nan)
            x = np.arange(len(order)) + (k - (len(b.others) - 1) / 2) * width
            _errorbar(ax, x, *(per_1000(g[c], people) for c in ("mean", "low", "high")), color=f"C{k}",
                      label=arm)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(np.arange(len(order)), order)
        ax.set_xlabel("IMD decile at the start (1 = most deprived)")
        ax.set_title(title + "\n(discounted, 95% MC intervals)", fontsize=10)
        ax.legend(fontsize=8)
    axes[1].yaxis.set_major_formatter(POUNDS)
    return fig


SERIES = [("cost:nhs_care", "NHS care cost per month, £"), ("admissions", "Admissions per month"),
          ("bed_days", "Hospital bed days per month"), ("mean_utility", "Mean utility (alive)")]


def time_series(b: Batch) -> Figure | None:
    """Monthly means over replications of key outcomes per arm, and cumulative net cash."""
    if b.monthly.empty:
        return None
    m = b.monthly.merge(b.records[["run_id", "arm"]], on="run_id")
    mean = m.groupby(["arm", "step"], sort=False).mean(numeric_only=True)
    step = "month" if b.settings.months_per_step == 1 else f"step ({b.settings.months_per_step} months)"
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5), constrained_layout=True)
    flat = axes.ravel()
    for ax, (col, title) in zip(flat, SERIES, strict=False):
        if col not in mean:
            ax.set_visible(False)
            continue
        for k, arm in enumerate(b.arms):
            s = mean.loc[arm, col]
            ax.plot(s.index, s.to_numpy(), color=f"C{k}", label=arm, lw=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(step)
    flat[0].yaxis.set_major_formatter(POUNDS)
    flat[0].legend(fontsize=8)
    ax = flat[4]
    cash = cash_savings(b.monthly, b.records, b.baseline)
    for k, arm in enumerate(b.arms):
        if arm in cash:
            net = cash[arm]["net_saving"].mean(axis=1)
            ax.plot(net.index, net.to_numpy(), color=f"C{k}", label=arm)
    ax.axhline(0, color="grey", lw=0.8)
    ax.yaxis.set_major_formatter(POUNDS)
    ax.set_title("Cumulative NHS care saving - intervention spend\n(undiscounted; payback where it "
                 "crosses 0)", fontsize=10)
    ax.set_xlabel(step)
    flat[5].set_visible(False)
    return fig


FIGURES = [
    FigureSpec("costs", "Costs by category and payer",
               "Mean discounted cost of each arm, split by what it was spent on and by who pays.",
               costs_by_category),
    FigureSpec("incremental", "Incremental cost and QALYs",
               "Each arm against the baseline of the same replication, with 95% Monte-Carlo intervals.",
               incremental),
    FigureSpec("ce_plane", "Cost-effectiveness plane",
               "Each point is one replication's paired difference from the baseline; lines are the "
               "thresholds (below a line: cost-effective at that threshold).", ce_plane),
    FigureSpec("acceptability", "Acceptability over thresholds (replications)",
               f"The {RUN_LEVEL_LABEL}. A probabilistic sensitivity analysis gives the real curve.",
               acceptability),
    FigureSpec("budget_impact", "Budget impact by payer and year",
               "Undiscounted change in spending against the baseline by year and payer. Hatched: the "
               "value of hospital bed days, which frees capacity rather than cash.", budget_impact),
    FigureSpec("deprivation", "Results by deprivation decile",
               "Who gains: QALYs and net saving per 1,000 people in each IMD decile at the start.",
               by_deprivation),
    FigureSpec("time_series", "Key outcomes over time",
               "Monthly means over replications; the last panel shows when an arm pays back in cash.",
               time_series),
]


def save_figures(b: Batch, folder: Path, svg: bool = False) -> dict[str, Path]:
    """Draw every figure into ``folder`` as ``<name>.png`` (and ``<name>.svg`` with ``svg``:
    writing SVG takes most of a report's time); the PNG paths of those drawn, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = {}
    for spec in FIGURES:
        fig = spec.build(b)
        if fig is None:
            continue
        for ext in ("png", "svg") if svg else ("png",):
            atomic_write(folder / f"{spec.name}.{ext}",
                         lambda p, e=ext, f=fig: f.savefig(p, format=e, dpi=110))
        plt.close(fig)
        saved[spec.name] = folder / f"{spec.name}.png"
    return saved
