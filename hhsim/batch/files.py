"""Writing files safely: atomically, with a SHA-256 digest of what was written, CSV text
that no spreadsheet runs as a formula, and names that cannot leave their folder.

A file is written to a temporary name in its folder (``.<name>.<pid>.tmp``) and renamed
into place, so a crash at any moment leaves only whole files (and perhaps a temporary file,
which ``remove_temporary`` clears). A write that fails removes its temporary file and
becomes one line naming the file and the operating system's reason.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path

import pandas as pd

from hhsim.core.errors import HhsimError, printable

#: Temporary files of ``atomic_write`` (and of ``check_writable``).
TEMPORARY = re.compile(r"\..+\.\d+\.tmp")
#: Cell openings a spreadsheet may run as a formula (OWASP, "CSV injection").
FORMULA = ("=", "+", "-", "@", "\t", "\r")
#: The longest name (bytes, UTF-8) given to a file, leaving room for suffixes within 255.
MAX_NAME = 200

Digest = dict  # {"sha256": hex digest, "bytes": size}


def digest(data: bytes) -> Digest:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def file_digest(path: Path) -> Digest:
    with open(path, "rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return {"sha256": sha, "bytes": path.stat().st_size}


def os_error(path: Path, exc: OSError, problem: str = "cannot be written") -> HhsimError:
    """One line for a failed write: the file or folder, the system's reason and the fix."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free disk space, then run the same command with --resume"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose a writable --out folder"
    else:
        fix = "check the disk and the folder, then run the same command with --resume"
    return HhsimError(str(path), f"{problem} ({reason})", fix)


def _write_via_temporary(path: Path, write: Callable[[Path], object]) -> Digest:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        written = file_digest(tmp)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return written


def atomic_write(path: Path, write: Callable[[Path], object]) -> Digest:
    """Write a file via a temporary name in the same folder, then rename it into place;
    return the digest of what was written."""
    try:
        return _write_via_temporary(path, write)
    except OSError as exc:
        raise os_error(path, exc) from None


def json_bytes(data: Mapping) -> bytes:
    """How ``write_json`` writes ``data``."""
    return json.dumps(data, indent=2, default=str).encode()


def write_json(path: Path, data: Mapping) -> Digest:
    return atomic_write(path, lambda p: p.write_bytes(json_bytes(data)))


def _formula_safe_cell(value: object) -> object:
    if not isinstance(value, str) or not value.startswith(FORMULA):
        return value
    if value[0] in "+-":
        with suppress(ValueError):
            float(value)
            return value  # a number written as text
    return "'" + value


def formula_safe(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every text cell (and column name) that a spreadsheet could run as a
    formula written with a leading ``'``; numbers, negative ones too, are untouched."""
    safe = table.rename(columns=_formula_safe_cell)  # a copy: the table is left as it was
    for i, dtype in enumerate(safe.dtypes):
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype) \
                or isinstance(dtype, pd.CategoricalDtype):
            safe.isetitem(i, safe.iloc[:, i].astype(object).map(_formula_safe_cell))
    return safe


def write_csv(path: Path, table: pd.DataFrame) -> Digest:
    """Write a table as CSV (no index), atomically and safe to open in a spreadsheet: every
    CSV file hhsim writes goes through here. Lines end in CRLF (RFC 4180), so a cell holding
    a carriage return is quoted (with LF endings, Python's writer leaves it bare)."""
    safe = formula_safe(table)
    return atomic_write(path, lambda p: safe.to_csv(p, index=False, lineterminator="\r\n"))


def plain_name(name: str, what: str, folder: Path) -> str:
    """``name`` if it is a plain file name that stays directly inside ``folder``; else a
    one-line refusal (no separator, NUL, ``..``, leading dot or more than 200 bytes)."""
    if not isinstance(name, str) or not name:
        problem = "is empty"
    elif any(c in name for c in "/\\\0"):
        problem = "contains '/', '\\' or NUL"
    elif name.startswith(".") or ".." in name:
        problem = "starts with '.' or contains '..'"
    elif len(name.encode("utf-8", "surrogatepass")) > MAX_NAME:
        problem = f"is longer than {MAX_NAME} bytes"
    elif Path(name).name != name or Path(name).is_absolute() or len(Path(name).parts) != 1:
        problem = "is not a plain file name"
    else:
        return name
    raise HhsimError(str(folder), f"refused {what} name '{printable(str(name))[:80]}': it {problem}, "
                     "and every file hhsim writes or reads must stay directly inside its folder",
                     "name arms with letters, digits, '-' and '_'")


def check_writable(folder: Path) -> None:
    """A one-line error unless a new file can be written in ``folder`` (tried with a
    temporary file, removed again)."""
    probe = folder / f".write-test.{os.getpid()}.tmp"
    try:
        _write_via_temporary(probe, lambda p: p.write_bytes(b""))
        probe.unlink()
    except OSError as exc:
        raise os_error(folder, exc, "is not writable") from None


def remove_temporary(folder: Path) -> None:
    """Remove the temporary files a crash left in ``folder``."""
    for p in [p for p in folder.iterdir() if TEMPORARY.fullmatch(p.name) and p.is_file()]:
        try:
            p.unlink(missing_ok=True)
        except OSError as exc:
            raise os_error(p, exc, "cannot be removed") from None
