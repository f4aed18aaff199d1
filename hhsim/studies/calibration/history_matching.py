"""History matching: waves of simulations and Gaussian-process emulators that rule out the
regions of the prior where the model cannot match the fitted targets, before ABC-SMC.

Wave 1 simulates a Latin hypercube of ``points`` points (in the prior's quantile space,
mapped through each prior's ppf). Each wave fits an emulator per fitted target
(``emulator.py``; held-out targets are never used) to every run so far: wave 1's runs cover
the whole prior, so the refitted emulator stays valid wherever it is asked, and the later
runs sharpen it inside the region still plausible. A point x is *implausible* for target j
when

    I_j(x) = |E[f_j(x)] - z_j| / sqrt(Var_emulator_j(x) + Var_obs_j + Var_discrepancy_j) > cutoff

with z_j the observed value, Var_obs_j = sd^2 (a binomial target: z_j = count / n and
Var_obs_j = p(1 - p) / n with p = (count + 0.5) / (n + 1), which is above 0 for 0 of n) and
Var_discrepancy_j = ``discrepancy`` x Var_obs_j (the model's own error, not reduced by more
runs). Over the targets, ``rule = "second"`` takes the second-largest I_j (one target may be
missed by an emulator's error without ruling a point out; with one target it is that
target's), ``"max"`` the largest. A point is not ruled out yet (NROY) when every wave's
emulators find it plausible.

After each wave, ``candidates`` prior draws estimate the NROY share of the prior, and the
next wave's points are drawn at random among the plausible ones. The waves stop after
``waves`` waves, or once a wave after the first leaves more than ``STALL`` of the previous
wave's share (the first wave's emulators may rule little out only because they are unsure).

Each wave's runs are kept in ``out/history_matching/wave-<k>.parquet``: a calibration run
again in the same folder reads them instead of simulating again (the emulators are refitted
from them: deterministic), and refuses a stored wave whose points differ from the design.
Random numbers: the design and the candidates of wave k come from
``SeedSequence(seed, spawn_key=(3, k))``, its runs' model seeds from ``spawn_key=(2, k)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import qmc

from hhsim.batch.execution import open_executor
from hhsim.core.errors import HhsimError
from hhsim.studies.calibration.emulator import Emulator, fit_emulator, within_two
from hhsim.studies.calibration.problem import Problem
from hhsim.studies.calibration.targets import Target

#: Waves stop once a wave leaves more than this share of the previous wave's NROY share.
STALL = 0.95
#: Candidate batches drawn at most to find a wave's points in a small NROY region.
BATCHES = 10


def observations(targets: tuple[Target, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each target's observed value z and observation variance (see the module docstring)."""
    z, var = [], []
    for t in targets:
        if t.likelihood == "binomial":
            p = (t.observed + 0.5) / (t.n + 1)
            z.append(t.observed / t.n)
            var.append(p * (1 - p) / t.n)
        else:
            z.append(t.observed)
            var.append(t.sd**2)
    return np.array(z, dtype=float), np.array(var, dtype=float)


def implausibility(mean: np.ndarray, var: np.ndarray, z: np.ndarray, obs_var: np.ndarray,
                   discrepancy: float) -> np.ndarray:
    """I (points x targets) from the emulators' means and variances (points x targets)."""
    return np.abs(mean - z) / np.sqrt(var + obs_var * (1.0 + discrepancy))


def combined(implausible: np.ndarray, rule: str) -> np.ndarray:
    """Per point, the largest ("max") or second-largest ("second") I over targets."""
    if rule == "max" or implausible.shape[1] == 1:
        return implausible.max(axis=1)
    return np.partition(implausible, -2, axis=1)[:, -2]


@dataclass
class Nroy:
    """The region not ruled out yet: the waves' emulators and the settings that judge them."""

    emulators: list[Emulator]
    z: np.ndarray
    obs_var: np.ndarray
    discrepancy: float
    cutoff: float
    rule: str

    def max_implausibility(self, x: np.ndarray, emulator: Emulator) -> np.ndarray:
        """Per point (rows of ``x``, natural units), the combined I of one wave's emulators."""
        mean, var = emulator.predict(x)
        return combined(implausibility(mean, var, self.z, self.obs_var, self.discrepancy), self.rule)

    def plausible(self, x: np.ndarray) -> np.ndarray:
        """Whether each point is plausible under every wave (later waves asked only about
        the points the earlier ones kept)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        keep = np.ones(len(x), dtype=bool)
        for emulator in self.emulators:
            if keep.any():
                keep[keep] = self.max_implausibility(x[keep], emulator) <= self.cutoff
        return keep


@dataclass
class Waves:
    """What history matching found: the region, the waves table, the emulators' per-target
    diagnostics, and the last wave's plausible candidates (natural units)."""

    nroy: Nroy
    table: pd.DataFrame
    emulators: pd.DataFrame
    samples: pd.DataFrame


def quantile_points(problem: Problem, u: np.ndarray) -> np.ndarray:
    """Points in the prior's quantile space (rows in [0, 1]^d) in natural units."""
    return np.column_stack([d.ppf(u[:, j]) for j, d in enumerate(problem.priors)])


def simulate_points(problem: Problem, x: np.ndarray, seeds: np.ndarray, workers: int | None,
                    scheduler: str | None) -> np.ndarray:
    """The fitted targets' simulated values (points x targets) at each point (row of ``x``)
    with its model seed, on the batch's executor (local workers or a Dask scheduler)."""
    names = [t.name for t in problem.fitted]
    with open_executor(workers, scheduler) as (executor, _):
        futures = [executor.submit(problem.simulate, dict(zip(problem.names, map(float, row), strict=True)),
                                   int(s)) for row, s in zip(x, seeds, strict=True)]
        values = [f.result() for f in futures]
    return np.array([[v[n] for n in names] for v in values], dtype=float)


def _wave_runs(problem: Problem, x: np.ndarray, wave: int, folder: Path, run: dict) -> pd.DataFrame:
    """Wave ``wave``'s runs at points ``x``: read from ``folder`` when stored, else simulated
    and stored."""
    names, targets = list(problem.names), [t.name for t in problem.fitted]
    path = folder / f"wave-{wave}.parquet"
    if path.is_file():
        stored = pd.read_parquet(path)
        if stored.shape[0] != len(x) or not np.allclose(stored[names].to_numpy(), x, rtol=1e-12, atol=0):
            raise HhsimError(str(path), f"holds other points than wave {wave}'s design",
                             "remove the output folder's history_matching folder, or choose another --out")
        return stored
    seeds = np.random.SeedSequence(problem.settings["seed"], spawn_key=(2, wave)).generate_state(len(x))
    y = simulate_points(problem, x, seeds % (2**31 - 1), **run)
    frame = pd.concat([pd.DataFrame(x, columns=names), pd.DataFrame(y, columns=targets)], axis=1)
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return frame


def _candidates(problem: Problem, nroy: Nroy, rng: np.random.Generator, size: int,
                needed: int) -> tuple[np.ndarray, float]:
    """Plausible prior draws (at least ``needed`` when ``BATCHES`` batches of ``size`` find
    them) and the plausible share of the draws; a first batch with none ends the search (a
    share below 1 / ``size`` is taken for none)."""
    kept, drawn = [], 0
    while drawn < BATCHES * size and (drawn == 0 or 0 < sum(map(len, kept)) < needed):
        x = quantile_points(problem, rng.random((size, len(problem.names))))
        kept.append(x[nroy.plausible(x)])
        drawn += size
    found = np.concatenate(kept)
    return found, len(found) / drawn


def _unreachable(y: np.ndarray, nroy: Nroy, targets: list[str]) -> str:
    """The targets no run came within the cutoff of (their smallest I over the runs, without
    emulator variance), worst first, as the end of an error message."""
    closest = np.nanmin(implausibility(y, 0.0, nroy.z, nroy.obs_var, nroy.discrepancy), axis=0)
    far = [i for i in np.argsort(-closest) if closest[i] > nroy.cutoff]
    if not far:
        return ": each target was within the cutoff at some run, but no run matched them together"
    shown = ", ".join(f"{targets[i]} ({closest[i]:.1f})" for i in far[:5])
    return (f": no run came within the cutoff of {len(far)} target(s), closest implausibility "
            f"over the runs: {shown}{', ...' if len(far) > 5 else ''}")


def history_match(problem: Problem, out: Path, *, workers: int | None = None, scheduler: str | None = None,
                  say: Callable[[str], None] | None = None) -> Waves:
    """Run the waves of ``problem.history_matching`` (runs stored in ``out/history_matching``)."""
    hm = problem.history_matching
    if hm is None:
        raise HhsimError(str(problem.source), "has no [history_matching] table",
                         "add one (docs/calibration.md)")
    seed, d = problem.settings["seed"], len(problem.names)
    targets = [t.name for t in problem.fitted]
    z, obs_var = observations(problem.fitted)
    nroy = Nroy([], z, obs_var, hm["discrepancy"], hm["cutoff"], hm["rule"])
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, 1)))
    x = quantile_points(problem, qmc.LatinHypercube(d=d, seed=rng).random(hm["points"]))
    rows, diagnostics, runs = [], [], []
    share = 1.0
    for wave in range(1, hm["waves"] + 1):
        start = time.perf_counter()
        runs.append(_wave_runs(problem, x, wave, out / "history_matching", {"workers": workers,
                                                                            "scheduler": scheduler}))
        new = runs[-1][targets].to_numpy(float)
        missing = [n for n, ok in zip(targets, np.isfinite(new).sum(axis=0) >= 2, strict=True) if not ok]
        if missing:
            raise HhsimError(f"history matching wave {wave}", f"target '{missing[0]}' has fewer than 2 "
                             "finite simulated values", "give the experiment more tenants or months")
        fresh = (within_two(nroy.emulators[-1].validate(x, new)) if nroy.emulators
                 else np.full(len(targets), np.nan))  # the last emulators at these new runs
        every = pd.concat(runs, ignore_index=True)
        emulator = fit_emulator(problem.priors, every[list(problem.names)].to_numpy(float),
                                every[targets].to_numpy(float), targets, seed, hm["restarts"])
        nroy.emulators.append(emulator)
        loo = within_two(emulator.loo())
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, wave + 1)))
        plausible, now = _candidates(problem, nroy, rng, hm["candidates"], hm["points"])
        rows.append({"wave": wave, "points": len(x), "runs": len(every), "nroy_share": now,
                     "loo_within2_min": float(loo.min()), "loo_within2_mean": float(loo.mean()),
                     "new_runs_within2_min": float(np.nanmin(fresh)) if wave > 1 else np.nan,
                     "seconds": round(time.perf_counter() - start, 1)})
        diagnostics += [{"wave": wave, "target": n, "loo_within2": a, "new_runs_within2": b}
                        for n, a, b in zip(targets, loo, fresh, strict=True)]
        if say:
            say(f"History matching wave {wave}: {len(x)} runs ({len(every)} in all), NROY "
                f"{now:.1%} of the prior, emulators' leave-one-out errors within +-2 sd: "
                f"{loo.min():.0%} (worst target) to {loo.max():.0%}, {rows[-1]['seconds']:.1f} s")
        if len(plausible) == 0:
            raise HhsimError(f"history matching wave {wave}", "ruled out every candidate point of the prior"
                             + _unreachable(every[targets].to_numpy(float), nroy, targets),
                             "calibrate parameters that move those targets, hold them out, or raise "
                             "history_matching.discrepancy or cutoff")
        stalled = wave > 1 and now > STALL * share  # wave 1's emulators may just be unsure
        share = now
        if wave == hm["waves"] or stalled:
            break
        take = rng.choice(len(plausible), size=min(hm["points"], len(plausible)), replace=False)
        x = plausible[np.sort(take)]
    samples = pd.DataFrame(plausible, columns=list(problem.names))
    return Waves(nroy, pd.DataFrame(rows), pd.DataFrame(diagnostics), samples)
