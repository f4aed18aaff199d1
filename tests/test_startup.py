"""Issue 20: the command line starts light (what it imports, not how fast: benchmarks/startup.py
measures that), and calibration without pyabc (the 'calibrate' extra) is one line or --fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_calibration import TARGET, write

from hhsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"numpy", "pandas", "scipy", "mesa", "matplotlib", "pyarrow", "statsmodels", "SALib", "pyabc"}


def imported(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join({{m.split('.')[0] for m in sys.modules}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    return set(out.split())


def test_the_parser_imports_nothing_heavy():
    assert imported("import hhsim.cli\nhhsim.cli.parser()") & HEAVY == set()
    assert imported("import hhsim") & HEAVY == set()


def test_validating_an_experiment_imports_neither_the_model_runtime_nor_the_analysis():
    code = ("import contextlib, io, hhsim.cli\nwith contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert hhsim.cli.main(['validate', 'experiments/home-repairs.toml']) == 0")
    assert imported(code) & HEAVY == {"numpy", "scipy"}


@pytest.fixture
def no_pyabc(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyabc", None)  # 'import pyabc' raises ImportError


def test_abc_without_pyabc_is_one_line_and_writes_nothing(tmp_path, no_pyabc, capsys):
    out = tmp_path / "o"
    assert main(["calibrate", str(write(tmp_path)), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("hhsim: error: hhsim calibrate: ABC-SMC needs the 'pyabc' package "
                            "(fix: pip install 'hhsim[calibrate]', or use --fast)\n")
    assert not out.exists()


def test_fast_calibration_runs_without_pyabc(tmp_path, no_pyabc):
    cal = write(tmp_path, target=TARGET.replace("month = 12", "month = 6"))
    out = tmp_path / "o"
    assert main(["calibrate", str(cal), "--fast", "--out", str(out), "--quiet", "--workers", "1",
                 "--tenants", "150", "--months", "6", "--replications", "2", "--evaluations", "6",
                 "--predictive", "5"]) == 0
    assert (out / "posterior.parquet").is_file()
