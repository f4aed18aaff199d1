"""A calibration's output folder: posterior, summary, fit table, diagnostics and plots.

Files (all written atomically):

- ``calibration.json``: what was calibrated (file, digest, method, sampler, seed, settings,
  parameter priors as given, targets with sources);
- ``posterior.parquet``: parameter draws by name with ``generation`` and ``weight`` (every
  ABC generation; ``--fast``: one row, the point estimate);
- ``summary.csv``: per parameter, prior and posterior mean, sd, median, 95% interval and the
  contraction 1 - posterior variance / prior variance (final generation), the prior quantile
  of the estimate or posterior median, (ABC) ``edge_share``, the posterior weight in the
  prior's outer 1% on a flagged side, and ``at_bound`` ("low", "high", "both" or "";
  ``hhsim.studies.calibration.fit``);
- ``fit.csv``: per target, observed, simulated mean with its 95% Monte-Carlo half-width,
  95% predictive interval with its ends' Monte-Carlo errors and the draws it rests on, z,
  covered ("True", "False" or "unknown") and a note saying why;
- ``diagnostics.csv``: per generation, epsilon, simulations, acceptance rate and effective
  sample size (ABC only; ``trace.csv`` for ``--fast``);
- ``plots/``: ``diagnostics``, ``marginals`` and ``pairs`` (PNG and SVG; ``plot_calibration``);
- with a ``[history_matching]`` table (``history_matching.py``, written by ``run.py``):
  ``history_matching.csv`` (per wave: runs, NROY share, emulator checks, wall time),
  ``history_matching_targets.csv`` (the emulator checks per target), ``nroy.parquet`` (the last
  wave's plausible candidates) and ``history_matching/wave-<k>.parquet`` (each wave's runs).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hhsim.batch.files import atomic_write, write_csv, write_json
from hhsim.core.distributions import parse_distribution
from hhsim.core.errors import HhsimError
from hhsim.studies.calibration.fit import at_bound, fit_row, number, weighted_quantile


def write_table(path: Path, table: pd.DataFrame) -> None:
    if path.suffix == ".parquet":
        atomic_write(path, lambda p: table.to_parquet(p, index=False))
    else:
        write_csv(path, table)


def final(posterior: pd.DataFrame) -> pd.DataFrame:
    """The last generation's particles, weights normalised."""
    last = posterior[posterior["generation"] == posterior["generation"].max()]
    return last.assign(weight=last["weight"] / last["weight"].sum())


def load_posterior(path: str | Path, n: int, seed: int) -> pd.DataFrame:
    """``n`` parameter draws (columns by dotted name) from a calibration's posterior: the
    final generation resampled with its weights (numpy ``default_rng(seed)``). ``path`` is
    ``posterior.parquet`` or the output folder holding it. A ``--fast`` posterior is one
    point, repeated."""
    p = Path(path)
    p = p / "posterior.parquet" if p.is_dir() else p
    if not p.is_file():
        raise HhsimError(
            str(p), "posterior not found", "give a calibration's output folder or its posterior.parquet"
        )
    table = final(pd.read_parquet(p))
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(table), size=n, replace=True, p=table["weight"].to_numpy())
    return table.drop(columns=["generation", "weight"]).iloc[rows].reset_index(drop=True)


def _weighted(values: np.ndarray, w: np.ndarray) -> dict[str, float]:
    mean = float(np.average(values, weights=w))
    low, median, high = weighted_quantile(values, w, [0.025, 0.5, 0.975])
    return {
        "mean": mean,
        "sd": float(np.sqrt(np.average((values - mean) ** 2, weights=w))),
        "median": float(median),
        "low95": float(low),
        "high95": float(high),
    }


def summary_table(names, priors, posterior: pd.DataFrame) -> pd.DataFrame:
    """Prior and posterior statistics per parameter (final generation, weighted); for a
    point estimate (one particle, ``--fast``): the prior and the ``estimate``. Both with
    ``prior_quantile`` (of the estimate or posterior median) and ``at_bound``."""
    last = final(posterior)
    rows = []
    for name, prior in zip(names, priors, strict=True):
        side, q, share = at_bound(prior, last[name].to_numpy(float), last["weight"].to_numpy(float))
        if len(last) == 1:
            rows.append(
                {
                    "parameter": name,
                    "prior": prior.description,
                    "prior_mean": prior.mean,
                    "prior_sd": float(prior.frozen.std()),
                    "estimate": float(last[name].iloc[0]),
                    "prior_quantile": q,
                    "at_bound": side,
                }
            )
            continue
        post = _weighted(last[name].to_numpy(float), last["weight"].to_numpy(float))
        psd = float(prior.frozen.std())
        rows.append(
            {
                "parameter": name,
                "prior": prior.description,
                "prior_mean": prior.mean,
                "prior_sd": psd,
                "posterior_mean": post["mean"],
                "posterior_sd": post["sd"],
                "posterior_median": post["median"],
                "posterior_low95": post["low95"],
                "posterior_high95": post["high95"],
                "contraction": 1 - (post["sd"] / psd) ** 2 if psd > 0 else float("nan"),
                "prior_quantile": q,
                "edge_share": share,
                "at_bound": side,
            }
        )
    return pd.DataFrame(rows)


def bounded(problem, summary: pd.DataFrame, path) -> str:
    """The parameters at a prior bound that apply to the experiment at ``path``, in words
    ("" if none)."""
    sides = dict(zip(summary["parameter"], summary["at_bound"].fillna(""), strict=True))
    here = problem.overrides({n: 0.0 for n, side in sides.items() if side}, path)
    return "; ".join(f"{n} is at its prior's {sides[n]} bound" for n in here)


def fit_table(problem, values: pd.DataFrame, observations: pd.DataFrame,
              summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per target: observed, the simulated mean and its 95% MC half-width, the 95% predictive
    interval of simulated observations (model randomness, parameter uncertainty and
    observation noise) with its ends' MC errors, z, covered and why (``fit.fit_row``; a
    parameter at a prior bound in ``summary`` makes covered "unknown"). Binomial targets
    are in counts (simulated: n x the simulated probability)."""
    rows = []
    for t in problem.targets:
        sim = values[t.name].to_numpy(float)
        if t.likelihood == "binomial":
            sim = sim * t.n
        bound = bounded(problem, summary, t.experiment) if summary is not None else ""
        rows.append(
            {
                "target": t.name,
                "observed": t.observed,
                "uncertainty": f"sd {t.sd:g}" if t.likelihood == "normal" else f"{t.observed:g} of {t.n}",
                **fit_row(t.observed, t.sd, t.n if t.likelihood == "binomial" else 0, sim,
                          observations[t.name].to_numpy(float), bound),
                "estimator": t.estimator,
                "source": t.source,
                "status": t.status,
            }
        )
    return pd.DataFrame(rows)


def format_results(out: Path) -> str:
    """The parameter and fit tables ``hhsim calibrate`` prints, then the predictive draws'
    stopping reason and the warnings (from the output folder's files): a miss shows in z
    and covered, an unknown "covered" says why."""
    info = json.loads((out / "calibration.json").read_text())
    summary = pd.read_csv(out / "summary.csv", dtype={"at_bound": str}).fillna({"at_bound": ""})
    columns = (["parameter", "prior_mean", "estimate", "prior_quantile", "at_bound"] if "estimate" in summary
               else ["parameter", "prior_mean", "posterior_median", "posterior_low95", "posterior_high95",
                     "contraction", "at_bound"])
    fit = pd.read_csv(out / "fit.csv", dtype={"covered": str, "note": str}).fillna({"note": ""})
    pairs = {c: zip(fit[a], fit[b], strict=True) for c, a, b in (
        ("mean", "simulated_mean", "simulated_mc95"), ("interval", "predictive_low95", "predictive_high95"))}
    table = pd.DataFrame({
        "target": fit["target"],
        "observed": fit["observed"].map(number),
        "simulated mean (MC 95%)": [f"{number(m)} +/- {number(h)}" for m, h in pairs["mean"]],
        "95% predictive": [f"{number(lo)} to {number(hi)}" for lo, hi in pairs["interval"]],
        "draws": fit["draws"],
        "z": fit["z"].map(lambda z: f"{z:+.2f}"),
        "covered": fit["covered"],
    })
    lines = [summary[columns].to_string(index=False), "", table.to_string(index=False)]
    for note, group in fit[fit["note"] != ""].groupby("note", sort=False)["target"]:
        who = "every target" if len(group) == len(fit) > 1 else ", ".join(group)
        lines.append(f"  {who}: covered unknown: {note}")
    if "stop" in info["predictive"]:
        lines.append(f"Predictive draws: {info['predictive']['stop']} (rounds: "
                     f"{', '.join(map(str, info['predictive']['rounds']))})")
    return "\n".join(lines + [f"Warning: {w}" for w in info["warnings"]])


def _save(fig: plt.Figure, folder: Path, stem: str) -> list[str]:
    paths = []
    for ext in ("png", "svg"):
        path = folder / f"{stem}.{ext}"
        atomic_write(path, lambda p, ext=ext: fig.savefig(p, dpi=120, bbox_inches="tight", format=ext))
        paths.append(str(path.relative_to(folder.parent)))
    plt.close(fig)
    return paths


def _short(name: str) -> str:
    """The last two parts of a dotted parameter name, for axis labels."""
    return ".".join(name.split(".")[-2:])


def plot_calibration(outdir: str | Path) -> list[str]:
    """Draw a calibration's plots into ``outdir/plots`` from its files; returns the paths
    written (relative to ``outdir``): diagnostics (ABC: epsilon, acceptance rate and
    effective sample size by generation), marginals (final-generation posterior against the
    prior) and pairs (two parameters or more)."""
    out = Path(outdir)
    info = json.loads((out / "calibration.json").read_text())
    posterior = pd.read_parquet(out / "posterior.parquet")
    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    names = list(info["parameters"])
    priors = [parse_distribution(spec, name) for name, spec in info["parameters"].items()]
    paths = []
    diag = out / "diagnostics.csv"
    if diag.is_file():
        d = pd.read_csv(diag)
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
        labels = ("epsilon (distance, sd units)", "acceptance rate", "effective sample size")
        for ax, col, label in zip(axes, ("epsilon", "acceptance", "ess"), labels, strict=True):
            ax.plot(d["generation"], d[col], marker="o")
            ax.set_xlabel("generation")
            ax.set_xticks(d["generation"])
            ax.set_title(label, fontsize=9)
            if col != "epsilon":
                ax.set_ylim(bottom=0)
        axes[0].set_yscale("log")
        fig.suptitle(f"{info['name']}: ABC-SMC diagnostics", fontsize=10)
        paths += _save(fig, folder, "diagnostics")
    last = final(posterior)
    w = last["weight"].to_numpy(float)
    bins = int(np.clip(len(last) // 5, 5, 30))
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.6 * len(names), 2.8), squeeze=False, layout="constrained"
    )
    for ax, name, prior in zip(axes[0], names, priors, strict=True):
        lo, hi = prior.range()
        x = np.linspace(lo, hi, 200)
        ax.plot(x, prior.frozen.pdf(x), color="grey", label="prior")
        if len(last) > 1:
            ax.hist(last[name], bins=bins, weights=w, density=True, alpha=0.6, label="posterior")
        else:
            ax.axvline(last[name].iloc[0], color="C1", label="estimate")
        ax.set_title(name, fontsize=8)
        ax.legend(fontsize=7)
    paths += _save(fig, folder, "marginals")
    if len(names) > 1 and len(last) > 1:
        k = len(names)
        fig, axes = plt.subplots(k, k, figsize=(2.4 * k, 2.4 * k), squeeze=False)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                ax = axes[i][j]
                if i == j:
                    ax.hist(last[a], bins=bins, weights=w)
                elif i > j:
                    ax.scatter(last[b], last[a], s=200 * w / w.max(), alpha=0.5)
                else:
                    ax.axis("off")
                if i == k - 1:
                    ax.set_xlabel(_short(b), fontsize=7)
                if j == 0 and i > 0:
                    ax.set_ylabel(_short(a), fontsize=7)
        paths += _save(fig, folder, "pairs")
    return paths


def write_manifest(out: Path, info: dict) -> None:
    write_json(out / "calibration.json", info)


def write_section(out: Path) -> None:
    """``section.html``: the summary and fit tables as a fragment for the HTML report
    (``hhsim report`` includes a ``calibration*`` folder inside a run's output folder), with
    the calibration's warnings (a parameter at a prior bound, too few predictive draws) as
    notes under the fit."""
    import html

    def cell(v: object) -> str:
        return f"<td>{html.escape(f'{v:.4g}' if isinstance(v, float) else str(v))}</td>"

    def rows(table: pd.DataFrame) -> str:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
        body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>"
                       for row in table.itertuples(index=False))
        return f"<table class='t'><tr>{head}</tr>{body}</table>"

    summary = pd.read_csv(out / "summary.csv", dtype={"at_bound": str}).fillna({"at_bound": ""})
    fit = pd.read_csv(out / "fit.csv", dtype={"covered": str, "note": str}).fillna({"note": ""})
    keep = [c for c in ("target", "observed", "simulated_mean", "simulated_mc95", "predictive_low95",
                        "predictive_high95", "draws", "z", "covered", "note", "source") if c in fit.columns]
    warnings = json.loads((out / "calibration.json").read_text()).get("warnings", [])
    notes = "".join(f"<p class='note'><b>Note:</b> {html.escape(w)}</p>" for w in warnings)
    text = ("<h3>Parameters</h3>" + rows(summary.drop(columns=[c for c in ("prior",) if c in summary])) +
            "<h3>Fit to the targets</h3>" + rows(fit[keep]) + notes)
    atomic_write(out / "section.html", lambda p: p.write_text(text, encoding="utf-8"))
