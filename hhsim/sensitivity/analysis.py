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

The ranking orders parameters by ST (sobol, fast), mu_star (morris) or delta (delta).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from SALib.analyze import delta, fast, morris, sobol

from hhsim.sensitivity.design import FAST_M, problem
from hhsim.sensitivity.section import Setup

#: Index that ranks parameters, by method.
RANKED_BY = {"sobol": "ST", "fast": "ST", "morris": "mu_star", "delta": "delta"}
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
        if st.method == "fast":
            return fast.analyze(p, y, M=FAST_M, seed=seed)
        return delta.analyze(p, u, y, seed=seed)


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
    key = table[table["index"] == RANKED_BY[st.method]].set_index("parameter")["value"]
    ranks = key.rank(ascending=False, method="first", na_option="bottom")
    table["rank"] = table["parameter"].map(ranks).astype("Int64")
    return table[COLUMNS]


def ranked(table: pd.DataFrame, method: str) -> list[tuple[str, float, float]]:
    """(parameter, ranking index, its conf) of one output, most influential first."""
    key = table[table["index"] == RANKED_BY[method]].sort_values("rank")
    return [(r.parameter, float(r.value), float(r.conf)) for r in key.itertuples()]


def _label(output: str) -> str:
    """``net_saving`` -> ``net saving``; ``mean:<column>`` stays as it is."""
    return output if ":" in output else output.replace("_", " ")


def ranking_text(output: str, order: list[tuple[str, float, float]], method: str,
                 spread: float) -> str:
    """One sentence: which parameters drive the output, e.g. ``net saving: X explains 62%
    of the variance (total-order ST); Y 20%; the rest < 5% each.``"""
    if not math.isfinite(spread) or spread == 0:
        return f"{_label(output)}: does not vary across the samples, so no parameter drives it."
    if any(not math.isfinite(v) for _, v, _ in order):
        return f"{_label(output)}: indices could not be computed (the output is undefined at some points)."
    if method == "morris":
        top = order[0][1]
        big = [(n, v) for n, v, _ in order if v >= 0.05 * top] or [order[0][:2]]
        parts = [f"{n} (mu* {v:,.4g})" for n, v in big]
        rest = "" if len(big) == len(order) else "; the rest below 5% of the largest"
        return (f"{_label(output)}: most influential {parts[0]}"
                + (", then " + ", ".join(parts[1:]) if len(parts) > 1 else "") + rest
                + " (mu*: mean absolute effect of moving a parameter over its whole range).")
    what = {"sobol": "of the variance (total-order ST)", "fast": "of the variance (total-order ST)",
            "delta": "(delta, moment-independent)"}[method]
    big = [(n, v) for n, v, _ in order if v >= 0.05]
    if not big:
        return f"{_label(output)}: no parameter reaches 5% {what}; each matters little alone."
    first = f"{_label(output)}: {big[0][0]} explains {big[0][1]:.0%} {what}" if method != "delta" else \
        f"{_label(output)}: {big[0][0]} matters most (delta {big[0][1]:.2f})"
    others = [f"{n} {v:.0%}" if method != "delta" else f"{n} {v:.2f}" for n, v in big[1:]]
    rest = "" if len(big) == len(order) else "; the rest < 5% each" if method != "delta" \
        else "; the rest < 0.05 each"
    return first + "".join(f"; {o}" for o in others) + rest + "."


def noise_check(values: np.ndarray, se: np.ndarray, output: str) -> dict:
    """Monte-Carlo noise against the output's variance across samples.

    ``noise_share`` = mean squared replication-level standard error / variance of the point
    values. Above ``NOISE_LIMIT``, simulation noise blurs the indices (it inflates the
    unexplained variance and the intervals).
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
