"""Execution: run specifications go to an executor; results come back as small records.

The executor is anything with the ``concurrent.futures`` interface: the current process
(one worker), a local process pool (default: all cores), or a Dask cluster
(``Client(address).get_executor()``). Workers receive a ``RunSpec`` and return a record and
a monthly table; tenant arrays never leave the worker. At most a few runs per worker are in
flight, so the parent's memory does not grow with the size of the batch.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from hhsim.batch.design import RunSpec
from hhsim.checks import run_checks
from hhsim.errors import HhsimError
from hhsim.groups import group_table
from hhsim.model import HousingHealthModel
from hhsim.record import event_table, life_table, monthly_table, referral_table, run_record, stay_table


@dataclass
class RunResult:
    """What a worker sends back: the run's record, monthly aggregates, results by group,
    check table and intervention events (small tables: tenant arrays stay in the worker)."""

    run_id: str
    record: dict[str, Any]
    tables: dict[str, pd.DataFrame]


def simulate(spec: RunSpec) -> RunResult:
    """Build and run one model; return its record (runs in a worker)."""
    model = HousingHealthModel(spec.config)
    model.run()
    outcomes = run_record(model, spec.price_year)
    record = {"run_id": spec.run_id, "arm": spec.arm, "replication": spec.replication,
              "seed": spec.config.seed, "tenants": model.pop.n, "steps": spec.config.steps,
              **outcomes}
    tables = {"monthly": monthly_table(model), "groups": group_table(model, spec.price_year),
              "checks": run_checks(model, outcomes), "events": event_table(model),
              "stays": stay_table(model), "referrals": referral_table(model),
              "lifetable": life_table(model)}
    result = RunResult(spec.run_id, record, tables)
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
    if _worker_context().get_start_method() == "forkserver":
        forkserver.ensure_running()


def _worker_context() -> multiprocessing.context.BaseContext:
    """How worker processes start.

    Forked workers start with hhsim already imported (other methods import it again in
    every worker, about a second each), but forking is only safe while this process has a
    single thread. With the fork context, CPython starts every worker at the first submit;
    ``execute`` submits before its progress bar starts a thread. When other threads exist
    (e.g. a numerical library's, after an earlier run in this process), a fork server that
    has imported hhsim starts the workers instead.
    """
    tasks = Path("/proc/self/task")
    if tasks.is_dir() and len(list(tasks.iterdir())) == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["hhsim.batch.execution"])
        return context
    return multiprocessing.get_context("spawn")


@contextmanager
def open_executor(workers: int | None = None, scheduler: str | None = None):
    """The executor for a batch, and how many runs to keep in flight on it.

    Dask when given a scheduler address (runs in flight: generous, since an adaptive or
    job-queue cluster may add workers later), else local processes (two per worker).
    """
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise HhsimError("--scheduler", "needs the 'distributed' package",
                             "pip install 'hhsim[dask]'") from None
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise HhsimError("--scheduler", f"cannot reach {scheduler} ({exc})",
                             "check the address of the running Dask scheduler") from None
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
    pool = ProcessPoolExecutor(max_workers=n, mp_context=_worker_context())
    try:
        yield pool, 2 * n
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)


def execute(specs: Iterable[RunSpec], total: int, on_result: Callable[[RunResult], None],
            executor: Executor, in_flight: int, progress: bool = True) -> None:
    """Run every spec on ``executor``, handing each result to ``on_result`` as it arrives.

    At most ``in_flight`` runs are submitted and not yet handled at any time.
    """
    todo = iter(specs)
    # Fill the executor before the progress bar starts its monitor thread (see above).
    pending: set[Future] = {executor.submit(simulate, spec)
                            for spec in itertools.islice(todo, in_flight)}
    bar = tqdm(total=total, unit="run", desc="runs", disable=not progress, dynamic_ncols=True)
    try:
        for spec in todo:
            pending = _drain(pending, on_result, bar, FIRST_COMPLETED)
            pending.add(executor.submit(simulate, spec))
        while pending:
            pending = _drain(pending, on_result, bar, FIRST_COMPLETED)
    finally:
        for f in pending:
            f.cancel()
        bar.close()


def _drain(pending: set[Future], on_result: Callable[[RunResult], None], bar: tqdm,
           when: str) -> set[Future]:
    done, rest = wait(pending, return_when=when)
    for f in done:
        on_result(f.result())
        bar.update(1)
    return rest
