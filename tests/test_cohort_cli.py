"""Cohort mode from the command line (issue 19, item 8): ``hhsim run FILE --cohort`` runs each
arm once as the exact expected values of a cohort, through the store, analyses and printouts
of a microsimulation, and prints the same tables, without intervals.

The published figures are Krijkamp et al. (2018), Appendix C (tests/test_gallery.py):
No Treatment $75,976 and 15.839 QALYs, Treatment $141,623 and 16.400, ICER $116,901.
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest

import hhsim
from hhsim.cli import main
from hhsim.experiment.plan import load_experiment
from hhsim.health.cohort import cohort_run
from hhsim.health.model_file import calibrated_model
from hhsim.model.cohort_mode import DEFAULT_COHORT
from hhsim.report.batch import load_batch
from hhsim.report.page import summary_section

from conftest import ROOT

KRIJKAMP = ROOT / "experiments" / "krijkamp-2018-sick-sicker.toml"
PUBLISHED = {"no-treatment": (75976, 15.839), "treatment": (141623, 16.400)}
PUBLISHED_ICER = "£116,901 per QALY"


def printed(argv: list[str]) -> tuple[int, str, str]:
    """Exit code, standard output and standard error of ``hhsim <argv>``, in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[str, object]]:
    """Krijkamp's experiment in cohort mode, and a small microsimulation of it: the printout
    and the results folder of each."""
    root = tmp_path_factory.mktemp("cohort-cli")
    out = {}
    for kind, options in (("cohort", ["--cohort"]),
                          ("micro", ["--tenants", "300", "--months", "120", "--replications", "2",
                                     "--workers", "1", "--quiet"])):
        code, text, _ = printed(["run", str(KRIJKAMP), "--out", str(root / kind), *options])
        assert code == 0
        out[kind] = (text, hhsim.load_results(root / kind))
    return out


def rows(text: str, heading: str) -> list[str]:
    """The lines of the block of ``text`` that starts with ``heading`` (up to a blank line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def numbers(line: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"-?[\d,]+\.\d+", line)]


def test_the_printout_gives_the_published_figures_without_intervals(runs):
    text, _ = runs["cohort"]
    table = rows(text, "Per person")
    for arm, (cost, qalys) in PUBLISHED.items():
        line = next(line for line in table if line.strip().startswith(arm))
        printed_cost, printed_qalys, _ = numbers(line)
        assert (round(printed_cost), round(printed_qalys, 3)) == (cost, qalys)
    d_cost, d_qalys, _ = numbers(next(line for line in table if "difference" in line))
    assert (round(d_cost), round(d_qalys, 3)) == (65647, 0.562)
    assert f"treatment: on the frontier; ICER against no-treatment {PUBLISHED_ICER}\n" in text
    assert text.startswith("krijkamp-2018-sick-sicker: cohort mode: the expected values of a cohort of "
                           "20,000 people alike, computed exactly")
    assert "aged 50, male, social rented, IMD decile 5 (cohort mode's defaults" in text
    for claim in ("±", "95% MC", "Monte-Carlo interval", "replication"):  # nothing sampled, nothing claimed
        assert claim not in text
    assert text.count("expected values, exact: no Monte-Carlo error") == 2  # per person, cost-effectiveness


def test_the_documented_printout_is_the_printout(runs):
    text, res = runs["cohort"]
    docs = (ROOT / "docs" / "model-files.md").read_text(encoding="utf-8")
    block = re.search(r"```console\n\$ hhsim run [^\n]* --cohort [^\n]*\n(.*?)```",
                      docs[docs.index("### 15.4"):], re.S).group(1)
    assert block.replace("/home/analyst/sick-sicker", str(res.out)) == text


def test_the_results_are_cohort_runs_exactly(runs):
    _, res = runs["cohort"]
    exp = load_experiment(KRIJKAMP)
    e = exp.experiment
    records = res.records.set_index("arm")
    for arm in exp.arms:
        tree, world = exp.trees(arm)
        expected = cohort_run(calibrated_model(tree, world), e.months // 12, {"H": 1.0},
                              discount_costs=e.discount.costs, discount_effects=e.discount.effects,
                              reward_timing=e.reward_timing, price_year=e.price_year).outcomes
        r = records.loc[arm.name]
        assert r["per_person_cost"] == expected["cost_nhs"]  # every cost is the NHS's
        assert r["per_person_qalys"] == expected["qalys"]
        assert r["per_person_life_years"] == expected["life_years"]
        assert [r[f"per_person_{k}_se"] for k in ("cost", "qalys", "life_years")] == [0, 0, 0]
        # Totals are per person x the people represented (the experiment's 20,000 tenants).
        assert r["population"] == r["tenants"] == 20000
        for total, per_person in (("cost_nhs", "cost_nhs"), ("qalys", "qalys"), ("life_years", "life_years"),
                                  ("use_treatment", "use_treatment")):
            assert r[total] == 20000 * expected[per_person]
    monthly = res.monthly().merge(res.records[["run_id", "arm"]]).groupby("arm").sum(numeric_only=True)
    for column, total in (("deaths", "deaths"), ("use:care_S2", "use_care_S2"),
                          ("cost:nhs", "cost_nhs_undisc")):  # a step's use and cost: what its boundaries add
        expected = records.loc[monthly.index, total].to_numpy()
        assert monthly[column].to_numpy() == pytest.approx(expected, rel=1e-12)
    assert res.mode == "cohort" and res.manifest["mode"] == "cohort" and res.plan["mode"] == "cohort"
    assert res.manifest["replications"] == 1 and len(res.records) == 2
    ce = res.analysis["cost_effectiveness"]
    assert ce["icer_note"].fillna("").eq("").all() and ce["icer_low"].isna().all()


def test_it_prints_the_microsimulations_tables(runs):
    (cohort, c), (micro, m) = runs["cohort"], runs["micro"]
    assert m.mode == "microsimulation"
    per_c, per_m = rows(cohort, "Per person"), rows(micro, "Per person")
    assert per_c[1] == per_m[1]  # the columns
    assert [line[:26] for line in per_c[2:]] == [line[:26] for line in per_m[2:]]  # the rows
    ce_c, ce_m = rows(cohort, "Cost-effectiveness"), rows(micro, "Cost-effectiveness")
    assert [line.split("£")[0] for line in ce_c[1:]] == [line.split("£")[0] for line in ce_m[1:]]
    assert ce_c[0].split("discounted; ")[0] == ce_m[0].split("discounted; ")[0]
    assert cohort.splitlines()[-2:][1].split(" (")[1] == micro.splitlines()[-1].split(" (")[1]
    # The same records and tables, column for column: one code path from the store on.
    assert list(c.records.columns) == list(m.records.columns)
    for name in ("summary", "economics"):
        assert list(getattr(c, name).columns) == list(getattr(m, name).columns)
    for name, table in c.analysis.items():
        assert list(table.columns) == list(m.analysis[name].columns), name
    for name in ("monthly", "groups", "lifetable", "checks"):
        assert list(c.table(name).columns) == list(m.table(name).columns), name


def test_the_report_says_cohort_mode(runs):
    body = summary_section(load_batch(runs["cohort"][1].out)).body
    assert "Cohort mode: the expected values of a cohort of 20,000 people alike" in body
    assert "Intervals are 95% Monte-Carlo" not in body


def test_a_mixed_start_is_followed_and_split_by_starting_state(tmp_path):
    data = (KRIJKAMP.read_text().replace('model = "models/', f'model = "{KRIJKAMP.parent}/models/')
            + '\n[parameters]\n"chains.health.initial.prevalence" = [0.6, 0.3, 0.1]\n'
            + '[population.cohort]\nage = 40\nsex = "female"\n')
    path = tmp_path / "mixed.toml"
    path.write_text(data.replace("[population]\ntenants = 20000\n", "[population]\ntenants = 1000\n"))
    code, text, _ = printed(["run", str(path), "--cohort", "--out", str(tmp_path / "out")])
    assert code == 0 and "Everyone aged 40, female, social rented, IMD decile 5, starting" in text
    res = hhsim.load_results(tmp_path / "out")
    exp = load_experiment(path)
    tree, world = exp.trees(exp.arms[0])
    health = calibrated_model(tree, world)
    kw = dict(discount_costs=0.03, discount_effects=0.03, reward_timing="both-ends",
              price_year=exp.experiment.price_year, age=40.0, female=True)
    whole = cohort_run(health, 30, {"H": 0.6, "S1": 0.3, "S2": 0.1}, **kw).outcomes
    r = res.records.iloc[0]
    assert r["per_person_qalys"] == pytest.approx(whole["qalys"], rel=1e-12)
    assert r["per_person_cost"] == pytest.approx(whole["cost_nhs"], rel=1e-12)
    groups = res.groups()
    by_start = groups[(groups["run_id"] == r["run_id"]) & (groups["dimension"] == "health")].pivot(
        index="group", columns="outcome", values="value").loc[["H", "S1", "S2"]]
    assert by_start["population"].to_numpy() == pytest.approx([600, 300, 100])
    assert by_start["qalys"].sum() == pytest.approx(r["qalys"], rel=1e-12)
    from_sick = cohort_run(health, 30, {"S1": 1.0}, **kw).outcomes
    assert by_start.loc["S1", "qalys"] == pytest.approx(300 * from_sick["qalys"], rel=1e-12)


def test_the_initial_chances_are_those_the_microsimulation_draws_from():
    from hhsim.core.resources import default_model_tree, world_tree
    from hhsim.world.children import with_children
    from hhsim.world.synthetic import england_mix, generate

    w = world_tree()
    health = calibrated_model(default_model_tree(), w)
    adults = generate(500, england_mix(w), w, np.random.default_rng(1))
    pop = with_children(adults, w, np.random.default_rng(3))
    grid = (np.arange(400) + 0.5) / 400  # the same uniform for everyone, over [0, 1)
    u = np.random.default_rng(2).random(pop.n)
    for name, chain in health.chains.items():  # a later chain's odds ratios read the earlier's states
        chances = chain.initial.chances(pop)
        assert chances.sum(axis=1) == pytest.approx(1.0) and (chances >= 0).all()
        drawn = np.stack([chain.initial.draw(pop, np.full(pop.n, v)) for v in grid])
        shares = np.stack([(drawn == k).mean(axis=0) for k in range(chances.shape[1])], axis=1)
        assert np.abs(shares - chances).max() <= (chances.shape[1] - 1) / 400 + 1e-9
        assert chances.std(axis=0).max() > 0.01  # odds ratios and age bands make people differ
        pop.states[name] = chain.initial.draw(pop, u)


def test_the_default_person_is_cohort_runs():
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(cohort_run).parameters.items()}
    assert (DEFAULT_COHORT.age, DEFAULT_COHORT.female, DEFAULT_COHORT.tenure, DEFAULT_COHORT.decile) == (
        defaults["age"], defaults["female"], defaults["tenure"], defaults["decile"])


@pytest.mark.parametrize("argv, where", [
    (["--cohort"], "--cohort: cohort mode needs a model with one chain and no services or hospital, and this "
                   "one has 6 chains, services and a hospital"),
    ([str(KRIJKAMP), "--cohort", "--replications", "5"], "--replications: has no use with --cohort"),
    ([str(KRIJKAMP), "--cohort", "--precision", "5%"], "--precision: has no use with --cohort"),
    ([str(KRIJKAMP), "--cohort", "--workers", "2"], "--workers: has no use with --cohort"),
    ([str(KRIJKAMP), "--cohort", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler: has no use"),
    ([str(KRIJKAMP), "--cohort", "--resume"], "--resume: has no use with --cohort"),
    ([str(KRIJKAMP), "--cohort", "--seed", "1"], "--seed: has no use with --cohort"),
])
def test_what_cohort_mode_cannot_do_is_one_line_and_writes_nothing(tmp_path, argv, where):
    out = tmp_path / "out"
    code, text, err = printed(["run", *argv, "--out", str(out)])
    assert code == 2 and not text and not out.exists()
    assert err.startswith(f"hhsim: error: {where}") and "(fix: " in err and err.count("\n") == 1


def test_a_cohort_of_homeless_people_is_refused(tmp_path):
    homeless = KRIJKAMP.read_text().replace('model = "models/', f'model = "{KRIJKAMP.parent}/models/') \
        + '[population.cohort]\nage = 40\nsex = "male"\ntenure = "rough_sleeping"\n'
    (tmp_path / "homeless.toml").write_text(homeless)
    code, _, err = printed(["run", str(tmp_path / "homeless.toml"), "--cohort", "--out", str(tmp_path / "h")])
    assert code == 2 and err.startswith("hhsim: error: population.cohort.tenure: rough_sleeping")
    assert not (tmp_path / "h").exists()


def test_a_cohort_folder_is_not_a_microsimulations_to_resume(runs):
    code, _, err = printed(["run", str(KRIJKAMP), "--out", str(runs["cohort"][1].out), "--resume",
                            "--tenants", "20000", "--replications", "1", "--workers", "1", "--quiet"])
    assert code == 2 and "holds results of a different experiment" in err
