"""Global sensitivity analysis: indices match a model whose indices are known analytically,
sweeps are reproducible and resumable, bad sections are one-line errors, the CLI runs.

The test model (tests/models/linear_additive.toml) is deterministic: NHS care cost =
person-years x (a + b + c), with person-years = tenants x years (no discounting, nobody
leaves). For independent inputs the Sobol indices are S_i = ST_i = var(X_i) / sum var(X_j);
on the quantile scale Morris's elementary effect of a uniform [0, w] cost is exactly
person-years x w.
"""

import html
import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hhsim.batch.execution as execution
from hhsim.analysis.sweep import point_outcomes
from hhsim.api import run_experiment
from hhsim.batch.points import run_points
from hhsim.cli import main
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import compile_plan, validate
from hhsim.studies.sensitivity.analysis import noise_check, ranking_text, sample_check
from hhsim.studies.sensitivity.run import run_sensitivity

from conftest import MODELS

LINEAR = str(MODELS / "linear_additive.toml")
TENANTS = 10  # x 1 year = 10 person-years


def linear(sensitivity: dict, **experiment) -> dict:
    return {"experiment": {"name": "linear", "model": LINEAR, "months": 12, "replications": 1, "seed": 7,
                           "discount": {"costs": 0, "effects": 0}, **experiment},
            "population": {"tenants": TENANTS}, "sensitivity": sensitivity}


@pytest.fixture(scope="module")
def noisy_model(tmp_path_factory):
    """The linear model where the well fall ill at a rate: the costs become random."""
    path = tmp_path_factory.mktemp("model") / "noisy.toml"
    path.write_text((MODELS / "linear_additive.toml").read_text() + """
[chains.health.transitions.fall_ill]
from = "well"
to = "ill"
rate = { value = 1.0, unit = "per person-year", source = "test value", status = "A" }
""")
    return str(path)


SOBOL = {"method": "sobol", "samples": 32, "outputs": ["mean:nhs_cost"], "parameters": {
    "state_costs.a.cost": [0, 100],
    "state_costs.c.cost": {"dist": "normal", "mean": 300, "sd": 50},
    "state_costs.unused.cost": [0, 300]}}


@pytest.fixture(scope="module")
def sobol_run(tmp_path_factory):
    return run_sensitivity(validate(linear(SOBOL)), tmp_path_factory.mktemp("sobol") / "out", workers=1)


def test_sobol_indices_match_the_analytic_values_within_their_intervals(sobol_run):
    var = {"state_costs.a.cost": 100**2 / 12, "state_costs.c.cost": 50**2, "state_costs.unused.cost": 0.0}
    total = sum(var.values())
    idx = sobol_run.indices.set_index(["index", "parameter"])
    for name, v in var.items():
        for kind in ("S1", "ST"):
            row = idx.loc[(kind, name)]
            assert row["low"] - 1e-9 <= v / total <= row["high"] + 1e-9, (kind, name, row.to_dict())
    # S1 = 0.25, 0.75, 0: the estimates are close too, and the ranking says so.
    assert idx.loc[("ST", "state_costs.c.cost"), "value"] == pytest.approx(0.75, abs=0.1)
    assert idx.loc[("ST", "state_costs.unused.cost"), "value"] == 0
    text = sobol_run.summary["outputs"]["mean:nhs_cost"]["text"]
    assert text.startswith("mean:nhs_cost (first-order S1 and total-order ST, 95% intervals): "
                           "state_costs.c.cost S1 0.") and "the rest ST < 0.05 each" in text
    for name in ("state_costs.c.cost", "state_costs.a.cost"):  # printed as in indices.csv
        for kind in ("S1", "ST"):
            r = idx.loc[(kind, name)]
            assert f"{kind} {r['value']:.2f} ({r['low']:.2f} to {r['high']:.2f})" in text


def test_one_way_points_and_files(sobol_run):
    ow = sobol_run.oneway.set_index(["kind", "parameter"])["value"]
    z = stats.norm.ppf(0.975)
    b = 100  # state_costs.b.cost keeps its default
    assert ow[("base", "")] == pytest.approx(TENANTS * (50 + b + 300), rel=1e-6)
    assert ow[("low", "state_costs.a.cost")] == pytest.approx(TENANTS * (b + 300), rel=1e-6)
    assert ow[("high", "state_costs.c.cost")] == pytest.approx(TENANTS * (50 + b + 300 + z * 50), rel=1e-6)
    assert ow[("high", "state_costs.unused.cost")] == pytest.approx(ow[("base", "")], rel=1e-6)
    out = sobol_run.out
    assert len(sobol_run.design) == 32 * 5 + 7 and len(sobol_run.outcomes) == 32 * 5 + 7
    pd.testing.assert_frame_equal(pd.read_parquet(out / "indices.parquet"), sobol_run.indices)
    summary = json.loads((out / "sensitivity.json").read_text())
    assert {"plots/mean-nhs_cost-indices.png", "plots/mean-nhs_cost-tornado.svg"} <= set(summary["plots"])
    assert all((out / p).stat().st_size > 1000 for p in summary["plots"])
    assert "| 1 | `state_costs.c.cost` |" in (out / "sensitivity.md").read_text()
    st = sobol_run.indices.set_index(["index", "parameter"]).loc[("ST", "state_costs.c.cost")]
    cell = f"{st['value']:.2f} ({st['low']:.2f} to {st['high']:.2f})"  # the same numbers in every place
    assert cell in (out / "sensitivity.md").read_text() and cell in (out / "section.html").read_text()
    text = html.escape(sobol_run.summary["outputs"]["mean:nhs_cost"]["text"])
    assert text in (out / "section.html").read_text()
    records = pd.read_parquet(out / "runs.parquet")
    assert records["run_id"].iloc[40] == "p00040__baseline__r0000" and records["point"].iloc[40] == 40
    assert not (out / "monthly").exists()  # sweeps keep the records only


def test_a_tiny_sobol_sample_prints_salibs_intervals_never_a_share_and_warns(tmp_path):
    from SALib.analyze import sobol

    section = {**SOBOL, "samples": 4, "oneway": False}
    res = run_sensitivity(validate(linear(section, seed=6)), tmp_path / "out", workers=1)
    idx = res.indices.set_index(["index", "parameter"])["value"]
    assert idx[("ST", "state_costs.c.cost")] > 1  # this sample's nonsense: once printed as "explains 215%"
    info = res.summary["outputs"]["mean:nhs_cost"]
    assert re.findall(r"-?[0-9.]+%", info["text"]) == ["95%"] and "explains" not in info["text"]
    # The intervals printed are SALib's own, recomputed here from the design and outcomes.
    names = list(SOBOL["parameters"])
    u = res.design[res.design["kind"] == "sample"][[f"q:{n}" for n in names]].to_numpy()
    y = res.outcomes.sort_values("point")["value"].to_numpy()
    salib = sobol.analyze({"num_vars": 3, "names": names, "bounds": [[0, 1]] * 3}, y, calc_second_order=False,
                          seed=6)
    assert len(u) == len(y) == 4 * 5
    for i, name in enumerate(names[:2]):
        for kind in ("S1", "ST"):
            v, c = salib[kind][i], salib[f"{kind}_conf"][i]
            assert f"{kind} {v:.2f} ({v - c:.2f} to {v + c:.2f})" in info["text"], (name, kind)
    warning = info["sample_warning"]
    low, high = res.indices["low"].min(), res.indices["high"].max()
    assert warning.startswith("mean:nhs_cost: the sample (N = 4) is too small for these indices: their 95% "
                              f"intervals run from {low:.2f} to {high:.2f}")
    assert "fewer than 16 samples" in warning and re.search(r"use --samples \d+ or more\.$", warning)
    assert warning in res.summary["warnings"]


def _table(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"output": "net_saving", "parameter": p, "index": k, "value": v, "conf": c,
                          "low": v - c, "high": v + c} for p, k, v, c in rows])


def test_the_too_small_rules():
    tight = _table([("x", "S1", 0.6, 0.1), ("x", "ST", 0.7, 0.1), ("y", "S1", 0.2, 0.05),
                    ("y", "ST", 0.3, 0.1)])
    assert sample_check("net_saving", tight, "sobol", 256) is None
    assert "fewer than 16 samples" in sample_check("net_saving", tight, "sobol", 8)
    wide = _table([("x", "S1", 0.6, 0.5), ("x", "ST", 0.7, 0.1)])  # spans 1.0: (1.0 / 0.5)^2 x 64 = 256
    assert sample_check("net_saving", wide, "sobol", 64) == (
        "net saving: the sample (N = 64) is too small for these indices: their 95% intervals run from 0.10 "
        "to 1.10 (the widest spans 1.00, more than 0.5); use --samples 256 or more.")
    outside = _table([("x", "S1", 1.3, 0.1), ("x", "ST", 0.7, 0.1)])
    assert "x's S1 interval lies wholly outside 0 to 1" in sample_check("net_saving", outside, "fast", 128)
    assert "bootstrap" in sample_check("net_saving", _table([("x", "delta", 0.3, np.nan)]), "delta", 128)
    morris = _table([("x", "mu_star", 100.0, 10.0), ("y", "mu_star", 40.0, 30.0), ("z", "mu_star", 1.0, 5.0)])
    # y: +/- 75% of mu*, so 20 x (0.75 / 0.5)^2 = 45 trajectories; z is below 5% of the top
    text = sample_check("net_saving", morris, "morris", 20)
    assert "y's mu* is 40 (95% interval 10 to 70)" in text and "use --samples 45 or more" in text
    assert sample_check("net_saving", morris.iloc[:1], "morris", 20) is None


def test_ties_in_the_ranking_index_are_broken_by_the_first_order_index():
    from hhsim.experiment.sensitivity_section import setup
    from hhsim.studies.sensitivity.analysis import index_table

    st = setup(validate(linear({**SOBOL, "samples": 8})))
    result = {"S1": np.array([0.1, 0.4, 0.0]), "ST": np.array([0.5, 0.5, 0.0]), "S1_conf": np.full(3, 0.1),
              "ST_conf": np.full(3, 0.1)}
    table = index_table(st, "mean:nhs_cost", result)
    order = table[table["index"] == "ST"].sort_values("rank")["parameter"].tolist()
    assert order == ["state_costs.c.cost", "state_costs.a.cost", "state_costs.unused.cost"]
    text = ranking_text("mean:nhs_cost", table, "sobol", 1.0, 8)
    assert "state_costs.c.cost S1 0.40 (0.30 to 0.50), ST 0.50 (0.40 to 0.60); state_costs.a.cost" in text


def test_morris_effects_are_exact_on_the_linear_model(tmp_path):
    section = {"method": "morris", "samples": 4, "outputs": ["mean:nhs_cost"], "oneway": False,
               "parameters": {"state_costs.a.cost": [0, 100], "state_costs.b.cost": [0, 200],
                              "state_costs.unused.cost": [0, 300]}}
    res = run_sensitivity(validate(linear(section)), tmp_path / "out", workers=1)
    mu = res.indices[res.indices["index"] == "mu_star"].set_index("parameter")["value"]
    sigma = res.indices[res.indices["index"] == "sigma"].set_index("parameter")["value"]
    assert mu.to_dict() == pytest.approx({"state_costs.a.cost": TENANTS * 100, "state_costs.b.cost":
                                          TENANTS * 200, "state_costs.unused.cost": 0}, rel=1e-5)
    assert sigma.max() < 1e-6 * mu.max()
    assert res.summary["outputs"]["mean:nhs_cost"]["ranking"][0] == "state_costs.b.cost"
    info = res.summary["outputs"]["mean:nhs_cost"]
    assert "state_costs.b.cost (mu* 2,000; 95% interval 2,000 to 2,000)" in info["text"]
    assert "(N = 4 trajectories) is too small for a reliable ranking: fewer than 10" in info["sample_warning"]


def test_morris_varies_a_scaled_parameter_as_one_factor(tmp_path):
    """``scale(<parameter>)`` samples a factor on the parameter's value: on the linear model
    a cost the experiment sets to 80, scaled over [0.5, 1.5], has the elementary effect of a
    cost over [40, 120], exactly, beside a plain parameter; an arm that sets the parameter
    cannot also have it scaled (its value would replace every sampled one)."""
    section = {"method": "morris", "samples": 4, "outputs": ["mean:nhs_cost"], "oneway": False,
               "parameters": {"scale(state_costs.a.cost)": [0.5, 1.5], "state_costs.b.cost": [0, 200]}}
    data = linear(section)
    data["parameters"] = {"state_costs.a.cost": 80.0}
    res = run_sensitivity(validate(data), tmp_path / "out", workers=1)
    mu = res.indices[res.indices["index"] == "mu_star"].set_index("parameter")["value"]
    assert mu.to_dict() == pytest.approx({"scale(state_costs.a.cost)": TENANTS * 80,
                                          "state_costs.b.cost": TENANTS * 200}, rel=1e-5)
    data["arms"] = [{"name": "baseline", "parameters": {"state_costs.a.cost": 5.0}}]
    with pytest.raises(HhsimError, match="is also set by arm 'baseline'"):
        validate(data)


@pytest.mark.slow  # SALib's delta bootstrap alone takes about 30 s at N = 64
def test_delta_ranks_the_parameters_on_the_linear_model(tmp_path):
    # Borgonovo's delta (whatever SALib version names it) with its bootstrap interval.
    section = {"method": "delta", "samples": 64, "outputs": ["mean:nhs_cost"], "oneway": False,
               "parameters": {"state_costs.a.cost": [0, 100], "state_costs.b.cost": [0, 400],
                              "state_costs.unused.cost": [0, 300]}}
    res = run_sensitivity(validate(linear(section)), tmp_path / "out", workers=1)
    d = res.indices[res.indices["index"] == "delta"].set_index("parameter")
    assert res.summary["outputs"]["mean:nhs_cost"]["ranking"][0] == "state_costs.b.cost"
    assert d.loc["state_costs.b.cost", "value"] > d.loc["state_costs.a.cost", "value"]
    assert d["conf"].notna().all()
    assert "state_costs.b.cost delta 0." in res.summary["outputs"]["mean:nhs_cost"]["text"]


def test_delta_with_too_few_samples_says_so(tmp_path, capfd):
    section = {"method": "delta", "samples": 16, "outputs": ["mean:nhs_cost"], "oneway": False,
               "parameters": {"state_costs.a.cost": [0, 100], "state_costs.b.cost": [0, 400]}}
    res = run_sensitivity(validate(linear(section)), tmp_path / "out", workers=1)
    assert res.summary["outputs"]["mean:nhs_cost"]["text"] == (
        "mean:nhs_cost: SALib could not compute the delta indices of state_costs.a.cost, state_costs.b.cost "
        "from N = 16 samples (Borgonovo's delta needs at least 10 samples in each of at least 2 bins of a "
        "parameter); use --samples 64 or more.")
    assert capfd.readouterr().err == ""  # SALib's own notices are not passed on


def test_same_seed_same_indices_other_seed_other_indices(tmp_path):
    section = {**SOBOL, "samples": 8, "oneway": False}
    first, again, other = (run_sensitivity(validate(linear(section, seed=seed)), tmp_path / name, workers=1)
                           for seed, name in ((3, "a"), (3, "b"), (4, "c")))
    pd.testing.assert_frame_equal(first.indices, again.indices, check_exact=True)
    assert not np.allclose(first.indices["value"], other.indices["value"])


def test_interrupted_sweep_resumes_to_the_same_results(tmp_path, monkeypatch, noisy_model):
    section = {"method": "morris", "samples": 2, "outputs": ["mean:nhs_cost", "mean:good_health_years"],
               "parameters": {"state_costs.a.cost": [0, 100], "chains.health.transitions.fall_ill.rate":
                              {"dist": "gamma", "mean": 1.0, "sd": 0.3}}}
    exp = validate(linear(section, model=noisy_model, replications=2))
    whole = run_sensitivity(exp, tmp_path / "whole", workers=1)
    assert len(whole.outcomes) == 2 * 11 and whole.summary["runs"] == 2 * 11

    real, calls = execution.simulate, []

    def crash_after_seven(spec):
        if len(calls) == 7:
            raise KeyboardInterrupt
        calls.append(spec.run_id)
        return real(spec)

    monkeypatch.setattr(execution, "simulate", crash_after_seven)
    with pytest.raises(KeyboardInterrupt):
        run_sensitivity(exp, tmp_path / "part", workers=1)
    monkeypatch.setattr(execution, "simulate", real)
    assert len(list((tmp_path / "part" / "runs").glob("*.parquet"))) == 7
    with pytest.raises(HhsimError, match="already holds files"):
        run_sensitivity(exp, tmp_path / "part", workers=1)
    with pytest.raises(HhsimError, match="different parameter points"):
        run_sensitivity(exp, tmp_path / "part", workers=1, resume=True, samples=3)
    resumed = run_sensitivity(exp, tmp_path / "part", workers=1, resume=True)
    pd.testing.assert_frame_equal(resumed.indices, whole.indices, check_exact=True)
    pd.testing.assert_frame_equal(resumed.outcomes, whole.outcomes, check_exact=True)


def test_common_random_numbers_across_points(tmp_path, noisy_model):
    exp = validate(linear({"parameters": {"state_costs.a.cost": [0, 1]}, "outputs": ["mean:qalys"]},
                          model=noisy_model, replications=2))
    res = run_points(compile_plan(exp), [{"state_costs.a.cost": 10.0}, {"state_costs.a.cost": 10.0},
                           {"state_costs.a.cost": 20.0}], tmp_path / "out", workers=1)
    r = res.records.set_index(["point", "replication"])
    assert r.loc[(0, 0), "nhs_cost"] == r.loc[(1, 0), "nhs_cost"] != r.loc[(0, 1), "nhs_cost"]
    # same illness paths at another cost: the well-state cost scales, nothing else moves
    assert r.loc[(2, 1), "use_a"] == r.loc[(0, 1), "use_a"]
    assert r.loc[(2, 1), "cost_a"] == pytest.approx(2 * r.loc[(0, 1), "cost_a"])


def test_incremental_outcomes_are_paired_by_replication():
    rec = pd.DataFrame({
        "point": [0, 0, 0, 0], "replication": [0, 0, 1, 1], "arm": ["base", "iv", "base", "iv"],
        "nhs_cost": [100.0, 80.0, 120.0, 90.0], "intervention_cost": [0.0, 10.0, 0.0, 20.0],
        "qalys": [5.0, 5.1, 6.0, 6.3], "deaths": [3.0, 2.0, 4.0, 4.0]})
    out = point_outcomes(rec, ["nhs_saving", "net_saving", "incremental_qalys", "nmb_20000", "roi",
                               "incremental:deaths", "mean:deaths"], "base").set_index(["arm", "output"])
    v = out["value"]
    assert v[("iv", "nhs_saving")] == 25 and v[("iv", "net_saving")] == 10
    assert v[("iv", "incremental_qalys")] == pytest.approx(0.2)
    assert v[("iv", "nmb_20000")] == pytest.approx(20000 * 0.2 - (-25 + 15))
    assert v[("iv", "roi")] == pytest.approx(25 / 15)
    assert v[("iv", "incremental:deaths")] == -0.5 and v[("base", "mean:deaths")] == 3.5
    assert out.loc[("iv", "net_saving"), "se"] == pytest.approx(np.std([10, 10], ddof=1) / np.sqrt(2))
    assert out.loc[("iv", "nhs_saving"), "se"] == pytest.approx(np.std([20, 30], ddof=1) / np.sqrt(2))
    assert ("base", "net_saving") not in out.index
    with pytest.raises(HhsimError, match="did you mean 'deaths'"):
        point_outcomes(rec, ["incremental:death"], "base")


def test_noise_warning_when_simulation_noise_rivals_the_spread():
    quiet = noise_check(np.array([1.0, 2.0, 3.0, 4.0]), np.full(4, 0.1), "net_saving")
    loud = noise_check(np.array([1.0, 2.0, 3.0, 4.0]), np.full(4, 1.0), "net_saving")
    assert quiet["warning"] is None and quiet["noise_share"] == pytest.approx(0.01 / (5 / 3))
    assert "60% of the output's variance" in loud["warning"] and "--replications" in loud["warning"]
    assert "not measured" in noise_check(np.arange(4.0), np.full(4, np.nan), "roi")["warning"]


@pytest.mark.parametrize(("section", "message"), [
    ({"parameters": {"state_costs.a.cots": [0, 1]}},
     "sensitivity.parameters.state_costs.a.cots: unknown parameter 'state_costs.a.cots' "
     "(fix: did you mean 'state_costs.a.cost'?)"),
    ({"parameters": {"state_costs.a.cost": {"dist": "normal", "mean": 10, "sd": 20}}},
     "sensitivity.parameters.state_costs.a.cost: its low value -51.8 is refused"),
    ({"parameters": {"state_costs.a.cost": {"dist": "beta", "mean": 2, "sd": 0.1}}},
     "sensitivity.parameters.state_costs.a.cost.mean: a beta mean must be between 0 and 1"),
    ({"parameters": {"x": {"dist": "dirichlet", "parameters": ["a", "b"], "alpha": [1, 1]}}},
     "cannot be sampled for sensitivity analysis"),
    ({"parameters": {"state_costs.a.cost": [0, 1]}, "outputs": ["net_savings"]},
     "sensitivity.outputs: unknown output 'net_savings' (fix: did you mean 'net_saving'?)"),
    ({"parameters": {"state_costs.a.cost": [0, 1]}, "outputs": ["net_saving"]},
     "the arm analysed is the baseline"),
    ({"parameters": {"state_costs.a.cost": [0, 1]}, "outputs": ["mean:qalys"], "arm": "other"},
     "sensitivity.arm: 'other' is not among the arms"),
    ({"parameters": {"state_costs.a.cost": [0, 1]}, "method": "sobl"}, "sensitivity.method"),
    ({"parameters": {"state_costs.a.cost": [0, 1]}, "samplse": 4}, "did you mean 'samples'?"),
    ({"parameters": {"state_costs.a.cost": [0, 1], "state_costs.b.cost": [0, 1]}, "method": "fast",
      "samples": 10}, "fast needs at least 65 samples"),
    ({"parameters": {}}, "sensitivity.parameters"),
    ({"parameters": {"state_costs.a.cost": [0, 1]}, "samples": 100},
     "sensitivity.samples: sobol needs a power of 2, got 100 (fix: give 64 or 128"),
])
def test_bad_sections_are_one_line_errors(section, message):
    data = linear({"outputs": ["mean:nhs_cost"], **section})
    with pytest.raises(HhsimError) as err:
        validate(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_parameter_set_by_an_arm_cannot_be_sampled():
    data = linear({"outputs": ["mean:nhs_cost"], "parameters": {"state_costs.a.cost": [0, 1]}})
    data["arms"] = [{"name": "baseline", "parameters": {"state_costs.a.cost": 5.0}}]
    with pytest.raises(HhsimError, match="is also set by arm 'baseline'"):
        validate(data)


def test_cli_runs_end_to_end_and_run_ignores_the_section(tmp_path, capsys):
    path = tmp_path / "exp.toml"
    path.write_text(f"""
[experiment]
name = "cli sensitivity"
model = "{LINEAR}"
months = 12
replications = 1

[population]
tenants = 5

[sensitivity]
method = "sobol"
samples = 64
outputs = ["mean:nhs_cost", "mean:qalys"]
parameters."state_costs.a.cost" = [0, 100]
parameters."state_costs.b.cost" = {{ dist = "gamma", mean = 100, sd = 20 }}
""")
    assert main(["validate", str(path)]) == 0
    assert "Sensitivity (sobol, N = 64) over 2 parameter(s)" in capsys.readouterr().out
    out = tmp_path / "gsa"
    code = main(["sensitivity", str(path), "--method", "morris", "--samples", "3", "--out", str(out),
                 "--workers", "2", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "Sensitivity analysis (morris, N = 3): 14 points" in printed
    assert "mean:qalys: does not vary across the samples" in printed
    assert (out / "plots" / "mean-nhs_cost-morris.png").exists()
    assert main(["sensitivity", str(path), "--out", str(out), "--quiet"]) == 2
    assert "already holds files" in capsys.readouterr().err
    res = run_experiment(path, tmp_path / "plain", workers=1)  # hhsim run ignores [sensitivity]
    assert len(res.records) == 1
