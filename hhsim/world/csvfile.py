"""Reading a user's CSV file (a stock or a profile): whole or not at all.

Both readers share these rules: a regular UTF-8 text file (a byte-order mark is allowed),
comma-separated, a header row naming known columns, each at most once; blank rows are
skipped; a row with more values than the header names is refused; every problem is found
before anything is used, and reported in one ``HhsimError``: a one-line message showing
the first few, with every problem in its ``details`` (``hhsim validate FILE`` lists them).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from hhsim.core.errors import HhsimError, did_you_mean
from hhsim.core.inputs import read_input

SAVE_AS_CSV = "save it from the spreadsheet as 'CSV UTF-8 (comma delimited)'"
SHOWN = 3  # problems shown in the one-line message
MAX_DETAILS = 1000  # problems kept for 'hhsim validate'


def fail(path: Path, problems: Sequence[str], what: str = "nothing was loaded") -> NoReturn:
    """Raise one error: the first problems on one line, all of them in ``details``."""
    n = len(problems)
    text = f"{n} problem{'s' if n > 1 else ''}, {what}: " + "; ".join(problems[:SHOWN])
    if n > SHOWN:
        text += f"; and {n - SHOWN} more (hhsim validate {path} lists them all)"
    raise HhsimError(str(path), text, details=problems[:MAX_DETAILS])


class Problems:
    """Problems found in a file, each at a line (and column), reported together."""

    def __init__(self, path: Path, positions: Mapping[str, int], what: str = "nothing was loaded") -> None:
        self.path = path
        self.positions = positions  # column name -> position in the header, for sorting
        self.what = what
        self.found: list[tuple[int, int, str]] = []

    def add(self, line: int, column: str | None, reason: str, fix: str) -> None:
        where = f"line {line}, column {column}" if column else f"line {line}"
        self.found.append((line, self.positions.get(column or "", -1), f"{where}: {reason} (fix: {fix})"))

    def raise_if_any(self) -> None:
        if self.found:
            fail(self.path, [text for *_, text in sorted(self.found, key=lambda p: p[:2])], self.what)


def read_rows(path: Path, what: str, row_what: str) -> tuple[list[list[str]], list[int]]:
    """The non-blank rows of a CSV file (header first), with each row's line number.

    ``what`` names the file ("stock file"), ``row_what`` what each row holds ("adult tenant").
    """
    data = read_input(path, what, "csv")
    if data.startswith(b"PK\x03\x04"):
        fail(path, [f"is a spreadsheet workbook, not CSV text (fix: {SAVE_AS_CSV})"])
    if b"\0" in data:
        fail(path, [f"is not a text file (fix: {SAVE_AS_CSV})"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        fail(path, [f"line {line}: is not UTF-8 text (fix: {SAVE_AS_CSV})"])
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, lines = [], []
    try:
        for row in reader:
            if "".join(row).strip():
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:
        fail(path, [f"line {reader.line_num}: is not valid CSV ({exc}) (fix: {SAVE_AS_CSV})"])
    if not rows:
        fail(path, [f"the file is empty (fix: give a header row, then one row per {row_what})"])
    head = rows[0]
    if len(head) == 1 and (";" in head[0] or "\t" in head[0]):
        sep = "';'" if ";" in head[0] else "tabs"
        fail(path, [f"line {lines[0]}: values are separated by {sep}, not commas (fix: {SAVE_AS_CSV})"])
    if len(rows) == 1:
        fail(path, [f"the file has a header but no rows (fix: add one row per {row_what} "
                    f"after line {lines[0]})"])
    return rows, lines


def header(rows: list[list[str]], line: int, known: Sequence[str], required: Sequence[str],
           problems: Problems) -> dict[str, int]:
    """Known column name -> position; problems for missing, unknown, repeated or nameless columns."""
    names = [name.strip().lower() for name in rows[0]]
    if not set(names) & set(known):
        problems.add(line, None, "names no known column, so the file has no header row",
                     f"start the file with a header row naming its columns, such as {','.join(required)}")
        problems.raise_if_any()
    where: dict[str, int] = {}
    for pos, name in enumerate(names):
        if not name:
            if any(pos < len(row) and row[pos].strip() for row in rows[1:]):
                problems.add(line, str(pos + 1), "the column has values but no name",
                             "name the column or delete it")
        elif name in where:
            problems.add(line, name, f"appears twice (columns {where[name] + 1} and {pos + 1})",
                         "keep one of them")
        elif name not in known:
            guess = did_you_mean(name, known)
            problems.add(line, name, "unknown column",
                         f"did you mean '{guess}'?" if guess else
                         f"remove it, or rename it to one of: {', '.join(known)}")
        else:
            where[name] = pos
    for name in required:
        if name not in where:
            problems.add(line, name, "the column is missing", f"add a column named {name}")
    return where


def data_rows(rows: list[list[str]], lines: list[int],
              problems: Problems) -> tuple[list[list[str]], list[int]]:
    """Data rows cut or padded to the header's width; rows with extra values are set aside."""
    width = len(rows[0])
    kept, kept_lines = [], []
    for row, line in zip(rows[1:], lines[1:], strict=True):
        if len(row) != width:
            if "".join(row[width:]).strip():
                problems.add(line, None, f"has {len(row)} values but the header names {width} columns",
                             "remove the extra values, or quote values that contain commas")
                continue
            row = row[:width] + [""] * (width - len(row))
        kept.append(row)
        kept_lines.append(line)
    return kept, kept_lines
