"""Issue 20: the command line starts light (what it imports, not how fast: benchmarks/startup.py
measures that)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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

