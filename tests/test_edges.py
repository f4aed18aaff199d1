"""Hostile or broken input at the command line: one line on stderr, exit code 2, nothing
written; and ``hhsim validate`` for every kind of file hhsim reads (issue 14)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from hhsim.cli import main
from hhsim.core.resources import data_path

from conftest import ROOT

EXPERIMENT = """
[experiment]
name = "edge"
seed = 1
months = 2
replications = 1

[population]
tenants = 30

[[arms]]
name = "baseline"
"""


@pytest.fixture(autouse=True)
def _no_hang():
    """Every case must answer within 20 s: a hang (a device, a pipe) fails instead."""
    def stop(*_):
        raise TimeoutError("hhsim hung")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def refused(capsys, argv: list[str], *expected: str) -> str:
    """Run ``hhsim argv`` in-process; it must exit 2 with one line holding ``expected``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hhsim: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    return err


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


@pytest.mark.parametrize("name", ["../../escaped", "/some/dir/x", "a/b", "a\\b", "x" * 300, "a\0b",
                                  '=HYPERLINK("http://x")', "+1", "@sum", "-x", ".hidden", "..", "arm ",
                                  "", "tab\there"])
def test_an_arm_name_that_could_escape_or_inject_is_refused(tmp_path, capsys, name):
    box = tmp_path / "box"
    box.mkdir()
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\0", "\\u0000").replace("\t", "\\t")
    f = tmp_path / "e.toml"
    f.write_text(EXPERIMENT + f'\n[[arms]]\nname = "{escaped}"\n')
    before = files_under(tmp_path)
    refused(capsys, ["run", str(f), "--out", str(box / "o"), "--quiet", "--workers", "1"], "arms.1.name",
            "is not a usable arm name")
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("name", ["what if", "what-if.2", "Arm_1", "9"])
def test_plain_arm_names_run(tmp_path, capsys, name):
    f = tmp_path / "e.toml"
    f.write_text(EXPERIMENT + f'\n[[arms]]\nname = "{name}"\n')
    assert main(["run", str(f), "--out", str(tmp_path / "o"), "--quiet", "--workers", "1"]) == 0
    assert {p.name for p in (tmp_path / "o" / "runs").glob("*.parquet")} == {"baseline__r0000.parquet",
                                                                             f"{name}__r0000.parquet"}
    capsys.readouterr()


@pytest.mark.parametrize("edit, where", [
    ('thresholds = [nan]', "experiment.thresholds.0"),
    ('thresholds = [20000, inf]', "experiment.thresholds.1"),
    ('discount = { costs = nan, effects = 0.035 }', "experiment.discount.costs"),
    ('seed = 9223372036854775808', "experiment.seed"),
    ('replications = 1000000000', "experiment.replications"),
])
def test_numbers_that_make_results_meaningless_are_refused(tmp_path, capsys, edit, where):
    f = tmp_path / "e.toml"
    key = edit.split(" =")[0]
    text = "\n".join(line for line in EXPERIMENT.splitlines() if not line.startswith(key + " ="))
    f.write_text(text.replace("[experiment]", f"[experiment]\n{edit}"))
    refused(capsys, ["validate", str(f)], where)
    refused(capsys, ["run", str(f), "--out", str(tmp_path / "o"), "--quiet"], where)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["0", "1e30", "2.5", "nan"])
def test_a_world_estate_size_that_cannot_build_estates_is_refused(tmp_path, capsys, value):
    f = tmp_path / "e.toml"
    f.write_text(EXPERIMENT.replace("[[arms]]", f'[parameters]\n"world.estate_size" = {value}\n\n[[arms]]'))
    refused(capsys, ["validate", str(f)], "world.estate_size")


def test_more_runs_than_a_batch_holds_is_refused(tmp_path, capsys):
    f = tmp_path / "e.toml"
    f.write_text(EXPERIMENT + '\n[[arms]]\nname = "b"\n')
    refused(capsys, ["run", str(f), "--replications", "600000", "--out", str(tmp_path / "o")],
            "1,200,000 runs, more than 1,000,000")
    assert not (tmp_path / "o").exists()


def test_deep_nesting_is_refused(tmp_path, capsys):
    f = tmp_path / "e.toml"
    f.write_text("x = " + "[" * 500 + "]" * 500 + "\n")
    refused(capsys, ["validate", str(f)], "nests tables or arrays more than 32 deep")


@pytest.mark.parametrize("key, what", [("stock", "stock file"), ("profile", "profile file")])
@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "fifo", "folder"])
def test_a_device_pipe_or_folder_is_refused_at_once(tmp_path, capsys, key, what, target):
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    elif target == "folder":
        target = str(tmp_path)
    f = tmp_path / "e.toml"
    section = f'[population]\n{key} = "{target}"'
    text = EXPERIMENT.replace("[population]\ntenants = 30", section)
    f.write_text(text)
    err = refused(capsys, ["validate", str(f)], what)
    assert "not found" not in err


def test_a_device_or_pipe_as_model_or_experiment_is_refused(tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo")
    f = tmp_path / "e.toml"
    f.write_text(EXPERIMENT.replace("seed = 1", 'seed = 1\nmodel = "/dev/zero"'))
    refused(capsys, ["validate", str(f)], "/dev/zero", "not a regular file", "model file")
    refused(capsys, ["validate", str(tmp_path / "fifo")], "not a regular file")
    refused(capsys, ["run", "/dev/urandom", "--out", str(tmp_path / "o")], "not a regular file")


def test_paths_the_system_cannot_hold_are_refused(tmp_path, capsys):
    f = tmp_path / "e.toml"
    f.write_text(EXPERIMENT)
    long = "x" * 5000
    stock = EXPERIMENT.replace("[population]\ntenants = 30", f'[population]\nstock = "{long}.csv"')
    (tmp_path / "s.toml").write_text(stock)
    refused(capsys, ["validate", str(tmp_path / "s.toml")], "population.stock", "5,004 bytes long")
    refused(capsys, ["run", str(f), "--out", str(tmp_path / ("o" * 300)), "--quiet"], "--out", "300 bytes")
    refused(capsys, ["run", str(f), "--out", str(tmp_path / "a\0b"), "--quiet"], "--out", "NUL")
    refused(capsys, ["validate", str(tmp_path / "a\0b.toml")], "NUL")
    refused(capsys, ["report", long], "4,096")
    assert files_under(tmp_path) == {f, tmp_path / "s.toml"}


def test_an_intervention_without_a_type_says_so(tmp_path, capsys):
    f = tmp_path / "e.toml"
    f.write_text(EXPERIMENT + '\n[[arms]]\nname = "b"\n[[arms.interventions]]\nname = "x"\n')
    refused(capsys, ["validate", str(f)], "arms.b.interventions[0]: has no type", "personalised_support")


# -- hhsim validate: every kind of file -----------------------------------------------------------
@pytest.mark.parametrize("path, kind", [
    *[(p, "calibration file") for p in sorted((ROOT / "calibration").glob("*.toml"))
      if p.name != "validation-notes.toml"],
    (ROOT / "calibration" / "validation-notes.toml", "validation notes file"),
    *[(p, "target file") for p in sorted((ROOT / "calibration" / "targets").glob("*.toml"))],
    *[(p, "experiment file") for p in sorted((ROOT / "calibration" / "experiments").glob("*.toml"))],
    (ROOT / "experiments" / "models" / "chancellor-1997-hiv.toml", "model file"),
    (data_path("default_model.toml"), "model file"),
    (ROOT / "experiments" / "example-stock.csv", "stock file"),
    (ROOT / "experiments" / "example-profile.csv", "profile file"),
    (ROOT / "experiments" / "home-repairs.toml", "experiment file"),
], ids=lambda x: x.name if isinstance(x, Path) else x)
def test_validate_recognises_every_shipped_file(capsys, path, kind):
    assert main(["validate", str(path)]) == 0
    assert f"valid {kind}" in capsys.readouterr().out


@pytest.mark.parametrize("name, text, problem", [
    ("profile.csv", "age_band,imd_decile,tenure,count\n" + "16-24,99,social_rented,5\n" * 25,
     "column imd_decile: '99'"),
    ("stock.csv", "age,tenure,imd_decile\n" + "x,social,2\n" * 25, "column age: 'x'"),
])
def test_validate_prints_every_problem_of_a_csv_file(tmp_path, capsys, name, text, problem):
    f = tmp_path / name
    f.write_text(text)
    assert main(["validate", str(f)]) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1
    assert "25 problems" in captured.err
    assert f"and 22 more (hhsim validate {f} lists them all)" in captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 25 and all(problem in line for line in lines)


@pytest.mark.parametrize("argv, expected", [
    (["run", "--tenants", "abc"], "argument --tenants: expected a whole number"),
    (["run", "--replications", "0"], "must be at least 1"),
    (["frob"], "invalid choice: 'frob'"),
    ([], "arguments are required: command"),
    (["break-even", "x.toml"], "required"),
])
def test_command_line_mistakes_are_one_line(capsys, argv, expected):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hhsim: error: ") and len(err.strip().splitlines()) == 1 and expected in err
    assert "--help" in err
