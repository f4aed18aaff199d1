"""Design: a plan becomes a list of run specifications (pure data).

Every run has a deterministic id (``<arm>__r<replication>``). Runs of one replication share
its seed branch whatever their arm, so arms face the same random numbers (common random
numbers); seeds never depend on the order or place runs are executed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from hhsim.experiment.arms import ArmPlan
from hhsim.experiment.plan import Plan
from hhsim.model.simulation import RunConfig


@dataclass(frozen=True)
class RunSpec:
    """One run to simulate: its id, its place in the design, and everything it needs."""

    run_id: str
    arm: str
    replication: int
    price_year: str
    config: RunConfig


def run_id(arm: str, replication: int) -> str:
    return f"{arm}__r{replication:04d}"


def arm_config(plan: Plan, arm: ArmPlan, replication: int) -> RunConfig:
    """The run of ``arm`` in replication ``replication`` (its compiled model and settings
    when the plan has them)."""
    e, pop = plan.experiment.experiment, plan.experiment.population
    exp = plan.experiment
    return RunConfig(
        model_tree=arm.model_tree, world_tree=arm.world_tree, tenants=pop.tenants, tenure=dict(pop.tenure),
        steps=e.months // arm.months_per_step, seed=e.seed, replication=replication,
        discount_costs=float(e.discount.costs), discount_effects=float(e.discount.effects),
        reward_timing=e.timing, start_month=e.start_month, arm=arm.name,
        stock=str(exp.stock_path) if exp.stock_path else None,
        profile=str(exp.profile_path) if exp.profile_path else None,
        reference_world_tree=plan.reference_world, interventions=arm.interventions,
        price_year=e.price_year, health=arm.health, settings=arm.settings,
        cohort=dict(pop.cohort) if pop.cohort is not None else None, turnover=pop.turnover,
        children=pop.children, census=e.census,
        high_users=e.high_users.model_dump() if e.high_users is not None else None)


def runs(plan: Plan) -> list[RunSpec]:
    """Every arm x replication of a plan, replication by replication."""
    price_year = plan.experiment.experiment.price_year
    return [RunSpec(run_id(arm.name, r), arm.name, r, price_year, arm_config(plan, arm, r))
            for r in range(plan.replications) for arm in plan.arms]
