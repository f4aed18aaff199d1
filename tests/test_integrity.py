"""Results folders: damage is found, named in one line and repaired by --resume; lost
provenance is rebuilt; full and read-only disks are one-line errors; no file leaves its
folder; CSV cells never run as spreadsheet formulas."""

import csv
import errno
import itertools
import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hhsim
from hhsim.analysis.summary import summarise
from hhsim.analysis.tables import analyse
from hhsim.api import settings
from hhsim.batch.files import plain_name, write_csv
from hhsim.batch.points import run_points
from hhsim.batch.store import ResultsFolder
from hhsim.cli import main
from hhsim.core.errors import HhsimError
from hhsim.core.version import package_version
from hhsim.experiment.plan import compile_plan, load_experiment
from hhsim.model.record import table_names

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
END_FILES = ("runs.parquet", "summary.csv")


@pytest.fixture(scope="module")
def exp_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exp") / "integrity.toml"
    path.write_text(EXPERIMENT)
    return path


@pytest.fixture(scope="module")
def reference(exp_file, tmp_path_factory) -> hhsim.Results:
    """The undamaged batch (4 runs)."""
    return hhsim.run_experiment(exp_file, tmp_path_factory.mktemp("ref") / "out", workers=1)


@pytest.fixture
def copy(reference, tmp_path) -> Path:
    """A copy of the reference folder to damage."""
    return Path(shutil.copytree(reference.out, tmp_path / "out"))


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if any run is simulated."""
    def refuse(spec):
        raise AssertionError(f"simulated {spec.run_id}")
    monkeypatch.setattr("hhsim.batch.execution.simulate", refuse)


def cli(capsys, *args: str) -> tuple[int, str]:
    code = main([*args])
    return code, capsys.readouterr().err


def resume(capsys, exp_file: Path, out: Path, workers: str = "1") -> str:
    code, err = cli(capsys, "run", str(exp_file), "--out", str(out), "--workers", workers, "--quiet",
                    "--resume")
    assert code == 0, err
    return err


def assert_identical(out: Path, reference: hhsim.Results) -> None:
    for name in END_FILES:
        assert (out / name).read_bytes() == (reference.out / name).read_bytes(), name


def change_a_value(path: Path) -> None:
    table = pd.read_parquet(path)
    column = next(c for c in table.columns if pd.api.types.is_float_dtype(table[c]))
    table.loc[0, column] += 1.0
    table.to_parquet(path, index=False)


DAMAGE = {
    "changed": change_a_value,
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "deleted": Path.unlink,
}


@pytest.mark.parametrize(("kind", "table"), [("changed", "monthly"), ("changed", "runs"),
                                             ("truncated", "monthly"), ("empty", "groups"),
                                             ("deleted", "runs")])
def test_a_damaged_shard_is_refused_by_readers_in_one_line_naming_it(kind, table, copy, capsys):
    shard = copy / table / "baseline__r0001.parquet"
    DAMAGE[kind](shard)
    code, err = cli(capsys, "report", str(copy))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    problem = "is missing" if kind == "deleted" else "is damaged ("
    assert err.startswith(f"hhsim: error: {shard}: {problem}") and f"--out {copy} --resume" in err
    with pytest.raises(HhsimError, match=re.escape(str(shard))):
        hhsim.load_results(copy)
    assert not (copy / "report.html").exists()


def test_random_byte_flips_of_shards_are_always_detected(copy):
    rng = np.random.default_rng(2024)
    folder = ResultsFolder.open(copy)
    shards = sorted([*(copy / "runs").glob("*.parquet"), *(copy / "monthly").glob("*.parquet")])
    for _ in range(20):
        shard = shards[rng.integers(len(shards))]
        original = shard.read_bytes()
        flipped = bytearray(original)
        at = int(rng.integers(len(flipped)))
        flipped[at] ^= int(rng.integers(1, 256))
        shard.write_bytes(bytes(flipped))
        bad = folder.check_run(shard.stem)
        assert bad is not None and bad[0] == shard and bad[2] == "checksum mismatch", (shard, at)
        shard.write_bytes(original)
    assert all(folder.check_run(s.stem) is None for s in shards)


def test_resume_reruns_exactly_the_damaged_runs_to_identical_results(copy, exp_file, reference, capsys):
    """Two workers; each kind of damage in its own run, one run left whole."""
    DAMAGE["changed"](copy / "monthly" / "baseline__r0000.parquet")
    DAMAGE["truncated"](copy / "runs" / "dearer-gp__r0000.parquet")
    DAMAGE["empty"](copy / "groups" / "baseline__r0001.parquet")
    DAMAGE["deleted"](copy / "checks" / "dearer-gp__r0001.parquet")
    (copy / "runs" / "baseline__r0002.json").write_text("{not json")
    stray = [copy / ".summary.csv.4242.tmp", copy / "monthly" / ".baseline__r0000.parquet.4242.tmp"]
    for path in stray:
        path.write_bytes(b"half a file")
    before = {p: p.stat().st_mtime_ns for p in (copy / "runs").glob("*.parquet")}
    err = resume(capsys, exp_file, copy, workers="2")
    size = (reference.out / "runs" / "dearer-gp__r0000.parquet").stat().st_size
    assert err == ("hhsim: 5 damaged runs will be rerun: baseline__r0000 (monthly: checksum mismatch), "
                   "baseline__r0001 (groups: empty), baseline__r0002 (checksums: not a readable checksum "
                   f"record), dearer-gp__r0000 (runs: truncated to {size // 2:,} of {size:,} bytes), "
                   "dearer-gp__r0001 (checks: missing)\n")
    rerun = {p.stem for p, t in before.items() if not p.exists() or p.stat().st_mtime_ns != t}
    assert rerun == {"baseline__r0000", "baseline__r0001", "baseline__r0002", "dearer-gp__r0000",
                     "dearer-gp__r0001"}
    assert not any(p.exists() for p in stray)
    assert_identical(copy, reference)
    assert ResultsFolder.open(copy).finished().equals(reference.records)


def test_unfinished_folder_is_refused_by_readers(copy, capsys):
    (copy / "checksums.json").unlink()
    code, err = cli(capsys, "report", str(copy))
    assert code == 2 and err == (f"hhsim: error: {copy / 'checksums.json'}: is missing: the batch did not "
                                 "finish (fix: finish or repair it with "
                                 f"'hhsim run FILE --out {copy} --resume')\n")
    with pytest.raises(HhsimError, match="the batch did not finish"):
        hhsim.load_results(copy)


def test_lost_experiment_json_and_manifest_are_rebuilt_without_simulating(copy, exp_file, reference, capsys,
                                                                           no_simulation):
    (copy / "experiment.json").unlink()
    err = resume(capsys, exp_file, copy)
    assert f"hhsim: rebuilt experiment.json (missing) in {copy} from the given experiment" in err
    assert (copy / "experiment.json").read_bytes() == (reference.out / "experiment.json").read_bytes()
    (copy / "manifest.json").unlink()
    (copy / "plan.json").write_text((copy / "plan.json").read_text().replace("baseline", "baselinE"))
    err = resume(capsys, exp_file, copy)
    assert "rebuilt plan.json (checksum mismatch), manifest.json (missing)" in err
    assert_identical(copy, reference)
    res = hhsim.load_results(copy)
    assert res.manifest["runs"] == list(reference.records["run_id"]) and "rebuilt" in res.manifest


def test_lost_manifest_is_not_rebuilt_for_another_experiment(copy, tmp_path, capsys, no_simulation):
    (copy / "manifest.json").unlink()
    other = tmp_path / "other.toml"
    seed = ("seed = 11", "seed = 12")
    for change, problem in ((seed, "its experiment.json is a different experiment"),
                            (seed, "its checksums.json is of a different experiment"),
                            (seed, "run 'baseline__r0000' is of a different experiment"),
                            (("replications = 3", "replications = 2"),
                             "it holds run 'baseline__r0002', which the given experiment does not plan")):
        other.write_text(EXPERIMENT.replace(*change))
        code, err = cli(capsys, "run", str(other), "--out", str(copy), "--workers", "1", "--resume")
        assert code == 2 and err == (f"hhsim: error: {copy}: has no usable manifest.json (missing), and "
                                     f"{problem} (fix: resume with the experiment file and options that "
                                     "wrote it, or choose another --out)\n")
        for name in ("experiment.json", "checksums.json"):  # the next case's folder lacks one more file
            if (copy / name).exists():
                (copy / name).unlink()
                break
    assert not (copy / "manifest.json").exists()


def test_load_results_returns_the_tables_of_run_experiment(reference, capsys):
    loaded = hhsim.load_results(reference.out)
    assert capsys.readouterr().err == ""
    for name in ("records", "summary", "economics", "group_summary", "check_summary"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(reference, name), check_exact=True)
    assert loaded.analysis.keys() == reference.analysis.keys()
    for name, table in reference.analysis.items():
        pd.testing.assert_frame_equal(loaded.analysis[name], table, check_exact=True)
    pd.testing.assert_frame_equal(loaded.monthly(), reference.monthly())
    assert loaded.experiment.model_dump() == reference.experiment.model_dump()
    assert loaded.manifest == reference.manifest


def test_results_repr_is_a_few_lines_and_notebooks_get_the_headlines(reference):
    text = repr(reference)
    assert text.count("\n") <= 4 and len(text) < 400 and f"hhsim {package_version()}" in text
    assert "'integrity'" in text and "baseline (baseline), dearer-gp" in text and str(reference.out) in text
    page = reference._repr_html_()
    assert page.count("<th>baseline</th>") == page.count("<th>dearer-gp</th>") == 1
    s = reference.summary.set_index(["arm", "outcome"])
    for cell in (s.loc[("baseline", "nhs_cost"), "mean"], s.loc[("dearer-gp", "nhs_cost"), "difference"],
                 reference.economics.set_index("arm").loc["dearer-gp", "net_saving"]):
        assert f"<td>{cell:,.2f}</td>" in page


def test_folder_written_before_checksums_still_loads_and_resumes(copy, exp_file, reference, capsys):
    for sums in (copy / "runs").glob("*.json"):
        sums.unlink()
    (copy / "checksums.json").unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(
        {k: v for k, v in manifest.items() if k not in ("checksums", "files")}, indent=2))
    loaded = hhsim.load_results(copy)
    err = capsys.readouterr().err
    assert err == (f"hhsim: note: {copy} was written without checksums (by an earlier hhsim): its files "
                   "could not be verified\n")
    pd.testing.assert_frame_equal(loaded.summary, reference.summary, check_exact=True)
    (copy / "monthly" / "dearer-gp__r0000.parquet").write_bytes(b"")
    err = resume(capsys, exp_file, copy)
    assert "1 damaged run will be rerun: dearer-gp__r0000 (monthly: empty)" in err
    assert_identical(copy, reference)


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(exp_file, tmp_path, capsys, monkeypatch):
    real, calls = pd.DataFrame.to_parquet, itertools.count()

    def fills_the_disk(self, path, *args, **kwargs):
        if next(calls) == len(table_names()) + 1:  # the second run's first table (after a record)
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


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_read_only_folder_is_one_line_before_any_simulation(code, copy, exp_file, tmp_path, capsys,
                                                             monkeypatch, no_simulation):
    def refuse(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", refuse)
    fresh = tmp_path / "fresh"
    status, err = cli(capsys, "run", str(exp_file), "--out", str(fresh), "--workers", "1")
    assert status == 2 and err == (f"hhsim: error: {fresh / 'experiment.json'}: cannot be written "
                                   f"({os.strerror(code)}) (fix: choose a writable --out folder)\n")
    assert not list(fresh.rglob("*.*"))
    (copy / "runs" / "baseline__r0000.json").unlink()
    status, err = cli(capsys, "run", str(exp_file), "--out", str(copy), "--workers", "1", "--resume")
    assert status == 2 and err == (f"hhsim: error: {copy}: is not writable ({os.strerror(code)}) "
                                   "(fix: choose a writable --out folder)\n")
    assert (copy / "checksums.json").exists() and not list(copy.rglob("*.tmp"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_without_write_permission_is_refused(copy, exp_file, capsys, no_simulation):
    copy.chmod(0o555)
    try:
        status, err = cli(capsys, "run", str(exp_file), "--out", str(copy), "--workers", "1", "--resume")
    finally:
        copy.chmod(0o755)
    assert status == 2 and f"{copy}: is not writable (Permission denied)" in err


@pytest.fixture
def tmpfs(tmp_path):
    """A 64 KiB tmpfs (skipped where it cannot be mounted)."""
    where = tmp_path / "disk"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield where
    subprocess.run(["umount", str(where)], check=True)


def test_a_real_full_then_read_only_disk(tmpfs, exp_file, reference, capsys, monkeypatch):
    out = tmpfs / "out"
    code, err = cli(capsys, "run", str(exp_file), "--out", str(out), "--workers", "1", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "(No space left on device) (fix: free disk space" in err
    assert not list(out.rglob("*.tmp"))
    subprocess.run(["mount", "-o", "remount,size=8m", str(tmpfs)], check=True)
    resume(capsys, exp_file, out)
    assert_identical(out, reference)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    monkeypatch.setattr("hhsim.batch.execution.simulate", lambda spec: pytest.fail("simulated"))
    code, err = cli(capsys, "run", str(exp_file), "--out", str(out), "--workers", "1", "--resume")
    assert code == 2 and err == (f"hhsim: error: {out}: is not writable (Read-only file system) "
                                 "(fix: choose a writable --out folder)\n")


def test_sweep_records_are_checked_and_rerun(exp_file, tmp_path, capsys):
    exp = compile_plan(load_experiment(exp_file), replications=1).experiment
    points = [{"services.gp.unit_cost": 40.0}, {"services.gp.unit_cost": 50.0}]
    whole = run_points(compile_plan(exp), points, tmp_path / "sweep", workers=1)
    change_a_value(tmp_path / "sweep" / "runs" / "p00001__baseline__r0000.parquet")
    again = run_points(compile_plan(exp), points, tmp_path / "sweep", workers=1, resume=True)
    assert ("1 damaged run will be rerun: p00001__baseline__r0000 (runs: checksum mismatch)"
            in capsys.readouterr().err)
    pd.testing.assert_frame_equal(again.records, whole.records, check_exact=True)
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == [
        "checksums.json", "experiment.json", "manifest.json", "points.json", "runs", "runs.parquet"]


@pytest.mark.parametrize("name", ["a/b", "a\\b", "a\0b", "..", "a..b", ".hidden", "é" * 101, ""])
def test_names_that_could_leave_the_folder_are_refused(name, tmp_path):
    with pytest.raises(HhsimError, match="must stay directly inside its folder"):
        plain_name(name, "run", tmp_path)
    assert plain_name("baseline__r0000", "run", tmp_path) == "baseline__r0000"


def test_an_arm_whose_run_ids_leave_the_folder_is_refused_before_running(exp_file, tmp_path, no_simulation):
    exp = load_experiment(exp_file)
    arm = exp.arms[1].model_copy(update={"name": '=HYPERLINK("http://x")'})
    # refused by the arm-name rule when the experiment is validated again, else by the store
    with pytest.raises(HhsimError, match=r"not a usable arm name|refused run name"):
        hhsim.run_experiment(exp.model_copy(update={"arms": [exp.arms[0], arm]}), tmp_path / "out", workers=1)
    assert list(tmp_path.iterdir()) == []


def test_no_csv_cell_runs_as_a_formula(exp_file, tmp_path):
    cells = ['=HYPERLINK("http://x")', "+1", "-2.5", "-cmd", "@SUM(A1)", "\tx", "\rx", "ok"]
    table = pd.DataFrame({"arm": cells, "value": [-1.5, 2, -3, 4, 5, 6, 7, 8]})
    write_csv(tmp_path / "t.csv", table)
    assert [r[0] for r in csv.reader((tmp_path / "t.csv").open(newline=""))] == [
        "arm", '\'=HYPERLINK("http://x")', "+1", "-2.5", "'-cmd", "'@SUM(A1)", "'\tx", "'\rx", "ok"]
    assert table["arm"][0] == '=HYPERLINK("http://x")'
    # Arm names are validated (no formula can be one), so the tables of a real run are written
    # again here under a formula name, as a later change to validation could let one through.
    res = hhsim.run_experiment(compile_plan(load_experiment(exp_file), replications=2), tmp_path / "run",
                               workers=1)
    bad = '=HYPERLINK("x")'
    other = res.records["arm"].iloc[-1]
    records = res.records.assign(arm=res.records["arm"].replace(other, bad))
    monthly, groups = res.monthly(), res.groups()
    tables = {"summary": summarise(records, res.experiment.baseline),
              **analyse(records, monthly, groups,
                        replace(settings(compile_plan(res.experiment)), interventions=None))}
    out = tmp_path / "out"
    out.mkdir()
    for name, table in tables.items():
        write_csv(out / f"{name}.csv", table)
    written = sorted(out.glob("*.csv"))
    assert len(written) >= 8 and '\'=HYPERLINK(""x"")' in (out / "summary.csv").read_text()
    for path in written:
        for row in csv.reader(path.open(newline="")):
            for cell in row:
                if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    float(cell)  # a number; anything else starts with '


def test_every_csv_is_written_by_write_csv():
    for path in (ROOT / "hhsim").rglob("*.py"):
        if path.name != "files.py":
            assert ".to_csv(" not in path.read_text(), path
