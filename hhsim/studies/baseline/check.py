"""``hhsim check-model``: the model against its baseline targets, and docs/validation.md.

A check runs the targets of a calibration file (``calibration/baseline.toml``: England's
health and NHS use by age, sex and deprivation) at the model's parameter values: ``draws``
predictive draws, each a run of every target experiment with its own seed, and each
simulated figure with the target's observation noise added (``hhsim.studies.calibration``:
the fit table of a calibration, with the same definitions of the 95% predictive interval,
z and covered). Each target is *fitted* or *held out* (``held_out = true``: never used in
fitting, judged as a prediction), and coverage is counted apart for the two. The drift
check (``hhsim.studies.baseline.drift``) runs alongside; the target files' ``[[gap]]``
tables list what could not be compared. ``markdown`` renders all of it as the page.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import read_toml
from hhsim.core.resources import default_model_tree
from hhsim.core.version import MODEL_VERSION, package_version
from hhsim.studies.baseline.drift import (
    CHECK_YEARS,
    cohort_drift,
    drift_tables,
    stable_drift,
    standardised_drift,
)
from hhsim.studies.calibration.fit import number
from hhsim.studies.calibration.outputs import fit_table
from hhsim.studies.calibration.problem import Problem, load_problem
from hhsim.studies.calibration.run import draw_rows, predictive
from hhsim.studies.calibration.ship import shipped_posteriors
from hhsim.studies.calibration.targets import Gap, load_gaps

#: The baseline calibration file, relative to a checkout of the repository.
DEFAULT_FILE = Path("calibration/baseline.toml")
#: The explanations of misses, beside the calibration file.
NOTES = "validation-notes.toml"
#: Coverage issue 16 asks of the 95% predictive intervals: fitted and held-out targets.
REQUIRED = {"fitted": 0.90, "held out": 0.80}
#: Issue 16's drift limit: every band's share within 1 percentage point.
DRIFT_LIMIT = 0.01
#: A band is beyond (within) the limit when its whole 95% interval, change +- DRIFT_Z x se, is.
DRIFT_Z = 1.96


@dataclass
class ModelCheck:
    """What a check found: the fit table, the drift summary (by sex and age band, and by
    tenure and condition), the gaps and how it was run."""

    fit: pd.DataFrame
    drift: pd.DataFrame
    gaps: list[Gap]
    info: dict = field(default_factory=dict)
    group_drift: pd.DataFrame = field(default_factory=pd.DataFrame)

    def coverage(self) -> pd.DataFrame:
        """Per role (fitted, held out): targets, covered, not covered, unknown, and the
        covered share of those whose coverage is known."""
        rows = []
        for role in REQUIRED:
            part = self.fit[self.fit["role"] == role]
            yes, no = int((part["covered"] == "True").sum()), int((part["covered"] == "False").sum())
            rows.append({"role": role, "targets": len(part), "covered": yes, "not_covered": no,
                         "unknown": len(part) - yes - no,
                         "share": yes / (yes + no) if yes + no else float("nan"), "required": REQUIRED[role]})
        return pd.DataFrame(rows)


def misses(path: str | Path) -> dict[str, str]:
    """The explanations of missed targets: ``[misses]`` of ``validation-notes.toml`` beside the
    calibration file ``path`` (target name, or "drift", to a sentence); none if there is no file."""
    notes = Path(path).parent / NOTES
    return read_misses(notes) if notes.is_file() else {}


def read_misses(notes: Path) -> dict[str, str]:
    """The ``[misses]`` table of a validation notes file (one-line errors)."""
    table = read_toml(notes, "validation notes").get("misses", {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise HhsimError(f"{notes.name}: misses", "must map target names to sentences",
                         'write target_name = "why it is missed"')
    return dict(table)


def _gaps(problem: Problem) -> list[Gap]:
    files = dict.fromkeys(problem.source.parent / name for name in problem.settings["targets"])
    return [g for f in files for g in load_gaps(f.resolve())]


def bands_against_limit(change: pd.Series, se: pd.Series, limit: float = DRIFT_LIMIT,
                        z: float = DRIFT_Z) -> tuple[int, int]:
    """How many bands are beyond ``limit`` (their interval, change +- ``z`` se, 95% by default,
    lies wholly outside it) and how many are undecided (it straddles the limit): too few
    people in the check to say."""
    low, high = change.abs() - z * se, change.abs() + z * se
    return int((low > limit).sum()), int(((low <= limit) & (high > limit)).sum())


def drift_verdict(beyond: int, unsure: int) -> str:
    """"yes" (every band within the limit), "no" (some band beyond it, counted) or "unknown"
    (no band beyond, some undecided at this population size, counted)."""
    if beyond:
        return f"no ({beyond} band{'s' * (beyond > 1)})"
    if unsure:
        return f"unknown ({unsure} band{'s' * (unsure > 1)})"
    return "yes"


def later_states(frame: pd.DataFrame) -> pd.Series:
    """Rows whose state is not its chain's first (rows in the chain's order of states): a
    two-state chain's first share mirrors the other, so drift is judged on the later ones."""
    first = frame.groupby("chain", sort=False)["state"].transform("first")
    return frame["state"] != first


def drift_summary(stable: pd.DataFrame, cohort: pd.DataFrame, strata: pd.DataFrame) -> pd.DataFrame:
    """Per chain, state and check year: the largest and mean absolute change of a sex and
    age band's share against year 0, in the stable population as it is (``stable_*``) and
    with each band's make-up held at year 0 (``standardised_*``: tenure and deprivation
    fifth, ``standardised_drift``), and the largest and mean absolute observed-minus-expected
    share of the closed cohort, with the bands' typical (median) Monte-Carlo standard errors
    (each chain's states but its first, which mirrors them). Issue 16's limit is judged on
    the standardised and cohort bands together (``beyond``, ``unsure``), on the cohort alone
    (``cohort_*``) and, for comparison, on the stable view as it is (``raw_*``). The cohort
    view compares each person with their own cross-section chance, so it measures the chains'
    dynamics alone; the stable view as it is also moves when the people entering a band
    differ in tenure or deprivation from those who started in it."""
    s = stable_drift(stable)
    d = standardised_drift(strata)
    c = cohort_drift(cohort)
    rows = []
    for (chain, state), part in s[later_states(s)].groupby(["chain", "state"], sort=False):
        for year in sorted(set(part["year"])):
            a = part[part["year"] == year]
            z = d[(d["chain"] == chain) & (d["state"] == state) & (d["year"] == year)]
            b = c[(c["chain"] == chain) & (c["state"] == state) & (c["year"] == year)]
            beyond, unsure = bands_against_limit(pd.concat([z["change"], b["difference"]]),
                                                 pd.concat([z["se"], b["se"]]))
            cohort_beyond, cohort_unsure = bands_against_limit(b["difference"], b["se"])
            raw_beyond, raw_unsure = bands_against_limit(a["change"], a["se"])
            rows.append({"chain": chain, "state": state, "year": int(year),
                         "beyond": beyond, "unsure": unsure,
                         "cohort_beyond": cohort_beyond, "cohort_unsure": cohort_unsure,
                         "raw_beyond": raw_beyond, "raw_unsure": raw_unsure,
                         "stable_max": float(a["change"].abs().max()),
                         "stable_mean": float(a["change"].abs().mean()),
                         "stable_se": float(a["se"].median()),
                         "standardised_max": float(z["change"].abs().max()) if len(z) else float("nan"),
                         "standardised_mean": float(z["change"].abs().mean()) if len(z) else float("nan"),
                         "standardised_se": float(z["se"].median()) if len(z) else float("nan"),
                         "cohort_max": float(b["difference"].abs().max()) if len(b) else float("nan"),
                         "cohort_mean": float(b["difference"].abs().mean()) if len(b) else float("nan"),
                         "cohort_se": float(b["se"].median()) if len(b) else float("nan")})
    return pd.DataFrame(rows)


def group_summary(groups: pd.DataFrame) -> pd.DataFrame:
    """Per chain, non-first state, group (a tenure, or the people with a condition) and check
    year after 0: the adults' observed minus expected share (each person against their own
    cross-section chance) with its standard error, and whether it lies within ``DRIFT_LIMIT``
    on its 95% interval."""
    if groups.empty:
        return groups
    c = cohort_drift(groups)
    c = c[later_states(c) & (c["year"] > 0)]
    verdicts = [drift_verdict(*bands_against_limit(pd.Series([d]), pd.Series([e])))
                for d, e in zip(c["difference"], c["se"], strict=True)]
    return c.assign(verdict=verdicts)[["chain", "state", "group", "level", "year", "people", "difference",
                                       "se", "verdict"]].reset_index(drop=True)


def posterior_points(draws: int, seed: int) -> tuple[pd.DataFrame, str]:
    """``draws`` predictive points: whole rows of each shipped posterior, drawn by weight (the
    calibrated parameters' uncertainty, with their correlations), and what they are. Without
    a shipped posterior, no overrides: the model's values."""
    ships = shipped_posteriors()
    if not ships:
        return (pd.DataFrame(index=pd.RangeIndex(draws)),
                "the default model's values (no calibrated posterior is shipped)")
    frames = [s.rows.iloc[draw_rows(s.rows["weight"].to_numpy(), seed + i, draws)][list(s.parameters)]
              .reset_index(drop=True) for i, s in enumerate(ships)]
    names = ", ".join(f"'{s.name}' ({len(s.parameters)} parameters)" for s in ships)
    return (pd.concat(frames, axis=1),
            f"whole rows of the shipped posterior {names}, drawn by weight; the others at the model's values")


def check_model(path: str | Path = DEFAULT_FILE, draws: int = 20, sizes: Mapping[str, int] | None = None,
                workers: int | None = None, scheduler: str | None = None, drift_tenants: int = 100_000,
                drift_years: int = 10, progress: bool = False) -> ModelCheck:
    """Check the default model against the targets of the calibration file ``path`` (its
    experiments at ``sizes``: tenants, months) with ``draws`` predictive draws, and run the
    drift check with ``drift_tenants`` adults for ``drift_years`` (0: no drift check)."""
    start = time.perf_counter()
    problem = load_problem(path, {k: v for k, v in (sizes or {}).items() if k in ("tenants", "months")})
    gaps = _gaps(problem)  # read before the runs: a bad [[gap]] table is an error at once
    points, parameters = posterior_points(draws, int(problem.settings["seed"]))
    values, observations = predictive(problem, points, int(problem.settings["seed"]), workers=workers,
                                      scheduler=scheduler, progress=progress)
    fit = fit_table(problem, values, observations)
    fit.insert(1, "role", ["held out" if t.held_out else "fitted" for t in problem.targets])
    fit.insert(2, "description", [t.description for t in problem.targets])
    drift = by_group = pd.DataFrame()
    if drift_years:
        tables = drift_tables(default_model_tree(), tenants=drift_tenants, years=drift_years,
                              seed=int(problem.settings["seed"]))
        drift = drift_summary(tables.stable, tables.cohort, tables.strata)
        by_group = group_summary(tables.groups)
    exp = next(iter(problem.experiments.values()))
    info = {"file": str(path), "draws": draws, "tenants": exp.population.tenants,
            "months": exp.experiment.months,
            "drift_tenants": drift_tenants, "drift_years": drift_years, "model_version": MODEL_VERSION,
            "hhsim": package_version(), "seconds": time.perf_counter() - start,
            "parameters": parameters}
    return ModelCheck(fit, drift, gaps, info, by_group)


def _group_label(group: str, level: str) -> str:
    return level.replace("_", " ") if group == "tenure" else f"with {level.replace('_', ' ')}"


def _cell(v: float) -> str:
    return number(v) if np.isfinite(v) else "-"


def markdown(check: ModelCheck, misses: Mapping[str, str] | None = None, screen: str | None = None) -> str:
    """docs/validation.md: coverage, every target, the drift check, the most influential
    parameters (``screen``: the top-20 table of a saved Morris screen, statuses read live;
    ``hhsim.studies.sensitivity.screen.screen_table``), the gaps. ``misses`` explains targets
    by name (a target not covered without an explanation says so)."""
    misses = dict(misses or {})
    i, fit = check.info, check.fit
    lines = [
        "# Validation",
        "",
        "<!-- Generated by `hhsim check-model` from calibration/baseline.toml and "
        "calibration/validation-notes.toml: do not edit by hand. -->",
        "",
        f"Model version {i['model_version']} (hhsim {i['hhsim']}), at {i['parameters']}. "
        f"{i['draws']} predictive draws of {i['tenants']:,} tenants over {i['months']} months; "
        f"drift check with {i['drift_tenants']:,} adults over {i['drift_years']} years. "
        f"Run time {i['seconds'] / 60:.1f} minutes.",
        "",
        "Each target's **95% predictive interval** is that of simulated observations: the model's "
        "Monte-Carlo variation across draws plus the target's observation noise (its sd). A target is "
        "**covered** when the observed figure lies inside it; \"unknown\" when the interval's ends are "
        "too uncertain to tell (docs/calibration.md, section 4.1). **Held-out** targets are never used "
        "in fitting and are judged as predictions.",
        "",
        "## Coverage",
        "",
        "| Targets | Number | Covered | Not covered | Unknown | Covered share | Required |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in check.coverage().itertuples():
        share = "-" if np.isnan(r.share) else f"{r.share:.0%}"
        lines.append(f"| {r.role} | {r.targets} | {r.covered} | {r.not_covered} | {r.unknown} | {share} | "
                     f"{r.required:.0%} |")
    lines += ["", "## Targets", "",
              "| Target | Role | Observed (sd) | Simulated mean | 95% predictive interval | Width | z "
              "| Covered |",
              "|---|---|---|---|---|---|---|---|"]
    for r in fit.itertuples():
        lo, hi = r.predictive_low95, r.predictive_high95
        sd = r.uncertainty.removeprefix("sd ")
        lines.append(f"| {r.target} | {r.role} | {number(r.observed)} ({sd}) | "
                     f"{_cell(r.simulated_mean)} | {_cell(lo)} to {_cell(hi)} | {_cell(hi - lo)} | "
                     f"{r.z:+.2f} | {r.covered} |")
    lines += ["", "### Not covered, and why", ""]
    missed = fit[fit["covered"] != "True"]
    if missed.empty:
        lines.append("Every target is covered.")
    for r in missed.itertuples():
        why = misses.get(r.target, "not yet explained") + (f" ({r.note})" if r.note else "")
        lines.append(f"- **{r.target}** ({r.role}; observed {number(r.observed)}, simulated "
                     f"{_cell(r.simulated_mean)}): {why}")
    lines += ["", "### Sources", ""]
    lines += [f"- **{r.target}** ({r.status}): {r.description}. {r.source}" for r in fit.itertuples()]
    lines += ["", "## Drift", "",
              f"Issue 16 asks that no adult age band's share in any state moves by more than "
              f"{100 * DRIFT_LIMIT:g} percentage point over {max(CHECK_YEARS)} years (stable population: "
              "each sex and five-year band against year 0, entrants replacing leavers), and that a "
              "closed cohort keeps the cross-section's age gradient (observed minus expected share at "
              "its age then). The check's population is closed: nobody leaves home, forms a household "
              "or changes tenure, so the children who turn 16 during the run stay in their parents' "
              "tenure and a young band's make-up moves as they enter it (the world starts the adults "
              "of 16-24 with the ages of household reference persons by tenure). The standardised "
              "stable view holds each band's make-up at year 0 (the change within each stratum of "
              "tenure and deprivation fifth, weighted by its year-0 person-years), so it measures the "
              "chains' dynamics in a population whose structure is stable; the stable view as it is "
              "is shown beside it. Largest and mean absolute differences over the sex and age bands, "
              "in percentage points; se is a band's typical Monte-Carlo standard error. Within 1 pt is "
              "judged band by band on the 95% interval of its change (change +- 1.96 se, standardised "
              "stable and cohort bands together): yes when every interval lies within 1 point, no when "
              "some band's lies wholly beyond it (the number of such bands), unknown when none is beyond "
              "but some straddle the limit (their number): a larger --drift-tenants can decide them. "
              "The column \"as it is\" judges the stable view without standardising; the last judges "
              "the cohort bands alone: each person against their own cross-section chance.", ""]
    if check.drift.empty:
        lines.append("Not run.")
    else:
        lines += ["| Chain | State | Year | Stable max | Stable mean | se | As it is | Standardised max | "
                  "Standardised mean | se | Cohort max | Cohort mean | se | Within 1 pt | "
                  "Cohort within 1 pt |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in check.drift.itertuples():
            lines.append(f"| {r.chain} | {r.state} | {r.year} | {100 * r.stable_max:.2f} | "
                         f"{100 * r.stable_mean:.2f} | {100 * r.stable_se:.2f} | "
                         f"{drift_verdict(r.raw_beyond, r.raw_unsure)} | {100 * r.standardised_max:.2f} | "
                         f"{100 * r.standardised_mean:.2f} | {100 * r.standardised_se:.2f} | "
                         f"{100 * r.cohort_max:.2f} | {100 * r.cohort_mean:.2f} | {100 * r.cohort_se:.2f} | "
                         f"{drift_verdict(r.beyond, r.unsure)} | "
                         f"{drift_verdict(r.cohort_beyond, r.cohort_unsure)} |")
        if not check.group_drift.empty:
            lines += ["", "By tenure and by condition (adults of every age; each person against their own "
                      "cross-section chance, so each tenure's own cross-section, and the initial odds ratio "
                      "on each condition the chain's cross-section names, in percentage points):", "",
                      "| Chain | State | Group | Year | Observed - expected | se | Within 1 pt |",
                      "|---|---|---|---|---|---|---|"]
            lines += [f"| {r.chain} | {r.state} | {_group_label(r.group, r.level)} | {r.year} | "
                      f"{100 * r.difference:+.2f} | {100 * r.se:.2f} | {r.verdict} |"
                      for r in check.group_drift.itertuples()]
        if "drift" in misses:
            lines += ["", misses["drift"]]
    if screen is not None:
        lines += ["", "## The most influential parameters", "",
                  "Issue 16 asks that none of the 20 parameters with the most influence on the headline "
                  "outputs remains a bare assumption (status A): each sourced (V1, V2), derived (D) or "
                  "calibrated with a posterior (C). The ranking is the saved Morris screen "
                  "(calibration/screen/, docs/sensitivity.md section 7); the statuses and values are read "
                  "from the model now.", "", screen.rstrip("\n")]
    lines += ["", "## Gaps", "",
              "Published figures the model cannot (yet) be compared with, and why.", "",
              "| Gap | What | Source | Why |", "|---|---|---|---|"]
    lines += [f"| {g.name} | {g.what} | {g.source} | {g.reason} |" for g in check.gaps]
    return "\n".join(lines) + "\n"
