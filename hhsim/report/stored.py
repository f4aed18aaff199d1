"""The tables ``hhsim run`` stored at the top of a results folder, read back as computed.

``hhsim run`` writes every summary and analysis table as CSV (``hhsim.batch.files.write_csv``):
numbers at full precision, and a text cell a spreadsheet could run as a formula behind a
``'``. Read back here, text columns stay text (an arm called ``2024`` or ``NA`` keeps its
name), the ``'`` is taken off, and an empty cell is missing except in a note, where it is no
note: the tables equal those ``hhsim run`` computed, dtypes included.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hhsim.batch.files import FORMULA

#: Text columns of the stored tables (any other column holds numbers or True/False).
TEXT = frozenset({"arm", "perspective", "status", "comparator", "icer_note", "payer", "component",
                  "measure", "dimension", "group", "target", "served_by", "outcome", "check", "unit",
                  "note"})
#: Text columns in which an empty cell is an empty text (no note), not a missing value.
NOTES = frozenset({"icer_note", "note"})


def read_stored(path: Path) -> pd.DataFrame:
    """The table ``hhsim run`` wrote to ``path`` (``name.csv``), as it was computed."""
    try:
        columns = list(pd.read_csv(path, nrows=0).columns)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()  # a table without columns: there was nothing to compare
    text = [c for c in columns if c in TEXT]
    table = pd.read_csv(path, dtype=dict.fromkeys(text, str), keep_default_na=False,
                        na_values={c: [""] for c in columns if c not in NOTES})
    if table.empty:
        return pd.DataFrame(columns=columns)
    for c in text:
        cells = table[c]
        escaped = cells.str.startswith("'", na=False) & cells.str[1:2].isin(list(FORMULA))
        table[c] = cells.mask(escaped, cells.str[1:])
    return table
