"""Study files and ``hhsim evidence`` (issue 17): a study replayed in hhsim gives the
estimate its closed form predicts, with a Monte-Carlo interval; verdicts; one-line errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from hhsim.cli import main
from hhsim.core.errors import HhsimError
from hhsim.studies.calibration.study_files import load_study, study_files, study_targets
from hhsim.studies.evidence import simulate_study, verdict

MODEL = Path(__file__).parent / "models" / "two_state_monthly.toml"
RATE = "chains.health.transitions.fall_ill.rate"
LOW, HIGH = 0.3, 0.6  # a year's rate of falling ill without and with the exposure
#: the odds ratio of being sick after 12 months, exposed against not (share 1 - exp(-rate))
TRUE_OR = (lambda p, q: p / (1 - p) / (q / (1 - q)))(1 - math.exp(-HIGH), 1 - math.exp(-LOW))

EXPERIMENT = f"""
[experiment]
name = "exposure-trial"
model = "{MODEL}"
months = 12
seed = 5
replications = 6

[population]
tenants = 3000

[[arms]]
name = "baseline"
parameters = {{ "{RATE}" = {LOW} }}

[[arms]]
name = "exposed"
parameters = {{ "{RATE}" = {HIGH} }}
"""

STUDY = """
[study]
title = "A synthetic trial"
source = "the closed form"
grade = "randomised"
design = "two arms, common random numbers"
n = 3000
population = "everyone"
follow_up = "12 months"
experiment = "exp.toml"

[[outcome]]
name = "sick"
estimator = "odds_ratio"
options = { column = "health:sick", month = 12 }
published = PUBLISHED
interval = [LOW, HIGH]
status = "D"
"""


def write(folder: Path, published: float = TRUE_OR, interval: tuple[float, float] | None = None,
          study: str = STUDY) -> Path:
    low, high = interval or (published * 0.8, published * 1.25)
    (folder / "exp.toml").write_text(EXPERIMENT)
    path = folder / "trial.toml"
    path.write_text(study.replace("PUBLISHED", repr(published)).replace("LOW", repr(low))
                    .replace("HIGH", repr(high)))
    return path


def test_a_simulated_trial_gives_its_closed_form_odds_ratio_within_monte_carlo_error(tmp_path):
    (e,) = simulate_study(load_study(write(tmp_path)), workers=1)
    assert e.replications == 6 and e.mc_low < e.simulated < e.mc_high
    # the bootstrap interval's half-width is about 2 standard errors: allow 3
    half = (e.mc_high - e.mc_low) / 2
    assert abs(e.simulated - TRUE_OR) < 1.5 * half + 1e-9
    assert e.verdict == "within"


def test_one_replication_gives_no_monte_carlo_interval_and_no_verdict(tmp_path):
    (e,) = simulate_study(load_study(write(tmp_path)), workers=1, replications=1)
    assert math.isnan(e.mc_low) and e.verdict == "unknown"


@pytest.mark.parametrize(("interval", "mc", "expected"), [
    ((0.38, 0.68), (0.45, 0.55), "within"),
    ((0.38, 0.68), (0.90, 0.95), "outside"),
    ((0.38, 0.68), (0.20, 0.30), "outside"),
    ((0.38, 0.68), (0.60, 0.75), "unknown"),
    ((0.38, 0.68), (math.nan, math.nan), "unknown"),
])
def test_verdicts(interval, mc, expected):
    assert verdict(interval, mc) == expected
    assert verdict(None, mc) == "not judged"


@pytest.mark.parametrize(("change", "message"), [
    (('grade = "randomised"', 'grade = "anecdote"'), "unknown grade"),
    (("interval = [LOW, HIGH]", "interval = [0.1, 0.2]"), "does not contain the published"),
    (("interval = [LOW, HIGH]", "interval = 0.5"), "must be [low, high]"),
    (('estimator = "odds_ratio"', 'estimator = "oddsratio"'), "unknown estimator"),
    (("n = 3000", "n = 0"), "whole number of at least 1"),
    (("n = 3000", 'n = "many"'), "whole number of at least 1"),
    (('follow_up = "12 months"', 'follow_up = "12 months"\nfollowup = 1'), "unknown key"),
    (('experiment = "exp.toml"', 'experiment = "missing.toml"'), "file not found"),
])
def test_bad_study_files_give_one_line_errors(tmp_path, change, message):
    path = write(tmp_path, study=STUDY.replace(*change))
    with pytest.raises(HhsimError, match=re.escape(message)) as err:
        load_study(path)
    assert "\n" not in str(err.value)


def test_the_command_prints_checks_and_writes_a_table(tmp_path, capsys):
    near = write(tmp_path)
    assert main(["evidence", str(near), "--workers", "1", "--csv", str(tmp_path / "e.csv")]) == 0
    out = capsys.readouterr().out
    assert "trial: sick (odds_ratio): published" in out and "within" in out
    table = pd.read_csv(tmp_path / "e.csv")
    assert list(table["verdict"]) == ["within"] and table.loc[0, "replications"] == 6
    far = write(tmp_path, published=0.5, interval=(0.38, 0.68))
    assert main(["evidence", str(far), "--workers", "1"]) == 0  # reported, not a failure
    assert main(["evidence", str(far), "--workers", "1", "--check"]) == 1
    assert "1 outside" in capsys.readouterr().out


def test_a_figure_with_no_published_interval_is_replayed_but_never_judged(tmp_path, capsys):
    """A pilot report's figure: printed beside the replay, 'not judged', never a failure of
    --check, and refused as a calibration target (it has no sd)."""
    path = write(tmp_path, published=5.0, study=STUDY.replace("interval = [LOW, HIGH]\n", ""))
    study = load_study(path)
    assert study.outcomes[0].interval is None
    (estimate,) = simulate_study(study, replications=2, workers=1)
    assert estimate.verdict == "not judged" and math.isfinite(estimate.simulated)
    assert main(["evidence", str(path), "--workers", "1", "--check"]) == 0
    out = capsys.readouterr().out
    assert "published 5 (no interval published)" in out and "1 not judged" in out
    with pytest.raises(HhsimError, match="no standard deviation"):
        study_targets(study)


def test_the_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert main(["evidence"]) == 2
    assert main(["evidence", str(write(tmp_path)), "--all"]) == 2
    bad = write(tmp_path, study=STUDY.replace('grade = "randomised"', 'grade = "anecdote"'))
    assert main(["evidence", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("hhsim: error:") for line in err)


def test_the_shipped_study_files_read():
    folder = Path(__file__).parents[1] / "calibration" / "studies"
    studies = [load_study(p) for p in study_files(folder)]
    assert studies and all(s.outcomes for s in studies)


def test_a_study_becomes_calibration_targets_held_out_when_it_predicts(tmp_path):
    path = write(tmp_path, published=2.0, interval=(1.608, 2.392))
    (target,) = study_targets(load_study(path))
    assert target.name == "trial.sick" and target.observed == 2.0 and not target.held_out
    assert target.sd == pytest.approx(0.2, rel=1e-4)  # the 95% interval's width over 3.92
    predicts = STUDY.replace('follow_up = "12 months"', 'follow_up = "12 months"\nrole = "predict"')
    held = write(tmp_path, study=predicts)
    assert study_targets(load_study(held))[0].held_out


def test_validate_names_a_study_file(tmp_path, capsys):
    assert main(["validate", str(write(tmp_path))]) == 0
    assert "valid study file (randomised, n = 3,000, 1 outcome(s): sick" in capsys.readouterr().out
    unknown_n = write(tmp_path, study=STUDY.replace("n = 3000\n", ""))
    assert main(["validate", str(unknown_n)]) == 0
    assert "n not published" in capsys.readouterr().out


PILOT = Path(__file__).parents[1] / "calibration" / "experiments" / "personalised-support-pilot.toml"
#: Every effect of the pilot's support switched off: the programme only selects and counts.
NO_EFFECT = "\n".join(
    [f'"interventions.support.effects.{n}.rate_ratio" = 1.0' for n in
     ("community_nursing", "gp", "independence", "care_need_onset", "reconnect", "isolation_onset")]
    + [f'"interventions.support.effects.{n}.points" = 0.0'
       for n in ("money_advice_wellbeing", "support_wellbeing")])

BEFORE_AFTER = """
[study]
title = "An uncontrolled before-after evaluation of a programme with no effect"
source = "synthetic"
grade = "before_after"
design = "clients referred after recent community nursing, use in the 6 months before and after admission"
n = 20
population = "social tenants with a long-term condition"
follow_up = "6 months"
experiment = "pilot.toml"
arm = "support"

[[outcome]]
name = "contacts_saved_per_client"
estimator = "before_after_per_client"
options = { intervention = "support", service = "community_nursing" }
published = 1.0
interval = [0.5, 2.0]

[[outcome]]
name = "controlled_difference"
estimator = "record_incremental"
options = { column = "use_community_nursing" }
published = 0.0
interval = [-1.0, 1.0]
"""


def test_a_before_after_study_of_a_programme_with_no_effect_shows_regression_to_the_mean(tmp_path):
    """Clients are referred after recent community nursing, so their use falls after
    admission with no effect at all (regression to the mean and selection): the replayed
    before-after study finds a saving whose Monte-Carlo interval lies above 0, while the
    controlled comparison of the same people (common random numbers) finds exactly none."""
    (tmp_path / "pilot.toml").write_text(PILOT.read_text() + "\n[parameters]\n" + NO_EFFECT + "\n")
    (tmp_path / "ba.toml").write_text(BEFORE_AFTER)
    before_after, controlled = simulate_study(load_study(tmp_path / "ba.toml"), replications=4,
                                              tenants=3000, workers=1)
    assert before_after.mc_low > 0, before_after
    assert controlled.simulated == 0.0 and controlled.mc_low == controlled.mc_high == 0.0


STUDIES = Path(__file__).parents[1] / "calibration" / "studies"


def test_the_roland_replay_runs_at_1997_8_rates_of_the_default_model():
    """The replay's emergency admission rate is the default model's, times 0.74 at 65+ (its
    comment derives the factor): a change to the default rate must be carried into it."""
    from hhsim.core.parameters import read_toml
    from hhsim.core.resources import default_model_tree

    default = default_model_tree()["hospital"]["admissions"]["emergency"]["rate"]
    replay = read_toml(STUDIES / "experiments" / "roland-2005.toml", "experiment")["parameters"]
    rate = replay["hospital.admissions.emergency.rate"]
    ages = default["breaks"]
    for age, mine, theirs in zip(ages, rate, default["value"], strict=True):
        assert mine == pytest.approx(theirs * (0.74 if age >= 65 else 1.0), rel=0.005), age


HIGH_USERS = """
[experiment]
name = "high-users"
seed = 11
months = MONTHS
replications = 1
high_users = { activity = "emergency_admissions", at_least = 2, ages = [65, 120] }

[population]
tenants = 20000
tenure = { owner_occupied = 1.0 }
"""


def test_high_users_regress_to_the_mean_with_no_intervention(tmp_path):
    """People 65+ with two or more emergency admissions in model year 0 averaged at least two
    each that year (by definition); the next year, with nothing done, their rate falls by
    more than half and their share of their age group's admissions by more than two thirds."""
    from hhsim.batch.design import runs
    from hhsim.batch.execution import simulate
    from hhsim.experiment.plan import compile_plan

    path = tmp_path / "hu.toml"
    path.write_text(HIGH_USERS.replace("MONTHS", "24"))
    (spec,) = runs(compile_plan(path))
    table = simulate(spec).tables["high_users"].set_index("year")
    assert list(table.index) == [0, 1]
    first = table.loc[0]
    assert first["cohort_use"] >= 2 * first["cohort_people"] > 0
    assert first["cohort_person_years"] <= first["cohort_people"]
    assert 0 < first["cohort_use"] < first["reference_use"]
    rate = table["cohort_use"] / table["cohort_person_years"]
    assert rate[1] < 0.5 * rate[0]
    share = table["cohort_use"] / table["reference_use"]
    assert share[1] < share[0] / 3


@pytest.mark.parametrize(("change", "message"), [
    (('activity = "emergency_admissions"', 'activity = "emergency_admission"'), "unknown activity"),
    (("ages = [65, 120]", "ages = [65, 20]"), "are not [first, last] years"),
    (("at_least = 2", "at_least = 0"), "at_least"),
])
def test_bad_high_users_give_one_line_errors(tmp_path, capsys, change, message):
    path = tmp_path / "hu.toml"
    path.write_text(HIGH_USERS.replace("MONTHS", "24").replace(*change))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("hhsim: error:")


def test_a_run_too_short_to_choose_high_users_gives_no_estimate(tmp_path):
    from hhsim.batch.design import runs
    from hhsim.batch.execution import simulate
    from hhsim.experiment.plan import compile_plan
    from hhsim.studies.calibration.estimators import high_users

    path = tmp_path / "hu.toml"
    path.write_text(HIGH_USERS.replace("MONTHS", "6"))
    (spec,) = runs(compile_plan(path))
    result = simulate(spec)
    assert result.tables["high_users"].empty
    with pytest.raises(HhsimError, match="followed no high users"):
        high_users([result], "baseline", "baseline", {"year": 0})


def test_stays_odds_ratio_is_the_odds_of_the_arm_over_the_baseline_arm():
    """3 of 10 placed patients readmitted with the unit's effects, 5 of 10 without: odds
    3/7 over 5/5, pooled over replications; an arm with nobody readmitted has no odds ratio."""
    from hhsim.batch.execution import RunResult
    from hhsim.studies.calibration.estimators import stays_odds_ratio

    def run(arm: str, rep: int, readmitted: list[int]) -> RunResult:
        stays = pd.DataFrame({"intervention": "unit", "placed_day": 1.0, "readmitted_30d": readmitted})
        return RunResult(f"{arm}{rep}", {"arm": arm, "replication": rep}, {"stays": stays})

    results = [run("unit", 0, [1, 1, 0, 0, 0]), run("unit", 1, [1, 0, 0, 0, 0]),
               run("usual", 0, [1, 1, 1, 0, 0]), run("usual", 1, [1, 1, 0, 0, 0])]
    assert stays_odds_ratio(results, "unit", "usual", {"column": "readmitted_30d"}) == pytest.approx(3 / 7)
    none = [run("unit", 0, [0, 0]), run("usual", 0, [1, 0])]
    with pytest.raises(HhsimError, match="strictly between 0 and 1"):
        stays_odds_ratio(none, "unit", "usual", {"column": "readmitted_30d"})
