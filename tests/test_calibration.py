"""Calibration: recovery of known parameters from synthetic targets (ABC-SMC and --fast),
reproducibility, continuation of an interrupted calibration, and one-line errors."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import compile_plan
from hhsim.studies.calibration.abc import posterior_table, run_abc
from hhsim.studies.calibration.outputs import load_posterior
from hhsim.studies.calibration.problem import load_problem
from hhsim.studies.calibration.run import calibrate

MODEL = Path(__file__).parent / "models" / "two_state_monthly.toml"
RATE = "chains.health.transitions.fall_ill.rate"
TRUTH = 0.6
#: share sick after 12 months at the true rate (closed form: 1 - exp(-rate))
SHARE = 1 - math.exp(-TRUTH)
PRIOR_SD = 1.4 / math.sqrt(12)  # uniform on [0.1, 1.5]

EXPERIMENT = f"""
[experiment]
name = "two-state"
model = "{MODEL}"
months = 12
seed = 5

[population]
tenants = 400
"""

TARGET = f"""
[[target]]
name = "share_sick"
experiment = "exp.toml"
estimator = "monthly_share"
options = {{ column = "health:sick", month = 12 }}
observed = {SHARE}
sd = 0.03
source = "synthetic: the model's closed form at rate {TRUTH}"
"""

CALIBRATION = """
[calibration]
name = "synthetic"
targets = ["targets.toml"]
seed = 11
particles = 40
generations = 3
predictive = 10
evaluations = 30

[parameters]
"chains.health.transitions.fall_ill.rate" = [0.1, 1.5]
"""


def write(folder: Path, calibration: str = CALIBRATION, target: str = TARGET) -> Path:
    (folder / "exp.toml").write_text(EXPERIMENT)
    (folder / "targets.toml").write_text(target)
    (folder / "cal.toml").write_text(calibration)
    return folder / "cal.toml"


@pytest.mark.slow
def test_abc_posterior_contracts_around_the_truth_is_reproducible_and_continues(tmp_path):
    cal = write(tmp_path)
    out = calibrate(cal, tmp_path / "a", sampler="single")
    summary = pd.read_csv(out / "summary.csv").set_index("parameter").loc[RATE]
    assert summary["posterior_sd"] < 0.5 * PRIOR_SD
    assert abs(summary["posterior_median"] - TRUTH) < 2 * summary["posterior_sd"]
    assert pd.isna(summary["at_bound"])  # the truth is well inside the prior
    # 10 predictive draws: too few for the 95% interval's ends; z measures the fit instead
    fit = pd.read_csv(out / "fit.csv", dtype={"covered": str})
    assert (fit["covered"] == "unknown").all() and fit["note"].str.contains("only 10 predictive").all()
    assert (fit["z"].abs() < 2).all()
    diag = pd.read_csv(out / "diagnostics.csv")
    assert list(diag["generation"]) == [0, 1, 2]
    assert (diag["epsilon"].diff().dropna() < 0).all()
    for stem in ("diagnostics", "marginals"):
        assert (out / "plots" / f"{stem}.png").is_file()
    draws = load_posterior(out, 500, seed=1)
    assert list(draws.columns) == [RATE] and len(draws) == 500
    assert abs(draws[RATE].mean() - summary["posterior_mean"]) < 3 * summary["posterior_sd"] / math.sqrt(40)

    # The same seed with the single-core sampler: the same particles. Stopped after two
    # generations, then run again: it continues from the database to the third.
    posterior = pd.read_parquet(out / "posterior.parquet")
    problem = load_problem(cal)
    history = run_abc(problem, tmp_path / "b", sampler_kind="single", generations=2)
    assert history.max_t == 1
    again = posterior_table(problem, history)
    pd.testing.assert_frame_equal(again, posterior[posterior["generation"] < 2].reset_index(drop=True))
    history = run_abc(problem, tmp_path / "b", sampler_kind="single", generations=3)
    assert history.max_t == 2
    continued = posterior_table(problem, history)
    pd.testing.assert_frame_equal(continued[continued["generation"] < 2], again)
    assert (continued["generation"] == 2).sum() == 40


@pytest.mark.slow
def test_fast_recovers_the_truth(tmp_path):
    out = calibrate(write(tmp_path), tmp_path / "f", fast=True)
    estimate = pd.read_parquet(out / "posterior.parquet")[RATE].iloc[0]
    # 400 tenants: the simulated share's sd is about 0.025, i.e. about 0.045 in the rate
    assert abs(estimate - TRUTH) < 0.12
    assert pd.isna(pd.read_csv(out / "summary.csv")["at_bound"].iloc[0])
    fit = pd.read_csv(out / "fit.csv", dtype={"covered": str})
    assert (fit["covered"] == "unknown").all() and (fit["z"].abs() < 2).all()  # 10 draws: see z
    assert "share_sick" in (out / "section.html").read_text()  # the fit table for the report


@pytest.mark.parametrize(
    ("calibration", "target", "message"),
    [
        (CALIBRATION.replace("targets.toml", "nothing.toml"), TARGET, "target file not found"),
        (CALIBRATION, TARGET.replace("monthly_share", "monthly_shares"), "did you mean 'monthly_share'"),
        (CALIBRATION, TARGET.replace("sd = 0.03", "sd = -1"), "sd: must be above 0"),
        (
            CALIBRATION,
            TARGET.replace("observed", "likelihood = 'binomial'\ncount = 6\nn = 5\n#")
            .replace("sd = 0.03", "")
            .replace("monthly_share", "stays_share")
            .replace('column = "health:sick", month = 12', 'column = "readmitted_30d"'),
            "count 6 out of n 5",
        ),
        (CALIBRATION.replace("fall_ill.rate", "fall_ill.rat"), TARGET, "did you mean"),
        (CALIBRATION.replace("[0.1, 1.5]", "[0.1, -1.5]"), TARGET, "low (0.1) is not below high"),
        (CALIBRATION.replace("particles = 40", "particles = 0"), TARGET, "calibration.particles"),
        (CALIBRATION + '[fixed]\n"interventions.nope.x" = 1\n', TARGET, "names an intervention none"),
        (CALIBRATION.replace("[parameters]", "[fixed]\n'chains.health.transitions.fall_ill.rate' = 0.5\n"
                             "[parameters]"), TARGET, "is also in [fixed]"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, calibration, target, message):
    cal = write(tmp_path, calibration, target)
    with pytest.raises(HhsimError, match=re.escape(message)) as err:
        load_problem(cal)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_cli_reports_a_bad_file_in_one_line(tmp_path):
    cal = write(tmp_path, target=TARGET.replace("sd = 0.03", "sd = 0"))
    done = subprocess.run(
        [sys.executable, "-m", "hhsim", "calibrate", str(cal), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "sd" in done.stderr


def test_before_after_tallies_cover_the_clients_only():
    """Clients were referred after community nursing in the 3 months before referral, so each
    one followed up has at least one contact in the 6 months before admission."""
    from hhsim.batch.design import runs
    from hhsim.batch.execution import simulate
    from hhsim.experiment.plan import load_experiment

    path = Path(__file__).parents[1] / "calibration" / "experiments" / "personalised-support-pilot.toml"
    exp = compile_plan(load_experiment(path), replications=1, tenants=1500).experiment
    record = next(simulate(s) for s in runs(compile_plan(exp)) if s.arm == "support").record
    clients = record["iv_support_ba_clients"]
    assert 0 < clients <= record["iv_support_admitted"]
    assert record["iv_support_ba_before_community_nursing"] >= clients


def test_life_expectancy_and_attributable_cost_estimators():
    import numpy as np

    from hhsim.batch.execution import RunResult
    from hhsim.studies.calibration.estimators import ESTIMATORS, check_options

    m = 0.02  # deaths per person-year at every adult age: life expectancy at 16 is 1/m = 50 years
    ages = np.arange(16, 101)
    table = pd.concat([pd.DataFrame({"sex": "male", "decile": d, "age": ages, "person_years": 500.0,
                                     "good_health_years": 50.0 * d, "deaths": 500.0 * m}) for d in (1, 10)])
    runs = [RunResult(f"base__r{r}", {"arm": "base", "replication": r, "nhs_cost_undisc": 1000.0 + r,
                                      "hazard_homes": 10.0, "steps": 24}, {"lifetable": table})
            for r in range(2)]
    runs += [RunResult(f"off__r{r}", {"arm": "off", "replication": r, "nhs_cost_undisc": 800.0 + r,
                                      "hazard_homes": 10.0, "steps": 24}, {}) for r in range(2)]
    le = ESTIMATORS["life_expectancy"].function
    assert le(runs, "base", "base", {"measure": "le_16", "decile": 1}) == pytest.approx(50.0)
    assert le(runs, "base", "base", {"measure": "hle_16", "decile": 10}) == pytest.approx(50.0)  # all good
    assert le(runs, "base", "base", {"measure": "hle_gap"}) == pytest.approx(0.995 * 50 * 0.9)
    per_home = ESTIMATORS["attributable_per_home"].function
    # (1000 - 800) over 2 years and 10 homes, for 3 homes
    assert per_home(runs, "off", "base", {"column": "nhs_cost_undisc", "homes": 3}) == pytest.approx(30.0)
    for options, message in (({"measure": "le_80"}, "le_80"), ({"measure": "le_16", "sex": "men"}, "male"),
                             ({"measure": "le_16", "decile": 11}, "1 to 10")):
        with pytest.raises(HhsimError, match=message):
            check_options("life_expectancy", options, "t")


def test_a_parameter_an_arm_sets_cannot_be_calibrated(tmp_path):
    cal = write(tmp_path)
    arm = f'\n[[arms]]\nname = "baseline"\nparameters = {{ "{RATE}" = 0.3 }}\n'
    (tmp_path / "exp.toml").write_text(EXPERIMENT + arm)
    with pytest.raises(HhsimError, match="is also set by arm 'baseline'") as err:
        load_problem(cal)
    assert "\n" not in str(err.value)


def test_no_simulated_value_never_matches_a_binomial_target(tmp_path):
    import numpy as np

    binomial = TARGET.replace("observed", "likelihood = 'binomial'\ncount = 0\nn = 5\n#")
    binomial = binomial.replace("sd = 0.03", "").replace("monthly_share", "stays_share")
    binomial = binomial.replace('column = "health:sick", month = 12', 'column = "readmitted_30d"')
    problem = load_problem(write(tmp_path, target=binomial))
    name = problem.targets[0].name
    sim = problem.observe({name: float("nan")}, np.random.default_rng(0))
    assert problem.distance(sim, problem.observed) == float("inf")


def test_a_monthly_share_of_a_chain_state_is_over_the_people_of_the_chains_ages():
    """With children in the population, an adult chain's prevalence is over adults and a
    child chain's over children; other columns stay over everyone alive."""
    import pandas as pd

    from hhsim.batch.execution import RunResult
    from hhsim.studies.calibration.estimators import monthly_share

    monthly = pd.DataFrame({"step": [1], "alive": [100.0], "health:good": [60.0], "health:fair": [15.0],
                            "child_asthma:none": [20.0], "child_asthma:asthma": [5.0],
                            "hazard:damp:social_rented": [0.07], "deaths": [2.0]})
    runs = [RunResult("baseline__r0000", {"arm": "baseline", "replication": 0}, {"monthly": monthly})]
    share = {c: monthly_share(runs, "baseline", "baseline", {"column": c, "month": 1})
             for c in ("health:fair", "child_asthma:asthma", "deaths")}
    assert share == {"health:fair": 15 / 75, "child_asthma:asthma": 5 / 25, "deaths": 2 / 100}


def test_odds_and_rate_ratios_compare_an_arm_with_the_baseline_pooled_over_replications():
    """A trial's estimators: the odds ratio of being in fair or bad health at follow-up
    (shares summed, pooled over replications), and a rate ratio of record counts per
    person-year (sums over sums); a share of 0 or a baseline rate of 0 is a one-line error."""
    import pandas as pd

    from hhsim.batch.execution import RunResult
    from hhsim.studies.calibration.estimators import ESTIMATORS, check_options

    def run(arm: str, r: int, fair: float, bad: float, ae: float, years: float) -> RunResult:
        monthly = pd.DataFrame({"step": [1, 2], "alive": [100.0, 100.0],
                                "health:good": [100 - fair - bad] * 2, "health:fair": [fair] * 2,
                                "health:bad": [bad] * 2})
        record = {"arm": arm, "replication": r, "use_ae": ae, "life_years_undisc": years}
        return RunResult(f"{arm}__r{r}", record, {"monthly": monthly})

    runs = [run("control", 0, 20, 10, 40, 100), run("control", 1, 24, 6, 50, 100),
            run("warm", 0, 12, 6, 30, 100), run("warm", 1, 14, 4, 20, 110)]
    odds = ESTIMATORS["odds_ratio"].function(runs, "warm", "control",
                                             {"column": ["health:fair", "health:bad"], "month": 2})
    assert odds == pytest.approx((0.18 / 0.82) / (0.30 / 0.70))
    rate = ESTIMATORS["rate_ratio"].function(runs, "warm", "control", {"column": "use_ae"})
    assert rate == pytest.approx((50 / 210) / (90 / 200))
    nobody_fair = [run("control", 0, 0, 0, 1, 1), run("warm", 0, 0, 0, 1, 1)]
    with pytest.raises(HhsimError, match="strictly between 0 and 1"):
        ESTIMATORS["odds_ratio"].function(nobody_fair, "warm", "control", {"column": "health:fair"})
    with pytest.raises(HhsimError, match="rate of use_ae is 0"):
        ESTIMATORS["rate_ratio"].function([run("control", 0, 1, 1, 0, 1), run("warm", 0, 1, 1, 2, 1)],
                                          "warm", "control", {"column": "use_ae"})
    for options, message in (({"column": []}, "must name"), ({"column": "use_ae", "per": 3}, "must name")):
        with pytest.raises(HhsimError, match=message):
            check_options("rate_ratio", options, "t")


@pytest.mark.slow
def test_stopped_early_with_generations_says_so_and_continues(tmp_path):
    """--generations 1 (of the file's 3) stops after one generation, and the results say so;
    the same command without it continues from the database to all three."""
    import json

    from hhsim.cli import main

    cal, out = write(tmp_path), tmp_path / "o"
    args = ["calibrate", str(cal), "--out", str(out), "--single-core", "--quiet", "--predictive", "2"]
    assert main([*args, "--generations", "1"]) == 0
    info = json.loads((out / "calibration.json").read_text())
    assert info["generations_run"] == 1
    assert any(w.startswith("stopped after 1 of the file's 3 generations") for w in info["warnings"])
    assert main(args) == 0
    info = json.loads((out / "calibration.json").read_text())
    assert info["generations_run"] == 3 and not any("stopped after" in w for w in info["warnings"])
    assert sorted(set(pd.read_parquet(out / "posterior.parquet")["generation"])) == [0, 1, 2]


@pytest.mark.parametrize(("options", "says"), [(["--generations", "4"], "more than the file's 3"),
                                               (["--generations", "1", "--fast"], "no effect with --fast")])
def test_generations_beyond_the_file_or_with_fast_is_one_line(tmp_path, capsys, options, says):
    from hhsim.cli import main

    assert main(["calibrate", str(write(tmp_path)), "--out", str(tmp_path / "o"), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hhsim: error: --generations") and says in err
    assert len(err.strip().splitlines()) == 1
