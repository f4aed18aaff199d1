"""Execution: run specifications go to an executor; results come back as small records.

The executor is anything with the ``concurrent.futures`` interface: the current process
(one worker), a local process pool (default: all cores), or a Dask cluster
(``Client(address).get_executor()``). Workers receive a ``RunSpec`` and return a record and
a monthly table; tenant arrays never leave the worker. At most a few runs per worker are in
flight, so the parent's memory does not grow with the size of the batch.
"""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing
import os
import shlex
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import forkserver, resource_tracker
from multiprocessing.connection import wait as wait_for_ends
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from hhsim.batch.design import RunSpec
from hhsim.core.errors import HhsimError, printable
from hhsim.core.interrupts import ctrl_c_held, ctrl_c_noticed, raise_if_pressed
from hhsim.core.resources import DEFAULT_EXPERIMENT
from hhsim.model.record import per_run_tables, run_record
from hhsim.model.simulation import HousingHealthModel


@dataclass
class RunResult:
    """What a worker sends back: the run's record and its per-run tables (monthly
    aggregates, results by group, checks, the interventions' tables, ...: small tables;
    tenant arrays stay in the worker)."""

    run_id: str
    record: dict[str, Any]
    tables: dict[str, pd.DataFrame]


def simulate(spec: RunSpec) -> RunResult:
    """Build and run one model; return its record (runs in a worker)."""
    model = HousingHealthModel(spec.config)
    model.run()
    outcomes = run_record(model, spec.price_year)
    record = {"run_id": spec.run_id, "arm": spec.arm, "replication": spec.replication,
              "seed": spec.config.seed, **model.simulated, "steps": spec.config.steps,
              **outcomes}
    result = RunResult(spec.run_id, record, per_run_tables(model, spec.price_year, outcomes))
    model.release()
    return result


class InProcessExecutor(Executor):
    """Runs each task when submitted, in this process (one worker, no pickling)."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, as a pool would
            future.set_exception(exc)
        return future


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def warm_up(workers: int | None, scheduler: str | None) -> None:
    """Start the fork server (if local workers will need one) so that its import of hhsim
    overlaps with the caller's own preparation of the batch."""
    if scheduler or (workers or default_workers()) < 2:
        return
    if _LAUNCH.get_start_method() == "forkserver":
        _start_fork_server()


# How local workers start: from a fork server that has imported hhsim (spawned where there is
# none, i.e. on Windows). Not forked from the caller: after ``import hhsim`` the caller always
# has threads (numpy's BLAS, pyarrow's allocator), and forking a process with threads is unsafe.
_LAUNCH = multiprocessing.get_context(
    "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
_BARE_MAIN = types.ModuleType("__main__")
_PR_SET_PDEATHSIG, _PR_SET_NAME = 1, 15  # prctl options (linux/prctl.h)


def _start_fork_server() -> None:
    """Start the fork server (it imports hhsim) unless it runs. It and the workers it forks
    start with SIGINT blocked: Ctrl-C is this process's to handle (it ends the workers), and
    an interrupted import would print a traceback."""
    _LAUNCH.set_forkserver_preload([__name__])
    resource_tracker.ensure_running()  # first: it unblocks SIGINT after starting its own process
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


class _MainlessProcess(_LAUNCH.Process):
    """A process that does not run the caller's ``__main__``.

    multiprocessing tells each new process to run the caller's main script (as
    ``__mp_main__``), so that functions defined there can be unpickled. A script or piped
    input that calls ``run_experiment`` without an ``if __name__ == "__main__":`` guard would
    start its batch again in every worker. Workers only run hhsim's own functions, so their
    start-up data are made while ``sys.modules["__main__"]`` is a bare module (for the few
    milliseconds a start takes; only another thread looking up ``__main__`` then would see it).
    """

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        main, sys.modules["__main__"] = sys.modules["__main__"], _BARE_MAIN
        try:
            return _LAUNCH.Process._Popen(process_obj)
        finally:
            sys.modules["__main__"] = main


class _Worker(_MainlessProcess):
    """A pool worker. Ctrl-C waits until its start is complete: a start cut short would leave
    a worker that this process does not know (to end it), and that fails with a traceback
    once the fork server gets to it."""

    def start(self) -> None:
        with ctrl_c_held():
            super().start()


class _PoolContext(type(_LAUNCH)):
    """The multiprocessing context of one local pool: it starts ``_Worker`` processes and
    keeps them, to tell how one died."""

    def __init__(self) -> None:
        if self.get_start_method() == "forkserver":
            _start_fork_server()
            # Wait until the server has imported hhsim and serves (a probe that Ctrl-C may cut
            # short harmlessly): the workers' own starts, during which Ctrl-C waits, are quick.
            probe = _MainlessProcess(target=os.getpid)
            probe.start()
            probe.join()
        self.processes: list[_Worker] = []

    def Process(self, *args: Any, **kwargs: Any) -> _Worker:
        process = _Worker(*args, **kwargs)
        self.processes.append(process)
        return process


def _start_worker() -> None:
    """Pool initializer: leave Ctrl-C to the process that started the batch (it ends the
    workers), and end this worker as soon as that process ends, even when it was killed.

    The watch is a thread waiting on the parent's sentinel (a pipe that only the parent holds
    open). On Linux, the kernel also kills the worker when its OS parent (the fork server)
    ends, and names it hhsim-worker (as ``top``, ``ps`` and the out-of-memory killer show it).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        libc = ctypes.CDLL(None)
        libc.prctl(_PR_SET_NAME, b"hhsim-worker")
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = multiprocessing.parent_process()
    threading.Thread(target=_exit_when_ended, args=(parent.sentinel,), name="hhsim-parent-watch",
                     daemon=True).start()


def _exit_when_ended(sentinel: int) -> None:
    """Exit this worker at once when the parent's ``sentinel`` shows that the parent ended."""
    wait_for_ends([sentinel])
    os._exit(1)


class WorkerDied(HhsimError):
    """A local worker process died during a batch (killed, e.g. by the out-of-memory killer)."""


def _how_it_died(processes: list[_Worker]) -> str:
    """' (killed by SIGKILL, ...)' or ' (exit code 3)': how a dead worker ended, if known."""
    codes = [p.exitcode for p in processes if p.exitcode]
    # The pool ends the other workers with SIGTERM once one has died.
    code = next((c for c in codes if c != -signal.SIGTERM), codes[0] if codes else None)
    if code is None:
        return ""
    if code > 0:
        return f" (exit code {code})"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f" (killed by {name}" + (", e.g. by the out-of-memory killer" if name == "SIGKILL" else "") + ")"


@contextmanager
def resume_hint(out: Path, command: str, source: Path | None) -> Iterator[None]:
    """When a worker dies, say how many finished runs are saved in ``out`` and how to finish
    the batch: ``command`` (e.g. ``hhsim run``) on the experiment file ``source`` with
    ``--out OUT --resume``."""
    try:
        yield
    except WorkerDied as died:
        saved = len(list((out / "runs").glob("*.json")))  # checksum records: finished runs
        file = "" if source in (None, DEFAULT_EXPERIMENT.resolve()) else f" {shlex.quote(str(source))}"
        raise HhsimError("", f"{died.problem}; {saved} finished runs are saved in {out}",
                         f"{command}{file} --out {shlex.quote(str(out))} --resume, with any other "
                         "options as before") from None


def _dask_client(address: str) -> Any:
    """A client of the Dask scheduler at ``address``; one-line errors for a bad or unreachable one."""
    try:
        from distributed import Client
        from distributed.comm import parse_address, parse_host_port
        from distributed.comm.registry import get_backend
    except ImportError:
        raise HhsimError("--scheduler", "needs the 'distributed' package",
                         "pip install 'hhsim[dask]'") from None
    form = "give the scheduler's address as tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786"
    shown = printable(address)
    try:
        scheme, location = parse_address(address)
        get_backend(scheme)
    except ValueError:
        raise HhsimError("--scheduler", f"'{shown}' is not an address (unknown protocol)", form) from None
    if scheme in ("tcp", "tls", "ws", "wss"):
        try:
            host, port = parse_host_port(location)
        except ValueError:
            raise HhsimError("--scheduler", f"'{shown}' is not an address of the form tcp://HOST:PORT",
                             form) from None
        if not host or not 0 < port < 65536:
            raise HhsimError("--scheduler", f"'{shown}' needs a host and a port from 1 to 65535", form)
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise HhsimError("--scheduler", f"cannot reach {shown} ({exc})",
                         "check the address of the running Dask scheduler") from None
    except (ValueError, TypeError) as exc:  # e.g. tls:// without Dask's TLS settings
        raise HhsimError("--scheduler", f"cannot connect to {shown} ({exc})",
                         "check the address, and Dask's configuration for tls:// or ucx://") from None


@contextmanager
def open_executor(workers: int | None = None, scheduler: str | None = None):
    """The executor for a batch, and how many runs to keep in flight on it.

    Dask when given a scheduler address (runs in flight: generous, since an adaptive or
    job-queue cluster may add workers later), else local processes (two per worker). Local
    workers end with the batch, with the process that started it (even if killed), or at
    Ctrl-C; a worker that dies is a ``WorkerDied`` error.
    """
    if scheduler:
        client = _dask_client(scheduler)
        try:
            yield client.get_executor(), max(64, 4 * sum(client.nthreads().values()))
        finally:
            client.close()
        return
    n = workers or default_workers()
    if n < 1:
        raise HhsimError("--workers", f"must be at least 1, got {n}", "give a positive number")
    if n == 1:
        yield InProcessExecutor(), 1
        return
    context = _PoolContext()
    pool = ProcessPoolExecutor(max_workers=n, mp_context=context, initializer=_start_worker)
    try:
        yield pool, 2 * n
    except BrokenProcessPool as broken:
        pool.shutdown(wait=True)  # the pool has ended the other workers: every exit code is known
        if broken.__cause__ is not None:  # a result that could not be read: no worker died
            raise
        raise WorkerDied("", f"a worker process died{_how_it_died(context.processes)}",
                         "rerun the command (with --resume where it has one)") from None
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in context.processes:  # rather than wait for the runs in progress
            if process.pid is not None:  # started
                process.terminate()
        raise
    else:
        pool.shutdown(wait=True)


def execute(specs: Iterable[RunSpec], total: int, on_result: Callable[[RunResult], None],
            executor: Executor, in_flight: int, progress: bool = True,
            run: Callable[[RunSpec], RunResult] | None = None) -> None:
    """Run every spec on ``executor`` (``run``: how a spec becomes a result; None:
    ``simulate``), handing each result to ``on_result`` as it arrives.

    At most ``in_flight`` runs are submitted and not yet handled at any time.
    """
    run = run or simulate  # looked up now: tests stand in for it
    raise_if_pressed()  # a Ctrl-C that Python dropped while the batch was prepared
    todo = iter(specs)
    pending: set[Future] = {executor.submit(run, spec)
                            for spec in itertools.islice(todo, in_flight)}
    bar = tqdm(total=total, unit="run", desc="runs", disable=not progress, dynamic_ncols=True)
    try:
        with ctrl_c_noticed():
            for spec in todo:
                pending = _drain(pending, on_result, bar, FIRST_COMPLETED)
                pending.add(executor.submit(run, spec))
            while pending:
                pending = _drain(pending, on_result, bar, FIRST_COMPLETED)
    finally:
        for f in pending:
            f.cancel()
        bar.close()


def _drain(pending: set[Future], on_result: Callable[[RunResult], None], bar: tqdm,
           when: str) -> set[Future]:
    done, rest = wait(pending, return_when=when)
    failed = [f for f in done if f.exception() is not None]
    for f in done.difference(failed):  # keep every finished run before raising
        on_result(f.result())
        bar.update(1)
        raise_if_pressed()  # a Ctrl-C that Python dropped (raised inside a finaliser)
    if failed:
        failed[0].result()
    return rest
