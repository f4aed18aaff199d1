"""Design: an experiment becomes a list of run specifications (pure data).

Every run has a deterministic id (``<arm>__r<replication>``). Runs of one replication share
its seed branch whatever their arm, so arms face the same random numbers (common random
numbers); seeds never depend on the order or place runs are executed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from hhsim.experiment.schema import Experiment
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


def plan(exp: Experiment) -> list[RunSpec]:
    """Every arm x replication of an experiment, replication by replication."""
    e = exp.experiment
    reference_world = exp.world_tree()
    configs = {}
    for arm in exp.arms:
        model, world = exp.trees(arm)
        months_per_step = 12 if model.get("model", {}).get("cycle") == "year" else 1
        configs[arm.name] = dict(
            model_tree=model, world_tree=world, tenants=exp.population.tenants,
            tenure=dict(exp.population.tenure), steps=e.months // months_per_step,
            seed=e.seed, discount_costs=float(e.discount.costs),
            discount_effects=float(e.discount.effects), reward_timing=e.reward_timing,
            start_month=e.start_month, arm=arm.name, reference_world_tree=reference_world,
            stock=str(exp.stock_path) if exp.stock_path else None,
            profile=str(exp.profile_path) if exp.profile_path else None,
            interventions=tuple(exp.interventions(arm)), price_year=e.price_year)
    return [RunSpec(run_id(arm.name, r), arm.name, r, e.price_year,
                    RunConfig(replication=r, **configs[arm.name]))
            for r in range(e.replications) for arm in exp.arms]
