"""A calibration file, resolved: parameters with priors, targets, and how to evaluate them.

::

    [calibration]
    name = "hospital-flow"
    targets = ["targets/cedarwood.toml", "targets/step-out.toml"]   # relative to this file
    seed = 2024              # calibration seed
    replications = 1         # replications per evaluation (arms share their random numbers)
    particles = 100          # ABC-SMC population size
    generations = 4          # ABC-SMC generations
    min_epsilon = 0.0        # stop early below this distance
    predictive = 40          # posterior draws simulated for the fit table
    evaluations = 60         # --fast: objective evaluations allowed

    [parameters]
    "hospital.admissions.mental_health.delay_mean" = { dist = "lognormal", median = 60, sdlog = 0.6 }

    [fixed]                  # optional: values held fixed in every evaluation
    "interventions.support.capacity.caseload_per_fte" = 20

    [history_matching]       # optional: rule out implausible regions first (history_matching.py)
    waves = 3                # at most this many waves
    points = 80              # simulations per wave
    cutoff = 3.0             # implausibility above which a point is ruled out
    discrepancy = 0.1        # model discrepancy variance, as a share of each target's sd^2
    rule = "second"          # "second": the second-largest implausibility over targets; "max"
    candidates = 100000      # candidate points estimating the NROY share and drawing designs
    restarts = 3             # GP optimizer restarts (emulator.py)

Sizes can be overridden for a trial run (``load_problem(path, sizes)``, the command's
``--tenants``, ``--months``, ``--replications``, ``--evaluations`` and ``--predictive``):
tenants and months of every target's experiment, and the calibration settings.

Parameters are named as in an experiment's ``[parameters]`` section; priors are
``hhsim.core.distributions`` specs. A parameter ``interventions.<name>.*`` applies to the
experiments with an intervention called ``<name>``; every other parameter applies to every
target's experiment.

One *evaluation* runs, for every experiment the targets use, the arms they need with
``replications`` replications, at one parameter point and one seed, and gives each
target's simulated value. Observation noise (``observe``) turns a simulated value into a
simulated *observation*: normal noise with the target's sd, or a binomial count out of the
target's n with the simulated probability.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from hhsim.batch.design import runs
from hhsim.batch.execution import simulate
from hhsim.core.distributions import Dirichlet, Distribution, parse_distribution
from hhsim.core.errors import HhsimError, printable, unknown_key_error
from hhsim.core.parameters import read_toml, target_of
from hhsim.experiment.plan import Plan, compile_plan, experiment_data
from hhsim.experiment.probes import arm_setting, check_value, not_mixed_with_parameters, probe, set_inline
from hhsim.experiment.schema import Experiment
from hhsim.studies.calibration.study_files import is_study_file, load_study, study_targets
from hhsim.studies.calibration.targets import Target, load_targets

SETTINGS = {
    "name": str,
    "description": str,
    "targets": list,
    "seed": int,
    "replications": int,
    "particles": int,
    "generations": int,
    "min_epsilon": float,
    "predictive": int,
    "evaluations": int,
}
DEFAULTS = {
    "description": "",
    "seed": 1,
    "replications": 1,
    "particles": 100,
    "generations": 4,
    "min_epsilon": 0.0,
    "predictive": 40,
    "evaluations": 60,
}
#: A calibration file's sections.
SECTIONS = ("calibration", "parameters", "fixed", "history_matching")
#: The ``[history_matching]`` table's keys, types, defaults and least values.
HM_SETTINGS = {"waves": int, "points": int, "cutoff": float, "discrepancy": float, "rule": str,
               "candidates": int, "restarts": int}
HM_DEFAULTS = {"waves": 3, "points": 80, "cutoff": 3.0, "discrepancy": 0.1, "rule": "second",
               "candidates": 100_000, "restarts": 3}
HM_LEAST = {"waves": 1, "points": 5, "discrepancy": 0.0, "candidates": 1000, "restarts": 0}  # cutoff: > 0
HM_RULES = ("second", "max")
#: What ``load_problem``'s ``sizes`` may override: the experiments' own, then the settings.
EXPERIMENT_SIZES = ("tenants", "months")
SIZES = (*EXPERIMENT_SIZES, "replications", "evaluations", "predictive")
#: Probabilities are kept within these bounds in the binomial likelihood (a simulated 0 of 0).
P_CLIP = 1e-4


@dataclass
class Problem:
    """A resolved calibration file."""

    source: Path
    settings: dict
    names: tuple[str, ...]
    priors: tuple[Distribution, ...]
    targets: tuple[Target, ...]
    plans: dict[Path, Plan]  # each target experiment compiled, with the arms the targets need
    fixed: dict[str, float]
    history_matching: dict | None = None  # the [history_matching] settings, when the file has them

    @property
    def experiments(self) -> dict[Path, Experiment]:
        return {k: p.experiment for k, p in self.plans.items()}

    @property
    def observed(self) -> dict[str, float]:
        return {t.name: t.observed for t in self.targets}

    def digest(self) -> str:
        """What determines a calibration's results: the file, the target files, the experiments."""
        payload = {
            "settings": self.settings,
            "fixed": self.fixed,
            "names": self.names,
            "priors": [p.description for p in self.priors],
            "targets": [
                [t.name, t.estimator, t.options, t.likelihood, t.observed, t.sd, t.n, t.arm,
                 *(["held_out"] if t.held_out else [])]
                for t in self.targets
            ],
            "experiments": {str(k): e.digest() for k, e in self.experiments.items()},
            **({"history_matching": self.history_matching} if self.history_matching else {}),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def overrides(self, point: Mapping[str, float], path: Path) -> dict[str, float]:
        """The part of ``point`` that applies to the experiment at ``path``."""
        exp = self.experiments[path]
        ivs = {iv["name"] for a in exp.arms for iv in exp.interventions(a)}
        return {k: float(v) for k, v in point.items() if applies(k, ivs)}

    def simulate(self, point: Mapping[str, float], seed: int) -> dict[str, float]:
        """Each target's simulated value at ``point``, with model seed ``seed`` (in-process)."""
        out = {}
        for path, plan in self.plans.items():
            here = plan.at_point(self.overrides(point, path)).with_seed(seed)
            results = [simulate(spec) for spec in runs(here)]
            for t in self.targets:
                if t.experiment == path:
                    out[t.name] = t.spec.function(results, t.arm, plan.baseline, t.options)
        return out

    def observe(self, values: Mapping[str, float], rng: np.random.Generator) -> dict[str, float]:
        """Simulated observations: normal noise (the target's sd), or a binomial count."""
        out = {}
        for t in self.targets:
            v = values[t.name]
            if t.likelihood == "binomial":  # no simulated value (e.g. nobody placed): no match
                p = min(max(v, 0.0), 1.0) if math.isfinite(v) else None
                out[t.name] = float(rng.binomial(t.n, p)) if p is not None else math.inf
            else:
                out[t.name] = v + t.sd * rng.standard_normal() if math.isfinite(v) else math.inf
        return out

    @property
    def fitted(self) -> tuple[Target, ...]:
        """The targets fitting uses: all but the held-out ones."""
        return tuple(t for t in self.targets if not t.held_out)

    def distance(self, simulated: Mapping[str, float], observed: Mapping[str, float]) -> float:
        """Euclidean distance in sd units (binomial targets: in counts) over the fitted targets."""
        total = 0.0
        for t in self.fitted:
            d = simulated[t.name] - observed[t.name]
            total += (d / t.sd) ** 2 if t.likelihood == "normal" else d * d
        return math.sqrt(total) if math.isfinite(total) else math.inf

    def neg_log_likelihood(self, values: Mapping[str, float]) -> float:
        """-log likelihood of the observations given the simulated values (normal: sd;
        binomial: count of n with the simulated probability) of the fitted targets."""
        total = 0.0
        for t in self.fitted:
            v = values[t.name]
            if not math.isfinite(v):
                return 1e12
            if t.likelihood == "binomial":
                total -= stats.binom.logpmf(t.observed, t.n, min(max(v, P_CLIP), 1 - P_CLIP))
            else:
                total += 0.5 * ((v - t.observed) / t.sd) ** 2
        return float(total)


def applies(name: str, interventions: set[str]) -> bool:
    """Whether parameter ``name`` (or the one a ``scale(...)`` name multiplies) applies to an
    experiment with these interventions."""
    target = target_of(name)
    if target.startswith("interventions."):
        return target.split(".")[1] in interventions
    return True


def _settings(data: dict, where: str) -> dict:
    sec = data.get("calibration")
    if not isinstance(sec, dict):
        raise HhsimError(where, "has no [calibration] section", "add [calibration] with name and targets")
    out = dict(DEFAULTS)
    for key, value in sec.items():
        if key not in SETTINGS:
            raise unknown_key_error(f"{where}: calibration", printable(str(key)), SETTINGS)
        kind = SETTINGS[key]
        _typed(value, kind, f"{where}: calibration.{key}")
        if kind is int and value < (0 if key == "seed" else 1):
            raise HhsimError(
                f"{where}: calibration.{key}", f"must be at least {0 if key == 'seed' else 1}, got {value}",
                "give a larger number"
            )
        out[key] = value
    for key in ("name", "targets"):
        if key not in out:
            raise HhsimError(f"{where}: calibration", f"has no {key}", f"add {key} = ...")
    if not out["targets"] or not all(isinstance(t, str) for t in out["targets"]):
        raise HhsimError(
            f"{where}: calibration.targets", "must list target files", 'give targets = ["targets/x.toml"]'
        )
    return out


def _typed(value: object, kind: type, where: str) -> None:
    """A one-line error unless ``value`` is a ``kind`` (an int will do for a float)."""
    if isinstance(value, bool) or not (isinstance(value, kind) or (kind is float and isinstance(value, int))):
        raise HhsimError(where, f"must be a {kind.__name__}, got {printable(repr(value))}",
                         f"give a {kind.__name__}")


def _history_matching(data: dict, where: str) -> dict | None:
    """The ``[history_matching]`` settings with their defaults (None: no such table)."""
    if "history_matching" not in data:
        return None
    sec = data["history_matching"]
    if not isinstance(sec, dict):
        raise HhsimError(f"{where}: history_matching", "must be a table", "write [history_matching]")
    out = dict(HM_DEFAULTS)
    for key, value in sec.items():
        if key not in HM_SETTINGS:
            raise unknown_key_error(f"{where}: history_matching", printable(str(key)), HM_SETTINGS)
        kw = f"{where}: history_matching.{key}"
        _typed(value, HM_SETTINGS[key], kw)
        if key == "rule":
            if value not in HM_RULES:
                raise unknown_key_error(kw, printable(value), HM_RULES, what="rule")
        elif not (math.isfinite(value) and (value > 0 if key == "cutoff" else value >= HM_LEAST[key])):
            least = "above 0" if key == "cutoff" else f"at least {HM_LEAST[key]}"
            raise HhsimError(kw, f"must be {least}, got {value}", "give a larger number")
        out[key] = float(value) if HM_SETTINGS[key] is float else value
    return out


def _resolve_arm(t: Target, exp: Experiment, where: str) -> Target:
    names = [a.name for a in exp.arms]
    if t.arm is not None:
        if t.arm not in names:
            raise unknown_key_error(f"{where}.arm", t.arm, names, what="arm")
        return t
    others = [n for n in names if n != exp.baseline]
    if len(others) > 1:
        raise HhsimError(
            f"{where}.arm",
            f"the experiment has several arms besides the baseline {others}",
            'say which: arm = "..."',
        )
    return Target(**{**t.__dict__, "arm": others[0] if others else exp.baseline})


def _needed(plan: Plan, targets: list[Target], replications: int) -> Plan:
    """The plan with only the arms the targets need, and ``replications``."""
    arms = {t.arm for t in targets} | (
        {plan.baseline} if any(t.spec.needs_baseline for t in targets) else set()
    )
    plan = plan.with_replications(replications)
    keep = [a for a in plan.arm_names if a in arms or a == plan.baseline]
    if plan.baseline not in arms:  # the baseline arm is first and need not run
        keep = [a for a in keep if a != plan.baseline]
        return plan.only(keep, baseline=keep[0])
    return plan.only(keep)


def _probe(name: str, dist: Distribution, experiments: dict[Path, Experiment], where: str) -> None:
    """Compile each experiment's arms with the parameter at its prior's low and high values."""
    for exp in experiments.values():
        if applies(name, _interventions(exp)):
            for side, value in zip(("low", "high"), dist.range(), strict=True):
                check_value(exp, name, value, f"prior's {side}", where,
                            fix="narrow the prior to the parameter's range")


def _compiled(path: Path, sizes: Mapping[str, int]) -> Plan:
    """A target experiment compiled with the tenants and months in ``sizes`` (a stock-based
    experiment refuses --tenants, as ``hhsim run`` does)."""
    given = {k: sizes[k] for k in EXPERIMENT_SIZES if k in sizes}
    data, source = experiment_data(path)
    if "tenants" in given and data.get("population", {}).get("stock") is not None:
        raise HhsimError("--tenants", f"cannot be used with {path.name}, whose tenants come from "
                         f"the stock file {data['population']['stock']}", "drop --tenants")
    return compile_plan(data, source, sections=False, **given)


def load_problem(path: str | Path, sizes: Mapping[str, int] | None = None) -> Problem:
    """Read and check a calibration file and its target files (one-line errors). ``sizes``
    overrides the experiments' tenants and months and the settings' replications,
    evaluations and predictive draws (whole numbers from 1)."""
    p = Path(path)
    sizes = dict(sizes or {})
    for key, value in sizes.items():
        if key not in SIZES:
            raise unknown_key_error("sizes", printable(str(key)), SIZES)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise HhsimError(f"--{key}", f"must be a whole number of at least 1, got "
                             f"{printable(repr(value))}", "give a larger number")
    data = read_toml(p, "calibration file")
    where = p.name
    for key in data:
        if key not in SECTIONS:
            raise unknown_key_error(where, printable(str(key)), SECTIONS, what="section")
    settings = _settings(data, where)
    history_matching = _history_matching(data, where)
    settings.update({k: v for k, v in sizes.items() if k not in EXPERIMENT_SIZES})
    targets: list[Target] = []
    for name in settings["targets"]:
        file = (p.parent / name).resolve()
        targets += study_targets(load_study(file)) if is_study_file(file) else load_targets(file)
    names = [t.name for t in targets]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise HhsimError(
            f"{where}: calibration.targets", f"target '{dup}' appears twice", "give each target its own name"
        )
    plans: dict[Path, Plan] = {}
    resolved = []
    for t in targets:
        if t.experiment not in plans:
            plans[t.experiment] = _compiled(t.experiment, sizes)
        resolved.append(_resolve_arm(t, plans[t.experiment].experiment, f"target '{t.name}'"))
    plans = {
        k: _needed(e, [t for t in resolved if t.experiment == k], settings["replications"])
        for k, e in plans.items()
    }
    experiments = {k: p.experiment for k, p in plans.items()}
    fixed = _fixed(data.get("fixed", {}), experiments, where)
    for name in fixed:
        _not_set_by_arms(name, experiments, f"{where}: fixed.{printable(name)}")
    plans = {k: p.at_point(_applicable(fixed, p.experiment)) for k, p in plans.items()}
    experiments = {k: p.experiment for k, p in plans.items()}
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        raise HhsimError(f"{where}: parameters", "no parameters to calibrate", "add [parameters] with priors")
    priors = []
    all_ivs = {iv["name"] for e in experiments.values() for a in e.arms for iv in e.interventions(a)}
    for name, spec in params.items():
        pw = f"{where}: parameters.{printable(name)}"
        dist = parse_distribution(spec, pw)
        if isinstance(dist, Dirichlet):
            raise HhsimError(
                pw, "a Dirichlet group cannot be calibrated", "give each parameter its own prior"
            )
        target = target_of(name)
        if target.startswith("interventions.") and target.split(".")[1] not in all_ivs:
            raise unknown_key_error(
                pw, target.split(".")[1] if "." in target else target, all_ivs, what="intervention"
            )
        if name in fixed:
            raise HhsimError(pw, "is also in [fixed]", "calibrate it or hold it fixed, not both")
        _not_set_by_arms(name, experiments, pw)
        for exp in experiments.values():
            not_mixed_with_parameters(exp, name, pw)
        _probe(name, dist, experiments, pw)
        priors.append(dist)
    return Problem(p.resolve(), settings, tuple(params), tuple(priors), tuple(resolved), plans, fixed,
                   history_matching)


def _not_set_by_arms(name: str, experiments: Mapping[Path, Experiment], where: str) -> None:
    """An arm's own value of a parameter replaces the experiment-level one: a calibrated or
    fixed value would be silently ignored in that arm."""
    for path, exp in experiments.items():
        for arm in exp.arms:
            if arm_setting(arm, name) is not None or set_inline(arm, name):
                raise HhsimError(where, f"is also set by arm '{arm.name}' of {path.name}, whose value "
                                 "would replace or scale every calibrated one",
                                 "remove it from that arm, or calibrate with another experiment")


def _interventions(exp: Experiment) -> set[str]:
    return {iv["name"] for a in exp.arms for iv in exp.interventions(a)}


def _applicable(values: Mapping[str, float], exp: Experiment) -> dict[str, float]:
    ivs = _interventions(exp)
    return {k: v for k, v in values.items() if applies(k, ivs)}


def _fixed(table: object, experiments: dict[Path, Experiment], where: str) -> dict[str, float]:
    """The ``[fixed]`` values, each checked against every experiment it applies to."""
    if not isinstance(table, dict):
        raise HhsimError(f"{where}: fixed", "must be a table of parameter values", "write [fixed]")
    fixed = {}
    for name, value in table.items():
        fw = f"{where}: fixed.{printable(name)}"
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise HhsimError(fw, f"must be a number, got {printable(repr(value))}", "give a number")
        fixed[name] = float(value)
        if not any(applies(name, _interventions(e)) for e in experiments.values()):
            raise HhsimError(
                fw,
                "names an intervention none of the targets' experiments has",
                "check the intervention's name",
            )
    for exp in experiments.values():
        here = _applicable(fixed, exp)
        if not here:
            continue
        try:
            probe(exp, here)
        except HhsimError as err:
            name = err.where.removeprefix("parameters.")
            raise HhsimError(
                f"{where}: fixed.{name}" if name in here else where, err.problem, err.fix
            ) from None
    return fixed
