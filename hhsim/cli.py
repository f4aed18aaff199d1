"""The ``hhsim`` command: run, validate and inspect experiments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hhsim import paramtable
from hhsim.analysis.economics import format_economics
from hhsim.analysis.summary import format_checks, format_interventions, format_table
from hhsim.api import package_version, run_experiment
from hhsim.errors import HhsimError
from hhsim.experiment import load_experiment
from hhsim.health.model_file import compile_model
from hhsim.parameters import read_toml
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hhsim", description="Simulate housing interventions and health.")
    p.add_argument("--version", action="version", version=f"hhsim {package_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an experiment (the built-in default when no file is given)")
    run.add_argument("file", nargs="?", help="experiment file (TOML)")
    run.add_argument("--out", help="output folder (default: hhsim-results/<name>-<time>)")
    run.add_argument("--seed", type=_non_negative, help="experiment seed")
    run.add_argument("--tenants", type=_positive, help="number of tenants")
    run.add_argument("--months", type=_positive, help="months to simulate")
    run.add_argument("--replications", type=_positive, help="replications per arm")
    run.add_argument("--workers", type=_positive, help="local worker processes (default: all cores)")
    run.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    run.add_argument("--resume", action="store_true", help="continue a batch in --out")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    sens = sub.add_parser("sensitivity", help="global sensitivity analysis of an experiment's [sensitivity] "
                                              "section (SALib; docs/sensitivity.md)")
    sens.add_argument("file", help="experiment file (TOML) with a [sensitivity] section")
    sens.add_argument("--method", choices=["sobol", "morris", "fast", "delta"], help="overrides the file's")
    sens.add_argument("--samples", type=_positive, help="SALib's N (overrides the file's)")
    sens.add_argument("--out", help="output folder (default: hhsim-results/<name>-sensitivity-<time>)")
    sens.add_argument("--seed", type=_non_negative, help="experiment seed (sample, runs and bootstrap)")
    sens.add_argument("--tenants", type=_positive, help="number of tenants")
    sens.add_argument("--months", type=_positive, help="months to simulate")
    sens.add_argument("--replications", type=_positive, help="replications per arm and point")
    sens.add_argument("--workers", type=_positive, help="local worker processes (default: all cores)")
    sens.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    sens.add_argument("--resume", action="store_true", help="continue a sweep in --out")
    sens.add_argument("--quiet", action="store_true", help="no progress bar")

    _calibrate_parser(sub)

    val = sub.add_parser("validate", help="check an experiment file without running it")
    val.add_argument("file", help="experiment file (TOML)")

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
    out = Path(args.out) if args.out else None
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
                  format_economics(res.economics, res.experiment.baseline)):
        if block:
            print("\n" + block)
    print("\n" + format_checks(res.check_summary))
    print(f"\nWrote {len(res.records)} run records to {res.out / 'runs.parquet'}; "
          f"summary.csv, economics.csv, groups.csv and checks.csv to {res.out}")
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from hhsim.sensitivity.run import run_sensitivity

    exp = load_experiment(args.file)
    if exp.sensitivity is None:
        raise HhsimError(args.file, "has no [sensitivity] section",
                         "add one with parameters and outputs (see docs/sensitivity.md)")
    out = Path(args.out) if args.out else None
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
          f"sensitivity.md/.json and {len(s['plots'])} plot files to {res.out} ({s['elapsed_seconds']} s)")
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
    out = Path(args.out) if args.out else Path("hhsim-results") / f"{name}-calibration{suffix}"
    try:
        calibrate(args.file, out, fast=args.fast, scheduler=args.scheduler,
                  sampler="single" if args.single_core else "multicore", workers=args.workers,
                  progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\nhhsim: interrupted; rerun the same command to continue from {out / 'abc.db'}",
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


def cmd_validate(args: argparse.Namespace) -> int:
    exp = load_experiment(args.file)
    runs = len(exp.arms) * exp.experiment.replications
    tenants = f"{exp.population.tenants:,} tenants"
    report = None
    if exp.stock_path is not None:
        chains = compile_model(exp.trees(exp.arms[0])[0]).chains
        _, _, report = load_stock(exp.stock_path, exp.world_tree(),
                                  {n: c.states for n, c in chains.items()}, np.random.default_rng(0))
        tenants = f"{report.rows:,} tenants in {report.dwellings:,} dwellings from {exp.population.stock}"
    print(f"{args.file}: valid ({len(exp.arms)} arm(s) x {exp.experiment.replications} "
          f"replication(s) = {runs} runs of {tenants}, {exp.experiment.months} months)")
    if exp.sensitivity is not None:
        from hhsim.sensitivity.design import point_count
        from hhsim.sensitivity.section import setup

        st = setup(exp)
        points = point_count(st)
        print(f"Sensitivity ({st.method}, N = {st.samples}) over {len(st.names)} parameter(s), arm {st.arm}: "
              f"{points:,} points x {runs} run(s) per point = {points * runs:,} runs; "
              f"outputs {', '.join(st.outputs)}")
    if report is not None:
        print("Stock file: " + (", ".join(report.given_states) or "no") + " health states given.")
        for column, how in report.filled.items():
            print(f"  filled {column}: {how}")
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
    commands = {"run": cmd_run, "sensitivity": cmd_sensitivity, "validate": cmd_validate,
                "params": cmd_params, "calibrate": cmd_calibrate}
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
