"""The Morris screen of the default model (hhsim.studies.sensitivity.screen; issue 16)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from hhsim.core.expressions import is_expression
from hhsim.core.parameters import iter_leaves, read_toml, target_of
from hhsim.core.resources import default_model_tree
from hhsim.studies.sensitivity import screen as S


def test_parameters_are_the_leaves_that_are_not_expressions_tables_as_one_factor():
    tree = default_model_tree()
    raw = dict(iter_leaves(tree))
    kept, skipped = S.screen_parameters(tree)
    names = {target_of(p.name) for p in kept}
    assert all(not is_expression(raw[n]["value"]) for n in names)
    # model 7's causes and planned care are in
    assert {"hospital.admissions.emergency.causes.respiratory.rr.damp",
            "hospital.admissions.emergency.causes.injury.share", "services.outpatient.unit_cost",
            "services.elective.unit_cost",
            "services.prescriptions.unit_cost"} <= names
    # tables of levels are in, each as one factor on the whole table
    by = {p.name: p for p in kept}
    for name in ("services.gp.rate", "hospital.admissions.emergency.los_mean", "mortality.life_table",
                 "chains.health.transitions.bad_to_good.probability"):
        p = by[f"scale({name})"]
        assert (p.value, p.scale, p.low) == (1.0, "factor", 0.75) and p.high == pytest.approx(1.25)
    why = dict(skipped)
    assert why["parameters.other_winter_ratio"].startswith("expression")
    for shape in ("chains.ltc.transitions.onset.rr.deprivation", "parameters.winter", "utility.baseline"):
        assert why[shape].startswith("a table whose shape"), shape
    assert names | set(why) == set(raw)  # every leaf is either screened or left out with a reason
    for p in kept:
        assert p.low < p.high and p.low <= p.value <= p.high
        if p.unit.lower().startswith(("probability", "share", "proportion")):
            assert p.low >= 0 and p.high <= 1, p.name
        if p.scale == "factor":  # the scaled table stays within its unit's range
            top = float(np.max(raw[target_of(p.name)]["value"]))
            if "probability" in p.unit or "share" in p.unit:
                assert top * p.high <= 1 + 1e-12, p.name


def test_ranges_keep_meaning_and_bounds():
    tree = {"a": {"share": {"value": 0.9, "unit": "share", "source": "x"},
                  "rr": {"value": 1.07, "unit": "odds ratio per decile more deprived", "source": "x"},
                  "protective": {"value": 0.96, "unit": "rate ratio per point", "source": "x"},
                  "u": {"value": 0.8, "unit": "utility multiplier", "source": "x"},
                  "cost": {"value": 100.0, "unit": "£ per contact", "price_year": "2023/24", "source": "x"},
                  "zero": {"value": 0.0, "unit": "probability", "source": "x"},
                  "tenure": {"rough_sleeping": {"value": 3.0, "unit": "rate ratio", "source": "x"}}}}
    kept, skipped = S.screen_parameters(tree, tenures=("social_rented",))
    by = {p.name: p for p in kept}
    assert by["a.share"].low == pytest.approx(0.675) and by["a.share"].high == 1.0  # 1.125 cut at 1
    assert 1 < by["a.rr"].low < 1.07 < by["a.rr"].high  # an effect keeps its direction
    assert by["a.protective"].high < 1
    assert (by["a.u"].low, by["a.u"].high) == (pytest.approx(0.75), pytest.approx(0.85))  # decrement +/- 25%
    assert (by["a.cost"].low, by["a.cost"].high) == (75.0, 125.0)
    why = dict(skipped)
    assert why["a.zero"].startswith("zero") and "rough_sleeping" in why["a.tenure.rough_sleeping"]


def _indices(rows):
    return pd.DataFrame([{"output": o, "parameter": p, "index": "mu_star", "value": v, "conf": c}
                         for o, p, v, c in rows])


def test_rank_normalises_per_output_and_takes_the_largest():
    ind = _indices([("cost", "a", 1000.0, 10.0), ("cost", "b", 500.0, 10.0), ("cost", "c", 10.0, 1.0),
                    ("qaly", "a", 0.1, 0.01), ("qaly", "b", 0.1, 0.01), ("qaly", "c", 2.0, 0.1),
                    ("qaly", "d", 1.5, 0.1)])
    r = S.rank(ind, top=2)
    assert list(r["parameter"]) == ["a", "c", "d", "b"]  # a: 1 (cost), c: 1 (qaly), d: 0.75, b: 0.5
    assert list(r["rank"]) == [1, 2, 3, 4]
    assert r.set_index("parameter").loc["d", "output"] == "qaly"
    assert r.set_index("parameter").loc["b", "outputs"] == "cost"  # 0.05 on qaly is below INFLUENTIAL
    assert r.set_index("parameter").loc["d", "score"] == pytest.approx(0.75)
    assert not r["near_boundary"].any()  # 0.75 + 0.05 < 1 - 0.05
    # a is clear of the boundary; b (2nd) and c (3rd) overlap across it
    noisy = _indices([("cost", "a", 1.0, 0.05), ("cost", "b", 0.6, 0.2), ("cost", "c", 0.5, 0.2)])
    assert list(S.rank(noisy, top=2)["near_boundary"]) == [False, True, True]


def _write(tmp_path, tree):
    params, skipped = S.screen_parameters(tree)
    names = [p.name for p in params[:3]]
    ind = _indices([("x:out", n, float(3 - i), 0.1) for i, n in enumerate(names)])
    S.write_ranking(tmp_path, S.rank(ind), params, {"model_version": "7", "date": "today", "trajectories": 6},
                    skipped)
    return names


def test_table_reads_statuses_live(tmp_path):
    tree = copy.deepcopy(default_model_tree())
    names = _write(tmp_path, tree)
    before = S.screen_table(tmp_path / "ranking.csv", tree, top=2)
    assert f"`{names[0]}`" in before and f"`{names[2]}`" not in before
    node = tree
    for part in names[0].split("."):
        node = node[part]
    assert f"| 1 | `{names[0]}` | C |" not in before
    node["status"] = "C"
    after = S.screen_table(tmp_path / "ranking.csv", tree, top=2)
    assert f"| 1 | `{names[0]}` | C |" in after
    assert "model version 7" in after
    assert (tmp_path / "screen.toml").read_text().count("expression") > 0
    # a ranking without tables says so, with the model's count of tables and assumed ones
    tables = [p for p in S.screen_parameters(tree)[0] if p.scale == "factor"]
    assert f"This screen varied no table: the {len(tables)} tables" in after
    assert f"{sum(p.status == 'A' for p in tables)} of them assumptions" in after
    ranking = pd.read_csv(tmp_path / "ranking.csv")
    ranking.loc[len(ranking) - 1, "parameter"] = "scale(services.gp.rate)"
    ranking.to_csv(tmp_path / "ranking.csv", index=False)
    assert "varied no table" not in S.screen_table(tmp_path / "ranking.csv", tree, top=2)


@pytest.mark.filterwarnings("ignore")
def test_tiny_screen_runs(tmp_path):
    only = ["hospital.admissions.emergency.bed_day_cost", "chains.health.transitions.good_to_fair.rr.damp"]
    ranking, meta = S.run_screen(tmp_path / "runs", interventions=(), trajectories=2, tenants=200, months=6,
                                 workers=1, ranking_folder=tmp_path / "screen", only=only)
    assert set(ranking["parameter"]) == set(only)
    assert meta["experiments"] == [S.BASELINE_EXPERIMENT] and meta["parameters"] == 2
    table = S.screen_table(tmp_path / "screen" / "ranking.csv")
    assert "hospital.admissions.emergency.bed_day_cost" in table
    saved = read_toml(tmp_path / "screen" / S.META)
    assert saved["parameters"] == 2 and saved["trajectories"] == 2
    assert set(saved["left_out"]) and all(isinstance(v, str) for v in saved["left_out"].values())
    # the runs' folder keeps each experiment's time; a resumed screen adds to it, not to a
    # committed screen's (the ranking folder's) figures
    name = S.BASELINE_EXPERIMENT
    first = json.loads((tmp_path / "runs" / S.SECONDS).read_text())[name]
    assert first == meta["seconds"][name] > 0
    _, again = S.run_screen(tmp_path / "runs", interventions=(), trajectories=2, tenants=200, months=6,
                            workers=1, ranking_folder=tmp_path / "screen", only=only, resume=True)
    assert again["seconds"][name] > first


@pytest.mark.parametrize(("args", "message"), [
    (["--experiments", "nope"], "--experiments: 'nope' is not a headline intervention experiment"),
    (["--table", "--ranking", "missing"], "no saved screen ranking here"),
])
def test_screen_command_mistakes_are_one_line_errors(args, message, tmp_path, capsys):
    code = S.main([*args, "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_temporary_experiment_keeps_two_arms_and_scales_the_programme():
    from pathlib import Path

    e = S.screen_experiments(Path("experiments"), ["home-repairs"], None)[0]
    params, _ = S.screen_parameters()
    data, dropped = S.sensitivity_data(e, params[:3], 6, 16, tenants=1000, months=60)
    assert [a["name"] for a in data["arms"]] == ["baseline", "repairs"] and dropped == []
    assert data["population"]["tenants"] == 1000 and data["experiment"]["months"] == 60
    assert data["arms"][1]["interventions"][0]["capacity"]["budget_per_year"] == 50_000  # 1,000 of 10,000
    s = data["sensitivity"]
    assert (s["method"], s["samples"], s["arm"], s["oneway"]) == ("morris", 6, "repairs", False)


def test_programmes_of_whole_places_keep_one_and_overrides_are_scaled():
    from pathlib import Path

    params, _ = S.screen_parameters()
    step_down, step_out, both = S.screen_experiments(
        Path("experiments"), ["step-down-cedarwood", "step-out-supported-homes", "support-and-repairs"], None)
    # 29 beds for 100,000 adults: the population shrinks to one bed's share (3,449), not to 1,000
    data, _ = S.sensitivity_data(step_down, params[:3], 4, 16, tenants=1000, months=36)
    assert data["population"]["tenants"] == 3449
    assert data["arms"][1]["interventions"][0]["capacity"]["places"] == 1
    data, _ = S.sensitivity_data(step_out, params[:3], 4, 16, tenants=1000, months=36)
    capacity = data["arms"][1]["interventions"][0]["capacity"]
    assert (data["population"]["tenants"], capacity["places"]) == (40_000, 1)
    # the experiment's own [parameters] set the support worker's 2 FTE for 10,000 tenants
    data, _ = S.sensitivity_data(both, params[:3], 4, 16, tenants=1000, months=36)
    assert data["parameters"]["interventions.support.capacity.staff_fte"] == pytest.approx(0.2)
    assert data["arms"][1]["interventions"][1]["capacity"]["budget_per_year"] == pytest.approx(50_000)
