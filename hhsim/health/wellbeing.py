"""Mental wellbeing as a score (e.g. WEMWBS, 14-70 points) that follows each tenant's state.

Each tenant has a target score: the population mean, plus a stable personal offset (the
trait, normal, drawn once), plus additive effects of covariates (health states, isolation,
deprivation, hazards), plus any shift an intervention gives. Each step the score closes a
fixed share of the gap to its target, so a change of state or an intervention moves
wellbeing gradually and it relaxes back when the cause ends.

    [wellbeing]
    minimum = 14
    maximum = 70
    mean = { value = 49.9, unit = "points", source = "..." }
    sd = { value = 8.9, unit = "points", source = "..." }          # total between-person SD
    adjustment = { value = 0.5, unit = "share of the gap closed per month", source = "..." }
    effect.health.bad = { value = -10.0, unit = "points", source = "..." }

The mean and SD are population figures: the effects are de-averaged over the reference
population, and the trait's SD is what remains of the total SD after the effects' spread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import check_keys, scalar
from hhsim.health.profiles import ProfileSpace
from hhsim.health.terms import Term, TermContext, parse_terms, total
from hhsim.world.children import is_child
from hhsim.world.population import Population

WELLBEING_KEYS = {"description", "minimum", "maximum", "mean", "sd", "adjustment", "effect"}


@dataclass
class Wellbeing:
    """The wellbeing score's parameters and its vectorised update."""

    minimum: float
    maximum: float
    mean: float
    sd: float
    adjustment: float  # share of the gap to target closed per month
    effects: list[Term]
    centre: float = 0.0  # mean of the effects over the reference population
    trait_sd: float = 0.0
    static_effect: np.ndarray | None = None  # effects tabulated over the profile spaces
    state_effect: np.ndarray | None = None

    def tabulate(self, space: ProfileSpace) -> None:
        """Precompute the static and state effects over the profile spaces."""
        self.static_effect, self.state_effect = space.sums(self.effects)

    def calibrate(self, ref: Population) -> None:
        """De-average the effects and size the trait over the reference population's adults
        (the score describes adults; children carry one that no result reads)."""
        eff = total(self.effects, ref, np.flatnonzero(ref.alive & ~is_child(ref)))
        self.centre = float(eff.mean()) if eff.size else 0.0
        self.trait_sd = float(np.sqrt(max(self.sd**2 - (eff.var() if eff.size else 0.0), 0.0)))

    def target(self, pop: Population) -> np.ndarray:
        if self.static_effect is not None and pop.static_profile is not None:
            effects = (np.take(self.static_effect, pop.static_profile)
                       + np.take(self.state_effect, pop.state_profile))
            for term in self.effects:
                if term.kind == "dynamic":
                    effects += term.factor(pop, None)
        else:
            effects = total(self.effects, pop, None)
        return np.float32(self.mean - self.centre) + pop.wellbeing_trait + effects

    def initialise(self, pop: Population, z: np.ndarray) -> None:
        """Draw traits from standard normals ``z`` and start every score at its target."""
        pop.wellbeing_trait = (self.trait_sd * z).astype(np.float32)
        pop.wellbeing = np.clip(self.target(pop), self.minimum, self.maximum).astype(np.float32)

    def update(self, pop: Population, months: float, shift: np.ndarray | None = None) -> None:
        """Move scores toward their targets (raised by ``shift`` points, e.g. an
        intervention's effect) over ``months`` months."""
        keep = (1.0 - self.adjustment) ** months
        target = self.target(pop)
        if shift is not None:
            target += shift
        pop.wellbeing = np.clip(target + keep * (pop.wellbeing - target),
                                self.minimum, self.maximum).astype(np.float32)


def parse_wellbeing(node: Mapping[str, Any] | None,
                    chains: Mapping[str, tuple[str, ...]]) -> Wellbeing | None:
    if not node:
        return None
    check_keys(node, "wellbeing", WELLBEING_KEYS)
    lo, hi = node.get("minimum"), node.get("maximum")
    if not isinstance(lo, int | float) or not isinstance(hi, int | float) or lo >= hi:
        raise HhsimError("wellbeing", "needs numbers minimum < maximum (the scale's range)",
                         "add minimum = 14 and maximum = 70")
    adjustment = scalar(node, "adjustment", "wellbeing", "share of the gap closed per month")
    if not 0.0 < adjustment <= 1.0:
        raise HhsimError("wellbeing.adjustment", "must be in (0, 1]", "give a share such as 0.5")
    effects = parse_terms(node.get("effect"), "wellbeing.effect", TermContext(chains, additive=True))
    return Wellbeing(float(lo), float(hi), scalar(node, "mean", "wellbeing", "points"),
                     scalar(node, "sd", "wellbeing", "points"), adjustment, effects)
