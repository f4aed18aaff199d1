"""Estimators: one evaluation's runs become the simulated counterpart of a target.

An evaluation runs the target's experiment (the arms it needs, a few replications) at one
parameter point. Each estimator takes those runs' results and returns one number, pooled
over replications. Options (a target's ``options`` table):

- ``record_mean``: mean over replications of a run-record column of ``arm``
  (``column``; ``scale`` multiplies, default 1).
- ``record_incremental``: ``arm`` minus the baseline arm, same replication, of a record
  column, averaged (``column``, ``scale``).
- ``monthly_share``: a monthly-table column divided by ``alive`` at ``month`` (1 = the
  first month; default the last), averaged over replications (``column``, e.g.
  ``health:sick``): a prevalence.
- ``odds_ratio``: the odds of being in ``column`` (a monthly share as ``monthly_share``, or
  the sum of several, e.g. ``["health:fair", "health:bad"]``) at ``month`` in ``arm`` over
  the odds in the baseline arm, each share pooled over replications: a trial's odds ratio of
  prevalence at follow-up, the arms' people the same by common random numbers.
- ``rate_ratio``: ``arm``'s rate over the baseline arm's, of record column(s) ``column``
  (e.g. ``use_ae``) per ``per`` (default ``life_years_undisc``, the person-years lived),
  each pooled over replications (sums of counts over sums of person-years).
- ``stays_mean``: mean of a stays-table column over the patients placed by the arm's
  hospital-flow interventions, pooled over replications (``column``, e.g. ``days_saved``;
  ``scale``; ``intervention`` to keep one).
- ``stays_share``: share of placed patients with a non-zero ``column`` (e.g.
  ``readmitted_30d``): a probability, for a binomial target.
- ``stays_odds_ratio``: the odds of a non-zero ``column`` among ``arm``'s placed patients
  over the odds among the baseline arm's (``intervention`` to keep one): a trial's odds
  ratio, when the baseline arm runs the same programme with its effects switched off (the
  same patients placed, by common random numbers).
- ``before_after_total``: a pilot-style before-after saving: the use of ``service`` by the
  clients of ``intervention`` in the 6 months before admission minus the 6 months from
  admission (clients alive 6 months after admission; ``ClientProgramme``), times
  ``unit_cost`` (£ per contact; default 1: contacts), summed over clients (people
  represented) and averaged over replications. Clients are enrolled as the programme
  enrols them (e.g. after recent use), so regression to the mean is in the figure, as it
  is in the pilot's.
- ``before_after_per_client``: the same per client followed up.
- ``high_users``: the high-use cohort of ``[experiment] high_users`` (people of an age range
  with at least so many uses in model year 0; ``hhsim.model.high_users``) in model ``year``:
  its ``share`` of its age group's use (``measure``, default), its use per person-year
  (``rate``) or that over the age group's (``rate_ratio``), pooled over replications: the
  regression to the mean of high users with no intervention (Roland et al., BMJ 2005).
- ``life_expectancy``: life expectancy or years in good health (``measure``: ``le_birth``,
  ``hle_birth``, ``le_16``, ``hle_16``, ``le_65``, ``hle_65``, the share of life in good
  health ``hle_share`` = hle_birth / le_birth, or the decile 10 minus decile 1 ``le_gap``,
  ``hle_gap``) from the arm's period life tables pooled over replications, for ``sex`` and
  ``decile`` if given.
- ``census_rate``: a rate from the arm's census (``[experiment] census = true``;
  ``hhsim.model.census``) pooled over replications: the sum of the ``numerator`` column(s)
  over the census cells the filters keep, divided by the sum of the ``denominator``
  column(s) (default ``person_years``) over the same cells: a prevalence
  (``health:bad``), a rate per person-year (``gp``), a cost per person-year (``nhs_cost``).
  Filters: ``sex`` ("male" or "female"), ``decile`` (1-10, or [first, last]), ``ages``
  ([first, last] years, whole census bands: [65, 120] for 65+), ``year`` (model year,
  default 0). ``denominator_over`` (a table of filters) changes the denominator's cells,
  for a share (e.g. ``{ ages = [20, 120] }``: 85+'s share of adults' A&E attendances);
  ``versus`` (a table of filters) computes the same rate for other cells and gives the
  ``contrast`` ("ratio", default, or "difference") of the two: a deprivation ratio, a sex
  difference.
- ``attributable_per_home``: baseline minus ``arm`` of a record ``column`` per year and per
  home with a hazard, times ``homes``: a cost attributable to hazards, scaled to a stock.
- ``hazard_cost_england``: the NHS first-year cost (undiscounted, £ a year) in England of
  the hazard that ``arm`` removes from every home (``hhsim.analysis.bre.HAZARD_ARMS``): the
  baseline minus the arm by tenure, scaled to England's households (``households``, default
  24.7m) in the default world's tenure mix and household sizes, averaged over
  replications; ``measure = "per_home"`` gives it per home with the hazard, ``"deaths"``
  the deaths. Totals over the run: a year in ``bre-hazards.toml``, as BRE's first year.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hhsim.batch.execution import RunResult
from hhsim.core.errors import HhsimError, printable, unknown_key_error
from hhsim.model import census
from hhsim.model.census import CENSUS_AGE_SPANS


@dataclass(frozen=True)
class Estimator:
    """A named estimator: its function, required and optional options."""

    function: Callable[[Sequence[RunResult], str, str, Mapping], float]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ("scale",)
    needs_baseline: bool = False
    probability: bool = False


def _arm(results: Sequence[RunResult], arm: str) -> list[RunResult]:
    return sorted((r for r in results if r.record["arm"] == arm), key=lambda r: r.record["replication"])


def _record_column(runs: Sequence[RunResult], column: str) -> np.ndarray:
    if runs and column not in runs[0].record:
        numeric = [
            k for k, v in runs[0].record.items() if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        raise unknown_key_error("options.column", printable(column), numeric, what="record column")
    return np.array([float(r.record[column]) for r in runs])


def record_mean(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    return float(_record_column(_arm(results, arm), o["column"]).mean() * o.get("scale", 1.0))


def record_incremental(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    a = _record_column(_arm(results, arm), o["column"])
    b = _record_column(_arm(results, baseline), o["column"])
    return float((a - b).mean() * o.get("scale", 1.0))


#: Prefixes of monthly columns that are not a health chain's states (use, costs, hazards).
NOT_CHAINS = ("use", "cost", "hazard")


def _people_counted(row: pd.Series, column: str) -> float:
    """The denominator of a monthly share: for a chain's state (``chain:state``), the people
    the chain counts (those of its ages: adults for an adult chain, children for a child's);
    otherwise everyone alive. NaN when nobody is."""
    chain = column.split(":")[0] if column.count(":") == 1 else None
    if chain in NOT_CHAINS:
        chain = None
    states = [c for c in row.index if chain and c.count(":") == 1 and c.startswith(f"{chain}:")]
    total = float(row[states].sum()) if column in states else float(row["alive"])
    return total if total else float("nan")


def monthly_share(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    shares = []
    for r in _arm(results, arm):
        m = r.tables["monthly"]
        if o["column"] not in m.columns:
            raise unknown_key_error(
                "options.column",
                printable(o["column"]),
                [c for c in m.columns if c != "step"],
                what="monthly column",
            )
        month = int(o.get("month", len(m)))
        if not 1 <= month <= len(m):
            raise HhsimError(
                "options.month",
                f"{month} is outside the run's months 1..{len(m)}",
                "give a month the experiment simulates",
            )
        row = m.iloc[month - 1]
        shares.append(float(row[o["column"]]) / _people_counted(row, o["column"]))
    return float(np.mean(shares) * o.get("scale", 1.0))


def _shares(results: Sequence[RunResult], arm: str, o: Mapping) -> float:
    """The pooled share of ``o["column"]`` (one monthly column or a list summed) in ``arm``."""
    return float(sum(monthly_share(results, arm, arm, {**o, "column": c, "scale": 1.0})
                     for c in _columns(o["column"])))


def _odds_ratio(p: float, q: float, fix: str) -> float:
    """The odds of share ``p`` over the odds of share ``q``; a one-line error (``fix``)
    unless both are strictly between 0 and 1."""
    if not (0 < p < 1 and 0 < q < 1):
        raise HhsimError("options.column", f"a share of {p:g} against {q:g}: an odds ratio needs shares "
                         "strictly between 0 and 1", fix)
    return float(p / (1 - p) / (q / (1 - q)))


def odds_ratio(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    return _odds_ratio(_shares(results, arm, o), _shares(results, baseline, o),
                       "choose states some but not all people are in")


def rate_ratio(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    columns = _columns(o["column"])
    per = o.get("per", "life_years_undisc")

    def rate(name: str) -> float:
        runs = _arm(results, name)
        count = sum(_record_column(runs, c).sum() for c in columns)
        return float(count / _record_column(runs, per).sum())

    a, b = rate(arm), rate(baseline)
    if b <= 0:
        raise HhsimError("options.column", f"the baseline arm's rate of {', '.join(columns)} is 0",
                         "choose a use the baseline has, or run more tenants or replications")
    return a / b


def _placed(results: Sequence[RunResult], arm: str, o: Mapping) -> pd.DataFrame:
    frames = [r.tables["stays"] for r in _arm(results, arm) if len(r.tables["stays"])]
    if not frames:
        return pd.DataFrame({"placed_day": pd.Series(dtype=float), o["column"]: pd.Series(dtype=float)})
    stays = pd.concat(frames, ignore_index=True)
    if o["column"] not in stays.columns:
        raise unknown_key_error("options.column", printable(o["column"]), stays.columns, what="stays column")
    if "intervention" in o:
        stays = stays[stays["intervention"] == o["intervention"]]
    return stays[stays["placed_day"] >= 0]


def stays_mean(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    placed = _placed(results, arm, o)
    return (
        float(placed[o["column"]].astype(float).mean() * o.get("scale", 1.0)) if len(placed) else float("nan")
    )


def stays_share(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    placed = _placed(results, arm, o)
    return float((placed[o["column"]].astype(float) != 0).mean()) if len(placed) else float("nan")


def stays_odds_ratio(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    """The odds of a non-zero ``column`` among the arm's placed patients over the odds in the
    baseline arm's: a trial's odds ratio (e.g. 30-day readmission, unit against usual care)
    when the baseline arm runs the same programme without its effects."""
    return _odds_ratio(stays_share(results, arm, baseline, o), stays_share(results, baseline, baseline, o),
                       "run more tenants or replications, or another column")


def _before_after(results: Sequence[RunResult], arm: str, o: Mapping) -> tuple[float, float]:
    """Mean over replications of (clients, saving in £) of the before-after tallies."""
    prefix = f"iv_{o['intervention']}_ba_"
    runs = _arm(results, arm)
    if runs and f"{prefix}clients" not in runs[0].record:
        names = [k[3 : -len("_ba_clients")] for k in runs[0].record if k.endswith("_ba_clients")]
        raise unknown_key_error(
            "options.intervention", printable(o["intervention"]), names, what="client programme"
        )
    clients = _record_column(runs, f"{prefix}clients")
    saved = _record_column(runs, f"{prefix}before_{o['service']}") - _record_column(
        runs, f"{prefix}after_{o['service']}"
    )
    return float(clients.mean()), float(saved.mean() * o.get("unit_cost", 1.0))


def before_after_total(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    return _before_after(results, arm, o)[1]


def before_after_per_client(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    clients, saved = _before_after(results, arm, o)
    return saved / clients if clients else float("nan")


#: What ``life_expectancy`` can give (years; gaps are the least minus the most deprived decile;
#: ``hle_share`` is hle_birth / le_birth).
LIFE_MEASURES = ("le_birth", "hle_birth", "le_16", "hle_16", "le_65", "hle_65", "hle_share", "le_gap",
                 "hle_gap")


def life_expectancy(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    """Life expectancy or years in good health from the arm's period life tables, pooled
    over replications (``hhsim.analysis.life_expectancy``), for ``sex`` (default both) and
    ``decile`` (default all), or the gap between deciles 10 and 1."""
    from hhsim.analysis.life_expectancy import life_table_expectancies

    table = pd.concat([r.tables["lifetable"] for r in _arm(results, arm)], ignore_index=True)
    if "sex" in o:
        table = table[table["sex"] == o["sex"]]
    measure = o["measure"]
    if measure.endswith("_gap"):
        by_decile = life_table_expectancies(table, by=("decile",)).set_index("decile")
        column = measure.replace("_gap", "_birth")
        if not {1, 10} <= set(by_decile.index):
            return float("nan")
        return float(by_decile.loc[10, column] - by_decile.loc[1, column])
    if "decile" in o:
        table = table[table["decile"] == o["decile"]]
    if table.empty:
        return float("nan")
    row = life_table_expectancies(table.assign(all="all"), by=("all",)).iloc[0]
    return float(row["hle_birth"] / row["le_birth"] if measure == "hle_share" else row[measure])


#: The filters ``census_rate`` takes (``versus`` and ``denominator_over`` override them).
CENSUS_FILTERS = ("sex", "decile", "ages", "year")
CONTRASTS = ("ratio", "difference")
OPEN = 100  # an ``ages`` filter ending at this age or later takes in the open band (85+)


def _columns(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _census_sum(table: pd.DataFrame, columns: list[str], f: Mapping) -> float:
    keep = table["year"] == f.get("year", 0)
    if "sex" in f:
        keep &= table["sex"] == f["sex"]
    if "decile" in f:
        d = f["decile"]
        first, last = (d, d) if isinstance(d, int) else d
        keep &= table["decile"].between(first, last)
    if "ages" in f:
        first, last = f["ages"]
        inside = {b for b, (a, z) in CENSUS_AGE_SPANS.items() if first <= a and (z <= last or last >= OPEN)}
        keep &= table["age_band"].isin(inside)
    return float(table.loc[keep, columns].to_numpy(float).sum())


def census_rate(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    """A rate, share or contrast from the arm's census tables, pooled over replications."""
    table = pd.concat([r.tables["census"] for r in _arm(results, arm)], ignore_index=True)
    num, den = _columns(o["numerator"]), _columns(o.get("denominator", "person_years"))
    if set(table.columns) <= set(census.empty().columns):
        raise HhsimError("options.numerator", "the experiment keeps no census table",
                         "set [experiment] census = true in the target's experiment")
    for c in (*num, *den):
        if c not in table.columns:
            raise unknown_key_error("options.numerator", printable(c), table.columns[4:],
                                    what="census column")
    f = {k: o[k] for k in CENSUS_FILTERS if k in o}
    years = sorted(set(table["year"]))
    for cells in (f, o.get("versus", {}), o.get("denominator_over", {})):
        if cells.get("year", 0) not in years:
            raise HhsimError("options.year", f"model year {cells['year']} is not in the run (years "
                             f"{years[0]} to {years[-1]})", "give a year the experiment's months reach")

    def rate(cells: Mapping) -> float:
        d = _census_sum(table, den, {**cells, **o.get("denominator_over", {})})
        return _census_sum(table, num, cells) / d if d > 0 else float("nan")

    value = rate(f)
    if "versus" in o:
        other = rate({**f, **o["versus"]})
        value = (value / other if other > 0 else float("nan")) if o.get("contrast", "ratio") == "ratio" \
            else value - other
    return value * o.get("scale", 1.0)


def _check_census_filters(f: object, where: str) -> None:
    """One-line errors for a census filter table (the options, ``versus`` or ``denominator_over``)."""
    if not isinstance(f, Mapping):
        raise HhsimError(where, "must be a table of filters", f"give e.g. {{ sex = \"female\" }}; filters: "
                         f"{', '.join(CENSUS_FILTERS)}")
    firsts, lasts = ({a for a, _ in CENSUS_AGE_SPANS.values()}, {b for _, b in CENSUS_AGE_SPANS.values()})
    for key, v in f.items():
        if key not in CENSUS_FILTERS:
            raise unknown_key_error(where, printable(str(key)), CENSUS_FILTERS, what="census filter")
        if key == "sex" and v not in ("male", "female"):
            raise HhsimError(f"{where}.sex", f"must be male or female, got {printable(repr(v))}",
                             'give sex = "male" or "female"')
        if key == "year" and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise HhsimError(f"{where}.year", f"must be a model year (0, 1, ...), got {printable(repr(v))}",
                             "give a whole number of years from the start")
        pair = [v, v] if key == "decile" and isinstance(v, int) and not isinstance(v, bool) else v
        if key in ("decile", "ages") and not (
                isinstance(pair, list) and len(pair) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in pair) and pair[0] <= pair[1]):
            raise HhsimError(f"{where}.{key}", f"must be [first, last], got {printable(repr(v))}",
                             f"give e.g. {key} = [{'1, 2' if key == 'decile' else '65, 120'}]")
        if key == "decile" and not (pair[0] >= 1 and pair[1] <= 10):
            raise HhsimError(f"{where}.decile", f"must lie within 1-10, got {v!r}",
                             "give IMD deciles, 1 = most deprived")
        if key == "ages" and (pair[0] not in firsts or not (pair[1] in lasts or pair[1] >= OPEN)):
            raise HhsimError(f"{where}.ages", f"{v!r} does not follow the census's age bands",
                             f"start at one of {sorted(firsts)} and end a year before one, or at 100+ for "
                             "the open band")


def attributable_per_home(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    """The baseline minus ``arm`` of a record ``column`` (e.g. ``nhs_cost_undisc`` with the
    hazards' effects switched off in the arm), per year and per home with a hazard in the
    baseline (``hazard_homes``), times ``homes`` (e.g. England's poor homes; default 1)."""
    a, b = _arm(results, arm), _arm(results, baseline)
    diff = _record_column(b, o["column"]) - _record_column(a, o["column"])
    homes = _record_column(b, "hazard_homes")
    years = _record_column(b, "steps") / 12.0
    return float(np.mean(diff / years / homes) * o.get("homes", 1.0))


#: What ``hazard_cost_england`` can give.
HAZARD_MEASURES = ("cost", "per_home", "deaths")


def hazard_cost_england(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    """England's yearly NHS cost (or cost per home with the hazard, or deaths) of the hazard
    ``arm`` removes: ``hhsim.analysis.bre`` on the evaluation's runs."""
    from hhsim.analysis.bre import (
        BASELINE,
        ENGLAND_HOUSEHOLDS,
        HAZARD_ARMS,
        adults_per_household,
        england_by_replication,
    )
    from hhsim.core.resources import world_tree

    if arm not in HAZARD_ARMS.values():
        raise HhsimError("arm", f"'{printable(arm)}' removes no hazard the comparison knows",
                         f"use one of {sorted(HAZARD_ARMS.values())}")
    measure = o.get("measure", "cost")
    if measure not in HAZARD_MEASURES:
        raise unknown_key_error("options.measure", printable(str(measure)), HAZARD_MEASURES, what="measure")
    runs = [*_arm(results, baseline), *_arm(results, arm)]
    records = pd.DataFrame([{**r.record, "arm": BASELINE if r.record["arm"] == baseline else arm}
                            for r in runs])
    groups = pd.concat([r.tables["groups"].assign(arm=rec["arm"], replication=rec["replication"])
                        for r, rec in zip(runs, records.to_dict("records"), strict=True)], ignore_index=True)
    per = england_by_replication(records, groups, adults_per_household(world_tree()),
                                 households=float(o.get("households", ENGLAND_HOUSEHOLDS)))
    if measure == "per_home":
        return float(per["cost"].mean() / per["homes"].mean())
    return float(per[measure].mean())


#: What ``high_users`` can give from the high-use cohort's table (``hhsim.model.high_users``).
HIGH_USER_MEASURES = ("share", "rate", "rate_ratio")


def high_users(results: Sequence[RunResult], arm: str, baseline: str, o: Mapping) -> float:
    """The high-use cohort (``[experiment] high_users``) in model ``year``, pooled over
    replications: its ``share`` of its age group's use (default), its use per person-year
    (``rate``), or that rate over the age group's (``rate_ratio``). NaN when the year is
    past the runs' end; a one-line error when no run chose a cohort (runs under 12 months)."""
    measure = o.get("measure", "share")
    if measure not in HIGH_USER_MEASURES:
        raise unknown_key_error("options.measure", printable(str(measure)), HIGH_USER_MEASURES,
                                what="measure")
    runs = _arm(results, arm)
    table = pd.concat([r.tables["high_users"] for r in runs], ignore_index=True)
    if runs and table.empty:
        raise HhsimError("options", f"arm '{printable(arm)}' followed no high users",
                         "set [experiment] high_users (docs/evidence.md) and run at least 12 months")
    rows = table[table["year"] == int(o["year"])]
    if rows.empty:
        return float("nan")
    cohort = rows["cohort_use"].sum()
    if measure == "share":
        return float(cohort / rows["reference_use"].sum())
    rate = cohort / rows["cohort_person_years"].sum()
    return float(rate if measure == "rate" else rate / (rows["reference_use"].sum()
                                                        / rows["reference_person_years"].sum()))


ESTIMATORS: dict[str, Estimator] = {
    "life_expectancy": Estimator(life_expectancy, ("measure",), ("sex", "decile")),
    "census_rate": Estimator(census_rate, ("numerator",), ("denominator", *CENSUS_FILTERS, "denominator_over",
                                                          "versus", "contrast", "scale")),
    "attributable_per_home": Estimator(attributable_per_home, ("column",), ("homes",), needs_baseline=True),
    "hazard_cost_england": Estimator(hazard_cost_england, (), ("measure", "households"), needs_baseline=True),
    "record_mean": Estimator(record_mean, ("column",)),
    "record_incremental": Estimator(record_incremental, ("column",), needs_baseline=True),
    "monthly_share": Estimator(monthly_share, ("column",), ("month", "scale")),
    "odds_ratio": Estimator(odds_ratio, ("column",), ("month",), needs_baseline=True),
    "rate_ratio": Estimator(rate_ratio, ("column",), ("per",), needs_baseline=True),
    "stays_mean": Estimator(stays_mean, ("column",), ("scale", "intervention")),
    "stays_share": Estimator(stays_share, ("column",), ("intervention",), probability=True),
    "stays_odds_ratio": Estimator(stays_odds_ratio, ("column",), ("intervention",), needs_baseline=True),
    "before_after_total": Estimator(before_after_total, ("intervention", "service"), ("unit_cost",)),
    "before_after_per_client": Estimator(
        before_after_per_client, ("intervention", "service"), ("unit_cost",)
    ),
    "high_users": Estimator(high_users, ("year",), ("measure",)),
}


def _check_columns(value: object, where: str, what: str) -> None:
    """A one-line error unless ``value`` names one column or a non-empty list of them."""
    names = [value] if isinstance(value, str) else value
    if not (isinstance(names, list) and names and all(isinstance(c, str) and c for c in names)):
        raise HhsimError(where, f"must name {what}, got {printable(repr(value))}",
                         'give e.g. "health:bad" or ["health:fair", "health:bad"]')


def check_options(name: str, options: Mapping, where: str) -> Estimator:
    """The estimator called ``name``, with its options checked (one-line errors)."""
    if name not in ESTIMATORS:
        raise unknown_key_error(f"{where}.estimator", printable(str(name)), ESTIMATORS, what="estimator")
    est = ESTIMATORS[name]
    for key in options:
        if key not in est.required + est.optional:
            raise unknown_key_error(
                f"{where}.options", printable(str(key)), est.required + est.optional, what=f"{name} option"
            )
    for key in est.required:
        if key not in options:
            raise HhsimError(f"{where}.options", f"{name} needs '{key}'", f"add options.{key}")
    if name == "life_expectancy":
        if options["measure"] not in LIFE_MEASURES:
            raise unknown_key_error(f"{where}.options.measure", printable(str(options["measure"])),
                                    LIFE_MEASURES, what="measure")
        if options.get("sex", "male") not in ("male", "female"):
            raise HhsimError(f"{where}.options.sex", f"must be male or female, got {options['sex']!r}",
                             "give sex = \"male\" or \"female\", or leave it out for both")
        if options.get("decile", 1) not in range(1, 11):
            raise HhsimError(f"{where}.options.decile", f"must be 1 to 10, got {options['decile']!r}",
                             "give an IMD decile, 1 = most deprived")
    if name == "census_rate":
        for key in ("numerator", "denominator"):
            _check_columns(options.get(key, "person_years"), f"{where}.options.{key}", "census columns")
        _check_census_filters({k: options[k] for k in CENSUS_FILTERS if k in options}, f"{where}.options")
        for key in ("versus", "denominator_over"):
            if key in options:
                _check_census_filters(options[key], f"{where}.options.{key}")
        if options.get("contrast", "ratio") not in CONTRASTS:
            raise unknown_key_error(f"{where}.options.contrast", printable(str(options["contrast"])),
                                    CONTRASTS, what="contrast")
        if "contrast" in options and "versus" not in options:
            raise HhsimError(f"{where}.options.contrast", "has nothing to contrast",
                             "add versus = { ... } (the other cells' filters) or drop contrast")
    if name in ("odds_ratio", "rate_ratio"):
        for key in ("column", "per"):
            if key in options:
                _check_columns(options[key], f"{where}.options.{key}", "columns")
    if name == "hazard_cost_england" and options.get("measure", "cost") not in HAZARD_MEASURES:
        raise unknown_key_error(f"{where}.options.measure", printable(str(options["measure"])),
                                HAZARD_MEASURES, what="measure")
    for key in ("scale", "month", "unit_cost", "homes", "households"):
        if key in options and (isinstance(options[key], bool) or not isinstance(options[key], int | float)):
            raise HhsimError(
                f"{where}.options.{key}",
                f"must be a number, got {printable(repr(options[key]))}",
                "give a number",
            )
    return est
