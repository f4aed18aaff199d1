"""Versions a result carries: the installed package's and the model's.

``MODEL_VERSION`` names the model's behaviour: it changes, with an entry in
``docs/changes.md`` and new pinned digests (``tests/test_pinned_results.py``), whenever a
change moves the results of an unchanged experiment. A refactoring that moves nothing
keeps it.
"""

from __future__ import annotations

#: Model 1: the model of hhsim 0.1.0 and 0.2.0 (the pinned digests of tests/pinned).
MODEL_VERSION = "1"


def package_version() -> str:
    """The installed hhsim's version ('unknown' when it is not installed)."""
    from importlib import metadata  # about 70 modules: not for a plain 'import hhsim'

    try:
        return metadata.version("hhsim")
    except metadata.PackageNotFoundError:
        return "unknown"
