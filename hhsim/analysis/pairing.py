"""Pairing runs: each arm against the baseline that faced the same random numbers.

Records are run-level rows (one per arm x replication). A parameter-sampling batch adds a
``point`` (or ``draw``) column: runs pair within the same point and replication. Every
analysis in ``hhsim.analysis`` pairs through here, so it works unchanged on either. To treat
parameter points as the draws (e.g. for an acceptability curve of parameter uncertainty),
average the replications of each point first (``mean_over_replications``).
"""

from __future__ import annotations

import pandas as pd

#: Columns that identify a draw, where present (the pairing key of arms).
DRAW_KEYS: tuple[str, ...] = ("point", "draw", "replication")


def draw_keys(records: pd.DataFrame) -> list[str]:
    """The pairing columns present in ``records`` (``replication`` at least)."""
    keys = [k for k in DRAW_KEYS if k in records.columns]
    if not keys:
        raise ValueError("records need a 'replication' (or 'point'/'draw') column to pair arms")
    return keys


def paired(records: pd.DataFrame, baseline: str, columns: list[str],
           comparator: str | None = None) -> dict[str, pd.DataFrame]:
    """For each arm other than ``comparator`` (default: the baseline), a frame indexed by
    draw with ``columns`` of the arm minus the comparator in the same draw (arms without a
    common draw are left out)."""
    comparator = comparator or baseline
    keys = draw_keys(records)
    ref = records[records["arm"] == comparator].set_index(keys)[columns]
    out = {}
    for arm, group in records.groupby("arm", sort=False):
        if arm == comparator:
            continue
        g = group.set_index(keys)[columns]
        common = g.index.intersection(ref.index)
        if len(common):
            out[arm] = g.loc[common] - ref.loc[common]
    return out



def mean_over_replications(records: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns averaged over the replications of each arm and point (or draw): one
    row per arm x point, keyed by ``point``/``draw`` only."""
    keys = [k for k in draw_keys(records) if k != "replication"]
    if not keys:
        raise ValueError("records have no 'point' or 'draw' column to average replications within")
    numeric = [c for c in records.select_dtypes("number").columns if c not in (*keys, "replication", "seed")]
    return records.groupby(["arm", *keys], sort=False)[numeric].mean().reset_index()
