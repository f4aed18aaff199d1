"""Shipping a calibration's posterior inside the package (``hhsim ship-posterior``).

A finished ABC calibration folder (``posterior.parquet``, ``summary.csv``,
``calibration.json``; ``hhsim.studies.calibration.outputs``) becomes:

- ``hhsim/data/posterior/<name>.csv``: the final generation's rows, one column per
  parameter and ``weight`` (text, so a change shows in a git diff; numbers written with 17
  significant digits, so they read back exactly);
- ``hhsim/data/posterior/<name>.toml``: what it is: the calibration file and digest, the
  model version, the date, the number of rows, the CSV's SHA-256 and, per parameter, the
  prior, the prior sd, the posterior weighted median and sd, their ratio and whether the
  parameter counts as calibrated;
- the default model file with each parameter's value set to its posterior weighted median
  (comments and layout kept: tomlkit). A parameter whose posterior sd is at most half its
  prior's (``RATIO``) gets status ``C`` and a source naming the calibration; any other keeps
  its status and its source says the value is a posterior median that did not halve the
  prior sd.

``hhsim psa`` then draws whole rows of every shipped posterior by default
(``hhsim.studies.psa.run``); ``shipped_posteriors`` lists them, from ``posterior_folder``
(which tests replace). Only parameters of the default model file can be shipped: a
``world.*`` or ``interventions.*`` parameter, a parameter the model computes by an
expression, or one whose value is a table is refused with one line.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hhsim.batch.files import atomic_write, write_csv
from hhsim.core.errors import HhsimError
from hhsim.core.inputs import check_path, read_input
from hhsim.core.parameters import apply_overrides, parameters_of, read_toml, scaled, target_of
from hhsim.core.resources import data_path
from hhsim.core.version import MODEL_VERSION

#: A parameter is calibrated (status C) when its posterior sd is at most this share of its prior's.
RATIO = 0.5
#: Fewest effective samples (Kish: (sum w)^2 / sum w^2) a final generation must have to ship:
#: with fewer, a few particles carry the posterior and its sd (the calibrated rule) is noise.
MIN_ESS = 50
#: Folder of the shipped posteriors inside the package.
FOLDER = "posterior"
#: How a shipped posterior's name may be spelt (it names two files).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: The text ``ship_posterior`` puts in a source, recognised (and replaced) when shipping again.
CALIBRATED = re.compile(r"^Posterior median of calibration .*? Before calibration \(status (\w*)\): (.*)$",
                        re.S)
NOT_HALVED = re.compile(r" Value: the posterior median of calibration .*$", re.S)
FIX = "give the output folder of a finished 'hhsim calibrate' (without --fast)"


def posterior_folder() -> Path:
    """Where the shipped posteriors are (``hhsim/data/posterior``; tests point it elsewhere)."""
    return data_path(FOLDER)


def default_model_path() -> Path:
    """The default model file that shipping rewrites."""
    return data_path("default_model.toml")


@dataclass(frozen=True)
class Shipped:
    """A shipped posterior: its name, rows (parameters and normalised ``weight``) and digest."""

    name: str
    rows: pd.DataFrame
    sha256: str
    model_version: str = ""  # of the calibration, from <name>.toml

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(c for c in self.rows.columns if c != "weight")


def shipped_posteriors(folder: Path | None = None) -> list[Shipped]:
    """Every shipped posterior (a ``<name>.csv`` with its ``<name>.toml``), by name."""
    folder = posterior_folder() if folder is None else folder
    if not folder.is_dir():
        return []
    return [read_shipped(csv) for csv in sorted(folder.glob("*.csv")) if csv.with_suffix(".toml").is_file()]


def read_shipped(path: Path) -> Shipped:
    """One shipped posterior CSV, checked (weights non-negative, not all zero)."""
    data = read_input(path, "shipped posterior", "csv")
    rows = pd.read_csv(path)
    if "weight" not in rows or len(rows.columns) < 2 or rows.empty:
        raise HhsimError(str(path), "is not a shipped posterior (parameter columns and weight)",
                         "ship it again with 'hhsim ship-posterior'")
    w = rows["weight"].to_numpy(float)
    if not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
        raise HhsimError(f"{path}: weight", "has negative, missing or all-zero weights",
                         "ship it again with 'hhsim ship-posterior'")
    meta = read_toml(path.with_suffix(".toml"), "shipped posterior's metadata")
    version = str(meta.get("posterior", {}).get("model_version", ""))
    return Shipped(path.stem, rows.assign(weight=w / w.sum()), hashlib.sha256(data).hexdigest(), version)


def weighted_stats(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Weighted median (midpoint interpolation, as ``summary.csv``) and weighted sd."""
    from hhsim.studies.calibration.fit import weighted_quantile

    w = weights / weights.sum()
    mean = float(np.sum(w * values))
    return float(weighted_quantile(values, w, [0.5])[0]), float(np.sqrt(np.sum(w * (values - mean) ** 2)))


@dataclass(frozen=True)
class ShipResult:
    name: str
    csv: Path
    toml: Path
    model: Path
    table: pd.DataFrame  # per parameter: prior, prior_sd, posterior_median, posterior_sd, ratio, calibrated


def _calibration(folder: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """calibration.json, summary.csv and the final generation of posterior.parquet."""
    if not folder.is_dir():
        raise HhsimError(str(folder), "is not a folder", FIX)
    for name in ("posterior.parquet", "summary.csv", "calibration.json"):
        if not (folder / name).is_file():
            raise HhsimError(str(folder), f"has no {name}", FIX)
    try:
        info = json.loads(read_input(folder / "calibration.json", "calibration manifest", "toml"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HhsimError(str(folder / "calibration.json"), "is not JSON", FIX) from None
    if info.get("method") == "fast":
        raise HhsimError(str(folder), "holds a --fast point estimate, not a posterior sample",
                         "run 'hhsim calibrate' without --fast and ship that folder")
    summary = pd.read_csv(folder / "summary.csv")
    if "posterior_sd" not in summary or "prior_sd" not in summary:
        raise HhsimError(str(folder / "summary.csv"), "has no prior_sd and posterior_sd columns", FIX)
    parquet = str(folder / "posterior.parquet")
    try:
        post = pd.read_parquet(parquet)
    except Exception as err:  # pyarrow raises several types for a file that is not Parquet
        raise HhsimError(parquet, f"cannot be read as Parquet ({type(err).__name__})", FIX) from None
    if not {"generation", "weight"} <= set(post.columns) or post.empty:
        raise HhsimError(parquet, "has no generation and weight columns, or no rows", FIX)
    last = post[post["generation"] == post["generation"].max()]
    w = last["weight"].to_numpy(float)
    if not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
        raise HhsimError(f"{parquet}: weight", "has negative, missing or all-zero weights", FIX)
    ess = w.sum() ** 2 / np.sum(w ** 2)
    if ess < MIN_ESS:
        raise HhsimError(parquet, f"has an effective sample size of {ess:.1f} in its final generation, too "
                         f"few (under {MIN_ESS}) for its medians and sds to mean anything",
                         "run the calibration with more particles (or more generations) and ship that")
    post = last.assign(weight=w / w.sum()).reset_index(drop=True)
    missing = [p for p in summary["parameter"] if p not in post.columns]
    if missing:
        raise HhsimError(str(folder / "posterior.parquet"), f"has no column {missing[0]}", FIX)
    return info, summary, post[[*summary["parameter"], "weight"]]


def _check_names(names: list[str], model: Path, tree: dict, medians: dict[str, float], where: str) -> None:
    """One-line errors unless every name is a number-valued leaf of the model file (the
    experiment overrides' own resolver, ``apply_overrides``, with its unit-range checks)."""
    for n in names:
        if scaled(n) is not None:
            raise HhsimError(f"{where}: {n}", "is a factor on a parameter, not a value a model file can hold",
                             f"calibrate {scaled(n)} itself (or its table's values) to ship it")
        head = n.split(".", 1)[0]
        if head in ("world", "interventions"):
            kind = "a world" if head == "world" else "an intervention"
            raise HhsimError(f"{where}: {n}", f"is {kind} parameter, not one of the model file {model}",
                             "ship a calibration of default-model parameters only")
    try:
        apply_overrides(tree, medians, "parameters")
    except HhsimError as err:
        fix = err.fix.replace("override the named", "calibrate the named") if err.fix else err.fix
        raise HhsimError(f"{where}: {err.where.removeprefix('parameters.')}", f"{err.problem} (in {model})",
                         fix) from None


def _leaf(doc, name: str, where: str):
    """The inline table of parameter ``name`` in a tomlkit document."""
    node = doc
    for part in name.split("."):
        try:
            node = node[part]
        except (KeyError, TypeError):
            node = None
        if node is None:
            raise HhsimError(f"{where}: {name}", "cannot be reached in the model file's layout",
                             "ship parameters written as name = { value = ... } in a table") from None
    if "value" not in node or isinstance(node["value"], list):
        raise HhsimError(f"{where}: {name}", "is not a single-number parameter", "calibrate one number")
    return node


def _number(x: float) -> str:
    return f"{x:.4g}"


def new_source(old_source: str, old_status: str | None, row: dict, info: dict, n: int, when: str) -> str:
    """The source of a parameter set to its posterior median (status C or not)."""
    m = CALIBRATED.match(old_source)
    if m:  # shipped before as calibrated: back to the source before calibration
        old_status, old_source = m.group(1) or None, m.group(2)
    old_source = NOT_HALVED.sub("", old_source)
    what = (f"calibration '{info.get('name', '')}' ({info.get('file', '')}, {n} weighted samples of the "
            f"final generation, shipped {when}): posterior sd {_number(row['posterior_sd'])} vs prior sd "
            f"{_number(row['prior_sd'])} (ratio {row['ratio']:.2f}; prior {row['prior']})")
    if row["calibrated"]:
        return f"Posterior median of {what}. Before calibration (status {old_status or ''}): {old_source}"
    return (f"{old_source} Value: the posterior median of {what}, which did not halve the prior sd, "
            "so not calibrated.")


def ship_posterior(calibration: str | Path, *, name: str | None = None, model: str | Path | None = None,
                   folder: str | Path | None = None, today: str | None = None) -> ShipResult:
    """Ship the posterior of the calibration folder ``calibration`` as ``name`` (default: the
    calibration's name) into ``folder`` (default ``posterior_folder()``) and set its
    parameters' values in ``model`` (default: the package's default model file)."""
    import tomlkit  # round-trip TOML: keeps the model file's comments and layout

    src = check_path(calibration)
    info, summary, post = _calibration(src)
    name = name or str(info.get("name", ""))
    if not NAME.fullmatch(name):
        raise HhsimError("--name", f"'{name}' cannot name a shipped posterior",
                         "give letters, digits, - and _ (up to 64)")
    model = check_path(model) if model is not None else default_model_path()
    folder = check_path(folder) if folder is not None else posterior_folder()
    names = list(summary["parameter"])
    for other in shipped_posteriors(folder):
        both = sorted({target_of(p) for p in other.parameters} & {target_of(p) for p in names})
        if other.name != name and both:
            raise HhsimError(f"{src}: {both[0]}", f"is already shipped in posterior '{other.name}'",
                             f"ship under the name '{other.name}' to replace it, or remove "
                             f"{folder / other.name}.csv and .toml")
    w = post["weight"].to_numpy(float)
    rows = []
    for _, s in summary.iterrows():
        median, sd = weighted_stats(post[s["parameter"]].to_numpy(float), w)
        prior_sd = float(s["prior_sd"])
        ratio = sd / prior_sd if prior_sd > 0 else float("inf")
        rows.append({"parameter": s["parameter"], "prior": str(s["prior"]), "prior_sd": prior_sd,
                     "posterior_median": median, "posterior_sd": sd, "ratio": ratio,
                     "calibrated": bool(ratio <= RATIO)})
    table = pd.DataFrame(rows)
    medians = dict(zip(table["parameter"], table["posterior_median"], strict=True))
    tree = read_toml(model, "model file")
    _check_names(names, model, tree, medians, str(src))
    text = read_input(model, "model file", "toml").decode("utf-8")
    doc = tomlkit.parse(text)
    when = today or _dt.date.today().isoformat()
    for row in rows:
        leaf = _leaf(doc, row["parameter"], str(src))
        status = str(leaf["status"]) if "status" in leaf else None
        source = new_source(str(leaf["source"]), status, row, info, len(post), when)
        leaf["value"] = float(row["posterior_median"])
        if row["calibrated"]:
            leaf["status"] = "C"
            if "assumption" in leaf:
                del leaf["assumption"]
        elif status == "C":  # shipped before as calibrated, not now
            m = CALIBRATED.match(str(leaf["source"]))
            old = m.group(1) if m else ""
            if old:
                leaf["status"] = old
            else:
                del leaf["status"]
        leaf["source"] = source
    new_text = tomlkit.dumps(doc)
    parameters_of(tomllib.loads(new_text))  # the rewritten file still reads as a model
    folder.mkdir(parents=True, exist_ok=True)
    csv, meta = folder / f"{name}.csv", folder / f"{name}.toml"
    write_csv(csv, post)  # floats as Python's repr, which reads back exactly
    sha = hashlib.sha256(csv.read_bytes()).hexdigest()
    doc_meta = tomlkit.document()
    doc_meta.add(tomlkit.comment(f"Written by 'hhsim ship-posterior' from {src}; do not edit by hand."))
    doc_meta["posterior"] = {
        "name": name, "calibration": str(info.get("name", "")), "calibration_file": str(info.get("file", "")),
        "calibration_digest": str(info.get("digest", "")), "method": str(info.get("method", "")),
        "model_version": str(info.get("model_version", MODEL_VERSION)), "shipped": when,
        "samples": len(post), "csv_sha256": sha,
        "rule": f"calibrated (status C) when posterior sd <= {RATIO} x prior sd",
    }
    if "generations_run" in info:
        doc_meta["posterior"]["generations"] = int(info["generations_run"])
    if info.get("warnings"):
        doc_meta["posterior"]["warnings"] = [str(w) for w in info["warnings"]]
    params = tomlkit.table()
    for row in rows:
        params[row["parameter"]] = {k: (float(v) if isinstance(v, float | np.floating) else v)
                                    for k, v in row.items() if k != "parameter"}
    doc_meta["parameters"] = params
    atomic_write(meta, lambda p: p.write_text(tomlkit.dumps(doc_meta)))
    atomic_write(model, lambda p: p.write_text(new_text))
    return ShipResult(name, csv, meta, model, table)
