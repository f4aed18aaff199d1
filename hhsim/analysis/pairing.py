"""Pairing runs: each arm against the baseline that faced the same random numbers.

Records are run-level rows (one per arm x replication). A parameter-sampling batch adds a
``point`` (or ``draw``) column: runs pair within the same point and replication. Per-run
tables (monthly, groups) pair within a run's rows too, on more keys (``by``: ``step``;
``dimension`` and ``group``). Every comparison of an arm with the baseline in
``hhsim.analysis`` and ``hhsim.report`` pairs through ``aligned`` (``paired`` is its
difference), so it works unchanged on either kind of batch. To treat parameter points as
the draws (e.g. for an acceptability curve of parameter uncertainty), average the
replications of each point first (``mean_over_replications``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

#: Columns that identify a draw, where present (the pairing key of arms).
DRAW_KEYS: tuple[str, ...] = ("point", "draw", "replication")


def draw_keys(records: pd.DataFrame) -> list[str]:
    """The pairing columns present in ``records`` (``replication`` at least)."""
    keys = [k for k in DRAW_KEYS if k in records.columns]
    if not keys:
        raise ValueError("records need a 'replication' (or 'point'/'draw') column to pair arms")
    return keys


def aligned(records: pd.DataFrame, arm: str, comparator: str,
            by: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``arm`` and of ``comparator`` in the draws both have, indexed by the draw
    keys (then ``by``) in the arm's order: row i of each faced the same random numbers (an
    arm against itself gives its rows twice)."""
    keys = [*draw_keys(records), *by]
    a = records[records["arm"] == arm].set_index(keys)
    b = records[records["arm"] == comparator].set_index(keys)
    common = a.index.intersection(b.index)
    return a.loc[common], b.loc[common]


def paired(records: pd.DataFrame, baseline: str, columns: list[str],
           comparator: str | None = None, by: Sequence[str] = ()) -> dict[str, pd.DataFrame]:
    """For each arm other than ``comparator`` (default: the baseline), a frame indexed by
    draw (then ``by``) with ``columns`` of the arm minus the comparator in the same draw
    (arms without a common draw are left out)."""
    comparator = comparator or baseline
    out = {}
    for arm in dict.fromkeys(records["arm"]):
        if arm == comparator:
            continue
        a, b = aligned(records, arm, comparator, by)
        if len(a):
            out[arm] = a[columns] - b[columns]
    return out


def mean_over_replications(records: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns averaged over the replications of each arm and point (or draw): one
    row per arm x point, keyed by ``point``/``draw`` only."""
    keys = [k for k in draw_keys(records) if k != "replication"]
    if not keys:
        raise ValueError("records have no 'point' or 'draw' column to average replications within")
    numeric = [c for c in records.select_dtypes("number").columns if c not in (*keys, "replication", "seed")]
    return records.groupby(["arm", *keys], sort=False)[numeric].mean().reset_index()
