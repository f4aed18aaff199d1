"""The ``hhsim`` command: run, validate and inspect experiments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hhsim import paramtable
from hhsim.analysis.cost_effectiveness import format_cost_effectiveness
from hhsim.analysis.economics import format_economics
from hhsim.analysis.payers import format_payers
from hhsim.analysis.summary import format_checks, format_interventions, format_table
from hhsim.analysis.tables import TABLES
from hhsim.api import package_version, run_experiment
from hhsim.errors import HhsimError
from hhsim.experiment import load_experiment
from hhsim.files import check_path, output_folder, read_input
from hhsim.health.model_file import compile_model
from hhsim.parameters import parameters_of, read_toml
from hhsim.resources import default_model_tree
from hhsim.resources import world_tree as default_world_tree
from hhsim.world.profile import read_profile
from hhsim.world.stock import load_stock


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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hhsim", description="Simulate housing interventions and health.")
    p.add_argument("--version", action="version", version=f"hhsim {package_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an experiment (the built-in default when no file is given)")
    run.add_argument("file", nargs="?", help="experiment file (TOML)")
    run.add_argument("--out", help="output folder (default: hhsim-results/<name>-<time>)")
    _batch_options(run, "experiment seed", "replications per arm", "continue a batch in --out")

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
    psa.add_argument("file", help="experiment file (TOML), with a [psa] section unless --posterior is given")
    psa.add_argument("--draws", type=_positive, help="parameter draws (overrides the file's)")
    psa.add_argument("--posterior", help="draw (also) from a calibration posterior (posterior.parquet)")
    psa.add_argument("--out", help="output folder (default: hhsim-results/<name>-psa-<time>); put it inside "
                                   "a run's folder to have 'hhsim report' include it")
    _batch_options(psa, "experiment seed (draws and runs)", "replications per arm and draw",
                   "continue a PSA in --out")

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
    be.add_argument("--replications", type=_positive, help="replications per arm")
    be.add_argument("--workers", type=_positive, help="local worker processes (default: all cores)")

    _calibrate_parser(sub)

    val = sub.add_parser("validate", help="check a file without running anything: an experiment, "
                                          "calibration, target or model file (TOML), a stock or "
                                          "profile file (CSV)")
    val.add_argument("file", help="the file to check (its kind is recognised from its contents)")

    rep = sub.add_parser("report", help="write OUTDIR/report.html: tables, figures and findings of a run")
    rep.add_argument("outdir", help="output folder of 'hhsim run'")

    par = sub.add_parser("params", help="list the parameters with their values and sources")
    par.add_argument("--model", help="a model file instead of the default model")
    par.add_argument("--csv", help="write the full table to this CSV file")
    par.add_argument("--markdown", help="write the table as markdown to this file")
    return p


def _interrupted(out: Path | None) -> int:
    if out is not None and (out / "runs").is_dir():
        done = len(list((out / "runs").glob("*.parquet")))
        print(f"\nhhsim: interrupted; {done} finished runs are saved in {out}; "
              f"rerun with --resume --out {out} to finish", file=sys.stderr)
    else:
        print("\nhhsim: interrupted; rerun with --resume --out <folder> to finish", file=sys.stderr)
    return 130


def cmd_run(args: argparse.Namespace) -> int:
    exp = load_experiment(args.file).with_options(
        seed=args.seed, tenants=args.tenants, months=args.months, replications=args.replications)
    out = output_folder(args.out) if args.out else None
    try:
        res = run_experiment(exp, out, workers=args.workers, scheduler=args.scheduler,
                             resume=args.resume, progress=not args.quiet)
    except KeyboardInterrupt:
        return _interrupted(out)
    e = res.experiment.experiment
    population = res.records["population"].iloc[0] if not res.records.empty else 0
    tenants = int(res.records["tenants"].iloc[0]) if not res.records.empty else 0
    header = (f"{tenants:,} tenants simulated, representing "
              f"{population:,.0f} people; {e.months} months; mean of {e.replications} replication(s).\n"
              f"Costs in {e.price_year} prices; discounted at {e.discount.costs:.1%} a year (costs) and "
              f"{e.discount.effects:.1%} (effects); intervals are 95% Monte-Carlo intervals.")
    moved = res.records["profile_people_moved"].max() if not res.records.empty else 0
    if moved:
        header += (f"\nProfile cells with no simulated tenant: up to {moved:,.0f} people counted in "
                   "the nearest cells (give more tenants to reduce this).")
    print(format_table(res.summary, res.experiment.baseline, header))
    names = {a.name: [t["name"] for t in res.experiment.interventions(a)] for a in res.experiment.arms}
    for block in (format_interventions(res.records, names, res.experiment.baseline),
                  format_economics(res.economics, res.experiment.baseline,
                                   12 if res.records["steps"].iloc[0] * 12 == e.months else 1),
                  format_payers(res.analysis["payers"]),
                  format_cost_effectiveness(res.analysis["cost_effectiveness"], res.analysis["nmb"])):
        if block:
            print("\n" + block)
    print("\n" + format_checks(res.check_summary))
    print(f"\nWrote {len(res.records)} run records to {res.out / 'runs.parquet'}; "
          f"summary.csv, economics.csv, groups.csv, checks.csv and {len(TABLES)} analysis tables "
          f"to {res.out}\nHTML report with figures: hhsim report {res.out}")
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from hhsim.sensitivity.run import run_sensitivity

    exp = load_experiment(args.file)
    out = output_folder(args.out) if args.out else None
    try:
        res = run_sensitivity(exp, out, method=args.method, samples=args.samples, workers=args.workers,
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
    from hhsim.psa.run import run_psa

    exp = load_experiment(args.file)
    if exp.psa is None and args.posterior is None:
        raise HhsimError(args.file, "has no [psa] section", "add one with parameters (docs/psa.md), "
                         "or give --posterior")
    out = output_folder(args.out) if args.out else None
    try:
        res = run_psa(exp, out, draws=args.draws, posterior=args.posterior, workers=args.workers,
                      scheduler=args.scheduler, resume=args.resume, progress=not args.quiet, seed=args.seed,
                      tenants=args.tenants, months=args.months, replications=args.replications)
    except KeyboardInterrupt:
        return _interrupted(out)
    s = res.summary
    print(f"Probabilistic sensitivity analysis: {s['draws']} draws x {s['replications']} replication(s) x "
          f"{len(s['arms'])} arms of {s['tenants']:,} tenants over {s['months']} months ({s['perspective']} "
          "costs, discounted).")
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


def cmd_break_even(args: argparse.Namespace) -> int:
    from hhsim.analysis.break_even import search_break_even

    low, high = args.between
    if not low < high:
        raise HhsimError("--between", f"{low:g} is not below {high:g}", "give LOW then HIGH")
    res = search_break_even(load_experiment(args.file), args.arm, args.parameter, (low, high),
                            threshold=args.threshold, tenants=args.tenants, months=args.months,
                            replications=args.replications, workers=args.workers)
    measure = "ROI" if args.threshold is None else "incremental NMB"
    for x, v in res.evaluations:
        print(f"  {args.parameter} = {x:.6g}: {measure} {v:,.4g}")
    if res.value != res.value:  # NaN: not bracketed
        raise HhsimError(args.parameter, f"{args.arm} does not reach {res.target} between {low:g} and "
                         f"{high:g}", "widen --between")
    print(f"{args.arm} reaches {res.target} at {args.parameter} = {res.value:.6g} "
          "(common random numbers; the other settings as in the file)")
    return 0


# --- hhsim calibrate (issue 10; docs/calibration.md) ---

def _calibrate_parser(sub: argparse._SubParsersAction) -> None:
    cal = sub.add_parser("calibrate", help="calibrate parameters to sourced targets (ABC-SMC with pyabc, or "
                                           "--fast; docs/calibration.md)")
    cal.add_argument("file", help="calibration file (TOML)")
    cal.add_argument("--out", help="output folder (default: hhsim-results/<name>-calibration[-fast]); "
                                   "an interrupted ABC calibration continues there")
    cal.add_argument("--fast", action="store_true", help="a point estimate with scipy.optimize (fixed common "
                                                          "random numbers) instead of ABC-SMC")
    cal.add_argument("--scheduler", help="Dask scheduler address (pyabc's Dask sampler)")
    cal.add_argument("--single-core", action="store_true", help="pyabc's single-core sampler (reproducible "
                                                                "from the calibration seed)")
    cal.add_argument("--workers", type=_positive, help="local worker processes (default: all cores)")
    cal.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_calibrate(args: argparse.Namespace) -> int:
    import pandas as pd

    from hhsim.calibration.problem import load_problem
    from hhsim.calibration.run import calibrate

    problem = load_problem(args.file)
    name = problem.settings["name"]
    suffix = "-fast" if args.fast else ""
    out = output_folder(args.out) if args.out else Path("hhsim-results") / f"{name}-calibration{suffix}"
    try:
        calibrate(args.file, out, fast=args.fast, scheduler=args.scheduler,
                  sampler="single" if args.single_core else "multicore", workers=args.workers,
                  progress=not args.quiet)
    except KeyboardInterrupt:
        again = ("rerun the same command to continue from " + str(out / "abc.db") if not args.fast
                 else "rerun the command (--fast starts again)")
        print(f"\nhhsim: interrupted; {again}",
              file=sys.stderr)
        return 130
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_colwidth", 40):
        summary = pd.read_csv(out / "summary.csv")
        columns = (["parameter", "prior_mean", "estimate"] if "estimate" in summary else
                   ["parameter", "prior_mean", "posterior_median", "posterior_low95", "posterior_high95",
                    "contraction"])
        print(summary[columns].to_string(index=False))
        fit = pd.read_csv(out / "fit.csv")
        print("\n" + fit[["target", "observed", "simulated_median", "predictive_low95", "predictive_high95",
                          "covered"]].to_string(index=False))
    print(f"\nWrote posterior.parquet, summary.csv, fit.csv, diagnostics and plots to {out}")
    return 0


def file_kind(path: Path) -> str:
    """What kind of hhsim file ``path`` is: experiment, calibration, target or model (TOML:
    by its sections), stock or profile (CSV: by its header)."""
    if path.suffix.lower() == ".csv":
        head = read_input(path, "CSV file", "csv")[:4096].decode("utf-8-sig", "replace").lower()
        columns = {c.strip() for c in head.splitlines()[0].split(",")} if head.strip() else set()
        return "profile" if {"age_band", "count"} <= columns else "stock"
    sections = set(read_toml(path, "TOML file"))
    if "calibration" in sections:
        return "calibration"
    if "target" in sections:
        return "target"
    if sections & {"model", "chains"} and not sections & {"experiment", "arms", "population"}:
        return "model"
    return "experiment"


def _validate_experiment(path: str) -> list[str]:
    exp = load_experiment(path)
    runs = len(exp.arms) * exp.experiment.replications
    tenants = f"{exp.population.tenants:,} tenants"
    report = None
    if exp.stock_path is not None:
        chains = compile_model(exp.trees(exp.arms[0])[0]).chains
        _, _, report = load_stock(exp.stock_path, exp.world_tree(),
                                  {n: c.states for n, c in chains.items()}, np.random.default_rng(0))
        tenants = f"{report.rows:,} tenants in {report.dwellings:,} dwellings from {exp.population.stock}"
    lines = [f"{path}: valid experiment file ({len(exp.arms)} arm(s) x {exp.experiment.replications} "
             f"replication(s) = {runs} runs of {tenants}, {exp.experiment.months} months)"]
    if exp.sensitivity is not None:
        from hhsim.sensitivity.design import point_count
        from hhsim.sensitivity.section import setup

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
    chains = compile_model(default_model_tree()).chains
    _, _, report = load_stock(path, default_world_tree(), {n: c.states for n, c in chains.items()},
                              np.random.default_rng(0))
    lines = [f"{path}: valid stock file ({report.rows:,} tenants in {report.dwellings:,} dwellings; "
             + (", ".join(report.given_states) or "no") + " health states given)"]
    return lines + [f"  filled {column}: {how}" for column, how in report.filled.items()]


def _validate_profile(path: str) -> list[str]:
    profile = read_profile(path)
    mix = ", ".join(f"{t} {share:.1%}" for t, share in profile.tenure_mix().items())
    return [f"{path}: valid profile file ({profile.total:,.0f} people; {mix})"]


def _validate_calibration(path: str) -> list[str]:
    from hhsim.calibration.problem import load_problem

    problem = load_problem(path)
    return [f"{path}: valid calibration file ({len(problem.priors)} parameter(s) to calibrate against "
            f"{len(problem.targets)} target(s))"]


def _validate_targets(path: str) -> list[str]:
    from hhsim.calibration.targets import load_targets

    targets = load_targets(path)
    return [f"{path}: valid target file ({len(targets)} target(s): {', '.join(t.name for t in targets)})"]


def _validate_model(path: str) -> list[str]:
    tree = read_toml(path, "model file")
    model = compile_model(tree)
    return [f"{path}: valid model file ({len(model.chains)} chain(s), {model.cycle_months}-month cycle, "
            f"{len(parameters_of(tree))} parameters)"]


VALIDATORS = {"experiment": _validate_experiment, "stock": _validate_stock, "profile": _validate_profile,
              "calibration": _validate_calibration, "target": _validate_targets, "model": _validate_model}


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
    from hhsim.report import write_report  # matplotlib only when a report is asked for

    path = write_report(check_path(args.outdir))
    print(f"Wrote {path} (figures as PNG and SVG in {path.parent / 'figures'})")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    import pandas as pd

    params = paramtable.default_parameters(read_toml(args.model, "model file") if args.model else None)
    if args.markdown:
        Path(args.markdown).write_text(paramtable.markdown(params, paramtable.TITLE))
        print(f"Wrote {len(params)} parameters to {args.markdown}")
    if args.csv:
        pd.DataFrame([{"name": p.name, "value": p.value, "unit": p.unit, "price_year": p.price_year or "",
                       "status": paramtable.status_of(p), "source": p.source} for p in params]
                     ).to_csv(args.csv, index=False)
        print(f"Wrote {len(params)} parameters to {args.csv}")
    if args.markdown or args.csv:
        return 0
    for p in params:
        money = f" [{p.price_year}]" if p.price_year else ""
        print(f"{p.name} = {paramtable.short_value(p.value, limit=3)} {p.unit}{money} "
              f"({paramtable.status_of(p)}) {p.source}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"run": cmd_run, "sensitivity": cmd_sensitivity, "psa": cmd_psa, "break-even": cmd_break_even,
                "calibrate": cmd_calibrate, "validate": cmd_validate, "params": cmd_params,
                "report": cmd_report}
    try:
        return commands[args.command](args)
    except HhsimError as err:
        print(f"hhsim: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
