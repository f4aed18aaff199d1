"""The registry of intervention types, filled by the ``register`` decorator.

A type is a runtime class (an ``Intervention``), the parser of its merged table and its
defaults (a TOML file, or the table itself). It registers itself where it is defined:

    @register("falls_visits", parse=parse, defaults=Path(__file__).with_name("falls_visits.toml"))
    class FallsVisits(ClientProgramme):
        printed = (*ClientProgramme.printed, Measure("visits", "home visits"))

The shipped types register when ``hhsim.interventions`` imports them; a type registered
from outside the package is used like them in the process that imported the module that
registers it (run with ``workers=1``: worker processes import hhsim alone). What the rest
of hhsim reads about the types comes from here: the per-run tables they write
(``declared_tables``) and what each counts as served (``served_measures``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from inspect import isabstract
from pathlib import Path
from typing import Any, TypeVar

from hhsim.core.parameters import read_toml
from hhsim.interventions.base import Intervention, RunTable, Settings
from hhsim.interventions.settings import ModelContext

#: Names of intervention types and of interventions: lower-case letters, digits and _.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
Parser = Callable[[Mapping[str, Any], ModelContext], Settings]
C = TypeVar("C", bound=Intervention)


@dataclass(frozen=True)
class InterventionType:
    """A registered type: its name, parser, runtime class and defaults."""

    kind: str
    parse: Parser
    runtime: type[Intervention]
    source: Path | Mapping[str, Any]  # the defaults file, or the defaults table

    def defaults(self) -> Mapping[str, Any]:
        """The type's defaults table (callers must not change it)."""
        return self.source if isinstance(self.source, Mapping) else _read(self.source)


@cache
def _read(path: Path) -> dict:
    return read_toml(path, "defaults file")


#: The registered types by name, in the order they registered (the order they are listed in).
TYPES: dict[str, InterventionType] = {}


def register(kind: str, *, parse: Parser, defaults: Path | Mapping[str, Any]) -> Callable[[type[C]], type[C]]:
    """Register the decorated runtime class as intervention type ``kind``, with the parser
    of its merged table and its defaults (a TOML file, or the table). Errors are
    programming errors: a bad or taken name, an abstract class, a missing defaults file, a
    table or served measure declared otherwise by another type."""
    def add(runtime: type[C]) -> type[C]:
        if not NAME.match(kind):
            raise ValueError(f"intervention type {kind!r}: use lower-case letters, digits and _")
        if kind in TYPES:
            raise ValueError(f"intervention type {kind!r} is already registered "
                             f"({TYPES[kind].runtime.__qualname__})")
        if isabstract(runtime):
            raise TypeError(f"{runtime.__qualname__} does not implement "
                            f"{', '.join(sorted(runtime.__abstractmethods__))}")
        if not isinstance(defaults, Mapping) and not Path(defaults).is_file():
            raise ValueError(f"intervention type {kind!r}: no defaults file {defaults}")
        tables = {t.name: t for t in declared_tables()}
        for t in runtime.tables:
            if tables.get(t.name, t) != t:
                raise ValueError(f"intervention type {kind!r}: table {t.name!r} is declared "
                                 "otherwise by another type")
        served = served_measures()
        if runtime.served and served.get(runtime.served.key, runtime.served.label) != runtime.served.label:
            raise ValueError(f"intervention type {kind!r}: served measure {runtime.served.key!r} "
                             f"means '{served[runtime.served.key]}' for another type")
        TYPES[kind] = InterventionType(kind, parse, runtime,
                                       defaults if isinstance(defaults, Mapping) else Path(defaults))
        return runtime
    return add


def declared_tables() -> tuple[RunTable, ...]:
    """The per-run tables interventions write: the event log, then those the registered
    types declare, in the order first declared."""
    out = {t.name: t for t in Intervention.tables}
    for t in TYPES.values():
        for table in t.runtime.tables:
            out.setdefault(table.name, table)
    return tuple(out.values())


def served_measures() -> dict[str, str]:
    """Each registered type's served measure (the suffix of ``iv_<name>_<key>``) and what
    one is (e.g. "client"): how records read without their experiment say whom an
    intervention served."""
    out: dict[str, str] = {}
    for t in TYPES.values():
        if t.runtime.served:
            out.setdefault(t.runtime.served.key, t.runtime.served.label)
    return out
