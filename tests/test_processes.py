"""Local worker processes at the edges: the Python API from a plain script."""

import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT


def _env() -> dict[str, str]:
    """This environment, without limits on numerical libraries' threads (as a user's would be)."""
    limits = {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"}
    return {k: v for k, v in os.environ.items() if k not in limits}


def _readme_python() -> str:
    """The README's Python example (the code block that calls run_experiment), as written."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    code = next(b for b in blocks if "hhsim.run_experiment(" in b)
    assert 'run_experiment("experiments/damp-homes-what-if.toml", out="results/damp", workers=2)' in code
    return code


def _small_experiments(folder) -> None:
    """A copy of experiments/ in ``folder`` whose damp-homes experiment is small (6 runs)."""
    shutil.copytree(ROOT / "experiments", folder / "experiments")
    path = folder / "experiments" / "damp-homes-what-if.toml"
    text = path.read_text()
    for key, value in (("months", 6), ("replications", 2), ("tenants", 400)):
        text, n = re.subn(rf"^{key} = \d+$", f"{key} = {value}", text, flags=re.M)
        assert n == 1, key
    path.write_text(text)


@pytest.mark.parametrize("how", ["script", "session", "stdin"])
def test_readme_example_runs_from_a_script_a_session_and_stdin(tmp_path, how):
    _small_experiments(tmp_path)
    code = _readme_python() + "import os\nprint(len(res.records), len(os.listdir('/proc/self/task')))\n"
    (tmp_path / "t.py").write_text(code)
    command = {"script": ["t.py"], "session": ["-c", code], "stdin": ["-"]}[how]
    done = subprocess.run([sys.executable, *command], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=300, input=code if how == "stdin" else None)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    runs, threads = map(int, done.stdout.split()[-2:])
    assert runs == 6 and threads > 1  # every run once; the batch started with threads (BLAS) present
    assert len(pd.read_parquet(tmp_path / "results" / "damp" / "runs.parquet")) == 6
