"""The files and folders users point hhsim at: checked before they are opened.

Input files must be regular files (never a device such as ``/dev/zero``, a named pipe or a
socket, which would hang or fill memory) no larger than a limit per kind; paths must be
ones the operating system can hold (no NUL, at most 4,096 bytes, 255 per part). Every
failure is one line naming the path and the fix (``HhsimError``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hhsim.core.errors import HhsimError

MAX_PATH_BYTES = 4096  # Linux PATH_MAX
MAX_PART_BYTES = 255  # Linux NAME_MAX: one folder or file name
MiB = 1024 * 1024
#: Largest file read, by kind (bytes): far above any real file of that kind.
LIMITS = {"toml": 16 * MiB, "csv": 4096 * MiB, "parquet": 4096 * MiB}


def check_path(path: str | os.PathLike, where: str | None = None) -> Path:
    """``path`` as a Path if the operating system can hold it; else a one-line error."""
    text = os.fspath(path)
    where = where or text
    if "\0" in text:
        raise HhsimError(where, "the path holds a NUL character", "give a path without control characters")
    raw = os.fsencode(text)
    if len(raw) > MAX_PATH_BYTES:
        raise HhsimError(where, f"the path is {len(raw):,} bytes long, more than {MAX_PATH_BYTES:,}",
                         "give a shorter path")
    longest = max((len(os.fsencode(part)) for part in Path(text).parts), default=0)
    if longest > MAX_PART_BYTES:
        raise HhsimError(where, f"a folder or file name in the path is {longest:,} bytes long, more "
                         f"than {MAX_PART_BYTES}", "give shorter names")
    return Path(text)


def input_file(path: str | os.PathLike, what: str, kind: str, where: str | None = None) -> Path:
    """The path of a readable regular file of ``kind`` (``LIMITS``); ``what`` names it in errors
    (e.g. "stock file")."""
    p = check_path(path, where)
    shown = where or str(p)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise HhsimError(shown, f"{what} not found", "check the path") from None
    except NotADirectoryError:
        raise HhsimError(shown, f"{what} not found (a part of the path is a file, not a folder)",
                         "check the path") from None
    except OSError as exc:
        raise HhsimError(shown, f"{what} cannot be read ({exc.strerror})", "check the path and its "
                         "permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise HhsimError(shown, f"is a folder, not a {what}", "give the path of the file")
    if not stat.S_ISREG(st.st_mode):
        raise HhsimError(shown, f"is not a regular file (a device, pipe or socket), so it cannot be "
                         f"a {what}", "give the path of a file saved on disk")
    limit = LIMITS[kind]
    if st.st_size > limit:
        raise HhsimError(shown, f"is {st.st_size / MiB:,.0f} MiB, more than the {limit / MiB:,.0f} MiB "
                         f"allowed for a {what}", f"check that this is the {what} you meant")
    return p


#: Bytes read at a time (a file that grows past its limit while it is read stops at limit + 1).
CHUNK = 1 << 20


def read_input(path: str | os.PathLike, what: str, kind: str, where: str | None = None) -> bytes:
    """The bytes of an input file (``input_file``'s checks first)."""
    p = input_file(path, what, kind, where)
    limit, chunks, size = LIMITS[kind], [], 0
    try:
        with p.open("rb") as fh:  # in chunks: read(limit) would allocate the whole limit at once
            while size <= limit and (chunk := fh.read(min(CHUNK, limit + 1 - size))):
                chunks.append(chunk)
                size += len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise HhsimError(where or str(p), f"{what} cannot be read ({exc.strerror})",
                         "check the file's permissions") from None


def output_folder(path: str | os.PathLike, where: str = "--out") -> Path:
    """An output folder's path, checked before anything is written (it need not exist)."""
    p = check_path(path, where)
    try:
        if p.exists() and not p.is_dir():
            raise HhsimError(where, f"{p} is a file, not a folder", "give a folder for the results")
    except OSError as exc:
        raise HhsimError(where, f"{p} cannot be used ({exc.strerror})", "give another folder") from None
    return p
