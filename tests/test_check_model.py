"""hhsim check-model (issue 16): census estimators, held-out targets, gaps and the page."""

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hhsim.batch.execution import RunResult
from hhsim.core.errors import HhsimError
from hhsim.studies.baseline.check import (
    check_model,
    drift_summary,
    drift_verdict,
    group_summary,
    markdown,
    misses,
)
from hhsim.studies.calibration.estimators import census_rate, check_options
from hhsim.studies.calibration.problem import load_problem
from hhsim.studies.calibration.targets import load_gaps, load_targets

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "calibration" / "baseline.toml"
TARGETS = ROOT / "calibration" / "targets" / "baseline.toml"


def _census(rows: list[tuple]) -> pd.DataFrame:
    cols = ["year", "sex", "decile", "age_band", "person_years", "health:bad", "gp"]
    return pd.DataFrame(rows, columns=cols)


@pytest.fixture
def results():
    """Two replications of a census with four cells each."""
    a = _census([(0, "male", 1, "45-49", 100.0, 10.0, 200.0), (0, "female", 1, "45-49", 100.0, 20.0, 400.0),
                 (0, "male", 10, "45-49", 100.0, 2.0, 150.0), (0, "female", 10, "85+", 50.0, 25.0, 300.0),
                 (1, "male", 1, "45-49", 100.0, 90.0, 900.0)])
    b = a.assign(person_years=a["person_years"] * 3, **{"health:bad": a["health:bad"] * 3})
    return [RunResult(f"baseline__r{r}", {"arm": "baseline", "replication": r}, {"census": t})
            for r, t in enumerate((a, b))]


def test_census_rate_pools_cells_and_replications(results):
    """Rates are ratios of sums over the kept cells of every replication, in year 0 by
    default: bad health in decile 1 is (10 + 20) x 4 / (200 x 4) = 0.15."""
    assert census_rate(results, "baseline", "baseline", {"numerator": "health:bad", "decile": 1}) == 0.15
    assert census_rate(results, "baseline", "baseline",
                       {"numerator": "health:bad", "decile": 1, "year": 1}) == pytest.approx(0.9)
    # gp is not scaled in b: (200 + 400) x 2 / 800
    assert census_rate(results, "baseline", "baseline",
                       {"numerator": "gp", "decile": 1, "sex": "male", "scale": 2.0}) == pytest.approx(
        2 * 400 / 400)


def test_census_rate_open_age_band_share_and_contrasts(results):
    f = {"numerator": "health:bad"}
    # [85, 120] takes in the open band; [45, 49] does not
    assert census_rate(results, "baseline", "baseline", {**f, "ages": [85, 120]}) == 0.5
    assert census_rate(results, "baseline", "baseline", {**f, "ages": [45, 49]}) == pytest.approx(32 / 300)
    # a share: 85+'s bad-health person-years among all ages' (denominator = the numerator column)
    share = census_rate(results, "baseline", "baseline",
                        {**f, "ages": [85, 120], "denominator": "health:bad",
                         "denominator_over": {"ages": [0, 120]}})
    assert share == pytest.approx(25 / 57)
    ratio = census_rate(results, "baseline", "baseline", {**f, "decile": 1, "versus": {"decile": 10}})
    assert ratio == pytest.approx(0.15 / (27 / 150))
    diff = census_rate(results, "baseline", "baseline",
                       {**f, "ages": [45, 49], "sex": "female", "versus": {"sex": "male"},
                        "contrast": "difference"})
    assert diff == pytest.approx(0.2 - 12 / 200)
    # nobody in the cells: no rate, not a division error
    assert math.isnan(census_rate(results, "baseline", "baseline", {**f, "ages": [16, 19]}))


def test_census_rate_errors_name_the_fix(results):
    with pytest.raises(HhsimError, match="census column"):
        census_rate(results, "baseline", "baseline", {"numerator": "health:awful"})
    empty = _census([])[["year", "sex", "decile", "age_band", "person_years"]]
    bare = [RunResult("r", {"arm": "baseline", "replication": 0}, {"census": empty})]
    with pytest.raises(HhsimError, match="census = true"):
        census_rate(bare, "baseline", "baseline", {"numerator": "health:bad"})
    with pytest.raises(HhsimError, match="model year 5 is not in the run"):
        census_rate(results, "baseline", "baseline", {"numerator": "health:bad", "year": 5})


@pytest.mark.parametrize("options, message", [
    ({"numerator": "gp", "ages": [66, 120]}, "age bands"),
    ({"numerator": "gp", "ages": [65, 68]}, "age bands"),
    ({"numerator": "gp", "ages": [70, 65]}, r"\[first, last\]"),
    ({"numerator": "gp", "decile": [0, 3]}, "1-10"),
    ({"numerator": "gp", "sex": "both"}, "male or female"),
    ({"numerator": "gp", "year": -1}, "model year"),
    ({"numerator": "gp", "region": "north"}, "census_rate option"),
    ({"numerator": "gp", "contrast": "ratio"}, "nothing to contrast"),
    ({"numerator": "gp", "versus": {"sex": "male"}, "contrast": "odds"}, "contrast"),
    ({"numerator": "gp", "versus": {"ages": [1, 2]}}, "age bands"),
    ({"numerator": []}, "census columns"),
])
def test_census_options_are_checked(options, message):
    with pytest.raises(HhsimError, match=message):
        check_options("census_rate", options, "t")


def test_baseline_targets_hold_out_a_fifth_and_list_their_gaps():
    targets = load_targets(TARGETS)
    held = [t for t in targets if t.held_out]
    assert len(targets) >= 30 and len(held) >= len(targets) / 5
    assert all(t.source and t.status for t in targets)
    gaps = load_gaps(TARGETS)
    assert {"planned_care", "falls_admissions"} <= {g.name for g in gaps}


def test_held_out_targets_never_enter_the_fit():
    """The distance and likelihood a calibration minimises ignore held-out targets, however
    far off they are."""
    problem = load_problem(BASELINE)
    values = dict(problem.observed)
    held = next(t for t in problem.targets if t.held_out)
    fitted = next(t for t in problem.targets if not t.held_out)
    assert problem.distance({**values, held.name: held.observed + 100 * held.sd}, values) == 0
    assert problem.neg_log_likelihood({**values, held.name: math.nan}) == 0
    off = {**values, fitted.name: fitted.observed + 2 * fitted.sd}
    assert problem.distance(off, values) == pytest.approx(2)


def test_gap_and_held_out_entries_are_checked(tmp_path):
    exp = ROOT / "calibration" / "experiments" / "england-census.toml"
    base = (f'[[target]]\nname = "x"\nexperiment = "{exp}"\nestimator = "census_rate"\n'
            'options = { numerator = "gp" }\nobserved = 1\nsd = 1\nsource = "s"\n')
    f = tmp_path / "t.toml"
    f.write_text(base + 'held_out = "yes"\n')
    with pytest.raises(HhsimError, match="held_out"):
        load_targets(f)
    f.write_text(base + '[[gap]]\nname = "g"\nwhat = "w"\nsource = "s"\n')
    with pytest.raises(HhsimError, match="reason"):
        load_gaps(f)
    f.write_text('gap = 3\n' + base)
    with pytest.raises(HhsimError, match=r"\[\[gap\]\] tables"):
        load_gaps(f)


def test_check_model_writes_every_target_gap_and_explanation(tmp_path):
    """A small check: every target has a row with its role, interval and coverage; the page
    lists them, explains misses from validation-notes.toml and lists the gaps."""
    check = check_model(BASELINE, draws=2, sizes={"tenants": 3000, "months": 12}, workers=1, drift_years=0)
    targets = load_targets(TARGETS)
    assert list(check.fit["target"]) == [t.name for t in targets]
    assert (check.fit["role"] == "held out").sum() == sum(t.held_out for t in targets)
    assert set(check.fit["covered"]) == {"unknown"}  # 2 draws cannot tell (20 needed)
    cov = check.coverage()
    assert list(cov["targets"]) == [sum(not t.held_out for t in targets), sum(t.held_out for t in targets)]
    name = targets[0].name
    page = markdown(check, {name: "a reason given"})
    assert all(f"| {t.name} |" in page for t in targets)
    assert f"**{name}**" in page and "a reason given" in page and "not yet explained" in page
    assert all(f"| {g.name} |" in page for g in check.gaps)
    assert isinstance(misses(BASELINE), dict)
    assert "influential parameters" not in page
    with_screen = markdown(check, {}, "| rank | parameter |\n|---|---|\n| 1 | `x` |\n")
    assert "## The most influential parameters" in with_screen and "| 1 | `x` |" in with_screen
    assert with_screen.index("influential parameters") < with_screen.index("## Gaps")


def test_check_model_command_refuses_bad_input(tmp_path):
    run = [sys.executable, "-m", "hhsim", "check-model"]
    p = subprocess.run([*run, str(tmp_path / "none.toml"), "--out", str(tmp_path / "v.md")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "calibration file not found" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([*run, str(BASELINE), "--drift-years", "-1", "--out", str(tmp_path / "v.md")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--drift-years" in p.stderr
    assert not (tmp_path / "v.md").exists()


def test_a_deprivation_gradient_can_change_with_age():
    """``deprivation`` with ``breaks``: a ratio per decile more deprived in each age band
    (decile 10 neutral at every age), so a gradient can peak in middle age."""
    import numpy as np

    from hhsim.core.resources import world_tree
    from hhsim.health.terms import TermContext, parse_terms, product
    from hhsim.world.synthetic import england_mix, generate

    w = world_tree()
    pop = generate(5000, england_mix(w), w, np.random.default_rng(5))
    leaf = {"value": [1.1, 1.3, 1.05], "breaks": [16, 40, 65], "unit": "odds ratio", "status": "A",
            "source": "test"}
    terms = parse_terms({"deprivation": leaf}, "x.odds_ratio", TermContext({}))
    factor = product(terms, pop, None)
    per = np.select([pop.age_years < 40, pop.age_years < 65], [1.1, 1.3], 1.05)
    assert np.allclose(factor, per ** (10 - pop.deprivation.astype(float)), rtol=1e-5)
    with pytest.raises(HhsimError, match="one value per age band"):
        parse_terms({"deprivation": {"value": [1.1, 1.3], "breaks": [16, 40, 65], "unit": "odds ratio",
                                     "status": "A", "source": "test"}}, "x.odds_ratio", TermContext({}))


@pytest.mark.slow
def test_the_baseline_meets_its_targets_or_says_why():
    """The shipped model against the baseline targets with a small population (30,000
    tenants, 20 draws; docs/validation.md uses 100,000 and 100), at the shipped posterior
    when there is one (check-model draws its rows; none is shipped at model 9): the targets
    are covered as issue 16 asks (at least 90% of the fitted and 80% of the held-out targets
    whose coverage is known; model 9: 29 of 32 and 9 of 9 at docs/validation.md's size), and
    every target the model misses is explained in calibration/validation-notes.toml."""
    check = check_model(BASELINE, draws=20, sizes={"tenants": 30_000}, workers=2, drift_years=0)
    cov = check.coverage().set_index("role")
    assert cov.loc["held out", "share"] >= 0.8, cov
    assert cov.loc["fitted", "share"] >= 0.9, cov
    missed = set(check.fit.loc[check.fit["covered"] == "False", "target"])
    assert missed <= set(misses(BASELINE)), missed - set(misses(BASELINE))


def test_drift_is_judged_band_by_band_on_its_interval():
    """A band whose 95% interval lies within 1 point passes; one wholly beyond fails; one that
    straddles the limit is undecided, and a chain with no failing band is then unknown. The
    limit is judged on the standardised stable view (each band's make-up held at year 0) and
    the cohort; a band that moves only because its make-up moved fails the stable view as it
    is, not the standardised one."""
    def stable(changes: list[float], n: float) -> pd.DataFrame:
        rows = []
        for b, d in enumerate(changes):
            for year, share in ((0, 0.3), (2, 0.3 + d)):
                for state, x in (("none", 1 - share), ("ltc", share)):
                    rows.append({"chain": "ltc", "state": state, "sex": 0, "age_band": str(b),
                                 "year": year, "share": x, "person_years": n})
        return pd.DataFrame(rows)

    def strata(changes: list[float], n: float, social: tuple[float, float] = (0.0, 0.0)) -> pd.DataFrame:
        """One band per change; within it owners (30% + change) and social renters (60% +
        change), the social renters' share of the band's person-years ``social`` at years 0 and 2."""
        rows = []
        for b, d in enumerate(changes):
            for year, mix in ((0, social[0]), (2, social[1])):
                for tenure, share, part in (("owner_occupied", 0.3, 1 - mix), ("social_rented", 0.6, mix)):
                    if part:
                        p = share + d * year / 2
                        rows.append({"year": year, "sex": 0, "age_band": str(b), "tenure": tenure, "fifth": 1,
                                     "person_years": n * part, "ltc:none": n * part * (1 - p),
                                     "ltc:ltc": n * part * p})
        return pd.DataFrame(rows)

    def summary(changes: list[float], n: float, cohort: pd.DataFrame) -> pd.DataFrame:
        return drift_summary(stable(changes, n), cohort, strata(changes, n)).set_index("year")

    cohort = pd.DataFrame(columns=["chain", "state", "year", "observed", "expected", "people"])
    # se of a change here: sqrt(0.21 x 2 / n): 0.2 points at n = 100,000, 2 points at n = 1,000
    got = summary([0.002, -0.004], 100_000, cohort)
    assert (got.loc[2, "beyond"], got.loc[2, "unsure"]) == (0, 0)
    got = summary([0.002, -0.02], 100_000, cohort)
    assert (got.loc[2, "beyond"], got.loc[2, "unsure"]) == (1, 0)
    assert got.loc[2, "standardised_max"] == pytest.approx(0.02)
    got = summary([0.002, 0.011], 100_000, cohort)
    assert (got.loc[2, "beyond"], got.loc[2, "unsure"]) == (0, 1)
    got = summary([0.002, -0.004], 1_000, cohort)
    assert (got.loc[2, "beyond"], got.loc[2, "unsure"]) == (0, 2)
    # social renters go from 5% to 22% of a band: its share moves 5.1 points with no stratum's
    # moving; the stable view as it is fails, the standardised view passes
    moved = strata([0.0], 100_000, social=(0.05, 0.22))
    shares = moved.groupby("year")[["ltc:ltc", "person_years"]].sum()
    raw = stable([float(shares.loc[2, "ltc:ltc"] / shares.loc[2, "person_years"]
                        - shares.loc[0, "ltc:ltc"] / shares.loc[0, "person_years"])], 100_000)
    got = drift_summary(raw, cohort, moved).set_index("year")
    assert got.loc[2, "stable_max"] == pytest.approx(0.051)
    assert (got.loc[2, "raw_beyond"], got.loc[2, "beyond"], got.loc[2, "unsure"]) == (1, 0, 0)
    assert got.loc[2, "standardised_max"] == pytest.approx(0.0, abs=1e-12)
    # the cohort alone: a band wholly beyond the limit there, whatever the stable view says
    off = pd.DataFrame([{"chain": "ltc", "state": "ltc", "sex": 0, "age_band": "0", "year": 2,
                         "observed": 0.33, "expected": 0.30, "people": 100_000}])
    got = summary([0.002, -0.004], 100_000, off)
    assert (got.loc[2, "cohort_beyond"], got.loc[2, "cohort_unsure"]) == (1, 0)
    assert (got.loc[2, "beyond"], got.loc[2, "unsure"]) == (1, 0)
    # by tenure: year 0 left out, the first state left out, each row judged on its own interval
    rows = [{"chain": "ltc", "state": state, "group": "tenure", "level": tenure, "year": year,
             "people": 200_000, "observed": x + (d if state == "ltc" else -d), "expected": x}
            for tenure, d in (("owner_occupied", 0.001), ("social_rented", -0.03))
            for year in (0, 10) for state, x in (("none", 0.6), ("ltc", 0.4))]
    by_tenure = group_summary(pd.DataFrame(rows)).set_index("level")
    assert list(by_tenure["year"]) == [10, 10] and set(by_tenure["state"]) == {"ltc"}
    assert by_tenure.loc["owner_occupied", "verdict"] == "yes"
    assert by_tenure.loc["social_rented", "verdict"] == "no (1 band)"
    verdicts = [drift_verdict(0, 0), drift_verdict(2, 3), drift_verdict(0, 1)]
    assert verdicts == ["yes", "no (2 bands)", "unknown (1 band)"]


def test_predictive_draws_are_whole_rows_of_the_shipped_posterior(tmp_path, monkeypatch):
    """check-model's predictive points are rows of the shipped posterior, drawn by weight (a
    zero-weight row never), keeping each row's parameters together; none shipped: no overrides."""
    from hhsim.studies.baseline.check import posterior_points

    monkeypatch.setattr("hhsim.studies.calibration.ship.posterior_folder", lambda: tmp_path)
    points, what = posterior_points(5, seed=1)
    assert points.shape == (5, 0) and "no calibrated posterior" in what
    pd.DataFrame({"a.rr": [1.0, 2.0, 3.0], "b.rr": [10.0, 20.0, 30.0], "weight": [0.5, 0.0, 0.5]}).to_csv(
        tmp_path / "base.csv", index=False)
    (tmp_path / "base.toml").write_text('[posterior]\nmodel_version = "9"\n')
    points, what = posterior_points(200, seed=1)
    assert list(points.columns) == ["a.rr", "b.rr"] and len(points) == 200
    assert set(points["a.rr"]) == {1.0, 3.0} and (points["b.rr"] == 10 * points["a.rr"]).all()
    assert 70 <= (points["a.rr"] == 1.0).sum() <= 130  # binomial(200, 0.5): within 4 sd
    assert "'base' (2 parameters)" in what
    assert posterior_points(200, seed=1)[0].equals(points)
