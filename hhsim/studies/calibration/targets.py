"""Target files: what was observed, how sure we are, and how to simulate its counterpart.

A target file holds one or more ``[[target]]`` tables::

    [[target]]
    name = "step_out_days_sooner"
    description = "Discharge about three months sooner"
    experiment = "experiments/step-out.toml"   # relative to this file
    arm = "step-out"                           # default: the experiment's only non-baseline arm
    estimator = "stays_mean"                   # hhsim.studies.calibration.estimators
    options = { column = "days_saved" }
    observed = 91.0                            # normal likelihood: observed and sd
    sd = 30.0
    source = "Seed 003: HIOW ICS case study"
    status = "V1"

``held_out = true`` keeps a target out of fitting: calibration never uses it (its distance
and likelihood leave it out), and ``hhsim check-model`` judges it as a prediction.

A count out of a small number takes a binomial likelihood instead (the estimator must
give a probability)::

    likelihood = "binomial"
    count = 0
    n = 5

A published figure the model cannot yet be compared with is listed, not dropped, as a
``[[gap]]`` table (``name``, ``what``, ``source``, ``reason``); ``hhsim check-model``
prints the gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from hhsim.core.errors import HhsimError, printable, unknown_key_error
from hhsim.core.parameters import read_toml
from hhsim.studies.calibration.estimators import Estimator, check_options

KEYS = (
    "name",
    "description",
    "experiment",
    "arm",
    "estimator",
    "options",
    "likelihood",
    "observed",
    "sd",
    "count",
    "n",
    "source",
    "status",
    "held_out",
)
GAP_KEYS = ("name", "what", "source", "reason")


@dataclass(frozen=True)
class Target:
    """One observed figure and the estimator that simulates it."""

    name: str
    experiment: Path
    arm: str | None
    estimator: str
    options: dict = field(hash=False)
    likelihood: str
    observed: float
    sd: float
    n: int
    source: str
    status: str
    description: str = ""
    held_out: bool = False

    @property
    def spec(self) -> Estimator:
        return check_options(self.estimator, self.options, self.name)


def _number(t: dict, key: str, where: str) -> float:
    if key not in t:
        raise HhsimError(where, f"has no '{key}'", f"add {key} = <number>")
    v = t[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise HhsimError(
            f"{where}.{key}", f"must be a finite number, got {printable(repr(v))}", "give a number"
        )
    return float(v)


def _table(t: object, where: str, keys: tuple[str, ...], kind: str) -> dict:
    """``t`` if it is a table with only ``keys`` (one-line errors otherwise)."""
    if not isinstance(t, dict):
        raise HhsimError(where, "must be a table", f"write [[{kind}]] tables")
    for key in t:
        if key not in keys:
            raise unknown_key_error(where, printable(str(key)), keys)
    return t


def _target(t: object, i: int, path: Path) -> Target:
    where = f"{path.name}: target[{i}]"
    t = _table(t, where, KEYS, "target")
    name = t.get("name")
    if not isinstance(name, str) or not name:
        raise HhsimError(where, "has no name", 'add name = "..."')
    where = f"{path.name}: target '{printable(name)}'"
    for key in ("experiment", "estimator", "source"):
        if not isinstance(t.get(key), str) or not t[key]:
            raise HhsimError(where, f"has no {key}", f'add {key} = "..."')
    exp = (path.parent / t["experiment"]).resolve()
    if not exp.is_file():
        raise HhsimError(
            f"{where}.experiment",
            f"file not found: {t['experiment']} (relative to {path.parent})",
            "give the experiment file's path relative to the target file",
        )
    options = t.get("options", {})
    if not isinstance(options, dict):
        raise HhsimError(f"{where}.options", "must be a table", 'write options = { column = "..." }')
    est = check_options(t["estimator"], options, where)
    likelihood = t.get("likelihood", "normal")
    if likelihood == "normal":
        for key in ("count", "n"):
            if key in t:
                raise HhsimError(
                    f"{where}.{key}", "is for binomial targets", 'add likelihood = "binomial" or drop it'
                )
        observed, sd, n = _number(t, "observed", where), _number(t, "sd", where), 0
        if sd <= 0:
            raise HhsimError(
                f"{where}.sd", f"must be above 0, got {sd:g}", "give the observed figure's standard error"
            )
    elif likelihood == "binomial":
        for key in ("observed", "sd"):
            if key in t:
                raise HhsimError(f"{where}.{key}", "is for normal targets", "give count and n only")
        count, n = _number(t, "count", where), _number(t, "n", where)
        if n < 1 or n != int(n) or count != int(count) or not 0 <= count <= n:
            raise HhsimError(
                where,
                f"count {count:g} out of n {n:g} is not a count out of a whole number",
                "give whole numbers with 0 <= count <= n, n >= 1",
            )
        if not est.probability:
            raise HhsimError(
                f"{where}.estimator",
                f"{t['estimator']} does not give a probability",
                "use stays_share for a binomial target",
            )
        observed, sd, n = count, 0.0, int(n)
    else:
        raise unknown_key_error(
            f"{where}.likelihood", printable(str(likelihood)), ("normal", "binomial"), what="likelihood"
        )
    arm = t.get("arm")
    if arm is not None and not isinstance(arm, str):
        raise HhsimError(f"{where}.arm", "must be an arm's name", 'give arm = "..."')
    held_out = t.get("held_out", False)
    if not isinstance(held_out, bool):
        raise HhsimError(f"{where}.held_out", f"must be true or false, got {printable(repr(held_out))}",
                         "write held_out = true for a target kept out of fitting")
    return Target(
        name,
        exp,
        arm,
        t["estimator"],
        dict(options),
        likelihood,
        observed,
        sd,
        n,
        t["source"],
        str(t.get("status", "")),
        str(t.get("description", "")),
        held_out,
    )


@dataclass(frozen=True)
class Gap:
    """A published figure the model cannot (yet) be compared with, and why."""

    name: str
    what: str
    source: str
    reason: str


def load_gaps(path: str | Path) -> list[Gap]:
    """The ``[[gap]]`` tables of a target file."""
    p = Path(path)
    tables = read_toml(p, "target file").get("gap", [])
    if not isinstance(tables, list):
        raise HhsimError(f"{p.name}: gap", "must be [[gap]] tables", "write each gap as a [[gap]] table")
    gaps = []
    for i, g in enumerate(tables):
        where = f"{p.name}: gap[{i}]"
        g = _table(g, where, GAP_KEYS, "gap")
        for key in GAP_KEYS:
            if not isinstance(g.get(key), str) or not g[key]:
                raise HhsimError(where, f"has no {key}", f'add {key} = "..."')
        gaps.append(Gap(g["name"], g["what"], g["source"], g["reason"]))
    return gaps


def load_targets(path: str | Path) -> list[Target]:
    """The targets in a target file (one-line errors for bad entries)."""
    p = Path(path)
    data = read_toml(p, "target file")
    extra = set(data) - {"target", "gap"}
    if extra:
        raise unknown_key_error(p.name, sorted(extra)[0], ["target", "gap"], what="section")
    tables = data.get("target")
    if not isinstance(tables, list) or not tables:
        raise HhsimError(p.name, "has no [[target]] tables", "add at least one [[target]]")
    targets = [_target(t, i, p) for i, t in enumerate(tables)]
    names = [t.name for t in targets]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise HhsimError(p.name, f"names target '{dup}' twice", "give each target its own name")
    return targets
