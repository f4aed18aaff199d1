"""Fuzzing the command line in-process (issue 14).

hhsim's promise: bad input gives ONE line on stderr, ``hhsim: error: <where>: <problem> (fix:
<fix>)``, and exit code 2; never a traceback, never a half-written or out-of-place file. Good
input gives exit code 0 and a valid result.

Every case here is a generated input file (an experiment file derived from a shipped one, or a
stock or profile CSV derived from the example files) put through ``hhsim.cli.main(argv)`` in this
process: ``validate``, then (for every file ``validate`` refuses and for a moderate share of the
files it accepts) ``run`` with a tiny simulation (``--tenants`` at most 50, ``--months`` at most 2,
one replication, one worker). Each case must end in

- exit code 2 with exactly one non-empty stderr line starting ``hhsim: error:`` and nothing
  written at all (no ``--out`` folder, no stray file); or
- exit code 0 with a valid result (``validate``: its summary line; ``run``: the output folder
  with its records and summaries) and nothing written outside ``--out``.

Python warnings are recorded (``warnings.catch_warnings``), not counted as stderr lines. They are
allowed when the command succeeds; on an error path (exit 2) any warning is a failure of its own,
because the real command prints it on stderr next to the error line. Any exception escaping
``main`` (other than argparse's ``SystemExit(2)``), a hang, raw control characters in the error
line, or the acceptance of a file that a mutation made invalid, is a failure.

Hang-prone cases (a path naming ``/dev/zero``, ``/dev/urandom`` or a named pipe; a huge
``replications`` run without ``--replications``) run in a forked copy of this process with a
memory cap and a timeout; every other case runs under ``signal.alarm``, with the address space
of this process capped while the fuzz tests run, so the suite never hangs or eats the machine.

Every CI run starts with regression cases (hypothesis' explicit examples: the inputs that broke
the promise when issue 14 was opened), then generated ones, with a fixed seed (derandomize). A
property test does not stop at its first failing example: it runs all of them, then fails listing
every distinct failure once (deduplicated by cause: exception type and hhsim source line,
multi-line message kind, stray file pattern, ...), each with its smallest reproducer. Set
``HHSIM_FUZZ_REPORT=<file.json>`` to also write that list to a file.

Cost: 30-45 s of CPU for the default tests (1,000 + 300 generated files, ~30 regression cases,
~25 simulated runs), plus up to ~10 s waiting on files that never end while those bugs last.
``pytest -m slow tests/test_fuzz_cli.py`` runs ten times more cases (the slow tests skip unless
selected). The harness (runner, judge, TOML writer) is in tests/fuzz/harness.py, the strategies,
oracle and regression cases in tests/fuzz/strategies.py.
"""

from __future__ import annotations

import functools
import math
import resource
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzz.harness import (
    DEEP,
    HANG_SECONDS,
    INF,
    NAN,
    Arena,
    Case,
    Failures,
    _template,
    _vm_bytes,
    call_isolated,
    deep_text,
    run_case,
    toml_string,
    toml_text,
)
from fuzz.strategies import (
    BASES,
    CSV_REGRESSIONS,
    EXPERIMENT_REGRESSIONS,
    csv_cases,
    experiment_cases,
    invalid_because,
)
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import hhsim.cli


# =============================================================================================
# The tests
# =============================================================================================
@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    """The case folder (see Arena), with the address space of this process capped while the fuzz
    tests run (restored afterwards), so that a runaway allocation is a MemoryError, not a swapping
    machine."""
    tmp = tmp_path_factory.mktemp("fuzz")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_bytes() + 6 * 2**30
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        with pytest.MonkeyPatch.context() as mp:
            # main() builds its argparse parser at every call (7-9 ms, as much as validating a
            # typical file); building it once keeps 1,300 files within the CI budget.
            mp.setattr(hhsim.cli, "parser", functools.cache(hhsim.cli.parser))
            yield Arena(_template(tmp), tmp)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def fuzz(strategy: st.SearchStrategy, examples: int, arena: Arena, name: str, run_every: int,
         run_budget: int, explicit: list[Case] = ()) -> Failures:
    """Put the ``explicit`` cases, then ``examples`` generated ones, through the command line;
    return what failed."""
    failures = Failures(name, run_budget)

    def one(case: Case) -> None:
        run_case(case, arena, failures, run_every)

    for case in explicit:
        one = example(case)(one)
    one = given(strategy)(one)
    one = settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                   phases=[Phase.explicit, Phase.generate], print_blob=False,
                   suppress_health_check=list(HealthCheck))(one)
    one()
    if failures.cases < examples:
        raise RuntimeError(f"only {failures.cases} of {examples} cases were generated")
    return failures


# Which accepted files are also run: every RUN_EVERY-th (by a hash of the file), and every
# WANT_RUN_EVERY-th of those whose mutation asks for a run (arm names, seeds, thresholds, --out,
# world parameters, known values), up to a budget of runs per test (a run takes 0.3 to 2 s;
# validating a file 10 ms). Regression cases are always run.
RUN_EVERY = 40
EXPERIMENT_CASES, EXPERIMENT_RUNS = 1000, 6
CSV_CASES, CSV_RUNS = 300, 5


@pytest.mark.slow
def test_fuzzed_experiment_files_give_one_line_errors_or_valid_runs(arena):
    fuzz(experiment_cases(), EXPERIMENT_CASES, arena, "experiments", RUN_EVERY, EXPERIMENT_RUNS,
         EXPERIMENT_REGRESSIONS).check()


@pytest.mark.slow
def test_fuzzed_stock_and_profile_files_give_one_line_errors_or_valid_runs(arena):
    fuzz(csv_cases(), CSV_CASES, arena, "stock and profile files", 8, CSV_RUNS, CSV_REGRESSIONS).check()


def _slow_selected(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow fuzzing: select it with -m slow")


@pytest.mark.slow
def test_fuzzed_experiment_files_slow(arena, request):
    _slow_selected(request)
    fuzz(experiment_cases(), 10 * EXPERIMENT_CASES, arena, "experiments (slow)", RUN_EVERY,
         10 * EXPERIMENT_RUNS, EXPERIMENT_REGRESSIONS).check()


@pytest.mark.slow
def test_fuzzed_stock_and_profile_files_slow(arena, request):
    _slow_selected(request)
    fuzz(csv_cases(), 10 * CSV_CASES, arena, "stock and profile files (slow)", 8, 10 * CSV_RUNS,
         CSV_REGRESSIONS).check()


# --- the writer, the oracle and the runner themselves --------------------------------------------
def test_the_toml_writer_round_trips_what_the_fuzzer_writes():
    for _, data, _ in BASES:
        assert tomllib.loads(toml_text(data)) == data
    odd = {"experiment": {"name": "a\x00b\n\"\\\x7f é", "seed": 2**63, "thresholds": [INF, -0.0, 1e30]},
           "arms": [{"name": "../../escaped", "parameters": {"a.b": [1, 2]}}], "top": 1}
    assert tomllib.loads(toml_text(odd)) == odd
    assert math.isnan(tomllib.loads(toml_text({"x": NAN}))["x"])
    text = toml_text({"x": DEEP}).replace(toml_string(DEEP), deep_text(3, "array"))
    assert tomllib.loads(text) == {"x": [[[1]]]}


def test_the_oracle_knows_what_must_be_refused():
    assert invalid_because(("experiment", "thresholds"), [NAN])
    assert invalid_because(("experiment", "seed"), "1")
    assert invalid_because(("experiment", "months"), 2**63)
    assert invalid_because(("arms", 0, "name"), 3)
    assert invalid_because(("experiment", "seed"), 2**63) is None  # allowed by the schema
    assert invalid_because(("experiment", "name"), "x" * 5000) is None


def test_the_harness_passes_the_shipped_files_and_catches_a_stray_file(arena, monkeypatch):
    failures = Failures("harness")
    for name, _, text in (b for b in BASES if b[0] in ("england-all-tenures.toml", "own-stock.toml")):
        run_case(Case("experiment", name, text.encode(), stock="stock" in name), arena, failures, 1)
    assert failures.valid_runs >= 1 and not failures.found, failures.report()

    def stray(argv):  # a command that writes next to the experiment, then fails
        Path(argv[1]).with_name("stray.txt").write_text("x")
        print("hhsim: error: x: y (fix: z)\nsecond line", file=sys.stderr)
        return 2

    monkeypatch.setattr(hhsim.cli, "main", stray)
    run_case(Case("experiment", "x", b""), arena, failures, 1)
    assert any("outside --out" in s for s in failures.found)
    assert any("on 2 lines" in s for s in failures.found)
    assert any("leaves files behind" in s for s in failures.found)


# --- files that never end, and a plan that never starts ---------------------------------------------
SPECIAL_CASES = [pytest.param(role, path)
                 for role in ("argv", "model", "stock", "profile")
                 for path in ("/dev/zero", "/dev/urandom", "{ROOT}/case/fifo")]


@pytest.mark.parametrize("role, path", SPECIAL_CASES)
def test_special_files_are_refused_quickly(role, path, arena):
    """A device that never ends or a named pipe with no writer: refused in one line, quickly."""
    data: dict[str, Any] = {"experiment": {"name": "special"}, "population": {"tenants": 10}}
    if role == "model":
        data["experiment"]["model"] = path
    elif role in ("stock", "profile"):
        data["population"] = {role: path} if role == "stock" else {"tenants": 10, role: path}
    case = Case("experiment", "special", toml_text(data).encode(), hang=f"{role} = {path}",
                file_arg=path if role == "argv" else None, expect_fail=[f"{role} = {path}"])
    failures = Failures(f"special {role} {path}")
    run_case(case, arena, failures, 1)
    failures.check()


def test_a_huge_replication_count_starts_or_is_refused(arena):
    """``replications = 1000000000`` with no --replications: the run must start (write its first
    run record) or be refused, not spend minutes planning."""
    text = b'[experiment]\nname = "huge"\nreplications = 1000000000\n\n[population]\ntenants = 10\n'
    with arena.case() as root:
        (root / "case" / "experiment.toml").write_bytes(text)
        out = root / "out"
        argv = ["run", str(root / "case" / "experiment.toml"), "--out", str(out), "--months", "1",
                "--workers", "1", "--quiet"]
        res = call_isolated(argv, root / "cwd", seconds=2 * HANG_SECONDS)
        started = (out / "runs").is_dir() and any((out / "runs").glob("*.parquet"))
        one_line = res.rc == 2 and res.stderr.count("\n") == 1 and res.stderr.startswith("hhsim: error: ")
        assert started or one_line, (
            f"run with replications = 10**9 neither starts nor is refused in {2 * HANG_SECONDS:.0f} s "
            f"(hung: {res.hung}; {res.exception}; {res.stderr[:200]!r})")

