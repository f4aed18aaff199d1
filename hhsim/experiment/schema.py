"""Experiment files: what to simulate, validated before anything runs.

    [experiment]
    name = "Baseline social-housing cohort"
    seed = 2024                      # every run derives its seed from this one
    months = 120
    replications = 10
    discount = { costs = 0.035, effects = 0.035 }
    thresholds = [20000, 30000]      # £ per QALY
    price_year = "2023/24"
    reward_timing = "half-cycle"     # start | end | half-cycle | both-ends | simpson
    # or given weights per step boundary: { first = "=1/3", repeat = ["=2/3", "=4/3"], last = "=1/3" }
    start_month = 4                  # calendar month of step 0 (April: NHS financial year)
    model = "default"                # or a path to a model file, relative to this file
    baseline = "baseline"            # the arm others are compared with

    [population]
    tenants = 10000
    tenure = { social_rented = 1.0 }
    # or: stock = "my-tenants.csv"   (a provider's own tenants; see docs/own-data.md)
    # or: profile = "my-area.csv"    (people by age band, decile and tenure: results for that place)
    # or: cohort = { age = 60, sex = "male" }   (identical people, as a cohort model has)
    turnover = false                 # true: tenancies end, homes are relet (an open population)
    children = false                 # leave children out (default: in, for a synthetic population,
                                     # if the model describes them: [model] children = true)

    [parameters]                     # overrides of model, world or intervention parameters
    "services.gp.unit_cost" = 45.0
    "interventions.support.capacity.staff_fte" = 1.0

    [[arms]]
    name = "baseline"

    [[arms]]
    name = "what-if"
    parameters = { "hospital.admissions.emergency.los_mean" = [...] }

    [[arms.interventions]]           # hhsim.interventions.TYPES: personalised_support, home_repairs,
                                     # rate_ratio, step_down, supported_housing
    type = "home_repairs"
    capacity.budget_per_year = 250000

    [sensitivity]                    # read by ``hhsim sensitivity`` only (docs/sensitivity.md)
    method = "sobol"
    samples = 64
    outputs = ["net_saving", "incremental_qalys"]
    parameters = { "services.gp.rr.damp" = [1.0, 1.2] }

Every problem is reported as one line naming the key and the fix (``HhsimError``).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from hhsim.core.accounting import BoundaryWeights
from hhsim.core.errors import HhsimError, did_you_mean, printable, shortened, unknown_key_error
from hhsim.core.expressions import Expression, is_expression
from hhsim.core.inputs import check_path
from hhsim.core.parameters import apply_overrides, read_toml, target_of
from hhsim.core.resources import default_model_tree
from hhsim.core.resources import world_tree as default_world_tree
from hhsim.interventions import resolve
from hhsim.world.cohort import parse_cohort
from hhsim.world.population import TENURES
from hhsim.world.profile import read_profile

Number = StrictInt | StrictFloat
#: Names of arms and groups reach file names, tables and spreadsheets: letters, digits, '_',
#: '-', '.' and spaces, starting with a letter or digit, not ending with a space or a dot.
NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_. -]{0,62}[A-Za-z0-9_-])?")
NAME_RULE = ("use letters, digits, '_', '-', '.' and spaces, starting with a letter or digit, "
             "up to 64 characters")
#: Most runs in one batch (arms x replications, times the points of a sweep): the run list and
#: the manifest stay in memory. Beyond it, split the work into experiments with other seeds.
MAX_RUNS = 1_000_000
MAX_SEED = 2**63 - 1  # records store the seed as a 64-bit integer
Label = Annotated[StrictStr, StringConstraints(max_length=200)]


def check_name(name: str, what: str) -> str:
    """``name`` if it is a usable name (``NAME``); a ValueError naming ``what`` otherwise."""
    if not NAME.fullmatch(name):
        raise ValueError(f"{printable(repr(name[:80]))} is not a usable {what}; fix: {NAME_RULE}")
    return name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Discount(Strict):
    """Annual discount rates (NICE reference case: 3.5% for both)."""

    costs: Number = Field(0.035, ge=0, le=1)
    effects: Number = Field(0.035, ge=0, le=1)


RewardTiming = Literal["start", "end", "half-cycle", "both-ends", "simpson"]


class RewardWeights(Strict):
    """Given weights (in steps) of the values at step boundaries (``BoundaryWeights``): a
    number or a formula of numbers ("=1/3")."""

    first: Number
    repeat: list[Number] = Field(min_length=1, max_length=1200)
    last: Number

    @field_validator("first", "repeat", "last", mode="before")
    @classmethod
    def _formulas(cls, v: Any) -> Any:
        return [_weight(w) for w in v] if isinstance(v, list) else _weight(v)

    @field_validator("first", "repeat", "last")
    @classmethod
    def _not_negative(cls, v: Any) -> Any:
        if any(w < 0 for w in (v if isinstance(v, list) else [v])):
            raise ValueError("a weight is below 0; fix: give weights of at least 0 (in steps)")
        return v

    def boundary_weights(self) -> BoundaryWeights:
        return BoundaryWeights(float(self.first), tuple(map(float, self.repeat)), float(self.last))


def _timing_kind(v: Any) -> str:
    """Which kind of reward timing ``v`` is: a name, or weights (a table). The tags are
    union tags (``_UNION_TAG``): errors name ``experiment.reward_timing`` and the key."""
    return "dict[weights]" if isinstance(v, dict | RewardWeights) else "str"


def _weight(v: Any) -> Any:
    """A weight written as a formula of numbers ("=1/3"), as its value."""
    if not is_expression(v):
        return v
    formula = Expression(v, "experiment.reward_timing")
    if formula.names:
        raise ValueError(f"'{shortened(v, 40)}' names {sorted(formula.names)[0]!r}; fix: write a "
                         "weight as a number or a formula of numbers, e.g. '=1/3'")
    return float(formula.evaluate({}, None))


#: A reward timing by name or by weights; its union tags are left out of error locations.
Timing = Annotated[Annotated[RewardTiming, Tag("str")] | Annotated[RewardWeights, Tag("dict[weights]")],
                   Discriminator(_timing_kind)]


class HighUsers(Strict):
    """People of ``ages`` (at the start) with at least ``at_least`` uses of ``activity`` in
    model year 0, followed with their age group's use year by year (hhsim.model.high_users)."""

    activity: StrictStr
    at_least: StrictInt = Field(ge=1, le=1000)
    ages: tuple[StrictInt, StrictInt]

    @field_validator("ages")
    @classmethod
    def _ages(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= v[0] <= v[1]:
            raise ValueError(f"ages {list(v)} are not [first, last] years with 0 <= first <= last; "
                             "fix: give e.g. [65, 120]")
        return v


class ExperimentSection(Strict):
    name: Label = "hhsim experiment"
    description: StrictStr = ""
    seed: StrictInt = Field(2024, ge=0, le=MAX_SEED)
    months: StrictInt = Field(120, ge=1, le=1200)
    replications: StrictInt = Field(10, ge=1, le=MAX_RUNS)
    discount: Discount = Discount()
    thresholds: list[Number] = Field(default_factory=lambda: [20000, 30000], min_length=1)
    price_year: StrictStr = "2023/24"
    reward_timing: Timing = "half-cycle"
    start_month: StrictInt = Field(4, ge=1, le=12)
    model: StrictStr = "default"
    baseline: StrictStr = "baseline"
    census: StrictBool = False  # keep the census: states and NHS use by current age (hhsim.model.census)
    high_users: HighUsers | None = None  # follow a high-use cohort (hhsim.model.high_users)

    @property
    def timing(self) -> str | BoundaryWeights:
        """The reward timing, as ``hhsim.core.accounting.reward_parts`` takes it."""
        t = self.reward_timing
        return t if isinstance(t, str) else t.boundary_weights()

    @field_validator("model")
    @classmethod
    def _model_path(cls, v: str) -> str:
        check_path(v, "experiment.model")
        return v

    @field_validator("thresholds")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(t <= 0 for t in v):
            raise ValueError("thresholds must be positive £ per QALY; fix: give e.g. [20000, 30000]")
        return v



class Population(Strict):
    tenants: StrictInt = Field(10_000, ge=1, le=50_000_000)
    tenure: dict[StrictStr, Number] = Field(default_factory=lambda: {"social_rented": 1.0})
    stock: StrictStr | None = None  # a provider's tenants and dwellings (docs/own-data.md)
    profile: StrictStr | None = None  # people by age band, decile and tenure in a place
    cohort: dict[StrictStr, Any] | None = None  # identical people: { age = 60, sex = "male" }
    turnover: StrictBool = False  # tenancies end and homes are relet (hhsim.world.tenancies)
    children: StrictBool | None = None  # households' children (hhsim.world.children); None: as the model

    @field_validator("stock", "profile")
    @classmethod
    def _paths(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            check_path(v, f"population.{info.field_name}")
        return v

    @field_validator("tenure")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        for name, share in v.items():
            if name not in TENURES:
                guess = did_you_mean(name, TENURES)
                hint = f"did you mean '{guess}'?" if guess else f"use one of {', '.join(TENURES)}"
                raise ValueError(f"unknown tenure '{printable(name)}'; fix: {hint}")
            if not 0 <= share <= 1:
                raise ValueError(f"share of '{name}' must be between 0 and 1; fix: give a share such as 0.25")
        if abs(sum(v.values()) - 1) > 1e-6:
            raise ValueError(f"tenure shares add up to {sum(v.values()):g}; fix: make them add up to 1")
        return v


class Arm(Strict):
    name: StrictStr
    description: StrictStr = ""
    parameters: dict[StrictStr, Any] = Field(default_factory=dict)
    interventions: list[dict[StrictStr, Any]] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "arm name")


class Sensitivity(Strict):
    """``[sensitivity]``: a global sensitivity analysis (``hhsim sensitivity``; docs/sensitivity.md).

    ``samples`` is SALib's N: sobol runs N x (D + 2) points (N a power of 2), morris N
    trajectories of D + 1 points, fast N points per parameter (N > 64), delta N points (D:
    the number of parameters). ``parameters`` maps dotted names to ``[low, high]`` or a
    distribution table (``hhsim.core.distributions``).
    """

    method: Literal["sobol", "morris", "fast", "delta"] = "sobol"
    samples: StrictInt = Field(256, ge=2, le=1_000_000)
    parameters: dict[StrictStr, list[Number] | dict[StrictStr, Any]] = Field(min_length=1)
    outputs: list[Label] = Field(default_factory=lambda: ["net_saving"], min_length=1)
    arm: StrictStr | None = None  # the arm analysed (default: the one arm that is not the baseline)
    second_order: StrictBool = False  # sobol: also second-order indices (N x (2D + 2) points)
    levels: StrictInt = Field(4, ge=2, le=100)  # morris: grid levels
    oneway: StrictBool = True  # also run each parameter at its low and high value (tornado)


class PSA(Strict):
    """``[psa]``: a probabilistic sensitivity analysis (``hhsim psa``; docs/psa.md).

    ``parameters`` maps dotted names to distributions (``hhsim.core.distributions``; a Dirichlet
    table covers a group of shares); ``groups`` names groups of them for the expected value
    of partial perfect information; ``thresholds`` (£ per QALY) span the acceptability curve.
    """

    draws: StrictInt = Field(200, ge=2, le=1_000_000)
    parameters: dict[StrictStr, list[Number] | dict[StrictStr, Any]] = Field(default_factory=dict)
    groups: dict[StrictStr, list[StrictStr]] = Field(default_factory=dict)
    thresholds: list[Number] = Field(default_factory=lambda: [float(x) for x in range(0, 100_001, 2_500)],
                                     min_length=2)
    perspective: Literal["public_sector", "nhs"] = "public_sector"

    @field_validator("groups")
    @classmethod
    def _group_names(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in v:
            check_name(name, "group name")
        return v


class Experiment(Strict):
    """A validated experiment (see the module docstring for the file format)."""

    experiment: ExperimentSection = ExperimentSection()
    population: Population = Population()
    parameters: dict[StrictStr, Any] = Field(default_factory=dict)
    arms: list[Arm] = Field(default_factory=lambda: [Arm(name="baseline")], min_length=1)
    sensitivity: Sensitivity | None = None  # read by ``hhsim sensitivity`` only
    psa: PSA | None = None  # read by ``hhsim psa`` only
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file this experiment was read from (relative model paths start there)."""
        return self._source

    @property
    def baseline(self) -> str:
        return self.experiment.baseline

    def _path(self, name: str | None) -> Path | None:
        if name is None:
            return None
        base = self.source.parent if self.source else Path.cwd()
        return (base / name).resolve()

    @property
    def stock_path(self) -> Path | None:
        """The stock file, resolved relative to the experiment file."""
        return self._path(self.population.stock)

    @property
    def profile_path(self) -> Path | None:
        """The local profile file, resolved relative to the experiment file."""
        return self._path(self.population.profile)

    def digest(self) -> str:
        """A hash of everything that determines the results of each run of ``hhsim run``
        (model, world and stock file; not the number of replications, since replication r is
        the same run however many there are, so a batch can be extended; not the
        ``[sensitivity]`` and ``[psa]`` sections, whose points runs carry themselves)."""
        files = {k: hashlib.sha256(p.read_bytes()).hexdigest() if p else None
                 for k, p in (("stock", self.stock_path), ("profile", self.profile_path))}
        exclude = {"sensitivity": True, "psa": True, "experiment": {"replications"}}
        payload = {"experiment": self.model_dump(mode="json", exclude=exclude),
                   "model": self.model_tree(), "world": default_world_tree(),
                   "interventions": {a.name: self.interventions(a) for a in self.arms}, **files}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def model_tree(self) -> dict:
        """The health model tree this experiment uses (before parameter overrides)."""
        if self.experiment.model == "default":
            return default_model_tree()
        base = self.source.parent if self.source else Path.cwd()
        return read_toml(base / self.experiment.model, "model file")

    def world_tree(self) -> dict:
        """The world parameters with the experiment-level overrides (England as observed)."""
        return _override(default_world_tree(), self.parameters, "parameters", "world")

    def trees(self, arm: Arm) -> tuple[dict, dict]:
        """Model and world trees with the experiment's, then the arm's overrides applied.

        An arm's world overrides change the population it simulates, not the reference
        population that national rates are de-averaged over (see ``RunConfig``).
        """
        where = f"arms.{arm.name}.parameters"
        model = _override(self.model_tree(), self.parameters, "parameters", "model")
        return (_override(model, arm.parameters, where, "model"),
                _override(self.world_tree(), arm.parameters, where, "world"))

    def interventions(self, arm: Arm) -> list[dict]:
        """The arm's interventions, each laid over its type's defaults, with the
        experiment's, then the arm's ``interventions.<name>.*`` overrides applied."""
        trees = {}
        for i, table in enumerate(arm.interventions):
            tree = resolve(table, f"arms.{arm.name}.interventions[{i}]")
            if tree["name"] in trees:
                raise HhsimError(f"arms.{arm.name}.interventions[{i}].name",
                                 f"'{tree['name']}' is used twice in this arm", "give each its own name")
            trees[tree["name"]] = tree
        mine = {k: v for k, v in self.parameters.items()
                if _kind(k) == "interventions" and _intervention_of(k) in trees}
        root = {"interventions": trees}
        root = apply_overrides(root, mine, "parameters") if mine else root
        root = _override(root, arm.parameters, f"arms.{arm.name}.parameters", "interventions")
        return list(root["interventions"].values())


def _intervention_of(name: str) -> str:
    """The intervention an ``interventions.<name>.*`` override names."""
    parts = target_of(name).split(".")
    return parts[1] if len(parts) > 1 else ""


def _kind(name: str) -> str:
    """Which tree a parameter override belongs to: world, interventions or model."""
    head = target_of(name).split(".", 1)[0]
    return head if head in ("world", "interventions") else "model"


def _override(tree: dict, overrides: dict[str, Any], where: str, kind: str) -> dict:
    """``tree`` with the overrides that belong to it (``world.*``, ``interventions.*`` or
    model parameters)."""
    mine = {k: v for k, v in overrides.items() if _kind(k) == kind}
    return apply_overrides(tree, mine, where) if mine else tree


def _unknown_key_fix(model: type[BaseModel], loc: tuple) -> str | None:
    """A did-you-mean for an unknown key at ``loc``, from the fields allowed there."""
    cls: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        cls = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if cls is None:
            return None
    fields = list(getattr(cls, "model_fields", {}))
    guess = did_you_mean(str(loc[-1]), fields)
    return f"did you mean '{guess}'?" if guess else f"allowed keys: {', '.join(fields)}"


#: Tags pydantic puts in a location for the members of a union (``Number``, ``list | dict``).
_UNION_TAG = re.compile(r"int|float|str|bool|(list|dict)\[.*\]")


def _first_error(err: ValidationError) -> dict:
    """The error to report, with union-member tags taken out of its location; of a union's
    errors, the float member's (a non-finite number says so, not "not an integer")."""
    def plain(loc: tuple) -> tuple:
        return tuple(p for p in loc if not (isinstance(p, str) and _UNION_TAG.fullmatch(p)))

    errors = err.errors()
    first = plain(tuple(errors[0]["loc"]))
    same = [x for x in errors if plain(tuple(x["loc"])) == first]
    e = dict(next((x for x in same if tuple(x["loc"])[-1:] == ("float",)), same[0]))
    e["loc"] = first
    return e


def _one_line(err: ValidationError) -> HhsimError:
    e = _first_error(err)
    loc = tuple(e["loc"])
    where = ".".join(str(p) for p in loc) or "experiment file"
    if e["type"] == "extra_forbidden":
        key = printable(str(loc[-1]))
        return HhsimError(where, f"unknown key '{key}'", _unknown_key_fix(Experiment, loc))
    msg = printable(e["msg"].removeprefix("Value error, "))
    ctx = e.get("ctx", {})
    if e["type"].endswith("_type") or e["type"] in {"int_from_float", "string_type"}:
        return HhsimError(where, f"{msg}, got {e.get('input')!r}", "give a value of the right type")
    bounds = {"greater_than_equal": "at least {ge:,}", "greater_than": "above {gt:,}",
              "less_than_equal": "at most {le:,}", "less_than": "below {lt:,}",
              "too_short": "with at least {min_length} item(s)", "finite_number": "that is a finite number",
              "string_too_long": "of at most {max_length} characters"}
    if e["type"] in bounds:
        got = printable(shortened(repr(e.get("input"))))
        return HhsimError(where, f"got {got}", "give a value " + bounds[e["type"]].format(**ctx))
    problem, _, fix = msg.partition("; fix: ")
    if not fix:
        fix = {"missing": "add it", "literal_error": "give one of the values listed",
               "string_too_short": "give a value that is not empty",
               "too_long": "give fewer items"}.get(e["type"])
    return HhsimError(where, problem, fix)


def read_experiment(data: dict, source: Path | None = None) -> Experiment:
    """The experiment file's data checked against the schema and against itself (names,
    sizes, the baseline, stock and profile files, intervention overrides); the arms are
    compiled by ``hhsim.experiment.plan.compile_plan``."""
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as err:
        raise _one_line(err) from None
    exp._source = source
    given = exp.population.model_fields_set & {"tenants", "tenure"}
    if exp.population.stock is not None and given:
        raise HhsimError(f"population.{sorted(given)[0]}", "is not used with a stock file",
                         "remove it: the stock file gives the tenants and their tenure")
    if exp.population.profile is not None:
        if exp.population.stock is not None:
            raise HhsimError("population.profile", "cannot be used with a stock file",
                             "give weights in the stock file's weight column instead")
        if "tenure" in given:
            raise HhsimError("population.tenure", "is not used with a profile",
                             "remove it: the profile gives the tenure mix")
        profile = read_profile(exp.profile_path)
        tenures = len(profile.tenure_mix())
        if exp.population.tenants < tenures:
            raise HhsimError("population.tenants", f"{exp.population.tenants} tenant(s) cannot stand for the "
                             f"{tenures} tenures of the profile", f"give at least {tenures} tenants")
    if exp.population.turnover and (exp.population.stock or exp.population.profile
                                    or exp.population.cohort is not None):
        raise HhsimError("population.turnover", "works only with the synthetic population in this version",
                         "remove the stock file, profile or cohort, or set turnover = false")
    if exp.population.children and exp.population.cohort is not None:
        raise HhsimError("population.children", "cannot be used with a cohort (identical people)",
                         "remove children, or the cohort")
    if exp.population.cohort is not None:
        parse_cohort(exp.population.cohort, "population.cohort")
        if exp.population.stock is not None or exp.population.profile is not None:
            raise HhsimError("population.cohort", "cannot be used with a stock file or a profile",
                             "give the cohort, or the stock file or profile, not both")
        if "tenure" in given:
            raise HhsimError("population.tenure", "is not used with a cohort",
                             "remove it: give the cohort's tenure as cohort.tenure")
    names = [a.name for a in exp.arms]
    runs = len(names) * exp.experiment.replications
    if runs > MAX_RUNS:
        raise HhsimError("experiment.replications", f"{len(names)} arms x {exp.experiment.replications:,} "
                         f"replications = {runs:,} runs, more than {MAX_RUNS:,} in one batch",
                         "give fewer replications, or split them into experiments with other seeds "
                         "(docs/user-guide.md, 'Limits')")
    if len(set(names)) != len(names):
        raise HhsimError("arms", f"arm names are not unique: {names}", "give each arm its own name")
    if exp.baseline not in names:
        raise HhsimError("experiment.baseline", f"arm '{exp.baseline}' is not among the arms {names}",
                         "name one arm 'baseline' or set experiment.baseline")
    check_overrides(exp)
    return exp


def read_field(section: str, key: str, value: Any) -> None:
    """A one-line error unless ``value`` is valid for ``section.key`` on its own."""
    try:
        Experiment.model_validate({section: {key: value}})
    except ValidationError as err:
        raise _one_line(err) from None


def check_overrides(exp: Experiment) -> None:
    """A one-line error if an experiment-level ``interventions.<name>.*`` override names an
    intervention that no arm has."""
    named = {str(t.get("name", t.get("type"))) for a in exp.arms for t in a.interventions}
    for key in exp.parameters:
        if _kind(key) == "interventions" and _intervention_of(key) not in named:
            raise unknown_key_error(f"parameters.{key}", _intervention_of(key), sorted(named),
                                    what="intervention")
