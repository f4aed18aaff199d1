"""Local worker processes at the edges: the Python API from a plain script, a killed parent,
a killed worker, a bad scheduler address and Ctrl-C while a batch starts."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest

from hhsim.api import run_experiment
from hhsim.cli import main
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import compile_plan, validate

from conftest import ROOT

# Batches whose runs take a few seconds each: workers are busy when a test kills something.
LONG_RUNS = """
[experiment]
name = "process-test"
seed = 3
months = 24
replications = 4

[population]
tenants = 1500

[[arms]]
name = "baseline"

[[arms]]
name = "what-if"
parameters = { "services.ae.unit_cost" = 300.0 }
"""


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


@pytest.mark.slow
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


def _start(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=_env(), **kw)


def _workers(parent: psutil.Process, n: int, proc: subprocess.Popen) -> list[psutil.Process]:
    """The batch's ``n`` worker processes, once they have all started."""
    deadline = time.time() + 60
    while time.time() < deadline:
        found = [p for p in parent.children(recursive=True) if _alive(p) and p.name() == "hhsim-worker"]
        if len(found) == n:
            return found
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    raise AssertionError("the workers did not start")


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE  # a zombie has ended (it waits to be reaped)
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_workers_end_within_two_seconds_of_a_killed_parent(tmp_path):
    (tmp_path / "exp.toml").write_text(LONG_RUNS)
    for trial in range(10):
        proc = _start(["-m", "hhsim", "run", str(tmp_path / "exp.toml"), "--workers", "2",
                       "--out", str(tmp_path / f"out{trial}"), "--quiet"])
        parent = psutil.Process(proc.pid)
        workers = _workers(parent, 2, proc)
        rest = parent.children(recursive=True)  # also the fork server and the resource tracker
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = time.time()
        while any(map(_alive, workers)) and time.time() < killed + 2:
            time.sleep(0.01)
        assert not any(map(_alive, workers)), f"trial {trial}: a worker outlived its parent by 2 s"
        while any(map(_alive, rest)) and time.time() < killed + 10:
            time.sleep(0.05)
        left = [_cmdline(p) for p in rest if _alive(p)]
        assert not [c for c in left if c], f"trial {trial}: {left}"


def _cmdline(p: psutil.Process) -> list[str]:
    """A process's command line, or [] once it has ended (it may end between the checks)."""
    try:
        return p.cmdline()
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow
def test_killed_worker_is_a_one_line_error_and_the_batch_resumes(tmp_path):
    exp, out = tmp_path / "exp.toml", tmp_path / "out"
    # 12 runs on 2 workers: when the first is saved, work is still queued for the killed worker
    # (with 4 runs, a loaded machine could finish the batch before the kill landed)
    exp.write_text(LONG_RUNS.replace("replications = 4", "replications = 6"))
    args = ["-m", "hhsim", "run", str(exp), "--workers", "2", "--out", str(out), "--quiet"]
    proc = _start(args)
    workers = _workers(psutil.Process(proc.pid), 2, proc)
    while not list(out.glob("runs/*.parquet")):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    workers[0].kill()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    saved = len(list((out / "runs").glob("*.parquet")))
    assert 1 <= saved < 12
    assert err.strip() == (
        f"hhsim: error: a worker process died (killed by SIGKILL, e.g. by the out-of-memory killer); "
        f"{saved} finished runs are saved in {out} (fix: hhsim run {exp.resolve()} --out {out} --resume, "
        "with any other options as before)")
    resumed = _start([*args, "--resume"])
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert len(pd.read_parquet(out / "runs.parquet")) == 12


SMALL = {"experiment": {"name": "address-test", "seed": 1, "months": 6, "replications": 1},
         "population": {"tenants": 200}, "arms": [{"name": "baseline"}]}


@pytest.mark.parametrize("address, problem", [
    ("not a url", "is not an address of the form tcp://HOST:PORT"),
    ("tcp://127.0.0.1", "is not an address of the form tcp://HOST:PORT"),
    ("127.0.0.1:abc", "is not an address of the form tcp://HOST:PORT"),
    ("foo://127.0.0.1:8786", "is not an address (unknown protocol)"),
    ("tcp://127.0.0.1:99999", "needs a host and a port from 1 to 65535"),
    ("tcp://:8786", "needs a host and a port from 1 to 65535"),
    ("tls://127.0.0.1:9", "cannot connect to tls://127.0.0.1:9"),
])
def test_bad_scheduler_address_is_a_one_line_error_and_writes_nothing(tmp_path, address, problem):
    with pytest.raises(HhsimError) as raised:
        run_experiment(validate(SMALL), tmp_path / "out", scheduler=address)
    assert raised.value.where == "--scheduler" and problem in raised.value.problem
    assert not (tmp_path / "out").exists()


def test_scheduler_that_is_not_a_url_from_the_command_line(tmp_path, capsys):
    code = main(["run", str(ROOT / "experiments" / "damp-homes-what-if.toml"), "--scheduler", "not a url",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err == (
        "hhsim: error: --scheduler: 'not a url' is not an address of the form tcp://HOST:PORT "
        "(fix: give the scheduler's address as tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786)\n")


@pytest.mark.parametrize("delay", [0.3, 1.0])
def test_ctrl_c_while_a_batch_starts_is_one_line(tmp_path, delay):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) after ``delay`` seconds of
    ``main``: validating the experiment, starting the pool or the first runs."""
    exp, out = tmp_path / "exp.toml", tmp_path / "out"
    exp.write_text(LONG_RUNS)
    code = "import sys, hhsim.cli; print('ready', flush=True); sys.exit(hhsim.cli.main(sys.argv[1:]))"
    proc = _start(["-c", code, "run", str(exp), "--workers", "2", "--out", str(out), "--quiet"])
    assert proc.stdout.readline() == "ready\n"
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    hint = "; rerun with --resume --out" in err
    assert err.strip().startswith("hhsim: interrupted") and hint == (out / "runs").is_dir()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ctrl_c_dropped_by_a_finaliser_still_interrupts(tmp_path, monkeypatch, capsys):
    """Python drops a KeyboardInterrupt raised inside ``__del__`` ("Exception ignored");
    one that lands there while the experiment is compiled still stops the command before
    any run, with exit code 130, instead of the whole batch running to exit code 0."""
    import hhsim.cli

    class Finaliser:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)  # Python's handler runs inside __del__

    compile_file = hhsim.cli.compile_file

    def compile_then_drop(*args, **kwargs):
        Finaliser()  # freed at once
        return compile_file(*args, **kwargs)

    monkeypatch.setattr("hhsim.cli.compile_file", compile_then_drop)
    exp, out = tmp_path / "exp.toml", tmp_path / "out"
    exp.write_text(LONG_RUNS)
    assert main(["run", str(exp), "--workers", "1", "--out", str(out), "--quiet"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("hhsim: interrupted")
    assert not list((out / "runs").glob("*.json"))


@pytest.mark.parametrize("command", ["validate", "run"])
def test_ctrl_c_outside_a_batch_is_one_line(tmp_path, monkeypatch, capsys, command):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hhsim.cli.compile_file", interrupted)
    monkeypatch.setattr("hhsim.cli.file_kind", interrupted)
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    for name in ("a", "b"):  # finished runs have a checksum record
        (out / "runs" / f"{name}.json").touch()
    args = ["exp.toml"] + (["--out", str(out)] if command == "run" else [])
    assert main([command, *args]) == 130
    expected = (f"hhsim: interrupted; 2 finished runs are saved in {out}; rerun with --resume --out {out} "
                "to finish") if command == "run" else "hhsim: interrupted"
    assert capsys.readouterr().err == "\n" + expected + "\n"


def test_ctrl_c_while_the_command_line_loads_is_one_line(monkeypatch, capsys):
    """An interrupt while ``hhsim.cli`` (numpy, pandas, Mesa) is still being imported."""
    import sys

    import hhsim.__main__

    class Interrupting:
        def find_spec(self, name, path=None, target=None):
            if name == "hhsim.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "hhsim.cli")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert hhsim.__main__.main() == 130
    assert capsys.readouterr().err == "\nhhsim: interrupted\n"


def test_a_dead_worker_in_a_sweep_names_the_command_that_continues_it(tmp_path, monkeypatch):
    from hhsim.batch import pipeline, points
    from hhsim.batch.execution import WorkerDied
    from hhsim.core.errors import HhsimError

    def dies(*args, **kwargs):
        raise WorkerDied("", "a worker process died (killed by SIGKILL)")

    monkeypatch.setattr(pipeline, "execute", dies)
    plan = compile_plan(ROOT / "experiments" / "psa-home-repairs.toml", replications=1)
    with pytest.raises(HhsimError) as err:
        points.run_points(plan, [{}], tmp_path / "psa", workers=1, command="hhsim psa")
    text = str(err.value)
    assert "a worker process died" in text and "0 finished runs are saved" in text
    assert f"hhsim psa {plan.source} --out {tmp_path / 'psa'} --resume" in text and "\n" not in text


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the ignored one
def test_ctrl_c_that_python_ignores_in_a_finaliser_still_stops_the_batch(tmp_path):
    """A KeyboardInterrupt raised inside ``__del__`` is ignored by Python (it was seen once
    while pyarrow closed a file): the batch still stops after the run it was handling."""
    import signal

    from hhsim.batch.design import runs
    from hhsim.batch.execution import InProcessExecutor, execute

    class Finaliser:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)

    specs = runs(compile_plan(ROOT / "experiments" / "home-repairs.toml", tenants=20, months=1,
                              replications=2))
    handled = []

    def on_result(result):
        handled.append(result.run_id)
        Finaliser()  # collected at once: its KeyboardInterrupt is printed and ignored

    with pytest.raises(KeyboardInterrupt):
        execute(specs, len(specs), on_result, InProcessExecutor(), 1, progress=False)
    assert len(handled) == 1 < len(specs)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
