"""Sampling: SALib's designs on the unit hypercube, turned into parameter points.

Every method samples quantiles ``u`` in [0, 1] (SALib's problem has unit bounds); each
parameter's value is its distribution's ``ppf(u)`` (for ``[low, high]`` bounds: uniform
between them). Analysing on the quantile scale makes Morris effects comparable across
parameters: a move over a parameter's whole range is a change of 1 in ``u``.

With ``oneway``, the design also holds a base point (every parameter at its median) and,
for each parameter alone, a low and a high point (its bounds for uniform and triangular
distributions, else its 2.5% and 97.5% quantiles): the one-way analysis of the tornado plot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from SALib.sample import fast_sampler, latin, morris, sobol

from hhsim.core.distributions import BOUNDED
from hhsim.experiment.sensitivity_section import Setup

#: Quantiles of the one-way low and high values of unbounded distributions.
ONEWAY_QUANTILES = (0.025, 0.975)
#: SALib's FAST interference factor.
FAST_M = 4


def problem(st: Setup) -> dict:
    """SALib's problem: the parameters on the unit interval (quantiles)."""
    return {"num_vars": len(st.names), "names": list(st.names), "bounds": [[0.0, 1.0]] * len(st.names)}


def point_count(st: Setup) -> int:
    """How many points the design has (SALib's sample, plus the one-way points)."""
    d = len(st.names)
    per = {"sobol": (2 * d + 2) if st.second_order else (d + 2), "morris": d + 1, "fast": d, "delta": 1}
    return st.samples * per[st.method] + (2 * d + 1 if st.oneway else 0)


def sample_quantiles(st: Setup, seed: int) -> np.ndarray:
    """SALib's sample for the method: one row of quantiles per point."""
    p = problem(st)
    if st.method == "sobol":
        return sobol.sample(p, st.samples, calc_second_order=st.second_order, seed=seed)
    if st.method == "morris":
        return morris.sample(p, st.samples, num_levels=st.levels, seed=seed)
    if st.method == "fast":
        return fast_sampler.sample(p, st.samples, M=FAST_M, seed=seed)
    return latin.sample(p, st.samples, seed=seed)


def oneway_quantiles(st: Setup) -> tuple[list[dict], np.ndarray]:
    """The one-way rows (kind base/low/high, parameter) and their quantiles."""
    d = len(st.names)
    rows, quantiles = [{"kind": "base", "parameter": ""}], [np.full(d, 0.5)]
    for i, (name, dist) in enumerate(zip(st.names, st.distributions, strict=True)):
        ends = (0.0, 1.0) if dist.kind in BOUNDED else ONEWAY_QUANTILES
        for side, q in zip(("low", "high"), ends, strict=True):
            u = np.full(d, 0.5)
            u[i] = q
            rows.append({"kind": side, "parameter": name})
            quantiles.append(u)
    return rows, np.array(quantiles)


def build_design(st: Setup, seed: int) -> pd.DataFrame:
    """The design: one row per point with ``point``, ``kind`` (sample, base, low, high),
    ``parameter`` (of a one-way row), ``q:<name>`` quantiles and ``<name>`` values."""
    u = sample_quantiles(st, seed)
    labels = [{"kind": "sample", "parameter": ""}] * len(u)
    if st.oneway:
        extra_labels, extra = oneway_quantiles(st)
        labels, u = labels + extra_labels, np.vstack([u, extra])
    columns = {"point": np.arange(len(u)), **pd.DataFrame(labels).to_dict("list"),
               **{f"q:{name}": u[:, i] for i, name in enumerate(st.names)},
               **{name: dist.ppf(u[:, i]) for i, (name, dist) in enumerate(zip(st.names, st.distributions,
                                                                                  strict=True))}}
    return pd.DataFrame(columns)  # built at once: column by column fragments a wide frame


def design_points(design: pd.DataFrame, names: tuple[str, ...]) -> list[dict[str, float]]:
    """The parameter overrides of each point, in design order."""
    return [{n: float(v) for n, v in zip(names, row, strict=True)}
            for row in design[list(names)].itertuples(index=False)]
