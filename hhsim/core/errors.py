"""User-facing errors (one line naming the key and the fix, never a traceback) and notices."""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterable, Sequence

#: Control characters (C0, DEL and C1) and how they are shown: as escapes, never raw.
_CONTROL = ({c: f"\\x{c:02x}" for c in (*range(32), *range(0x7F, 0xA0))}
            | {ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})


def printable(text: str) -> str:
    """``text`` with control characters (newlines, tabs) written as escapes."""
    return str(text).translate(_CONTROL)


def shortened(text: str, limit: int = 160) -> str:
    """``text`` cut in the middle to at most about ``limit`` characters (a long path stays
    recognisable by its start and end)."""
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-(limit // 2 - 3):]}"


def one_line(text: str) -> str:
    """``text`` on one line: line breaks become '; ', other control characters escapes."""
    return printable(re.sub(r"\s*\n\s*", "; ", str(text).strip()))


class HhsimError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits 2.

    ``where`` (a key, a dotted name or a path; shortened when very long), ``problem`` and
    ``fix`` make that line. ``details`` may list every problem found (e.g. each bad cell of
    a CSV file) for ``hhsim validate`` to print in full.
    """

    def __init__(self, where: str, problem: str, fix: str | None = None,
                 details: Sequence[str] = ()) -> None:
        where = shortened(printable(where))
        self.where = where
        self.problem = one_line(problem)
        self.fix = one_line(fix) if fix else fix
        self.details = tuple(details)
        text = f"{where}: {self.problem}" if where else self.problem
        if self.fix:
            text += f" (fix: {self.fix})"
        super().__init__(text)

    def __reduce__(self) -> tuple:
        # Rebuilt from its parts when sent back from a worker process.
        return (type(self), (self.where, self.problem, self.fix, self.details))


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' suggestion for a misspelt name, or None."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:
        # A dotted name often differs only in its last part: compare last parts.
        tail = name.rsplit(".", 1)[-1]
        by_tail = {c.rsplit(".", 1)[-1]: c for c in choices}
        hit = difflib.get_close_matches(tail, list(by_tail), n=1, cutoff=0.75)
        close = [by_tail[hit[0]]] if hit else []
    return close[0] if close else None


def unknown_key_error(where: str, key: str, choices: Iterable[str], what: str = "key") -> HhsimError:
    """An error for an unknown key, with a did-you-mean suggestion when one is close."""
    choices = sorted(str(c) for c in choices)
    key = printable(key)
    guess = did_you_mean(key, choices)
    if guess:
        fix = f"did you mean '{guess}'?"
    else:
        shown = ", ".join(choices[:8]) + (", ..." if len(choices) > 8 else "")
        fix = f"use one of: {shown}" if shown else None
    return HhsimError(where, f"unknown {what} '{key}'", fix)


def warn(message: str) -> None:
    """A one-line notice on stderr (``hhsim: <message>``): something the user should know
    that is not an error."""
    print(f"hhsim: {printable(message)}", file=sys.stderr)
