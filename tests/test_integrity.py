"""Writing files: full and read-only disks are one-line errors that leave no temporary file;
no file name leaves its folder; CSV cells never run as spreadsheet formulas."""

import csv
import errno
import itertools
import re
from pathlib import Path

import pandas as pd
import pytest

import hhsim
from hhsim.batch.files import plain_name, write_csv
from hhsim.cli import main
from hhsim.errors import HhsimError
from hhsim.experiment import load_experiment

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = """
[experiment]
name = "integrity"
seed = 11
months = 3
replications = 3

[population]
tenants = 200

[[arms]]
name = "baseline"

[[arms]]
name = "dearer-gp"
parameters = { "services.gp.unit_cost" = 60.0 }
"""

@pytest.fixture(scope="module")
def exp_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exp") / "integrity.toml"
    path.write_text(EXPERIMENT)
    return path


def cli(capsys, *args: str) -> tuple[int, str]:
    code = main([*args])
    return code, capsys.readouterr().err



def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(exp_file, tmp_path, capsys, monkeypatch):
    real, calls = pd.DataFrame.to_parquet, itertools.count()

    def fills_the_disk(self, path, *args, **kwargs):
        if next(calls) == 8:  # the second run's first table
            Path(path).write_bytes(b"PAR1 half")
            raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fills_the_disk)
    out = tmp_path / "out"
    code, err = cli(capsys, "run", str(exp_file), "--out", str(out), "--workers", "1", "--quiet")
    named = re.fullmatch(rf"hhsim: error: ({re.escape(str(out / 'monthly'))}/\S+\.parquet): cannot be "
                         r"written \(No space left on device\) \(fix: free disk space, then run the same "
                         r"command with --resume\)\n", err)
    assert code == 2 and named and not Path(named[1]).exists()
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("name", ["a/b", "a\\b", "a\0b", "..", "a..b", ".hidden", "é" * 101, ""])
def test_names_that_could_leave_the_folder_are_refused(name, tmp_path):
    with pytest.raises(HhsimError, match="must stay directly inside its folder"):
        plain_name(name, "run", tmp_path)
    assert plain_name("baseline__r0000", "run", tmp_path) == "baseline__r0000"


def test_no_csv_cell_runs_as_a_formula(exp_file, tmp_path):
    cells = ['=HYPERLINK("http://x")', "+1", "-2.5", "-cmd", "@SUM(A1)", "\tx", "\rx", "ok"]
    table = pd.DataFrame({"arm": cells, "value": [-1.5, 2, -3, 4, 5, 6, 7, 8]})
    write_csv(tmp_path / "t.csv", table)
    assert [r[0] for r in csv.reader((tmp_path / "t.csv").open(newline=""))] == [
        "arm", '\'=HYPERLINK("http://x")', "+1", "-2.5", "'-cmd", "'@SUM(A1)", "'\tx", "'\rx", "ok"]
    assert table["arm"][0] == '=HYPERLINK("http://x")'
    exp = load_experiment(exp_file).with_options(replications=1)
    arm = exp.arms[1].model_copy(update={"name": '=HYPERLINK("x")'})
    out = tmp_path / "out"
    hhsim.run_experiment(exp.model_copy(update={"arms": [exp.arms[0], arm]}), out, workers=1)
    written = sorted(out.glob("*.csv"))
    assert len(written) >= 10 and '\'=HYPERLINK(""x"")' in (out / "summary.csv").read_text()
    for path in written:
        for row in csv.reader(path.open(newline="")):
            for cell in row:
                if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    float(cell)  # a number; anything else starts with '


def test_every_csv_is_written_by_write_csv():
    for path in (ROOT / "hhsim").rglob("*.py"):
        if path.name not in ("files.py", "cli.py"):
            assert ".to_csv(" not in path.read_text(), path
