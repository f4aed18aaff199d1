"""Cost-effectiveness acceptability curve from any set of paired draws.

For each threshold (£ per QALY), the share of draws in which each arm has the highest net
monetary benefit (threshold x QALYs - cost). What the curve means depends on the draws:

- draws from a probabilistic sensitivity analysis (parameter points): the probability that
  each arm is the most cost-effective, given parameter uncertainty (a true CEAC);
- replications of one parameter set: only how often simulation noise ranks each arm first
  (``RUN_LEVEL_LABEL``); it says nothing about parameter uncertainty.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hhsim.analysis.cost_effectiveness import nmb
from hhsim.analysis.pairing import draw_keys

RUN_LEVEL_LABEL = ("share of replications in which the arm has the highest NMB "
                   "(simulation noise only, not parameter uncertainty)")


def ceac(draws: pd.DataFrame, thresholds: Sequence[float], cost: str = "cost",
         effect: str = "qalys") -> pd.DataFrame:
    """Long table (threshold, arm, probability) from ``draws``: one row per arm x draw with
    ``cost`` (£) and ``effect`` (QALYs) columns and the draw key columns (see ``pairing``).
    Only draws in which every arm has a value count."""
    keys = draw_keys(draws)
    wide = draws.pivot_table(index=keys, columns="arm", values=[cost, effect], aggfunc="first").dropna()
    arms = list(dict.fromkeys(a for a in draws["arm"] if a in wide[cost].columns))
    c, e = wide[cost][arms].to_numpy(float), wide[effect][arms].to_numpy(float)
    lam = np.asarray(thresholds, float)
    best = nmb(e[None], lam[:, None, None], c[None]).argmax(axis=2)  # NMB: threshold x draw x arm
    share = np.stack([(best == k).mean(axis=1) for k in range(len(arms))], axis=1)
    return pd.DataFrame({"threshold": np.repeat(lam, len(arms)), "arm": arms * len(lam),
                         "probability": share.ravel()})
