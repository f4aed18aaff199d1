"""Plots of a PSA, drawn from the files in its output folder.

``plot_psa(outdir)`` reads ``draws.parquet``, ``ceac.csv``, ``evpi.csv`` and ``psa.json``
and writes into ``outdir/plots/`` (PNG and SVG):

- ``ce-plane``: incremental cost against incremental QALYs of each draw, per arm, with the
  lines of the decision thresholds;
- ``ceac``: the probability that each arm is the most cost-effective, by threshold, with the
  frontier (the arm of highest expected net benefit) drawn thick;
- ``evpi``: the expected value of perfect information per person, by threshold, with its 95%
  Monte-Carlo interval (a bootstrap over the draws) as a band.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hhsim.studies.sensitivity.plots import save_figure


def _plane(inc: pd.DataFrame, thresholds: list[float]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 5))
    for arm, g in inc.groupby("arm", sort=False):
        ax.scatter(g["incremental_qalys"], g["incremental_cost"], s=10, alpha=0.5, label=arm)
    q = inc["incremental_qalys"]
    span = np.array([min(q.min(), 0.0), max(q.max(), 0.0)])
    for lam, style in zip(thresholds, ("--", ":", "-."), strict=False):
        ax.plot(span, lam * span, style, color="grey", lw=1, label=f"£{lam:,.0f} per QALY")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("incremental QALYs (discounted, per run)")
    ax.set_ylabel("incremental cost, £ (discounted, per run)")
    ax.set_title("Cost-effectiveness plane: one point per parameter draw")
    ax.legend(fontsize=8)
    return fig


def _ceac(table: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm, g in table.groupby("arm", sort=False):
        (line,) = ax.plot(g["threshold"], g["probability"], lw=1.2, label=arm)
        front = g["probability"].where(g["on_frontier"])
        ax.plot(g["threshold"], front, lw=4, alpha=0.5, color=line.get_color())
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("threshold, £ per QALY")
    ax.set_ylabel("probability most cost-effective")
    ax.set_title("Acceptability curves (thick: the frontier, highest expected net benefit)")
    ax.legend(fontsize=8)
    return fig


def _evpi(table: pd.DataFrame, draws: int) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(table["threshold"], table["evpi_per_person_low"], table["evpi_per_person_high"],
                    alpha=0.3, label=f"95% interval (bootstrap over the {draws} draws)")
    ax.plot(table["threshold"], table["evpi_per_person"], label="EVPI")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("threshold, £ per QALY")
    ax.set_ylabel("EVPI, £ per person")
    ax.set_title("Expected value of perfect information")
    ax.legend(fontsize=8)
    return fig


def plot_psa(outdir: str | Path) -> list[str]:
    """Draw every PSA figure from the files in ``outdir``; return their paths (relative)."""
    out = Path(outdir)
    summary = json.loads((out / "psa.json").read_text())
    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    paths = []
    inc = pd.read_parquet(out / "incremental.parquet")
    if len(inc):
        paths += save_figure(_plane(inc, summary["decision_thresholds"]), folder, "ce-plane")
    paths += save_figure(_ceac(pd.read_csv(out / "ceac.csv")), folder, "ceac")
    paths += save_figure(_evpi(pd.read_csv(out / "evpi.csv"), summary["draws"]), folder, "evpi")
    return paths
