"""Break-even by reruns (hhsim.studies.break_even.search_break_even, hhsim break-even):
the curve is checked before answering, the answer has an interval, and no answer is given
when simulation noise hides it (issue 15)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import hhsim
from hhsim.analysis.break_even import (
    Evaluation,
    break_even_costs,
    find_break_even,
    format_break_even,
)
from hhsim.analysis.precision import Precision
from hhsim.batch.design import runs
from hhsim.batch.execution import InProcessExecutor, execute
from hhsim.cli import main
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import compile_plan
from hhsim.studies.break_even import search_break_even

from conftest import ROOT

WHAT_IF = ROOT / "experiments" / "what-if-rate-ratio.toml"
RATE_RATIO = "interventions.older_in_poor_homes.effects.admissions.rate_ratio"
UNIT_COST = "interventions.older_in_poor_homes.costs.per_person_month"
AE_CHANGE = "interventions.older_in_poor_homes.effects.ae.percent_change"


class Curve:
    """A synthetic gap (net saving, £) at parameter value x in replication r:
    ``f(x) + shared x z_r + noise x e_r(x)``. ``z_r`` is common to every value (common random
    numbers), ``e_r(x)`` is not; both depend only on (seed, x, r), so replication r is the
    same whatever the number of replications. The intervention costs £100 in every
    replication."""

    def __init__(self, f, shared: float = 1.0, noise: float = 1.0, seed: int = 0) -> None:
        self.f, self.shared, self.noise, self.seed = f, shared, noise, seed
        self.calls = 0

    def __call__(self, values, n: int) -> list[Evaluation]:
        self.calls += 1
        z = np.random.default_rng([self.seed]).standard_normal(n)
        out = []
        for x in values:
            e = np.random.default_rng([self.seed, int(np.float64(x).view(np.uint64))]).standard_normal(n)
            gap = self.f(x) + self.shared * z + self.noise * e
            out.append(Evaluation(float(x), gap, gap + 100.0, np.full(n, 100.0)))
        return out


ROOT_AT = 0.37
CURVES = {"linear": lambda x: 40 * (ROOT_AT - x),
          "curved": lambda x: 60 * (np.exp(-3 * x) - np.exp(-3 * ROOT_AT))}


@pytest.mark.parametrize("shape", CURVES)
def test_the_interval_covers_the_break_even_value_at_its_nominal_rate(shape):
    """Over many seeds, the 95% MC interval holds the true crossing about 95% of the time
    (binomial tolerance: 3 standard errors), and a clear crossing is rarely refused."""
    seeds = 200
    hits = []
    for seed in range(seeds):
        res = find_break_even(Curve(CURVES[shape], shared=3.0, noise=1.0, seed=seed), (0.0, 1.0), 5)
        if res.refusal is None:
            hits.append(res.low <= ROOT_AT <= res.high)
            assert res.answer.value == res.value
    assert len(hits) >= 0.95 * seeds
    assert abs(np.mean(hits) - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / len(hits))


def test_the_answer_is_measured_and_agrees_with_the_target():
    res = find_break_even(Curve(CURVES["linear"], seed=1), (0.0, 1.0), 8)
    assert res.refusal is None and res.low < res.value < res.high
    _, low, high = res.answer.roi()
    assert low <= 1 <= high  # ROI = 1 where the net saving is 0, within MC error
    assert abs(res.answer.mean) <= res.answer.half_width
    values = [e.value for e in res.evaluations]
    assert values == sorted(values) and res.value in values and len(values) >= 12
    text = format_break_even(res, "repairs", "baseline", "10 tenants, 3 months").splitlines()
    assert len(text) == 3 + len(values) + 2 and text[3 + values.index(res.value)].endswith("<- answer")
    assert text[-2] == (f"repairs reaches ROI = 1 at parameter = {res.value:.6g} "
                        f"(95% MC interval {res.low:.6g} to {res.high:.6g}).")
    assert text[-1].startswith("Measured there: net saving ") and "; ROI " in text[-1]


@pytest.mark.parametrize("level, side", [(25.0, "above £0 (ROI above 1)"), (-25.0, "below £0 (ROI below 1)")])
def test_a_curve_that_does_not_reach_the_target_is_refused_naming_the_side(level, side):
    res = find_break_even(Curve(lambda x: level - 5 * x, seed=2), (0.0, 1.0), 5, arm="repairs")
    assert math.isnan(res.value) and isinstance(res.refusal, HhsimError)
    assert f"repairs does not reach ROI = 1 between 0 and 1: its net saving stays {side} beyond MC error" \
        in res.refusal.problem
    assert res.refusal.fix == "widen --between"
    nmb = find_break_even(Curve(lambda x: level - 5 * x, seed=2), (0.0, 1.0), 5, roi=False,
                          target="ICER = £20,000 per QALY")
    assert f"incremental NMB stays {side.split(' (')[0]} beyond MC error" in nmb.refusal.problem


def test_an_unclear_side_is_refused_with_the_replications_needed():
    """Clearly above zero at the low end, below it at the high end but within noise."""
    res = find_break_even(Curve(lambda x: 30 * (0.8 - x), shared=0.0, noise=8.0, seed=3), (0.0, 1.0), 3)
    assert "nowhere clearly below £0 (ROI below 1) at 3 replications" in res.refusal.problem
    need = int(res.refusal.fix.split()[1].replace(",", ""))
    assert need > 3 and res.refusal.fix.startswith(f"about {need:,} replications would tell its sign there")
    assert f"--replications {need}" in res.refusal.fix


def test_a_curve_that_turns_back_is_refused():
    twice = find_break_even(Curve(lambda x: 30 * np.cos(2 * np.pi * x), noise=0.5, seed=4), (0.0, 1.0), 5)
    assert "it is not monotone, so break-even is not unique" in twice.refusal.problem
    bump = find_break_even(Curve(lambda x: 40 * (0.5 - x) + 30 * (abs(x - 1 / 3) < 0.01), noise=0.5, seed=4),
                           (0.0, 1.0), 5)
    assert "not monotone within MC error: it rises from £" in bump.refusal.problem
    assert "at 0.166667 to £" in bump.refusal.problem
    assert "at 0.333333 against its trend" in bump.refusal.problem


def test_one_replication_is_refused():
    with pytest.raises(HhsimError, match="--replications"):
        find_break_even(Curve(CURVES["linear"]), (0.0, 1.0), 1)


def test_rounds_stop_when_the_precision_is_reached_and_equal_one_batch():
    target = Precision(relative=0.01, outcome="break-even value", max_replications=400)
    rounds = find_break_even(Curve(CURVES["curved"], seed=5), (0.0, 1.0), 2, precision=target)
    n = rounds.replications
    assert rounds.stopped == f"precision +/- 1% of the mean reached at {n} replications"
    assert 5 < n < 400 and rounds.warning is None
    assert (rounds.high - rounds.low) / 2 <= 0.01 * rounds.value
    once = find_break_even(Curve(CURVES["curved"], seed=5), (0.0, 1.0), n)
    assert (once.value, once.low, once.high) == (rounds.value, rounds.low, rounds.high)
    assert [e.value for e in once.evaluations] == [e.value for e in rounds.evaluations]
    for a, b in zip(once.evaluations, rounds.evaluations, strict=True):
        assert np.array_equal(a.gap, b.gap)


def test_rounds_respect_the_maximum():
    target = Precision(absolute=1e-6, outcome="break-even value", max_replications=12)
    res = find_break_even(Curve(CURVES["linear"], seed=6), (0.0, 1.0), 5, precision=target)
    assert res.replications == 12 and res.refusal is None
    assert res.stopped.startswith("stopped at 12 replications (the maximum) before precision +/- 1e-06")
    assert res.warning == res.stopped


# --- Simulations (tiny populations) ---


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["break-even", *map(str, args), "--workers", "1"])
    out, err = capsys.readouterr()
    return code, out, err


def test_issue_15_no_longer_answers_from_noise(capsys):
    """The reported case (fewer tenants and months, still 2 replications): the ROI measured
    over the range jumps by more than its distance from 1, so the answer must be a refusal
    in one line, naming how many replications would settle it, not a break-even value."""
    code, out, err = run_cli(capsys, WHAT_IF, "--arm", "what-if", "--parameter", RATE_RATIO,
                             "--between", "0.5", "1.0", "--tenants", "600", "--months", "12",
                             "--replications", "2")
    assert code == 2 and "reaches" not in out
    assert err.count("\n") == 1 and err.startswith(f"hhsim: error: {RATE_RATIO}: ")
    assert "replications would" in err
    rows = [line for line in out.splitlines()[3:] if line.strip()]
    assert len(rows) >= 7  # the evaluations table: value, net saving and ROI with intervals


@pytest.fixture(scope="module")
def everyone(tmp_path_factory):
    """The what-if file with a clear effect: A&E use halved for every tenant (admissions
    unchanged), at £5 per person-month, so the net saving is linear in the unit cost."""
    text = WHAT_IF.read_text()
    for old, new in (('eligibility = { age = [75, 200], hazards = ["damp", "excess_cold"] }',
                      "eligibility = { age = [0, 200] }"),
                     ("percent_change = -10", "percent_change = -50"),
                     ("rate_ratio = 0.95", "rate_ratio = 1.0")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("break-even") / "everyone.toml"
    path.write_text(text)
    return path


def test_a_range_that_does_not_reach_roi_one_is_refused_in_one_line(everyone, capsys):
    code, _, err = run_cli(capsys, everyone, "--arm", "what-if", "--parameter", UNIT_COST,
                             "--between", "0.5", "2", "--tenants", "300", "--months", "3",
                             "--replications", "3")
    assert code == 2 and err.count("\n") == 1
    assert "does not reach ROI = 1 between 0.5 and 2: its net saving stays above £0 (ROI above 1)" in err
    assert "(fix: widen --between)" in err


def one_batch(exp) -> pd.DataFrame:
    """The run records of every arm x replication of ``exp`` in one go, as ``hhsim run``
    plans and simulates them (the same seeds)."""
    records = []
    specs = runs(compile_plan(exp))
    execute(specs, len(specs), lambda r: records.append(r.record), InProcessExecutor(), 1, progress=False)
    return pd.DataFrame(records)


def test_unit_cost_break_even_is_the_analytic_one_and_rounds_extend_one_batch(everyone):
    """A unit cost is linear in the results, so the search lands on the analytic
    break-even (break_even_costs) of a one-go batch of the same replications, within whose
    interval it is; with a precision target it cannot meet, it stops at the maximum, and the
    runs of its extended round are those of the one-go batch, bit for bit."""
    target = Precision(absolute=1e-6, outcome="break-even value", max_replications=6)
    res = search_break_even(everyone, "what-if", UNIT_COST, (2.0, 8.0), tenants=300, months=3,
                            replications=5, workers=1, precision=target)
    assert res.refusal is None and res.replications == 6
    assert res.stopped.startswith("stopped at 6 replications (the maximum)") and res.warning
    plan = compile_plan(hhsim.load_experiment(everyone), tenants=300, months=3, replications=6)
    records = one_batch(plan.experiment)
    be = break_even_costs(records, "baseline", []).set_index("target").loc["ROI = 1"]
    assert res.value == pytest.approx(5.0 * be["scale"], rel=1e-9)  # £5 per person-month in the file
    assert res.low < 5.0 * be["scale_high"] and 5.0 * be["scale_low"] < res.high
    assert res.answer.roi()[0] == pytest.approx(1.0, rel=1e-9)
    at_5 = next(e for e in res.evaluations if e.value == 5.0)
    rec = records.set_index(["arm", "replication"]).sort_index()
    saving = (rec.loc["baseline", "nhs_cost"] - rec.loc["what-if", "nhs_cost"]).to_numpy()
    cost = (rec.loc["what-if", "intervention_cost"] - rec.loc["baseline", "intervention_cost"]).to_numpy()
    assert np.array_equal(at_5.saving, saving) and np.array_equal(at_5.cost, cost)


def test_break_even_options_are_checked_before_running(capsys):
    base = [WHAT_IF, "--arm", "what-if", "--parameter", RATE_RATIO, "--between", "0.5", "1"]
    for extra, where in ((["--max-replications", "50"], "--max-replications"),
                         (["--precision", "abc"], "--precision"),
                         (["--replications", "1"], "--replications")):
        code, _, err = run_cli(capsys, *base, "--tenants", "300", "--months", "6", *extra)
        assert code == 2 and err.startswith(f"hhsim: error: {where}: ") and err.count("\n") == 1


@pytest.mark.slow
def test_effect_size_break_even_agrees_with_a_much_larger_run(everyone):
    """An effect size (the A&E change, not linear in the results): the answer from 10
    replications agrees with one from 40 replications of another seed, within their
    combined 95% MC error (independent runs: the half-widths add in quadrature)."""
    found = {}
    for seed, n in ((1, 10), (2, 40)):
        exp = compile_plan(hhsim.load_experiment(everyone), seed=seed).experiment
        found[n] = search_break_even(exp, "what-if", AE_CHANGE, (-80.0, -20.0), tenants=300, months=3,
                                     replications=n)
        assert found[n].refusal is None
    small, large = found[10], found[40]
    hw_small, hw_large = (small.high - small.low) / 2, (large.high - large.low) / 2
    assert hw_large < hw_small
    assert abs(small.value - large.value) <= math.hypot(hw_small, hw_large)
    assert small.low - hw_large <= large.value <= small.high + hw_large
