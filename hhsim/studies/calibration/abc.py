"""ABC-SMC with pyabc: the posterior of a calibration's parameters given its targets.

Each particle's simulation draws its model seed from numpy's global random generator,
which pyabc's samplers also use for the parameter draws: with the single-core sampler
and a calibration seed, a calibration is reproducible; the multicore and Dask samplers
seed their workers themselves, so their posteriors agree only in distribution. A fresh
seed per simulation (rather than fixed common random numbers) keeps the model's own
randomness in the posterior and in the fit table's predictive intervals.

The simulated summary statistics are simulated *observations* (``Problem.observe``:
normal noise with each target's sd, a binomial count for count targets), and the distance
is Euclidean in sd units, so as pyabc's epsilon falls the accepted particles approach the
posterior under the targets' likelihoods (noisy ABC; a final epsilon above 0 leaves it
somewhat wider, i.e. conservative). A binomial target such as 0 of 5 is then matched
exactly when the distance falls below one count.

pyabc keeps its history in an SQLite database (``abc.db`` in the output folder): a run
that stops part way continues from its last complete generation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hhsim.core.errors import HhsimError
from hhsim.studies.calibration.problem import Problem

if TYPE_CHECKING:  # scikit-learn (history matching's emulators) is not needed by --fast
    from hhsim.studies.calibration.history_matching import Nroy


def import_pyabc():
    """pyabc (the 'calibrate' extra), its log quietened; a one-line error when it is missing."""
    try:
        import pyabc
    except ImportError:
        raise HhsimError("hhsim calibrate", "ABC-SMC needs the 'pyabc' package",
                         "pip install 'hhsim[calibrate]', or use --fast") from None

    for name in ("ABC", "ABC.Sampler", "ABC.History", "ABC.Epsilon", "ABC.Distance", "ABC.Adaptation"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return pyabc


class Model:
    """pyabc's model: parameters (p0, p1, ...) -> simulated observations by target name.
    A class so that it pickles (multicore and Dask samplers)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def __call__(self, parameters: dict) -> dict:
        seed = int(np.random.randint(0, 2**31 - 1))  # noqa: NPY002 (pyabc's global state)
        # Priors are cut at their 0.1% and 99.9% quantiles, the values checked when the file
        # was read (the 0.2% of draws beyond are simulated at those quantiles).
        point = {name: float(np.clip(parameters[f"p{i}"], *d.range()))
                 for i, (name, d) in enumerate(zip(self.problem.names, self.problem.priors, strict=True))}
        values = self.problem.simulate(point, seed)
        return self.problem.observe(values, np.random.default_rng(seed))


class Distance:
    """pyabc's distance (see ``Problem.distance``)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def __call__(self, x: dict, x0: dict) -> float:
        return self.problem.distance(x, x0)


def prior(problem: Problem, nroy: Nroy | None = None):
    """The pyabc prior: one scipy distribution per parameter, named p0, p1, ... (with
    ``nroy``: restricted to the region history matching did not rule out)."""
    if nroy is not None:
        return RestrictedPrior(problem, nroy)
    pyabc = import_pyabc()
    rvs = {}
    for i, d in enumerate(problem.priors):
        f = d.frozen
        rvs[f"p{i}"] = pyabc.RV(f.dist.name, *f.args, **f.kwds)
    return pyabc.Distribution(**rvs)


class RestrictedPrior:
    """The prior restricted to history matching's NROY region, for pyabc: density
    prior(x) x 1[x plausible under every wave's emulators].

    The density is not normalised (its integral is the NROY share of the prior): pyabc's
    SMC weights are prior density / proposal density, normalised over the population, so
    the constant cancels. ``rvs`` rejection-samples the prior: it draws ``BATCH`` prior
    points at once from numpy's global generator (pyabc's, seeded from the calibration
    seed), keeps the plausible ones and hands them out one by one."""

    BATCH = 1000

    def __init__(self, problem: Problem, nroy: Nroy) -> None:
        self.priors, self.nroy = problem.priors, nroy
        self.keys = [f"p{i}" for i in range(len(problem.priors))]
        self.ready = np.empty((0, len(self.keys)))

    def rvs(self, *args, **kwargs):
        pyabc = import_pyabc()
        for _ in range(1000):
            if len(self.ready):
                break
            u = np.random.random((self.BATCH, len(self.keys)))  # noqa: NPY002 (pyabc's global state)
            x = np.column_stack([d.frozen.ppf(u[:, j]) for j, d in enumerate(self.priors)])
            self.ready = x[self.nroy.plausible(x)]
        else:
            raise HhsimError("ABC-SMC prior", "found no plausible point in 1,000,000 prior draws",
                             "rerun history matching with a larger cutoff or discrepancy")
        point, self.ready = self.ready[0], self.ready[1:]
        return pyabc.Parameter(dict(zip(self.keys, map(float, point), strict=True)))

    def pdf(self, x) -> float:
        point = np.array([[x[k] for k in self.keys]], dtype=float)
        density = float(np.prod([d.frozen.pdf(point[0, j]) for j, d in enumerate(self.priors)]))
        return density if density > 0 and self.nroy.plausible(point)[0] else 0.0


def sampler(kind: str, scheduler: str | None = None, workers: int | None = None):
    """pyabc's sampler: 'single' (reproducible), 'multicore' (default) or Dask."""
    pyabc = import_pyabc()
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise HhsimError(
                "--scheduler", "needs the 'distributed' package", "pip install 'hhsim[dask]'"
            ) from None
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise HhsimError(
                "--scheduler",
                f"cannot reach {scheduler} ({exc})",
                "check the address of the running Dask scheduler",
            ) from None
        return pyabc.sampler.DaskDistributedSampler(dask_client=client)
    if kind == "single":
        return pyabc.sampler.SingleCoreSampler()
    return pyabc.sampler.MulticoreEvalParallelSampler(n_procs=workers)


def run_abc(
    problem: Problem,
    out: Path,
    *,
    sampler_kind: str = "multicore",
    scheduler: str | None = None,
    workers: int | None = None,
    generations: int | None = None,
    nroy: Nroy | None = None,
):
    """Run (or continue) ABC-SMC until ``generations`` generations in total are in the
    database ``out/abc.db``, from the prior or (``nroy``) its part history matching did not
    rule out; returns pyabc's ``History``."""
    pyabc = import_pyabc()
    s = problem.settings
    total = generations or s["generations"]
    out.mkdir(parents=True, exist_ok=True)
    db = out / "abc.db"
    url = f"sqlite:///{db}"
    # One evaluation here first: a mistake a simulation would raise (an unknown column, say)
    # becomes a one-line error, not a dead worker process.
    medians = {n: float(d.frozen.median()) for n, d in zip(problem.names, problem.priors, strict=True)}
    problem.simulate(medians, s["seed"])
    chosen = sampler(sampler_kind, scheduler, workers)
    smc = pyabc.ABCSMC(Model(problem), prior(problem, nroy), Distance(problem),
                       population_size=s["particles"], sampler=chosen)
    try:
        _run(smc, url, db, s, total, problem.observed)
    finally:
        if scheduler:
            chosen.client.close()
    return smc.history


def _run(smc, url: str, db: Path, s: dict, total: int, observed: dict) -> None:
    """Start a new history, or load the stored one, and run the generations still missing."""
    if db.exists():
        history = smc.load(url, 1)
        done = history.max_t + 1
        if done and s["min_epsilon"] > 0:
            eps = history.get_all_populations()["epsilon"].iloc[-1]
            if eps <= s["min_epsilon"]:  # it stopped there: nothing to continue
                return
        # A continued run: its own stream, from the seed and the generation reached.
        np.random.seed([s["seed"], done])  # noqa: NPY002
    else:
        np.random.seed(s["seed"])  # noqa: NPY002 (pyabc draws from the global state)
        smc.new(url, observed)
        done = 0
    if done < total:
        smc.run(minimum_epsilon=s["min_epsilon"], max_nr_populations=total - done)


def posterior_table(problem: Problem, history) -> pd.DataFrame:
    """Every generation's particles: generation, weight, then the parameters by name."""
    frames = []
    for t in range(history.max_t + 1):
        df, w = history.get_distribution(m=0, t=t)
        df = df.rename(columns={f"p{i}": n for i, n in enumerate(problem.names)})[list(problem.names)]
        frames.append(df.reset_index(drop=True).assign(generation=t, weight=np.asarray(w, dtype=float)))
    table = pd.concat(frames, ignore_index=True)
    table = table[["generation", "weight", *problem.names]]
    table.columns.name = None
    return table


def diagnostics_table(history) -> pd.DataFrame:
    """Per generation: epsilon, particles, simulations, acceptance rate, effective sample size."""
    from pyabc.weighted_statistics import effective_sample_size

    pops = history.get_all_populations()
    pops = pops[pops["t"] >= 0].reset_index(drop=True)
    ess = []
    for t in pops["t"]:
        _, w = history.get_distribution(m=0, t=int(t))
        ess.append(float(effective_sample_size(np.asarray(w, dtype=float))))
    return pd.DataFrame(
        {
            "generation": pops["t"].astype(int),
            "epsilon": pops["epsilon"].astype(float),
            "particles": pops["particles"].astype(int),
            "simulations": pops["samples"].astype(int),
            "acceptance": pops["particles"] / pops["samples"],
            "ess": ess,
        }
    )
