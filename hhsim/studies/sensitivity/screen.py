"""A Morris screen of the default model's headline outputs (issue 16; docs/sensitivity.md,
section "Screening the default model").

    python -m hhsim.studies.sensitivity.screen --workers 2      # runs it, writes calibration/screen/
    python -m hhsim.studies.sensitivity.screen --table          # the top-20 table from the saved ranking

What it does:

1. ``screen_parameters``: the parameters, read from the model tree (so the screen follows
   the model): every leaf with a single number, whatever its status, each with a range of
   +/- ``SPREAD`` (25%) around its value on the scale that keeps its meaning (``screen_range``);
   every table of levels (rates, probabilities, prevalences, lengths of stay by age or sex)
   as one factor on the whole table, ``scale(<parameter>)`` over 1 +/- ``SPREAD`` (kept
   within the unit's range: ``table_range``). Left out, with the reason: expressions
   (``'=...'``: their inputs are varied instead), tables whose shape is the point (ratios by
   decile, the winter indicator, utility coefficients: ``TABLE_SHAPES``; shares of states that
   sum to 1, a cross-section), zero values and
   ratios of 1 (no range around them) and terms on tenures absent from the screen populations.
2. ``screen_experiments``: one temporary experiment per headline experiment, a copy with a
   ``[sensitivity]`` section (Morris, the same parameters, trajectories and seed), only the
   baseline and the analysed arm, fewer tenants and months when asked, one replication.
   The England-like baseline population gives NHS cost, QALYs and years in good health
   (``mean:`` outputs); each intervention experiment gives its arm's net saving.
3. ``run_screen``: ``run_sensitivity`` on each (resumable), then ``rank``.
4. ``rank``: mu* normalised per output by the output's largest mu*, combined per parameter
   as the largest normalised mu* over the outputs; the top ``TOP`` (20) are the most
   influential. A parameter below the boundary whose interval (SALib's 95% mu_star_conf,
   normalised alike) reaches the 20th's lower end is flagged: the boundary is within noise.
5. ``write_ranking`` writes ``ranking.csv`` (one row per parameter) and ``screen.toml``
   (settings, model version, date, wall time, what was left out), committed under
   ``calibration/screen/``: the persisted result of an expensive analysis.
6. ``screen_table(ranking_path, model_tree)``: the top-20 markdown table with each
   parameter's status and value read live from the model, for docs/validation.md.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomlkit

from hhsim.batch.files import atomic_write, write_csv, write_json
from hhsim.core.errors import HhsimError
from hhsim.core.expressions import is_expression
from hhsim.core.parameters import bounds_for_unit, iter_leaves, parameters_of, read_toml, target_of
from hhsim.core.resources import default_model_tree, intervention_defaults
from hhsim.core.version import MODEL_VERSION

#: Half-width of each parameter's range, as a share of what it states (``screen_range``).
SPREAD = 0.25
#: How many parameters the ranking lists as the most influential.
TOP = 20
#: An output is named as one where a parameter is influential at this normalised mu* or more.
INFLUENTIAL = 0.25
#: Where the committed ranking lives (relative to the repository's top folder).
RANKING = Path("calibration/screen/ranking.csv")
META = "screen.toml"
#: Where a screen's folder of runs keeps each experiment's time so far (seconds), for --resume.
SECONDS = "seconds.json"
#: The England-like population for the baseline outputs, and those outputs (record columns).
BASELINE_EXPERIMENT = "england-all-tenures"
BASELINE_OUTPUTS = ("mean:nhs_cost", "mean:qalys", "mean:good_health_years")
#: Headline experiments with an intervention, and the arm whose net saving is screened.
INTERVENTIONS = {
    "home-repairs": "repairs",
    "personalised-support-pilot": "support",
    "social-prescribing": "cautious",
    "housing-first": "housing_first",
    "damp-repair-duty": "duty-21-days",
    "winter-warmth": "insulation",
    "support-and-repairs": "both",
    "step-down-cedarwood": "step-down",
    "step-out-supported-homes": "step-out",
}
#: The ones the screen runs by default: all of them.
DEFAULT_INTERVENTIONS = tuple(INTERVENTIONS)
#: Intervention keys proportional to the population served: scaled with the tenants when the
#: population is shrunk, so that a programme keeps its size relative to the stock.
SCALED = {"home_repairs": ("capacity.budget_per_year",), "personalised_support": ("capacity.staff_fte",),
          "social_prescribing": ("capacity.staff_fte",), "housing_first": ("capacity.staff_fte",),
          "step_down": ("capacity.places",), "supported_housing": ("capacity.places",)}
#: Scaled keys that count whole things (beds, homes): the population shrinks no further than
#: to one of them, and the scaled count is rounded.
WHOLE = frozenset({"capacity.places"})
TENURES = ("owner_occupied", "private_rented", "social_rented", "temporary_accommodation", "rough_sleeping")
#: Tables left out of the screen because their shape, not their level, is what they say: a
#: unit containing one of these words (ratios by decile, the winter indicator by month, the
#: utility equation's coefficients).
TABLE_SHAPES = ("ratio", "indicator", "coefficients")


@dataclass(frozen=True)
class ScreenParameter:
    """One screened parameter: its value, range and how the range was made."""

    name: str
    value: float
    low: float
    high: float
    scale: str  # "log": ratio**(1 -/+ s); "decrement": 1 - (1 - v)(1 +/- s); "linear": v(1 -/+ s);
    #             "factor": a whole table times 1 -/+ s (``name`` is ``scale(<parameter>)``, value 1)
    unit: str
    status: str


def screen_range(value: float, unit: str, spread: float = SPREAD) -> tuple[float, float, str]:
    """The range of a parameter: +/- ``spread`` of what it states, kept within its unit's bounds.

    - ratios (odds, rate, relative risk, a winter excess ratio: unit containing "ratio"),
      including per-decile or per-point ratios: +/- spread of the effect on the log scale,
      ``value ** (1 -/+ spread)``, so an effect never changes direction (1.07 per decile gives
      1.052 to 1.088, not 0.80 to 1.34);
    - utilities and utility multipliers: +/- spread of the decrement from 1;
    - everything else (rates, probabilities, shares, costs, days, points, powers, CVs):
      ``value * (1 -/+ spread)``, probabilities and shares kept within [0, 1].
    """
    u = unit.lower()
    if "ratio" in u and "multiplier" not in u:
        ends, scale = (value ** (1 - spread), value ** (1 + spread)), "log"
    elif "utility" in u:
        ends, scale = (1 - (1 - value) * (1 + spread), 1 - (1 - value) * (1 - spread)), "decrement"
    else:
        ends, scale = (value * (1 - spread), value * (1 + spread)), "linear"
    lo, hi = bounds_for_unit(unit)
    low, high = sorted(ends)
    return max(low, lo), min(high, hi), scale


def table_range(values: Any, unit: str, spread: float = SPREAD) -> tuple[float, float]:
    """The range of the factor on a whole table: 1 -/+ ``spread``, the high end lowered so
    that the table's largest value stays within its unit's upper bound (a probability of
    0.9 allows at most 1.11)."""
    _, hi = bounds_for_unit(unit)
    top = float(np.max(np.asarray(values, dtype=float)))
    return 1 - spread, min(1 + spread, hi / top) if top > 0 else 1 + spread


def _shares_of_states(values: Any) -> bool:
    """Whether a table's last axis holds shares that sum to 1 (an initial distribution)."""
    a = np.asarray(values, dtype=float)
    return a.ndim > 1 and bool(np.allclose(a.sum(axis=-1), 1.0, atol=1e-6))


def _tenure_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[parts.index("tenure") + 1] if "tenure" in parts[:-1] else None


def screen_parameters(model_tree: Mapping[str, Any] | None = None, tenures: Sequence[str] = TENURES,
                      spread: float = SPREAD) -> tuple[list[ScreenParameter], list[tuple[str, str]]]:
    """The parameters to screen from a model tree (the default model's when None), and the
    leaves left out with the reason: (name, reason). ``tenures``: those in the screen's
    populations (a term on another tenure acts on nobody there)."""
    tree = model_tree if model_tree is not None else default_model_tree()
    resolved = parameters_of(tree)
    kept, skipped = [], []
    for name, node in iter_leaves(tree):
        value = node["value"]
        p = resolved[name]
        tenure = _tenure_of(name)
        if is_expression(value):
            skipped.append((name, "expression: its inputs are varied instead"))
        elif tenure is not None and tenure not in tenures:
            skipped.append((name, f"acts only on {tenure}, absent from the screen populations"))
        elif isinstance(value, list) and any(word in p.unit.lower() for word in TABLE_SHAPES):
            skipped.append((name, "a table whose shape is what it says (by decile, month or term): "
                                  "a factor on it would change its meaning"))
        elif isinstance(value, list) and _shares_of_states(value):
            skipped.append((name, "shares of states that sum to 1 (a cross-section): "
                                  "a factor would break the sum"))
        elif isinstance(value, list):
            low, high = table_range(value, p.unit, spread)
            kept.append(ScreenParameter(f"scale({name})", 1.0, low, high, "factor", f"factor on {p.unit}",
                                        status_of(p)))
        elif float(value) == 0:
            skipped.append((name, "zero: no range around it"))
        else:
            low, high, scale = screen_range(float(value), p.unit, spread)
            if low == high:  # a ratio of 1 has no effect to vary on the log scale
                skipped.append((name, "a ratio of 1 (no effect): no range around it on the log scale"))
                continue
            kept.append(ScreenParameter(name, float(value), low, high, scale, p.unit, status_of(p)))
    return kept, skipped


def status_of(p: Any) -> str:
    """A parameter's evidence status (V1, V2, D, A, C), as ``hhsim params`` shows it."""
    return p.status or ("A" if p.assumption else "")


@dataclass(frozen=True)
class ScreenExperiment:
    """One experiment of the screen: the file it copies, the arm analysed, its outputs."""

    name: str
    path: Path
    arm: str | None  # None: the baseline (mean: outputs)
    outputs: tuple[str, ...]


def screen_experiments(folder: Path, interventions: Sequence[str] = DEFAULT_INTERVENTIONS,
                       baseline: str | None = BASELINE_EXPERIMENT) -> list[ScreenExperiment]:
    """The baseline experiment (its ``mean:`` outputs) and each intervention's (net saving)."""
    out = []
    if baseline:
        out.append(ScreenExperiment(baseline, folder / f"{baseline}.toml", None, BASELINE_OUTPUTS))
    for name in interventions:
        if name not in INTERVENTIONS:
            raise HhsimError("--experiments", f"'{name}' is not a headline intervention experiment",
                             f"use one of {', '.join(INTERVENTIONS)}")
        out.append(ScreenExperiment(name, folder / f"{name}.toml", INTERVENTIONS[name], ("net_saving",)))
    return out


def population_tenures(experiments: Sequence[ScreenExperiment]) -> tuple[str, ...]:
    """The tenures present (share above 0) in the experiments' populations."""
    found: set[str] = set()
    for e in experiments:
        population = read_toml(e.path, "experiment file").get("population", {})
        tenure = population.get("tenure", {"social_rented": 1.0})
        found |= {t for t, share in tenure.items() if share > 0}
    return tuple(t for t in TENURES if t in found)


def sensitivity_data(e: ScreenExperiment, params: Sequence[ScreenParameter], trajectories: int, seed: int,
                     tenants: int | None = None, months: int | None = None) -> tuple[dict, list[str]]:
    """The temporary experiment: a copy of ``e``'s file with a Morris ``[sensitivity]`` section,
    only the baseline and the analysed arm, one replication, at most ``tenants`` and ``months``;
    and the screened parameters its arms set themselves (left out of its screen: the arm's
    value would replace every sampled one)."""
    data = copy.deepcopy(read_toml(e.path, "experiment file"))
    x = data.setdefault("experiment", {})
    base = x.get("baseline", data["arms"][0]["name"])
    data["arms"] = [a for a in data["arms"] if a["name"] in (base, e.arm)]
    set_by_arms = {target_of(k) for a in data["arms"] for k in a.get("parameters", {})}
    x.update(seed=seed, replications=1)
    if months is not None:
        x["months"] = min(int(x.get("months", months)), months)
    if tenants is not None:
        pop = data.setdefault("population", {})
        given = int(pop.get("tenants", 10_000))
        per_place = max((given / n for n in _whole_counts(data)), default=0)
        pop["tenants"] = min(given, max(tenants, math.ceil(per_place)))
        _scale_programmes(data, pop["tenants"] / given)
    data.pop("psa", None)
    data["sensitivity"] = {
        "method": "morris", "samples": trajectories, "oneway": False, "outputs": list(e.outputs),
        **({"arm": e.arm} if e.arm else {}),
        "parameters": {p.name: [p.low, p.high] for p in params if target_of(p.name) not in set_by_arms}}
    return data, sorted(p.name for p in params if target_of(p.name) in set_by_arms)


def _programme_sizes(data: dict) -> Iterator[tuple[dict, tuple[str, ...], str, float]]:
    """Each scaled key of the arms' interventions, without changing ``data``: the dict that
    sets it and the keys down to it (the experiment's ``[parameters]`` when it sets
    ``interventions.<name>.<path>``, else the intervention itself, whose unset key is the
    type's default), the path, and the value."""
    overrides = data.get("parameters", {})
    for arm in data["arms"]:
        for iv in arm.get("interventions", []):
            for path in SCALED.get(iv.get("type", ""), ()):
                dotted = f"interventions.{iv.get('name', iv['type'])}.{path}"
                keys = (dotted,) if dotted in overrides else tuple(path.split("."))
                holder = overrides if dotted in overrides else iv
                given = _get(holder, keys)
                if given is None:
                    given = _get(intervention_defaults(iv["type"]), keys)
                yield holder, keys, path, float(given["value"] if isinstance(given, dict) else given)


def _get(node: Mapping, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _whole_counts(data: dict) -> list[float]:
    """The counts of whole things (``WHOLE``: beds, homes) the arms' programmes run."""
    return [value for _, _, path, value in _programme_sizes(data) if path in WHOLE and value > 0]


def _scale_programmes(data: dict, factor: float) -> None:
    """Scale the ``SCALED`` keys of the arms' interventions by ``factor`` (their defaults
    when an arm does not set them; whole things rounded, at least one)."""
    if factor == 1:
        return
    scaled: set[tuple[int, tuple[str, ...]]] = set()  # an override shared by arms is scaled once
    for holder, keys, path, value in list(_programme_sizes(data)):
        if (id(holder), keys) in scaled:
            continue
        scaled.add((id(holder), keys))
        node = holder
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = float(max(1, round(value * factor))) if path in WHOLE else value * factor


def rank(indices: pd.DataFrame, top: int = TOP) -> pd.DataFrame:
    """The ranking from a long Morris index table (columns ``output``, ``parameter``,
    ``index``, ``value``, ``conf``; ``output`` qualified by experiment, e.g.
    ``home-repairs:net_saving``).

    Per output, mu* and its 95% half-width are divided by the output's largest mu*; a
    parameter's ``score`` is its largest normalised mu* over the outputs (``output``: where),
    ``score_conf`` that output's normalised half-width. ``outputs`` lists where its normalised
    mu* is at least ``INFLUENTIAL``. ``near_boundary``: a parameter ranked below ``top`` whose
    interval reaches the lower end of the ``top``-th's, or one in the top whose lower end is
    below the upper end of some parameter below: the boundary is within noise for them.
    Columns ``n:<output>``: the normalised mu* per output.
    """
    m = indices[indices["index"] == "mu_star"].copy()
    largest = m.groupby("output")["value"].transform("max")
    m["norm"] = np.where(largest > 0, m["value"] / largest, 0.0)
    m["norm_conf"] = np.where(largest > 0, m["conf"] / largest, 0.0)
    wide = m.pivot_table(index="parameter", columns="output", values="norm", aggfunc="first")
    outputs = list(dict.fromkeys(m["output"]))
    wide = wide[outputs]
    best = wide.fillna(-1).idxmax(axis=1)
    rows = []
    for name, where in best.items():
        r = m[(m["parameter"] == name) & (m["output"] == where)].iloc[0]
        listed = [o for o in outputs if wide.loc[name, o] >= INFLUENTIAL] or [where]
        rows.append({"parameter": name, "score": float(r["norm"]), "score_conf": float(r["norm_conf"]),
                     "output": where, "outputs": "; ".join(listed),
                     **{f"n:{o}": float(wide.loc[name, o]) for o in outputs}})
    table = pd.DataFrame(rows).sort_values(["score", "parameter"], ascending=[False, True], kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    table = table.reset_index(drop=True)
    lows = (table["score"] - table["score_conf"].fillna(0)).to_numpy()
    highs = (table["score"] + table["score_conf"].fillna(0)).to_numpy()
    near = np.zeros(len(table), dtype=bool)
    if len(table) > top:
        near[top:] = highs[top:] >= lows[top - 1]
        near[:top] = lows[:top] <= highs[top:].max()
    table["near_boundary"] = near
    return table


def write_ranking(folder: Path, ranking: pd.DataFrame, params: Sequence[ScreenParameter], meta: dict,
                  skipped: Sequence[tuple[str, str]]) -> Path:
    """``ranking.csv`` (one row per parameter: rank, name, status when screened, value, range,
    scale, score and its half-width, where it is influential, normalised mu* per output) and
    ``screen.toml`` (``meta`` and the leaves left out)."""
    folder.mkdir(parents=True, exist_ok=True)
    by = {p.name: p for p in params}
    extra = pd.DataFrame([{"parameter": n, "status_screened": by[n].status, "value": by[n].value,
                           "low": by[n].low, "high": by[n].high, "scale": by[n].scale, "unit": by[n].unit}
                          for n in ranking["parameter"]])
    table = ranking.merge(extra, on="parameter")
    first = ["rank", "parameter", "status_screened", "value", "low", "high", "scale", "unit", "score",
             "score_conf", "near_boundary", "output", "outputs"]
    table = table[first + [c for c in table.columns if c not in first]]
    path = folder / RANKING.name
    floats = table.select_dtypes("float").columns
    table[floats] = table[floats].map(lambda v: float(f"{v:.6g}"))  # 6 significant digits
    write_csv(path, table)
    doc = tomlkit.document()
    doc.add(tomlkit.comment("The Morris screen of the default model's headline outputs (issue 16)."))
    doc.add(tomlkit.comment("Written by python -m hhsim.studies.sensitivity.screen; "
                            "ranking.csv holds the result."))
    doc.update({k: v for k, v in meta.items() if not isinstance(v, dict)})
    doc.update({k: v for k, v in meta.items() if isinstance(v, dict)})
    doc["left_out"] = dict(skipped)  # model leaves not screened, and why
    atomic_write(folder / META, lambda p: p.write_text(tomlkit.dumps(doc)))
    return path


#: Short names of the outputs in the table.
LABELS = {"mean:nhs_cost": "NHS cost", "mean:qalys": "QALYs",
          "mean:good_health_years": "years in good health", "net_saving": "net saving",
          "incremental_qalys": "QALYs gained"}


def output_label(output: str) -> str:
    """``home-repairs:net_saving`` -> ``home-repairs net saving``; the baseline experiment's
    ``mean:`` outputs by their name alone (``NHS cost``)."""
    experiment, _, name = output.partition(":")
    label = LABELS.get(name, name)
    return label if experiment == BASELINE_EXPERIMENT else f"{experiment} {label}"


def _number(v: float) -> str:
    if not math.isfinite(v):
        return ""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def screen_table(ranking_path: str | Path = RANKING, model_tree: Mapping[str, Any] | None = None,
                 top: int = TOP) -> str:
    """The top-``top`` parameters of a saved screen as a markdown table: rank, parameter,
    status and value read live from ``model_tree`` (the default model when None; a parameter
    the model no longer has shows "gone"), the range screened, where it is influential, the
    normalised mu* with its 95% half-width, and a mark when the boundary is within noise;
    then a line counting the statuses and saying which model version and date screened it."""
    path = Path(ranking_path)
    if not path.is_file():
        raise HhsimError(str(path), "no saved screen ranking here",
                         "run python -m hhsim.studies.sensitivity.screen first, or give --ranking")
    ranking = pd.read_csv(path)
    table = ranking.sort_values("rank").head(top)
    live = parameters_of(model_tree if model_tree is not None else default_model_tree())
    meta = {}
    if (path.parent / META).exists():
        meta = read_toml(path.parent / META, "screen file")
    lines = ["| rank | parameter | status | value | range screened | influential on | normalised mu* |",
             "|---:|---|---|---:|---|---|---:|"]
    statuses = []
    for r in table.itertuples():
        p = live.get(target_of(r.parameter))
        status = status_of(p) if p is not None else "gone"
        value = ("" if p is None or isinstance(p.value, str) else
                 "table" if isinstance(p.value, list) else _number(float(p.value)))
        statuses.append(status)
        noise = " (within noise of the boundary)" if bool(r.near_boundary) else ""
        where = ", ".join(output_label(o) for o in r.outputs.split("; "))
        lines.append(f"| {r.rank} | `{r.parameter}` | {status} | {value} | {_number(r.low)} to "
                     f"{_number(r.high)} | {where} | {r.score:.2f} ± {r.score_conf:.2f}{noise} |")
    counts = ", ".join(f"{s} {statuses.count(s)}" for s in ("V1", "V2", "D", "C", "A", "gone")
                       if statuses.count(s))
    made = (f"screened on model version {meta.get('model_version', '?')}, {meta.get('date', '?')}, "
            f"{meta.get('trajectories', '?')} trajectories" if meta else "")
    text = "\n".join(lines) + f"\n\nStatuses of the top {len(table)} (live): {counts}" + \
        (f"; {made}." if made else ".") + "\n"
    if not ranking["parameter"].str.startswith("scale(").any():
        kept, _ = screen_parameters(model_tree)
        tables = [p for p in kept if p.scale == "factor"]
        assumed = sum(p.status == "A" for p in tables)
        text += (f"\nThis screen varied no table: the {len(tables)} tables the screen now varies as one "
                 f"factor each (`scale(<name>)`: base rates by age, the life table, lengths of stay, "
                 f"delays), {assumed} of them assumptions, are not ranked yet.\n")
    return text


def run_screen(out: Path, folder: Path = Path("experiments"), *,
               interventions: Sequence[str] = DEFAULT_INTERVENTIONS,
               baseline: str | None = BASELINE_EXPERIMENT, trajectories: int = 6, seed: int = 16,
               tenants: int | None = 1000, months: int | None = 60, workers: int | None = 2,
               resume: bool = False, progress: bool = False, ranking_folder: Path | None = RANKING.parent,
               model_tree: Mapping[str, Any] | None = None,
               only: Sequence[str] | None = None) -> tuple[pd.DataFrame, dict]:
    """Run the screen: one Morris analysis per experiment in ``out/<name>/`` (resumable), then
    the ranking, written to ``ranking_folder`` (None: not written). Returns the ranking and
    its settings. ``only``: screen just these parameters (a quick look, or a test)."""
    from hhsim.experiment.schema import read_experiment
    from hhsim.studies.sensitivity.run import run_sensitivity

    started = time.perf_counter()
    clock = out / SECONDS  # each experiment's time so far, kept with the runs for a resumed screen
    before: dict = json.loads(clock.read_text()) if resume and clock.is_file() else {}
    experiments = screen_experiments(folder, interventions, baseline)
    tenures = population_tenures(experiments)
    params, skipped = screen_parameters(model_tree, tenures)
    if only is not None:
        params = [p for p in params if p.name in only]
    tables, notes, seconds = [], {}, {}
    for e in experiments:
        t0 = time.perf_counter()
        data, dropped = sensitivity_data(e, params, trajectories, seed, tenants, months)
        if dropped:
            notes[e.name] = f"set by its arms, not screened there: {', '.join(dropped)}"
        exp = read_experiment(data, e.path.resolve())
        res = run_sensitivity(exp, out / e.name, workers=workers, resume=resume, progress=progress)
        ind = res.indices.copy()
        ind["output"] = e.name + ":" + ind["output"]
        tables.append(ind)
        seconds[e.name] = round(time.perf_counter() - t0 + float(before.get(e.name, 0)), 1)
        write_json(clock, {**before, **seconds})
        print(f"{e.name}: {res.summary['runs']} runs, {seconds[e.name]} s", file=sys.stderr)
    indices = pd.concat(tables, ignore_index=True)
    write_csv(out / "indices.csv", indices)
    ranking = rank(indices)
    meta = {"model_version": MODEL_VERSION, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m hhsim.studies.sensitivity.screen " + " ".join(sys.argv[1:]),
            "method": "morris", "trajectories": trajectories, "levels": 4, "seed": seed,
            "tenants_at_most": tenants or 0, "months_at_most": months or 0, "replications": 1,
            "spread": SPREAD, "parameters": len(params), "experiments": [e.name for e in experiments],
            "arms": [e.arm or "baseline" for e in experiments],
            "outputs": list(dict.fromkeys(indices["output"])), "tenures": list(tenures),
            "wall_seconds": round(max(time.perf_counter() - started, sum(seconds.values())), 1),
            "top": TOP, "near_boundary": ranking.loc[ranking["near_boundary"], "parameter"].tolist(),
            "seconds": seconds, "notes": notes}
    if ranking_folder is not None:
        write_ranking(Path(ranking_folder), ranking, params, meta, skipped)
    return ranking, meta


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hhsim.studies.sensitivity.screen",
                                 description="Morris screen of the default model's headline outputs; "
                                             "writes calibration/screen/ranking.csv and prints the top 20.")
    ap.add_argument("--out", type=Path, default=Path("hhsim-results/screen"),
                    help="folder for the runs (resumable; default hhsim-results/screen)")
    ap.add_argument("--experiments", nargs="*", default=list(DEFAULT_INTERVENTIONS),
                    help=f"intervention experiments (default {' '.join(DEFAULT_INTERVENTIONS)}; "
                         f"known: {' '.join(INTERVENTIONS)})")
    ap.add_argument("--trajectories", type=int, default=6, help="Morris trajectories (default 6)")
    ap.add_argument("--tenants", type=int, default=1000, help="at most this many tenants (default 1000)")
    ap.add_argument("--months", type=int, default=60, help="at most this many months (default 60)")
    ap.add_argument("--seed", type=int, default=16, help="design and run seed (default 16)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--resume", action="store_true", help="continue the runs in --out")
    ap.add_argument("--ranking", type=Path, default=RANKING.parent,
                    help="where ranking.csv and screen.toml go (default calibration/screen)")
    ap.add_argument("--table", action="store_true", help="only print the top-20 table of the saved ranking")
    a = ap.parse_args(argv)
    try:
        return _main(a)
    except HhsimError as err:
        print(f"hhsim: error: {err}", file=sys.stderr)
        return 2


def _main(a: argparse.Namespace) -> int:
    if a.table:
        print(screen_table(a.ranking / RANKING.name))
        return 0
    _, meta = run_screen(a.out, interventions=a.experiments, trajectories=a.trajectories, seed=a.seed,
                         tenants=a.tenants, months=a.months, workers=a.workers, resume=a.resume,
                         progress=sys.stderr.isatty(), ranking_folder=a.ranking)
    print(f"{meta['parameters']} parameters, {len(meta['experiments'])} experiments, "
          f"{meta['wall_seconds']} s\n")
    print(screen_table(a.ranking / RANKING.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
