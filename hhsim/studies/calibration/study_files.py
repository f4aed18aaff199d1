"""Study files: a published study, how to replay it in hhsim, and what it found.

A study file (TOML, ``calibration/studies/*.toml``) has one ``[study]`` table and one or more
``[[outcome]]`` tables::

    [study]
    title = "Insulating existing houses: cluster randomised trial"
    source = "Howden-Chapman et al., BMJ 2007;334:460, abstract"   # document, year, table
    grade = "randomised"            # GRADES, strongest first
    design = "cluster randomised, households within 7 communities, insulated vs not"
    n = 4407                        # people (or households, as the study counts); optional
    population = "low-income households with a member with respiratory symptoms, New Zealand"
    follow_up = "one winter"
    role = "fit"                    # "fit": an effect is fitted to it; "predict": held out
    experiment = "experiments/howden-chapman-2007.toml"   # relative to this file
    arm = "insulated"               # default: the experiment's only non-baseline arm
    effects = ["chains.health.transitions.good_to_fair.rr.excess_cold"]   # what it informs

    [[outcome]]
    name = "fair_or_poor_health"
    description = "Fair or poor self-rated health at follow-up, insulated vs not"
    estimator = "odds_ratio"        # hhsim.studies.calibration.estimators
    options = { column = ["health:fair", "health:bad"], month = 12 }
    published = 0.50
    interval = [0.38, 0.68]         # the published 95% interval; leave out if none was published
    status = "V1"

The study's name is the file's name. Errors are one line naming the key and the fix.

A calibration file may list study files among its ``targets``: each outcome becomes a target
(``study_targets``: named ``<study>.<outcome>``, observed the published estimate, sd the
published 95% interval's width over 3.92, held out when the study's role is "predict"), so
an effect is fitted to a replayed study with the calibration tools. An outcome with no
published interval (a pilot report's figure) is replayed and printed beside its figure but
never judged, and cannot be a calibration target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hhsim.core.errors import HhsimError, printable, unknown_key_error
from hhsim.core.parameters import read_toml
from hhsim.studies.calibration.estimators import ESTIMATORS, Estimator, check_options
from hhsim.studies.calibration.targets import Target

#: Grades of evidence, strongest first (the issue's order); "cohort" last: a cohort from
#: routine data with no intervention, which tests the model's own dynamics, not an effect.
GRADES = ("systematic_review", "randomised", "controlled", "before_after", "pilot", "cohort")
ROLES = ("fit", "predict")
Z95 = 2 * 1.959964  # a 95% interval's width in standard errors
STUDY_KEYS = ("title", "source", "grade", "design", "n", "population", "follow_up", "role", "experiment",
              "arm", "effects", "notes")
OUTCOME_KEYS = ("name", "description", "estimator", "options", "published", "interval", "status", "arm")


@dataclass(frozen=True)
class Outcome:
    """One published estimate: how hhsim computes it, and what the study found."""

    name: str
    description: str
    estimator: str
    options: dict
    published: float
    interval: tuple[float, float] | None  # None: none was published (a pilot report)
    status: str
    arm: str | None

    @property
    def spec(self) -> Estimator:
        return ESTIMATORS[self.estimator]


@dataclass(frozen=True)
class Study:
    """A study file, read and checked."""

    path: Path
    name: str
    title: str
    source: str
    grade: str
    design: str
    n: int | None  # None: not published
    population: str
    follow_up: str
    role: str
    experiment: Path
    arm: str | None
    effects: tuple[str, ...]
    notes: str
    outcomes: tuple[Outcome, ...]


def _text(table: dict, key: str, where: str, required: bool = True) -> str:
    value = table.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise HhsimError(f"{where}.{key}", "is missing or not text", f'add {key} = "..."')
    return value


def _number(table: dict, key: str, where: str) -> float:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HhsimError(f"{where}.{key}", f"must be a number, got {printable(repr(value))}",
                         f"give {key} = <number>")
    return float(value)


def _known(table: object, keys: tuple[str, ...], where: str) -> dict:
    if not isinstance(table, dict):
        raise HhsimError(where, "must be a table", f"write [{where}] with keys {', '.join(keys)}")
    for key in table:
        if key not in keys:
            raise unknown_key_error(f"{where}.{key}", printable(key), keys, what="key")
    return table


def _outcome(t: object, i: int, where: str) -> Outcome:
    t = _known(t, OUTCOME_KEYS, f"{where}: outcome[{i}]")
    name = _text(t, "name", f"{where}: outcome[{i}]")
    here = f"{where}: outcome '{printable(name)}'"
    options = t.get("options", {})
    if not isinstance(options, dict):
        raise HhsimError(f"{here}.options", "must be a table", 'write options = { column = "..." }')
    check_options(_text(t, "estimator", here), options, here)
    published = _number(t, "published", here)
    interval = t.get("interval")
    if interval is None:  # a pilot report's figure: reported beside the replay, never judged
        return Outcome(name, str(t.get("description", "")), t["estimator"], dict(options), published, None,
                       str(t.get("status", "")), _outcome_arm(t, here))
    if (not isinstance(interval, list) or len(interval) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in interval)):
        raise HhsimError(f"{here}.interval", f"must be [low, high], got {printable(repr(interval))}",
                         "give the published 95% interval, e.g. interval = [0.38, 0.68]")
    low, high = float(interval[0]), float(interval[1])
    if not low <= published <= high:
        raise HhsimError(f"{here}.interval",
                         f"[{low:g}, {high:g}] does not contain the published {published:g}",
                         "give the interval's low end first, around the published estimate")
    return Outcome(name, str(t.get("description", "")), t["estimator"], dict(options), published, (low, high),
                   str(t.get("status", "")), _outcome_arm(t, here))


def _outcome_arm(t: dict, here: str) -> str | None:
    arm = t.get("arm")
    if arm is not None and not isinstance(arm, str):
        raise HhsimError(f"{here}.arm", "must be an arm's name", 'give arm = "..."')
    return arm


def load_study(path: str | Path) -> Study:
    """Read and check a study file (one-line errors)."""
    path = Path(path)
    data = read_toml(path, "study file")
    where = path.name
    for key in data:
        if key not in ("study", "outcome"):
            raise unknown_key_error(f"{where}: {key}", printable(key), ("study", "outcome"), what="section")
    s = _known(data.get("study"), STUDY_KEYS, f"{where}: study")
    here = f"{where}: study"
    grade, role = _text(s, "grade", here), s.get("role", "fit")
    if grade not in GRADES:
        raise unknown_key_error(f"{here}.grade", printable(grade), GRADES, what="grade")
    if role not in ROLES:
        raise unknown_key_error(f"{here}.role", printable(str(role)), ROLES, what="role")
    n = s.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise HhsimError(f"{here}.n", f"must be a whole number of at least 1, got {printable(repr(n))}",
                         "give the number of people (or households) the study counted, or leave it out "
                         "if it was not published")
    experiment = (path.parent / _text(s, "experiment", here)).resolve()
    if not experiment.is_file():
        raise HhsimError(f"{here}.experiment",
                         f"file not found: {s['experiment']} (relative to {path.parent})",
                         "give the study experiment's path relative to the study file")
    effects = s.get("effects", [])
    if not isinstance(effects, list) or not all(isinstance(e, str) for e in effects):
        raise HhsimError(f"{here}.effects", "must be a list of parameter names", 'write effects = ["..."]')
    arm = s.get("arm")
    if arm is not None and not isinstance(arm, str):
        raise HhsimError(f"{here}.arm", "must be an arm's name", 'give arm = "..."')
    outcomes = data.get("outcome")
    if not isinstance(outcomes, list) or not outcomes:
        raise HhsimError(f"{where}: outcome", "is missing: a study needs at least one [[outcome]]",
                         "add an [[outcome]] table with estimator, options, published and interval")
    read = tuple(_outcome(o, i, where) for i, o in enumerate(outcomes))
    names = [o.name for o in read]
    if len(set(names)) != len(names):
        raise HhsimError(f"{where}: outcome", "names repeat", "give each outcome its own name")
    return Study(path, path.stem, _text(s, "title", here), _text(s, "source", here), grade,
                 _text(s, "design", here), n, _text(s, "population", here), _text(s, "follow_up", here), role,
                 experiment, arm, tuple(effects), _text(s, "notes", here, required=False), read)


def study_files(folder: str | Path) -> list[Path]:
    """The study files of a folder, by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HhsimError(str(folder), "folder not found",
                         "run from a checkout of the hhsim repository, or give study files")
    return sorted(folder.glob("*.toml"))


def study_targets(study: Study) -> list[Target]:
    """The study's outcomes as calibration targets (module docstring); an outcome with no
    published interval has no standard deviation, so it cannot be one."""
    for o in study.outcomes:
        if o.interval is None:
            raise HhsimError(f"{study.path.name}: outcome '{printable(o.name)}'.interval",
                             "is missing, so the outcome has no standard deviation to fit to",
                             "give it as a target with an sd in a targets file (docs/calibration.md)")
    return [Target(f"{study.name}.{o.name}", study.experiment, o.arm or study.arm, o.estimator,
                   dict(o.options), "normal", o.published, (o.interval[1] - o.interval[0]) / Z95, 0,
                   study.source, o.status, o.description, study.role == "predict")
            for o in study.outcomes]


def is_study_file(path: str | Path) -> bool:
    """Whether a TOML file is a study file (it has a ``[study]`` table; a missing file is not)."""
    return Path(path).is_file() and "study" in read_toml(Path(path), "TOML file")
