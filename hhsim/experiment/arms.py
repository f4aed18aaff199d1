"""An arm compiled: its model and world trees with every override applied, its health model
compiled and its interventions parsed, each checked once (one-line errors naming the key)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hhsim.core.costing import uprating_factor
from hhsim.core.errors import HhsimError, printable, unknown_key_error
from hhsim.core.resources import cost_index
from hhsim.experiment.schema import Arm, Experiment
from hhsim.health.model_file import HealthModel, compile_model
from hhsim.interventions import model_context, parse_arm
from hhsim.interventions.base import Settings
from hhsim.world.stock import check_hazards_can_vary, load_stock
from hhsim.world.synthetic import england_mix, generate


@dataclass(frozen=True)
class ArmPlan:
    """One arm as every run of it is made.

    ``health`` and ``settings`` are the compiled model and the parsed interventions: a run
    builds from them without compiling again. An arm at a parameter point of a sweep has
    neither (None): its runs compile its trees where they are made, in the workers.
    """

    name: str
    model_tree: Mapping[str, Any]  # the health model file with every override applied
    world_tree: Mapping[str, Any]  # the simulated population's marginals (overrides applied)
    interventions: tuple[Mapping[str, Any], ...]  # each over its type's defaults, overrides applied
    health: HealthModel | None = field(default=None, compare=False, repr=False)
    settings: tuple[Settings, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def months_per_step(self) -> int:
        """1 for a monthly model, 12 for a yearly one (the model file's ``cycle``)."""
        return 12 if self.model_tree.get("model", {}).get("cycle") == "year" else 1

    def to_json(self) -> dict:
        """The arm as plain data (plan.json)."""
        return {"name": self.name, "model": self.model_tree, "world": self.world_tree,
                "interventions": list(self.interventions)}


def arm_trees(exp: Experiment, arm: Arm) -> ArmPlan:
    """The arm's trees and interventions with every override applied, not compiled."""
    model, world = exp.trees(arm)
    return ArmPlan(arm.name, model, world, tuple(exp.interventions(arm)))


def compile_arm(exp: Experiment, trees: ArmPlan) -> ArmPlan:
    """The arm (its ``trees``) compiled and checked: its model file, its interventions
    against that model, its prices against the experiment's price year, its step against
    the months, and its world's shares (a small population is drawn from them)."""
    e = exp.experiment
    health = compile_model(trees.model_tree)
    settings = parse_arm(list(trees.interventions), model_context(health, e.price_year, e.months),
                         f"arms.{trees.name}")
    for act in health.activities:
        if act.unit_cost is not None:
            try:
                uprating_factor(act.price_year, e.price_year)
            except HhsimError:
                raise HhsimError("experiment.price_year",
                                 f"cannot express {act.cost_parameter} ({act.price_year} prices) "
                                 f"in {e.price_year} prices", f"use one of {sorted(cost_index())}") from None
    if health.cycle_months == 12 and e.months % 12:
        raise HhsimError("experiment.months", f"{e.months} is not whole years, "
                         "but the model has a yearly cycle", "give a multiple of 12")
    if e.high_users is not None:
        check_high_users(e.high_users.activity, health)
    generate(60, england_mix(trees.world_tree), trees.world_tree, np.random.default_rng(0))  # every share
    return ArmPlan(trees.name, trees.model_tree, trees.world_tree, trees.interventions, health,
                   tuple(settings))


def check_high_users(activity: str, health: HealthModel) -> None:
    """A high-use cohort is chosen by a tenant's own tally of an activity of the model, and
    by model years, so the model must be monthly."""
    names = [a.name for a in health.activities if a.per_tenant]
    if activity not in names:
        raise unknown_key_error("experiment.high_users.activity", printable(activity), names,
                                what="activity of each tenant")
    if health.cycle_months != 1:
        raise HhsimError("experiment.high_users", "the model has a yearly cycle",
                         "follow high users in a monthly model")


def compile_arms(exp: Experiment) -> tuple[ArmPlan, ...]:
    """Every arm compiled (``compile_arm``; every arm's overrides applied first, so that a
    mistyped name is reported before anything is compiled), then the stock file read
    against the first arm's health chains (its states must be the model's) and its hazards
    checked (they must be able to come and go)."""
    arms = tuple(compile_arm(exp, trees) for trees in [arm_trees(exp, arm) for arm in exp.arms])
    if exp.stock_path is not None:
        chains = {n: c.states for n, c in arms[0].health.chains.items()}
        pop, _, report = load_stock(exp.stock_path, exp.world_tree(), chains, np.random.default_rng(0))
        check_hazards_can_vary(pop, report.hazards_given)
    return arms
