"""Plots of a sensitivity analysis, drawn from the files in its output folder.

``plot_sensitivity(outdir)`` reads ``sensitivity.json``, ``indices.csv`` and ``oneway.csv``
and writes, per output, into ``outdir/plots/`` (PNG and SVG):

- ``<output>-indices``: Sobol or FAST S1 and ST bars with their 95% intervals, or the delta
  measure with its interval;
- ``<output>-morris``: Morris mu* against sigma (with mu*'s interval);
- ``<output>-tornado``: one-way tornado of the top parameters (each alone at its low and
  high value, the others at their medians; whiskers: ±1.96 Monte-Carlo standard errors), when the
  design has one-way points.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

#: Parameters shown in a tornado.
TORNADO_TOP = 10


def file_stem(output: str) -> str:
    """A file-name-safe form of an output name (``incremental:deaths`` -> ``incremental-deaths``)."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", output).strip("-")


def save_figure(fig: plt.Figure, folder: Path, stem: str) -> list[str]:
    """Write ``fig`` as ``folder/stem.png`` and ``.svg``, close it; return the paths relative
    to ``folder``'s parent."""
    paths = []
    for ext in ("png", "svg"):
        path = folder / f"{stem}.{ext}"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(str(path.relative_to(folder.parent)))
    plt.close(fig)
    return paths


def _bars(table: pd.DataFrame, kinds: tuple[str, ...], key: str, title: str) -> plt.Figure:
    order = table[table["index"] == key].sort_values("value")["parameter"].tolist()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(order) + 1.5))
    y = np.arange(len(order))
    height = 0.8 / len(kinds)
    for k, kind in enumerate(kinds):
        t = table[table["index"] == kind].set_index("parameter").loc[order]
        ax.barh(y + (k - (len(kinds) - 1) / 2) * height, t["value"], height, xerr=t["conf"],
                label=kind, capsize=3)
    ax.set_yticks(y, order)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("index (bars: 95% bootstrap interval)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return fig


def _morris(table: pd.DataFrame, title: str) -> plt.Figure:
    """mu* against sigma; points numbered by rank, with the key beside the plot."""
    mu = table[table["index"] == "mu_star"].sort_values("rank").set_index("parameter")
    sigma = table[table["index"] == "sigma"].set_index("parameter").loc[mu.index]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.errorbar(mu["value"], sigma["value"], xerr=mu["conf"], fmt="o", capsize=3)
    for rank, name in enumerate(mu.index, 1):
        ax.annotate(str(rank), (mu.loc[name, "value"], sigma.loc[name, "value"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    key = "\n".join(f"{rank}  {name}" for rank, name in enumerate(mu.index, 1))
    ax.text(1.03, 1.0, key, transform=ax.transAxes, va="top", fontsize=8)
    top = float(np.nanmax(np.r_[mu["value"], sigma["value"], 0.0])) or 1.0
    ax.plot([0, top], [0, top], ls="--", color="grey", lw=0.8, label="sigma = mu*")
    ax.set_xlabel("mu* (mean absolute effect over the parameter's range)")
    ax.set_ylabel("sigma (non-linearity or interactions)")
    ax.set_title(title)
    ax.legend()
    return fig


def _tornado(oneway: pd.DataFrame, order: list[str], title: str) -> plt.Figure | None:
    base = oneway[oneway["kind"] == "base"]["value"]
    if base.empty:
        return None
    centre = float(base.iloc[0])
    one = oneway[oneway["kind"] != "base"]
    sides = one.pivot_table(index="parameter", columns="kind", values="value")
    noise = one.pivot_table(index="parameter", columns="kind", values="se", dropna=False)
    shown = [n for n in order if n in sides.index][:TORNADO_TOP][::-1]
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(shown) + 1.5))
    y = np.arange(len(shown))
    for side, colour in (("low", "tab:blue"), ("high", "tab:orange")):
        values = sides.loc[shown, side].to_numpy()
        ax.barh(y, values - centre, left=centre, color=colour, label=f"parameter at its {side} value")
        half = 1.96 * noise.reindex(index=shown).get(side, pd.Series(np.nan, index=shown)).to_numpy(float)
        if np.isfinite(half).any():
            ax.errorbar(values, y, xerr=half, fmt="none", ecolor="black", capsize=2, lw=0.8)
    ax.axvline(centre, color="black", lw=0.8)
    ax.set_yticks(y, shown)
    ax.set_xlabel("output (others at their medians; line: all at their medians;\n"
                  "whiskers: ±1.96 Monte-Carlo standard errors, with several replications)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_sensitivity(outdir: str | Path) -> list[str]:
    """Draw every plot of a sensitivity output folder; return their paths relative to it."""
    outdir = Path(outdir)
    summary = json.loads((outdir / "sensitivity.json").read_text())
    indices = pd.read_csv(outdir / "indices.csv")
    oneway_path = outdir / "oneway.csv"
    oneway = pd.read_csv(oneway_path).fillna({"parameter": ""}) if oneway_path.exists() else pd.DataFrame()
    folder = outdir / "plots"
    folder.mkdir(exist_ok=True)
    method, paths = summary["method"], []
    for output, info in summary["outputs"].items():
        table = indices[indices["output"] == output]
        if table.empty or not np.isfinite(table["value"]).any():
            continue
        stem = file_stem(output)
        if method == "morris":
            paths += save_figure(_morris(table, f"{output}: Morris screening"), folder, f"{stem}-morris")
        else:
            kinds, key = (("delta", "S1"), "delta") if method == "delta" else (("S1", "ST"), "ST")
            fig = _bars(table, kinds, key, f"{output}: {method} indices")
            paths += save_figure(fig, folder, f"{stem}-indices")
        if not oneway.empty:
            fig = _tornado(oneway[oneway["output"] == output], info["ranking"],
                           f"{output}: one-way sensitivity")
            if fig is not None:
                paths += save_figure(fig, folder, f"{stem}-tornado")
    return paths
