"""The Python API: run an experiment and get pandas DataFrames back.

    import hhsim
    results = hhsim.run_experiment("experiments/damp-homes-what-if.toml", out="results/damp")
    results.summary          # per-arm means and differences with Monte-Carlo intervals
    results.economics        # per arm: NHS saving, intervention cost, net saving, ROI, payback
    results.records          # one row per run
    results.monthly()        # monthly aggregates of every run
    results.table("stays")   # any per-run table (hhsim.model.record.table_names), every run stacked
    hhsim.load_results("results/damp")   # the same, read back from the folder (checked)
    hhsim.run_experiment("experiments/krijkamp-2018-sick-sicker.toml", cohort=True)  # expected values
"""

from __future__ import annotations

import html
import platform
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
from pydantic import ValidationError

from hhsim.analysis.economics import economics, payback
from hhsim.analysis.outcomes import outcome_values
from hhsim.analysis.precision import MIN_REPLICATIONS, Precision, Rounds, assess, next_round, stop_reason
from hhsim.analysis.summary import summarise, summarise_checks, summarise_groups
from hhsim.analysis.tables import Settings, analyse
from hhsim.batch.cohort import check_options, cohort_plan, cohort_runs
from hhsim.batch.design import RunSpec, runs
from hhsim.batch.execution import RunResult, open_executor, resume_hint, warm_up
from hhsim.batch.pipeline import Batch, default_out, run_batch
from hhsim.batch.store import ResultsStore, read_table
from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.experiment.outputs import check_output
from hhsim.experiment.plan import COHORT, MICROSIMULATION, Plan, compile_plan
from hhsim.experiment.schema import Experiment
from hhsim.model.record import table_names
from hhsim.report.batch import load_batch


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
    manifest: dict = field(default_factory=dict)  # provenance (manifest.json): versions, seeds, digest
    precision: Rounds | None = None  # how a precision target was pursued (run_experiment(precision=...))
    plan: dict = field(default_factory=dict)  # the compiled experiment as run (plan.json; {} before 0.3)

    @property
    def mode(self) -> str:
        """How the runs were made: "microsimulation", or "cohort" (expected values computed
        exactly, one run per arm: ``hhsim run --cohort``)."""
        return str(self.plan.get("mode", MICROSIMULATION))

    @property
    def model_version(self) -> str:
        """The model version the results were made with ('0' for folders before versions)."""
        return str(self.manifest.get("model_version", "0"))

    def __repr__(self) -> str:
        e = self.experiment.experiment
        arms = [a.name + (" (baseline)" if a.name == e.baseline else "") for a in self.experiment.arms]
        shown = ", ".join(arms[:8]) + (f", ... ({len(arms)} arms)" if len(arms) > 8 else "")
        runs = ("cohort mode (expected values, exact)" if self.mode == COHORT
                else f"{e.replications} replication(s)")
        return (f"hhsim Results '{e.name}' in {self.out}\n"
                f"  arms: {shown}\n"
                f"  {runs}, {len(self.records)} runs, {e.months} months, "
                f"model {e.model} (version {self.model_version}), "
                f"hhsim {self.manifest.get('hhsim_version', 'unknown')}")

    def _repr_html_(self) -> str:
        """The headline results per arm, for notebooks."""
        e = self.experiment.experiment
        means = self.summary.pivot(index="arm", columns="outcome", values=["mean", "difference"])
        table = pd.DataFrame(index=pd.Index([a.name for a in self.experiment.arms], name="arm"))
        for outcome, label in (("nhs_cost", "NHS care cost (£)"), ("qalys", "QALYs")):
            for column, suffix in (("mean", ""), ("difference", ": difference")):
                table[label + suffix] = means.get((column, outcome))
        econ = self.economics.set_index("arm") if "arm" in self.economics else pd.DataFrame()
        table["net saving (£)"], table["ROI"] = econ.get("net_saving"), econ.get("roi")
        return (f"<p><b>hhsim results: {html.escape(e.name)}</b>, {e.replications} replication(s), "
                f"{e.months} months: means, and differences from the baseline "
                f"'{html.escape(e.baseline)}' (folder <code>{html.escape(str(self.out))}</code>)</p>"
                + table.to_html(float_format=lambda v: f"{v:,.2f}", na_rep=""))

    def table(self, name: str) -> pd.DataFrame:
        """The per-run table ``name`` of every run, stacked with a ``run_id`` column: one of
        ``hhsim.model.record.table_names()``, the model's own and those the registered
        intervention types write."""
        if name not in table_names():
            raise unknown_key_error("table", name, table_names(), what="per-run table")
        return read_table(self.out, name, self.records["run_id"])

    def monthly(self) -> pd.DataFrame:
        """Monthly aggregates of every run, stacked with a ``run_id`` column."""
        return self.table("monthly")

    def groups(self) -> pd.DataFrame:
        """Outcomes by group (dimension, group, outcome, value) of every run."""
        return self.table("groups")

    def checks(self) -> pd.DataFrame:
        """Simulated baseline rates against their input rates, for every run."""
        return self.table("checks")

    def events(self) -> pd.DataFrame:
        """Intervention event logs (month, id, unit, event) of every run, where kept."""
        return self.table("events")

    def stays(self) -> pd.DataFrame:
        """One row per patient of each hospital-flow intervention, for every run."""
        return self.table("stays")

    def lifetable(self) -> pd.DataFrame:
        """Person-years, years in good health and deaths by sex, IMD decile and age (weighted),
        every run stacked: the period life table behind life expectancy by decile."""
        return self.table("lifetable")

    def referrals(self) -> pd.DataFrame:
        """The referral log of social-prescribing interventions (one row per referral:
        source, months referred and engaged, activity start and end, outcome), every run."""
        return self.table("referrals")


def _manifest(plan: Plan, order: list[str]) -> dict:
    return {
        "experiment": plan.name,
        "hhsim_version": plan.hhsim_version,
        "model_version": plan.model_version,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "mesa": mesa.__version__,
        "mode": plan.mode,
        "seed": plan.seed,
        "seeds": ("none: cohort mode computes expected values and draws no random numbers"
                  if plan.mode == COHORT else
                  "replication r uses numpy SeedSequence(seed, spawn_key=(0, r)); every arm of a replication "
                  "shares it"),
        "replications": plan.replications,
        "arms": plan.arm_names,
        "runs": order,
    }


def run_experiment(experiment: Plan | Experiment | str | Path | None = None, out: str | Path | None = None,
                   *, workers: int | None = None, scheduler: str | None = None,
                   resume: bool = False, progress: bool = False, seed: int | None = None,
                   tenants: int | None = None, months: int | None = None,
                   replications: int | None = None, precision: Precision | None = None,
                   cohort: bool = False) -> Results:
    """Run every arm x replication of an experiment and store the results in ``out``.

    ``seed``, ``tenants``, ``months`` and ``replications`` override the experiment file.
    With ``resume``, runs already stored in ``out`` are not run again. With ``precision``
    (``hhsim.analysis.precision``), replications run in rounds, the first of the
    experiment's size (at least 5), until the precision target is met for every arm
    compared, its outcome is indistinguishable from zero, or ``precision.max_replications``
    is reached; replication r is the same run however many there are, so the result equals
    a batch of the final size run in one go.

    With ``cohort`` (or a plan in cohort mode), each arm runs once in cohort mode: the
    expected values of a cohort of ``tenants`` people alike, computed exactly
    (``hhsim.batch.cohort``), stored and analysed as a batch of one replication. The options
    only a microsimulation uses (``replications`` other than 1, ``precision``, ``workers``,
    ``scheduler``, ``resume``, ``seed``) are then refused in one line, as is an arm that
    cohort mode cannot run, before anything is written.
    """
    cohort = cohort or (isinstance(experiment, Plan) and experiment.mode == COHORT)
    if cohort:
        check_options(replications=replications, precision=precision, workers=workers, scheduler=scheduler,
                      resume=resume, seed=seed)
        workers = 1
    else:
        warm_up(workers, scheduler)
    plan = compile_plan(experiment, seed=seed, tenants=tenants, months=months, replications=replications)
    if cohort:
        plan = cohort_plan(plan)
    followed: list[str] = []
    if precision is not None:
        followed = _followed_arms(plan, precision)
        plan = plan.with_replications(min(max(plan.replications, MIN_REPLICATIONS),
                                          precision.max_replications))
    out = Path(out) if out is not None else default_out(plan.name)
    rounds: list[int] = []
    with (resume_hint(out, "hhsim run", plan.source),
          open_executor(workers, scheduler) as (executor, in_flight)):  # connect before writing
        while True:
            store, order = _run_round(plan, out, executor, in_flight, resume or bool(rounds), progress)
            if precision is None:
                break
            have = plan.replications
            rounds.append(have)
            records = store.records(order=order)
            verdicts = {arm: assess(outcome_values(records, plan.baseline, arm, precision.outcome), precision)
                        for arm in followed}
            more = next_round(list(verdicts.values()), have, precision.max_replications)
            if more == have:
                break
            plan = plan.with_replications(more)
    records = store.records(order=order)
    ids = records["run_id"] if not records.empty else []
    monthly, groups = read_table(out, "monthly", ids), read_table(out, "groups", ids)
    summaries = _summaries(out, records, monthly, groups, plan.baseline)
    analysis = analyse(records, monthly, groups, settings(plan))
    report = None
    if precision is not None:
        reason = stop_reason(verdicts, rounds[-1], precision.max_replications, precision)
        report = Rounds(precision, tuple(rounds), verdicts, reason)
        summaries["precision"] = report.table()
    store.finalise(records, {**summaries, **analysis})
    return Results(out, plan.experiment, records, summaries["summary"], summaries["groups"],
                   summaries["checks"], summaries["economics"], analysis, store.manifest, report,
                   plan.to_json())


def _run_round(plan: Plan, out: Path, executor: Executor, in_flight: int, resume: bool,
               progress: bool) -> tuple[ResultsStore, list[str]]:
    """Make the runs of ``plan`` not yet stored in ``out``; the store and the runs in order.
    In cohort mode every run is made first, so that a refusal leaves no folder behind."""
    specs = runs(plan)
    order = [s.run_id for s in specs]
    run = None  # a simulation
    if plan.mode == COHORT:
        made = cohort_runs(specs)

        def run(spec: RunSpec) -> RunResult:
            return made[spec.run_id]
    batch = Batch(out, plan.digest, _manifest(plan, order),
                  {"experiment": plan.experiment.model_dump(mode="json"), "plan": plan.to_json()}, order)
    return run_batch(batch, specs, executor, in_flight, resume=resume, progress=progress, run=run), order


def _followed_arms(plan: Plan, precision: Precision) -> list[str]:
    """The arms whose outcome the precision target follows (one-line errors if none)."""
    arms, baseline = plan.arm_names, plan.baseline
    check_output(precision.outcome, arms, baseline, "", "--precision-outcome")  # a known name?
    if precision.outcome == "roi":
        raise HhsimError("--precision-outcome", "roi is a ratio of means, with no value per replication",
                         "follow net_saving (it is 0 where ROI is 1) or nhs_saving")
    followed = arms if precision.outcome.startswith("mean:") else [a for a in arms if a != baseline]
    if not followed:
        raise HhsimError("--precision", f"'{precision.outcome}' compares an arm with the baseline, and the "
                         "experiment has no other arm", "add an arm, or follow mean:nhs_cost")
    check_output(precision.outcome, arms, baseline, followed[0], "--precision-outcome")
    return followed


def load_results(out: str | Path) -> Results:
    """The results of a finished ``hhsim run`` folder, read back from its files without
    simulating: the same tables as ``run_experiment`` returned. Every file is checked against
    its checksum; a damaged or unfinished folder is refused in one line naming the file."""
    b = load_batch(out)
    try:
        exp = Experiment.model_validate(b.experiment)
    except ValidationError as err:
        raise HhsimError(str(b.out / "experiment.json"), f"is not an experiment this hhsim can read "
                         f"({err.error_count()} problem(s))", "read it with the hhsim version named in "
                         "manifest.json, which wrote it") from None
    s = b.summaries  # as stored by the run
    return Results(b.out, exp, b.records, s["summary"], s["groups"], s["checks"], s["economics"], b.analysis,
                   b.manifest, plan=b.plan)


def _summaries(out: Path, records: pd.DataFrame, monthly: pd.DataFrame, groups: pd.DataFrame,
               baseline: str) -> dict[str, pd.DataFrame]:
    """The summary tables of a batch (``summary``, ``economics``, ``groups``, ``checks``)."""
    ids = records["run_id"] if not records.empty else []
    econ = economics(records, baseline).merge(payback(monthly, records, baseline), on="arm", how="left")
    return {"summary": summarise(records, baseline), "economics": econ,
            "groups": summarise_groups(groups, records, baseline),
            "checks": summarise_checks(read_table(out, "checks", ids), records, baseline)}


def settings(plan: Plan) -> Settings:
    """The analysis settings of a plan (baseline, thresholds, step length, payers)."""
    return Settings(plan.baseline, plan.thresholds, plan.months_per_step, plan.interventions,
                    exact=plan.mode == COHORT)
