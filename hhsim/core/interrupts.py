"""Ctrl-C that is never lost.

Python turns SIGINT into a KeyboardInterrupt in the main thread, but one raised inside a
finaliser (``__del__``, a weakref callback) is printed as "Exception ignored" and dropped,
so a command could carry on to the end and exit 0. While ``ctrl_c_noticed`` is active, every
Ctrl-C is also remembered; long loops call ``raise_if_pressed`` and a command checks before
it reports success.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Set when Ctrl-C is pressed while ``ctrl_c_noticed`` is active.
_PRESSED = threading.Event()


def _notice_ctrl_c(signum: int, frame: Any) -> None:
    """Python's Ctrl-C, remembered."""
    _PRESSED.set()
    raise KeyboardInterrupt


def _is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def ctrl_c_noticed() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as usual and is remembered until the outermost block
    ends (in the main thread, under Python's own handler; nested blocks share the outer one's
    memory; elsewhere nothing changes)."""
    if not _is_main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    _PRESSED.clear()
    signal.signal(signal.SIGINT, _notice_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _PRESSED.clear()


def raise_if_pressed() -> None:
    """Raise KeyboardInterrupt if a remembered Ctrl-C was dropped by Python."""
    if _PRESSED.is_set():
        raise KeyboardInterrupt


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, then raise KeyboardInterrupt (in the main thread,
    under Python's own handler or ``ctrl_c_noticed``'s; elsewhere Ctrl-C is not raised anyway
    or is not ours)."""
    previous = signal.getsignal(signal.SIGINT)
    if not _is_main_thread() or previous not in (signal.default_int_handler, _notice_ctrl_c):
        yield
        return
    pressed: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        if previous is _notice_ctrl_c:
            _PRESSED.set()
        raise KeyboardInterrupt
