"""The plan: an experiment compiled once, from its file to every run and analysis.

``compile_plan`` reads and validates an experiment (its file or data, with command-line
options applied first), compiles each arm's health model and interventions, checks a
``[sensitivity]`` or ``[psa]`` section at both ends of its ranges, and returns a frozen
``Plan``: per arm the compiled model and intervention settings; steps and step length;
seeds; the digest that identifies its runs; the analysis settings; the model version; and
its mode: a microsimulation, or expected values in cohort mode (``hhsim run --cohort``). It
is the only validation a command makes. Runs are made from it (``hhsim.batch.design``),
the results folder stores it (``plan.json``, ``Plan.to_json``), and the analyses and the
report read their settings from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from hhsim.core.errors import HhsimError
from hhsim.core.inputs import check_path
from hhsim.core.parameters import read_toml
from hhsim.core.resources import DEFAULT_EXPERIMENT
from hhsim.core.version import MODEL_VERSION, package_version
from hhsim.experiment.arms import ArmPlan, arm_trees, compile_arm, compile_arms
from hhsim.experiment.probes import at_point
from hhsim.experiment.schema import Experiment, read_experiment, read_field

#: Options a command may lay over the experiment file (None keeps the file's value).
OPTIONS = ("seed", "tenants", "months", "replications")
#: How a plan's runs are made: simulated tenant by tenant, or as the expected values of a
#: cohort (each arm once, exactly: ``hhsim.model.cohort_mode``).
MICROSIMULATION, COHORT = "microsimulation", "cohort"
MODES = (MICROSIMULATION, COHORT)


@dataclass(frozen=True)
class Plan:
    """An experiment compiled: what every run and analysis of a command works from."""

    experiment: Experiment  # the validated file, options applied
    arms: tuple[ArmPlan, ...]
    model_version: str = MODEL_VERSION
    hhsim_version: str = ""
    mode: str = MICROSIMULATION  # one of MODES

    @cached_property
    def digest(self) -> str:
        """Identifies the runs: the experiment, its model, world and files (not the number
        of replications), the package version, and the mode (cohort mode's runs are not a
        microsimulation's)."""
        return self.experiment.digest() + ":" + self.hhsim_version + ("" if self.mode == MICROSIMULATION
                                                                       else ":" + self.mode)

    @property
    def source(self) -> Path | None:
        return self.experiment.source

    @property
    def name(self) -> str:
        return self.experiment.experiment.name

    @property
    def baseline(self) -> str:
        return self.experiment.baseline

    @property
    def arm_names(self) -> list[str]:
        return [a.name for a in self.arms]

    @property
    def seed(self) -> int:
        return self.experiment.experiment.seed

    @property
    def replications(self) -> int:
        return self.experiment.experiment.replications

    @property
    def months(self) -> int:
        return self.experiment.experiment.months

    @property
    def months_per_step(self) -> int:
        """Months in one model step: 1, or 12 for a yearly-cycle model."""
        return self.arms[0].months_per_step

    @property
    def steps(self) -> int:
        return self.months // self.months_per_step

    @property
    def thresholds(self) -> tuple[float, ...]:
        """£ per QALY at which cost-effectiveness is judged."""
        return tuple(float(t) for t in self.experiment.experiment.thresholds)

    @property
    def interventions(self) -> dict[str, list[dict]]:
        """Each arm's interventions as run (defaults, file and overrides merged)."""
        return {a.name: [dict(t) for t in a.interventions] for a in self.arms}

    @cached_property
    def reference_world(self) -> Mapping[str, Any]:
        """England as observed (the experiment's world overrides, not an arm's): national
        rates are de-averaged over it (worked out once per plan, not per run)."""
        return self.experiment.world_tree()

    def with_replications(self, replications: int) -> Plan:
        """The same plan with another number of replications (replication r is the same
        run however many there are, so the digest does not change)."""
        e = self.experiment
        section = e.experiment.model_copy(update={"replications": replications})
        exp = e.model_copy(update={"experiment": section})
        return replace(self, experiment=exp)

    def with_mode(self, mode: str) -> Plan:
        """The same plan, its runs made in ``mode`` (``MODES``)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {list(MODES)}")
        return replace(self, mode=mode)

    def with_seed(self, seed: int) -> Plan:
        """The same plan with another seed (calibration draws its own per evaluation)."""
        e = self.experiment
        exp = e.model_copy(update={"experiment": e.experiment.model_copy(update={"seed": int(seed)})})
        return replace(self, experiment=exp)

    def only(self, arms: list[str], baseline: str | None = None) -> Plan:
        """The plan with only ``arms`` (in the file's order); ``baseline`` renames the arm
        compared with (default: unchanged)."""
        e = self.experiment
        update: dict[str, Any] = {"arms": [a for a in e.arms if a.name in arms]}
        if baseline is not None:
            update["experiment"] = e.experiment.model_copy(update={"baseline": baseline})
        return replace(self, experiment=e.model_copy(update=update),
                       arms=tuple(a for a in self.arms if a.name in arms))

    def at_point(self, overrides: Mapping[str, float]) -> Plan:
        """The plan at a parameter point (``overrides`` laid over ``[parameters]``; an arm's
        own parameters still win): its arms' trees, not compiled (the runs compile them
        where they are made). The point was checked when the plan was compiled (a
        section's ranges) or is checked by the study that makes it."""
        exp = at_point(self.experiment, overrides)
        return replace(self, experiment=exp, arms=tuple(arm_trees(exp, a) for a in exp.arms))

    def with_arm_value(self, arm: str, name: str, value: float) -> Plan:
        """The plan with arm ``arm``'s own override of ``name`` set to ``value``, that arm
        compiled again (a one-line error if the value is refused); other arms unchanged."""
        e = self.experiment
        arms = [a.model_copy(update={"parameters": {**a.parameters, name: value}}) if a.name == arm else a
                for a in e.arms]
        exp = e.model_copy(update={"arms": arms})
        new = compile_arm(exp, arm_trees(exp, next(a for a in arms if a.name == arm)))
        return replace(self, experiment=exp, arms=tuple(new if a.name == arm else a for a in self.arms))

    def to_json(self) -> dict:
        """The plan as plain data (``plan.json`` of a results folder)."""
        e = self.experiment.experiment
        return {"model_version": self.model_version, "hhsim_version": self.hhsim_version,
                "digest": self.digest, "mode": self.mode, "experiment": e.name,
                "source": str(self.source) if self.source else None,
                "seed": e.seed, "replications": e.replications, "months": e.months,
                "months_per_step": self.months_per_step, "steps": self.steps,
                "analysis": {"baseline": self.baseline, "thresholds": list(self.thresholds),
                             "months_per_step": self.months_per_step},
                "arms": [a.to_json() for a in self.arms]}


def apply_options(data: dict, **options: int | None) -> dict:
    """The experiment data with command-line ``options`` (``OPTIONS``) laid over it."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}")
    exp, pop = data.get("experiment", {}), data.get("population", {})
    if not isinstance(exp, dict) or not isinstance(pop, dict):
        return data  # not tables: the schema says so, in one line
    exp, pop = dict(exp), dict(pop)
    for key in ("seed", "months", "replications"):
        if options.get(key) is not None:
            exp[key] = options[key]
    if options.get("tenants") is not None:
        if pop.get("stock") is not None:
            raise HhsimError("--tenants", "cannot be used with a stock file",
                             "the stock file gives the tenants; drop --tenants")
        pop["tenants"] = options["tenants"]
    data = {**data, "experiment": exp, "population": pop}
    return data


def check_replaced(data: dict, options: Mapping[str, int | None]) -> None:
    """A one-line error if a value the options replace is not valid in the file: an option
    overrides a file's value, it does not mend it."""
    for key in ("seed", "months", "replications", "tenants"):
        section = "population" if key == "tenants" else "experiment"
        given = data.get(section)
        if options.get(key) is not None and isinstance(given, dict) and key in given:
            read_field(section, key, given[key])


def compile_plan(experiment: Plan | Experiment | dict | str | Path | None = None, source: Path | None = None,
                 *, sections: bool = True, **options: int | None) -> Plan:
    """Read, validate and compile an experiment: a file (``None``: the default experiment),
    its data (relative paths from ``source``), or an ``Experiment`` read before. ``options``
    (``OPTIONS``) override the file's values. With ``sections``, a ``[sensitivity]`` or
    ``[psa]`` section is checked at both ends of its ranges. A ``Plan`` is compiled already:
    it is returned as it is when no option is given."""
    if isinstance(experiment, Plan):
        if not any(v is not None for v in options.values()):
            return experiment
        experiment = experiment.experiment
    if not isinstance(experiment, dict):
        data, source = experiment_data(experiment)
    else:
        data = experiment
    if options:
        check_replaced(data, options)
    exp = read_experiment(apply_options(data, **options) if options else data, source)
    arms = compile_arms(exp)
    if sections and exp.sensitivity is not None:
        from hhsim.experiment.sensitivity_section import check_sensitivity  # scipy.stats: only then

        check_sensitivity(exp)
    if sections and exp.psa is not None:
        from hhsim.experiment.psa_section import check_psa  # scipy.stats: only then

        check_psa(exp)
    return Plan(exp, arms, hhsim_version=package_version())


def experiment_data(experiment: Experiment | str | Path | None) -> tuple[dict, Path | None]:
    """An experiment's data as its file gives it, and the file (``None``: the default
    experiment; an ``Experiment`` read before gives what its file set)."""
    if isinstance(experiment, Experiment):
        return experiment.model_dump(exclude_unset=True), experiment.source
    path = check_path(experiment, "experiment file") if experiment is not None else DEFAULT_EXPERIMENT
    source = path.resolve()
    return read_toml(source, "experiment file"), source


def load_experiment(path: str | Path | None = None) -> Experiment:
    """Read and validate an experiment file (the built-in default when ``path`` is None)."""
    return compile_plan(path).experiment


def validate(data: dict, source: Path | None = None) -> Experiment:
    """Validate experiment data, including its parameter overrides and model file."""
    return compile_plan(data, source).experiment
