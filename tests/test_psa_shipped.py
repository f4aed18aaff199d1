"""A calibration's posterior shipped in the package (hhsim ship-posterior) and drawn by
default by hhsim psa: the files written, the model's values set (in a copy of the default
model, never the package's file), status C only when the posterior sd is at most half the
prior's, whole rows drawn (the correlations kept), the [psa] distribution's precedence,
draws that do not depend on their number, --posterior and --no-posterior, and one-line
errors. The shipped posteriors' folder is a tmp folder (ship.posterior_folder is replaced):
the tests need no posterior in the package."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hhsim.studies.calibration.ship as ship
from hhsim.cli import main
from hhsim.core.distributions import parse_distribution
from hhsim.core.errors import HhsimError
from hhsim.core.parameters import iter_leaves, to_parameter
from hhsim.core.resources import data_path
from hhsim.core.version import MODEL_VERSION
from hhsim.experiment.plan import compile_plan, validate
from hhsim.experiment.psa_section import setup
from hhsim.studies.calibration.outputs import summary_table
from hhsim.studies.psa.draws import psa_draws
from hhsim.studies.psa.run import _digest, shipped_draws

from conftest import MODELS

BAD = "hospital.admissions.emergency.rr.health.bad"  # default 2.9
LTC = "parameters.gp_ltc_ratio"  # default 1.6
PEAK = "parameters.health_deprivation_peak"  # a named parameter, default 1.225
PRIORS = {BAD: {"dist": "lognormal", "median": 2.9, "sdlog": 0.2},
          LTC: {"dist": "lognormal", "median": 1.6, "sdlog": 0.2},
          PEAK: {"dist": "lognormal", "median": 1.19, "sdlog": 0.08}}


def calibration_folder(folder: Path, params: dict | None = None, n: int = 300, seed: int = 5) -> Path:
    """A finished ABC calibration's files: two generations; in the last, BAD and PEAK are
    narrow (sd well under half the prior's) and correlated with each other, LTC is as wide
    as its prior."""
    params = params or PRIORS
    rng = np.random.default_rng(seed)
    z1, z2, z3 = rng.normal(size=(3, n))
    cols = {BAD: 2.8 * np.exp(0.04 * z1), PEAK: 1.2 * np.exp(0.02 * (0.8 * z1 + 0.6 * z2)),
            LTC: 1.6 * np.exp(0.2 * z3)}
    last = pd.DataFrame({"generation": 1, "weight": rng.uniform(0.5, 1.5, n),
                         **{p: cols.get(p, np.full(n, 1.1)) for p in params}})
    first = last.assign(generation=0, weight=1.0, **{p: last[p] * 1.5 for p in params})
    post = pd.concat([first, last], ignore_index=True)
    folder.mkdir(parents=True, exist_ok=True)
    post.to_parquet(folder / "posterior.parquet", index=False)
    priors = [parse_distribution(spec, p) for p, spec in params.items()]
    summary_table(list(params), priors, post).to_csv(folder / "summary.csv", index=False)
    (folder / "calibration.json").write_text(json.dumps({
        "name": "synthetic", "file": "calibration/synthetic.toml", "digest": "abc123", "method": "abc-smc",
        "model_version": MODEL_VERSION, "parameters": params}))
    return folder


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A synthetic calibration shipped into a tmp folder (the package's posterior folder for
    this test) with a copy of the default model; returns (result, model copy, folder)."""
    model = tmp_path / "default_model.toml"
    shutil.copy(data_path("default_model.toml"), model)
    folder = tmp_path / "posterior"
    monkeypatch.setattr(ship, "posterior_folder", lambda: folder)
    res = ship.ship_posterior(calibration_folder(tmp_path / "calibration"), model=model, folder=folder,
                              today="2026-12-06")
    return res, model, folder


def default_experiment(psa: dict | None = None, **parameters) -> dict:
    data = {"experiment": {"name": "tiny", "months": 2, "replications": 1, "seed": 11},
            "population": {"tenants": 20}, "arms": [{"name": "baseline"}], "parameters": parameters}
    if psa is not None:
        data["psa"] = psa
    return data


def test_shipping_writes_csv_and_toml_and_sets_the_medians_in_a_copy_of_the_model(shipped, tmp_path):
    package_model = data_path("default_model.toml").read_bytes()
    res, model, folder = shipped
    assert data_path("default_model.toml").read_bytes() == package_model  # never the package's file
    # The CSV: the final generation's rows, parameters and weight, read back exactly.
    post = pd.read_parquet(tmp_path / "calibration" / "posterior.parquet")
    last = post[post["generation"] == 1].reset_index(drop=True)
    csv = pd.read_csv(res.csv)
    assert list(csv.columns) == [BAD, LTC, PEAK, "weight"]
    assert len(csv) == 300
    for p in (BAD, LTC, PEAK):
        assert (csv[p].to_numpy() == last[p].to_numpy()).all()  # 17 digits round-trip
    assert np.isclose(csv["weight"].sum(), 1)
    meta = tomllib.loads(res.toml.read_text())
    assert meta["posterior"]["samples"] == 300
    assert meta["posterior"]["calibration_digest"] == "abc123"
    assert meta["posterior"]["model_version"] == MODEL_VERSION
    assert meta["posterior"]["shipped"] == "2026-12-06"
    assert len(meta["posterior"]["csv_sha256"]) == 64
    info = meta["parameters"]
    assert info[BAD]["calibrated"] and info[PEAK]["calibrated"] and not info[LTC]["calibrated"]
    assert info[BAD]["ratio"] <= 0.5 < info[LTC]["ratio"]
    assert info[BAD]["prior"].startswith("lognormal")
    # The model copy: values at the weighted medians; C only when the sd was halved.
    leaves = dict(iter_leaves(tomllib.loads(model.read_text())))
    for p in (BAD, LTC, PEAK):
        assert leaves[p]["value"] == pytest.approx(info[p]["posterior_median"], rel=1e-12)
        to_parameter(p, leaves[p])  # still a valid parameter
    assert leaves[BAD]["status"] == leaves[PEAK]["status"] == "C"
    original = dict(iter_leaves(tomllib.loads(data_path("default_model.toml").read_text())))
    assert leaves[LTC]["status"] == original[LTC]["status"]  # kept
    assert leaves[BAD]["source"].startswith("Posterior median of calibration 'synthetic' (calibration/"
                                            "synthetic.toml, 300 weighted samples")
    assert "posterior sd" in leaves[BAD]["source"] and "prior sd" in leaves[BAD]["source"]
    assert "Before calibration (status D): Mu et al. 2024" in leaves[BAD]["source"]
    assert "did not halve the prior sd" in leaves[LTC]["source"]
    # Comments and layout kept: only the three parameters' lines changed.
    old, new = data_path("default_model.toml").read_text().splitlines(), model.read_text().splitlines()
    assert len(old) == len(new)
    changed = [a for a, b in zip(old, new, strict=True) if a != b]
    starts = ("rr.", "gp_ltc_ratio", "health_deprivation_peak")
    assert len(changed) == 3 and all(line.startswith(starts) for line in changed)
    # Shipping again (a new calibration) replaces, never piles up, what the source says.
    again = ship.ship_posterior(tmp_path / "calibration", model=model, folder=folder, today="2026-12-07")
    leaves2 = dict(iter_leaves(tomllib.loads(model.read_text())))
    assert leaves2[BAD]["source"].count("Posterior median") == 1
    assert leaves2[LTC]["source"].count("did not halve") == 1
    assert again.csv == res.csv


def test_a_status_c_parameter_reads_and_an_unknown_status_does_not():
    node = {"value": 1.2, "unit": "rate ratio", "status": "C", "source": "Posterior median of ..."}
    assert to_parameter("x", node).status == "C"
    with pytest.raises(HhsimError, match="unknown status"):
        to_parameter("x", {**node, "status": "Q"})


def test_psa_draws_whole_rows_of_the_shipped_posterior(shipped):
    res, _, _ = shipped
    exp = validate(default_experiment())  # no [psa]: the shipped posterior alone
    ships, notes = shipped_draws(exp)
    assert notes == [] and [s.name for s in ships] == ["synthetic"]
    st = setup(exp.model_copy(update={"psa": None}), ships[0].parameters)
    draws = psa_draws(st, 4000, 11, [s.rows for s in ships])
    sample = pd.read_csv(res.csv)
    w = sample["weight"].to_numpy()
    cov = np.cov(sample[[BAD, PEAK]].to_numpy().T, aweights=w)
    want = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    got = np.corrcoef(draws[BAD], draws[PEAK])[0, 1]
    assert want > 0.6
    assert got == pytest.approx(want, abs=0.05)  # MC sd of a correlation of 4000 draws ~ 0.006
    # every draw is a row of the sample (whole rows, never mixed)
    rows = set(map(tuple, sample[[BAD, LTC, PEAK]].to_numpy()))
    assert all(tuple(r) in rows for r in draws[[BAD, LTC, PEAK]].to_numpy())
    # draw i does not depend on how many draws are made
    ten, hundred = psa_draws(st, 10, 11, [ships[0].rows]), psa_draws(st, 100, 11, [ships[0].rows])
    pd.testing.assert_frame_equal(ten, hundred.iloc[:10])


def test_a_psa_distribution_takes_precedence_and_says_so(shipped):
    exp = validate(default_experiment({"draws": 50, "parameters": {LTC: [1.0, 1.1]}}))
    ships, notes = shipped_draws(exp)
    assert notes == [f"the [psa] distributions of {LTC} take precedence over the shipped posterior "
                     "'synthetic'"]
    assert ships[0].parameters == (BAD, PEAK)
    st = setup(exp, ships[0].parameters)
    draws = psa_draws(st, 50, 11, [s.rows for s in ships])
    assert draws[LTC].between(1.0, 1.1).all() and draws[LTC].nunique() == 50
    # a value the experiment sets in [parameters] or an arm sets is kept, not drawn
    exp = validate(default_experiment({"draws": 5, "parameters": {LTC: [1.0, 1.1]}}, **{BAD: 3.0}))
    ships, notes = shipped_draws(exp)
    assert ships[0].parameters == (PEAK,)
    assert notes[1] == (f"the experiment's own values of {BAD} (in [parameters] or an arm) are kept, not "
                        "drawn from the shipped posterior 'synthetic'")
    arm = default_experiment()
    arm["arms"].append({"name": "other", "parameters": {PEAK: 1.3}})
    ships, notes = shipped_draws(validate(arm))
    assert ships[0].parameters == (BAD, LTC) and PEAK in notes[0]


def test_a_posterior_of_another_model_version_is_drawn_with_a_note(shipped):
    res, _, _ = shipped
    old = str(int(MODEL_VERSION) - 1)
    res.toml.write_text(res.toml.read_text().replace(f'model_version = "{MODEL_VERSION}"',
                                                     f'model_version = "{old}"'))
    ships, notes = shipped_draws(validate(default_experiment()), plan_version=MODEL_VERSION)
    assert len(ships) == 1
    assert notes == [f"the shipped posterior 'synthetic' was calibrated at model version {old}, and the "
                     f"model is now version {MODEL_VERSION}: calibrate again and ship the new posterior"]


def test_an_experiment_with_its_own_model_draws_no_shipped_posterior(shipped, tmp_path):
    model = tmp_path / "own.toml"
    shutil.copy(MODELS / "linear_additive.toml", model)
    exp = validate({**default_experiment({"parameters": {"state_costs.a.cost": [1, 2]}}),
                    "experiment": {"name": "own", "model": str(model), "months": 2}})
    ships, notes = shipped_draws(exp)
    assert ships == [] and len(notes) == 1 and "uses its own model file" in notes[0]


def test_without_a_shipped_posterior_nothing_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(ship, "posterior_folder", lambda: tmp_path / "none")
    exp = validate(default_experiment())
    assert shipped_draws(exp) == ([], [])
    path = tmp_path / "exp.toml"
    path.write_text('[experiment]\nname = "x"\nmonths = 2\n[population]\ntenants = 20\n[[arms]]\n'
                    'name = "baseline"\n')
    assert main(["psa", str(path), "--out", str(tmp_path / "out"), "--quiet", "--workers", "1"]) == 2


def test_the_psa_digest_follows_the_shipped_posterior(shipped):
    res, _, folder = shipped
    plan = compile_plan(validate(default_experiment()))
    before = _digest(plan, None, ship.shipped_posteriors(folder))
    assert before != _digest(plan, None, [])
    sample = pd.read_csv(res.csv)
    sample.loc[0, BAD] += 0.001
    sample.to_csv(res.csv, index=False, float_format="%.17g")
    assert _digest(plan, None, ship.shipped_posteriors(folder)) != before


def test_the_cli_draws_the_shipped_posterior_by_default(shipped, tmp_path, capsys):
    res, _, _ = shipped
    path = tmp_path / "exp.toml"
    path.write_text(f"""
[experiment]
name = "tiny"
months = 2
replications = 1
[population]
tenants = 20
[[arms]]
name = "baseline"
[psa]
draws = 3
parameters = {{ "{LTC}" = [1.0, 1.1] }}
""")
    assert main(["psa", str(path), "--out", str(tmp_path / "a"), "--quiet", "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    assert f"hhsim: the [psa] distributions of {LTC} take precedence over the shipped posterior " \
           "'synthetic'" in err
    assert f"Drawn from the shipped posterior 'synthetic' (whole rows, weighted): {BAD}, {PEAK}." in out
    summary = json.loads((tmp_path / "a" / "psa.json").read_text())
    assert summary["shipped_posterior"][0]["sha256"] == ship.read_shipped(res.csv).sha256
    params = pd.read_parquet(tmp_path / "a" / "parameters.parquet")
    assert {BAD, LTC, PEAK} <= set(params.columns)
    # --no-posterior: only [psa]
    assert main(["psa", str(path), "--out", str(tmp_path / "b"), "--quiet", "--workers", "1",
                 "--no-posterior"]) == 0
    assert set(pd.read_parquet(tmp_path / "b" / "parameters.parquet").columns) == {LTC, "point"}
    assert json.loads((tmp_path / "b" / "psa.json").read_text())["shipped_posterior"] == []
    # --posterior: an explicit file replaces the shipped one
    explicit = tmp_path / "explicit.parquet"
    pd.DataFrame({BAD: [2.0, 2.5], "weight": [0.0, 1.0]}).to_parquet(explicit)
    capsys.readouterr()
    assert main(["psa", str(path), "--out", str(tmp_path / "c"), "--quiet", "--workers", "1",
                 "--posterior", str(explicit)]) == 0
    params = pd.read_parquet(tmp_path / "c" / "parameters.parquet")
    assert (params[BAD] == 2.5).all() and PEAK not in params
    assert "shipped posterior" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse's one-line error
        main(["psa", str(path), "--posterior", str(explicit), "--no-posterior"])
    assert exit_.value.code == 2


@pytest.mark.parametrize("case, expected", [
    ("no-posterior", r"has no posterior\.parquet \(fix: give the output folder of a finished"),
    ("not-in-model", r"calibration: services\.gp\.rr\.nothing: unknown parameter"),
    ("world", r"world\.tenure\.x: is a world parameter, not one of the model file"),
    ("table", r"has shape \(\), expected \(8,\)"),
    ("degenerate", r"has an effective sample size of 4\.0 in its final generation, too few \(under 50\)"),
])
def test_bad_calibration_folders_are_one_line_errors(tmp_path, capsys, case, expected):
    model = tmp_path / "model.toml"
    shutil.copy(data_path("default_model.toml"), model)
    before = model.read_bytes()
    folder = tmp_path / "calibration"
    if case == "no-posterior":
        folder.mkdir()
    elif case == "degenerate":  # four particles carry all the weight (Kish ESS 4)
        calibration_folder(folder)
        post = pd.read_parquet(folder / "posterior.parquet")
        last = post["generation"] == post["generation"].max()
        post.loc[last, "weight"] = 0.0
        post.loc[post.index[last][:4], "weight"] = 1.0
        post.to_parquet(folder / "posterior.parquet", index=False)
    else:
        name = {"not-in-model": "services.gp.rr.nothing", "world": "world.tenure.x",
                "table": "hospital.admissions.emergency.los_mean"}[case]
        prior = {"dist": "lognormal", "median": 1.1, "sdlog": 0.1}
        calibration_folder(folder, {BAD: PRIORS[BAD], name: prior})
    code = main(["ship-posterior", str(folder), "--model", str(model), "--into", str(tmp_path / "into")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(expected, err), err
    assert model.read_bytes() == before and not (tmp_path / "into").exists()


def test_the_package_carries_the_shipped_posteriors():
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["hhsim"]
    assert {"data/posterior/*.csv", "data/posterior/*.toml"} <= set(data)
    assert any(d.startswith("tomlkit") for d in pyproject["project"]["dependencies"])
