"""Issue 16: history matching with Gaussian-process emulators before ABC-SMC. The emulator
reproduces a smooth function within its own uncertainty; implausibility is computed as
written; on a toy problem with a known truth the waves keep the truth and rule out most of
the prior, deterministically and resumably; the restricted ABC prior never draws an
implausible point; bad [history_matching] tables are one-line errors; the command runs end
to end."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import qmc
from test_calibration import CALIBRATION, TARGET, write

from hhsim.cli import main
from hhsim.core.distributions import parse_distribution
from hhsim.core.errors import HhsimError
from hhsim.studies.calibration.abc import RestrictedPrior
from hhsim.studies.calibration.emulator import fit_emulator, within_two
from hhsim.studies.calibration.history_matching import (
    combined,
    history_match,
    implausibility,
    observations,
)
from hhsim.studies.calibration.problem import HM_DEFAULTS, load_problem

PRIORS = (parse_distribution([0.0, 2.0], "a"), parse_distribution({"dist": "lognormal", "median": 1.0,
                                                                     "sdlog": 0.4}, "b"))
TRUTH = {"a": 1.2, "b": 0.8}
NOISE = 0.02  # the toy simulator's run-to-run sd


def outputs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The toy model's three outputs (columns): a + b, a x b, a - b."""
    return np.column_stack([a + b, a * b, a - b])


@dataclass
class Toy:
    """A Problem-like object with a cheap simulate: three normal targets observed at TRUTH
    (sd 0.05), two parameters."""

    history_matching: dict
    names: tuple[str, ...] = ("a", "b")
    priors: tuple = PRIORS
    settings: dict = field(default_factory=lambda: {"seed": 7})
    source: Path = Path("toy.toml")
    fitted: tuple = tuple(SimpleNamespace(name=n, likelihood="normal", observed=float(v), sd=0.05, n=0)
                          for n, v in zip(("sum", "product", "difference"),
                                          outputs(np.array([TRUTH["a"]]), np.array([TRUTH["b"]]))[0],
                                          strict=True))

    def simulate(self, point: dict, seed: int) -> dict[str, float]:
        noise = np.random.default_rng(seed).normal(0.0, NOISE, 3)
        values = outputs(np.array([point["a"]]), np.array([point["b"]]))[0] + noise
        return dict(zip(("sum", "product", "difference"), map(float, values), strict=True))


def toy(**settings) -> Toy:
    return Toy({**HM_DEFAULTS, "waves": 3, "points": 20, "candidates": 20_000, "restarts": 1, **settings})


def test_the_emulator_reproduces_a_smooth_function_within_its_uncertainty():
    rng = np.random.default_rng(3)

    def f(x: np.ndarray) -> np.ndarray:
        return np.column_stack([np.sin(2 * x[:, 0]) + np.log(x[:, 1]), x[:, 0] * x[:, 1]])

    def draw(n: int) -> np.ndarray:
        u = qmc.LatinHypercube(d=2, seed=rng).random(n)
        return np.column_stack([d.ppf(u[:, j]) for j, d in enumerate(PRIORS)])

    train, test = draw(60), draw(300)  # 40: the lognormal's steep top tail is missed
    y = f(train) + rng.normal(0.0, 0.01, (60, 2))
    emulator = fit_emulator(PRIORS, train, y, ("first", "second"), seed=1, restarts=2)
    truth = f(test) + rng.normal(0.0, 0.01, (300, 2))
    mean, var = emulator.predict(test)
    z = emulator.validate(test, truth)
    assert (within_two(z) >= 0.85).all()  # about 95% for an honest emulator
    assert (np.sqrt(var).mean(axis=0) < 0.1 * truth.std(axis=0)).all()  # and a sharp one
    assert (np.sqrt(((mean - truth) ** 2).mean(axis=0)) < 0.1 * truth.std(axis=0)).all()
    assert (within_two(emulator.loo()) >= 0.85).all()


def test_implausibility_is_the_standardised_distance_to_the_observation():
    mean, var = np.array([[1.0, 5.0]]), np.array([[0.5, 0.0]])
    z, obs_var = np.array([0.0, 2.0]), np.array([0.5, 4.0])
    assert implausibility(mean, var, z, obs_var, 0.0) == pytest.approx(np.array([[1.0, 1.5]]))
    # discrepancy 1: the observation variance counted twice, 3 / sqrt(8) for the second target
    assert implausibility(mean, var, z, obs_var, 1.0)[0, 1] == pytest.approx(3 / math.sqrt(8))
    both = np.array([[1.0, 1.5, 0.2], [4.0, 0.1, 0.3]])
    assert list(combined(both, "max")) == [1.5, 4.0]
    assert list(combined(both, "second")) == [1.0, 0.3]
    assert list(combined(both[:, :1], "second")) == [1.0, 4.0]  # one target: its own
    # a binomial target of 0 out of 5: z = 0, variance p(1 - p) / n with p = 0.5 / 6
    binomial = SimpleNamespace(likelihood="binomial", observed=0.0, n=5, sd=math.nan)
    z, var = observations((binomial,))
    assert z[0] == 0.0 and var[0] == pytest.approx((0.5 / 6) * (1 - 0.5 / 6) / 5)


def test_waves_keep_the_truth_rule_out_most_of_the_prior_and_repeat(tmp_path):
    lines: list[str] = []
    waves = history_match(toy(), tmp_path / "a", workers=1, say=lines.append)
    table = waves.table
    assert waves.nroy.plausible(np.array([[TRUTH["a"], TRUTH["b"]]]))[0]
    assert table["nroy_share"].iloc[-1] < 0.2 and table["nroy_share"].iloc[-1] < table["nroy_share"].iloc[0]
    assert list(table["wave"]) == list(range(1, len(table) + 1)) and len(lines) == len(table)
    assert table["runs"].iloc[-1] == 20 * len(table)
    assert (table["loo_within2_min"] >= 0.8).all()
    assert waves.nroy.plausible(waves.samples.to_numpy()).all()
    # every later wave's points were drawn from the region its predecessors kept
    stored = pd.read_parquet(tmp_path / "a" / "history_matching" / "wave-2.parquet")
    first = dataclasses.replace(waves.nroy, emulators=waves.nroy.emulators[:1])
    assert first.plausible(stored[["a", "b"]].to_numpy()).all()
    # the same seed: the same waves; a resumed folder reads its stored runs, simulating nothing
    again = history_match(toy(), tmp_path / "b", workers=1).table
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), table.drop(columns="seconds"))
    resumed = toy()
    resumed.simulate = None  # would fail if called
    stored_table = history_match(resumed, tmp_path / "a", workers=1).table
    pd.testing.assert_frame_equal(stored_table.drop(columns="seconds"), table.drop(columns="seconds"))
    # a stored wave whose points are not this design's is refused
    stored.loc[0, "a"] += 0.01
    stored.to_parquet(tmp_path / "a" / "history_matching" / "wave-2.parquet", index=False)
    with pytest.raises(HhsimError, match="holds other points than wave 2"):
        history_match(toy(), tmp_path / "a", workers=1)


def test_a_target_no_run_reaches_is_named_when_everything_is_ruled_out(tmp_path):
    problem = toy(waves=1, points=10, candidates=1000, rule="max")
    problem.fitted = (*problem.fitted[:2], SimpleNamespace(name="difference", likelihood="normal",
                                                           observed=50.0, sd=0.05, n=0))
    # worst first: 50 is about 950 sd beyond any run (10 runs: the others may miss too)
    with pytest.raises(HhsimError, match=r"ruled out every candidate .* no run came within the cutoff of "
                                         r"\d target\(s\), closest implausibility over the runs: "
                                         r"difference \(9\d\d\.\d\)") as err:
        history_match(problem, tmp_path, workers=1)
    assert "\n" not in str(err.value)


def test_the_restricted_prior_draws_only_plausible_points_and_is_zero_outside(tmp_path):
    problem = toy(waves=2)
    nroy = history_match(problem, tmp_path, workers=1).nroy
    prior = RestrictedPrior(problem, nroy)
    np.random.seed(1)  # noqa: NPY002 (pyabc's global state, which the prior draws from)
    draws = np.array([[p["p0"], p["p1"]] for p in (prior.rvs() for _ in range(300))])
    assert nroy.plausible(draws).all() and len(np.unique(draws[:, 0])) == 300
    again = []
    for _ in range(2):  # reproducible from the seed
        np.random.seed(2)  # noqa: NPY002
        again.append(RestrictedPrior(problem, nroy).rvs())
    assert again[0] == again[1]
    density = PRIORS[0].frozen.pdf(TRUTH["a"]) * PRIORS[1].frozen.pdf(TRUTH["b"])
    assert prior.pdf({"p0": TRUTH["a"], "p1": TRUTH["b"]}) == pytest.approx(density)
    assert prior.pdf({"p0": 0.1, "p1": 3.0}) == 0.0  # in the prior, ruled out
    assert prior.pdf({"p0": -1.0, "p1": 1.0}) == 0.0  # outside the prior
    # the prior's own draws: some implausible, which the restricted prior never gives
    rng = np.random.default_rng(0)
    raw = np.column_stack([d.ppf(rng.random(2000)) for d in PRIORS])
    assert not nroy.plausible(raw).all()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("wave = 3", "history_matching: unknown key 'wave' (fix: did you mean 'waves'?)"),
        ("waves = 0", "history_matching.waves: must be at least 1, got 0"),
        ("points = 'ten'", "history_matching.points: must be a int"),
        ("cutoff = 0", "history_matching.cutoff: must be above 0"),
        ("discrepancy = -0.1", "history_matching.discrepancy: must be at least 0.0"),
        ("rule = 'min'", "unknown rule 'min'"),
        ("candidates = 10", "history_matching.candidates: must be at least 1000"),
    ],
)
def test_bad_history_matching_settings_are_one_line_errors(tmp_path, table, message):
    cal = write(tmp_path, CALIBRATION + f"\n[history_matching]\n{table}\n", TARGET)
    with pytest.raises(HhsimError, match=re.escape(message)) as err:
        load_problem(cal)
    assert "\n" not in str(err.value)


def test_history_matching_settings_have_defaults_and_enter_the_digest(tmp_path):
    plain = load_problem(write(tmp_path))
    assert plain.history_matching is None
    matched = load_problem(write(tmp_path, CALIBRATION + "\n[history_matching]\nwaves = 2\n"))
    assert matched.history_matching == {**HM_DEFAULTS, "waves": 2}
    assert matched.digest() != plain.digest()


def test_calibrate_history_matches_then_runs_abc_from_the_nroy_region(tmp_path, capsys):
    small = CALIBRATION.replace("particles = 40", "particles = 10").replace("generations = 3",
                                                                             "generations = 1")
    hm = "\n[history_matching]\nwaves = 2\npoints = 8\ncandidates = 2000\nrestarts = 1\n"
    cal = write(tmp_path, small + hm)
    out = tmp_path / "o"
    args = ["calibrate", str(cal), "--out", str(out), "--single-core", "--quiet", "--tenants", "100",
            "--predictive", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "first history matching: up to 2 wave(s) of 8 runs" in printed
    assert "History matching wave 1: 8 runs" in printed
    table = pd.read_csv(out / "history_matching.csv")
    assert table["wave"].iloc[0] == 1 and (table["nroy_share"] < 1).all()
    nroy = pd.read_parquet(out / "nroy.parquet")
    posterior = pd.read_parquet(out / "posterior.parquet")
    rate = posterior.columns[-1]
    assert posterior[rate].between(nroy[rate].min() - 0.05, nroy[rate].max() + 0.05).all()
    for name in ("summary.csv", "fit.csv", "diagnostics.csv", "history_matching_targets.csv"):
        assert (out / name).is_file()
    # another calibration in a folder holding stored waves is refused
    (tmp_path / "cal.toml").write_text(small.replace("seed = 11", "seed = 12")
                                       + "\n[history_matching]\nwaves = 2\npoints = 8\n")
    assert main(args) == 2
