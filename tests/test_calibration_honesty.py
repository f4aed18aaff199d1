"""Issue 15: a calibration says when its estimate sits at a prior bound, when its fit table
cannot tell whether a target is covered, how far each target is (z), and runs at a trial
size; predictive draws extended in rounds are those of one run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from test_calibration import CALIBRATION, RATE, TARGET, write

from hhsim.analysis.precision import Precision
from hhsim.cli import main
from hhsim.core.distributions import parse_distribution
from hhsim.studies.calibration.fit import MIN_DRAWS, at_bound, bound_warning, fit_row
from hhsim.studies.calibration.outputs import summary_table
from hhsim.studies.calibration.problem import load_problem
from hhsim.studies.calibration.run import draw_rows, predictive, predictive_rounds

#: the prior [0.1, 0.4] stops short of the truth 0.6: the share sick after 12 months at
#: the bound is 1 - exp(-0.4) = 0.33 against the observed 0.45
NARROW = CALIBRATION.replace("[0.1, 1.5]", "[0.1, 0.4]")


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_fast_estimate_beyond_the_prior_is_flagged_at_its_bound_and_warned(tmp_path, capsys):
    cal = write(tmp_path, NARROW)
    out = tmp_path / "o"
    assert main(["calibrate", str(cal), "--fast", "--out", str(out), "--quiet", "--workers", "1",
                 "--predictive", str(MIN_DRAWS)]) == 0
    printed = capsys.readouterr().out
    summary = pd.read_csv(out / "summary.csv").set_index("parameter").loc[RATE]
    assert summary["at_bound"] == "high" and summary["prior_quantile"] > 0.99
    warning = next(line for line in lines(printed) if line.startswith("Warning: " + RATE))
    assert "at the high end of its prior" in warning and "widen the prior" in warning
    assert "cannot reach the target" in warning
    info = json.loads((out / "calibration.json").read_text())
    assert any(w.startswith(RATE) for w in info["warnings"])
    assert "widen the prior" in (out / "section.html").read_text()
    fit = pd.read_csv(out / "fit.csv", dtype={"covered": str}).iloc[0]
    assert fit["covered"] == "unknown" and "high bound" in fit["note"]
    # expected z at the bound: (0.451 - 0.330) / sqrt(0.03^2 + 0.33 x 0.67 / 400) = 3.1
    assert fit["z"] > 2
    assert "high bound" in printed


def test_an_estimate_inside_the_prior_is_not_at_a_bound():
    prior = parse_distribution([0.1, 1.5], "p")
    assert at_bound(prior, np.array([0.6]), np.array([1.0]))[0] == ""
    assert at_bound(prior, np.array([0.1 + 1.4 * 0.005]), np.array([1.0]))[0] == "low"
    # a posterior with 30% of its weight in the prior's top 1% piles up at the bound
    values = np.r_[np.full(7, 0.9), np.full(3, 1.499)]
    side, q, share = at_bound(prior, values, np.ones(10))
    assert (side, share) == ("high", pytest.approx(0.3)) and q < 0.99
    assert at_bound(prior, np.r_[np.full(19, 0.9), 1.499], np.ones(20))[0] == ""  # 5%: not piled up


def test_an_abc_posterior_piled_up_at_a_bound_is_flagged_in_the_summary():
    prior = parse_distribution([0.1, 1.5], "p")
    values = np.r_[np.full(7, 0.9), np.full(3, 1.499)]  # 30% of the weight in the top 1%
    posterior = pd.DataFrame({"generation": 1, "weight": 1.0, RATE: values})
    row = summary_table([RATE], [prior], posterior).iloc[0]
    assert row["at_bound"] == "high" and row["edge_share"] == pytest.approx(0.3)
    text = bound_warning(RATE, prior, row["posterior_median"], "high", row["prior_quantile"],
                         row["edge_share"], fast=False)
    assert "posterior piles up at the high end" in text and "30% of the weight" in text


def draws(mean: float, sd: float, noise: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` simulated values and simulated observations (values plus observation noise)."""
    rng = np.random.default_rng(seed)
    sim = rng.normal(mean, sd, n)
    return sim, sim + rng.normal(0.0, noise, n)


def test_a_target_the_model_misses_shows_the_miss_never_covered_true():
    # simulated 0.33 (sd 0.02 across draws) against an observed 0.45 known to +/- 0.01:
    # z = 0.12 / sqrt(0.01^2 + 0.02^2) = 5.4
    sim, obs = draws(0.33, 0.02, 0.01, 60, seed=4)
    row = fit_row(0.45, 0.01, 0, sim, obs)
    assert row["covered"] == "False" and row["z"] > 2
    assert row["z"] == pytest.approx(0.12 / math.sqrt(0.01**2 + 0.02**2), rel=0.25)
    few = fit_row(0.45, 0.01, 0, sim[:10], obs[:10])
    assert few["covered"] == "unknown" and "only 10 predictive draws" in few["note"] and few["z"] > 2
    bound = fit_row(0.45, 0.01, 0, sim, obs, "p is at its prior's high bound")
    assert bound["covered"] == "unknown" and "closest fit the prior allows" in bound["note"]


def test_covered_is_decided_only_beyond_the_monte_carlo_error_of_the_interval_ends():
    sim, obs = draws(0.33, 0.02, 0.01, 200, seed=5)
    middle = fit_row(0.33, 0.01, 0, sim, obs)
    assert middle["covered"] == "True" and abs(middle["z"]) < 2
    # exactly at the interval's upper end: the end's own error decides nothing
    end = fit_row(middle["predictive_high95"], 0.01, 0, sim, obs)
    assert end["covered"] == "unknown" and "high end" in end["note"]
    assert 0 < end["predictive_high95_mcse"] < end["predictive_high95"] - end["predictive_low95"]
    # 0 of 5 simulated as a probability of 0 in every draw: covered, z 0
    zero = fit_row(0.0, 0.0, 5, np.zeros(30), np.zeros(30))
    assert (zero["covered"], zero["z"]) == ("True", 0.0)


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """A small --fast calibration with every size option."""
    folder = tmp_path_factory.mktemp("trial")
    cal = write(folder, target=TARGET.replace("month = 12", "month = 6"))
    out = folder / "o"
    args = ["--tenants", "150", "--months", "6", "--replications", "2", "--evaluations", "6",
            "--predictive", "5"]
    code = main(["calibrate", str(cal), "--fast", "--out", str(out), "--quiet", "--workers", "1", *args])
    return cal, out, code


def test_size_options_change_what_is_run_and_are_recorded(trial, capsys):
    cal, out, code = trial
    assert code == 0
    info = json.loads((out / "calibration.json").read_text())
    assert info["overrides"] == {"tenants": 150, "months": 6, "replications": 2, "evaluations": 6,
                                 "predictive": 5}
    assert (info["settings"]["replications"], info["settings"]["evaluations"]) == (2, 6)
    assert len(pd.read_csv(out / "trace.csv")) <= 6
    assert pd.read_csv(out / "fit.csv")["draws"].iloc[0] == 5
    sized = load_problem(cal, info["overrides"])
    exp = next(iter(sized.experiments.values()))
    assert (exp.population.tenants, exp.experiment.months, exp.experiment.replications) == (150, 6, 2)
    assert sized.digest() == info["digest"] != load_problem(cal).digest()


def test_too_few_predictive_draws_are_flagged(trial):
    _, out, _ = trial
    fit = pd.read_csv(out / "fit.csv", dtype={"covered": str}).iloc[0]
    assert fit["covered"] == "unknown" and "only 5 predictive draws" in fit["note"]
    warnings = json.loads((out / "calibration.json").read_text())["warnings"]
    assert any("rest on 5 draws, too few" in w for w in warnings)


@pytest.mark.parametrize(("options", "where"), [
    (["--tenants", "100"], "--tenants: cannot be used with stock.toml"),
    (["--max-predictive", "50"], "--max-predictive: has no effect without --precision"),
    (["--precision", "5%%"], "--precision"),
])
def test_bad_size_options_are_refused_in_one_line(tmp_path, capsys, options, where):
    from pathlib import Path

    stock = Path(__file__).parents[1] / "experiments" / "example-stock.csv"
    cal = write(tmp_path)
    (tmp_path / "stock.toml").write_text(f'[experiment]\nname = "own"\nmonths = 12\n\n[population]\n'
                                         f'stock = "{stock}"\n')
    (tmp_path / "targets.toml").write_text(TARGET.replace("exp.toml", "stock.toml"))
    assert main(["calibrate", str(cal), "--fast", "--out", str(tmp_path / "o"), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hhsim: error: " + where) and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_predictive_draws_extended_in_rounds_are_those_of_one_run(tmp_path):
    problem = load_problem(write(tmp_path), {"tenants": 100})
    particles = pd.DataFrame({RATE: [0.3, 0.6, 1.2]})
    weights = np.array([0.2, 0.5, 0.3])

    def draws_until(n: int) -> pd.DataFrame:
        return particles.iloc[draw_rows(weights, 3, n)].reset_index(drop=True)

    # an unreachable precision: 5 draws, then a round up to the maximum of 12
    values, observations, info = predictive_rounds(problem, draws_until, 9, 5,
                                                   Precision(relative=1e-6, max_replications=12), workers=1)
    assert info["rounds"] == [5, 12] and "stopped at 12 predictive draws (the maximum)" in info["stop"]
    once = predictive(problem, draws_until(12), 9, workers=1)
    pd.testing.assert_frame_equal(values, once[0])
    pd.testing.assert_frame_equal(observations, once[1])
    assert values["share_sick"].nunique() > 3  # the draws differ (seeds and parameter rows)


def test_a_normal_targets_interval_integrates_the_noise_out():
    """Simulated values N(0.33, 0.02) with observation sd 0.01: the predictive distribution
    is N(0.33, 0.0224), whose 2.5% and 97.5% points the mixture interval finds within its
    own (bootstrap) Monte-Carlo error, with ends surer than the order statistics of as many
    noisy observations."""
    from hhsim.studies.calibration.fit import mixture_interval, quantile_mcse

    sim, obs = draws(0.33, 0.02, 0.01, 100, seed=6)
    lo, hi, e_lo, e_hi = mixture_interval(sim, 0.01)
    spread = math.sqrt(0.02**2 + 0.01**2)
    # the draws' own mean and sd differ from 0.33 and 0.02 by their sampling error, which
    # the bootstrap errors measure
    assert abs(lo - (0.33 - 1.959964 * spread)) < 4 * e_lo
    assert abs(hi - (0.33 + 1.959964 * spread)) < 4 * e_hi
    assert e_lo < quantile_mcse(obs, 0.025) and e_hi < quantile_mcse(obs, 0.975)
    row = fit_row(0.33 + 1.5 * spread, 0.01, 0, sim, obs)
    assert row["covered"] == "True" and row["predictive_high95"] == hi
