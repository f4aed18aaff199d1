"""The ``hhsim`` command: run, validate and inspect experiments.

The parser is built from light modules; each command imports what it needs (numpy, pandas,
Mesa, matplotlib ...) when it runs, so ``hhsim --help`` and ``hhsim validate`` start fast
(benchmarks/startup.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from hhsim.core.errors import HhsimError, one_line
from hhsim.core.inputs import check_path, output_folder, read_input
from hhsim.core.interrupts import ctrl_c_noticed, raise_if_pressed
from hhsim.core.version import package_version

if TYPE_CHECKING:
    from hhsim.api import Results
    from hhsim.experiment.plan import Plan


def whole_number(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive, _non_negative = whole_number(1), whole_number(0)


def _batch_options(p: argparse.ArgumentParser, seed: str, replications: str, resume: str) -> None:
    """The options every batch command shares (the file's values unless given)."""
    p.add_argument("--seed", type=_non_negative, help=seed)
    p.add_argument("--tenants", type=_positive, help="number of tenants")
    p.add_argument("--months", type=_positive, help="months to simulate")
    p.add_argument("--replications", type=_positive, help=replications)
    p.add_argument("--workers", type=_positive, help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--resume", action="store_true", help=resume)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _precision_options(p: argparse.ArgumentParser, what: str) -> None:
    """``--precision`` and its companions (hhsim.analysis.precision)."""
    p.add_argument("--precision", metavar="TARGET", help=f"run {what} in rounds until the 95%% Monte-Carlo "
                   "interval of the outcome is within TARGET: a share of the mean (5%%) or an amount "
                   "(500, or £500)")
    p.add_argument("--precision-outcome", metavar="NAME", default="incremental_nhs_cost",
                   help="the outcome the target applies to (default: incremental_nhs_cost of each arm "
                        "against the baseline; also net_saving, incremental_qalys, nmb_20000, "
                        "incremental:<column>, mean:<column>)")
    p.add_argument(f"--max-{what}", type=_positive, default=1000, metavar="N",
                   help=f"the most {what} --precision may run (default 1000)")


class Parser(argparse.ArgumentParser):
    """argparse with hhsim's one-line errors (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hhsim: error: {self.prog}: {one_line(message)} (fix: see '{self.prog} --help')\n")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="hhsim", description="Simulate housing interventions and health.")
    p.add_argument("--version", action="version", version=f"hhsim {package_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an experiment (the built-in default when no file is given)")
    run.add_argument("file", nargs="?", help="experiment file (TOML)")
    run.add_argument("--out", help="output folder (default: hhsim-results/<name>-<time>)")
    _batch_options(run, "experiment seed", "replications per arm", "continue a batch in --out")
    run.add_argument("--verbose", action="store_true", help="also print the totals per arm, what the "
                     "interventions did, who pays, cost-effectiveness and the check table")
    run.add_argument("--cohort", action="store_true", help="cohort mode: each arm once, as the expected "
                     "values of a cohort of --tenants people alike, computed exactly (a model with one "
                     "chain, no services, hospital or interventions; docs/model-files.md, section 15.4)")
    _precision_options(run, "replications")

    sens = sub.add_parser("sensitivity", help="global sensitivity analysis of an experiment's [sensitivity] "
                                              "section (SALib; docs/sensitivity.md)")
    sens.add_argument("file", help="experiment file (TOML) with a [sensitivity] section")
    sens.add_argument("--method", choices=["sobol", "morris", "fast", "delta"], help="overrides the file's")
    sens.add_argument("--samples", type=_positive, help="SALib's N (overrides the file's)")
    sens.add_argument("--out", help="output folder (default: hhsim-results/<name>-sensitivity-<time>)")
    _batch_options(sens, "experiment seed (sample, runs and bootstrap)", "replications per arm and point",
                   "continue a sweep in --out")

    psa = sub.add_parser("psa", help="probabilistic sensitivity analysis of an experiment's [psa] section "
                                     "(docs/psa.md)")
    psa.add_argument("file", help="experiment file (TOML), with a [psa] section unless a posterior is drawn "
                                  "(shipped, or --posterior)")
    psa.add_argument("--draws", type=_positive, help="parameter draws (overrides the file's)")
    source = psa.add_mutually_exclusive_group()
    source.add_argument("--posterior", help="draw (also) from this calibration posterior (posterior.parquet "
                                            "or its folder) instead of the posterior shipped in the package")
    source.add_argument("--no-posterior", action="store_true",
                        help="draw only the [psa] distributions, not the posterior shipped in the package")
    psa.add_argument("--out", help="output folder (default: hhsim-results/<name>-psa-<time>); put it inside "
                                   "a run's folder to have 'hhsim report' include it")
    _batch_options(psa, "experiment seed (draws and runs)", "replications per arm and draw",
                   "continue a PSA in --out")
    _precision_options(psa, "draws")

    be = sub.add_parser("break-even", help="the value of a parameter at which an arm breaks even (ROI = 1, "
                                           "or ICER = a threshold), by rerunning (docs/economics.md)")
    be.add_argument("file", help="experiment file (TOML)")
    be.add_argument("--arm", required=True, help="the arm (compared with the baseline)")
    be.add_argument("--parameter", required=True,
                    help="dotted name set on the arm, e.g. interventions.repairs.effects.x.rate_ratio")
    be.add_argument("--between", nargs=2, type=float, required=True, metavar=("LOW", "HIGH"),
                    help="the range searched (the arm must break even somewhere in it)")
    be.add_argument("--threshold", type=float, help="£ per QALY: break even on the ICER instead of ROI = 1")
    be.add_argument("--tenants", type=_positive, help="number of tenants")
    be.add_argument("--months", type=_positive, help="months to simulate")
    be.add_argument("--replications", type=_positive, help="replications per value (at least 2; with "
                                                            "--precision, the first round)")
    be.add_argument("--precision", help="run replications in rounds until the break-even value's 95%% MC "
                                        "interval is within this half-width: a share of the value (5%%) or "
                                        "an amount in the parameter's units (0.01)")
    be.add_argument("--max-replications", type=_positive,
                    help="with --precision: most replications per value (default 200)")
    be.add_argument("--workers", type=_positive, help="local worker processes (default: all cores)")
    be.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")

    _calibrate_parser(sub)
    _ship_parser(sub)

    val = sub.add_parser("validate", help="check a file without running anything: an experiment, "
                                          "calibration, target or model file (TOML), a stock or "
                                          "profile file (CSV)")
    val.add_argument("file", help="the file to check (its kind is recognised from its contents)")

    rep = sub.add_parser("report", help="write OUTDIR/report.html: tables, figures and findings of a run")
    rep.add_argument("outdir", help="output folder of 'hhsim run'")
    rep.add_argument("--svg", action="store_true", help="also write every figure as SVG (for slides and "
                                                        "papers; PNG only by default, which is faster)")

    head = sub.add_parser("headlines", help="run the shipped experiments and write their headline results "
                                            "as markdown (docs/headlines.md; docs/contributing.md)")
    head.add_argument("--out", default="docs/headlines.md", help="markdown file (default: docs/headlines.md)")
    head.add_argument("--experiments", default="experiments",
                      help="folder of experiment files (default: experiments)")
    head.add_argument("--replications", type=_positive, default=10,
                      help="replications per arm of every experiment (default: 10)")
    head.add_argument("--workers", type=_positive, help="local worker processes (default: all cores)")
    head.add_argument("--only", nargs="+", default=[], metavar="NAME",
                      help="only these experiments (file names without .toml)")

    chk = sub.add_parser("check-model", help="run the model against its baseline targets (England's health "
                                             "and NHS use) and the drift check; write docs/validation.md")
    chk.add_argument("file", nargs="?", default="calibration/baseline.toml",
                     help="calibration file whose targets to check (default: calibration/baseline.toml)")
    chk.add_argument("--out", default="docs/validation.md",
                     help="markdown file (default: docs/validation.md)")
    chk.add_argument("--csv", help="also write the fit table to this CSV file")
    chk.add_argument("--draws", type=_positive, default=20,
                     help="predictive draws (default 20, the fewest for a 95%% interval's ends)")
    chk.add_argument("--tenants", type=_positive,
                     help="tenants of the targets' experiments (default: theirs)")
    chk.add_argument("--drift-tenants", type=_positive, default=100_000,
                     help="adults in the drift check (default 100,000)")
    chk.add_argument("--drift-years", type=int, default=10, help="years of the drift check (default 10; 0: "
                                                                 "none)")
    chk.add_argument("--workers", type=_positive, help="local worker processes (default: all cores)")
    chk.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")

    ev = sub.add_parser("evidence", help="re-run published studies inside hhsim and compare each simulated "
                                         "estimate with the published one (calibration/studies/)")
    ev.add_argument("files", nargs="*", help="study files (TOML)")
    ev.add_argument("--all", action="store_true",
                    help="every study file in calibration/studies/ (run from a checkout)")
    ev.add_argument("--replications", type=_positive, help="replications per arm (default: the study "
                                                           "experiment's)")
    ev.add_argument("--tenants", type=_positive, help="tenants (default: the study experiment's)")
    ev.add_argument("--seed", type=_non_negative, help="experiment seed (default: the study experiment's)")
    ev.add_argument("--workers", type=_positive, help="local worker processes (default: all cores)")
    ev.add_argument("--csv", help="also write the estimates to this CSV file")
    ev.add_argument("--check", action="store_true",
                    help="exit with code 1 if any simulated estimate is outside its published 95%% interval")

    par = sub.add_parser("params", help="list the parameters with their values and sources")
    par.add_argument("--model", help="a model file instead of the default model")
    par.add_argument("--csv", help="write the full table to this CSV file")
    par.add_argument("--markdown", help="write the table as markdown to this file")
    return p


def _interrupted(out: Path | None, started: bool = True) -> int:
    """Say on one line that the command was interrupted, with how to finish a batch that saved
    runs in ``out`` (or, ``started`` without ``out``, in a default folder); return 130."""
    if out is not None and (out / "runs").is_dir():
        done = len(list((out / "runs").glob("*.json")))
        print(f"\nhhsim: interrupted; {done} finished runs are saved in {out}; "
              f"rerun with --resume --out {out} to finish", file=sys.stderr)
    elif out is None and started:
        print("\nhhsim: interrupted; rerun with --resume --out <folder> to finish", file=sys.stderr)
    else:
        print("\nhhsim: interrupted", file=sys.stderr)
    return 130


def compile_file(path: str | None, **options: int | None) -> Plan:
    """Read, check and compile an experiment file, once (``hhsim.experiment.plan``, imported by
    the commands that read one: numpy, pydantic and the health model)."""
    from hhsim.experiment.plan import compile_plan

    return compile_plan(path, **options)


def cmd_run(args: argparse.Namespace) -> int:
    from hhsim.analysis.economics import format_headline
    from hhsim.analysis.precision import parse_precision
    from hhsim.analysis.tables import TABLES
    from hhsim.api import run_experiment
    from hhsim.batch.cohort import check_options

    if args.cohort:  # before the file is read: options cohort mode has no use for
        check_options(replications=args.replications, precision=args.precision, workers=args.workers,
                      scheduler=args.scheduler, resume=args.resume, seed=args.seed)
    plan = compile_file(args.file, seed=args.seed, tenants=args.tenants, months=args.months,
                        replications=args.replications)
    out = output_folder(args.out) if args.out else None
    precision = None
    if args.precision is not None:
        precision = parse_precision(args.precision, args.precision_outcome, args.max_replications)
    try:
        res = run_experiment(plan, out, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                             progress=not (args.quiet or args.cohort), precision=precision,
                             cohort=args.cohort)
    except KeyboardInterrupt:
        return _interrupted(out)
    print(_run_header(res))
    clinical = is_clinical(res.plan)
    baseline = res.experiment.baseline
    headline = _clinical_headline(res) if clinical else format_headline(res.economics, baseline)
    if headline:
        print("\n" + headline)
    if args.verbose or not headline:
        _print_details(res, tables=args.verbose, checks=not clinical)
    if not args.verbose:
        more = ("totals per arm and who pays" if clinical else
                "totals per arm, what the interventions did, who pays, cost-effectiveness, checks")
        print(f"\nMore ({more}): add --verbose, or see the report: hhsim report {res.out}")
    print(f"Results in {res.out} (runs.parquet, summary.csv, economics.csv and {len(TABLES)} more tables)")
    return 0


def is_clinical(plan: dict) -> bool:
    """A clinical model: no arm has an intervention and the model has no NHS services or
    hospital of its own (no housing: its printout shows health, costs and QALYs per person)."""
    return not any(a["interventions"] or a["model"].get("services") or a["model"].get("hospital")
                   for a in plan["arms"])


def _clinical_headline(res: Results) -> str:
    """Per person cost, QALYs and life years with their standard errors, then the ICERs."""
    from hhsim.analysis.cost_effectiveness import format_cost_effectiveness
    from hhsim.analysis.per_person import format_per_person, per_person_table

    people = int(res.records["tenants"].iloc[0])
    exact = res.mode == "cohort"
    table = format_per_person(per_person_table(res.records, res.experiment.baseline), res.experiment.baseline,
                              people, exact=exact)
    ce = format_cost_effectiveness(res.analysis["cost_effectiveness"], res.analysis["nmb"], exact=exact)
    return "\n\n".join(block for block in (table, ce) if block)


def _run_header(res: Results) -> str:
    """What was run, in what prices, and how to read its intervals."""
    from hhsim.analysis.intervals import few_replications

    if res.mode == "cohort":
        return _cohort_header(res)
    e = res.experiment.experiment
    population = res.records["population"].iloc[0] if not res.records.empty else 0
    tenants = int(res.records["tenants"].iloc[0]) if not res.records.empty else 0
    kids = int(res.records["children"].iloc[0]) if "children" in res.records else 0
    simulated = f"{tenants:,} tenants" + (f" and {kids:,} children" if kids else "")
    header = (f"{e.name}: {simulated} simulated, representing {population:,.0f} people; "
              f"{e.months} months; {e.replications:,} replication(s).\n"
              f"Costs in {e.price_year} prices, discounted at {e.discount.costs:.1%} a year "
              f"({e.discount.effects:.1%} for effects); intervals are 95% Monte-Carlo intervals: "
              "simulation noise only (parameter uncertainty: hhsim psa).")
    moved = res.records["profile_people_moved"].max() if not res.records.empty else 0
    if moved:
        header += (f"\nProfile cells with no simulated tenant: up to {moved:,.0f} people counted in "
                   "the nearest cells (give more tenants to reduce this).")
    if res.precision is not None:
        r = res.precision
        header += (f"\nReplications chosen for {r.precision.outcome} within {r.precision.describe()}: "
                   f"{' -> '.join(map(str, r.replications))}; {r.reason}.")
    few = few_replications(e.replications)
    if few:
        header += f"\nWarning: {few}."
    return header


def _cohort_header(res: Results) -> str:
    """What cohort mode ran: whom, in what prices, and that its values have no intervals."""
    from hhsim.model.cohort_mode import describe, person_of

    e, pop = res.experiment.experiment, res.experiment.population
    people = int(res.records["tenants"].iloc[0]) if not res.records.empty else 0
    given = ("" if pop.cohort is not None else
             " (cohort mode's defaults: [population] cohort = { age, sex, tenure, imd_decile } sets them)")
    return (f"{e.name}: cohort mode: the expected values of a cohort of {people:,} people alike, computed "
            f"exactly; {e.months} months; each arm run once.\n"
            f"Everyone {describe(person_of(pop.cohort))}{given}, starting in the model's initial "
            "distribution for them.\n"
            f"Costs in {e.price_year} prices, discounted at {e.discount.costs:.1%} a year "
            f"({e.discount.effects:.1%} for effects); no intervals: nothing is sampled, so there is no "
            "Monte-Carlo error (parameter uncertainty: hhsim psa).")


def _print_details(res: Results, tables: bool, checks: bool = True) -> None:
    """Totals per arm and, with ``tables``, every other table of the run."""
    from hhsim.analysis.cost_effectiveness import format_cost_effectiveness
    from hhsim.analysis.economics import format_economics
    from hhsim.analysis.payers import format_payers
    from hhsim.analysis.summary import format_checks, format_interventions, format_table, kinds_of

    exact = res.mode == "cohort"
    print("\n" + format_table(res.summary, res.experiment.baseline, "Totals for the people represented:",
                              exact=exact))
    if not tables:
        return
    kinds = kinds_of({a["name"]: a["interventions"] for a in res.plan["arms"]})
    names = {arm: list(k) for arm, k in kinds.items()}
    for block in (format_interventions(res.records, names, res.experiment.baseline, kinds),
                  format_economics(res.economics, res.experiment.baseline, res.plan["months_per_step"],
                                   exact),
                  format_payers(res.analysis["payers"]),
                  format_cost_effectiveness(res.analysis["cost_effectiveness"], res.analysis["nmb"],
                                            exact=exact)):
        if block:
            print("\n" + block)
    if checks:
        print("\n" + format_checks(res.check_summary))


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from hhsim.studies.sensitivity.run import run_sensitivity

    out = output_folder(args.out) if args.out else None
    try:
        res = run_sensitivity(args.file, out, method=args.method, samples=args.samples, workers=args.workers,
                              scheduler=args.scheduler, resume=args.resume, progress=not args.quiet,
                              seed=args.seed, tenants=args.tenants, months=args.months,
                              replications=args.replications)
    except KeyboardInterrupt:
        return _interrupted(out)
    s = res.summary
    print(f"Sensitivity analysis ({s['method']}, N = {s['samples']}): {s['points']} points, {s['runs']} runs "
          f"of {s['tenants']:,} tenants over {s['months']} months; arm {s['arm']}"
          + (f" against {s['baseline']}." if s["arm"] != s["baseline"] else "."))
    for info in s["outputs"].values():
        print("  " + info["text"])
    for warning in s["warnings"]:
        print("Warning: " + warning)
    print(f"\nWrote indices.csv/.parquet, outcomes.csv/.parquet, design.csv/.parquet, oneway.csv, "
          f"sensitivity.md/.json, section.html and {len(s['plots'])} plot files to {res.out} "
          f"({s['elapsed_seconds']} s)")
    return 0


def cmd_psa(args: argparse.Namespace) -> int:
    from hhsim.analysis.precision import parse_precision
    from hhsim.studies.psa.run import run_psa

    out = output_folder(args.out) if args.out else None
    precision = None
    if args.precision is not None:
        precision = parse_precision(args.precision, args.precision_outcome, args.max_draws)
    try:
        res = run_psa(args.file, out, draws=args.draws, posterior=args.posterior, workers=args.workers,
                      scheduler=args.scheduler, resume=args.resume, progress=not args.quiet, seed=args.seed,
                      tenants=args.tenants, months=args.months, replications=args.replications,
                      precision=precision, shipped=not args.no_posterior)
    except KeyboardInterrupt:
        return _interrupted(out)
    s = res.summary
    print(f"Probabilistic sensitivity analysis: {s['draws']} draws x {s['replications']} replication(s) x "
          f"{len(s['arms'])} arms of {s['tenants']:,} tenants over {s['months']} months ({s['perspective']} "
          "costs, discounted).")
    for used in s["shipped_posterior"]:
        print(f"Drawn from the shipped posterior '{used['name']}' (whole rows, weighted): "
              f"{', '.join(used['parameters'])}.")
    if "precision" in s:
        p = s["precision"]
        print(f"Draws chosen for the mean {p['outcome']} within {p['target']}: "
              f"{' -> '.join(map(str, p['rounds']))}; {p['stopped']}.")
    for line in s["findings"]:
        print("  " + line)
    if s["evppi_findings"]:
        print("EVPPI (£ per person, 95% interval):")
        for line in s["evppi_findings"]:
            print("  " + line)
    for warning in s["warnings"]:
        print("Warning: " + warning)
    print(f"\nWrote parameters, draws and incremental (.parquet), ceac.csv, evpi.csv, evppi.csv, psa.json, "
          f"section.html and {len(s['plots'])} plot files to {res.out} ({s['elapsed_seconds']} s)")
    return 0


def _ship_parser(sub: argparse._SubParsersAction) -> None:
    ship = sub.add_parser("ship-posterior", help="ship a finished calibration's posterior in the package: "
                                                 "hhsim/data/posterior/<name>.csv and .toml, and the default "
                                                 "model's values at its medians (docs/calibration.md)")
    ship.add_argument("folder", help="output folder of a finished 'hhsim calibrate' (not --fast)")
    ship.add_argument("--name", help="name of the shipped posterior (default: the calibration's name)")
    ship.add_argument("--model", help="the model file whose values are set (default: the package's default "
                                      "model file)")
    ship.add_argument("--into", help="folder of the shipped posteriors (default: the package's "
                                     "hhsim/data/posterior)")


def cmd_ship_posterior(args: argparse.Namespace) -> int:
    from hhsim.studies.calibration.ship import ship_posterior

    res = ship_posterior(args.folder, name=args.name, model=args.model, folder=args.into)
    t = res.table
    print(f"Shipped posterior '{res.name}': {res.csv} and {res.toml}; values set in {res.model}:")
    for r in t.itertuples():
        status = "C (calibrated)" if r.calibrated else "status kept (sd not halved)"
        print(f"  {r.parameter} = {r.posterior_median:.6g}: posterior sd {r.posterior_sd:.4g} vs prior sd "
              f"{r.prior_sd:.4g} (ratio {r.ratio:.2f}): {status}")
    print("Regenerate docs/parameters.md with 'hhsim params --markdown docs/parameters.md'.")
    return 0


def cmd_break_even(args: argparse.Namespace) -> int:
    from hhsim.analysis.break_even import MAX_REPLICATIONS, format_break_even
    from hhsim.analysis.precision import parse_precision
    from hhsim.studies.break_even import search_break_even

    if args.max_replications is not None and args.precision is None:
        raise HhsimError("--max-replications", "only applies with --precision",
                         "add --precision (e.g. 5%), or drop --max-replications")
    precision = None if args.precision is None else parse_precision(
        args.precision, "break-even value", args.max_replications or MAX_REPLICATIONS)
    plan = compile_file(args.file, tenants=args.tenants, months=args.months, replications=args.replications)
    exp = plan.experiment
    res = search_break_even(plan, args.arm, args.parameter, tuple(args.between), threshold=args.threshold,
                            precision=precision, workers=args.workers, scheduler=args.scheduler)
    people = (f"the tenants of {exp.population.stock}" if exp.population.stock
              else f"{exp.population.tenants:,} tenants")
    print(format_break_even(res, args.arm, exp.baseline, f"{people}, {exp.experiment.months} months"))
    if res.refusal is not None:
        raise res.refusal
    if res.warning:
        print(f"hhsim: warning: {res.warning}", file=sys.stderr)
    return 0


# --- hhsim calibrate (issue 10; docs/calibration.md) ---

def _calibrate_parser(sub: argparse._SubParsersAction) -> None:
    cal = sub.add_parser("calibrate", help="calibrate parameters to sourced targets (ABC-SMC with pyabc, "
                                           "after history matching when the file has [history_matching]; "
                                           "or --fast; docs/calibration.md)")
    cal.add_argument("file", help="calibration file (TOML)")
    cal.add_argument("--out", help="output folder (default: hhsim-results/<name>-calibration[-fast]); "
                                   "an interrupted ABC calibration continues there (history matching: "
                                   "from its stored waves)")
    cal.add_argument("--fast", action="store_true", help="a point estimate with scipy.optimize (fixed common "
                                                          "random numbers) instead of ABC-SMC")
    cal.add_argument("--scheduler", help="Dask scheduler address (pyabc's Dask sampler)")
    cal.add_argument("--single-core", action="store_true", help="pyabc's single-core sampler (reproducible "
                                                                "from the calibration seed)")
    cal.add_argument("--workers", type=_positive, help="local worker processes (default: all cores)")
    cal.add_argument("--quiet", action="store_true", help="no progress bar")
    cal.add_argument("--generations", type=_positive,
                     help="stop after this many ABC-SMC generations in all, fewer than the file's (the "
                          "results say so); run again with more, or without it, to continue")
    size = cal.add_argument_group("size (the files' values unless given; e.g. a smaller trial run)")
    size.add_argument("--tenants", type=_positive, help="tenants of every target's experiment")
    size.add_argument("--months", type=_positive, help="months of every target's experiment")
    size.add_argument("--replications", type=_positive, help="replications per evaluation")
    size.add_argument("--evaluations", type=_positive, help="--fast: objective evaluations allowed")
    size.add_argument("--predictive", type=_positive, help="predictive draws for the fit table (at least "
                                                           "20 for its 95%% intervals to mean anything)")
    size.add_argument("--precision", help="more predictive draws, in rounds, until each target's simulated "
                                          "mean is known to this (95%% MC half-width): e.g. 5%% or 500")
    size.add_argument("--max-predictive", type=_positive, default=None,
                      help="most predictive draws --precision may run (default 200)")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from hhsim.analysis.precision import parse_precision
    from hhsim.studies.calibration.abc import import_pyabc
    from hhsim.studies.calibration.outputs import format_results
    from hhsim.studies.calibration.problem import SIZES, load_problem
    from hhsim.studies.calibration.run import calibrate, describe

    if args.max_predictive is not None and args.precision is None:
        raise HhsimError("--max-predictive", "has no effect without --precision",
                         "give --precision too, or drop --max-predictive")
    if args.fast and args.generations is not None:
        raise HhsimError("--generations", "has no effect with --fast", "drop one of them")
    if not args.fast:
        import_pyabc()  # before the header is printed
    precision = (parse_precision(args.precision, "simulated mean", args.max_predictive or 200)
                 if args.precision is not None else None)
    sizes = {k: getattr(args, k) for k in SIZES if getattr(args, k) is not None}
    problem = load_problem(args.file, sizes)
    name = problem.settings["name"]
    suffix = "-fast" if args.fast else ""
    out = output_folder(args.out) if args.out else Path("hhsim-results") / f"{name}-calibration{suffix}"
    generations = args.generations
    if generations is not None and generations > problem.settings["generations"]:
        raise HhsimError("--generations", f"is more than the file's {problem.settings['generations']}",
                         "give at most that, or raise [calibration] generations in the file")
    print("\n".join(describe(problem, args.fast, sizes, precision, generations)), flush=True)
    try:
        calibrate(args.file, out, fast=args.fast, scheduler=args.scheduler,
                  sampler="single" if args.single_core else "multicore", workers=args.workers,
                  generations=generations, progress=not args.quiet, sizes=sizes, precision=precision)
    except KeyboardInterrupt:
        again = ("rerun the same command to continue from " + str(out / "abc.db")
                 + (" and the stored history-matching waves" if problem.history_matching else "")
                 if not args.fast else "rerun the command (--fast starts again)")
        print(f"\nhhsim: interrupted; {again}",
              file=sys.stderr)
        return 130
    print("\n" + format_results(out))
    waves = "history_matching.csv, nroy.parquet, " if problem.history_matching and not args.fast else ""
    print(f"\nWrote {waves}posterior.parquet, summary.csv, fit.csv, diagnostics and plots to {out}")
    return 0


def file_kind(path: Path) -> str:
    """What kind of hhsim file ``path`` is: experiment, calibration, target, study, model or
    validation notes (TOML: by its sections), stock or profile (CSV: by its header)."""
    from hhsim.core.parameters import read_toml

    if path.suffix.lower() == ".csv":
        head = read_input(path, "CSV file", "csv")[:4096].decode("utf-8-sig", "replace").lower()
        columns = {c.strip() for c in head.splitlines()[0].split(",")} if head.strip() else set()
        return "profile" if {"age_band", "count"} <= columns else "stock"
    sections = set(read_toml(path, "TOML file"))
    if sections == {"misses"}:
        return "notes"
    if "calibration" in sections:
        return "calibration"
    if "target" in sections:
        return "target"
    if "study" in sections:
        return "study"
    if sections & {"model", "chains"} and not sections & {"experiment", "arms", "population"}:
        return "model"
    return "experiment"


def _validate_experiment(path: str) -> list[str]:
    import numpy as np

    from hhsim.world.stock import load_stock

    plan = compile_file(path)
    exp = plan.experiment
    runs = len(exp.arms) * exp.experiment.replications
    tenants = f"{exp.population.tenants:,} tenants"
    report = None
    if exp.stock_path is not None:
        chains = plan.arms[0].health.chains
        _, _, report = load_stock(exp.stock_path, exp.world_tree(),
                                  {n: c.states for n, c in chains.items()}, np.random.default_rng(0))
        tenants = f"{report.rows:,} tenants in {report.dwellings:,} dwellings from {exp.population.stock}"
    lines = [f"{path}: valid experiment file ({len(exp.arms)} arm(s) x {exp.experiment.replications} "
             f"replication(s) = {runs} runs of {tenants}, {exp.experiment.months} months)"]
    if exp.sensitivity is not None:
        from hhsim.experiment.sensitivity_section import setup
        from hhsim.studies.sensitivity.design import point_count

        st = setup(exp)
        points = point_count(st)
        lines.append(f"Sensitivity ({st.method}, N = {st.samples}) over {len(st.names)} parameter(s), arm "
                     f"{st.arm}: {points:,} points x {runs} run(s) per point = {points * runs:,} runs; "
                     f"outputs {', '.join(st.outputs)}")
    if report is not None:
        lines.append("Stock file: " + (", ".join(report.given_states) or "no") + " health states given.")
        lines += [f"  filled {column}: {how}" for column, how in report.filled.items()]
    return lines


def _validate_stock(path: str) -> list[str]:
    import numpy as np

    from hhsim.core.resources import default_model_tree
    from hhsim.core.resources import world_tree as default_world_tree
    from hhsim.health.model_file import compile_model
    from hhsim.world.stock import load_stock

    chains = compile_model(default_model_tree()).chains
    _, _, report = load_stock(path, default_world_tree(), {n: c.states for n, c in chains.items()},
                              np.random.default_rng(0))
    lines = [f"{path}: valid stock file ({report.rows:,} tenants in {report.dwellings:,} dwellings; "
             + (", ".join(report.given_states) or "no") + " health states given)"]
    return lines + [f"  filled {column}: {how}" for column, how in report.filled.items()]


def _validate_profile(path: str) -> list[str]:
    from hhsim.world.profile import read_profile

    profile = read_profile(path)
    mix = ", ".join(f"{t} {share:.1%}" for t, share in profile.tenure_mix().items())
    return [f"{path}: valid profile file ({profile.total:,.0f} people; {mix})"]


def _validate_calibration(path: str) -> list[str]:
    from hhsim.studies.calibration.problem import load_problem

    problem = load_problem(path)
    return [f"{path}: valid calibration file ({len(problem.priors)} parameter(s) to calibrate against "
            f"{len(problem.targets)} target(s))"]


def _validate_targets(path: str) -> list[str]:
    from hhsim.studies.calibration.targets import load_gaps, load_targets

    targets, gaps = load_targets(path), load_gaps(path)
    held = sum(t.held_out for t in targets)
    return [f"{path}: valid target file ({len(targets)} target(s){f', {held} held out' if held else ''}"
            f"{f', {len(gaps)} gap(s)' if gaps else ''}: {', '.join(t.name for t in targets)})"]


def _validate_study(path: str) -> list[str]:
    from hhsim.studies.calibration.study_files import load_study

    s = load_study(path)
    n = f"n = {s.n:,}" if s.n is not None else "n not published"
    return [f"{path}: valid study file ({s.grade}, {n}, {len(s.outcomes)} outcome(s): "
            f"{', '.join(o.name for o in s.outcomes)}; replayed by {s.experiment.name})"]


def _validate_model(path: str) -> list[str]:
    from hhsim.core.parameters import parameters_of, read_toml
    from hhsim.health.model_file import compile_model

    tree = read_toml(path, "model file")
    model = compile_model(tree)
    return [f"{path}: valid model file ({len(model.chains)} chain(s), {model.cycle_months}-month cycle, "
            f"{len(parameters_of(tree))} parameters)"]


def _validate_notes(path: str) -> list[str]:
    from hhsim.studies.baseline.check import read_misses

    return [f"{path}: valid validation notes file ({len(read_misses(Path(path)))} explanation(s) of missed "
            "targets, read by hhsim check-model)"]


VALIDATORS = {"notes": _validate_notes, "experiment": _validate_experiment, "stock": _validate_stock,
              "profile": _validate_profile, "calibration": _validate_calibration, "target": _validate_targets,
              "model": _validate_model, "study": _validate_study}


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        lines = VALIDATORS[file_kind(Path(args.file))](args.file)
    except HhsimError as err:
        for line in err.details:  # every problem of a CSV file, one per line
            print("  " + line)
        raise
    print("\n".join(lines))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from hhsim.report.page import write_report  # matplotlib only when a report is asked for

    path = write_report(check_path(args.outdir), svg=args.svg)
    kinds = "PNG and SVG" if args.svg else "PNG"
    print(f"Wrote {path} (figures as {kinds} in {path.parent / 'figures'})")
    return 0


def cmd_headlines(args: argparse.Namespace) -> int:
    command = " ".join(["hhsim headlines", "--out", args.out, "--replications", str(args.replications),
                        *(["--workers", str(args.workers)] if args.workers else []),
                        *(["--only", *args.only] if args.only else [])])
    write_headlines(check_path(args.out, "--out"), Path(args.experiments), command,
                    replications=args.replications, workers=args.workers, only=args.only)
    return 0


def write_headlines(out: Path, experiments: Path, command: str, *, replications: int = 10,
                    workers: int | None = None, only: list[str] | None = None,
                    tenants: int | None = None) -> str:
    """Run each experiment ``hhsim.report.headlines.selected`` chooses with ``replications``
    per arm (and ``tenants``, for a quick check), each into a temporary folder deleted
    afterwards, and write their headline results to ``out`` (markdown, atomically); the text.
    With ``only`` and an existing ``out`` of this model version, the other experiments'
    sections are kept (``hhsim.report.headlines.merged``)."""
    import tempfile
    import time

    from hhsim.api import load_results, run_experiment
    from hhsim.batch.files import atomic_write
    from hhsim.report import headlines

    chosen = headlines.selected(experiments, only or [])
    old = out.read_text() if only and out.is_file() else None
    if old is not None:  # refuse a page of another model version before anything runs
        headlines.merged(old, {}, [], command)
    sections, began = {}, time.monotonic()
    for name, path in chosen.items():
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="hhsim-headlines-") as tmp:
            folder = Path(tmp) / name
            run_experiment(path, folder, workers=workers, replications=replications, tenants=tenants)
            sections[name] = headlines.section(name, path.as_posix(), load_results(folder))
        print(f"{name}: {time.monotonic() - start:,.0f} s", flush=True)
    if old is not None:  # --only on an existing page: the other experiments' sections are kept
        kept, command = headlines.merged(old, sections, list(headlines.shipped(experiments)), command)
        text = headlines.page(kept, command, replications)
    else:
        text = headlines.page(list(sections.values()), command, replications)
    atomic_write(out, lambda p: p.write_text(text))
    print(f"Wrote {out} ({len(sections)} experiment(s) run, {time.monotonic() - began:,.0f} s)")
    return text


def cmd_check_model(args: argparse.Namespace) -> int:
    from hhsim.batch.files import atomic_write, write_csv
    from hhsim.studies.baseline.check import check_model, markdown, misses
    from hhsim.studies.sensitivity.screen import screen_table

    if args.drift_years < 0:
        raise HhsimError("--drift-years", f"must be 0 or more, got {args.drift_years}",
                         "give a number of years")
    out = check_path(args.out, "--out")
    csv = check_path(args.csv, "--csv") if args.csv else None
    path = Path(args.file)
    if not path.is_file():
        raise HhsimError(args.file, "calibration file not found",
                         "run from a checkout of the hhsim repository, or give the file's path")
    notes = misses(path)
    sizes = {"tenants": args.tenants} if args.tenants else {}
    check = check_model(path, draws=args.draws, sizes=sizes, workers=args.workers, scheduler=args.scheduler,
                        drift_tenants=args.drift_tenants, drift_years=args.drift_years, progress=True)
    for r in check.coverage().itertuples():
        share = "unknown" if r.share != r.share else f"{r.share:.0%}"
        print(f"{r.role}: {r.covered} of {r.targets} covered, {r.not_covered} not, {r.unknown} unknown "
              f"({share} of those known; {r.required:.0%} required)")
    ranking = path.parent / "screen" / "ranking.csv"
    text = markdown(check, notes, screen_table(ranking) if ranking.is_file() else None)
    atomic_write(out, lambda p: p.write_text(text))
    if csv is not None:
        write_csv(csv, check.fit)
    print(f"Wrote {out}" + (f" and {csv}" if csv else "") + f" ({check.info['seconds'] / 60:.1f} minutes)")
    return 0


STUDIES = Path("calibration/studies")


def cmd_evidence(args: argparse.Namespace) -> int:
    from hhsim.batch.files import write_csv
    from hhsim.studies.calibration.study_files import load_study, study_files
    from hhsim.studies.evidence import simulate_study, table, text

    if args.all == bool(args.files):
        raise HhsimError("hhsim evidence", "needs study files or --all, not both",
                         "give study files, or --all for every file in calibration/studies/")
    csv = check_path(args.csv, "--csv") if args.csv else None
    paths = study_files(STUDIES) if args.all else [check_path(f, "study file") for f in args.files]
    studies = [load_study(p) for p in paths]  # every file checked before anything runs
    estimates = []
    for study in studies:
        found = simulate_study(study, replications=args.replications, workers=args.workers, seed=args.seed,
                               tenants=args.tenants)
        print(text(found), flush=True)
        estimates += found
    if csv is not None:
        write_csv(csv, table(estimates))
        print(f"Wrote {csv}")
    counts = {v: sum(e.verdict == v for e in estimates)
              for v in ("within", "outside", "unknown", "not judged")}
    unjudged = (f", {counts['not judged']} not judged (no interval published)"
                if counts["not judged"] else "")
    print(f"{len(estimates)} estimates: {counts['within']} within the published 95% interval, "
          f"{counts['outside']} outside, {counts['unknown']} unknown (more replications would tell)"
          f"{unjudged}")
    outside = counts["outside"]
    return 1 if args.check and outside else 0


def cmd_params(args: argparse.Namespace) -> int:
    import pandas as pd

    from hhsim.batch.files import atomic_write, write_csv
    from hhsim.core.parameters import read_toml
    from hhsim.report import paramtable

    params = paramtable.default_parameters(read_toml(args.model, "model file") if args.model else None)
    if args.markdown:
        text = paramtable.markdown(params, paramtable.TITLE)
        atomic_write(check_path(args.markdown, "--markdown"), lambda p: p.write_text(text))
        print(f"Wrote {len(params)} parameters to {args.markdown}")
    if args.csv:
        write_csv(check_path(args.csv, "--csv"), pd.DataFrame([
            {"name": p.name, "value": p.value, "unit": p.unit, "price_year": p.price_year or "",
             "status": paramtable.status_of(p), "source": p.source} for p in params]))
        print(f"Wrote {len(params)} parameters to {args.csv}")
    if args.markdown or args.csv:
        return 0
    for p in params:
        money = f" [{p.price_year}]" if p.price_year else ""
        print(f"{p.name} = {paramtable.short_value(p.value, limit=3)} {p.unit}{money} "
              f"({paramtable.status_of(p)}) {p.source}")
    return 0


def main(argv: list[str] | None = None) -> int:
    commands = {"run": cmd_run, "sensitivity": cmd_sensitivity, "psa": cmd_psa, "break-even": cmd_break_even,
                "calibrate": cmd_calibrate, "ship-posterior": cmd_ship_posterior, "validate": cmd_validate,
                "params": cmd_params, "report": cmd_report, "headlines": cmd_headlines,
                "check-model": cmd_check_model, "evidence": cmd_evidence}
    args = None
    try:
        with ctrl_c_noticed():
            args = parser().parse_args(argv)
            code = commands[args.command](args)
            if code == 0:
                raise_if_pressed()  # a Ctrl-C that Python dropped: the command is not reported done
            return code
    except HhsimError as err:
        print(f"hhsim: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # outside a batch: while starting, validating, analysing or printing
        out = getattr(args, "out", None)
        return _interrupted(Path(out) if out else None, started=False)


if __name__ == "__main__":
    sys.exit(main())
