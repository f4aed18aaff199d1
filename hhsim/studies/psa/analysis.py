"""What a PSA's draws say: the cost-effectiveness plane, acceptability, the frontier, and the
expected value of perfect and partial perfect information, with their Monte-Carlo error.

Per draw and arm: mean cost (£, discounted, from the chosen perspective) and QALYs
(discounted) over the replications of that draw; net benefit NB = lambda x QALYs - cost.

- acceptability (CEAC): for each threshold, the share of draws in which each arm has the
  highest NB (``hhsim.analysis.ceac``);
- frontier (CEAF): the arm with the highest expected NB at each threshold, with the
  probability that it is the most cost-effective;
- EVPI(lambda) = E[max_arm NB] - max_arm E[NB], estimated as the mean over draws of the
  opportunity loss max_arm NB_d - NB_d(arm best on average): every term is >= 0, so the
  estimate is never negative and exactly 0 when one arm is best in every draw. Its
  Monte-Carlo error (from using N draws) comes from a bootstrap over the draws that chooses
  the best-on-average arm afresh in each resample, since that choice is itself estimated;
  the 95% percentile interval is >= 0 by construction;
- EVPPI for a group of parameters (Strong, Oakley & Brennan, Med Decis Making 2014): regress
  each arm's incremental NB on the group's parameters with a generalised additive model
  (statsmodels' ``GLMGam`` with cubic B-splines), then the mean opportunity loss of the
  fitted values, as for EVPI. Its standard error combines the regression's uncertainty
  (fitted values recomputed from coefficients drawn from their estimated normal
  distribution, as in Strong et al.) with the error of averaging over N draws (the sd of the
  per-draw loss / sqrt(N)). With few draws the estimate is biased upward by the fit's noise,
  so it is given only with at least ``DRAWS_PER_COEFFICIENT`` draws per spline coefficient
  (40 per parameter of the group).

Either value is "indistinguishable from zero" when the low end of its 95% interval is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from hhsim.analysis.ceac import ceac
from hhsim.analysis.cost_effectiveness import with_cost
from hhsim.analysis.pairing import mean_over_replications
from hhsim.analysis.precision import needed


def per_draw(records: pd.DataFrame, perspective: str) -> pd.DataFrame:
    """One row per arm x point: cost, qalys, population (means over replications)."""
    means = mean_over_replications(with_cost(records, perspective))
    return means[["arm", "point", "cost", "qalys", "population"]]


def wide(draws: pd.DataFrame, arms: Sequence[str], column: str) -> np.ndarray:
    """(points, arms) array of ``column``, points in order."""
    return draws.pivot(index="point", columns="arm", values=column)[list(arms)].to_numpy(float)


def acceptability(draws: pd.DataFrame, arms: Sequence[str], thresholds: Sequence[float]) -> pd.DataFrame:
    """Long table: threshold, arm, probability (most cost-effective), expected NB (£ per run),
    on_frontier (the arm with the highest expected NB at that threshold)."""
    table = ceac(draws, thresholds)
    cost, qalys = wide(draws, arms, "cost"), wide(draws, arms, "qalys")
    lam = np.asarray(thresholds, float)
    expected = (lam[:, None] * qalys.mean(axis=0)[None] - cost.mean(axis=0)[None])  # threshold x arm
    best = expected.argmax(axis=1)
    rows = pd.DataFrame({"threshold": np.repeat(lam, len(arms)), "arm": list(arms) * len(lam),
                         "expected_nb": expected.ravel(),
                         "on_frontier": (best[:, None] == np.arange(len(arms))[None]).ravel()})
    return table.merge(rows, on=["threshold", "arm"])


#: Bootstrap resamples of the draws behind EVPI's interval.
RESAMPLES = 1000
#: Draws of the regression coefficients behind EVPPI's standard error.
COEFFICIENT_DRAWS = 200  # enough for an sd within about 5%
Z95 = float(stats.norm.ppf(0.975))


def opportunity_loss(nb: np.ndarray) -> np.ndarray:
    """(..., draws, arms) loss of each arm in each draw: max_arm NB - NB, exactly >= 0 (£ per run)."""
    return nb.max(axis=-1, keepdims=True) - nb


def mean_loss(nb: np.ndarray) -> np.ndarray:
    """(...) mean over draws of the opportunity loss of the arm best on average, from (..., draws,
    arms) NB: E[max NB] - max E[NB] term by term, so >= 0, and 0 when that arm is best in every draw."""
    best = nb.mean(axis=-2).argmax(axis=-1)
    return np.take_along_axis(opportunity_loss(nb).mean(axis=-2), best[..., None], axis=-1)[..., 0]


def evpi(draws: pd.DataFrame, arms: Sequence[str], thresholds: Sequence[float],
         seed: int = 0) -> pd.DataFrame:
    """EVPI per threshold, £ per run and per person, with its Monte-Carlo error over the draws:
    ``evpi_se`` (bootstrap sd), 95% percentile interval ``evpi_low`` to ``evpi_high`` (>= 0),
    ``distinguishable`` (the interval's low end is above 0). ``seed`` seeds the bootstrap."""
    cost, qalys = wide(draws, arms, "cost"), wide(draws, arms, "qalys")
    (n, k), lam = cost.shape, np.asarray(thresholds, float)
    people = float(draws["population"].mean())
    nb = lam[:, None, None] * qalys[None] - cost[None]  # threshold x draw x arm
    value = mean_loss(nb)
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=RESAMPLES) / n

    def resampled(a: np.ndarray) -> np.ndarray:  # resample x threshold x arm means, in one product
        return (weights @ a.transpose(1, 0, 2).reshape(n, -1)).reshape(RESAMPLES, len(lam), k)

    best = resampled(nb).argmax(axis=2)  # the best-on-average arm, chosen again in each resample
    boot = np.take_along_axis(resampled(opportunity_loss(nb)), best[..., None], axis=2)[..., 0]
    low, high = np.quantile(boot, [0.025, 0.975], axis=0)
    se = boot.std(axis=0, ddof=1)
    return pd.DataFrame({"threshold": lam, "evpi": value, "evpi_se": se, "evpi_low": low, "evpi_high": high,
                         "evpi_per_person": value / people, "evpi_per_person_se": se / people,
                         "evpi_per_person_low": low / people, "evpi_per_person_high": high / people,
                         "distinguishable": low > 0})


def draws_for_evpi(row: pd.Series | dict, draws: int, relative: float = 0.10) -> int | None:
    """Draws projected to give EVPI within +/- ``relative`` (95%; ``hhsim.analysis.precision``),
    from its bootstrap se at ``draws`` draws; None when EVPI cannot be told from zero."""
    if not row["distinguishable"]:
        return None
    return needed(row["evpi_se"] * np.sqrt(draws), relative * row["evpi"], draws)


#: Draws needed per spline coefficient for an EVPPI estimate (fewer: not computed).
DRAWS_PER_COEFFICIENT = 10
SPLINE_DF = 4  # cubic B-splines: 4 coefficients per parameter at the least


def evppi_draws_needed(group_size: int) -> int:
    """Fewest draws for the additive regression of a group of ``group_size`` parameters."""
    return DRAWS_PER_COEFFICIENT * SPLINE_DF * group_size


def evppi_possible(draws: int, group_size: int) -> bool:
    """Whether there are enough draws for the additive regression of a group."""
    return draws >= evppi_draws_needed(group_size)


def _gam_fit(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fitted values of an additive model y ~ sum_j s(x_j) (cubic B-splines), and a factor R
    (draws x coefficients) of their covariance: fitted + R z, z ~ N(0, I), are draws of the
    fitted values under the coefficients' estimated normal distribution."""
    from statsmodels.gam.api import BSplines, GLMGam
    from statsmodels.tools.sm_exceptions import PerfectSeparationError

    exact = np.zeros((len(y), 1))
    keep = [j for j in range(x.shape[1]) if np.ptp(x[:, j]) > 0]
    if not keep or np.ptp(y) == 0:
        return np.full_like(y, y.mean()), exact
    x = x[:, keep]
    df = max(SPLINE_DF, min(8, len(y) // (DRAWS_PER_COEFFICIENT * x.shape[1])))
    splines = BSplines(x, df=[df] * x.shape[1], degree=[3] * x.shape[1])
    try:
        fit = GLMGam(y, exog=np.ones((len(y), 1)), smoother=splines).fit()
    except PerfectSeparationError:  # the splines fit y exactly: y is a function of the group
        return y.astype(float), exact
    eigval, eigvec = np.linalg.eigh(np.asarray(fit.cov_params(), float))
    root = fit.model.exog @ (eigvec * np.sqrt(np.clip(eigval, 0, None)))
    return np.asarray(fit.fittedvalues, float), root


def evppi_note(group_size: int, draws: int) -> str:
    """Why a group's EVPPI is not computed with ``draws`` draws (empty when it is)."""
    if evppi_possible(draws, group_size):
        return ""
    return (f"not computed: its additive regression needs at least {evppi_draws_needed(group_size)} draws "
            f"for {group_size} parameter{'s' if group_size > 1 else ''} ({SPLINE_DF} spline coefficients "
            f"each, {DRAWS_PER_COEFFICIENT} draws per coefficient); {draws} given")


EVPPI_COLUMNS = ["group", "parameters", "threshold", "evppi", "evppi_se", "evppi_low", "evppi_high",
                 "evppi_per_person", "evppi_per_person_se", "evppi_per_person_low", "evppi_per_person_high",
                 "distinguishable", "note"]


def evppi(draws: pd.DataFrame, params: pd.DataFrame, arms: Sequence[str], baseline: str,
          groups: dict[str, Sequence[str]], thresholds: Sequence[float], seed: int = 0) -> pd.DataFrame:
    """EVPPI per group and threshold, £ per run and per person (regression method), with its
    standard error ``evppi_se``, 95% interval ``evppi_low`` (>= 0) to ``evppi_high`` and
    ``distinguishable`` (low end above 0). A group with too few draws, or whose regression
    fails, gets NaN values and a ``note`` saying why. ``seed`` seeds the coefficient draws."""
    cost, qalys = wide(draws, arms, "cost"), wide(draws, arms, "qalys")
    people = float(draws["population"].mean())
    ref = list(arms).index(baseline)
    rng = np.random.default_rng(seed)
    rows = []
    for group, members in groups.items():
        x = params.sort_values("point")[list(members)].to_numpy(float)
        for lam in thresholds:
            row = {"group": group, "parameters": ", ".join(members), "threshold": float(lam)}
            note = evppi_note(len(members), len(x))
            if not note:
                inb = (lam * qalys - cost) - (lam * qalys[:, ref] - cost[:, ref])[:, None]
                try:
                    none = (np.zeros(len(inb)), np.zeros((len(inb), 1)))  # the baseline against itself
                    fits = [none if k == ref else _gam_fit(inb[:, k], x) for k in range(len(arms))]
                except (ValueError, np.linalg.LinAlgError) as err:
                    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                    note = f"not computed: the additive regression failed ({reason})"
            if note:
                rows.append(row | {"note": note})
                continue
            fitted = np.column_stack([f for f, _ in fits])
            sampled = np.stack([f[None] + rng.standard_normal((COEFFICIENT_DRAWS, r.shape[1])) @ r.T
                                for f, r in fits], axis=-1)  # coefficient draws x draws x arms
            value = float(mean_loss(fitted))
            loss = opportunity_loss(fitted)[:, fitted.mean(axis=0).argmax()]
            se = float(np.hypot(mean_loss(sampled).std(ddof=1), loss.std(ddof=1) / np.sqrt(len(loss))))
            low, high = max(value - Z95 * se, 0.0), value + Z95 * se
            rows.append(row | {"evppi": value, "evppi_se": se, "evppi_low": low, "evppi_high": high,
                               "evppi_per_person": value / people, "evppi_per_person_se": se / people,
                               "evppi_per_person_low": low / people, "evppi_per_person_high": high / people,
                               "distinguishable": low > 0, "note": ""})
    return pd.DataFrame(rows, columns=EVPPI_COLUMNS)


def evppi_above_evpi(ev: pd.DataFrame, ev_pp: pd.DataFrame) -> list[str]:
    """Warnings where a group's EVPPI exceeds EVPI by more than 1.96 x their combined
    standard error (EVPPI <= EVPI in truth: the regression over-fits the draws)."""
    out = []
    by = ev.set_index("threshold")
    for r in ev_pp.dropna(subset=["evppi"]).itertuples():
        e = by.loc[r.threshold]
        if r.evppi - e["evpi"] > Z95 * np.hypot(r.evppi_se, e["evpi_se"]):
            out.append(f"EVPPI of '{r.group}' at £{r.threshold:,.0f}/QALY (£{r.evppi_per_person:,.2f} per "
                       f"person) exceeds EVPI (£{e['evpi_per_person']:,.2f}) by more than their Monte-Carlo "
                       "error: the regression over-fits the draws; run more draws")
    return out


def incremental(draws: pd.DataFrame, arms: Sequence[str], baseline: str) -> pd.DataFrame:
    """Per draw and arm other than the baseline: incremental cost and QALYs."""
    base = draws[draws["arm"] == baseline].set_index("point")[["cost", "qalys"]]
    out = []
    for arm in arms:
        if arm == baseline:
            continue
        a = draws[draws["arm"] == arm].set_index("point")[["cost", "qalys"]]
        d = (a - base.loc[a.index]).rename(columns={"cost": "incremental_cost", "qalys": "incremental_qalys"})
        out.append(d.reset_index().assign(arm=arm))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["point", "incremental_cost", "incremental_qalys", "arm"])
