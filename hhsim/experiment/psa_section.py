"""The ``[psa]`` section of an experiment file, resolved and checked.

The schema is ``hhsim.experiment.schema.PSA``. ``setup`` resolves it (distributions, groups);
``check_psa`` also validates the experiment with every parameter at the low and then the
high end of its distribution, so a name that is not a parameter, or a value a parameter
cannot take, is reported before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from hhsim.core.distributions import Dirichlet, Distribution, parse_distribution
from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.parameters import scaled, target_of
from hhsim.experiment.probes import check_ranges
from hhsim.experiment.schema import PSA, Experiment


@dataclass(frozen=True)
class Setup:
    """What a ``[psa]`` section asks for, resolved."""

    draws: int
    distributions: dict[str, Distribution | Dirichlet]  # by key in [psa.parameters]
    groups: dict[str, tuple[str, ...]]  # EVPPI groups of parameter names
    thresholds: tuple[float, ...]  # £ per QALY, for the acceptability curve
    decision_thresholds: tuple[float, ...]  # the experiment's thresholds
    perspective: str

    @property
    def names(self) -> tuple[str, ...]:
        """Every parameter drawn (a Dirichlet contributes each of its shares)."""
        out: list[str] = []
        for key, d in self.distributions.items():
            out += list(d.parameters) if isinstance(d, Dirichlet) else [key]
        return tuple(out)


def setup(exp: Experiment, posterior_names: tuple[str, ...] | None = ()) -> Setup:
    """The resolved ``[psa]`` section; ``posterior_names`` are parameters drawn from a
    calibration posterior instead (they may appear in ``groups``, not in ``parameters``).
    ``None``: not known yet (checking a file before a run), so groups may name others."""
    s = exp.psa or PSA()
    if not s.parameters and posterior_names == ():
        raise HhsimError("psa.parameters", "is empty and no posterior was given",
                         "add [psa.parameters] with distributions, or give --posterior")
    dists = {k: parse_distribution(spec, f"psa.parameters.{k}") for k, spec in s.parameters.items()}
    st = Setup(s.draws, dists, {}, tuple(float(x) for x in sorted(s.thresholds)),
               tuple(float(x) for x in exp.experiment.thresholds), s.perspective)
    names = st.names + tuple(posterior_names or ())
    targets = [target_of(n) for n in names]
    if len(set(targets)) != len(targets):
        twice = sorted({n for n in names if targets.count(target_of(n)) > 1})
        raise HhsimError("psa.parameters", f"draws {twice} twice (a distribution and a Dirichlet share, "
                         "a distribution and the posterior, or a value and its scale(...))",
                         "give each parameter one source of draws")
    for d in dists.values():
        if isinstance(d, Dirichlet) and any(scaled(m) is not None for m in d.parameters):
            raise HhsimError("psa.parameters", "a Dirichlet group of scale(...) factors has shares, "
                             "not factors", "give the shares' parameters themselves")
    for group, members in s.groups.items():
        if not members:
            raise HhsimError(f"psa.groups.{group}", "is empty", "list the parameters of the group")
        for m in members:
            if m not in names and posterior_names is not None:
                raise unknown_key_error(f"psa.groups.{group}", m, names, what="drawn parameter")
    if any(t < 0 for t in st.thresholds):
        raise HhsimError("psa.thresholds", "has a negative value", "give thresholds of 0 or more £ per QALY")
    return Setup(st.draws, dists, {g: tuple(m) for g, m in s.groups.items()}, st.thresholds,
                 st.decision_thresholds, st.perspective)


def check_psa(exp: Experiment) -> Setup:
    """``setup``, plus the experiment validated with the parameters at the low, then high
    end of their distributions (``hhsim.experiment.probes.check_ranges``) with any Dirichlet group
    at its mean, and each Dirichlet group near each of its corners."""
    st = setup(exp, posterior_names=None)
    groups = [d for d in st.distributions.values() if isinstance(d, Dirichlet)]
    ranges = {k: d.range() for k, d in st.distributions.items() if not isinstance(d, Dirichlet)}
    means = {n: float(v) for d in groups for n, v in zip(d.parameters, d.mean, strict=True)}
    check_ranges(exp, "psa", ranges, fixed=means)
    for d in groups:  # each share near 1 and the others near 0 (draws never reach the corners)
        for k in range(len(d.parameters)):
            corner = {n: (0.999 if i == k else 0.001 / (len(d.parameters) - 1))
                      for i, n in enumerate(d.parameters)}
            check_ranges(exp, "psa", {}, fixed={**means, **corner})
    return st
