"""The Python API: run an experiment and get pandas DataFrames back.

    import hhsim
    results = hhsim.run_experiment("experiments/damp-homes-what-if.toml", out="results/damp")
    results.summary          # per-arm means and differences with Monte-Carlo intervals
    results.economics        # per arm: NHS saving, intervention cost, net saving, ROI, payback
    results.records          # one row per run
    results.monthly()        # monthly aggregates of every run
"""

from __future__ import annotations

import datetime as _dt
import platform
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mesa
import numpy as np
import pandas as pd

from hhsim.analysis.economics import economics, payback
from hhsim.analysis.summary import summarise, summarise_checks, summarise_groups
from hhsim.analysis.tables import Settings, analyse
from hhsim.batch.design import RunSpec, plan
from hhsim.batch.execution import execute, open_executor, resume_hint, warm_up
from hhsim.batch.store import ResultsStore, read_table
from hhsim.experiment import Experiment, load_experiment


def package_version() -> str:
    try:
        return metadata.version("hhsim")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Results:
    """Results of an experiment, as stored in ``out``."""

    out: Path
    experiment: Experiment
    records: pd.DataFrame
    summary: pd.DataFrame
    group_summary: pd.DataFrame
    check_summary: pd.DataFrame
    economics: pd.DataFrame  # per arm vs baseline: savings, net saving, ROI, QALYs, payback
    analysis: dict[str, pd.DataFrame]  # hhsim.analysis.tables.TABLES: ICERs, NMB, payers, budget...

    def monthly(self) -> pd.DataFrame:
        """Monthly aggregates of every run, stacked with a ``run_id`` column."""
        return read_table(self.out, "monthly", self.records["run_id"])

    def groups(self) -> pd.DataFrame:
        """Outcomes by group (dimension, group, outcome, value) of every run."""
        return read_table(self.out, "groups", self.records["run_id"])

    def checks(self) -> pd.DataFrame:
        """Simulated baseline rates against their input rates, for every run."""
        return read_table(self.out, "checks", self.records["run_id"])

    def events(self) -> pd.DataFrame:
        """Intervention event logs (month, id, unit, event) of every run, where kept."""
        return read_table(self.out, "events", self.records["run_id"])

    def stays(self) -> pd.DataFrame:
        """One row per patient of each hospital-flow intervention, for every run."""
        return read_table(self.out, "stays", self.records["run_id"])

    def lifetable(self) -> pd.DataFrame:
        """Person-years, years in good health and deaths by sex, IMD decile and age (weighted),
        every run stacked: the period life table behind life expectancy by decile."""
        return read_table(self.out, "lifetable", self.records["run_id"])

    def referrals(self) -> pd.DataFrame:
        """The referral log of social-prescribing interventions (one row per referral:
        source, months referred and engaged, activity start and end, outcome), every run."""
        return read_table(self.out, "referrals", self.records["run_id"])


def default_out(exp: Experiment, kind: str = "") -> Path:
    """``hhsim-results/<name>-<time>`` (``<name>-<kind>-<time>`` with a kind, e.g. sensitivity)."""
    slug = re.sub(r"[^a-z0-9]+", "-", exp.experiment.name.lower()).strip("-") or "experiment"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("hhsim-results") / "-".join(filter(None, (slug, kind, stamp)))


def _manifest(exp: Experiment, specs: list[RunSpec]) -> dict:
    e = exp.experiment
    return {
        "experiment": e.name,
        "hhsim_version": package_version(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "mesa": mesa.__version__,
        "seed": e.seed,
        "seeds": "replication r uses numpy SeedSequence(seed, spawn_key=(0, r)); "
                 "every arm of a replication shares it",
        "replications": e.replications,
        "arms": [a.name for a in exp.arms],
        "runs": [s.run_id for s in specs],
    }


def run_experiment(experiment: Experiment | str | Path | None = None, out: str | Path | None = None,
                   *, workers: int | None = None, scheduler: str | None = None,
                   resume: bool = False, progress: bool = False, seed: int | None = None,
                   tenants: int | None = None, months: int | None = None,
                   replications: int | None = None) -> Results:
    """Run every arm x replication of an experiment and store the results in ``out``.

    ``seed``, ``tenants``, ``months`` and ``replications`` override the experiment file.
    With ``resume``, runs already stored in ``out`` are not run again.
    """
    warm_up(workers, scheduler)
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    exp = exp.with_options(seed=seed, tenants=tenants, months=months, replications=replications)
    specs = plan(exp)
    out = Path(out) if out is not None else default_out(exp)
    digest = exp.digest() + ":" + package_version()
    with (resume_hint(out, "hhsim run", exp.source),
          open_executor(workers, scheduler) as (executor, in_flight)):  # connect before writing
        store = ResultsStore(out, digest, _manifest(exp, specs), exp.model_dump(mode="json"), resume,
                             {"interventions": {a.name: exp.interventions(a) for a in exp.arms}})
        done = store.done()
        todo = [s for s in specs if s.run_id not in done]
        execute(todo, len(todo), lambda r: store.write(r.run_id, r.record, r.tables),
                executor, in_flight, progress)
    records = store.records(order=[s.run_id for s in specs])
    ids = records["run_id"] if not records.empty else []
    monthly, groups = read_table(out, "monthly", ids), read_table(out, "groups", ids)
    econ = economics(records, exp.baseline)
    econ = econ.merge(payback(monthly, records, exp.baseline), on="arm", how="left")
    summaries = {
        "summary": summarise(records, exp.baseline),
        "economics": econ,
        "groups": summarise_groups(groups, records, exp.baseline),
        "checks": summarise_checks(read_table(out, "checks", ids), records, exp.baseline),
    }
    analysis = analyse(records, monthly, groups, settings(exp))
    store.finalise(records, {**summaries, **analysis})
    return Results(out, exp, records, summaries["summary"], summaries["groups"], summaries["checks"],
                   econ, analysis)


def settings(exp: Experiment) -> Settings:
    """The analysis settings of an experiment (baseline, thresholds, step length, payers)."""
    months_per_step = 12 if exp.trees(exp.arms[0])[0].get("model", {}).get("cycle") == "year" else 1
    return Settings(exp.baseline, tuple(float(t) for t in exp.experiment.thresholds), months_per_step,
                    {a.name: exp.interventions(a) for a in exp.arms})
