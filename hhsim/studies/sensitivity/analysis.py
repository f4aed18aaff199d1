"""Analysis: SALib's indices with confidence intervals, a plain-language ranking, and a
check of Monte-Carlo noise.

Indices (long table: output, parameter, index, value, conf, low, high; ``conf`` is SALib's
half-width of the 95% bootstrap interval):

- sobol: ``S1`` (first order: share of the output's variance explained by the parameter
  alone) and ``ST`` (total order: including its interactions); ``S2`` with second order;
- fast: ``S1`` and ``ST``, as sobol;
- morris: ``mu_star`` (mean absolute elementary effect, output units per move over the
  parameter's whole range), ``mu`` and ``sigma`` (spread: non-linearity or interactions);
- delta: ``delta`` (Borgonovo's moment-independent measure) and ``S1``.

The ranking orders parameters by ST then S1 (sobol, fast), mu_star (morris) or delta then S1
(delta). The text gives each index with its 95% interval, never as a share of variance (a
small sample's estimate can lie outside 0 to 1). ``sample_check`` says when the sample is too
small for the indices to mean much:

- sobol, fast, delta (indices between 0 and 1 in truth): an interval wider than
  ``MAX_WIDTH`` (0.5), an interval lying wholly outside 0 to 1, an interval SALib could not
  bootstrap, or sobol with fewer than ``MIN_SAMPLES`` (16) samples, below which SALib's
  bootstrap of the N sample rows is unreliable itself;
- morris: a listed parameter's mu* interval half-width over ``MAX_RELATIVE`` (50%) of mu*,
  or fewer than 10 trajectories.

The samples suggested scale the widest interval down as 1/sqrt(N), at least doubling N.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from SALib.analyze import delta, fast, morris, sobol

from hhsim.experiment.sensitivity_section import Setup
from hhsim.studies.sensitivity.design import FAST_M, problem

#: Index that ranks parameters, by method, and the index that breaks its ties.
RANKED_BY = {"sobol": "ST", "fast": "ST", "morris": "mu_star", "delta": "delta"}
THEN_BY = {"sobol": "S1", "fast": "S1", "morris": "sigma", "delta": "S1"}
#: The indices printed per parameter, by method.
SHOWN = {"sobol": ("S1", "ST"), "fast": ("S1", "ST"), "morris": ("mu_star",), "delta": ("delta", "S1")}
#: "Too small" rules (module docstring): widest 95% interval of a 0-to-1 index; the largest
#: half-width of mu* as a share of mu*; fewest samples for a trusted bootstrap.
MAX_WIDTH = 0.5
MAX_RELATIVE = 0.5
MIN_SAMPLES = {"sobol": 16, "morris": 10}
#: Monte-Carlo noise above this share of the output's variance across samples gets a warning.
NOISE_LIMIT = 0.10
COLUMNS = ["output", "parameter", "index", "value", "conf", "low", "high", "rank"]


def salib_indices(st: Setup, u: np.ndarray, y: np.ndarray, seed: int) -> dict:
    """SALib's analysis of outputs ``y`` at sample quantiles ``u`` (its result dict)."""
    p = problem(st)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant output gives 0/0: NaN indices
        if st.method == "sobol":
            return sobol.analyze(p, y, calc_second_order=st.second_order, seed=seed)
        if st.method == "morris":
            return morris.analyze(p, u, y, num_levels=st.levels, seed=seed)
        if st.method == "fast":  # SALib 1.6 calls FAST's bootstrap intervals indicative (docs/sensitivity.md)
            warnings.filterwarnings("ignore", "FAST confidence intervals", UserWarning)
            return fast.analyze(p, y, M=FAST_M, seed=seed)
    shown = warnings.formatwarning  # SALib's delta replaces it, and sets its own filter
    try:
        with warnings.catch_warnings(record=True):  # its bin notices and failures, one per parameter
            result = delta.analyze(p, u, y, seed=seed)
    finally:
        warnings.formatwarning = shown
    if "delta" not in result:  # SALib >= 1.6 names Borgonovo's raw estimator delta_raw
        result["delta"], result["delta_conf"] = result["delta_raw"], result["delta_raw_conf"]
    return result


def index_table(st: Setup, output: str, result: dict) -> pd.DataFrame:
    """SALib's result as the long index table (ranks by the method's ranking index)."""
    names = list(st.names)
    kinds = {"sobol": ("S1", "ST"), "fast": ("S1", "ST"), "morris": ("mu_star", "mu", "sigma"),
             "delta": ("delta", "S1")}[st.method]
    rows = []
    for kind in kinds:
        values = np.asarray(result[kind], dtype=float)
        confs = np.asarray(result.get(f"{kind}_conf", np.full(len(names), np.nan)), dtype=float)
        for name, v, c in zip(names, values, confs, strict=True):
            rows.append({"output": output, "parameter": name, "index": kind, "value": v, "conf": c,
                         "low": v - c, "high": v + c})
    if st.method == "sobol" and st.second_order:
        for i, j in ((a, b) for a in range(len(names)) for b in range(a + 1, len(names))):
            v, c = float(result["S2"][i, j]), float(result["S2_conf"][i, j])
            rows.append({"output": output, "parameter": f"{names[i]} & {names[j]}", "index": "S2",
                         "value": v, "conf": c, "low": v - c, "high": v + c})
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    by = {k: table[table["index"] == k].set_index("parameter")["value"]
          for k in (RANKED_BY[st.method], THEN_BY[st.method])}
    order = pd.DataFrame(by).sort_values(list(by), ascending=False, na_position="last", kind="stable")
    table["rank"] = table["parameter"].map(dict(zip(order.index, range(1, len(order) + 1), strict=True)))
    table["rank"] = table["rank"].astype("Int64")
    return table[COLUMNS]


def ranked(table: pd.DataFrame, method: str) -> list[tuple[str, float, float]]:
    """(parameter, ranking index, its conf) of one output, most influential first."""
    key = table[table["index"] == RANKED_BY[method]].sort_values("rank")
    return [(r.parameter, float(r.value), float(r.conf)) for r in key.itertuples()]


def _label(output: str) -> str:
    """``net_saving`` -> ``net saving``; ``mean:<column>`` stays as it is."""
    return output if ":" in output else output.replace("_", " ")


def _number(v: float) -> str:
    """A readable number: 1,681,234 or 0.761."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def interval_text(value: float, low: float, high: float, kind: str) -> str:
    """``0.37 (0.21 to 0.53)``: an index with its 95% interval; Morris's in output units."""
    number = _number if kind in ("mu_star", "mu", "sigma") else (lambda v: f"{v:.2f}")
    if not np.isfinite(value):
        return "not computed"
    interval = f" ({number(low)} to {number(high)})" if np.isfinite(high - low) else " (no interval)"
    return number(value) + interval


def _index(table: pd.DataFrame, parameter: str, kind: str) -> str:
    """``S1 0.37 (0.21 to 0.53)``: an index with its 95% interval (SALib's)."""
    r = table[(table["parameter"] == parameter) & (table["index"] == kind)].iloc[0]
    return f"{kind} {interval_text(r['value'], r['low'], r['high'], kind)}"


def ranking_text(output: str, table: pd.DataFrame, method: str, spread: float, samples: int) -> str:
    """One sentence: which parameters drive the output, each index with its 95% interval, e.g.
    ``net saving (...): X S1 0.37 (0.21 to 0.53), ST 0.41 (0.30 to 0.52); Y ...; the rest ST <
    0.05 each.`` ``table``: the output's rows of the index table; ``samples``: SALib's N."""
    label = _label(output)
    if not math.isfinite(spread):
        return f"{label}: indices could not be computed (the output is undefined at some points)."
    if spread == 0:
        return f"{label}: does not vary across the samples, so no parameter drives it."
    order = ranked(table, method)
    failed = [n for n, v, _ in order if not math.isfinite(v)]
    if failed:
        why = (" (Borgonovo's delta needs at least 10 samples in each of at least 2 bins of a parameter)"
               if method == "delta" else "")
        return (f"{label}: SALib could not compute the {method} indices of {', '.join(failed)} from "
                f"N = {samples} samples{why}; use --samples {max(2 * samples, 64)} or more.")
    if method == "morris":
        top = order[0][1]
        big = [(n, v, c) for n, v, c in order if v >= 0.05 * top] or order[:1]
        parts = [f"{n} (mu* {_number(v)}; 95% interval {_number(v - c)} to {_number(v + c)})"
                 for n, v, c in big]
        rest = "" if len(big) == len(order) else "; the rest below 5% of the largest"
        return (f"{label}: most influential {parts[0]}"
                + (", then " + ", ".join(parts[1:]) if len(parts) > 1 else "") + rest
                + " (mu*: mean absolute effect of moving a parameter over its whole range).")
    key = RANKED_BY[method]
    what = {"sobol": "first-order S1 and total-order ST", "fast": "first-order S1 and total-order ST",
            "delta": "Borgonovo's delta and first-order S1"}[method]
    big = [n for n, v, _ in order if v >= 0.05]
    if not big:
        return f"{label}: no parameter reaches {key} 0.05; each matters little, alone or with others."
    parts = [f"{n} " + ", ".join(_index(table, n, k) for k in SHOWN[method]) for n in big]
    rest = "" if len(big) == len(order) else f"; the rest {key} < 0.05 each"
    return f"{label} ({what}, 95% intervals): " + "; ".join(parts) + rest + "."


def _suggest(samples: int, ratio: float, method: str) -> int:
    """Samples to bring an interval ``ratio`` times too wide within the rule (1/sqrt(N)),
    at least double ``samples``; a power of 2 for sobol."""
    n = max(2 * samples, MIN_SAMPLES.get(method, 0),
            math.ceil(samples * ratio**2) if math.isfinite(ratio) else 0)
    return 1 << (n - 1).bit_length() if method == "sobol" else n


def sample_check(output: str, table: pd.DataFrame, method: str, samples: int) -> str | None:
    """A warning when the sample is too small for the output's indices (module docstring),
    saying why and how many samples to use; None otherwise."""
    label = _label(output)
    rows = table[table["index"].isin(SHOWN[method]) & np.isfinite(table["value"])]
    if rows.empty:
        return None
    floor = MIN_SAMPLES.get(method, 0)
    unit = "trajectories" if method == "morris" else "samples"
    why = [f"fewer than {floor} {unit}"] if samples < floor else []
    if rows["conf"].isna().any():
        why.append("SALib could not bootstrap some intervals")
    if method == "morris":
        top = rows["value"].max()
        listed = rows[(rows["value"] >= 0.05 * top) & (rows["value"] > 0)]
        relative = (listed["conf"] / listed["value"]).max()
        if relative > MAX_RELATIVE:
            worst = listed.loc[(listed["conf"] / listed["value"]).idxmax()]
            why.append(f"{worst['parameter']}'s mu* is {_number(worst['value'])} (95% interval "
                       f"{_number(worst['low'])} to {_number(worst['high'])}), uncertain by more than "
                       f"{MAX_RELATIVE:.0%}")
        if not why:
            return None
        more = _suggest(samples, relative / MAX_RELATIVE, method)
        return (f"{label}: the sample (N = {samples} trajectories) is too small for a reliable ranking: "
                + "; ".join(why) + f"; use --samples {more} or more.")
    widest = float((rows["high"] - rows["low"]).max())
    if widest > MAX_WIDTH:
        why.append(f"the widest spans {widest:.2f}, more than {MAX_WIDTH}")
    outside = rows[(rows["low"] > 1) | (rows["high"] < 0)]
    why += [f"{r.parameter}'s {r.index} interval lies wholly outside 0 to 1" for r in outside.itertuples()]
    if not why:
        return None
    return (f"{label}: the sample (N = {samples}) is too small for these indices: their 95% intervals run "
            f"from {rows['low'].min():.2f} to {rows['high'].max():.2f} (" + "; ".join(why)
            + f"); use --samples {_suggest(samples, widest / MAX_WIDTH, method)} or more.")


def noise_check(values: np.ndarray, se: np.ndarray, output: str) -> dict:
    """Monte-Carlo noise against the output's variance across samples.

    ``noise_share`` = mean squared standard error of the points' differences (``se``: under
    common random numbers, the noise a replication shares with every point is left out, as
    it does not move the indices) / variance of the point values. Above ``NOISE_LIMIT``,
    simulation noise blurs the indices (it inflates the unexplained variance and the
    intervals).
    """
    values, se = np.asarray(values, float), np.asarray(se, float)
    spread = float(np.var(values, ddof=1)) if values.size > 1 else float("nan")
    if not np.isfinite(se).any():
        return {"noise_share": None, "variance": spread,
                "warning": f"{_label(output)}: Monte-Carlo noise was not measured (one replication "
                           "per point); run with --replications 2 or more to check it."}
    noise = float(np.nanmean(se ** 2))
    share = noise / spread if spread > 0 else (0.0 if noise == 0 else float("inf"))
    warning = None
    if share > NOISE_LIMIT:
        warning = (f"{_label(output)}: Monte-Carlo noise is {share:.0%} of the output's variance across "
                   f"samples (over {NOISE_LIMIT:.0%}); the indices are blurred by simulation noise. "
                   "Use more tenants (--tenants) or replications (--replications).")
    return {"noise_share": share, "variance": spread, "warning": warning}
