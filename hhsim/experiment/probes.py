"""Sampled parameters checked at both ends of their ranges before anything runs.

A ``[sensitivity]`` or ``[psa]`` section, a calibration's priors, a break-even search: each
varies parameters over a range. Each arm is compiled (``hhsim.experiment.arms``) with every
varied parameter at the low, then at the high end of its range, so a name that is not a
parameter, or a value a parameter cannot take, is reported before the first run. The
experiment file itself is not validated again: only the arms at the probed values.
"""

from __future__ import annotations

from collections.abc import Mapping

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import scaled, target_of
from hhsim.experiment.arms import compile_arms
from hhsim.experiment.schema import Arm, Experiment, check_overrides


def at_point(exp: Experiment, overrides: Mapping[str, float]) -> Experiment:
    """The experiment with ``overrides`` laid over its ``[parameters]`` section (an arm's
    own ``parameters`` still win)."""
    return exp.model_copy(update={"parameters": {**exp.parameters, **overrides}})


def set_inline(arm: Arm, name: str) -> bool:
    """Whether ``interventions.<iv>.<path>`` is written in the arm's own intervention table."""
    parts = target_of(name).split(".")
    if len(parts) < 3 or parts[0] != "interventions":
        return False
    for table in arm.interventions:
        if table.get("name", table.get("type")) != parts[1]:
            continue
        node = table
        for key in parts[2:]:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            return True
    return False


def arm_setting(arm: Arm, name: str) -> str | None:
    """The key of ``arm.parameters`` that sets or scales the parameter ``name`` acts on
    (``name`` itself or ``scale(<name>)``), or None."""
    return next((k for k in arm.parameters if target_of(k) == target_of(name)), None)


def not_set_by_arms(exp: Experiment, name: str, where: str) -> None:
    """A one-line error if an arm sets ``name`` itself: its value would replace every
    sampled (or calibrated, or fixed) one."""
    for arm in exp.arms:
        mine = arm_setting(arm, name)
        if mine is not None:
            raise HhsimError(where, f"is also set by arm '{arm.name}' ({mine}), whose value would replace "
                             "or scale every sampled one", f"remove it from arms.{arm.name}.parameters")
        if set_inline(arm, name):
            raise HhsimError(where, f"is also set in arm '{arm.name}''s intervention table, whose value "
                             "every sampled one would replace",
                             "sample it in an experiment where no arm sets it, or set it per arm "
                             "through arms.<arm>.parameters and leave it out of the section")


def not_mixed_with_parameters(exp: Experiment, name: str, where: str) -> None:
    """A one-line error if a sampled value ``name`` has a factor on it in the experiment's
    ``[parameters]`` (``scale(<name>)``): the model would use their product, not the value
    the analysis reports. (A sampled factor on a value ``[parameters]`` sets multiplies it,
    as documented, and a sampled name replaces the same name there.)"""
    factor = f"scale({name})"
    if scaled(name) is None and factor in exp.parameters:
        raise HhsimError(where, f"has a factor on it in [parameters] ('{factor}'), so the model would use "
                         "their product, not the sampled value", f"remove '{factor}' from [parameters], "
                         f"or sample '{factor}' instead")


def probe(exp: Experiment, values: Mapping[str, float]) -> None:
    """Every arm compiled with ``values`` laid over the experiment's parameters."""
    point = at_point(exp, values)
    check_overrides(point)
    compile_arms(point)


def check_ranges(exp: Experiment, section: str, ranges: Mapping[str, tuple[float, float]],
                 fixed: Mapping[str, float] | None = None) -> None:
    """One-line errors unless every parameter of a sampling ``section`` (``sensitivity``,
    ``psa``) can vary: none is also set by an arm, and every arm compiles with all of them
    at the low, then the high end of their ``ranges`` (on a failure, each alone, to name the
    one at fault). ``fixed`` values (e.g. a Dirichlet group at its mean) are in every probe."""
    for name in [*ranges, *(fixed or {})]:
        not_set_by_arms(exp, name, f"{section}.parameters.{name}")
        not_mixed_with_parameters(exp, name, f"{section}.parameters.{name}")
    for side in (0, 1):
        try:
            probe(exp, {**(fixed or {}), **{n: r[side] for n, r in ranges.items()}})
        except HhsimError:
            for name, r in ranges.items():
                check_value(exp, name, r[side], ("low", "high")[side], f"{section}.parameters.{name}",
                            fixed)
            raise


def check_value(exp: Experiment, name: str, value: float, label: str, where: str,
                fixed: Mapping[str, float] | None = None, fix: str = "") -> None:
    """A one-line error at ``where`` if the arms do not compile with ``name`` at ``value``
    (its ``label``: e.g. low, high, the prior's low; ``fix``: what to do, by default
    narrow the bounds)."""
    try:
        probe(exp, {**(fixed or {}), name: value})
    except HhsimError as err:
        if err.where == f"parameters.{name}" and err.problem.startswith("unknown"):
            raise HhsimError(where, err.problem, err.fix) from None
        why = err.problem if err.where == f"parameters.{name}" else f"{err.where}: {err.problem}"
        raise HhsimError(where, f"its {label} value {value:.4g} is refused ({why})",
                         fix or ("narrow the bounds or choose a distribution within the parameter's range"
                                 + (f"; {err.fix}" if err.fix else ""))) from None
