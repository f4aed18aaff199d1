"""The ``[sensitivity]`` section of an experiment file, resolved and checked.

The schema is ``hhsim.experiment.schema.Sensitivity``. ``setup`` resolves it (distributions,
the arm analysed, outputs); ``check_sensitivity`` also validates the experiment with every
parameter at its low and then its high value, so a name that is not a parameter, or a
range a parameter cannot take, is reported before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from hhsim.core.distributions import Dirichlet, Distribution, parse_distribution
from hhsim.core.errors import HhsimError
from hhsim.experiment.outputs import check_output
from hhsim.experiment.probes import check_ranges
from hhsim.experiment.schema import Experiment

#: fast needs more than 4 M^2 samples per parameter (M = 4, SALib's default interference factor).
FAST_MIN = 65


@dataclass(frozen=True)
class Setup:
    """What a ``[sensitivity]`` section asks for, resolved."""

    method: str
    samples: int
    names: tuple[str, ...]
    distributions: tuple[Distribution, ...]
    outputs: tuple[str, ...]
    arm: str
    second_order: bool
    levels: int
    oneway: bool


def _arm(exp: Experiment, asked: str | None) -> str:
    names = [a.name for a in exp.arms]
    if asked is not None:
        if asked not in names:
            raise HhsimError("sensitivity.arm", f"'{asked}' is not among the arms {names}",
                             "name one of the experiment's arms")
        return asked
    others = [n for n in names if n != exp.baseline]
    if len(others) > 1:
        raise HhsimError("sensitivity.arm", f"the experiment has several arms besides the baseline {others}",
                         "say which arm to analyse: arm = \"...\"")
    return others[0] if others else exp.baseline


def setup(exp: Experiment) -> Setup:
    """The resolved ``[sensitivity]`` section (one-line errors for bad entries)."""
    s = exp.sensitivity
    if s is None:
        raise HhsimError(str(exp.source or "experiment"), "has no [sensitivity] section",
                         "add one with parameters and outputs (see docs/sensitivity.md)")
    dists = []
    for name, spec in s.parameters.items():
        where = f"sensitivity.parameters.{name}"
        dist = parse_distribution(spec, where)
        if isinstance(dist, Dirichlet):
            raise HhsimError(where, "a Dirichlet group cannot be sampled for sensitivity analysis",
                             "give each share its own bounds, or vary one share")
        dists.append(dist)
    arm = _arm(exp, s.arm)
    for out in s.outputs:
        check_output(out, [a.name for a in exp.arms], exp.baseline, arm, "sensitivity.outputs")
    if len(set(s.outputs)) != len(s.outputs):
        raise HhsimError("sensitivity.outputs", "names an output twice", "list each output once")
    if s.method == "sobol" and s.samples & (s.samples - 1):
        lower = 1 << (s.samples.bit_length() - 1)
        raise HhsimError("sensitivity.samples", f"sobol needs a power of 2, got {s.samples}",
                         f"give {lower} or {2 * lower} (Sobol' sequences are balanced only then)")
    if s.method == "fast" and s.samples < FAST_MIN:
        raise HhsimError("sensitivity.samples", f"fast needs at least {FAST_MIN} samples, got {s.samples}",
                         f"give samples >= {FAST_MIN}")
    if len(s.parameters) < 2 and s.method in ("morris", "fast"):
        raise HhsimError("sensitivity.parameters", f"{s.method} needs at least two parameters",
                         "add a parameter, or use sobol")
    return Setup(s.method, s.samples, tuple(s.parameters), tuple(dists), tuple(s.outputs), arm,
                 s.second_order, s.levels, s.oneway)


def check_sensitivity(exp: Experiment) -> Setup:
    """``setup``, plus the experiment validated with the parameters at their low, then high
    values (``hhsim.experiment.probes.check_ranges``)."""
    st = setup(exp)
    check_ranges(exp, "sensitivity", {n: d.range() for n, d in zip(st.names, st.distributions, strict=True)})
    return st
