"""The harness of tests/test_fuzz_cli.py: a small TOML writer, running ``hhsim.cli.main`` in this
process (or in a forked, memory-capped copy with a timeout for files that may never end),
judging each outcome against hhsim's promise, and collecting the distinct failures."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import tempfile
import time
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hhsim.cli

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
TEST_MODELS = ROOT / "tests" / "models"
CASE_SECONDS = 30  # alarm for an in-process case (a healthy case takes well under 2 s)
HANG_SECONDS = float(os.environ.get("HHSIM_FUZZ_HANG_SECONDS", "1.0"))  # forked hang-prone case
CHILD_MEMORY = 128 * 2**20  # address space a forked case may add before MemoryError
STOCK_ROWS = 40  # rows of the example stock file copied next to generated experiments (<= 50)
NAN, INF = float("nan"), float("inf")


# =============================================================================================
# A tiny TOML writer (everything the tests need, including nan, inf, big integers, NUL, and
# values tomli_w would refuse to write)
# =============================================================================================
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}
DEEP = "@@DEEP@@"  # a string value replaced by raw deeply nested TOML after writing


def toml_string(s: str) -> str:
    return '"' + "".join(_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 127 else c)
                         for c in s) + '"'


def toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else toml_string(k)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        items = (f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items() if x is not None)
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def toml_text(data: dict) -> str:
    """TOML text for ``data``: top-level values first, then one [table] per top-level dict
    (arrays of tables are written inline). ``None`` values are left out."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items()
             if v is not None and not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"\n[{toml_key(k)}]")
            lines += [f"{toml_key(kk)} = {toml_value(vv)}" for kk, vv in v.items() if vv is not None]
    return "\n".join(lines) + "\n"


def deep_text(depth: int, kind: str) -> str:
    """A value nested ``depth`` deep: arrays or inline tables."""
    if kind == "array":
        return "[" * depth + "1" + "]" * depth
    return "{a = " * depth + "1" + "}" * depth


# =============================================================================================
# Running one command in-process (or in a fork, for hang-prone cases) and judging the outcome
# =============================================================================================
class CaseTimeout(BaseException):
    """Raised by the alarm: the case hung (a BaseException, so hhsim cannot swallow it)."""


class _Capture(io.StringIO):
    def close(self) -> None:  # main() closes sys.stderr on BrokenPipeError; keep the text
        pass


@dataclass
class Outcome:
    argv: list[str]
    rc: int | None = None  # None: an exception escaped, or the case hung
    stdout: str = ""
    stderr: str = ""
    exception: str | None = None  # "Type: message"
    where: str | None = None  # innermost hhsim frame, "hhsim/x.py:123"
    hung: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _hhsim_frame(exc: BaseException) -> str | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/hhsim/" in f.filename
              and "/tests/" not in f.filename]
    if not frames:
        return None
    f = frames[-1]
    return f"hhsim/{f.filename.rsplit('/hhsim/', 1)[1]}:{f.lineno}"


@contextlib.contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    if not seconds:
        yield
        return

    def ring(signum, frame):
        raise CaseTimeout(f"no answer in {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def call(argv: list[str], cwd: Path, seconds: float | None = CASE_SECONDS) -> Outcome:
    """``hhsim.cli.main(argv)`` in this process, in ``cwd``, with stdout, stderr and warnings caught."""
    res = Outcome(list(argv))
    out, err = _Capture(), _Capture()
    here = os.getcwd()
    start = time.perf_counter()
    try:
        os.chdir(cwd)
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            try:
                with _alarm(seconds):
                    res.rc = hhsim.cli.main(list(argv))  # looked up at each call: patchable
            except SystemExit as exc:  # argparse
                res.rc = exc.code if isinstance(exc.code, int) else 1
                if exc.code != 2:
                    res.exception = f"SystemExit: {exc.code!r}"
            except CaseTimeout:
                res.hung = True
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                res.exception = f"{type(exc).__name__}: {str(exc)[:300]}"
                res.where = _hhsim_frame(exc)
        res.warnings = [f"{w.category.__name__}: {str(w.message)[:200]}" for w in caught]
    finally:
        os.chdir(here)
    res.stdout, res.stderr = out.getvalue(), err.getvalue()
    res.seconds = time.perf_counter() - start
    return res


def _vm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def call_isolated(argv: list[str], cwd: Path, seconds: float = HANG_SECONDS,
                  memory: int = CHILD_MEMORY) -> Outcome:
    """``call`` in a forked copy of this process, its address space capped at its current size
    plus ``memory``, killed after ``seconds``: for cases that may hang or read forever."""
    fd, result_path = tempfile.mkstemp(suffix=".json", prefix="hhsim-fuzz-")
    os.close(fd)
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            soft = _vm_bytes() + memory
            if hard != resource.RLIM_INFINITY:
                soft = min(soft, hard)
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
            res = call(argv, cwd, seconds=None)
            Path(result_path).write_text(json.dumps(res.__dict__))
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + seconds
    status = None
    while time.monotonic() < deadline:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            status = wait_status
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)  # the child this function forked, by its id
        os.waitpid(pid, 0)
    try:
        text = Path(result_path).read_text()
        os.unlink(result_path)
    except OSError:
        text = ""
    if status is None:
        return Outcome(list(argv), hung=True, seconds=seconds)
    if not text:
        return Outcome(list(argv), exception=f"child died (wait status {status})")
    return Outcome(**json.loads(text))


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root``: relative path -> (kind, size, mtime)."""
    out: dict[str, tuple] = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(base, name)
            rel = p.relative_to(root).as_posix()
            try:
                s = p.lstat()
            except OSError:
                continue
            out[rel] = ("d" if name in dirs else "f", s.st_size, s.st_mtime_ns)
    return out


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


# =============================================================================================
# Cases, checks and the collection of failures
# =============================================================================================
@dataclass
class Case:
    """One generated input, what was done to it, and what is expected."""

    kind: str  # "experiment", "stock" or "profile"
    base: str  # the shipped file it came from
    text: bytes  # the experiment file
    csv: bytes | None = None  # the stock or profile file (CSV cases)
    labels: list[str] = field(default_factory=list)  # the mutations, in order
    expect_fail: list[str] = field(default_factory=list)  # mutations that make the input invalid
    want_run: bool = False  # run it even if not in the sampled share of valid runs
    hang: str | None = None  # why the case may hang (runs forked, with a timeout)
    file_arg: str | None = None  # the experiment path on the command line, if not the file
    out_arg: str | None = None  # the --out value, if not <root>/out
    tenants: int = 10
    months: int = 1
    stock: bool = False  # the experiment uses a stock file (no --tenants)
    no_overrides: bool = False  # run with the file's own months, tenants and replications
    always_run: bool = False  # a regression case: run it whatever the share and the budget

    def size(self) -> int:
        return len(self.text) + len(self.csv or b"")

    def describe(self) -> str:
        return " + ".join(self.labels) or "(unchanged)"


class Failures:
    """Distinct failures (by signature), each with its count and smallest reproducer."""

    def __init__(self, name: str, run_budget: int = 10**9) -> None:
        self.name = name
        self.run_budget = run_budget  # runs of accepted files still allowed (they take 0.3-2 s each)
        self.found: dict[str, dict] = {}
        self.cases = 0
        self.files = 0
        self.valid_runs = 0
        self.accepted = 0  # files validate accepted
        self.multi_line = 0
        self.no_fix = 0
        self.no_fix_kinds: dict[str, int] = {}
        self.seconds = 0.0

    def add(self, signature: str, case: Case, res: Outcome, detail: str) -> None:
        entry = self.found.setdefault(signature, {"count": 0})
        entry["count"] += 1
        if "size" not in entry or case.size() < entry["size"]:
            text = case.text.decode("utf-8", "backslashreplace")
            entry.update(
                size=case.size(), mutations=case.describe(), base=case.base,
                argv=[a if len(a) < 200 else a[:60] + f"...({len(a)} chars)" for a in res.argv],
                detail=detail[:1500],
                file=text if len(text) < 4000 else text[:4000] + "\n...",
                csv=None if case.csv is None else case.csv[:1500].decode("utf-8", "backslashreplace"))

    def report(self) -> str:
        lines = [f"{self.name}: {len(self.found)} distinct failure(s) in {self.cases} cases "
                 f"({self.files} files, {self.accepted} accepted, {self.valid_runs} valid runs, "
                 f"{self.multi_line} multi-line "
                 f"errors, {self.no_fix} errors without '(fix: ...)', {self.seconds:.1f} s)"]
        for sig, e in sorted(self.found.items(), key=lambda kv: -kv[1]["count"]):
            lines.append(f"\n[{e['count']}x] {sig}\n    mutations: {e['mutations']} (from {e['base']})"
                         f"\n    argv: {e['argv']}\n    {e['detail'][:600]}")
        return "\n".join(lines)

    def save(self) -> None:
        path = os.environ.get("HHSIM_FUZZ_REPORT")
        if not path:
            return
        p = Path(path)
        data = json.loads(p.read_text()) if p.exists() else {}
        data[self.name] = {"cases": self.cases, "files": self.files, "accepted": self.accepted,
                           "valid_runs": self.valid_runs,
                           "multi_line": self.multi_line, "no_fix": self.no_fix,
                           "no_fix_kinds": self.no_fix_kinds,
                           "seconds": round(self.seconds, 1), "failures": self.found}
        p.write_text(json.dumps(data, indent=1, default=str))

    def check(self) -> None:
        self.save()
        assert not self.found, self.report()


def _normalise(text: str, root: Path) -> str:
    text = text.replace(str(root), "<tmp>")
    text = re.sub(r"arms\.(.*?)\.(interventions|parameters)", r"arms.<arm>.\2", text)
    text = re.sub(r"'[^']{40,}'", "'<long>'", text)
    return re.sub(r"\d+", "N", text)[:160]


def never_answers(res: Outcome) -> bool:
    """Hung, or (in a forked, memory-capped case) read until the memory ran out or died."""
    return res.hung or bool(res.exception and res.exception.startswith(("MemoryError", "child died")))


def hang_signature(command: str, case: Case) -> str:
    return f"{command}: never answers: hangs or reads without end ({case.hang or 'in-process'})"


def judge(case: Case, res: Outcome, command: str, root: Path, out: Path, before: dict, after: dict,
          failures: Failures) -> None:
    """Record every way ``res`` breaks the promise."""
    def fail(signature: str, detail: str = "") -> None:
        failures.add(signature, case, res, detail or res.stderr or res.exception or "")

    written = changes(before, after)
    out_rel = os.path.relpath(out, root) if out.is_absolute() else None
    parents = {os.path.dirname(out_rel)} if out_rel else set()  # folders made on the way to --out
    while parents and (top := os.path.dirname(min(parents, key=len))):
        parents.add(top)
    outside = [p for p in written if out_rel is None or not (p == out_rel or p.startswith(out_rel + "/")
                                                             or p in parents)]
    if outside:
        shown = sorted({re.sub(r"\d{4}", "NNNN", p) for p in outside})
        fail(f"{command}: file written outside --out ({', '.join(shown[:3])})",
             f"written outside --out: {outside[:10]}; exit {res.rc}; stderr {res.stderr[:300]!r}")
    if never_answers(res):
        fail(hang_signature(command, case), f"no answer in {res.seconds:.1f} s" if res.hung else
             f"{res.exception} at {res.where} (memory capped at +{CHILD_MEMORY >> 20} MB)")
        return
    if res.hung:
        fail(f"{command}: hangs (in-process, {CASE_SECONDS} s)", f"no answer in {res.seconds:.0f} s")
        return
    if res.exception:
        fail(f"{command}: {res.exception.split(':', 1)[0]} escapes main() at {res.where}",
             f"{res.exception}\n(stderr: {res.stderr[:300]!r})")
        return
    if "Traceback" in res.stderr:
        fail(f"{command}: traceback on stderr")
    if res.rc == 2 and res.stderr.startswith("usage:"):
        return  # argparse refused the command line (SystemExit(2)): its usage text is expected
    if res.rc == 2:
        lines = [line for line in re.split(r"\r\n|\r|\n", res.stderr) if line.strip()]
        if len(lines) != 1 or res.stderr.strip("\n").count("\n"):
            failures.multi_line += 1
            text = res.stderr
            reader = ("stock reader (hhsim/world/stock.py _fail)" if "nothing was loaded" in text else
                      "profile reader (hhsim/world/profile.py read_profile)" if "nothing was used" in text
                      else _normalise(lines[0] if lines else "(empty)", root))
            fail(f"{command}: error message on {len(lines) if len(lines) < 3 else 'several'} lines: {reader}",
                 res.stderr[:1200])
        elif not lines[0].startswith("hhsim: error: "):
            fail(f"{command}: stderr does not start 'hhsim: error:'", res.stderr[:300])
        else:
            if "(fix: " not in lines[0]:  # reported (HHSIM_FUZZ_REPORT), not a failure
                failures.no_fix += 1
                kind = re.sub(r"'[^']*'", "'...'", _normalise(lines[0], root).split(": ", 3)[-1])[:70]
                failures.no_fix_kinds[kind] = failures.no_fix_kinds.get(kind, 0) + 1
            if "'None'" in lines[0] and b"None" not in case.text:
                fail(f"{command}: error names a missing value as 'None': {_normalise(lines[0], root)[:90]}")
            if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", lines[0]):
                fail(f"{command}: raw control characters in the error line: "
                     f"{_normalise(lines[0], root).split(':')[2][:40]}", repr(lines[0])[:400])
        if res.warnings:
            fail(f"{command}: a warning is printed besides the error line ({res.warnings[0].split(':')[0]})",
                 f"warnings: {res.warnings[:3]}; stderr {res.stderr[:300]!r}")
        if written:
            fail(f"{command}: exit 2 leaves files behind ({sorted(written)[0].split('/')[0]}/...)",
                 f"after exit 2: {written[:10]}; stderr {res.stderr[:300]!r}")
        return
    if res.rc != 0:
        fail(f"{command}: exit code {res.rc}")
        return
    # exit 0
    for reason in dict.fromkeys(re.split(r" ?[='(]", r, maxsplit=1)[0] for r in case.expect_fail):
        fail(f"{command}: accepts an invalid {case.kind} file ({reason})",
             f"exit 0, expected exit 2 because of: {case.expect_fail}")
    if command == "validate":
        if ": valid " not in res.stdout:
            fail("validate: exit 0 without its summary line", res.stdout[:300])
        if written:
            fail("validate: writes files", str(written[:10]))
    else:
        missing = [n for n in ("manifest.json", "runs.parquet", "summary.csv", "economics.csv")
                   if not (out / n).is_file()]
        formulas = [f"{p.name}: {cell[:30]!r}" for p in sorted(out.glob("*.csv"))
                    for row in csv.reader(io.StringIO(p.read_text(errors="replace")))
                    for cell in row if cell.startswith(("=", "@"))]
        if formulas:
            fail("run: a text cell of an output CSV starts with '=' or '@' (a spreadsheet formula)",
                 f"{formulas[:5]}")
        if missing or "Results in" not in res.stdout:
            fail("run: exit 0 without a complete output folder",
                 f"missing {missing}; stdout {res.stdout[-300:]!r}")


# =============================================================================================
# The case's folder: the experiment, its model, stock and profile files, special files
# =============================================================================================
def _template(tmp: Path) -> Path:
    """What a generated experiment may refer to, relative to itself."""
    t = tmp / "template"
    (t / "models").mkdir(parents=True)
    for p in (EXPERIMENTS / "models").glob("*.toml"):
        shutil.copy(p, t / "models" / p.name)
    for p in TEST_MODELS.glob("*.toml"):
        shutil.copy(p, t / "models" / p.name)
    stock = (EXPERIMENTS / "example-stock.csv").read_text().splitlines(keepends=True)
    (t / "example-stock.csv").write_text("".join(stock[:STOCK_ROWS + 1]))
    shutil.copy(EXPERIMENTS / "example-profile.csv", t / "example-profile.csv")
    (t / "junk.bin").write_bytes(bytes(range(256)) * 4 + b"\x00PK\x03\x04\xff\xfe")
    (t / "empty.txt").write_bytes(b"")
    (t / "adir").mkdir()
    (t / "afile").write_text("not a folder\n")
    return t


INPUTS = ("experiment.toml", "stock.csv", "profile.csv")  # rewritten by every case


class Arena:
    """One case folder, reused: ``root/case`` holds the template (hard links), a named pipe and the
    generated inputs, ``root/cwd`` is the working directory; ``--out`` goes to ``root/out``. After
    each case whatever the case added is removed (the folder is rebuilt if anything else changed)."""

    def __init__(self, template: Path, tmp: Path) -> None:
        self.template, self.tmp = template, tmp
        self._build()

    def _build(self) -> None:
        self.root = Path(tempfile.mkdtemp(dir=self.tmp, prefix="c"))
        shutil.copytree(self.template, self.root / "case", copy_function=os.link)  # hhsim must not write them
        os.mkfifo(self.root / "case" / "fifo")
        (self.root / "cwd").mkdir()
        for name in INPUTS:
            (self.root / "case" / name).write_bytes(b"")
        self.clean = snapshot(self.root)

    @contextlib.contextmanager
    def case(self) -> Iterator[Path]:
        try:
            yield self.root
        finally:
            now = snapshot(self.root)
            inputs = {f"case/{n}" for n in INPUTS}
            if any(now.get(p) != v for p, v in self.clean.items() if p not in inputs):
                shutil.rmtree(self.root, ignore_errors=True)
                self._build()
            else:
                for p in sorted((p for p in now if p not in self.clean), key=len):
                    target = self.root / p
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            target.unlink()


# A special file that made a command hang (or read without end) is not waited for again in
# this session: later cases using it count as the same failure.
HUNG: dict[str, str] = {}
RUN_INVALID_EVERY = 8  # share of the refused files also given to 'run' (it must refuse them too)
WANT_RUN_EVERY = 2  # share of the accepted files whose mutation asks for a run that are run


def run_case(case: Case, arena: Arena, failures: Failures, run_every: int) -> None:
    """validate, then (sometimes) run; judge both."""
    failures.cases += 1
    failures.files += 1
    if case.hang in HUNG:
        failures.add(HUNG[case.hang], case, Outcome(["validate", "..."], hung=True),
                     "never answered before with the same special file (not rerun)")
        return
    start = time.perf_counter()
    try:
        _run_case(case, arena, failures, run_every)
    finally:
        failures.seconds += time.perf_counter() - start


def _run_case(case: Case, arena: Arena, failures: Failures, run_every: int) -> None:
    with arena.case() as root:
        home = root / "case"
        text = case.text.replace(b"{ROOT}", str(root).encode())
        (home / "experiment.toml").write_bytes(text)
        for kind in ("stock", "profile"):
            (home / f"{kind}.csv").write_bytes(case.csv if case.csv and case.kind == kind else b"")
        file_arg = (case.file_arg or str(home / "experiment.toml")).replace("{ROOT}", str(root))
        runner: Callable[[list[str], Path], Outcome] = call_isolated if case.hang else call

        before = snapshot(root)
        res = runner(["validate", file_arg], root / "cwd")
        after = snapshot(root)
        judge(case, res, "validate", root, root / "out", before, after, failures)
        if case.hang and never_answers(res):
            HUNG[case.hang] = hang_signature("validate", case)
            return  # 'run' would read the same file
        share = zlib.crc32(case.text + (case.csv or b""))
        if res.rc == 0 and not res.exception:
            failures.accepted += 1
            if not case.always_run:
                if failures.run_budget <= 0 or not (share % run_every == 0 or
                                                    (case.want_run and share % WANT_RUN_EVERY == 0)):
                    return
                failures.run_budget -= 1
        elif share % RUN_INVALID_EVERY and not case.always_run:
            return
        out = Path((case.out_arg or str(root / "out")).replace("{ROOT}", str(root)))
        argv = ["run", file_arg, "--out", str(out), "--workers", "1", "--quiet"]
        if not case.no_overrides:
            argv += ["--months", str(case.months), "--replications", "1"]
            if not case.stock:
                argv += ["--tenants", str(case.tenants)]
        before = after  # nothing ran in between
        res = runner(argv, root / "cwd")
        after = snapshot(root)
        if res.rc == 0 and not res.exception:
            failures.valid_runs += 1
        judge(case, res, "run", root, out if out.is_absolute() else root / "cwd" / out, before, after,
              failures)

