"""Probabilistic sensitivity analysis: the value of information against closed forms, the
acceptability curve and frontier, reproducible and resumable runs, posterior draws, and
one-line errors for bad [psa] sections.

Closed forms: if the incremental net benefit of an arm over the baseline is X ~ N(mu, s^2),
EVPI = E[max(0, X)] - max(0, mu) = s phi(mu/s) + mu Phi(mu/s) - max(0, mu). If
X = mu + a (x1 - m1) + b (x2 - m2) with independent normal x1, x2, learning x1 leaves
E[X | x1] ~ N(mu, a^2 sd1^2), so EVPPI(x1) is the same formula with s = |a| sd1.

Monte-Carlo error: EVPI's bootstrap interval is checked for coverage over many independent
PSAs (a binomial count, tolerance from its own spread), and its standard error against the
spread of the estimates across those PSAs.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hhsim.cli import main
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import validate
from hhsim.studies.psa.analysis import acceptability, evpi, evppi, evppi_above_evpi
from hhsim.studies.psa.run import run_psa

from conftest import MODELS


def expected_max0(mu: float, s: float) -> float:
    """E[max(0, X)] - max(0, mu) for X ~ N(mu, s^2)."""
    z = mu / s
    return s * stats.norm.pdf(z) + mu * stats.norm.cdf(z) - max(0.0, mu)


def synthetic(n: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draws of two arms: the treatment's incremental QALYs and cost depend linearly on x1, x2."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    dq = 0.5 + 0.2 * x1  # QALYs gained
    dc = 9_000 + 2_000 * x2  # £
    draws = pd.concat([
        pd.DataFrame({"arm": "base", "point": range(n), "cost": 1e6, "qalys": 100.0, "population": 1000.0}),
        pd.DataFrame({"arm": "treat", "point": range(n), "cost": 1e6 + dc, "qalys": 100.0 + dq,
                      "population": 1000.0})], ignore_index=True)
    return draws, pd.DataFrame({"point": range(n), "x1": x1, "x2": x2})


def test_evpi_and_evppi_match_their_closed_forms():
    n = 4000
    draws, params = synthetic(n)
    lam = 20_000.0  # INB = 10,000 + 4,000 x1 - 2,000 x2 - 9,000 = 1,000 + ...
    mu, a, b = lam * 0.5 - 9_000, lam * 0.2, -2_000.0
    ev = evpi(draws, ["base", "treat"], [lam]).iloc[0]
    s_all = np.hypot(a, b)
    # MC error of a mean of max(0, X) - one draw's sd over sqrt(n): a tolerance of 4 SE.
    se = np.sqrt(np.var(np.maximum(0, mu + s_all * np.random.default_rng(0).normal(size=n))) / n)
    assert ev["evpi"] == pytest.approx(expected_max0(mu, s_all), abs=4 * se + 0.02 * expected_max0(mu, s_all))
    assert ev["evpi_per_person"] == pytest.approx(ev["evpi"] / 1000)
    rows = evppi(draws, params, ["base", "treat"], "base", {"x1": ["x1"], "x2": ["x2"], "both": ["x1", "x2"]},
                 [lam]).set_index("group")
    part = rows["evppi"]
    for group, s in (("x1", abs(a)), ("x2", abs(b)), ("both", s_all)):
        truth = expected_max0(mu, s)
        assert part[group] == pytest.approx(truth, rel=0.1, abs=4 * se), group
        # its 95% interval holds the truth, and is not wide open
        assert rows.loc[group, "evppi_low"] <= truth <= rows.loc[group, "evppi_high"], group
        assert 0 < rows.loc[group, "evppi_se"] < 0.2 * part[group] and rows.loc[group, "distinguishable"]
    assert part["x2"] < part["x1"] < part["both"] <= ev["evpi"] * 1.05
    assert 0 < ev["evpi_low"] <= expected_max0(mu, s_all) <= ev["evpi_high"]


def dominated(n: int, seed: int = 1) -> pd.DataFrame:
    """Two arms: 'worse' costs more and gains less than 'base' in every draw (large totals, so
    the old E[max] - max E difference left rounding noise of about 1e-10)."""
    rng = np.random.default_rng(seed)
    cost, qalys = 1e6 + rng.normal(0, 5e4, n), 100 + rng.normal(0, 3, n)
    return pd.concat([
        pd.DataFrame({"arm": "base", "point": range(n), "cost": cost, "qalys": qalys, "population": 1000.0}),
        pd.DataFrame({"arm": "worse", "point": range(n), "cost": cost + rng.uniform(1, 500, n),
                      "qalys": qalys - rng.uniform(0.001, 0.1, n), "population": 1000.0})], ignore_index=True)


def test_evpi_is_exactly_zero_when_one_arm_is_best_in_every_draw():
    draws, thresholds = dominated(200), np.arange(0, 100_001, 2_500.0)
    ev = evpi(draws, ["worse", "base"], thresholds)
    for column in ("evpi", "evpi_se", "evpi_low", "evpi_high", "evpi_per_person"):
        assert (ev[column] == 0).all(), column
    assert not ev["distinguishable"].any()


@pytest.mark.slow
def test_evpi_interval_covers_the_closed_form_and_its_se_matches_the_spread_across_psas():
    lam, n, psas = 20_000.0, 100, 200
    mu, s = lam * 0.5 - 9_000, np.hypot(lam * 0.2, 2_000.0)
    truth = expected_max0(mu, s)
    rows = pd.DataFrame([evpi(synthetic(n, seed)[0], ["base", "treat"], [lam], seed=seed).iloc[0]
                         for seed in range(psas)])
    hits = int(((rows["evpi_low"] <= truth) & (truth <= rows["evpi_high"])).sum())
    # 95% intervals: the count of hits is binomial(psas, 0.95); fail only below its 0.1% quantile.
    assert hits >= stats.binom.ppf(0.001, psas, 0.95), hits
    # The bootstrap se estimates the sd of the estimate across PSAs; that sd, from 200 PSAs, has a
    # relative standard error of about 1/sqrt(2 x 199) = 5%: allow 4 of them.
    spread = rows["evpi"].std(ddof=1)
    assert rows["evpi_se"].mean() == pytest.approx(spread, rel=4 / np.sqrt(2 * (psas - 1)))
    assert (rows["evpi_low"] >= 0).all()


def test_evppi_above_evpi_beyond_their_error_is_flagged():
    ev = pd.DataFrame({"threshold": [20_000.0], "evpi": [100.0], "evpi_se": [10.0], "evpi_per_person": [0.1]})

    def part(value: float) -> pd.DataFrame:
        return pd.DataFrame({"group": ["g"], "threshold": [20_000.0], "evppi": [value], "evppi_se": [10.0],
                             "evppi_per_person": [value / 1000]})

    assert evppi_above_evpi(ev, part(120.0)) == []  # 20 above, within 1.96 x sqrt(200) = 27.7
    assert "exceeds EVPI" in evppi_above_evpi(ev, part(130.0))[0]


def test_evppi_explains_too_few_draws_and_a_failed_regression(monkeypatch):
    import hhsim.studies.psa.analysis as analysis

    draws, params = synthetic(60)
    rows = evppi(draws, params, ["base", "treat"], "base", {"one": ["x1"], "two": ["x1", "x2"]},
                 [20_000.0]).set_index("group")
    assert rows.loc["one", "note"] == "" and np.isfinite(rows.loc["one", "evppi"])
    assert rows.loc["two", "note"].startswith("not computed: its additive regression needs at least 80 draws")
    assert np.isnan(rows.loc["two", "evppi"])

    def fail(y, x):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(analysis, "_gam_fit", fail)
    row = evppi(draws, params, ["base", "treat"], "base", {"one": ["x1"]}, [20_000.0]).iloc[0]
    assert row["note"] == "not computed: the additive regression failed (Singular matrix)"


def test_acceptability_curve_and_frontier():
    draws, _ = synthetic(2000)
    table = acceptability(draws, ["base", "treat"], [0.0, 18_000.0, 40_000.0]).set_index(["threshold", "arm"])
    assert table.loc[(0.0, "base"), "probability"] == 1.0  # costs more, nothing counts QALYs
    for lam in (0.0, 18_000.0, 40_000.0):
        assert table.loc[(lam, "base"), "probability"] + table.loc[(lam, "treat"), "probability"] == 1.0
        mu = lam * 0.5 - 9_000
        s = np.hypot(lam * 0.2, 2_000)
        p = stats.norm.cdf(mu / s)  # P(INB > 0)
        tolerance = 4 * np.sqrt(p * (1 - p) / 2000) + 1e-9  # 4 binomial standard errors
        assert table.loc[(lam, "treat"), "probability"] == pytest.approx(p, abs=tolerance)
        assert table.loc[(lam, "treat"), "on_frontier"] == (mu > 0)
        assert table.loc[(lam, "base"), "on_frontier"] == (mu <= 0)


# -- end to end on a tiny model -----------------------------------------------------------------
NOISY = """
[chains.health.transitions.fall_ill]
from = "well"
to = "ill"
rate = { value = 1.0, unit = "per person-year", source = "test value", status = "A" }
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "noisy.toml"
    path.write_text((MODELS / "linear_additive.toml").read_text() + NOISY)
    return str(path)


def tiny(model: str, psa: dict, **experiment) -> dict:
    return {"experiment": {"name": "tiny", "model": model, "months": 12, "replications": 1, "seed": 3,
                           **experiment},
            "population": {"tenants": 40},
            "arms": [{"name": "baseline"}, {"name": "cheaper", "parameters": {"state_costs.b.cost": 50}}],
            "psa": psa}


PSA = {"draws": 6, "parameters": {"state_costs.a.cost": {"dist": "gamma", "mean": 100, "sd": 20},
                                  "state_costs.unused.cost": [0, 200]},
       "groups": {"unused": ["state_costs.unused.cost"]}}


def test_a_psa_runs_end_to_end_and_is_reproducible(model, tmp_path):
    first = run_psa(validate(tiny(model, PSA)), tmp_path / "a", workers=1)
    again = run_psa(validate(tiny(model, PSA)), tmp_path / "b", workers=1)
    pd.testing.assert_frame_equal(first.draws, again.draws)
    pd.testing.assert_frame_equal(first.parameters, again.parameters)
    assert first.parameters["state_costs.unused.cost"].between(0, 200).all()
    assert first.parameters["state_costs.a.cost"].nunique() == 6
    # Cost a is paid in both arms: each draw's difference between the arms is the same.
    inc = pd.read_parquet(first.out / "incremental.parquet")
    assert inc["incremental_cost"].nunique() > 0
    for name in ("ceac.csv", "evpi.csv", "evppi.csv", "psa.json", "section.html", "plots/ceac.png",
                 "plots/ce-plane.svg", "plots/evpi.png"):
        assert (first.out / name).exists(), name
    summary = json.loads((first.out / "psa.json").read_text())
    assert summary["evppi_findings"] == [  # 6 draws are too few for an EVPPI
        "unused: not computed: its additive regression needs at least 40 draws for 1 parameter (4 spline "
        "coefficients each, 10 draws per coefficient); 6 given."]
    # 'cheaper' costs less for the same QALYs (common random numbers) in every draw
    assert (first.evpi[["evpi", "evpi_se", "evpi_low", "evpi_high"]] == 0).all().all()
    assert all("EVPI is £0" in line for line in summary["findings"])
    assert {d["threshold"] for d in summary["decisions"]} == {20000.0, 30000.0}
    assert main(["report", str(first.out)]) == 2  # a sweep is reported inside its run's folder
    other = run_psa(validate(tiny(model, PSA, seed=4)), tmp_path / "c", workers=1)
    assert not other.parameters.equals(first.parameters)


def test_an_interrupted_psa_resumes(model, tmp_path, monkeypatch):
    import hhsim.batch.execution as execution

    original, calls = execution.simulate, {"n": 0}

    def flaky(spec):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(spec)

    monkeypatch.setattr(execution, "simulate", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_psa(validate(tiny(model, PSA)), tmp_path / "out", workers=1)
    monkeypatch.setattr(execution, "simulate", original)
    resumed = run_psa(validate(tiny(model, PSA)), tmp_path / "out", workers=1, resume=True)
    whole = run_psa(validate(tiny(model, PSA)), tmp_path / "whole", workers=1)
    pd.testing.assert_frame_equal(resumed.draws, whole.draws)


def test_draws_can_come_from_a_weighted_posterior(model, tmp_path):
    post = tmp_path / "posterior.parquet"
    pd.DataFrame({"state_costs.c.cost": [10.0, 500.0, 900.0], "weight": [0.0, 1.0, 0.0]}).to_parquet(post)
    res = run_psa(validate(tiny(model, {"draws": 4})), tmp_path / "out", posterior=post, workers=1)
    assert (res.parameters["state_costs.c.cost"] == 500.0).all()
    with pytest.raises(HhsimError, match=r"draws .* twice"):
        run_psa(validate(tiny(model, {"draws": 4, "parameters": {"state_costs.c.cost": [0, 1]}})),
                tmp_path / "x", posterior=post, workers=1)


def test_the_cli_runs_a_psa(model, tmp_path, capsys):
    path = tmp_path / "exp.toml"
    path.write_text(f"""
[experiment]
name = "cli"
model = "{model}"
months = 12
replications = 1
[population]
tenants = 30
[[arms]]
name = "baseline"
[[arms]]
name = "cheaper"
parameters = {{ "state_costs.b.cost" = 50 }}
[psa]
draws = 3
parameters = {{ "state_costs.a.cost" = [50, 150] }}
""")
    assert main(["psa", str(path), "--out", str(tmp_path / "out"), "--quiet", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "'cheaper' has the highest expected net benefit" in out and "100%" in out


def test_a_ten_draw_psa_prints_no_nan_and_says_why_evppi_is_missing(model, tmp_path, capsys):
    path = tmp_path / "exp.toml"
    path.write_text(f"""
[experiment]
name = "ten"
model = "{model}"
months = 12
replications = 1
seed = 5
[population]
tenants = 30
[[arms]]
name = "baseline"
[[arms]]
name = "dearer"
parameters = {{ "state_costs.b.cost" = 150, "state_costs.unused.cost" = 10 }}
[psa]
draws = 10
parameters = {{ "state_costs.a.cost" = [50, 150], "chains.health.transitions.fall_ill.rate" = [0.2, 3] }}
groups = {{ cost = ["state_costs.a.cost"], illness = ["chains.health.transitions.fall_ill.rate"] }}
""")
    assert main(["psa", str(path), "--out", str(tmp_path / "out"), "--quiet", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\bnan\b", out, re.IGNORECASE)
    for group in ("cost", "illness"):
        assert f"  {group}: not computed: its additive regression needs at least 40 draws" in out
    assert out.count("not computed") == 2  # once per group, not per threshold
    ev = pd.read_csv(tmp_path / "out" / "evpi.csv")
    assert (ev["evpi"] >= 0).all() and (ev["evpi_low"] >= 0).all()


@pytest.mark.parametrize("psa, expected", [
    ({"parameters": {"state_costs.a.cots": [0, 1]}}, "did you mean"),
    ({"parameters": {"state_costs.a.cost": {"dist": "beta", "mean": 2, "sd": 0.1}}},
     "psa.parameters.state_costs.a.cost"),
    ({"parameters": {"state_costs.b.cost": [0, 1]}}, "also set by arm 'cheaper'"),
    ({"draws": 1, "parameters": {"state_costs.a.cost": [0, 1]}}, "psa.draws"),
    ({"parameters": {"state_costs.a.cost": [0, 1]}, "colour": 1}, "colour"),
])
def test_bad_psa_sections_are_one_line_errors(model, psa, expected):
    with pytest.raises(HhsimError) as err:
        validate(tiny(model, psa))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_group_must_name_drawn_parameters(model, tmp_path):
    # Checked before anything runs (a file checked alone cannot know a posterior's parameters).
    exp = validate(tiny(model, {"parameters": {"state_costs.a.cost": [0, 1]},
                                "groups": {"g": ["state_costs.a.cots"]}}))
    with pytest.raises(HhsimError, match=r"psa\.groups\.g.*did you mean 'state_costs.a.cost'"):
        run_psa(exp, tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()


def test_a_dirichlet_over_shares_that_sum_to_one_is_accepted_and_draws_stay_in_range():
    from hhsim.experiment.psa_section import check_psa
    from hhsim.studies.psa.draws import draw_parameters, rng_for

    shares = ["world.tenure_share.owner_occupied", "world.tenure_share.private_rented",
              "world.tenure_share.social_rented"]
    data = {"experiment": {"months": 12, "replications": 1}, "population": {"tenants": 500},
            "psa": {"draws": 50, "parameters": {
                "mix": {"dist": "dirichlet", "parameters": shares, "alpha": [65, 19, 16]},
                "services.gp.rr.damp": {"dist": "normal", "mean": 1.1, "sd": 0.04}}}}
    st = check_psa(validate(data))
    draws = draw_parameters(st, 2000, rng_for(1))
    assert np.allclose(draws[shares].sum(axis=1), 1.0)
    low, high = st.distributions["services.gp.rr.damp"].range()
    assert draws["services.gp.rr.damp"].between(low, high).all()  # the range validation checked


def test_a_value_an_arm_sets_in_its_intervention_table_cannot_be_sampled():
    data = {"experiment": {"months": 12, "replications": 1}, "population": {"tenants": 500},
            "arms": [{"name": "baseline"},
                     {"name": "sp", "interventions": [{"type": "social_prescribing", "name": "sp",
                                                       "effects": {"gp": {"rate_ratio": 0.72}}}]}],
            "psa": {"parameters": {"interventions.sp.effects.gp.rate_ratio": [0.7, 1.0]}}}
    with pytest.raises(HhsimError, match="intervention table"):
        validate(data)


def test_only_the_last_generation_of_a_calibration_posterior_is_drawn(tmp_path):
    from hhsim.studies.psa.draws import read_posterior, resample_posterior, rng_for

    folder = tmp_path / "calibration"
    folder.mkdir()
    pd.DataFrame({"generation": [0, 0, 1, 1], "weight": [5.0, 5.0, 1.0, 3.0],
                  "x": [100.0, 200.0, 1.0, 2.0]}).to_parquet(folder / "posterior.parquet")
    post = read_posterior(folder)
    assert set(post["x"]) == {1.0, 2.0} and post["weight"].sum() == pytest.approx(1.0)
    draws = resample_posterior(post, 4000, rng_for(0))
    share = (draws["x"] == 2.0).mean()
    assert share == pytest.approx(0.75, abs=4 * np.sqrt(0.75 * 0.25 / 4000))


@pytest.mark.slow
def test_psa_draws_in_precision_rounds_equal_one_psa_of_the_final_size(model, tmp_path):
    """--precision for a PSA: draws added in rounds until the mean over draws is within the
    target, or the maximum; draw i is the same however many there are."""
    from hhsim.analysis.precision import half_width, parse_precision

    exp = validate(tiny(model, PSA))
    target = parse_precision("5%", outcome="mean:nhs_cost", max_replications=60)
    res = run_psa(exp, tmp_path / "rounds", workers=1, precision=target)
    rounds = res.summary["precision"]["rounds"]
    n = rounds[-1]
    assert len(rounds) >= 2 and rounds[0] == 6 and n == res.summary["draws"] <= 60
    records = pd.read_parquet(res.out / "runs.parquet")
    mean = records.loc[records["arm"] == "cheaper"].sort_values("point")["nhs_cost"]
    assert res.summary["precision"]["stopped"].startswith("precision +/- 5% of the mean reached at")
    assert half_width(mean) <= 0.05 * abs(mean.mean()) < half_width(mean.iloc[:rounds[-2]])
    once = run_psa(exp, tmp_path / "once", workers=1, draws=n)
    pd.testing.assert_frame_equal(res.parameters, once.parameters)
    pd.testing.assert_frame_equal(res.draws, once.draws)
    capped = run_psa(exp, tmp_path / "capped", workers=1,
                     precision=parse_precision("0.0001%", outcome="mean:nhs_cost", max_replications=9))
    assert capped.summary["precision"]["rounds"] == [6, 9]
    assert "(the maximum)" in capped.summary["precision"]["stopped"]
    pd.testing.assert_frame_equal(capped.parameters, once.parameters.iloc[:9])
