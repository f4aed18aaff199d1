"""The plan (issue 20): an experiment compiled once into frozen, serialisable data that the
runs, the results folder and the report all work from, carrying the model version."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import hhsim
from hhsim.batch.design import runs
from hhsim.core.version import MODEL_VERSION
from hhsim.report.batch import load_batch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def yearly(tmp_path_factory):
    """A yearly-cycle published model, run small (its plan and results folder)."""
    plan = hhsim.compile_plan(ROOT / "experiments" / "chancellor-1997-hiv.toml", tenants=200, months=24,
                              replications=2)
    return plan, hhsim.run_experiment(plan, tmp_path_factory.mktemp("plan") / "out", workers=1)


def test_a_plan_is_frozen_and_its_runs_carry_its_compiled_arms(yearly):
    plan, _ = yearly
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.arms = ()
    assert plan.months_per_step == 12 and plan.steps == 2
    specs = runs(plan)
    assert len(specs) == 2 * len(plan.arms)
    by_arm = {a.name: a for a in plan.arms}
    assert all(s.config.health is by_arm[s.arm].health and s.config.steps == 2 for s in specs)


def test_the_folder_keeps_the_plan_and_the_model_version(yearly):
    plan, res = yearly
    stored = json.loads((res.out / "plan.json").read_text())
    assert stored == json.loads(json.dumps(plan.to_json())) == res.plan
    assert stored["model_version"] == MODEL_VERSION == res.manifest["model_version"] == res.model_version
    assert stored["months_per_step"] == 12 and [a["name"] for a in stored["arms"]] == plan.arm_names
    back = hhsim.load_results(res.out)
    assert back.plan == stored and back.model_version == MODEL_VERSION


def test_the_report_takes_its_step_length_from_the_plan(yearly):
    _, res = yearly
    batch = load_batch(res.out)
    assert batch.settings.months_per_step == 12 and batch.plan["digest"] == res.manifest["experiment_digest"]


def test_more_replications_keep_the_digest_and_another_seed_changes_it(yearly):
    plan, _ = yearly
    assert plan.with_replications(7).digest == plan.digest and plan.with_replications(7).replications == 7
    assert plan.with_seed(plan.seed + 1).digest != plan.digest
