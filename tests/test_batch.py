"""Batches: identical results on one core, many cores or a Dask cluster; nothing lost when a
batch is killed; refusals that protect existing results."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from distributed import LocalCluster

from hhsim.api import run_experiment
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import validate

SMALL = {
    "experiment": {"name": "batch-test", "seed": 5, "months": 12, "replications": 3},
    "population": {"tenants": 800},
    "arms": [{"name": "baseline"}, {"name": "dearer-gp", "parameters": {"services.gp.unit_cost": 60.0}}],
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The batch run in this process, one run after another."""
    return run_experiment(validate(SMALL), tmp_path_factory.mktemp("ref") / "out", workers=1).records


def test_process_pool_gives_identical_records(reference, tmp_path):
    pooled = run_experiment(validate(SMALL), tmp_path / "out", workers=2).records
    pd.testing.assert_frame_equal(pooled, reference, check_exact=True)
    assert len(reference) == 6 and reference["run_id"].is_unique


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_records(reference, tmp_path):
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        on_dask = run_experiment(validate(SMALL), tmp_path / "out",
                                 scheduler=cluster.scheduler_address).records
    pd.testing.assert_frame_equal(on_dask, reference, check_exact=True)


def test_identical_arm_differs_from_baseline_by_exactly_zero(tmp_path):
    twin = {**SMALL, "arms": [{"name": "baseline"}, {"name": "twin"}]}
    res = run_experiment(validate(twin), tmp_path / "out", workers=1)
    diffs = res.summary.loc[res.summary["arm"] == "twin", "difference"]
    assert (diffs == 0).all() and len(diffs) > 10


def test_refuses_non_empty_folder_and_foreign_resume(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(HhsimError, match="--resume"):
        run_experiment(validate(SMALL), out, workers=1)
    done = tmp_path / "done"
    run_experiment(validate(SMALL), done, workers=1)
    other = {**SMALL, "experiment": {**SMALL["experiment"], "seed": 6}}
    with pytest.raises(HhsimError, match="different experiment"):
        run_experiment(validate(other), done, workers=1, resume=True)


BATCH_FILE = """
[experiment]
name = "kill-test"
seed = 9
months = 24
replications = 8

[population]
tenants = 1500

[[arms]]
name = "baseline"

[[arms]]
name = "what-if"
parameters = { "services.ae.unit_cost" = 300.0 }
"""


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hhsim", "run", *args, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_runs(out, n: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + 240
    while time.time() < deadline:
        runs = out / "runs"
        if runs.is_dir() and len(list(runs.glob("*.parquet"))) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"batch ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("batch made no progress")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_batch_resumes_to_identical_results(tmp_path, sig):
    exp = tmp_path / "exp.toml"
    exp.write_text(BATCH_FILE)
    out = tmp_path / "out"
    proc = _start([str(exp), "--out", str(out), "--workers", "2"])
    _wait_for_runs(out, 3, proc)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=60)
    stored = len(list((out / "runs").glob("*.parquet")))
    err = proc.stderr.read()
    if sig == signal.SIGINT:
        assert proc.returncode == 130, f"exit {proc.returncode} with {stored} runs stored: {err!r}"
        assert "--resume" in err
    assert 3 <= stored < 16
    resumed = _start([str(exp), "--out", str(out), "--workers", "2", "--resume"])
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    whole = run_experiment(exp, tmp_path / "whole", workers=1).records
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), whole, check_exact=True)


@pytest.mark.slow
def test_unreachable_scheduler_is_a_one_line_error_and_writes_nothing(tmp_path):
    with pytest.raises(HhsimError, match="cannot reach"):
        run_experiment(validate(SMALL), tmp_path / "out", scheduler="tcp://127.0.0.1:9")
    assert not (tmp_path / "out").exists()
